package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// MaxFileSize bounds the configuration file.
const MaxFileSize = 1 << 20

// EnvPrefix starts every environment override.
const EnvPrefix = "SCRAPEDEFENSE_"

// EnvConfigFile names the configuration file when --config is not given.
const EnvConfigFile = EnvPrefix + "CONFIG"

// Load reads the defaults, then the YAML file (if path is not empty), then
// environment overrides, and validates the result. Every problem is reported,
// each as a *FieldError with its key path.
func Load(path string, environ []string) (Config, error) {
	cfg := Default()
	var errs errList
	if path != "" {
		data, err := readLimited(path)
		if err != nil {
			return cfg, fmt.Errorf("config: %w", err)
		}
		errs = append(errs, decodeYAML(data, &cfg)...)
	}
	errs = append(errs, applyEnv(&cfg, environ)...)
	if err := cfg.Validate(); err != nil {
		errs = append(errs, unjoin(err)...)
	}
	return cfg, errors.Join(errs...)
}

func readLimited(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if len(data) > MaxFileSize {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, MaxFileSize)
	}
	return data, nil
}

// ReadSecret reads a secret from a *_file key: trailing newlines are trimmed
// and an empty file is an error, so that a mis-mounted secret is noticed.
func ReadSecret(path string) (string, error) {
	b, err := readLimited(path)
	if err != nil {
		return "", err
	}
	s := strings.TrimRight(string(b), "\r\n")
	if s == "" {
		return "", fmt.Errorf("secret file %s is empty", path)
	}
	return s, nil
}

func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

var durationType = reflect.TypeFor[time.Duration]()

// decodeYAML walks the document next to the struct so that unknown keys and
// type errors are all reported, each with its key path and line.
func decodeYAML(data []byte, cfg *Config) []error {
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil // empty file: defaults
		}
		return []error{&FieldError{Path: "(file)", Msg: err.Error()}}
	}
	if len(doc.Content) == 0 {
		return nil
	}
	var errs errList
	decodeNode(doc.Content[0], reflect.ValueOf(cfg).Elem(), "", &errs)
	return errs
}

func decodeNode(n *yaml.Node, v reflect.Value, path string, errs *errList) {
	where := func() string { return fmt.Sprintf(" (line %d)", n.Line) }
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return // "key:" with no value keeps the default
	}
	switch {
	case v.Type() == durationType:
		if n.Kind != yaml.ScalarNode {
			errs.add(path, "want a duration such as 30s or 5m%s", where())
			return
		}
		d, err := time.ParseDuration(n.Value)
		if err != nil {
			errs.add(path, "invalid duration %q%s", n.Value, where())
			return
		}
		v.SetInt(int64(d))
	case v.Kind() == reflect.Struct:
		if n.Kind != yaml.MappingNode {
			errs.add(orRoot(path), "want a mapping of keys%s", where())
			return
		}
		fields := yamlFields(v.Type())
		for i := 0; i+1 < len(n.Content); i += 2 {
			key, val := n.Content[i], n.Content[i+1]
			idx, ok := fields[key.Value]
			if !ok {
				errs.add(join(path, key.Value), "unknown key (line %d)", key.Line)
				continue
			}
			decodeNode(val, v.Field(idx), join(path, key.Value), errs)
		}
	case v.Kind() == reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			errs.add(path, "want a list%s", where())
			return
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, item := range n.Content {
			decodeNode(item, s.Index(i), fmt.Sprintf("%s[%d]", path, i), errs)
		}
		v.Set(s)
	default:
		if n.Kind != yaml.ScalarNode {
			errs.add(path, "want a single %s value%s", v.Kind(), where())
			return
		}
		if err := n.Decode(v.Addr().Interface()); err != nil {
			errs.add(path, "invalid %s value %q%s", v.Kind(), n.Value, where())
		}
	}
}

