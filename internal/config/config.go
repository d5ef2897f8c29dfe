// Package config holds the typed configuration of every role: defaults, the
// YAML file, SCRAPEDEFENSE_* environment overrides, secrets read from *_file
// keys, and validation that reports every problem at once with its key path.
package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/scrapedefense/scrapedefense/internal/decision"
)

// Config is the whole configuration file.
type Config struct {
	DataDir    string     `yaml:"data_dir" doc:"Directory for the embedded store and generated secrets. Default: $XDG_STATE_HOME/scrapedefense (usually ~/.local/state/scrapedefense)."`
	Log        LogConfig  `yaml:"log"`
	Edge       Edge       `yaml:"edge"`
	Lists      Lists      `yaml:"lists"`
	API        API        `yaml:"api"`
	AI         AI         `yaml:"ai"`
	Escalation Escalation `yaml:"escalation"`
	Alerts     Alerts     `yaml:"alerts"`
	Tarpit     Tarpit     `yaml:"tarpit"`
}

// AI configures the AI service: the webhook intake (events and commands
// from other senders) and the actions that carry out verdicts.
type AI struct {
	Listen        string        `yaml:"listen" doc:"Listener of POST /webhook, POST /escalate, /health and /metrics."`
	Senders       []string      `yaml:"senders" doc:"Webhook senders as name:secret_file pairs; each signs its requests with the secret in its file (docs/webhook.md)."`
	ReplayWindow  time.Duration `yaml:"replay_window" doc:"Signed requests older or newer than this are rejected as stale."`
	MaxBodyBytes  int           `yaml:"max_body_bytes" doc:"Largest webhook body accepted (413 above)."`
	MaxEvents     int           `yaml:"max_events" doc:"Most events in one webhook message."`
	RateLimit     Rate          `yaml:"rate_limit" doc:"Requests each sender may make."`
	QueueCapacity int           `yaml:"queue_capacity" doc:"Events the durable escalation queue holds; beyond it the webhook answers 503 and the edge drops (and counts) events."`
}

// Escalation configures the scoring engine (docs/escalation.md).
type Escalation struct {
	Listen     string        `yaml:"listen" doc:"Listener of /health and /metrics of the scoring workers."`
	Workers    int           `yaml:"workers" doc:"Goroutines scoring events from the queue."`
	Batch      int           `yaml:"batch" doc:"Events a worker takes from the queue at once."`
	Thresholds Ladder        `yaml:"thresholds"`
	TTL        ActionTTLs    `yaml:"ttl"`
	MaxTTL     time.Duration `yaml:"max_ttl" doc:"Longest decision a repeat offender gets."`
	ModelFile  string        `yaml:"model_file" doc:"Model weights (JSON, from scrapedefense model train). Empty: the built-in model."`
	MaxClients int           `yaml:"max_clients" doc:"Clients (addresses, subnets, fingerprints) whose behaviour windows are kept; the least recently seen are evicted beyond it."`
	Classifier Classifier    `yaml:"classifier"`
}

// Ladder maps scores (0 to 1, the model's bot probability) to actions.
type Ladder struct {
	Challenge float64 `yaml:"challenge" doc:"Score at which a client is challenged."`
	Throttle  float64 `yaml:"throttle" doc:"Score at which a client is throttled."`
	Tarpit    float64 `yaml:"tarpit" doc:"Score at which a client is sent to the tarpit."`
	Block     float64 `yaml:"block" doc:"Score at which a client is blocked."`
}

// ActionTTLs are decision lifetimes for a first offence; each repeat
// offence doubles them, up to max_ttl.
type ActionTTLs struct {
	Challenge time.Duration `yaml:"challenge" doc:"Lifetime of a challenge decision."`
	Throttle  time.Duration `yaml:"throttle" doc:"Lifetime of a throttle decision."`
	Tarpit    time.Duration `yaml:"tarpit" doc:"Lifetime of a tarpit decision."`
	Block     time.Duration `yaml:"block" doc:"Lifetime of a block decision."`
}

// Classifier configures the optional external opinion on grey-zone scores.
type Classifier struct {
	Kind          string        `yaml:"kind" doc:"none, openai (any OpenAI-compatible chat completions API: OpenAI, llama.cpp, Ollama) or http (generic JSON classifier)."`
	URL           string        `yaml:"url" doc:"Base URL of the API (openai: without /v1/chat/completions)."`
	Model         string        `yaml:"model" doc:"Model name sent to an OpenAI-compatible API."`
	APIKeyFile    string        `yaml:"api_key_file" doc:"File holding the bearer API key, if the API needs one."`
	Budget        time.Duration `yaml:"budget" doc:"Time allowed per call; past it the verdict is left to the other stages."`
	MaxConcurrent int           `yaml:"max_concurrent" doc:"Calls in flight at once; more are skipped, not queued."`
	GreyLow       float64       `yaml:"grey_low" doc:"Lowest score sent to the classifier."`
	GreyHigh      float64       `yaml:"grey_high" doc:"Highest score sent to the classifier."`
	PricePer1K    float64       `yaml:"price_per_1k_tokens" doc:"Cost of 1000 tokens, for classifier_cost_total."`
	AllowPrivate  bool          `yaml:"allow_private" doc:"Allow a classifier URL on a loopback or private address (a local llama.cpp or Ollama)."`
}

