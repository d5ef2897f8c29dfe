package escalation

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/scrapedefense/scrapedefense/internal/events"
)

func TestDefaultModel(t *testing.T) {
	m := DefaultModel()
	if m.Version() != "2026-12-04.1" {
		t.Errorf("version %q", m.Version())
	}
	for _, name := range FeatureNames() {
		if _, ok := m.Weight(name); !ok {
			t.Errorf("feature %q unknown", name)
		}
	}
	// The embedded file names every feature, so that it documents them all.
	var f modelFile
	if err := json.Unmarshal(defaultModelJSON, &f); err != nil {
		t.Fatal(err)
	}
	if strings.Join(f.Features, ",") != strings.Join(FeatureNames(), ",") {
		t.Errorf("default model features\n%v\nwant\n%v", f.Features, FeatureNames())
	}
}

func TestLoadModelErrors(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"unknown feature", `{"version":"1","features":["nope"],"weights":[1],"bias":0}`, `unknown feature "nope"`},
		{"length mismatch", `{"version":"1","features":["page_rate"],"weights":[1,2],"bias":0}`, "1 features but 2 weights"},
		{"duplicate", `{"version":"1","features":["page_rate","page_rate"],"weights":[1,2],"bias":0}`, "listed twice"},
		{"no version", `{"features":[],"weights":[],"bias":0}`, "version is empty"},
		{"NaN weight", `{"version":"1","features":["page_rate"],"weights":[NaN],"bias":0}`, "decode model"},
		{"huge weight", `{"version":"1","features":["page_rate"],"weights":[1e999],"bias":0}`, "decode model"},
		{"unknown field", `{"version":"1","features":[],"weights":[],"bias":0,"extra":1}`, "unknown field"},
		{"trailing data", `{"version":"1","features":[],"weights":[],"bias":0} {}`, "trailing data"},
		{"not json", `version: 1`, "decode model"},
		{"empty", ``, "decode model"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LoadModel(strings.NewReader(tt.in))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("LoadModel = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

func TestLoadModelSubsetAndRoundTrip(t *testing.T) {
	m, err := LoadModel(strings.NewReader(`{"version":"v2","features":["no_assets"],"weights":[2.5],"bias":-1}`))
	if err != nil {
		t.Fatal(err)
	}
	if w, _ := m.Weight("no_assets"); w != 2.5 {
		t.Errorf("no_assets weight %v", w)
	}
	if w, _ := m.Weight("page_rate"); w != 0 {
		t.Errorf("unnamed feature weight %v, want 0", w)
	}
	data, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	back, err := LoadModel(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("reload %s: %v", data, err)
	}
	if *back != *m {
		t.Errorf("round trip changed the model: %+v != %+v", back, m)
	}
}

// syntheticExamples draws labelled feature vectors: bots skip assets, run
// fast and regular; people load assets and read.
func syntheticExamples(n int, seed uint64) []Example {
	rng := rand.New(rand.NewPCG(seed, 1))
	out := make([]Example, n)
	for i := range out {
		bot := i%2 == 0
		x := make([]float64, numFeatures)
		if bot {
			x[fNoAssets] = 0.6 + 0.4*rng.Float64()
			x[fPageRate] = rng.Float64()
			x[fRegularity] = 0.5 + 0.5*rng.Float64()
			x[fDistinctPaths] = 0.7 + 0.3*rng.Float64()
			if rng.IntN(4) == 0 {
				x[fNoClientHints] = 1
			}
		} else {
			x[fNoAssets] = 0.3 * rng.Float64()
			x[fRegularity] = 0.4 * rng.Float64()
			x[fDistinctPaths] = 0.3 + 0.6*rng.Float64()
		}
		out[i] = Example{Features: x, Label: bot}
	}
	return out
}

func TestTrainSeparatesAndIsDeterministic(t *testing.T) {
	train := syntheticExamples(400, 1)
	m, err := Train(train, TrainOptions{Version: "trained.1", Epochs: 500})
	if err != nil {
		t.Fatal(err)
	}
	again, _ := Train(train, TrainOptions{Version: "trained.1", Epochs: 500})
	if *again != *m {
		t.Error("two runs on the same data gave different models")
	}
	wrong := 0
	test := syntheticExamples(400, 2)
	for _, ex := range test {
		p, err := m.Predict(ex.Features)
		if err != nil {
			t.Fatal(err)
		}
		if (p >= 0.5) != ex.Label {
			wrong++
		}
	}
	if wrong > len(test)/20 {
		t.Errorf("%d of %d test examples misclassified", wrong, len(test))
	}
	if w, _ := m.Weight("no_assets"); w <= 0 {
		t.Errorf("no_assets weight %v, want positive", w)
	}
}

func TestTrainRejectsBadInput(t *testing.T) {
	good := syntheticExamples(4, 1)
	for name, tc := range map[string]struct {
		ex   []Example
		opts TrainOptions
	}{
		"no version":  {good, TrainOptions{}},
		"no examples": {nil, TrainOptions{Version: "v"}},
		"short":       {[]Example{{Features: []float64{1}}}, TrainOptions{Version: "v"}},
		"nan":         {[]Example{{Features: append(make([]float64, numFeatures-1), nanValue())}}, TrainOptions{Version: "v"}},
	} {
		if _, err := Train(tc.ex, tc.opts); err == nil {
			t.Errorf("%s: Train accepted bad input", name)
		}
	}
}

func nanValue() float64 { var z float64; return z / z }

func TestExamplesFromEvents(t *testing.T) {
	clock := newFakeClock()
	now := clock.Now()
	var evs []events.Event
	// A scraper that later walks into a trap; a person who passes a challenge.
	for i := range 12 {
		evs = append(evs, chromePage("203.0.113.9", fmt.Sprintf("/a/%d", i), "", now.Add(time.Duration(i)*200*time.Millisecond)))
	}
	trap := chromePage("203.0.113.9", "/trap", "", now.Add(3*time.Second))
	trap.Kind = events.KindTrap
	evs = append(evs, trap)
	p := newPerson("198.51.100.3", 9)
	at := now
	for range 5 {
		page, read := p.next(at)
		evs = append(evs, page...)
		at = page[len(page)-1].Time.Add(read)
	}
	pass := chromePage("198.51.100.3", "/", "", at)
	pass.Kind = events.KindChallengePass
	evs = append(evs, pass)
	evs = append(evs, events.Event{ClientIP: "192.0.2.4", Path: "/x", UserAgent: chromeUA, Time: at, ID: "op-1"})

	operator := func(ev events.Event) (bool, bool) { return true, ev.ID == "op-1" }
	exs, err := Examples(context.Background(), Options{Now: func() time.Time { return at }}, evs, operator)
	if err != nil {
		t.Fatal(err)
	}
	if len(exs) != 3 {
		t.Fatalf("%d examples, want 3", len(exs))
	}
	if !exs[0].Label || exs[1].Label || !exs[2].Label {
		t.Errorf("labels %v %v %v, want bot human bot", exs[0].Label, exs[1].Label, exs[2].Label)
	}
	if exs[0].Features[fTrapHit] != 0 || exs[0].Features[fTrapHistory] != 0 {
		t.Error("the trap example carries its own label as a feature")
	}
	if exs[0].Features[fNoAssets] < 0.9 || exs[1].Features[fNoAssets] != 0 {
		t.Errorf("no_assets: scraper %.2f, person %.2f", exs[0].Features[fNoAssets], exs[1].Features[fNoAssets])
	}
}

func FuzzLoadModel(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/*.json")
	for _, s := range seeds {
		data, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add(defaultModelJSON)
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := LoadModel(bytes.NewReader(data))
		if err != nil {
			return
		}
		// Whatever loads must predict finite probabilities and survive a
		// round trip.
		x := make([]float64, numFeatures)
		for i := range x {
			x[i] = 1
		}
		if p, err := m.Predict(x); err != nil || !(p >= 0 && p <= 1) {
			t.Fatalf("Predict = %v, %v", p, err)
		}
		out, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		back, err := LoadModel(bytes.NewReader(out))
		if err != nil || *back != *m {
			t.Fatalf("round trip: %v", err)
		}
	})
}
