#!/usr/bin/env bash
# Pictures of the Grafana dashboards from real data, without Grafana:
# builds scrapedefense, runs it with every role on free loopback ports and a
# fresh data directory, scrapes it with a real Prometheus (1 s scrape and
# rule evaluation, the shipped rules with their windows shortened so that a
# few minutes of data fill them), drives a few minutes of mixed traffic
# (bench/traffic's people, crawlers and scrapers, maze visits, curl, signed
# webhook events and /escalate calls), then renders every dashboard in
# deploy/grafana/dashboards/ to docs/images/dashboard-<name>.png.
#
#   deploy/grafana/render/run.sh                 # about 4 minutes
#   DURATION=1m deploy/grafana/render/run.sh     # shorter traffic
#   OUT=/tmp/pics deploy/grafana/render/run.sh   # somewhere else than docs/images
#
# Needs go, prometheus (Debian: apt-get install prometheus), curl, openssl.
# Everything it starts is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/../../.."

DURATION=${DURATION:-3m}
OUT=${OUT:-docs/images}
PROMETHEUS=${PROMETHEUS:-prometheus}

# The shipped windows mapped to seconds, order kept (5m < 10m < 30m < 1h <
# 6h < 1d < 7d < 30d): with 1 s evaluation each still holds many samples,
# and the 30-day SLI covers the whole run. The dashboards' own selectors get
# the same mapping when rendered.
RANGES=5m=20s,10m=30s,30m=40s,1h=60s,6h=90s,1d=120s,7d=150s,30d=180s

command -v "$PROMETHEUS" >/dev/null || { echo "run.sh: $PROMETHEUS not found (apt-get install prometheus)" >&2; exit 1; }

WORK=$(mktemp -d)
pids=()
cleanup() {
	local pid
	for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
	for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { printf '== %s\n' "$*" >&2; }

log "building"
go build -o "$WORK/scrapedefense" ./cmd/scrapedefense
go build -o "$WORK/render" ./deploy/grafana/render
go build -o "$WORK/traffic" ./bench/traffic

# A loopback port nothing answers on. Ports are picked at random from a
# range the kernel does not hand out for outgoing connections.
used_ports=" "
free_port() {
	local p
	while :; do
		p=$((20000 + RANDOM % 12000))
		case $used_ports in *" $p "*) continue ;; esac
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			used_ports+="$p "
			echo "$p"
			return
		fi
	done
}

wait_http() { # url what
	local i
	for i in $(seq 1 120); do
		curl -fsS -o /dev/null "$1" 2>/dev/null && return 0
		sleep 0.5
	done
	echo "run.sh: $2 did not come up ($1)" >&2
	return 1
}

# scrapedefense: every *listen key on a free port; nothing inherited from
# the caller's SCRAPEDEFENSE_ settings (the binary rejects unknown ones).
for v in $(compgen -e | grep '^SCRAPEDEFENSE_' || true); do unset "$v"; done
declare -A addr
while read -r key env; do
	a=127.0.0.1:$(free_port)
	addr[$key]=$a
	export "$env=$a"
done < <("$WORK/scrapedefense" config keys | awk '$1 ~ /listen$/ {print $1, $2}')
for k in edge.listen edge.admin_listen ai.listen escalation.listen tarpit.admin_listen; do
	[ -n "${addr[$k]:-}" ] || { echo "run.sh: no $k in 'scrapedefense config keys'" >&2; exit 1; }
done
SENDER=render-demo
head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$WORK/sender.secret"
export SCRAPEDEFENSE_DATA_DIR=$WORK/data
export SCRAPEDEFENSE_EDGE_TRUSTED_PROXIES=127.0.0.1/32
export SCRAPEDEFENSE_AI_SENDERS=$SENDER:$WORK/sender.secret
export SCRAPEDEFENSE_LOG_LEVEL=warn

log "starting scrapedefense (edge ${addr[edge.listen]})"
"$WORK/scrapedefense" serve --roles all >"$WORK/scrapedefense.log" 2>&1 &
pids+=($!)
wait_http "http://${addr[edge.admin_listen]}/health" "scrapedefense" || { cat "$WORK/scrapedefense.log" >&2; exit 1; }

# Prometheus: the jobs of deploy/prometheus/prometheus.yml for the roles
# that run here, and the shipped rule files with shortened windows.
mkdir -p "$WORK/rules"
sed_args=()
IFS=, read -ra pairs <<<"$RANGES"
for p in "${pairs[@]}"; do sed_args+=(-e "s/\[${p%%=*}\]/[${p#*=}]/g"); done
for f in deploy/prometheus/rules/*.yml; do
	sed "${sed_args[@]}" -e 's/^\([[:space:]]*for:\) .*/\1 5s/' \
		-e 's/^\([[:space:]]*interval:\) .*/\1 5s/' "$f" >"$WORK/rules/$(basename "$f")"
done
PROM=127.0.0.1:$(free_port)
cat >"$WORK/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
  external_labels: {deployment: scrapedefense}
rule_files: ["$WORK/rules/*.yml"]
scrape_configs:
  - job_name: edge
    static_configs: [{targets: ["${addr[edge.admin_listen]}"]}]
  - job_name: ai-service
    static_configs: [{targets: ["${addr[ai.listen]}"]}]
  - job_name: escalation
    static_configs: [{targets: ["${addr[escalation.listen]}"]}]
  - job_name: tarpit
    static_configs: [{targets: ["${addr[tarpit.admin_listen]}"]}]
  - job_name: prometheus
    static_configs: [{targets: ["$PROM"]}]
