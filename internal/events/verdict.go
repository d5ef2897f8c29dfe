package events

import "time"

// Verdict is what the escalation engine concluded about a client, with the
// reasons that produced it. It is stored in the client's history, returned
// by POST /escalate, carried by alerts and printed by explain.
type Verdict struct {
	Time     time.Time `json:"time"`
	ClientIP string    `json:"client_ip"`
	// Action is the rung of the ladder the score reached: allow, challenge,
	// throttle, tarpit or block.
	Action string  `json:"action"`
	Score  float64 `json:"score"`
	// TTL is how long the resulting decision lasts (0 for allow).
	TTL time.Duration `json:"ttl_ns,omitempty"`
	// Offences counts earlier non-allow verdicts for the client; ban
	// durations grow with it.
	Offences     int      `json:"offences,omitempty"`
	ModelVersion string   `json:"model_version,omitempty"`
	Reasons      []Reason `json:"reasons"`
	// Stopped names the stage after which scoring stopped early because the
	// verdict was certain ("" if every stage ran).
	Stopped string `json:"stopped,omitempty"`
	// Protected explains why a client was not acted on although it scored
	// (verified crawler, trusted proxy, operator allow decision).
	Protected string `json:"protected,omitempty"`
}

// Reason is one signal's contribution to a verdict.
type Reason struct {
	Stage  string  `json:"stage"`
	Signal string  `json:"signal"`
	Weight float64 `json:"weight"`
	Detail string  `json:"detail,omitempty"`
}