// Alerts configures the notifiers that tell people about verdicts.
type Alerts struct {
	MinSeverity  string        `yaml:"min_severity" doc:"Least severe alert sent: info, warning or critical (a block verdict is critical, tarpit warning, the rest info)."`
	Window       time.Duration `yaml:"window" doc:"Aggregation window: one alert per client per window, later ones summed into one summary."`
	AllowPrivate bool          `yaml:"allow_private_destinations" doc:"Allow alert URLs on loopback or private addresses (the SSRF guard refuses them by default)."`
	Webhook      AlertWebhook  `yaml:"webhook"`
	Slack        AlertSlack    `yaml:"slack"`
	SMTP         AlertSMTP     `yaml:"smtp"`
	PagerDuty    AlertPD       `yaml:"pagerduty"`
}

// AlertWebhook is a generic signed JSON webhook.
type AlertWebhook struct {
	URL        string `yaml:"url" doc:"Receiver URL; empty disables the channel."`
	SecretFile string `yaml:"secret_file" doc:"HMAC-SHA256 signing secret (X-Scrapedefense-Signature)."`
}

// AlertSlack is a Slack incoming webhook.
type AlertSlack struct {
	URLFile string `yaml:"url_file" doc:"File holding the incoming-webhook URL (it is a secret); empty disables the channel."`
}

// AlertSMTP sends mail.
type AlertSMTP struct {
	Addr          string   `yaml:"addr" doc:"SMTP server host:port; empty disables the channel."`
	From          string   `yaml:"from" doc:"Sender address."`
	To            []string `yaml:"to" doc:"Recipients."`
	Username      string   `yaml:"username" doc:"AUTH PLAIN user (only over TLS)."`
	PasswordFile  string   `yaml:"password_file" doc:"File holding the SMTP password."`
	InsecureNoTLS bool     `yaml:"insecure_no_tls" doc:"Send without STARTTLS when the server does not offer it (never with a password)."`
}

// AlertPD is PagerDuty's Events API v2.
type AlertPD struct {
	URL            string `yaml:"url" doc:"Events API endpoint."`
	RoutingKeyFile string `yaml:"routing_key_file" doc:"File holding the integration's routing key; empty disables the channel."`
}

// Tarpit configures the maze for confirmed bots (docs/tarpit.md).
type Tarpit struct {
	Listen             string        `yaml:"listen" doc:"Listener of the maze when the tarpit runs apart from the edge."`
	AdminListen        string        `yaml:"admin_listen" doc:"Listener of the tarpit's /health and /metrics."`
	Prefix             string        `yaml:"prefix" doc:"Path prefix of the maze: the hidden trap links point here and robots.txt disallows it."`
	SeedFile           string        `yaml:"seed_file" doc:"Secret that makes maze pages deterministic per URL; instances with the same seed serve the same maze. Empty: generated once and kept in the store."`
	ModelFile          string        `yaml:"model_file" doc:"Markov text model (from scrapedefense tarpit train). Empty: the built-in model."`
	TemplateFile       string        `yaml:"template_file" doc:"HTML layout for maze pages (html/template with a {{.Content}} slot). Empty: a plain built-in layout."`
	LinksPerPage       int           `yaml:"links_per_page" doc:"Links deeper into the maze on each page."`
	DripBytesPerSecond int           `yaml:"drip_bytes_per_second" doc:"Speed at which a page is sent to one client."`
	MaxSession         time.Duration `yaml:"max_session" doc:"Longest time one response is kept open."`
	MaxConns           int           `yaml:"max_conns" doc:"Concurrent maze connections; past it clients get a cheap answer."`
	MaxConnsPerSubnet  int           `yaml:"max_conns_per_subnet" doc:"Concurrent maze connections per /24 or /64."`
	MaxBytesPerSecond  int           `yaml:"max_bytes_per_second" doc:"Total bandwidth of the maze across all clients."`
	HopLimit           int           `yaml:"hop_limit" doc:"Maze pages a client may fetch within hop_window before it is blocked at the edge."`
	HopWindow          time.Duration `yaml:"hop_window" doc:"Window in which hops are counted."`
	BlockTTL           time.Duration `yaml:"block_ttl" doc:"Duration of the block decision written at the hop limit."`
	GzipBomb           bool          `yaml:"gzip_bomb" doc:"Answer confirmed bots that accept gzip with a small body that inflates very large. Off by default: read docs/tarpit.md first."`
}

