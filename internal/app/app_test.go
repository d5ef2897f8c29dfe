package app

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/scrapedefense/scrapedefense/internal/config"
)

func TestAPITokenGeneratedOnceWithPrivateMode(t *testing.T) {
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	if _, err := APIToken(cfg, false); err == nil {
		t.Fatal("a missing token must be an error when not creating")
	}
	tok, err := APIToken(cfg, true)
	if err != nil || len(tok) != 64 {
		t.Fatalf("APIToken = %q, %v", tok, err)
	}
	again, err := APIToken(cfg, true)
	if err != nil || again != tok {
		t.Fatalf("second call = %q, %v; want the same token", again, err)
	}
	st, err := os.Stat(filepath.Join(cfg.DataDir, "api.token"))
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("token file mode %v, want 0600", st.Mode().Perm())
	}
}

func TestAPITokenFromFile(t *testing.T) {
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.API.TokenFile = filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(cfg.API.TokenFile, []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if tok, err := APIToken(cfg, true); err != nil || tok != "from-file" {
		t.Fatalf("APIToken = %q, %v", tok, err)
	}
}

func TestDisplayAddr(t *testing.T) {
	tests := map[string]string{
		":8080":          "localhost:8080",
		"[::]:8080":      "localhost:8080",
		"0.0.0.0:80":     "localhost:80",
		"127.0.0.1:9080": "127.0.0.1:9080",
		"[::1]:9080":     "[::1]:9080",
		"garbage":        "garbage",
	}
	for in, want := range tests {
		if got := displayAddr(in); got != want {
			t.Errorf("displayAddr(%q) = %q, want %q", in, got, want)
		}
	}
}