func orRoot(path string) string {
	if path == "" {
		return "(root)"
	}
	return path
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func yamlFields(t reflect.Type) map[string]int {
	m := make(map[string]int, t.NumField())
	for i := range t.NumField() {
		if name := yamlName(t.Field(i)); name != "" {
			m[name] = i
		}
	}
	return m
}

func yamlName(f reflect.StructField) string {
	tag, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	if tag == "-" {
		return ""
	}
	return tag
}

// Key is one leaf of the configuration: its dotted path, environment
// variable, documentation and default value.
type Key struct {
	Path    string
	Env     string
	Type    string
	Doc     string
	Default string
}

// Keys lists every configuration key, in file order.
func Keys() []Key {
	var keys []Key
	def := Default()
	walkKeys(reflect.ValueOf(def), "", "", &keys)
	return keys
}

func walkKeys(v reflect.Value, path, doc string, keys *[]Key) {
	if v.Kind() == reflect.Struct && v.Type() != durationType {
		for i := range v.NumField() {
			f := v.Type().Field(i)
			if name := yamlName(f); name != "" {
				walkKeys(v.Field(i), join(path, name), f.Tag.Get("doc"), keys)
			}
		}
		return
	}
	*keys = append(*keys, Key{
		Path:    path,
		Env:     EnvName(path),
		Type:    typeName(v.Type()),
		Doc:     doc,
		Default: formatValue(v),
	})
}

// EnvName is the environment variable that overrides a key path.
func EnvName(path string) string {
	return EnvPrefix + strings.ToUpper(strings.NewReplacer(".", "_", "-", "_").Replace(path))
}

func typeName(t reflect.Type) string {
	switch {
	case t == durationType:
		return "duration"
	case t.Kind() == reflect.Slice:
		return "list of " + typeName(t.Elem())
	default:
		return t.Kind().String()
	}
}

func formatValue(v reflect.Value) string {
	switch {
	case v.Type() == durationType:
		return time.Duration(v.Int()).String()
	case v.Kind() == reflect.Slice:
		parts := make([]string, v.Len())
		for i := range parts {
			parts[i] = formatValue(v.Index(i))
		}
		return strings.Join(parts, ",")
	default:
		return fmt.Sprint(v.Interface())
	}
}

// applyEnv sets every key that has a SCRAPEDEFENSE_* variable. Lists are
// comma-separated.
func applyEnv(cfg *Config, environ []string) []error {
	vars := make(map[string]string)
	for _, kv := range environ {
		if k, val, ok := strings.Cut(kv, "="); ok && strings.HasPrefix(k, EnvPrefix) {
			vars[k] = val
		}
	}
	if len(vars) == 0 {
		return nil
	}
	var errs errList
	known := make(map[string]bool)
	setEnv(reflect.ValueOf(cfg).Elem(), "", vars, known, &errs)
	var unknown []string
	for k := range vars {
		if !known[k] && k != EnvConfigFile {
			unknown = append(unknown, k)
		}
	}
	sort.Strings(unknown)
	for _, k := range unknown {
		errs.add(k, "unknown environment variable (no such configuration key)")
	}
	return errs
}

func setEnv(v reflect.Value, path string, vars map[string]string, known map[string]bool, errs *errList) {
	if v.Kind() == reflect.Struct && v.Type() != durationType {
		for i := range v.NumField() {
			if name := yamlName(v.Type().Field(i)); name != "" {
				setEnv(v.Field(i), join(path, name), vars, known, errs)
			}
		}
		return
	}
	env := EnvName(path)
	raw, ok := vars[env]
	if !ok {
		return
	}
	known[env] = true
	if err := setScalar(v, raw); err != nil {
		errs.add(path, "from %s: %v", env, err)
	}
}

func setScalar(v reflect.Value, raw string) error {
	switch {
	case v.Type() == durationType:
		d, err := time.ParseDuration(raw)
		if err != nil {
			return fmt.Errorf("invalid duration %q", raw)
		}
		v.SetInt(int64(d))
	case v.Kind() == reflect.String:
		v.SetString(raw)
	case v.Kind() == reflect.Bool:
		b, err := strconv.ParseBool(raw)
		if err != nil {
			return fmt.Errorf("invalid boolean %q", raw)
		}
		v.SetBool(b)
	case v.Kind() == reflect.Int:
		n, err := strconv.Atoi(raw)
		if err != nil {
			return fmt.Errorf("invalid integer %q", raw)
		}
		v.SetInt(int64(n))
	case v.Kind() == reflect.Float64:
		f, err := strconv.ParseFloat(raw, 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			return fmt.Errorf("invalid number %q", raw)
		}
		v.SetFloat(f)
	case v.Kind() == reflect.Slice && v.Type().Elem().Kind() == reflect.String:
		var items []string
		for _, s := range strings.Split(raw, ",") {
			if s = strings.TrimSpace(s); s != "" {
				items = append(items, s)
			}
		}
		v.Set(reflect.ValueOf(items))
	default:
		return fmt.Errorf("cannot set %s from the environment", v.Type())
	}
	return nil
}