// LogConfig configures the JSON logs on stderr.
type LogConfig struct {
	Level string `yaml:"level" doc:"Log level: debug, info, warn or error."`
}

// Edge configures the proxy in front of the site.
type Edge struct {
	Listen            string        `yaml:"listen" doc:"Public listener of the proxy."`
	AdminListen       string        `yaml:"admin_listen" doc:"Operations listener: /health, /metrics, /forward-auth and the decisions API. Keep it on loopback or a private network."`
	Upstream          string        `yaml:"upstream" doc:"URL of the protected site. Empty: the built-in demo site."`
	TrustedProxies    []string      `yaml:"trusted_proxies" doc:"CIDRs or addresses of proxies in front of the edge. Only their forwarding headers are believed."`
	ClientIPHeaders   []string      `yaml:"client_ip_headers" doc:"Forwarding headers read from trusted proxies, in priority order."`
	ProxyProtocol     ProxyProtocol `yaml:"proxy_protocol"`
	PolicyFile        string        `yaml:"policy_file" doc:"YAML policy file (see docs/policy.md). Empty: the built-in default policy. Reloaded on change and on SIGHUP."`
	AllowVerifiedBots bool          `yaml:"allow_verified_crawlers" doc:"Allow search crawlers whose address is inside their operator's published ranges before any other check (declared AI crawlers are left to the policy)."`
	Block             BlockPage     `yaml:"block"`
	RateLimit         RateLimit     `yaml:"rate_limit"`
	Challenge         Challenge     `yaml:"challenge"`
	Robots            Robots        `yaml:"robots"`
	Events            Events        `yaml:"events"`
	Upstreams         Transport     `yaml:"transport"`
	Timeouts          Timeouts      `yaml:"timeouts"`
	MaxHeaderBytes    int           `yaml:"max_header_bytes" doc:"Largest request header block accepted; larger requests get 431."`
	Pprof             bool          `yaml:"pprof" doc:"Serve Go profiles at /debug/pprof/ on admin_listen, for performance investigations."`
	ForwardAuthPath   string        `yaml:"forward_auth_path" doc:"Path of the forward-auth endpoint on admin_listen (nginx auth_request, Caddy forward_auth, Traefik ForwardAuth)."`
	TrapLinks         bool          `yaml:"trap_links" doc:"Inject a link to the tarpit's maze, invisible to people and screen readers and disallowed in robots.txt, into proxied HTML pages (uncompressed 200 responses). Needs the tarpit role in the same process."`
}

// ProxyProtocol configures PROXY protocol v1/v2 on the public listener.
type ProxyProtocol struct {
	Enabled  bool     `yaml:"enabled" doc:"Read a PROXY protocol v1 or v2 header on each connection."`
	Required bool     `yaml:"required" doc:"Reject connections that do not start with a PROXY header."`
	Trusted  []string `yaml:"trusted" doc:"Peers allowed to send a PROXY header (CIDRs). Empty: any peer."`
}

// BlockPage configures the answer to blocked requests.
type BlockPage struct {
	Status   int    `yaml:"status" doc:"HTTP status for blocked requests."`
	BodyFile string `yaml:"body_file" doc:"HTML file served to blocked requests. Empty: a small built-in page."`
}

// RateLimit configures per-client and per-subnet limits.
type RateLimit struct {
	PerIP          Rate `yaml:"per_ip"`
	PerSubnet      Rate `yaml:"per_subnet"`
	IPv4SubnetBits int  `yaml:"ipv4_subnet_bits" doc:"Prefix length that groups IPv4 clients into a subnet."`
	IPv6SubnetBits int  `yaml:"ipv6_subnet_bits" doc:"Prefix length that groups IPv6 clients into a subnet."`
	Slots          int  `yaml:"slots" doc:"Entries per limiter table (power of two). Memory is fixed by this, not by the number of clients."`
}

// Challenge configures the proof-of-work and no-JavaScript challenges
// (docs/challenge.md).
type Challenge struct {
	Status              int           `yaml:"status" doc:"HTTP status of the challenge page."`
	PassTTL             time.Duration `yaml:"pass_ttl" doc:"How long a solved challenge's pass cookie is honoured."`
	ChallengeTTL        time.Duration `yaml:"challenge_ttl" doc:"How long an issued challenge may be solved."`
	MinDifficulty       int           `yaml:"min_difficulty" doc:"Proof-of-work difficulty (leading zero bits of SHA-256) at the challenge threshold."`
	MaxDifficulty       int           `yaml:"max_difficulty" doc:"Proof-of-work difficulty at max_difficulty_weight and above."`
	MaxDifficultyWeight int           `yaml:"max_difficulty_weight" doc:"Policy weight at which the difficulty reaches max_difficulty."`
	NoJSWeightBelow     int           `yaml:"nojs_weight_below" doc:"Requests challenged with a weight below this get the cheap no-JavaScript check instead of proof of work; negative: always proof of work."`
	NoJSFallbackWait    time.Duration `yaml:"nojs_fallback_wait" doc:"Wait imposed on the proof-of-work page's no-JavaScript fallback."`
	CookieName          string        `yaml:"cookie_name" doc:"Name of the pass cookie."`
	KeyFile             string        `yaml:"key_file" doc:"Ed25519 signing keys for passes (PEM; the first signs, the others only verify). Empty: generated, kept in the store and rotated."`
	KeyRotation         time.Duration `yaml:"key_rotation" doc:"How often the stored signing key is replaced (old keys keep verifying until their passes expire)."`
	ExemptPaths         []string      `yaml:"exempt_paths" doc:"Path prefixes never challenged, e.g. APIs and webhooks (robots.txt, favicons, /.well-known/ and feeds never are)."`
	SecureCookie        bool          `yaml:"secure_cookie" doc:"Set the Secure flag on cookies; enable when clients reach the site over TLS."`
}

