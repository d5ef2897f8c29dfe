package probe

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/scrapedefense/scrapedefense/internal/telemetry"
)

var errNotHealth = errors.New("not a health report")

// ParseHealth reads a /health body and returns its status and, for a status
// other than ok, a short note naming the components that are not ok. The
// report format is telemetry.Report's; anything else is an error.
func ParseHealth(body []byte) (telemetry.Status, string, error) {
	var r telemetry.Report
	if err := r.UnmarshalJSON(body); err != nil {
		return "", "", fmt.Errorf("%w: %w", errNotHealth, err)
	}
	if r.Status == "" {
		return "", "", fmt.Errorf("%w: no status", errNotHealth)
	}
	if r.Status == telemetry.StatusOK {
		return r.Status, "", nil
	}
	names := make([]string, 0, len(r.Components))
	for name, c := range r.Components {
		if c.Status != telemetry.StatusOK {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	const maxNoted = 8 // a report can name many components; keep the note short
	var b strings.Builder
	b.WriteString(string(r.Status))
	for i, name := range names {
		if i == maxNoted {
			fmt.Fprintf(&b, "; and %d more", len(names)-maxNoted)
			break
		}
		c := r.Components[name]
		fmt.Fprintf(&b, "; %s: %s", truncate(name, 64), c.Status)
		if c.Detail != "" {
			fmt.Fprintf(&b, " (%s)", truncate(c.Detail, 160))
		}
	}
	return r.Status, b.String(), nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "…"
}
