package main

import (
	"context"
	"testing"
	"time"
)

// FuzzParseDashboard feeds arbitrary dashboards through parsing, variable
// expansion and a small render: none of it may panic.
func FuzzParseDashboard(f *testing.F) {
	f.Add([]byte(tinyDashboard))
	f.Add([]byte(`{"panels":[{"type":"row","panels":[{"type":"stat","gridPos":{"x":30,"w":-4,"y":-1,"h":0}}]}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := ParseDashboard(b)
		if err != nil {
			return
		}
		vars := d.Variables(time.Minute, time.Second)
		for _, p := range d.Panels {
			for _, tg := range p.Targets {
				_, _ = ExpandVariables(tg.Expr, vars)
			}
		}
		if len(d.Panels) > 20 {
			return // rendering cost, not correctness, grows from here
		}
		end := time.Unix(1700000000, 0)
		var asked []string
		o := Options{Query: fakeQuery(&asked), Start: end.Add(-time.Minute), End: end, Step: 5 * time.Second,
			Vars: vars, Width: 240, RowHeight: 8}
		if _, err := Render(context.Background(), d, o); err != nil {
			t.Fatal(err)
		}
	})
}

// FuzzDecodeQueryRange checks that any answer decodes or fails cleanly.
func FuzzDecodeQueryRange(f *testing.F) {
	f.Add([]byte(`{"status":"success","data":{"resultType":"matrix","result":[{"metric":{"a":"b"},"values":[[1700000000,"0.5"],[1700000001,"NaN"]]}]}}`))
	f.Add([]byte(`{"status":"error","errorType":"bad_data","error":"x"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		ss, err := DecodeQueryRange(b)
		if err != nil {
			return
		}
		if len(ss) > maxSeries {
			t.Fatalf("%d series, limit %d", len(ss), maxSeries)
		}
	})
}
