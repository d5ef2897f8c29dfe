package deploy_test

import (
	"regexp"
	"slices"
	"strings"
)

// A small PromQL metric-name extractor: enough for the expressions in this
// repository, without pulling in the Prometheus server module. It removes
// what can hold identifiers that are not metrics (strings, label matchers,
// range selectors, grouping label lists, Grafana variables) and keeps the
// identifiers that are not functions, operators or keywords.
var (
	stringLit  = regexp.MustCompile("\"(?:[^\"\\\\]|\\\\.)*\"|'(?:[^'\\\\]|\\\\.)*'|`[^`]*`")
	matchers   = regexp.MustCompile(`\{[^{}]*\}`)
	ranges     = regexp.MustCompile(`\[[^\[\]]*\]`)
	grouping   = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)`)
	grafanaVar = regexp.MustCompile(`\$\{[^}]*\}|\$[a-zA-Z_]\w*`)
	identifier = regexp.MustCompile(`(?:^|[^a-zA-Z0-9_:.])([a-zA-Z_:][a-zA-Z0-9_:]*)`)
)

// promqlWords are keywords and bare operators that look like identifiers.
var promqlWords = map[string]bool{
	"and": true, "or": true, "unless": true, "by": true, "without": true,
	"on": true, "ignoring": true, "group_left": true, "group_right": true,
	"bool": true, "offset": true, "atan2": true, "inf": true, "nan": true,
}

// MetricNames returns the metric names used in a PromQL expression, sorted
// and without duplicates.
func MetricNames(expr string) []string {
	s := stringLit.ReplaceAllString(expr, `""`)
	for { // matchers cannot nest, but strip repeatedly to be safe
		t := matchers.ReplaceAllString(s, " ")
		if t == s {
			break
		}
		s = t
	}
	s = ranges.ReplaceAllString(s, " ")
	s = grouping.ReplaceAllString(s, " ")
	s = grafanaVar.ReplaceAllString(s, " ")
	var names []string
	for _, loc := range identifier.FindAllStringSubmatchIndex(s, -1) {
		name := s[loc[2]:loc[3]]
		rest := strings.TrimLeft(s[loc[3]:], " \t\n")
		if strings.HasPrefix(rest, "(") || promqlWords[strings.ToLower(name)] {
			continue // a function or aggregation, or a keyword
		}
		if isAggregation(name) { // "sum by (x) (...)": the list is gone, "(" may follow later
			continue
		}
		names = append(names, name)
	}
	slices.Sort(names)
	return slices.Compact(names)
}

func isAggregation(name string) bool {
	switch name {
	case "sum", "min", "max", "avg", "group", "stddev", "stdvar", "count",
		"count_values", "bottomk", "topk", "quantile", "limitk", "limit_ratio":
		return true
	}
	return false
}
