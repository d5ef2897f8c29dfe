package main

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/scrapedefense/scrapedefense/internal/hmacsig"
	"github.com/scrapedefense/scrapedefense/internal/notify/smtptest"
)

// receiver records the bodies POSTed to it (the far side of an outbound
// call: Slack, PagerDuty, a webhook consumer).
type receiver struct {
	srv    *httptest.Server
	mu     sync.Mutex
	bodies []string
}

func newReceiver(t *testing.T, check func(r *http.Request, body []byte) bool) *receiver {
	t.Helper()
	rc := &receiver{}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if check != nil && !check(r, body) {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		rc.mu.Lock()
		rc.bodies = append(rc.bodies, string(body))
		rc.mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

// mentioning counts the bodies that mention s.
func (rc *receiver) mentioning(s string) int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	n := 0
	for _, b := range rc.bodies {
		if strings.Contains(b, s) {
			n++
		}
	}
	return n
}

func writeSecret(t *testing.T, name, value string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(value+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestAlertsReachEveryChannelOnce: a block verdict is announced once on the
// signed webhook, Slack, PagerDuty and by mail; another verdict for the same
// client within the window is folded into the window's summary, not sent
// again at once.
func TestAlertsReachEveryChannelOnce(t *testing.T) {
	t.Parallel()
	const webhookSecret = "alert-webhook-secret-0123456789"
	hook := newReceiver(t, func(r *http.Request, body []byte) bool {
		return hmacsig.Verify([]byte(webhookSecret), r.Header.Get(hmacsig.Header), body, time.Now(), time.Minute) == nil
	})
	slack := newReceiver(t, nil)
	pd := newReceiver(t, nil)
	mail := smtptest.New(t, false)
	senderSecret := []byte("shipper-secret-0123456789abcdef!")

	s := startPipeline(t,
		"SCRAPEDEFENSE_AI_SENDERS=shipper:"+writeSecret(t, "shipper", string(senderSecret)),
		"SCRAPEDEFENSE_ALERTS_ALLOW_PRIVATE_DESTINATIONS=true", // the receivers are on loopback
		"SCRAPEDEFENSE_ALERTS_WINDOW=1h",
		"SCRAPEDEFENSE_ALERTS_WEBHOOK_URL="+hook.srv.URL+"/alerts",
		"SCRAPEDEFENSE_ALERTS_WEBHOOK_SECRET_FILE="+writeSecret(t, "hook", webhookSecret),
		"SCRAPEDEFENSE_ALERTS_SLACK_URL_FILE="+writeSecret(t, "slack", slack.srv.URL+"/services/T000/B000/XXXX"),
		"SCRAPEDEFENSE_ALERTS_PAGERDUTY_URL="+pd.srv.URL+"/v2/enqueue",
		"SCRAPEDEFENSE_ALERTS_PAGERDUTY_ROUTING_KEY_FILE="+writeSecret(t, "pd", "R0UT1NGK3Y"),
		"SCRAPEDEFENSE_ALERTS_SMTP_ADDR="+mail.Addr,
		"SCRAPEDEFENSE_ALERTS_SMTP_FROM=scrapedefense@example.org",
		"SCRAPEDEFENSE_ALERTS_SMTP_TO=ops@example.org",
		"SCRAPEDEFENSE_ALERTS_SMTP_INSECURE_NO_TLS=true",
	)
	const ip = "192.0.2.66"
	webhook := "http://" + s.ai + "/webhook"
	if code := postWebhook(t, webhook, "shipper", senderSecret, libraryEvents(ip, 3)); code != http.StatusAccepted {
		t.Fatalf("webhook: %d", code)
	}
	mailed := func() int {
		n := 0
		for _, ss := range mail.Sessions() {
			if strings.Contains(ss.Data, ip) {
				n++
			}
		}
		return n
	}
	deadline := time.Now().Add(10 * time.Second)
	for hook.mentioning(ip) == 0 || slack.mentioning(ip) == 0 || pd.mentioning(ip) == 0 || mailed() == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("alerts after 10 s: webhook %d, slack %d, pagerduty %d, mail %d\n%s",
				hook.mentioning(ip), slack.mentioning(ip), pd.mentioning(ip), mailed(), s.stderr)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !strings.Contains(strings.Join(pd.bodies, ""), `"routing_key":"R0UT1NGK3Y"`) {
		t.Errorf("PagerDuty event without the routing key: %v", pd.bodies)
	}

	// The operator lifts the block, the client comes back and is blocked
	// again: a second verdict for the same client inside the window.
	s.cli("decisions", "delete", ip)
	if code := postWebhook(t, webhook, "shipper", senderSecret, libraryEvents(ip, 3)); code != http.StatusAccepted {
		t.Fatalf("webhook: %d", code)
	}
	for !strings.Contains(s.cli("decisions", "list"), ip) {
		if time.Now().After(deadline) {
			t.Fatal("the second verdict was not enforced")
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(time.Second) // time for a wrongly undeduplicated alert to arrive
	for name, n := range map[string]int{"webhook": hook.mentioning(ip), "slack": slack.mentioning(ip), "pagerduty": pd.mentioning(ip), "mail": mailed()} {
		if n != 1 {
			t.Errorf("%s received %d alerts for %s, want 1", name, n, ip)
		}
	}
	if secret := "R0UT1NGK3Y"; strings.Contains(s.stderr.String(), secret) {
		t.Error("the PagerDuty routing key appears in the logs")
	}
}

// TestHangingClassifierDoesNotDelayVerdicts: with an LLM endpoint that never
// answers, the stealth scraper is still blocked as fast, and every verdict
// stays within the escalation SLO (1.5 s from queue to verdict).
func TestHangingClassifierDoesNotDelayVerdicts(t *testing.T) {
	t.Parallel()
	stop := make(chan struct{})
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Read the request so that the server notices when the client
		// gives up, then never answer.
		_, _ = io.Copy(io.Discard, r.Body)
		select {
		case <-r.Context().Done():
		case <-stop:
		}
	}))
	t.Cleanup(func() { close(stop); hang.Close() })
	s := startPipeline(t,
		"SCRAPEDEFENSE_ESCALATION_CLASSIFIER_KIND=openai",
		"SCRAPEDEFENSE_ESCALATION_CLASSIFIER_URL="+hang.URL,
		"SCRAPEDEFENSE_ESCALATION_CLASSIFIER_MODEL=llama",
		"SCRAPEDEFENSE_ESCALATION_CLASSIFIER_ALLOW_PRIVATE=true",
		"SCRAPEDEFENSE_ESCALATION_CLASSIFIER_GREY_LOW=0.01", // ask about nearly everything
		"SCRAPEDEFENSE_ESCALATION_CLASSIFIER_GREY_HIGH=0.89",
	)
	v := visitor{t: t, base: "http://" + s.public, ip: "203.0.113.88"}
	if n := v.crawlUntilBlocked(30); n == 0 {
		t.Fatal("the stealth scraper was not blocked within 30 requests with a hanging classifier")
	} else {
		t.Logf("blocked at request %d", n)
	}
	_, metrics, _ := get(t, "http://"+s.escalation+"/metrics")
	if !strings.Contains(metrics, `classifier_requests_total{result="timeout",service="escalation"}`) {
		t.Errorf("the classifier was never asked (or never timed out):\n%s", grepLines(metrics, "classifier_"))
	}
	within, total := histogramCounts(t, metrics, "escalation_queue_to_verdict_seconds", "1.5")
	if total == 0 || within != total {
		t.Errorf("%v of %v verdicts within 1.5 s of their event", within, total)
	}
}

func grepLines(text, substr string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, substr) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// histogramCounts returns a histogram's cumulative count at bucket le and
// its total count, summed over its series, from a text exposition.
func histogramCounts(t *testing.T, metrics, name, le string) (within, total float64) {
	t.Helper()
	for _, l := range strings.Split(metrics, "\n") {
		var v float64
		switch {
		case strings.HasPrefix(l, name+"_bucket{") && strings.Contains(l, `le="`+le+`"`):
			if _, err := fmt.Sscan(l[strings.LastIndexByte(l, ' ')+1:], &v); err == nil {
				within += v
			}
		case strings.HasPrefix(l, name+"_count"):
			if _, err := fmt.Sscan(l[strings.LastIndexByte(l, ' ')+1:], &v); err == nil {
				total += v
			}
		}
	}
	return within, total
}
