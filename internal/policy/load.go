package policy

import (
	_ "embed"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/scrapedefense/scrapedefense/internal/decision"
)

// Limits on a policy. A policy is written by the operator, but it may be
// generated or pulled from elsewhere, so loading it must be bounded too.
const (
	MaxPolicySize         = 4 << 20 // bytes of YAML
	MaxRules              = 10_000
	MaxRegexLen           = 4 << 10
	DefaultMaxListEntries = 1_000_000
	MaxNameLen            = 64 // rule and list names become metric labels

	maxListFileSize   = 64 << 20
	maxDescriptionLen = 1024
	maxWeight         = 1_000_000
	maxDepth          = 32        // nesting of all/any/not
	maxNodes          = 1_000_000 // compiled matchers, bounds YAML alias expansion
	maxFileErrors     = 10        // per list file; the rest are counted
	maxErrors         = 1000      // reported by one Load
)

// Version is the policy format version this package reads.
const Version = 1

// LoadOptions configures Load.
type LoadOptions struct {
	// Available reports whether an action can be enforced in this
	// build/deployment. A policy that uses an unavailable action is
	// rejected. nil means every action is available.
	Available func(decision.Action) bool
	// ReadFile reads the files named by lists[].files. nil means the local
	// file system, with a 64 MiB limit per file. Paths are passed as
	// written; a caller that wants them relative to the policy file
	// resolves them here.
	ReadFile func(path string) ([]byte, error)
	// MaxListEntries bounds the entries of all named lists together
	// (0 means DefaultMaxListEntries).
	MaxListEntries int
}

// FieldError is one problem in a policy, at a key path such as
// "rules[3].match.path_regex". Load returns every problem it finds, joined
// with errors.Join.
type FieldError struct {
	Path string
	Line int // 1-based line in the YAML, 0 if unknown
	Msg  string
}

func (e *FieldError) Error() string {
	var b strings.Builder
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	if e.Line > 0 {
		fmt.Fprintf(&b, "line %d: ", e.Line)
	}
	b.WriteString(e.Msg)
	return b.String()
}

//go:embed default.yaml
var defaultYAML []byte

// DefaultYAML returns the source of the built-in default policy, the
// starting point for a custom one.
func DefaultYAML() []byte { return slices.Clone(defaultYAML) }

// Default loads the built-in default policy.
func Default(opts LoadOptions) (*Policy, error) {
	p, err := Load(defaultYAML, opts)
	if err != nil {
		return nil, fmt.Errorf("default policy: %w", err)
	}
	return p, nil
}

// Load parses and compiles a policy. On failure the error joins one
// *FieldError per problem found.
func Load(data []byte, opts LoadOptions) (*Policy, error) {
	if len(data) > MaxPolicySize {
		return nil, errors.Join(&FieldError{Msg: fmt.Sprintf("policy is %d bytes, more than the limit of %d", len(data), MaxPolicySize)})
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, errors.Join(&FieldError{Msg: err.Error()})
	}
	l := &loader{
		opts:     opts,
		lists:    map[string]*namedList{},
		setIDs:   map[string]int{},
		budget:   maxNodes,
		maxItems: opts.MaxListEntries,
	}
	if l.maxItems <= 0 {
		l.maxItems = DefaultMaxListEntries
	}
	if l.opts.ReadFile == nil {
		l.opts.ReadFile = readFileLimited
	}
	p := l.document(&doc)
	if len(l.errs) > 0 {
		return nil, errors.Join(l.errs...)
	}
	return p, nil
}

func readFileLimited(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxListFileSize+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxListFileSize {
		return nil, fmt.Errorf("%s: larger than %d bytes", path, maxListFileSize)
	}
	return b, nil
}

type namedList struct {
	broken bool // had errors, already reported
	nets   *prefixSet
	set    int // agent set id, -1 when the list has no user agents
}

type loader struct {
	opts     LoadOptions
	errs     []error
	lists    map[string]*namedList
	sets     [][]string
	setIDs   map[string]int
	budget   int
	items    int // named list entries so far
	maxItems int
}

