package challenge

import (
	"crypto/sha256"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestLeadingZeroBits(t *testing.T) {
	tests := []struct {
		first []byte
		want  int
	}{
		{[]byte{0x80}, 0},
		{[]byte{0x01}, 7},
		{[]byte{0x00, 0x40}, 9},
		{[]byte{0x00, 0x00, 0x00, 0x01}, 31},
	}
	for _, tt := range tests {
		var sum [sha256.Size]byte
		copy(sum[:], tt.first)
		if got := leadingZeroBits(&sum); got != tt.want {
			t.Errorf("%x: got %d, want %d", tt.first, got, tt.want)
		}
	}
	var zero [sha256.Size]byte
	if got := leadingZeroBits(&zero); got != 256 {
		t.Errorf("zero hash: %d", got)
	}
}

func TestWorkBitsMatchesSHA256(t *testing.T) {
	id := strings.Repeat("a1", 16)
	nonce := solve(t, id, 12)
	sum := sha256.Sum256([]byte(id + nonce))
	if sum[0] != 0 || sum[1]>>4 != 0 {
		t.Fatalf("nonce %s gives %x", nonce, sum[:2])
	}
	if got := workBits(id, nonce); got != leadingZeroBits(&sum) {
		t.Errorf("workBits %d, want %d", got, leadingZeroBits(&sum))
	}
}

func TestDifficultyFor(t *testing.T) {
	s := newTestService(t, Config{MinDifficulty: 14, MaxDifficulty: 20, NoJSWeightBelow: 10, MaxDifficultyWeight: 40}, nil)
	tests := []struct {
		weight int
		m      method
		diff   int
	}{
		{-5, methodNoJS, 0},
		{0, methodNoJS, 0},
		{9, methodNoJS, 0},
		{10, methodPoW, 14},
		{25, methodPoW, 17},
		{39, methodPoW, 19},
		{40, methodPoW, 20},
		{1000, methodPoW, 20},
	}
	for _, tt := range tests {
		m, d := s.difficultyFor(tt.weight)
		if m != tt.m || d != tt.diff {
			t.Errorf("weight %d: %v/%d, want %v/%d", tt.weight, m, d, tt.m, tt.diff)
		}
	}
	always := newTestService(t, Config{NoJSWeightBelow: -1}, nil)
	if m, _ := always.difficultyFor(0); m != methodPoW {
		t.Errorf("NoJSWeightBelow<0: weight 0 got %v", m)
	}
}

func TestParseVerifyForm(t *testing.T) {
	id := strings.Repeat("A", minSealedEncodedLen+1)
	tests := []struct {
		name string
		body string
		want reason
	}{
		{"valid", "challenge=" + id + "&nonce=12345&difficulty=16", ""},
		{"max uint64", "challenge=" + id + "&nonce=18446744073709551615&difficulty=16", ""},
		{"nonce overflow", "challenge=" + id + "&nonce=18446744073709551616&difficulty=16", reasonBadNonce},
		{"nonce too long", "challenge=" + id + "&nonce=" + strings.Repeat("1", 21) + "&difficulty=16", reasonBadNonce},
		{"nonce letters", "challenge=" + id + "&nonce=12a&difficulty=16", reasonBadNonce},
		{"nonce negative", "challenge=" + id + "&nonce=-1&difficulty=16", reasonBadNonce},
		{"nonce float", "challenge=" + id + "&nonce=1.5&difficulty=16", reasonBadNonce},
		{"nonce hex", "challenge=" + id + "&nonce=0x10&difficulty=16", reasonBadNonce},
		{"nonce empty", "challenge=" + id + "&nonce=&difficulty=16", reasonBadNonce},
		{"nonce space", "challenge=" + id + "&nonce=+1&difficulty=16", reasonBadNonce},
		{"nonce missing", "challenge=" + id + "&difficulty=16", reasonBadForm},
		{"nonce twice", "challenge=" + id + "&nonce=1&nonce=2&difficulty=16", reasonBadForm},
		{"challenge short", "challenge=abc&nonce=1&difficulty=16", reasonBadForm},
		{"challenge not base64", "challenge=" + strings.Repeat("+", len(id)) + "&nonce=1&difficulty=16", reasonBadForm},
		{"challenge too long", "challenge=" + strings.Repeat("A", maxSealedEncodedLen+1) + "&nonce=1&difficulty=16", reasonBadForm},
		{"old id field", "id=" + strings.Repeat("0f", 16) + "&nonce=1&difficulty=16", reasonBadForm},
		{"challenge missing", "nonce=1&difficulty=16", reasonBadForm},
		{"difficulty zero", "challenge=" + id + "&nonce=1&difficulty=0", reasonWrongDifficulty},
		{"difficulty 33", "challenge=" + id + "&nonce=1&difficulty=33", reasonWrongDifficulty},
		{"difficulty text", "challenge=" + id + "&nonce=1&difficulty=x", reasonBadForm},
		{"difficulty long", "challenge=" + id + "&nonce=1&difficulty=016", reasonBadForm},
		{"bad escape", "challenge=%zz&nonce=1&difficulty=16", reasonBadForm},
		{"semicolon", "challenge=" + id + ";nonce=1&difficulty=16", reasonBadForm},
		{"oversized", "challenge=" + id + "&nonce=1&difficulty=16&x=" + strings.Repeat("a", maxFormBytes), reasonBadForm},
		{"empty", "", reasonBadForm},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, got := parseVerifyForm([]byte(tt.body))
			if got != tt.want {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
			if got == "" && (f.challenge != id || f.difficulty != 16) {
				t.Errorf("parsed %+v", f)
			}
		})
	}
}