// Rate is a number of requests per period with a burst allowance.
type Rate struct {
	Requests int           `yaml:"requests" doc:"Requests allowed per period; 0 disables the limit."`
	Per      time.Duration `yaml:"per" doc:"The period."`
	Burst    int           `yaml:"burst" doc:"Requests allowed at once above the steady rate."`
}

// Robots configures the robots.txt the edge serves.
type Robots struct {
	Serve            bool          `yaml:"serve" doc:"Answer /robots.txt at the edge (the upstream's file, merged with the rules below)."`
	DisallowAIAgents bool          `yaml:"disallow_ai_agents" doc:"Add a Disallow: / group for every declared AI crawler of the ai.robots.txt list."`
	Refresh          time.Duration `yaml:"refresh" doc:"How often the upstream's robots.txt is fetched again."`
}

// Events configures the bounded queue of events for analysis.
type Events struct {
	QueueSize   int  `yaml:"queue_size" doc:"Events held for the analysis pipeline; when full, new events are dropped and counted (events_dropped_total)."`
	AllRequests bool `yaml:"all_requests" doc:"Send every request to the escalation engine, not only those a rule matched: behaviour signals (pages vs assets, rate, distinct paths) need them. Applies when the AI service runs in the same process."`
}

// Transport tunes the connection pool to the upstream.
type Transport struct {
	MaxIdleConnsPerHost int           `yaml:"max_idle_conns_per_host" doc:"Idle keep-alive connections kept to the upstream."`
	MaxConnsPerHost     int           `yaml:"max_conns_per_host" doc:"Upper bound on connections to the upstream; 0 means no bound."`
	DialTimeout         time.Duration `yaml:"dial_timeout" doc:"Timeout for connecting to the upstream."`
	ResponseTimeout     time.Duration `yaml:"response_header_timeout" doc:"Timeout for the upstream's response headers."`
}

// Timeouts of the public listener.
type Timeouts struct {
	ReadHeader time.Duration `yaml:"read_header" doc:"Time allowed to read request headers (slowloris guard)."`
	Idle       time.Duration `yaml:"idle" doc:"Keep-alive idle timeout."`
	Shutdown   time.Duration `yaml:"shutdown" doc:"Time given to in-flight requests to finish on shutdown."`
}

// Lists configures the crawler lists and their refresh.
type Lists struct {
	RefreshInterval time.Duration `yaml:"refresh_interval" doc:"How often the ai.robots.txt list and crawler IP ranges are fetched from their sources; 0 keeps the embedded snapshot."`
	AIAgentsURL     string        `yaml:"ai_agents_url" doc:"Source of the ai.robots.txt robots.json list."`
}

// API configures the decisions API on the admin listener.
type API struct {
	TokenFile string `yaml:"token_file" doc:"File holding the bearer token of the decisions API. Empty: <data_dir>/api.token, generated on first start."`
}

