package challenge

import (
	"context"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// mint signs claims for client with the service's current key.
func mint(s *testService, client netip.Addr, ua string, issued time.Time, ttl time.Duration) string {
	signer := s.keys.Load().signer()
	c := passClaims{
		method: methodPoW, key: signer.id, issued: issued, expires: issued.Add(ttl),
		prefix: prefixOf(client), uaHash: hashUA(ua),
	}
	return signPass(&c, signer.priv)
}

// reencode decodes a token, lets edit change the bytes and encodes it again.
func reencode(t *testing.T, value string, edit func(*rawToken)) string {
	t.Helper()
	var raw rawToken
	n, err := tokenEncoding.Decode(raw[:], []byte(value))
	if err != nil || n != tokenLen {
		t.Fatalf("decode: %v", err)
	}
	edit(&raw)
	return tokenEncoding.EncodeToString(raw[:])
}

func TestVerifyPassReasons(t *testing.T) {
	s := newTestService(t, Config{}, nil)
	now := s.clock.Now()
	good := mint(s, testClient, testUA, now, time.Hour)

	other, err := generateKey(now)
	if err != nil {
		t.Fatal(err)
	}
	foreignKey := func() string {
		c := passClaims{method: methodPoW, key: other.id, issued: now, expires: now.Add(time.Hour),
			prefix: prefixOf(testClient), uaHash: hashUA(testUA)}
		return signPass(&c, other.priv)
	}()
	// Signed with the unknown key but claiming the service's key id.
	forged := func() string {
		c := passClaims{method: methodPoW, key: s.keys.Load().signer().id, issued: now, expires: now.Add(time.Hour),
			prefix: prefixOf(testClient), uaHash: hashUA(testUA)}
		return signPass(&c, other.priv)
	}()

	tests := []struct {
		name   string
		value  string
		client string
		ua     string
		want   reason
	}{
		{"valid", good, "", "", ""},
		{"same /24 other host", good, "192.0.2.200", "", ""},
		{"ipv4-mapped client", good, "::ffff:192.0.2.10", "", ""},
		{"tampered payload", reencode(t, good, func(r *rawToken) { r[20] ^= 1 }), "", "", reasonTampered},
		{"tampered expiry", reencode(t, good, func(r *rawToken) { r[19]++ }), "", "", reasonTampered},
		{"tampered signature", reencode(t, good, func(r *rawToken) { r[tokenLen-1] ^= 0x80 }), "", "", reasonTampered},
		{"bad version", reencode(t, good, func(r *rawToken) { r[0] = 2 }), "", "", reasonTampered},
		{"bad method", reencode(t, good, func(r *rawToken) { r[1] = 9 }), "", "", reasonTampered},
		{"bad family", reencode(t, good, func(r *rawToken) { r[26] = 5 }), "", "", reasonTampered},
		{"forged signature", forged, "", "", reasonTampered},
		{"truncated", good[:len(good)-1], "", "", reasonTruncated},
		{"empty", "", "", "", reasonTruncated},
		{"oversized", good + "A", "", "", reasonOversized},
		{"huge", strings.Repeat("A", 10000), "", "", reasonOversized},
		{"bad base64 char", "!" + good[1:], "", "", reasonBadBase64},
		{"std alphabet", "+" + good[1:], "", "", reasonBadBase64},
		{"non-canonical tail", good[:len(good)-1] + "B", "", "", reasonBadBase64},
		{"expired", mint(s, testClient, testUA, now.Add(-2*time.Hour), time.Hour), "", "", reasonExpired},
		{"expires now", mint(s, testClient, testUA, now.Add(-time.Hour), time.Hour), "", "", reasonExpired},
		{"foreign prefix", good, "198.51.100.10", "", reasonForeignPrefix},
		{"neighbouring /24", good, "192.0.3.10", "", reasonForeignPrefix},
		{"ipv6 client for ipv4 pass", good, "2001:db8::1", "", reasonForeignPrefix},
		{"wrong ua", good, "", "curl/8.0", reasonWrongUA},
		{"unknown key", foreignKey, "", "", reasonUnknownKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client := testClient
			if tt.client != "" {
				client = netip.MustParseAddr(tt.client)
			}
			ua := testUA
			if tt.ua != "" {
				ua = tt.ua
			}
			if _, got := s.verifyPass(tt.value, client, ua, now); got != tt.want {
				t.Errorf("verifyPass = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestVerifyPassIPv6Prefix(t *testing.T) {
	s := newTestService(t, Config{}, nil)
	now := s.clock.Now()
	client := netip.MustParseAddr("2001:db8:1:2:aaaa::1")
	pass := mint(s, client, testUA, now, time.Hour)
	for addr, want := range map[string]reason{
		"2001:db8:1:2:bbbb::9": "",
		"2001:db8:1:3::1":      reasonForeignPrefix,
		"192.0.2.10":           reasonForeignPrefix,
	} {
		if _, got := s.verifyPass(pass, netip.MustParseAddr(addr), testUA, now); got != want {
			t.Errorf("%s: got %q, want %q", addr, got, want)
		}
	}
}

func TestCheckPassCountsOnlyPresentCookies(t *testing.T) {
	s := newTestService(t, Config{}, nil)
	if s.CheckPass(browserRequest(http.MethodGet, "/", nil), testClient) {
		t.Fatal("pass without a cookie")
	}
	if got := s.events.count(EventFailed, ""); got != 0 {
		t.Fatalf("no cookie produced %d failure events", got)
	}

	good := mint(s, testClient, testUA, s.clock.Now(), time.Hour)
	if !s.CheckPass(withPass(s, "/", good), testClient) {
		t.Fatal("valid pass refused")
	}
	if s.CheckPass(withPass(s, "/", good[:40]), testClient) {
		t.Fatal("truncated pass accepted")
	}
	if got := s.failures(passMethod, reasonTruncated); got != 1 {
		t.Errorf("truncated failures = %v, want 1", got)
	}
	if got := s.events.count(EventFailed, string(reasonTruncated)); got != 1 {
		t.Errorf("truncated events = %d, want 1", got)
	}

	// A stale cookie next to a good one (say, from an older deployment)
	// does not hide the good one.
	r := browserRequest(http.MethodGet, "/", nil)
	r.Header.Add("Cookie", s.cfg.CookieName+"=garbage; other=1; "+s.cfg.CookieName+`="`+good+`"`)
	if !s.CheckPass(r, testClient) {
		t.Error("good pass behind a stale cookie refused")
	}
}

func TestCheckPassCachesSignature(t *testing.T) {
	s := newTestService(t, Config{}, nil)
	good := mint(s, testClient, testUA, s.clock.Now(), time.Hour)
	r := withPass(s, "/", good)
	if !s.CheckPass(r, testClient) {
		t.Fatal("valid pass refused")
	}
	allocs := testing.AllocsPerRun(100, func() {
		if !s.CheckPass(r, testClient) {
			t.Fatal("valid pass refused")
		}
	})
	if allocs != 0 {
		t.Errorf("CheckPass allocates %v times per call", allocs)
	}
	// The cache remembers only the signature: expiry still applies.
	s.clock.Advance(2 * time.Hour)
	if s.CheckPass(r, testClient) {
		t.Error("expired cached pass accepted")
	}
}

func TestVerifiedCacheBounded(t *testing.T) {
	c := newVerifiedCache(4)
	var toks []rawToken
	for i := range 10 {
		var tk rawToken
		tk[0] = byte(i)
		toks = append(toks, tk)
		c.add(&toks[i])
	}
	if n := len(c.cur) + len(c.old); n > 8 {
		t.Fatalf("cache holds %d entries, limit 2×4", n)
	}
	if !c.contains(&toks[9]) {
		t.Error("newest entry missing")
	}
	if c.contains(&toks[0]) {
		t.Error("oldest entry kept")
	}
}

func TestKeyRotationOverlap(t *testing.T) {
	kv := openStore(t)
	s := newTestService(t, Config{KeyRotation: time.Hour, PassTTL: 24 * time.Hour}, kv)
	ctx := context.Background()
	first := s.keys.Load().signer().id

	// A pass signed just before rotation.
	s.clock.Advance(50 * time.Minute)
	old := mint(s, testClient, testUA, s.clock.Now(), s.cfg.PassTTL)

	s.clock.Advance(11 * time.Minute)
	if err := s.maintainKeys(ctx); err != nil {
		t.Fatal(err)
	}
	ring := s.keys.Load()
	if ring.signer().id == first {
		t.Fatal("key not rotated after KeyRotation")
	}
	if len(ring.keys) != 2 {
		t.Fatalf("keyring has %d keys, want current + previous", len(ring.keys))
	}
	fresh := mint(s, testClient, testUA, s.clock.Now(), s.cfg.PassTTL)

	// A second instance over the same store loads the same keyring and
	// does not rotate again.
	other := newTestService(t, Config{KeyRotation: time.Hour, PassTTL: 24 * time.Hour}, kv)
	other.clock.Advance(s.clock.Now().Sub(other.clock.Now()))
	if err := other.maintainKeys(ctx); err != nil {
		t.Fatal(err)
	}
	if other.keys.Load().signer().id != ring.signer().id {
		t.Fatal("instances disagree on the signing key")
	}

	s.clock.Advance(time.Hour)
	for _, srv := range []*testService{s, other} {
		srv.clock.Advance(s.clock.Now().Sub(srv.clock.Now()))
		if _, why := srv.verifyPass(old, testClient, testUA, srv.clock.Now()); why != "" {
			t.Errorf("pass of the previous key refused during overlap: %s", why)
		}
		if _, why := srv.verifyPass(fresh, testClient, testUA, srv.clock.Now()); why != "" {
			t.Errorf("pass of the current key refused: %s", why)
		}
	}

	// Once the old pass has expired it is refused, and after the next
	// rotations the old key leaves the ring altogether.
	s.clock.Advance(23 * time.Hour)
	if _, why := s.verifyPass(old, testClient, testUA, s.clock.Now()); why != reasonExpired {
		t.Errorf("old pass after expiry: %q, want expired", why)
	}
	s.clock.Advance(2 * time.Hour)
	if err := s.maintainKeys(ctx); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.keys.Load().lookup(first); ok {
		t.Error("retired key still in the ring after its passes expired")
	}
	if _, why := s.verifyPass(old, testClient, testUA, s.clock.Now()); why != reasonUnknownKey {
		t.Errorf("old pass after key removal: %q, want unknown_key", why)
	}
}

func TestKeyFile(t *testing.T) {
	dir := t.TempDir()
	// openssl genpkey -algorithm ed25519 (RFC 8410 test key).
	pemKey := "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEINTuctv5E1hK1bbY8fdp+K06/nwoy/HU++CXqI9EdVhC\n-----END PRIVATE KEY-----\n"
	seedHex := strings.Repeat("ab", 32)
	files := map[string]string{
		"pem":  pemKey,
		"hex":  seedHex + "\n",
		"two":  pemKey + pemKey,
		"bad":  "not a key",
		"cert": "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
	}
	for name, content := range files {
		path := dir + "/" + name
		if err := writeFile(path, content); err != nil {
			t.Fatal(err)
		}
		r, err := loadKeyFile(path)
		switch name {
		case "bad", "cert":
			if err == nil {
				t.Errorf("%s: loaded", name)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if name == "hex" {
			want, _ := hex.DecodeString(seedHex)
			if string(r.signer().priv.Seed()) != string(want) {
				t.Errorf("hex seed not used")
			}
		}
	}

	path := dir + "/pem"
	s := newTestService(t, Config{KeyFile: path}, nil)
	if !s.staticKeys {
		t.Fatal("key file not used")
	}
	good := mint(s, testClient, testUA, s.clock.Now(), time.Hour)
	if _, why := s.verifyPass(good, testClient, testUA, s.clock.Now()); why != "" {
		t.Errorf("pass refused: %s", why)
	}
}

func TestPassCookieAttributes(t *testing.T) {
	s := newTestService(t, Config{Secure: true}, nil)
	w := httptest.NewRecorder()
	s.issuePass(w, methodPoW, testClient, testUA)
	cookies := w.Result().Cookies()
	if len(cookies) != 1 {
		t.Fatalf("%d cookies", len(cookies))
	}
	c := cookies[0]
	if c.Name != "scrapedefense_pass" || c.Path != "/" || !c.HttpOnly || !c.Secure || c.SameSite != http.SameSiteLaxMode || c.MaxAge != 86400 {
		t.Errorf("cookie attributes: %+v", c)
	}
	if len(c.Value) != tokenEncodedLen {
		t.Errorf("token length %d, want %d", len(c.Value), tokenEncodedLen)
	}
}
