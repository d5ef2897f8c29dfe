package main

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"time"
)

// Dashboard is the part of a Grafana dashboard JSON model the renderer needs.
type Dashboard struct {
	Title      string  `json:"title"`
	Panels     []Panel `json:"panels"`
	Templating struct {
		List []Variable `json:"list"`
	} `json:"templating"`
}

// Panel is one Grafana panel. Rows carry their collapsed children in Panels.
type Panel struct {
	Type        string   `json:"type"`
	Title       string   `json:"title"`
	GridPos     GridPos  `json:"gridPos"`
	Targets     []Target `json:"targets"`
	Panels      []Panel  `json:"panels"`
	FieldConfig struct {
		Defaults struct {
			Unit string   `json:"unit"`
			Min  *float64 `json:"min"`
			Max  *float64 `json:"max"`
		} `json:"defaults"`
	} `json:"fieldConfig"`
}

// GridPos places a panel on Grafana's 24-column grid; H and Y are in grid
// rows (30 px each in Grafana).
type GridPos struct {
	H int `json:"h"`
	W int `json:"w"`
	X int `json:"x"`
	Y int `json:"y"`
}

// Target is one query of a panel.
type Target struct {
	Expr         string `json:"expr"`
	LegendFormat string `json:"legendFormat"`
	Hide         bool   `json:"hide"`
}

// Variable is a dashboard template variable; only its current value matters.
type Variable struct {
	Name    string `json:"name"`
	Current struct {
		Value any `json:"value"`
	} `json:"current"`
}

// Limits on outside input: a dashboard is a hand-written file, so anything
// beyond these is a mistake, not a dashboard.
const (
	maxDashboardBytes = 4 << 20
	maxPanels         = 200
	gridColumns       = 24
	maxGridRows       = 1000
)

// ParseDashboard decodes a dashboard and flattens row panels into a list of
// drawable panels with sane grid positions.
func ParseDashboard(b []byte) (*Dashboard, error) {
	if len(b) > maxDashboardBytes {
		return nil, fmt.Errorf("dashboard is %d bytes, limit %d", len(b), maxDashboardBytes)
	}
	var d Dashboard
	if err := json.Unmarshal(b, &d); err != nil {
		return nil, fmt.Errorf("decode dashboard: %w", err)
	}
	var flat []Panel
	var walk func([]Panel, int) error
	walk = func(ps []Panel, depth int) error {
		if depth > 2 {
			return fmt.Errorf("panels nested deeper than rows")
		}
		for _, p := range ps {
			if p.Type == "row" {
				if err := walk(p.Panels, depth+1); err != nil {
					return err
				}
				continue
			}
			if len(flat) == maxPanels {
				return fmt.Errorf("more than %d panels", maxPanels)
			}
			p.Panels = nil
			p.GridPos = clampGrid(p.GridPos)
			flat = append(flat, p)
		}
		return nil
	}
	if err := walk(d.Panels, 0); err != nil {
		return nil, err
	}
	d.Panels = flat
	return &d, nil
}

func clampGrid(g GridPos) GridPos {
	g.X = min(max(g.X, 0), gridColumns-1)
	g.W = min(max(g.W, 1), gridColumns-g.X)
	g.Y = min(max(g.Y, 0), maxGridRows)
	g.H = min(max(g.H, 2), maxGridRows)
	return g
}

// variableRef matches $name, ${name} and ${name:format} (Grafana's forms).
var variableRef = regexp.MustCompile(`\$\{([A-Za-z0-9_]+)(?::[A-Za-z0-9_]+)?\}|\$([A-Za-z0-9_]+)|\[\[([A-Za-z0-9_]+)\]\]`)

// Variables returns the values to substitute in this dashboard's
// expressions: Grafana's built-in interval variables derived from the step
// and window, then each template variable's current value ("All" becomes a
// match-anything regex, as Grafana's default for custom all values).
func (d *Dashboard) Variables(window, step time.Duration) map[string]string {
	// $__rate_interval is max(4 × scrape interval, step + scrape interval) in
	// Grafana; the scrape interval is unknown here, so four steps is the
	// honest equivalent.
	vars := map[string]string{
		"__interval":      promDuration(step),
		"__interval_ms":   fmt.Sprint(step.Milliseconds()),
		"__rate_interval": promDuration(4 * step),
		"__range":         promDuration(window),
		"__range_s":       fmt.Sprint(int64(window.Seconds())),
		"__range_ms":      fmt.Sprint(window.Milliseconds()),
	}
	for _, v := range d.Templating.List {
		vars[v.Name] = currentValue(v.Current.Value)
	}
	return vars
}

func currentValue(v any) string {
	switch x := v.(type) {
	case string:
		if x == "" || x == "$__all" {
			return ".*"
		}
		return x
	case []any:
		var parts []string
		for _, e := range x {
			if s, ok := e.(string); ok && s != "$__all" {
				parts = append(parts, regexp.QuoteMeta(s))
			}
		}
		if len(parts) == 0 {
			return ".*"
		}
		return strings.Join(parts, "|")
	default:
		return ".*"
	}
}

// ExpandVariables substitutes every variable reference in expr. A reference
// to an unknown variable is an error: the query would not parse anyway.
func ExpandVariables(expr string, vars map[string]string) (string, error) {
	var missing []string
	out := variableRef.ReplaceAllStringFunc(expr, func(m string) string {
		sub := variableRef.FindStringSubmatch(m)
		name := sub[1] + sub[2] + sub[3]
		v, ok := vars[name]
		if !ok {
			missing = append(missing, name)
			return m
		}
		return v
	})
	if len(missing) > 0 {
		return "", fmt.Errorf("unknown variables %s in %q", strings.Join(missing, ", "), expr)
	}
	if strings.Contains(out, "$") {
		return "", fmt.Errorf("unsubstituted $ in %q", out)
	}
	return out, nil
}

// promDuration formats d the way PromQL range selectors accept it.
func promDuration(d time.Duration) string {
	if d <= 0 {
		return "1s"
	}
	if d%time.Second != 0 {
		return fmt.Sprintf("%dms", d.Milliseconds())
	}
	return fmt.Sprintf("%ds", int64(d/time.Second))
}