// Default returns the configuration used when nothing is set.
func Default() Config {
	return Config{
		Log: LogConfig{Level: "info"},
		Edge: Edge{
			Listen:            ":8080",
			AdminListen:       "127.0.0.1:9080",
			ClientIPHeaders:   []string{"Forwarded", "X-Forwarded-For", "X-Real-IP"},
			AllowVerifiedBots: true,
			Block:             BlockPage{Status: 403},
			RateLimit: RateLimit{
				PerIP:          Rate{Requests: 600, Per: time.Minute, Burst: 60},
				PerSubnet:      Rate{Requests: 3000, Per: time.Minute, Burst: 300},
				IPv4SubnetBits: 24,
				IPv6SubnetBits: 48,
				Slots:          65536,
			},
			Challenge: Challenge{
				Status: 403, PassTTL: 24 * time.Hour, ChallengeTTL: 5 * time.Minute,
				MinDifficulty: 14, MaxDifficulty: 20, MaxDifficultyWeight: 40, NoJSWeightBelow: 10,
				NoJSFallbackWait: 10 * time.Second, CookieName: "scrapedefense_pass", KeyRotation: 7 * 24 * time.Hour,
			},
			Robots:          Robots{Serve: true, DisallowAIAgents: true, Refresh: 5 * time.Minute},
			Events:          Events{QueueSize: 10000, AllRequests: true},
			Upstreams:       Transport{MaxIdleConnsPerHost: 1024, DialTimeout: 5 * time.Second, ResponseTimeout: 60 * time.Second},
			Timeouts:        Timeouts{ReadHeader: 10 * time.Second, Idle: 120 * time.Second, Shutdown: 30 * time.Second},
			MaxHeaderBytes:  32 << 10,
			ForwardAuthPath: "/forward-auth",
			TrapLinks:       true,
		},
		Lists: Lists{
			AIAgentsURL: "https://raw.githubusercontent.com/ai-robots-txt/ai.robots.txt/main/robots.json",
		},
		AI: AI{
			Listen:        "127.0.0.1:8000",
			ReplayWindow:  5 * time.Minute,
			MaxBodyBytes:  1 << 20,
			MaxEvents:     500,
			RateLimit:     Rate{Requests: 600_000, Per: time.Minute, Burst: 5000},
			QueueCapacity: 1_000_000,
		},
		Escalation: Escalation{
			Listen:     "127.0.0.1:8003",
			Workers:    2,
			Batch:      64,
			Thresholds: Ladder{Challenge: 0.5, Throttle: 0.7, Tarpit: 0.8, Block: 0.9},
			TTL:        ActionTTLs{Challenge: 30 * time.Minute, Throttle: 15 * time.Minute, Tarpit: time.Hour, Block: 4 * time.Hour},
			MaxTTL:     7 * 24 * time.Hour,
			MaxClients: 1_000_000,
			Classifier: Classifier{Kind: "none", Budget: 800 * time.Millisecond, MaxConcurrent: 4, GreyLow: 0.4, GreyHigh: 0.8},
		},
		Alerts: Alerts{
			MinSeverity: "warning",
			Window:      5 * time.Minute,
			PagerDuty:   AlertPD{URL: "https://events.pagerduty.com/v2/enqueue"},
		},
		Tarpit: Tarpit{
			Listen:             "127.0.0.1:8001",
			AdminListen:        "127.0.0.1:9081",
			Prefix:             "/.well-known/sd-archive/",
			LinksPerPage:       12,
			DripBytesPerSecond: 48,
			MaxSession:         3 * time.Minute,
			MaxConns:           10_000,
			MaxConnsPerSubnet:  64,
			MaxBytesPerSecond:  1 << 20,
			HopLimit:           10,
			HopWindow:          time.Hour,
			BlockTTL:           24 * time.Hour,
		},
	}
}

// DefaultDataDir is where state lives when data_dir is not set.
func DefaultDataDir() string {
	if d := os.Getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "scrapedefense")
	}
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, ".local", "state", "scrapedefense")
	}
	return filepath.Join(os.TempDir(), "scrapedefense")
}

// FieldError is one configuration problem and the key path it concerns.
type FieldError struct {
	Path string
	Msg  string
}

func (e *FieldError) Error() string { return e.Path + ": " + e.Msg }

type errList []error

func (l *errList) add(path, format string, args ...any) {
	*l = append(*l, &FieldError{Path: path, Msg: fmt.Sprintf(format, args...)})
}

