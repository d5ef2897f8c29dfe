package escalation

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
)

// Model is a logistic regression over the feature vector. A Model is
// immutable once built, so engines share it without locks.
type Model struct {
	version string
	weights featureVec
	bias    float64
}

// modelFile is the JSON form of a model.
type modelFile struct {
	Version  string    `json:"version"`
	Features []string  `json:"features"`
	Weights  []float64 `json:"weights"`
	Bias     float64   `json:"bias"`
}

// maxModelSize bounds what LoadModel reads.
const maxModelSize = 1 << 20

//go:embed default_model.json
var defaultModelJSON []byte

// DefaultModel returns the embedded model (hand-set weights; see
// docs/escalation.md).
func DefaultModel() *Model {
	m, err := LoadModel(bytes.NewReader(defaultModelJSON))
	if err != nil {
		panic("escalation: embedded default model is invalid: " + err.Error())
	}
	return m
}

// LoadModel reads a model file. It is strict: unknown fields or feature
// names, duplicate names, a weight count that differs from the feature
// count, non-finite numbers or a missing version are errors. Features the
// file does not name get weight 0, so older files keep working when
// features are added.
func LoadModel(r io.Reader) (*Model, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxModelSize+1))
	if err != nil {
		return nil, fmt.Errorf("read model: %w", err)
	}
	if len(data) > maxModelSize {
		return nil, fmt.Errorf("model file larger than %d bytes", maxModelSize)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var f modelFile
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("decode model: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("decode model: trailing data after the JSON object")
	}
	return newModel(f)
}

func newModel(f modelFile) (*Model, error) {
	var errs []error
	if f.Version == "" {
		errs = append(errs, errors.New("model: version is empty"))
	} else if len(f.Version) > 64 {
		errs = append(errs, errors.New("model: version longer than 64 bytes"))
	}
	if len(f.Features) != len(f.Weights) {
		errs = append(errs, fmt.Errorf("model: %d features but %d weights", len(f.Features), len(f.Weights)))
	}
	if !inRange(f.Bias) {
		errs = append(errs, fmt.Errorf("model: bias must be a number within ±%g", maxWeight))
	}
	m := &Model{version: f.Version, bias: f.Bias}
	seen := make(map[string]bool, len(f.Features))
	for i, name := range f.Features {
		idx, ok := featureIndex[name]
		switch {
		case !ok:
			errs = append(errs, fmt.Errorf("model: unknown feature %q", name))
			continue
		case seen[name]:
			errs = append(errs, fmt.Errorf("model: feature %q listed twice", name))
			continue
		}
		seen[name] = true
		if i >= len(f.Weights) {
			continue
		}
		if !inRange(f.Weights[i]) {
			errs = append(errs, fmt.Errorf("model: weight of %q must be a number within ±%g", name, maxWeight))
			continue
		}
		m.weights[idx] = f.Weights[i]
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return m, nil
}

func finite(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }

// maxWeight bounds weights and bias: the logit of any feature vector stays
// finite, and no sane model needs more.
const maxWeight = 1000.0

func inRange(x float64) bool { return x >= -maxWeight && x <= maxWeight }

// Version is the model's version string.
func (m *Model) Version() string { return m.version }

// Weight returns the weight of the named feature and whether the name is
// known.
func (m *Model) Weight(feature string) (float64, bool) {
	i, ok := featureIndex[feature]
	if !ok {
		return 0, false
	}
	return m.weights[i], true
}

// Bias is the model's intercept.
func (m *Model) Bias() float64 { return m.bias }

// MarshalJSON writes the model in the file format LoadModel reads, every
// feature listed in vector order.
func (m *Model) MarshalJSON() ([]byte, error) {
	return json.Marshal(modelFile{Version: m.version, Features: FeatureNames(), Weights: m.weights[:], Bias: m.bias})
}

// Predict returns the probability that features (in FeatureNames order)
// belong to a bot.
func (m *Model) Predict(features []float64) (float64, error) {
	if len(features) != numFeatures {
		return 0, fmt.Errorf("predict: %d features, want %d", len(features), numFeatures)
	}
	var fv featureVec
	copy(fv[:], features)
	return sigmoid(m.logit(&fv)), nil
}

func (m *Model) logit(fv *featureVec) float64 {
	z := m.bias
	for i, x := range fv {
		z += m.weights[i] * x
	}
	return z
}

func sigmoid(z float64) float64 { return 1 / (1 + math.Exp(-z)) }
