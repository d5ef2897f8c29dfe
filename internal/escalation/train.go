package escalation

import (
	"context"
	"errors"
	"fmt"

	"github.com/scrapedefense/scrapedefense/internal/events"
)

// Example is one labelled feature vector (FeatureNames order).
type Example struct {
	Features []float64
	Label    bool // true: bot
}

// TrainOptions tune Train. Zero values take the defaults.
type TrainOptions struct {
	Version      string  // required: the new model's version
	Epochs       int     // full passes over the examples (default 2000)
	LearningRate float64 // gradient step (default 0.5)
	L2           float64 // weight decay; the bias is not decayed (default 1e-3)
}

// Train fits a logistic regression by plain full-batch gradient descent
// with L2 regularisation. It starts from zero weights and visits examples
// in order, so the same input gives the same model.
func Train(examples []Example, opts TrainOptions) (*Model, error) {
	if opts.Version == "" {
		return nil, errors.New("train: version is empty")
	}
	if len(examples) == 0 {
		return nil, errors.New("train: no examples")
	}
	if opts.Epochs <= 0 {
		opts.Epochs = 2000
	}
	if opts.LearningRate <= 0 {
		opts.LearningRate = 0.5
	}
	if opts.L2 < 0 || !finite(opts.L2) || !finite(opts.LearningRate) {
		return nil, errors.New("train: L2 and learning rate must be finite and not negative")
	}
	if opts.L2 == 0 {
		opts.L2 = 1e-3
	}
	xs := make([]featureVec, len(examples))
	for i, ex := range examples {
		if len(ex.Features) != numFeatures {
			return nil, fmt.Errorf("train: example %d has %d features, want %d", i, len(ex.Features), numFeatures)
		}
		for j, x := range ex.Features {
			if !finite(x) {
				return nil, fmt.Errorf("train: example %d feature %q is not finite", i, features[j].name)
			}
		}
		copy(xs[i][:], ex.Features)
	}
	m := &Model{version: opts.Version}
	n := float64(len(examples))
	for range opts.Epochs {
		var grad featureVec
		var gradBias float64
		for i, ex := range examples {
			p := sigmoid(m.logit(&xs[i]))
			y := 0.0
			if ex.Label {
				y = 1
			}
			d := p - y
			for j, x := range xs[i] {
				grad[j] += d * x
			}
			gradBias += d
		}
		for j := range m.weights {
			m.weights[j] -= opts.LearningRate * (grad[j]/n + opts.L2*m.weights[j])
		}
		m.bias -= opts.LearningRate * gradBias / n
	}
	for _, w := range m.weights {
		if !inRange(w) {
			return nil, errors.New("train: diverged (lower the learning rate)")
		}
	}
	if !inRange(m.bias) {
		return nil, errors.New("train: diverged (lower the learning rate)")
	}
	return m, nil
}

// OperatorLabel returns an operator's verdict about an event: bot or not,
// and whether there is one.
type OperatorLabel func(ev events.Event) (bot, ok bool)

// Examples replays evs, in order, through a scratch engine built from opts
// (its own windows, no metrics, no grey zone) and returns one example per
// labelled event. Labels: challenge_pass is human, trap and tarpit are bot,
// and operator (may be nil) labels any event explicitly, overriding the
// kind. The kind's own features are zeroed in the example so that the
// model learns from what the client did, not from the label itself.
func Examples(ctx context.Context, opts Options, evs []events.Event, operator OperatorLabel) ([]Example, error) {
	opts.GreyZone = nil
	opts.Registerer = nil
	opts.OnModel = nil
	e, err := New(opts)
	if err != nil {
		return nil, fmt.Errorf("examples: %w", err)
	}
	var out []Example
	for _, ev := range evs {
		if err := ctx.Err(); err != nil {
			return out, err
		}
		o := e.observe(&ev)
		fv := o.features
		var bot, ok bool
		switch ev.Kind {
		case events.KindChallengePass:
			bot, ok = false, true
		case events.KindTrap, events.KindTarpit:
			bot, ok = true, true
		}
		if operator != nil {
			if b, has := operator(ev); has {
				bot, ok = b, true
			}
		}
		if !ok {
			continue
		}
		fv[fTrapHit], fv[fChallengeFail], fv[fChallengePass] = 0, 0, 0
		out = append(out, Example{Features: append([]float64(nil), fv[:]...), Label: bot})
	}
	return out, nil
}