// Validate checks the configuration and returns every problem at once.
func (c *Config) Validate() error {
	var errs errList
	if _, ok := logLevels[strings.ToLower(c.Log.Level)]; !ok {
		errs.add("log.level", "unknown level %q (want debug, info, warn or error)", c.Log.Level)
	}
	e := &c.Edge
	checkListen(&errs, "edge.listen", e.Listen, false)
	checkListen(&errs, "edge.admin_listen", e.AdminListen, false)
	if e.Listen != "" && e.Listen == e.AdminListen {
		errs.add("edge.admin_listen", "must differ from edge.listen")
	}
	if e.Upstream != "" {
		checkURL(&errs, "edge.upstream", e.Upstream)
	}
	checkPrefixes(&errs, "edge.trusted_proxies", e.TrustedProxies)
	checkPrefixes(&errs, "edge.proxy_protocol.trusted", e.ProxyProtocol.Trusted)
	for i, h := range e.ClientIPHeaders {
		switch strings.ToLower(h) {
		case "forwarded", "x-forwarded-for", "x-real-ip":
		default:
			errs.add(fmt.Sprintf("edge.client_ip_headers[%d]", i), "unsupported header %q (want Forwarded, X-Forwarded-For or X-Real-IP)", h)
		}
	}
	if e.Block.Status < 400 || e.Block.Status > 599 {
		errs.add("edge.block.status", "must be a 4xx or 5xx status, got %d", e.Block.Status)
	}
	checkFile(&errs, "edge.block.body_file", e.Block.BodyFile)
	checkFile(&errs, "edge.policy_file", e.PolicyFile)
	checkRate(&errs, "edge.rate_limit.per_ip", e.RateLimit.PerIP)
	checkRate(&errs, "edge.rate_limit.per_subnet", e.RateLimit.PerSubnet)
	if b := e.RateLimit.IPv4SubnetBits; b < 8 || b > 32 {
		errs.add("edge.rate_limit.ipv4_subnet_bits", "must be between 8 and 32, got %d", b)
	}
	if b := e.RateLimit.IPv6SubnetBits; b < 16 || b > 128 {
		errs.add("edge.rate_limit.ipv6_subnet_bits", "must be between 16 and 128, got %d", b)
	}
	if s := e.RateLimit.Slots; s < 1024 || s > 1<<24 || s&(s-1) != 0 {
		errs.add("edge.rate_limit.slots", "must be a power of two between 1024 and 16777216, got %d", s)
	}
	ch := e.Challenge
	if ch.Status < 200 || ch.Status > 599 {
		errs.add("edge.challenge.status", "must be an HTTP status, got %d", ch.Status)
	}
	if ch.PassTTL < time.Minute {
		errs.add("edge.challenge.pass_ttl", "must be at least 1m, got %s", ch.PassTTL)
	}
	if ch.ChallengeTTL < 10*time.Second {
		errs.add("edge.challenge.challenge_ttl", "must be at least 10s, got %s", ch.ChallengeTTL)
	}
	if ch.MinDifficulty < 1 || ch.MinDifficulty > 32 {
		errs.add("edge.challenge.min_difficulty", "must be between 1 and 32, got %d", ch.MinDifficulty)
	}
	if ch.MaxDifficulty < ch.MinDifficulty || ch.MaxDifficulty > 32 {
		errs.add("edge.challenge.max_difficulty", "must be between min_difficulty and 32, got %d", ch.MaxDifficulty)
	}
	if ch.NoJSFallbackWait <= 0 || ch.NoJSFallbackWait >= ch.ChallengeTTL {
		errs.add("edge.challenge.nojs_fallback_wait", "must be positive and under challenge_ttl, got %s", ch.NoJSFallbackWait)
	}
	if ch.CookieName == "" {
		errs.add("edge.challenge.cookie_name", "is required")
	}
	checkFile(&errs, "edge.challenge.key_file", ch.KeyFile)
	for i, p := range ch.ExemptPaths {
		if !strings.HasPrefix(p, "/") {
			errs.add(fmt.Sprintf("edge.challenge.exempt_paths[%d]", i), "must start with /, got %q", p)
		}
	}
	if e.Robots.Refresh < time.Second {
		errs.add("edge.robots.refresh", "must be at least 1s, got %s", e.Robots.Refresh)
	}
	if q := e.Events.QueueSize; q < 1 || q > 10_000_000 {
		errs.add("edge.events.queue_size", "must be between 1 and 10000000, got %d", q)
	}
	if e.Upstreams.MaxIdleConnsPerHost < 1 {
		errs.add("edge.transport.max_idle_conns_per_host", "must be at least 1")
	}
	if e.Upstreams.MaxConnsPerHost < 0 {
		errs.add("edge.transport.max_conns_per_host", "must not be negative")
	}
	positive(&errs, "edge.transport.dial_timeout", e.Upstreams.DialTimeout)
	positive(&errs, "edge.transport.response_header_timeout", e.Upstreams.ResponseTimeout)
	positive(&errs, "edge.timeouts.read_header", e.Timeouts.ReadHeader)
	positive(&errs, "edge.timeouts.idle", e.Timeouts.Idle)
	positive(&errs, "edge.timeouts.shutdown", e.Timeouts.Shutdown)
	if m := e.MaxHeaderBytes; m < 1024 || m > 1<<20 {
		errs.add("edge.max_header_bytes", "must be between 1024 and 1048576, got %d", m)
	}
	if !strings.HasPrefix(e.ForwardAuthPath, "/") {
		errs.add("edge.forward_auth_path", "must start with /, got %q", e.ForwardAuthPath)
	}
	if c.Lists.RefreshInterval < 0 || (c.Lists.RefreshInterval > 0 && c.Lists.RefreshInterval < time.Minute) {
		errs.add("lists.refresh_interval", "must be 0 (off) or at least 1m, got %s", c.Lists.RefreshInterval)
	}
	if c.Lists.AIAgentsURL != "" {
		checkURL(&errs, "lists.ai_agents_url", c.Lists.AIAgentsURL)
	}
	checkFile(&errs, "api.token_file", c.API.TokenFile)
	c.validateAI(&errs)
	c.validateEscalation(&errs)
	c.validateAlerts(&errs)
	c.validateTarpit(&errs)
	return errors.Join(errs...)
}

