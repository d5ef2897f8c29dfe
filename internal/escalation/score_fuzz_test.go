package escalation

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/scrapedefense/scrapedefense/internal/events"
)

// FuzzScore feeds arbitrary request fields through every stage: whatever a
// sender puts in an event, scoring must not panic and must return a score
// in [0, 1] with an action on the ladder.
func FuzzScore(f *testing.F) {
	f.Add("203.0.113.1", "GET", "/articles/123?x=1", chromeUA, "host,user-agent,accept", "document", 200, "request", false)
	f.Add("2001:db8::1", "PROPFIND", "/.env", "", "", "", 404, "trap", true)
	f.Add("not-an-ip", "", "////a/b/c/d/e/f.css", "curl/8", "host,user-agent,accept-encoding,accept,connection", "style", 0, "challenge_pass", false)
	clock := newFakeClock()
	e, _ := newTestEngine(f, clock, func(o *Options) { o.NavMinObservations = 1 })
	f.Fuzz(func(t *testing.T, ip, method, path, ua, order, dest string, status int, kind string, robots bool) {
		clock.Advance(37 * time.Millisecond)
		ev := events.Event{Time: clock.Now(), ClientIP: ip, Method: method, Path: path, UserAgent: ua, Status: status,
			Kind: events.Kind(kind), RobotsDisallowed: robots, HeaderOrder: strings.Split(order, ","),
			Headers: map[string]string{"Sec-Fetch-Dest": dest}}
		v := e.Score(context.Background(), ev)
		if !(v.Score >= 0 && v.Score <= 1) {
			t.Fatalf("score %v", v.Score)
		}
		if v.Action == "" {
			t.Fatal("no action")
		}
	})
}
