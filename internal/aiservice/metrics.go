package aiservice

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// localSender labels events that arrive through Ingest (the edge in the same
// process) rather than over HTTP.
const localSender = "local"

// metrics holds pre-resolved children: every label value comes from a fixed
// set (rejection codes, configured senders, command actions), so the series
// count is bounded and the hot path does no label hashing.
type metrics struct {
	rejected map[Code]prometheus.Counter
	accepted map[string]prometheus.Counter // by sender
	commands map[string]prometheus.Counter // by action
}

func newMetrics(reg prometheus.Registerer, senders []string) (*metrics, error) {
	rejected := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "webhook_rejected_total",
		Help: "Webhook and escalate requests (and in-process batches) rejected, by error code.",
	}, []string{"reason"})
	accepted := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "webhook_events_accepted_total",
		Help: "Events accepted into the queue, by configured sender (\"local\" for in-process).",
	}, []string{"sender"})
	commands := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "webhook_commands_total",
		Help: "Webhook commands applied, by action.",
	}, []string{"action"})
	for _, c := range []prometheus.Collector{rejected, accepted, commands} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register webhook metrics: %w", err)
		}
	}
	m := &metrics{
		rejected: make(map[Code]prometheus.Counter, len(allCodes)),
		accepted: make(map[string]prometheus.Counter, len(senders)+1),
		commands: make(map[string]prometheus.Counter, len(commandActions)),
	}
	for _, c := range allCodes {
		m.rejected[c] = rejected.WithLabelValues(string(c))
	}
	for _, s := range append(senders, localSender) {
		m.accepted[s] = accepted.WithLabelValues(s)
	}
	for _, a := range commandActions {
		m.commands[a] = commands.WithLabelValues(a)
	}
	return m, nil
}

func (m *metrics) reject(c Code) {
	if ctr, ok := m.rejected[c]; ok {
		ctr.Inc()
		return
	}
	m.rejected[CodeInternal].Inc()
}

func (m *metrics) accept(sender string, n int) {
	if ctr, ok := m.accepted[sender]; ok && n > 0 {
		ctr.Add(float64(n))
	}
}

func (m *metrics) command(action string) {
	if ctr, ok := m.commands[action]; ok {
		ctr.Inc()
	}
}