var logLevels = map[string]bool{"debug": true, "info": true, "warn": true, "error": true}

func checkListen(errs *errList, path, addr string, allowEmpty bool) {
	if addr == "" {
		if !allowEmpty {
			errs.add(path, "is required")
		}
		return
	}
	if _, port, err := net.SplitHostPort(addr); err != nil {
		errs.add(path, "invalid listen address %q: %v", addr, err)
	} else if port == "" {
		errs.add(path, "listen address %q has no port", addr)
	}
}

func checkURL(errs *errList, path, raw string) {
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		errs.add(path, "invalid URL: %v", err)
	case u.Scheme != "http" && u.Scheme != "https":
		errs.add(path, "URL %q must use http or https", raw)
	case u.Host == "":
		errs.add(path, "URL %q has no host", raw)
	}
}

func checkPrefixes(errs *errList, path string, list []string) {
	for i, s := range list {
		if _, err := decision.ParsePrefix(s); err != nil {
			errs.add(fmt.Sprintf("%s[%d]", path, i), "%v", err)
		}
	}
}

func checkFile(errs *errList, path, name string) {
	if name == "" {
		return
	}
	if st, err := os.Stat(name); err != nil {
		errs.add(path, "cannot read %q: %v", name, errors.Unwrap(err))
	} else if st.IsDir() {
		errs.add(path, "%q is a directory", name)
	}
}

func checkRate(errs *errList, path string, r Rate) {
	if r.Requests < 0 {
		errs.add(path+".requests", "must not be negative")
	}
	if r.Requests > 0 && r.Per <= 0 {
		errs.add(path+".per", "must be positive when requests is set")
	}
	if r.Burst < 0 {
		errs.add(path+".burst", "must not be negative")
	}
}

func positive(errs *errList, path string, d time.Duration) {
	if d <= 0 {
		errs.add(path, "must be positive, got %s", d)
	}
}

func (c *Config) validateAI(errs *errList) {
	a := &c.AI
	checkListen(errs, "ai.listen", a.Listen, false)
	for i, s := range a.Senders {
		path := fmt.Sprintf("ai.senders[%d]", i)
		name, file, ok := strings.Cut(s, ":")
		if !ok || name == "" || file == "" {
			errs.add(path, "want name:secret_file, got %q", s)
			continue
		}
		checkFile(errs, path, file)
	}
	positive(errs, "ai.replay_window", a.ReplayWindow)
	if a.MaxBodyBytes < 1024 || a.MaxBodyBytes > 64<<20 {
		errs.add("ai.max_body_bytes", "must be between 1024 and 67108864, got %d", a.MaxBodyBytes)
	}
	if a.MaxEvents < 1 || a.MaxEvents > 10_000 {
		errs.add("ai.max_events", "must be between 1 and 10000, got %d", a.MaxEvents)
	}
	checkRate(errs, "ai.rate_limit", a.RateLimit)
	if a.QueueCapacity < 1 || a.QueueCapacity > 100_000_000 {
		errs.add("ai.queue_capacity", "must be between 1 and 100000000, got %d", a.QueueCapacity)
	}
}

func (c *Config) validateEscalation(errs *errList) {
	e := &c.Escalation
	checkListen(errs, "escalation.listen", e.Listen, false)
	if e.Workers < 1 || e.Workers > 256 {
		errs.add("escalation.workers", "must be between 1 and 256, got %d", e.Workers)
	}
	if e.Batch < 1 || e.Batch > 10_000 {
		errs.add("escalation.batch", "must be between 1 and 10000, got %d", e.Batch)
	}
	prev := 0.0
	for _, t := range []struct {
		name string
		v    float64
	}{{"challenge", e.Thresholds.Challenge}, {"throttle", e.Thresholds.Throttle}, {"tarpit", e.Thresholds.Tarpit}, {"block", e.Thresholds.Block}} {
		if !(t.v > prev && t.v <= 1) { // also rejects NaN
			errs.add("escalation.thresholds."+t.name, "must be above the lower rungs and at most 1, got %v", t.v)
		} else {
			prev = t.v
		}
	}
	for _, t := range []struct {
		name string
		v    time.Duration
	}{{"challenge", e.TTL.Challenge}, {"throttle", e.TTL.Throttle}, {"tarpit", e.TTL.Tarpit}, {"block", e.TTL.Block}} {
		positive(errs, "escalation.ttl."+t.name, t.v)
		if e.MaxTTL < t.v {
			errs.add("escalation.max_ttl", "must be at least every escalation.ttl, got %s", e.MaxTTL)
		}
	}
	checkFile(errs, "escalation.model_file", e.ModelFile)
	if e.MaxClients < 1000 || e.MaxClients > 100_000_000 {
		errs.add("escalation.max_clients", "must be between 1000 and 100000000, got %d", e.MaxClients)
	}
	cl := &e.Classifier
	switch cl.Kind {
	case "none", "":
	case "openai", "http":
		if cl.URL == "" {
			errs.add("escalation.classifier.url", "is required for kind %s", cl.Kind)
		} else {
			checkURL(errs, "escalation.classifier.url", cl.URL)
		}
		if cl.Kind == "openai" && cl.Model == "" {
			errs.add("escalation.classifier.model", "is required for kind openai")
		}
	default:
		errs.add("escalation.classifier.kind", "unknown kind %q (want none, openai or http)", cl.Kind)
	}
	checkFile(errs, "escalation.classifier.api_key_file", cl.APIKeyFile)
	positive(errs, "escalation.classifier.budget", cl.Budget)
	if cl.MaxConcurrent < 1 {
		errs.add("escalation.classifier.max_concurrent", "must be at least 1")
	}
	if !(cl.GreyLow >= 0 && cl.GreyLow < cl.GreyHigh && cl.GreyHigh <= 1) {
		errs.add("escalation.classifier.grey_low", "grey_low and grey_high must satisfy 0 <= grey_low < grey_high <= 1")
	}
	if !(cl.PricePer1K >= 0) {
		errs.add("escalation.classifier.price_per_1k_tokens", "must not be negative")
	}
}

