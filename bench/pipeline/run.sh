#!/usr/bin/env bash
# AI-service webhook and escalation pipeline under a constant event rate:
# webhook latency, then the time from intake to enforced verdict, with the
# grey-zone classifier off and with a 1 s LLM stub on most events.
#
#   bench/pipeline/run.sh                      # 3 scenarios x REPEAT, ~30 s each
#   RATE=2000 DURATION=30s REPEAT=2 bench/pipeline/run.sh
#   SCENARIOS="single batch20" bench/pipeline/run.sh
#   SDBENCH_BIN=/tmp/sd bench/pipeline/run.sh   # use a built binary
#
# Every scenario gets a fresh server (all roles, temp data dir, free ports)
# so that the histograms and the queue hold that scenario alone.
set -euo pipefail
cd "$(dirname "$0")/../.."
RATE=${RATE:-2000}
DURATION=${DURATION:-30s}
REPEAT=${REPEAT:-1}
SCENARIOS=${SCENARIOS:-single batch20 llm}

WORK=$(mktemp -d)
PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$WORK"
}
trap cleanup EXIT

echo "== building" >&2
BIN=${SDBENCH_BIN:-}
if [ -z "$BIN" ]; then
	BIN=$WORK/scrapedefense
	go build -o "$BIN" ./cmd/scrapedefense
fi
go build -o "$WORK/pipeline" ./bench/pipeline
head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$WORK/secret"

# free_port prints a TCP port nobody listens on right now.
free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# scenario NAME BATCH LLM(0|1)
scenario() {
	local name=$1 batch=$2 llm=$3
	local data=$WORK/data-$name-$RANDOM
	local ai=127.0.0.1:$(free_port) esc=127.0.0.1:$(free_port)
	local env=(
		SCRAPEDEFENSE_DATA_DIR="$data"
		SCRAPEDEFENSE_LOG_LEVEL=warn
		SCRAPEDEFENSE_EDGE_LISTEN=127.0.0.1:$(free_port)
		SCRAPEDEFENSE_EDGE_ADMIN_LISTEN=127.0.0.1:$(free_port)
		SCRAPEDEFENSE_TARPIT_LISTEN=127.0.0.1:$(free_port)
		SCRAPEDEFENSE_TARPIT_ADMIN_LISTEN=127.0.0.1:$(free_port)
		SCRAPEDEFENSE_AI_LISTEN=$ai
		SCRAPEDEFENSE_ESCALATION_LISTEN=$esc
		SCRAPEDEFENSE_AI_SENDERS="bench:$WORK/secret"
		SCRAPEDEFENSE_AI_RATE_LIMIT_REQUESTS=100000000
		SCRAPEDEFENSE_AI_RATE_LIMIT_PER=1m
		SCRAPEDEFENSE_AI_RATE_LIMIT_BURST=1000000
	)
	local stub_pid=""
	if [ "$llm" = 1 ]; then
		local stub=127.0.0.1:$(free_port)
		"$WORK/pipeline" -stub-llm "$stub" -stub-delay 1s 2>"$WORK/stub.err" &
		stub_pid=$!
		PIDS+=("$stub_pid")
		env+=(
			SCRAPEDEFENSE_ESCALATION_CLASSIFIER_KIND=openai
			SCRAPEDEFENSE_ESCALATION_CLASSIFIER_URL="http://$stub/v1/chat/completions"
			SCRAPEDEFENSE_ESCALATION_CLASSIFIER_MODEL=stub
			SCRAPEDEFENSE_ESCALATION_CLASSIFIER_ALLOW_PRIVATE=true
			SCRAPEDEFENSE_ESCALATION_CLASSIFIER_GREY_LOW=0.01
			SCRAPEDEFENSE_ESCALATION_CLASSIFIER_GREY_HIGH=0.99
		)
	fi
	env "${env[@]}" "$BIN" serve >"$WORK/server.out" 2>"$WORK/server.err" &
	local pid=$!
	PIDS+=("$pid")
	for _ in $(seq 100); do curl -sf "http://$esc/metrics" >/dev/null && break; sleep 0.1; done
	if ! kill -0 "$pid" 2>/dev/null; then
		echo "server did not start" >&2; cat "$WORK/server.err" >&2; exit 1
	fi
	echo "### $name: $RATE events/s, batch $batch, LLM stub $([ "$llm" = 1 ] && echo "1 s on grey zone 0.01-0.99" || echo off), $DURATION; $(uptime | sed 's/.*load/load/')"
	"$WORK/pipeline" -url "http://$ai/webhook" -sender bench -secret-file "$WORK/secret" \
		-rate "$RATE" -batch "$batch" -duration "$DURATION" \
		-metrics "http://$esc/metrics" -pid "$pid"
	kill "$pid"; wait "$pid" 2>/dev/null || true
	if [ -n "$stub_pid" ]; then
		kill "$stub_pid"; wait "$stub_pid" 2>/dev/null || true
		cat "$WORK/stub.err"
	fi
	grep -iE 'level=(error|warn)' "$WORK/server.err" | sort | uniq -c | sort -rn | head -5 || true
	rm -rf "$data"
	echo
}

for r in $(seq "$REPEAT"); do
	for s in $SCENARIOS; do
		case $s in
		single) scenario single 1 0 ;;
		batch20) scenario batch20 20 0 ;;
		llm) scenario llm 1 1 ;;
		llm20) scenario llm20 20 1 ;;
		*) echo "unknown scenario $s" >&2; exit 2 ;;
		esac
	done
done
