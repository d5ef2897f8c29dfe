#!/usr/bin/env bash
# Starts the tarpit role, holds N slow-reading connections against it with
# the load client and samples the server's RSS and CPU from /proc.
#
#   bench/tarpit/run.sh [conns] [hold-seconds]
#   SDBENCH_BIN=/tmp/scrapedefense bench/tarpit/run.sh   # use a built binary
#
# Both processes need one file descriptor per connection (plus a few):
# the script raises `ulimit -n` to 65536, or to the hard limit when that is
# lower. The load client spreads its connections over loopback source
# addresses (32 per /24, one per address) so that the tarpit's per-subnet
# cap (tarpit.max_conns_per_subnet, 64) and per-client hop limit see many
# crawlers, as in production, instead of one address holding everything.
# Target: 10,000 connections with RSS <= 256 MB, <= 25 % of one core and
# < 0.1 % errors.
set -euo pipefail
cd "$(dirname "$0")/../.."
CONNS=${1:-10000}
HOLD=${2:-60}
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
echo "fd limit: $(ulimit -n)"
[ "$(ulimit -n)" -gt $((CONNS + 100)) ] || echo "warning: fd limit below $CONNS connections" >&2

WORK=$(mktemp -d)
PID=""
cleanup() {
	[ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
	rm -rf "$WORK"
}
trap cleanup EXIT

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
LISTEN=127.0.0.1:$(free_port)
ADMIN=127.0.0.1:$(free_port)
URL=${TARPIT_URL:-http://$LISTEN/.well-known/sd-archive/}

BIN=${SDBENCH_BIN:-}
if [ -z "$BIN" ]; then
	BIN=$WORK/scrapedefense
	go build -o "$BIN" ./cmd/scrapedefense
fi
go build -o "$WORK/load" ./bench/tarpit
# The connection cap defaults to exactly 10,000; leave room for the health
# and metrics requests.
SCRAPEDEFENSE_TARPIT_LISTEN=$LISTEN SCRAPEDEFENSE_TARPIT_ADMIN_LISTEN=$ADMIN \
	SCRAPEDEFENSE_TARPIT_MAX_CONNS=$((CONNS + 100)) SCRAPEDEFENSE_LOG_LEVEL=warn \
	"$BIN" serve --roles tarpit --data-dir "$WORK/data" >"$WORK/server.log" 2>&1 &
PID=$!
for _ in $(seq 50); do curl -fs "http://$ADMIN/health" >/dev/null && break; sleep 0.1; done
kill -0 "$PID" || { cat "$WORK/server.log" >&2; exit 1; }
echo "load: $(uptime)"

"$WORK/load" -url "$URL" -conns "$CONNS" -hold "${HOLD}s" &
LOAD=$!
TICKS=$(getconf CLK_TCK)
first=$(awk '{print $14+$15}' /proc/$PID/stat); firstt=$(date +%s.%N)
prev=$first; prevt=$firstt
peak=0 maxcpu=0
while kill -0 $LOAD 2>/dev/null; do
	sleep 5
	rss=$(awk '/VmRSS/{print $2}' /proc/$PID/status)
	cur=$(awk '{print $14+$15}' /proc/$PID/stat); now=$(date +%s.%N)
	cpu=$(echo "($cur-$prev)/$TICKS/($now-$prevt)*100" | bc -l)
	prev=$cur; prevt=$now
	[ "$rss" -gt "$peak" ] && peak=$rss
	maxcpu=$(echo "if ($cpu > $maxcpu) $cpu else $maxcpu" | bc -l)
	printf 'server rss=%d MB cpu=%.1f%% of one core conns=%s\n' $((rss/1024)) "$cpu" \
		"$(curl -fs "http://$ADMIN/metrics" | awk '/^tarpit_active_connections/{print $2}')"
done
wait $LOAD || true
cur=$(awk '{print $14+$15}' /proc/$PID/stat); now=$(date +%s.%N)
printf 'server: peak RSS %d MB, CPU mean %.1f%% / max %.1f%% of one core over the run\n' \
	$((peak/1024)) "$(echo "($cur-$first)/$TICKS/($now-$firstt)*100" | bc -l)" "$maxcpu"
curl -fs "http://$ADMIN/metrics" | grep -E '^tarpit_(degraded|sessions_ended|bytes_sent|time_wasted|block_decisions)' || true
