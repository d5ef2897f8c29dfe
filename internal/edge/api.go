package edge

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/scrapedefense/scrapedefense/internal/decision"
	"github.com/scrapedefense/scrapedefense/internal/events"
	"github.com/scrapedefense/scrapedefense/internal/pipeline"
	"github.com/scrapedefense/scrapedefense/internal/policy"
	"github.com/scrapedefense/scrapedefense/internal/store"
)

// API is the decisions and explain API on the admin listener, used by the
// `scrapedefense decisions` and `explain` commands while a server runs.
type API struct {
	token  string
	store  store.Store
	fp     *FastPath
	recent *events.Recent
	now    func() time.Time
}

// maxAPIBody bounds request bodies of the API.
const maxAPIBody = 64 << 10

// AddDecisionRequest is the body of POST /api/v1/decisions.
type AddDecisionRequest struct {
	Value  string `json:"value"`
	Action string `json:"action"`
	TTL    string `json:"ttl,omitempty"` // Go duration; empty: never expires
	Reason string `json:"reason,omitempty"`
	Source string `json:"source,omitempty"`
}

// ExplainRequest is the body of POST /api/v1/explain.
type ExplainRequest struct {
	IP        string            `json:"ip"`
	Method    string            `json:"method,omitempty"`
	Host      string            `json:"host,omitempty"`
	Path      string            `json:"path,omitempty"`
	UserAgent string            `json:"user_agent,omitempty"`
	Headers   map[string]string `json:"headers,omitempty"`
}

// Handler routes the API.
func (a *API) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/decisions", a.listDecisions)
	mux.HandleFunc("POST /api/v1/decisions", a.addDecision)
	mux.HandleFunc("DELETE /api/v1/decisions", a.deleteDecision)
	mux.HandleFunc("POST /api/v1/explain", a.explain)
	mux.HandleFunc("GET /api/v1/events/recent", a.recentEvents)
	mux.HandleFunc("GET /api/v1/history", a.history)
	return a.authenticate(mux)
}

func (a *API) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(a.token)) != 1 {
			writeError(w, http.StatusUnauthorized, "unauthorized", "missing or wrong bearer token")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// history returns a client's recent events and escalation verdicts.
func (a *API) history(w http.ResponseWriter, r *http.Request) {
	ip, err := netip.ParseAddr(r.URL.Query().Get("ip"))
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalid_ip", "ip must be an address")
		return
	}
	recs, err := pipeline.History(r.Context(), a.store, ip.Unmap().String(), 0)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "store_error", err.Error())
		return
	}
	writeJSON(w, http.StatusOK, recs)
}

func (a *API) listDecisions(w http.ResponseWriter, r *http.Request) {
	ds, err := a.store.ListDecisions(r.Context())
	if err != nil {
		writeError(w, http.StatusInternalServerError, "store_error", err.Error())
		return
	}
	if ds == nil {
		ds = []decision.Decision{} // an empty list is [], not null
	}
	writeJSON(w, http.StatusOK, ds)
}

func (a *API) addDecision(w http.ResponseWriter, r *http.Request) {
	var req AddDecisionRequest
	if !decodeBody(w, r, &req) {
		return
	}
	d, err := DecisionFromRequest(req, "api", a.now())
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalid_decision", err.Error())
		return
	}
	if err := a.store.PutDecision(r.Context(), d); err != nil {
		writeError(w, http.StatusInternalServerError, "store_error", err.Error())
		return
	}
	// Enforce at once rather than on the watch's schedule.
	_ = a.fp.Index().Upsert(d)
	writeJSON(w, http.StatusCreated, d)
}

// DecisionFromRequest validates an API or CLI request into a decision.
func DecisionFromRequest(req AddDecisionRequest, defaultSource string, now time.Time) (decision.Decision, error) {
	action, err := decision.ParseAction(req.Action)
	if err != nil {
		return decision.Decision{}, err
	}
	var ttl time.Duration
	if req.TTL != "" {
		if ttl, err = time.ParseDuration(req.TTL); err != nil || ttl <= 0 {
			return decision.Decision{}, fmt.Errorf("invalid ttl %q: want a positive duration such as 1h", req.TTL)
		}
	}
	source := req.Source
	if source == "" {
		source = defaultSource
	}
	return decision.New(req.Value, action, req.Reason, source, ttl, now)
}

func (a *API) deleteDecision(w http.ResponseWriter, r *http.Request) {
	p, err := decision.ParsePrefix(r.URL.Query().Get("value"))
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalid_value", err.Error())
		return
	}
	found, err := a.store.DeleteDecision(r.Context(), p.String())
	if err != nil {
		writeError(w, http.StatusInternalServerError, "store_error", err.Error())
		return
	}
	a.fp.Index().Delete(p)
	if !found {
		writeError(w, http.StatusNotFound, "not_found", "no decision for "+p.String())
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (a *API) explain(w http.ResponseWriter, r *http.Request) {
	var req ExplainRequest
	if !decodeBody(w, r, &req) {
		return
	}
	text, err := Explain(a.fp, req, a.now())
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalid_request", err.Error())
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = io.WriteString(w, text)
}

// Explain runs the fast path for a described request without charging the
// rate limiter and returns the explanation text. The CLI and the API share it.
func Explain(fp *FastPath, req ExplainRequest, now time.Time) (string, error) {
	addr, err := netip.ParseAddr(req.IP)
	if err != nil {
		return "", fmt.Errorf("invalid ip %q", req.IP)
	}
	h := make(http.Header, len(req.Headers)+1)
	for k, v := range req.Headers {
		h.Set(k, v)
	}
	if req.UserAgent != "" {
		h.Set("User-Agent", req.UserAgent)
	}
	pr := policy.Request{
		Addr:      addr.Unmap(),
		Method:    orDefault(strings.ToUpper(req.Method), http.MethodGet),
		Host:      req.Host,
		Path:      orDefault(req.Path, "/"),
		UserAgent: h.Get("User-Agent"),
		Header:    h,
	}
	var v Verdict
	fp.Decide(&pr, now, false, &v)
	var b strings.Builder
	fmt.Fprintf(&b, "request: %s %s from %s, user agent %q\n", pr.Method, pr.Path, pr.Addr, pr.UserAgent)
	v.Explain(&b)
	return b.String(), nil
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func (a *API) recentEvents(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, a.recent.List())
}

func decodeBody(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxAPIBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeError(w, http.StatusRequestEntityTooLarge, "body_too_large", err.Error())
		} else {
			writeError(w, http.StatusBadRequest, "invalid_json", err.Error())
		}
		return false
	}
	return true
}

// apiError is the machine-readable error body of the API.
type apiError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, apiError{Code: code, Message: msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