func (l *loader) errorf(n *yaml.Node, path, format string, args ...any) {
	switch {
	case len(l.errs) > maxErrors:
		return
	case len(l.errs) == maxErrors:
		l.errs = append(l.errs, &FieldError{Msg: fmt.Sprintf("more than %d errors; not showing the rest", maxErrors)})
		return
	}
	e := &FieldError{Path: path, Msg: fmt.Sprintf(format, args...)}
	if n != nil {
		e.Line = n.Line
	}
	l.errs = append(l.errs, e)
}

func (l *loader) action(n *yaml.Node, path string) (decision.Action, bool) {
	s, ok := l.str(n, path)
	if !ok {
		return decision.ActionNone, false
	}
	a, err := decision.ParseAction(s)
	if err != nil {
		l.errorf(deref(n), path, "unknown action %q (want allow, throttle, challenge, tarpit or block)", clip(s))
		return decision.ActionNone, false
	}
	if l.opts.Available != nil && !l.opts.Available(a) {
		l.errorf(deref(n), path, "action %q is not available (%s)", a, unavailableReason(a))
		return decision.ActionNone, false
	}
	return a, true
}

func unavailableReason(a decision.Action) string {
	switch a {
	case decision.ActionTarpit:
		return "the tarpit role is not enabled"
	case decision.ActionChallenge:
		return "challenges are not enabled"
	}
	return "not enabled in this deployment"
}