EOF
log "starting prometheus ($PROM)"
"$PROMETHEUS" --config.file="$WORK/prometheus.yml" --storage.tsdb.path="$WORK/tsdb" \
	--web.listen-address="$PROM" --log.level=warn >"$WORK/prometheus.log" 2>&1 &
pids+=($!)
wait_http "http://$PROM/-/ready" "prometheus" || { cat "$WORK/prometheus.log" >&2; exit 1; }
start=$(date +%s)

# Signed webhook traffic (docs/webhook.md): batches of events as a log
# shipper would send them, a block command, a forged signature now and then,
# and /escalate on the escalation listener.
post_signed() { # url body-file
	local t sig
	t=$(date +%s)
	sig=$({ printf '%s.' "$t"; cat "$2"; } | openssl dgst -sha256 -hmac "$(cat "$WORK/sender.secret")" | awk '{print $NF}')
	curl -sS -o /dev/null -X POST "$1" -H 'Content-Type: application/json' \
		-H "X-Scrapedefense-Sender: $SENDER" -H "X-Scrapedefense-Signature: t=$t,v1=$sig" \
		--data-binary @"$2" || true
}
webhooks() {
	local i n now ip
	for i in $(seq 1 1000); do
		now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
		{
			printf '{"v":1,"type":"events","events":['
			for n in 1 2 3 4 5; do
				ip=198.51.100.$(((i * 5 + n) % 250 + 1))
				[ "$n" = 1 ] || printf ','
				printf '{"v":1,"id":"render-%d-%d","time":"%s","client_ip":"%s","method":"GET","host":"www.example.org","path":"/articles/%d","user_agent":"Mozilla/5.0 (compatible; GPTBot/1.2; +https://openai.com/gptbot)","status":200,"headers":{"Accept":"*/*"}}' \
					"$i" "$n" "$now" "$ip" "$((i * 5 + n))"
			done
			printf ']}'
		} >"$WORK/batch.json"
		post_signed "http://${addr[ai.listen]}/webhook" "$WORK/batch.json"
		printf '{"v":1,"event":{"v":1,"time":"%s","client_ip":"203.0.113.%d","method":"GET","path":"/feed","user_agent":"python-requests/2.32"}}' \
			"$now" "$((i % 200 + 1))" >"$WORK/escalate.json"
		post_signed "http://${addr[escalation.listen]}/escalate" "$WORK/escalate.json"
		if [ $((i % 10)) = 0 ]; then
			printf '{"v":1,"type":"command","command":{"action":"block","target":"192.0.2.%d","ttl":"10m","reason":"render demo"}}' "$((i / 10))" >"$WORK/command.json"
			post_signed "http://${addr[ai.listen]}/webhook" "$WORK/command.json"
		fi
		if [ $((i % 7)) = 0 ]; then # forged: counted as webhook_rejected_total
			curl -sS -o /dev/null -X POST "http://${addr[ai.listen]}/webhook" -H 'Content-Type: application/json' \
				-H "X-Scrapedefense-Sender: $SENDER" -H "X-Scrapedefense-Signature: t=$(date +%s),v1=$(printf '0%.0s' $(seq 64))" \
				--data-binary @"$WORK/batch.json" || true
		fi
		sleep 2
	done
}

# A few plain clients bench/traffic has no family for: curl with its own
# user agent, and a crawler that walks into the maze (tarpit) and stays.
by_hand() {
	local i edge=http://${addr[edge.listen]}
	for i in $(seq 1 1000); do
		curl -sS -o /dev/null -H "X-Forwarded-For: 203.0.113.$((i % 50 + 1))" "$edge/" || true
		curl -sS -o /dev/null --max-time 5 -A 'Mozilla/5.0 (compatible; GPTBot/1.2; +https://openai.com/gptbot)' \
			-H "X-Forwarded-For: 20.171.206.$((i % 20 + 1))" "$edge/.well-known/sd-archive/p/$i" || true
		sleep 1
	done
}

log "driving traffic for $DURATION"
webhooks &
pids+=($!)
by_hand &
pids+=($!)
"$WORK/traffic" -target "${addr[edge.listen]}" -admin "${addr[edge.admin_listen]}" \
	-token-file "$WORK/data/api.token" -duration "$DURATION" -concurrency 30 \
	-people 120 -ai-crawlers 20 -stealth-scrapers 20 -distributed-stealth 64 \
	-http-library-scrapers 20 -impostor-crawlers 10 -verified-crawlers 10 \
	-trap-followers 10 -feed-readers 10 -link-previews 10 -group-limit 600 \
	>"$WORK/traffic.md" 2>"$WORK/traffic.log" || { tail -20 "$WORK/traffic.log" >&2; exit 1; }

# Let the last scrapes and rule evaluations land, then draw what Prometheus
# holds from its start to now.
sleep 5
window=$(($(date +%s) - start + 5))
mkdir -p "$OUT"
log "rendering to $OUT"
"$WORK/render" -prometheus "http://$PROM" -window "${window}s" -step 2s -ranges "$RANGES" \
	-out-dir "$OUT" deploy/grafana/dashboards/*.json