func TestSafeReturnPath(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"/", "/"},
		{"/docs/page?x=1&y=2", "/docs/page?x=1&y=2"},
		{"/a%2F%2Fb", "/a%2F%2Fb"},
		{"/path//double", "/path//double"},
		{"//evil.com", "/"},
		{"//evil.com/path", "/"},
		{"https://evil.com", "/"},
		{"http:evil.com", "/"},
		{"javascript:alert(1)", "/"},
		{`/\evil.com`, "/"},
		{`\\evil.com`, "/"},
		{"/\t/evil.com", "/"},
		{"/\n/evil.com", "/"},
		{"/ /evil.com", "/"},
		{"evil.com", "/"},
		{"", "/"},
		{"/a\\b", "/"},
		{Prefix + "verify", "/"},
		{"/" + strings.Repeat("a", maxReturnLen), "/"},
	}
	for _, tt := range tests {
		if got := safeReturnPath(tt.in); got != tt.want {
			t.Errorf("safeReturnPath(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestExempt(t *testing.T) {
	s := newTestService(t, Config{ExemptPaths: []string{"/api/", "/hooks/github"}}, nil)
	tests := []struct {
		path   string
		accept string
		want   bool
	}{
		{"/robots.txt", "", true},
		{"/ROBOTS.TXT", "", true},
		{"/favicon.ico", "", true},
		{"/favicon.svg", "", true},
		{"/apple-touch-icon-precomposed.png", "", true},
		{"/.well-known/acme-challenge/x", "", true},
		{"/.well-known/security.txt", "", true},
		{"/sitemap.xml", "", true},
		{"/feed", "", true},
		{"/blog/feed/", "", true},
		{"/rss.xml", "", true},
		{"/atom.xml", "", true},
		{"/posts/index.xml", "", true},
		{"/news.rss", "", true},
		{"/news.atom", "", true},
		{"/anything", "application/rss+xml", true},
		{"/anything", "application/atom+xml, application/xml;q=0.9", true},
		{"/anything", "application/feed+json", true},
		{"/api/v1/items", "", true},
		{"/hooks/github", "", true},
		{Prefix + "verify", "", true},
		{"/", "text/html", false},
		{"/feeding-tips", "", false},
		{"/apix", "", false},
		{"/docs/robots.txt.html", "", false},
		{"/.well-known", "", false},
		{"/page", "application/xml", false},
	}
	for _, tt := range tests {
		r := httptest.NewRequest(http.MethodGet, tt.path, nil)
		if tt.accept != "" {
			r.Header.Set("Accept", tt.accept)
		}
		if got := s.Exempt(r); got != tt.want {
			t.Errorf("Exempt(%s, Accept %q) = %v, want %v", tt.path, tt.accept, got, tt.want)
		}
	}
	r := httptest.NewRequest(http.MethodGet, "/robots.txt", nil)
	if allocs := testing.AllocsPerRun(100, func() { s.Exempt(r) }); allocs != 0 {
		t.Errorf("Exempt allocates %v", allocs)
	}
}

func TestIsSubresource(t *testing.T) {
	tests := []struct {
		dest, accept string
		want         bool
	}{
		{"", "", false},                              // Go http.Client
		{"", "*/*", false},                           // curl
		{"document", "text/html", false},             // browser navigation
		{"iframe", "text/html", false},               // frame
		{"image", "image/avif,image/webp,*/*", true}, // image
		{"script", "*/*", true},
		{"empty", "*/*", true}, // fetch
		{"", "image/png", true},
		{"", "application/json", true},
	}
	for _, tt := range tests {
		r := httptest.NewRequest(http.MethodGet, "/x", nil)
		if tt.dest != "" {
			r.Header.Set("Sec-Fetch-Dest", tt.dest)
		}
		if tt.accept != "" {
			r.Header.Set("Accept", tt.accept)
		}
		if got := isSubresource(r); got != tt.want {
			t.Errorf("dest %q accept %q: %v, want %v", tt.dest, tt.accept, got, tt.want)
		}
	}
}

func TestNegotiate(t *testing.T) {
	s := newTestService(t, Config{}, nil)
	tests := map[string]string{
		"":                          "en",
		"de":                        "de",
		"de-AT,de;q=0.9,en;q=0.8":   "de",
		"fr-FR, en;q=0.5, de;q=0.7": "de",
		"en;q=0.9, de;q=0.1":        "en",
		"fr":                        "en",
		"de;q=0":                    "en",
		"de;q=abc":                  "en",
		"*":                         "en",
	}
	for header, want := range tests {
		if got := s.pages.negotiate(header); got != want {
			t.Errorf("negotiate(%q) = %q, want %q", header, got, want)
		}
	}
}

func TestLocalesComplete(t *testing.T) {
	s := newTestService(t, Config{}, nil)
	en := s.pages.locales["en"]
	for lang, strs := range s.pages.locales {
		if len(strs) != len(en) {
			t.Errorf("locale %s has %d strings, en has %d", lang, len(strs), len(en))
		}
		for k, v := range strs {
			if strings.Contains(v, "{seconds}") || strings.Contains(v, "{hours}") {
				t.Errorf("%s.%s keeps a placeholder: %q", lang, k, v)
			}
		}
	}
}

func TestConfigValidation(t *testing.T) {
	bad := []Config{
		{StatusCode: 99},
		{MinDifficulty: 20, MaxDifficulty: 10},
		{MaxDifficulty: 40},
		{PassTTL: time.Second},
		{ChallengeTTL: time.Second},
		{NoJSFallbackWait: time.Hour},
		{CookieName: "bad name;"},
		{ExemptPaths: []string{"api"}},
	}
	for _, c := range bad {
		if _, err := c.withDefaults(); err == nil {
			t.Errorf("%+v accepted", c)
		}
	}
	c, err := Config{}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if c.StatusCode != 403 || c.PassTTL != 24*time.Hour || c.ChallengeTTL != 5*time.Minute ||
		c.MinDifficulty != 14 || c.MaxDifficulty != 20 || c.CookieName != "scrapedefense_pass" {
		t.Errorf("defaults: %+v", c)
	}
}