// validName reports whether s is usable as a rule or list name, which ends
// up as a Prometheus label value and in URLs of the admin UI.
func validName(s string) bool {
	if s == "" || len(s) > MaxNameLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

func (l *loader) document(doc *yaml.Node) *Policy {
	root := doc
	if doc.Kind == yaml.DocumentNode && len(doc.Content) > 0 {
		root = doc.Content[0]
	}
	if doc.Kind == 0 || root.Kind == 0 || (root.Kind == yaml.ScalarNode && root.ShortTag() == "!!null") {
		l.errorf(nil, "", "empty policy (want at least version: %d and rules)", Version)
		return nil
	}
	fields, ok := l.mapping(root, "", "a mapping with version, lists, thresholds and rules")
	if !ok {
		return nil
	}
	var version, lists, thresholds, rules *field
	for i := range fields {
		f := &fields[i]
		switch f.key {
		case "version":
			version = f
		case "lists":
			lists = f
		case "thresholds":
			thresholds = f
		case "rules":
			rules = f
		default:
			l.errorf(f.k, f.path, "unknown key%s", suggest(f.key, "version", "lists", "thresholds", "rules"))
		}
	}
	if version == nil {
		l.errorf(root, "version", "required (this build reads version %d)", Version)
	} else if v, ok := l.integer(version.v, version.path); ok && v != Version {
		l.errorf(deref(version.v), version.path, "unsupported version %d (this build reads version %d)", v, Version)
	}
	p := &Policy{}
	// Lists first: rules refer to them.
	if lists != nil {
		l.namedLists(lists.v, lists.path)
	}
	if thresholds != nil {
		p.thresholds = l.thresholds(thresholds.v, thresholds.path)
	}
	if rules == nil {
		l.errorf(root, "rules", "required")
	} else {
		p.rules = l.rules(rules.v, rules.path)
	}
	if len(l.sets) > 0 {
		p.agents = newAgentIndex(l.sets)
	}
	return p
}

func (l *loader) thresholds(n *yaml.Node, path string) []threshold {
	n = deref(n)
	if n == nil || n.Kind != yaml.SequenceNode {
		l.errorf(n, path, "expected a list of {weight, action}, got %s", describe(n))
		return nil
	}
	var out []threshold
	seen := map[int]int{}
	for i, tn := range n.Content {
		p := fmt.Sprintf("%s[%d]", path, i)
		fields, ok := l.mapping(tn, p, "a mapping with weight and action")
		if !ok {
			continue
		}
		t := threshold{}
		var haveW, haveA bool
		for _, f := range fields {
			switch f.key {
			case "weight":
				if w, ok := l.integer(f.v, f.path); ok {
					if w < 1 || w > maxWeight {
						l.errorf(deref(f.v), f.path, "must be between 1 and %d", maxWeight)
					} else if first, dup := seen[w]; dup {
						l.errorf(deref(f.v), f.path, "duplicate threshold weight %d (first at %s[%d])", w, path, first)
					} else {
						seen[w] = i
						t.weight, haveW = w, true
					}
				}
			case "action":
				if a, ok := l.action(f.v, f.path); ok {
					if a == decision.ActionAllow {
						l.errorf(deref(f.v), f.path, "allow cannot be a threshold action: weight only restricts")
					} else {
						t.action, haveA = a, true
					}
				}
			default:
				l.errorf(f.k, f.path, "unknown key%s", suggest(f.key, "weight", "action"))
			}
		}
		if !haveW && !hasKey(fields, "weight") {
			l.errorf(deref(tn), p+".weight", "required")
		}
		if !haveA && !hasKey(fields, "action") {
			l.errorf(deref(tn), p+".action", "required")
		}
		if haveW && haveA {
			t.label = "threshold:" + strconv.Itoa(t.weight)
			out = append(out, t)
		}
	}
	slices.SortFunc(out, func(a, b threshold) int { return b.weight - a.weight })
	return out
}

func (l *loader) rules(n *yaml.Node, path string) []rule {
	n = deref(n)
	if n == nil || n.Kind != yaml.SequenceNode {
		l.errorf(n, path, "expected a list of rules, got %s", describe(n))
		return nil
	}
	if len(n.Content) > MaxRules {
		l.errorf(n, path, "%d rules, more than the limit of %d", len(n.Content), MaxRules)
		return nil
	}
	names := map[string]int{}
	out := make([]rule, 0, len(n.Content))
	for i, rn := range n.Content {
		if r, ok := l.rule(rn, fmt.Sprintf("%s[%d]", path, i), i, names); ok {
			out = append(out, r)
		}
	}
	return out
}

func (l *loader) rule(n *yaml.Node, path string, index int, names map[string]int) (rule, bool) {
	fields, ok := l.mapping(n, path, "a rule (a mapping with name, match and action or weight)")
	if !ok {
		return rule{}, false
	}
	r := rule{line: deref(n).Line}
	var haveName, haveMatch, haveAction, haveWeight, skipSet bool
	good := true
	for _, f := range fields {
		switch f.key {
		case "name":
			s, ok := l.str(f.v, f.path)
			switch {
			case !ok:
				good = false
			case !validName(s):
				l.errorf(deref(f.v), f.path, "invalid rule name %q: want 1 to %d characters of a-z, 0-9, '.', '_' and '-' (it becomes a metric label)", clip(s), MaxNameLen)
				good = false
			default:
				if first, dup := names[s]; dup {
					l.errorf(deref(f.v), f.path, "duplicate rule name %q (first at rules[%d])", s, first)
					good = false
				} else {
					names[s] = index
				}
				r.name, haveName = s, true
			}
		case "description":
			if s, ok := l.str(f.v, f.path); ok {
				if len(s) > maxDescriptionLen {
					l.errorf(deref(f.v), f.path, "longer than %d bytes", maxDescriptionLen)
					good = false
				}
				r.description = s
			} else {
				good = false
			}
		case "match":
			haveMatch = true
			m, ok := l.matchMap(f.v, f.path, 0)
			good = good && ok
			r.match = m
		case "action":
			haveAction = true
			a, ok := l.action(f.v, f.path)
			good = good && ok
			r.action = a
		case "weight":
			haveWeight = true
			w, ok := l.integer(f.v, f.path)
			if ok && (w < -maxWeight || w > maxWeight) {
				l.errorf(deref(f.v), f.path, "must be between %d and %d", -maxWeight, maxWeight)
				ok = false
			}
			good = good && ok
			r.weight = w
		case "skip_thresholds":
			v, ok := l.boolean(f.v, f.path)
			good = good && ok
			r.skipThresholds, skipSet = v, ok && v
		default:
			l.errorf(f.k, f.path, "unknown key%s", suggest(f.key, "name", "description", "match", "action", "weight", "skip_thresholds"))
			good = false
		}
	}
	if !haveName && !hasKey(fields, "name") {
		l.errorf(deref(n), path+".name", "required")
		good = false
	}
	if !haveMatch {
		l.errorf(deref(n), path+".match", "required")
		good = false
	}
	switch {
	case haveAction && haveWeight:
		l.errorf(deref(n), path, "has both action and weight: a rule either decides (action) or adds weight and continues (weight)")
		good = false
	case !haveAction && !haveWeight && !skipSet && !hasKey(fields, "skip_thresholds"):
		l.errorf(deref(n), path, "needs an action, a weight or skip_thresholds: true")
		good = false
	}
	return r, good && haveName
}
