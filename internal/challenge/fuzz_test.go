package challenge

import (
	"context"
	"encoding/hex"
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

// fuzzGoodRecord is a proof-of-work record for testClient and testUA,
// sealed by the fuzz service: fixed id, seed and clock make it the same on
// every run, so that a committed seed can carry it.
func fuzzGoodRecord(s *Service) (sealed, nonce string) {
	signer := s.keys.Load().signer()
	rec := record{method: methodPoW, difficulty: 8, key: signer.id, issued: fuzzEpoch,
		expires: fuzzEpoch.Add(s.cfg.ChallengeTTL), wait: s.cfg.NoJSFallbackWait,
		prefix: prefixOf(testClient), uaHash: hashUA(testUA), returnTo: "/fuzz"}
	for i := range rec.id {
		rec.id[i], rec.seed[i], rec.browser[i] = byte(i), byte(0x80+i), 0x5a
	}
	for n := 0; ; n++ {
		nonce = strconv.Itoa(n)
		if enoughWork(&rec.seed, nonce, rec.difficulty) {
			break
		}
	}
	return string(rec.seal(nil, signer.mac)), nonce
}

// FuzzVerifyForm feeds the verify form and the no-JS query with arbitrary
// bytes: nothing but the one genuine record with enough work may earn a
// pass, and nothing may panic.
func FuzzVerifyForm(f *testing.F) {
	s := fuzzService(f)
	good, nonce := fuzzGoodRecord(s)
	for _, seed := range []string{
		"challenge=" + good + "&nonce=" + nonce + "&difficulty=8",
		"challenge=" + good + "&nonce=12345&difficulty=8",
		"challenge=" + good + "&nonce=18446744073709551616&difficulty=8",
		"challenge=" + good + "&nonce=abc&difficulty=8",
		"challenge=" + good + "&nonce=1&nonce=2&difficulty=8",
		"challenge=" + good[:len(good)-1] + "&nonce=" + nonce + "&difficulty=8",
		"challenge=%zz&nonce=1&difficulty=8",
		"challenge=" + good + ";nonce=1",
		"difficulty=99",
		"",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		form, why := parseVerifyForm(body)
		if why == "" {
			if !isRecordText(form.challenge) || form.nonce == "" || len(form.nonce) > 20 || !isDigits(form.nonce) ||
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
			if why != "" || form.challenge != good || form.difficulty != 8 || workBits(hexSeed(s, good), form.nonce) < 8 {
				t.Fatalf("pass issued for %q", body)
			}
		}

		// The same bytes as the no-JS query: the fuzz service's records
		// need the browser cookie, which this request lacks.
		r = httptest.NewRequest(http.MethodGet, Prefix+"nojs", nil)
		r.URL.RawQuery = string(body)
		r.Header.Set("User-Agent", testUA)
		w = httptest.NewRecorder()
		s.ServeEndpoint(w, r, testClient)
		if w.Code == http.StatusSeeOther || len(w.Result().Cookies()) != 0 {
			t.Fatalf("no-JS pass issued for %q", body)
		}
	})
}

// hexSeed is the proof-of-work prefix of a genuine sealed record.
func hexSeed(s *Service, sealed string) string {
	rec, why := s.openRecord(sealed)
	if why != "" {
		return ""
	}
	return hex.EncodeToString(rec.seed[:])
}

// TestFuzzSeedRecordIsValid keeps the committed "valid" seed a real,
// solved record, so that the fuzzer starts from inside the accepting path.
func TestFuzzSeedRecordIsValid(t *testing.T) {
	data, err := os.ReadFile("testdata/fuzz/FuzzVerifyForm/valid")
	if err != nil {
		t.Fatal(err)
	}
	s := fuzzService(t)
	good, nonce := fuzzGoodRecord(s)
	body := "challenge=" + good + "&nonce=" + nonce + "&difficulty=8"
	if !strings.Contains(string(data), strconv.Quote(body)) {
		t.Fatalf("seed corpus record is stale; want %s", body)
	}
	r := httptest.NewRequest(http.MethodPost, Prefix+"verify", strings.NewReader(body))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.Header.Set("User-Agent", testUA)
	w := httptest.NewRecorder()
	s.ServeEndpoint(w, r, testClient)
	if w.Code != http.StatusSeeOther {
		t.Errorf("seed solution refused: %d", w.Code)
	}
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
