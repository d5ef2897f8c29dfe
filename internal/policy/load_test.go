package policy

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/scrapedefense/scrapedefense/internal/decision"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/errors")

// TestLoadErrors loads each testdata/errors/*.yaml and compares the errors
// with the .txt file next to it. Run with -update to rewrite them.
func TestLoadErrors(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "errors", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden files: %v", err)
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".yaml"), func(t *testing.T) {
			src, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			p, err := Load(src, testOptions())
			if err == nil {
				t.Fatalf("Load succeeded, want errors (policy %v)", p)
			}
			checkFieldErrors(t, err)
			got := err.Error() + "\n"
			golden := strings.TrimSuffix(file, ".yaml") + ".txt"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("errors differ from %s:\n--- got\n%s--- want\n%s", golden, got, want)
			}
		})
	}
}

// checkFieldErrors asserts that err is a join of *FieldError values.
func checkFieldErrors(t *testing.T, err error) {
	t.Helper()
	joined, ok := err.(interface{ Unwrap() []error })
	if !ok {
		t.Fatalf("error %T is not a join", err)
	}
	for _, e := range joined.Unwrap() {
		var fe *FieldError
		if !errors.As(e, &fe) {
			t.Errorf("%T %v is not a *FieldError", e, e)
		}
	}
}

func TestLoadLimits(t *testing.T) {
	tests := []struct {
		name string
		src  string
		opts LoadOptions
		want string
	}{
		{
			name: "policy too large",
			src:  "version: 1\n#" + strings.Repeat("x", MaxPolicySize),
			want: "policy is 4194316 bytes, more than the limit of 4194304",
		},
		{
			name: "too many rules",
			src:  "version: 1\nrules:\n" + strings.Repeat("  - {name: a, match: {method: GET}, weight: 1}\n", MaxRules+1),
			want: "rules: line 3: 10001 rules, more than the limit of 10000",
		},
		{
			name: "error count",
			src:  "version: 1\nrules:\n" + strings.Repeat("  - {match: {method: GET}, weight: x}\n", 1100),
			want: "rules[499].name: line 502: required\nmore than 1000 errors; not showing the rest",
		},
		{
			name: "long values are clipped",
			src:  "version: 1\nrules: [{name: " + strings.Repeat("N", 5000) + ", match: {method: GET}, action: block}]\n",
			want: `rules[0].name: line 2: invalid rule name "` + strings.Repeat("N", 64) + `..."`,
		},
		{
			name: "regex too long",
			src:  "version: 1\nrules: [{name: a, match: {path_regex: '" + strings.Repeat("a", MaxRegexLen+1) + "'}, action: block}]\n",
			want: "rules[0].match.path_regex: line 2: regex is 4097 bytes, more than the limit of 4096",
		},
		{
			name: "list entries",
			src:  "version: 1\nlists:\n  a: {cidrs: [10.0.0.0/8, 10.1.0.0/16]}\n  b: {files: [bad.txt]}\nrules: [{name: a, match: {list: b}, action: block}]\n",
			opts: LoadOptions{MaxListEntries: 4, ReadFile: testOptions().ReadFile},
			want: "lists.b.files[0]: line 4: lists hold more than 4 entries in all",
		},
		{
			name: "description too long",
			src:  "version: 1\nrules: [{name: a, description: " + strings.Repeat("d", 1025) + ", match: {method: GET}, action: block}]\n",
			want: "rules[0].description: line 2: longer than 1024 bytes",
		},
		{
			name: "alias explosion",
			src: `version: 1
x0: &a0 {any: [{method: GET}, {method: GET}, {method: GET}, {method: GET}, {method: GET}, {method: GET}, {method: GET}, {method: GET}]}
` + aliasLevels(8) + `rules: [{name: a, match: *a8, action: block}]
`,
			want: "more than 1000000 matchers",
		},
		{
			name: "unavailable actions",
			src:  "version: 1\nthresholds: [{weight: 5, action: challenge}]\nrules: [{name: a, match: {method: GET}, action: tarpit}]\n",
			opts: LoadOptions{Available: func(a decision.Action) bool { return a != decision.ActionChallenge && a != decision.ActionTarpit }},
			want: `thresholds[0].action: line 2: action "challenge" is not available (challenges are not enabled)` + "\n" +
				`rules[0].action: line 3: action "tarpit" is not available (the tarpit role is not enabled)`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load([]byte(tt.src), tt.opts)
			if err == nil {
				t.Fatal("Load succeeded")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q\ndoes not contain %q", firstLines(err.Error(), 5), tt.want)
			}
		})
	}
}

// aliasLevels builds anchors that each refer to the previous one eight
// times: a policy of a few lines that expands to 8^n matchers.
func aliasLevels(n int) string {
	var b strings.Builder
	for i := 1; i <= n; i++ {
		p := "*a" + string(rune('0'+i-1))
		b.WriteString("x" + string(rune('0'+i)) + ": &a" + string(rune('0'+i)) + " {any: [")
		for j := range 8 {
			if j > 0 {
				b.WriteString(", ")
			}
			b.WriteString(p)
		}
		b.WriteString("]}\n")
	}
	return b.String()
}

func firstLines(s string, n int) string {
	lines := strings.SplitN(s, "\n", n+1)
	if len(lines) > n {
		lines = lines[:n]
	}
	return strings.Join(lines, "\n")
}

func TestLoadAcceptsAll(t *testing.T) {
	// Every matcher, every action, aliases and a list file, all valid.
	src := `version: 1
lists:
  bad: {files: [bad.txt], description: from a file}
  agents: {user_agents: [evil]}
thresholds: [{weight: 10, action: challenge}, {weight: 20, action: tarpit}, {weight: 30, action: block}, {weight: 5, action: throttle}]
rules:
  - name: a
    match: &m {user_agent: x, user_agent_regex: y, path_prefix: /, path_regex: z, method: GET, header_present: A,
      header_absent: B, header_regex: {C: d}, cidr: 10.0.0.0/8, list: bad, ai_agent: true, crawler: none,
      robots_disallowed: true, host: h}
    action: allow
  - {name: b, match: *m, action: challenge}
  - {name: c, match: {all: [*m], any: [*m], not: *m}, action: tarpit}
  - {name: d, match: {ai_agent: [GPTBot]}, action: throttle}
  - {name: e, match: {list: agents}, action: block}
`
	p, err := Load([]byte(src), LoadOptions{ReadFile: testOptions().ReadFile})
	if err != nil {
		t.Fatal(err)
	}
	if got := len(p.Rules()); got != 5 {
		t.Errorf("%d rules", got)
	}
	if got := len(p.Thresholds()); got != 4 {
		t.Errorf("%d thresholds", got)
	}
}

func TestLoadDefaultReadFile(t *testing.T) {
	dir := t.TempDir()
	list := filepath.Join(dir, "nets.txt")
	if err := os.WriteFile(list, []byte("192.0.2.0/24\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	src := "version: 1\nlists: {n: {files: ['" + list + "']}}\nrules: [{name: a, match: {list: n}, action: block}]\n"
	p, err := Load([]byte(src), LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	r := chromeRequest()
	r.Addr = mustAddr(t, "192.0.2.9")
	if res := evaluate(p, r); res.Action != decision.ActionBlock {
		t.Errorf("address from list file not blocked: %+v", res)
	}
	_, err = Load([]byte(strings.Replace(src, "nets.txt", "missing.txt", 1)), LoadOptions{})
	if err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Errorf("missing list file: %v", err)
	}
}
