package aiservice

import (
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// signScript is the signing recipe of docs/webhook.md; the test keeps the
// documentation honest.
const signScript = `{ printf '%s.' "$t"; cat "$body_file"; } | openssl dgst -sha256 -hmac "$secret" | awk '{print $NF}'`

func TestOpenSSLRecipeMatches(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("openssl not installed")
	}
	hs := newHarness(t, nil)
	body := eventsBody(t, event())
	file := filepath.Join(t.TempDir(), "body.json")
	if err := os.WriteFile(file, body, 0o600); err != nil {
		t.Fatal(err)
	}
	ts := strconv.FormatInt(hs.now.Unix(), 10)
	cmd := exec.Command("sh", "-c", signScript)
	cmd.Env = append(os.Environ(), "t="+ts, "body_file="+file, "secret="+string(testSecret))
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("openssl: %v", err)
	}
	r := hs.signed(RouteWebhook, body)
	r.Header.Set(HeaderSignature, "t="+ts+",v1="+strings.TrimSpace(string(out)))
	if w := hs.do(r); w.Code != http.StatusAccepted {
		t.Fatalf("openssl-signed request: %d %s", w.Code, w.Body)
	}
}
