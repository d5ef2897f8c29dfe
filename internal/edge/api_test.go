package edge

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/scrapedefense/scrapedefense/internal/decision"
)

// apiCall sends an authenticated API request with a JSON body.
func apiCall(t *testing.T, te *testEdge, method, path, body string) response {
	t.Helper()
	h := http.Header{"Authorization": {"Bearer " + testToken}}
	var r *strings.Reader
	if body != "" {
		h.Set("Content-Type", "application/json")
		r = strings.NewReader(body)
	}
	if r == nil {
		return do(t, client(t, ""), method, te.admin+path, h, nil)
	}
	return do(t, client(t, ""), method, te.admin+path, h, r)
}

// checkAPIError checks a JSON error answer: the status, and a body with
// exactly the fields code and message.
func checkAPIError(t *testing.T, resp response, status int, code string) {
	t.Helper()
	if resp.code != status {
		t.Fatalf("status %d, want %d (%s)", resp.code, status, resp.body)
	}
	if ct := resp.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	var body map[string]any
	if err := json.Unmarshal([]byte(resp.body), &body); err != nil {
		t.Fatalf("error body %q: %v", resp.body, err)
	}
	msg, _ := body["message"].(string)
	if len(body) != 2 || body["code"] != code || msg == "" {
		t.Errorf("error body = %s, want {\"code\":%q,\"message\":...}", resp.body, code)
	}
}

func TestAPIAuth(t *testing.T) {
	t.Parallel()
	te := startEdge(t, "", nil)
	tests := []struct {
		name string
		auth []string
	}{
		{"no header", nil},
		{"empty bearer", []string{"Bearer "}},
		{"wrong token", []string{"Bearer wrong-token"}},
		{"token prefix", []string{"Bearer " + testToken[:len(testToken)-1]}},
		{"token with suffix", []string{"Bearer " + testToken + "x"}},
		{"other scheme", []string{"Basic " + testToken}},
		{"lower-case scheme", []string{"bearer " + testToken}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, path := range []string{"/api/v1/decisions", "/api/v1/events/recent", "/api/v1/nowhere"} {
				h := http.Header{}
				if tt.auth != nil {
					h["Authorization"] = tt.auth
				}
				resp := do(t, client(t, ""), http.MethodGet, te.admin+path, h, nil)
				checkAPIError(t, resp, http.StatusUnauthorized, "unauthorized")
			}
		})
	}
	if resp := apiCall(t, te, http.MethodGet, "/api/v1/decisions", ""); resp.code != http.StatusOK {
		t.Errorf("right token: %d", resp.code)
	}
}

func TestAPIDecisions(t *testing.T) {
	t.Parallel()
	te, _ := startProxyEdge(t, nil)

	// Add.
	resp := apiCall(t, te, http.MethodPost, "/api/v1/decisions",
		`{"value":"198.51.100.0/24","action":"block","ttl":"1h","reason":"scraper"}`)
	if resp.code != http.StatusCreated {
		t.Fatalf("add: %d %s", resp.code, resp.body)
	}
	var added decision.Decision
	if err := json.Unmarshal([]byte(resp.body), &added); err != nil {
		t.Fatal(err)
	}
	if added.Scope != decision.ScopeCIDR || added.Value != "198.51.100.0/24" || added.Action != decision.ActionBlock ||
		added.Source != "api" || added.Reason != "scraper" {
		t.Errorf("added = %+v", added)
	}
	if ttl := added.Expires.Sub(added.Created); ttl != time.Hour {
		t.Errorf("expires %v after creation, want 1h", ttl)
	}

	// List.
	resp = apiCall(t, te, http.MethodGet, "/api/v1/decisions", "")
	if resp.code != http.StatusOK {
		t.Fatalf("list: %d %s", resp.code, resp.body)
	}
	var list []decision.Decision
	if err := json.Unmarshal([]byte(resp.body), &list); err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].Value != "198.51.100.0/24" {
		t.Errorf("list = %+v", list)
	}

	// Delete, twice.
	if resp = apiCall(t, te, http.MethodDelete, "/api/v1/decisions?value=198.51.100.0/24", ""); resp.code != http.StatusNoContent {
		t.Fatalf("delete: %d %s", resp.code, resp.body)
	}
	checkAPIError(t, apiCall(t, te, http.MethodDelete, "/api/v1/decisions?value=198.51.100.0/24", ""), http.StatusNotFound, "not_found")
	checkAPIError(t, apiCall(t, te, http.MethodDelete, "/api/v1/decisions?value=nonsense", ""), http.StatusBadRequest, "invalid_value")

	resp = apiCall(t, te, http.MethodGet, "/api/v1/decisions", "")
	if resp.code != http.StatusOK || strings.TrimSpace(resp.body) != "[]" {
		t.Errorf("list after delete: %d %s", resp.code, resp.body)
	}
}

