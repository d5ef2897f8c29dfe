package challenge

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// fuzzEpoch is the fixed time of the fuzz service, so that the seed token
// in testdata stays valid.
var fuzzEpoch = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

// fuzzService has a fixed key and clock: the same claims always give the
// same token (Ed25519 is deterministic).
func fuzzService(f testing.TB) *Service {
	f.Helper()
	keyFile := filepath.Join(f.TempDir(), "key")
	if err := writeFile(keyFile, strings.Repeat("5a", 32)); err != nil {
		f.Fatal(err)
	}
	s, err := newService(context.Background(), Config{KeyFile: keyFile, MinDifficulty: 8, MaxDifficulty: 8},
		openStore(f), prometheus.NewRegistry(), nil, nil, func() time.Time { return fuzzEpoch })
	if err != nil {
		f.Fatal(err)
	}
	return s
}

// fuzzGoodToken is the one valid pass for testClient and testUA.
func fuzzGoodToken(s *Service) string {
	signer := s.keys.Load().signer()
	c := passClaims{method: methodPoW, key: signer.id, issued: fuzzEpoch, expires: fuzzEpoch.Add(time.Hour),
		prefix: prefixOf(testClient), uaHash: hashUA(testUA)}
	return signPass(&c, signer.priv)
}

func FuzzParseToken(f *testing.F) {
	s := fuzzService(f)
	good := fuzzGoodToken(s)
	f.Add(good)
	f.Add(good[:len(good)-1])
	f.Add(good + "A")
	f.Add("")
	f.Add(strings.Repeat("A", tokenEncodedLen))
	f.Add(strings.Repeat("_", tokenEncodedLen))
	f.Add(`"` + good + `"`)
	f.Fuzz(func(t *testing.T, value string) {
		var raw rawToken
		why := parseToken(value, &raw)
		if why == "" && tokenEncoding.EncodeToString(raw[:]) != value {
			t.Fatalf("accepted a non-canonical encoding %q", value)
		}
		if _, why := s.verifyPass(value, testClient, testUA, fuzzEpoch); why == "" && value != good {
			t.Fatalf("forged pass accepted: %q", value)
		}
		// The cookie scanner sees the value inside a header line too.
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Header.Set("User-Agent", testUA)
		r.Header.Set("Cookie", s.cfg.CookieName+"="+value)
		if s.CheckPass(r, testClient) && value != good && strings.Trim(value, `"`) != good && !strings.Contains(value, good) {
			t.Fatalf("CheckPass accepted %q", value)
		}
	})
}

func FuzzVerifyForm(f *testing.F) {
	s := fuzzService(f)
	id := strings.Repeat("0f", 16)
	for _, seed := range []string{
		"id=" + id + "&nonce=12345&difficulty=8",
		"id=" + id + "&nonce=18446744073709551616&difficulty=8",
		"id=" + id + "&nonce=abc&difficulty=8",
		"id=" + id + "&nonce=1&nonce=2&difficulty=8",
		"id=%zz&nonce=1&difficulty=8",
		"id=" + id + ";nonce=1",
		"difficulty=99",
		"",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		form, why := parseVerifyForm(body)
		if why == "" {
			if !isHexID(form.id) || form.nonce == "" || len(form.nonce) > 20 || !isDigits(form.nonce) ||
				form.difficulty < minAllowedDifficulty || form.difficulty > maxAllowedDifficulty {
				t.Fatalf("accepted invalid form %+v from %q", form, body)
			}
		}
		r := httptest.NewRequest(http.MethodPost, Prefix+"verify", strings.NewReader(string(body)))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.Header.Set("User-Agent", testUA)
		w := httptest.NewRecorder()
		s.ServeEndpoint(w, r, testClient)
		if w.Code == http.StatusSeeOther || len(w.Result().Cookies()) != 0 {
			t.Fatalf("pass issued for %q", body)
		}
	})
}

// TestFuzzSeedTokenIsValid keeps the committed "valid" seed a real pass, so
// that the fuzzer starts from inside the accepting path.
func TestFuzzSeedTokenIsValid(t *testing.T) {
	data, err := os.ReadFile("testdata/fuzz/FuzzParseToken/valid")
	if err != nil {
		t.Fatal(err)
	}
	s := fuzzService(t)
	if want := fuzzGoodToken(s); !strings.Contains(string(data), strconv.Quote(want)) {
		t.Errorf("seed corpus token is stale; want %s", want)
	}
}