func (c *Config) validateAlerts(errs *errList) {
	a := &c.Alerts
	switch a.MinSeverity {
	case "info", "warning", "critical":
	default:
		errs.add("alerts.min_severity", "unknown severity %q (want info, warning or critical)", a.MinSeverity)
	}
	if a.Window < time.Second {
		errs.add("alerts.window", "must be at least 1s, got %s", a.Window)
	}
	if a.Webhook.URL != "" {
		checkURL(errs, "alerts.webhook.url", a.Webhook.URL)
		if a.Webhook.SecretFile == "" {
			errs.add("alerts.webhook.secret_file", "is required: receivers must be able to verify alerts")
		}
	}
	checkFile(errs, "alerts.webhook.secret_file", a.Webhook.SecretFile)
	checkFile(errs, "alerts.slack.url_file", a.Slack.URLFile)
	if a.SMTP.Addr != "" {
		if _, _, err := net.SplitHostPort(a.SMTP.Addr); err != nil {
			errs.add("alerts.smtp.addr", "want host:port: %v", err)
		}
		if a.SMTP.From == "" {
			errs.add("alerts.smtp.from", "is required with alerts.smtp.addr")
		}
		if len(a.SMTP.To) == 0 {
			errs.add("alerts.smtp.to", "is required with alerts.smtp.addr")
		}
		if a.SMTP.InsecureNoTLS && a.SMTP.PasswordFile != "" {
			errs.add("alerts.smtp.insecure_no_tls", "cannot be combined with a password")
		}
	}
	checkFile(errs, "alerts.smtp.password_file", a.SMTP.PasswordFile)
	if a.PagerDuty.RoutingKeyFile != "" {
		checkURL(errs, "alerts.pagerduty.url", a.PagerDuty.URL)
	}
	checkFile(errs, "alerts.pagerduty.routing_key_file", a.PagerDuty.RoutingKeyFile)
}

func (c *Config) validateTarpit(errs *errList) {
	t := &c.Tarpit
	checkListen(errs, "tarpit.listen", t.Listen, false)
	checkListen(errs, "tarpit.admin_listen", t.AdminListen, false)
	if !strings.HasPrefix(t.Prefix, "/") || !strings.HasSuffix(t.Prefix, "/") || len(t.Prefix) < 3 {
		errs.add("tarpit.prefix", "must start and end with / and name a directory, got %q", t.Prefix)
	}
	checkFile(errs, "tarpit.seed_file", t.SeedFile)
	checkFile(errs, "tarpit.model_file", t.ModelFile)
	checkFile(errs, "tarpit.template_file", t.TemplateFile)
	for _, f := range []struct {
		path      string
		v, lo, hi int
	}{
		{"tarpit.links_per_page", t.LinksPerPage, 1, 100},
		{"tarpit.drip_bytes_per_second", t.DripBytesPerSecond, 1, 1 << 30},
		{"tarpit.max_conns", t.MaxConns, 1, 1_000_000},
		{"tarpit.max_conns_per_subnet", t.MaxConnsPerSubnet, 1, 1_000_000},
		{"tarpit.max_bytes_per_second", t.MaxBytesPerSecond, 1, 1 << 30},
		{"tarpit.hop_limit", t.HopLimit, 1, 1_000_000},
	} {
		if f.v < f.lo || f.v > f.hi {
			errs.add(f.path, "must be between %d and %d, got %d", f.lo, f.hi, f.v)
		}
	}
	positive(errs, "tarpit.max_session", t.MaxSession)
	positive(errs, "tarpit.hop_window", t.HopWindow)
	positive(errs, "tarpit.block_ttl", t.BlockTTL)
}