func TestAPIBadRequests(t *testing.T) {
	t.Parallel()
	te := startEdge(t, "", nil)
	tests := []struct {
		name   string
		path   string
		body   string
		status int
		code   string
	}{
		{"not JSON", "/api/v1/decisions", `{"value":`, http.StatusBadRequest, "invalid_json"},
		{"wrong type", "/api/v1/decisions", `{"value":1,"action":"block"}`, http.StatusBadRequest, "invalid_json"},
		{"unknown field", "/api/v1/decisions", `{"value":"192.0.2.1","action":"block","expires":"tomorrow"}`, http.StatusBadRequest, "invalid_json"},
		{"bad value", "/api/v1/decisions", `{"value":"192.0.2.300","action":"block"}`, http.StatusBadRequest, "invalid_decision"},
		{"bad action", "/api/v1/decisions", `{"value":"192.0.2.1","action":"obliterate"}`, http.StatusBadRequest, "invalid_decision"},
		{"action none", "/api/v1/decisions", `{"value":"192.0.2.1","action":"none"}`, http.StatusBadRequest, "invalid_decision"},
		{"negative ttl", "/api/v1/decisions", `{"value":"192.0.2.1","action":"block","ttl":"-1h"}`, http.StatusBadRequest, "invalid_decision"},
		{"bad ttl", "/api/v1/decisions", `{"value":"192.0.2.1","action":"block","ttl":"soon"}`, http.StatusBadRequest, "invalid_decision"},
		{"oversized body", "/api/v1/decisions", `{"value":"192.0.2.1","action":"block","reason":"` + strings.Repeat("a", 70<<10) + `"}`,
			http.StatusRequestEntityTooLarge, "body_too_large"},
		{"explain: bad ip", "/api/v1/explain", `{"ip":"somewhere"}`, http.StatusBadRequest, "invalid_request"},
		{"explain: unknown field", "/api/v1/explain", `{"ip":"192.0.2.1","cookie":"x"}`, http.StatusBadRequest, "invalid_json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkAPIError(t, apiCall(t, te, http.MethodPost, tt.path, tt.body), tt.status, tt.code)
		})
	}
	t.Run("unknown field is named", func(t *testing.T) {
		resp := apiCall(t, te, http.MethodPost, "/api/v1/decisions", `{"value":"192.0.2.1","action":"block","expires":"x"}`)
		if !strings.Contains(resp.body, "expires") {
			t.Errorf("message does not name the unknown field: %s", resp.body)
		}
	})
	// Nothing above may have reached the store.
	if resp := apiCall(t, te, http.MethodGet, "/api/v1/decisions", ""); strings.TrimSpace(resp.body) != "[]" {
		t.Errorf("store holds decisions after bad requests: %s", resp.body)
	}
}

func TestAPIExplain(t *testing.T) {
	t.Parallel()
	te := startEdge(t, "", nil)
	body := `{"ip":"` + gptbotAddr.String() + `","path":"/articles/1","user_agent":"` + gptbotUA + `","headers":{"Accept":"*/*"}}`
	resp := apiCall(t, te, http.MethodPost, "/api/v1/explain", body)
	if resp.code != http.StatusOK {
		t.Fatalf("explain: %d %s", resp.code, resp.body)
	}
	if ct := resp.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("Content-Type = %q", ct)
	}
	for _, want := range []string{
		"request: GET /articles/1 from " + gptbotAddr.String(),
		"verdict: block\n",
		"decided by: policy (ai-crawlers)\n",
		"crawler: gptbot, verified",
	} {
		if !strings.Contains(resp.body, want) {
			t.Errorf("explanation lacks %q:\n%s", want, resp.body)
		}
	}
}

// TestAPIDecisionEnforced checks that a decision added through the API
// applies on the public listener at once, without waiting for the store's
// watch.
func TestAPIDecisionEnforced(t *testing.T) {
	t.Parallel()
	te, _ := startProxyEdge(t, nil)
	c := client(t, "")
	if resp := do(t, c, http.MethodGet, te.public+"/", browserHeader(), nil); resp.code != http.StatusOK {
		t.Fatalf("before the decision: %d", resp.code)
	}
	if resp := apiCall(t, te, http.MethodPost, "/api/v1/decisions", `{"value":"127.0.0.1","action":"block","reason":"test"}`); resp.code != http.StatusCreated {
		t.Fatalf("add: %d %s", resp.code, resp.body)
	}
	if resp := do(t, c, http.MethodGet, te.public+"/", browserHeader(), nil); resp.code != http.StatusForbidden {
		t.Fatalf("right after the decision: %d, want 403", resp.code)
	}
	if resp := apiCall(t, te, http.MethodDelete, "/api/v1/decisions?value=127.0.0.1", ""); resp.code != http.StatusNoContent {
		t.Fatalf("delete: %d %s", resp.code, resp.body)
	}
	// The store's watch may still replay the put once before the delete.
	eventually(t, 5*time.Second, "the deleted decision to stop applying", func() bool {
		return do(t, c, http.MethodGet, te.public+"/", browserHeader(), nil).code == http.StatusOK
	})
}
