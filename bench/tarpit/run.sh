#!/usr/bin/env bash
# Starts the tarpit role, holds N slow-reading connections against it with
# the load client and samples the server's RSS and CPU from /proc.
#
#   bench/tarpit/run.sh [conns] [hold-seconds]
#
# Both processes need one file descriptor per connection (plus a few):
# the script raises `ulimit -n` to 65536 where the hard limit allows.
# Target: 10,000 connections with RSS <= 256 MB and <= 25 % of one core.
set -euo pipefail
cd "$(dirname "$0")/../.."
CONNS=${1:-10000}
HOLD=${2:-60}
URL=${TARPIT_URL:-http://127.0.0.1:8001/.well-known/sd-archive/}
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
echo "fd limit: $(ulimit -n)"
[ "$(ulimit -n)" -gt $((CONNS + 100)) ] || echo "warning: fd limit below $CONNS connections" >&2

BIN=$(mktemp -d)/scrapedefense
go build -o "$BIN" ./cmd/scrapedefense
go build -o "$BIN-load" ./bench/tarpit
DATA=$(mktemp -d)
"$BIN" serve --roles tarpit --data-dir "$DATA" >"$DATA/server.log" 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null; rm -rf "$DATA"' EXIT
for _ in $(seq 50); do curl -fs http://127.0.0.1:9081/health >/dev/null && break; sleep 0.1; done

"$BIN-load" -url "$URL" -conns "$CONNS" -hold "${HOLD}s" &
LOAD=$!
TICKS=$(getconf CLK_TCK)
prev=$(awk '{print $14+$15}' /proc/$PID/stat); prevt=$(date +%s.%N)
peak=0
while kill -0 $LOAD 2>/dev/null; do
  sleep 5
  rss=$(awk '/VmRSS/{print $2}' /proc/$PID/status)
  cur=$(awk '{print $14+$15}' /proc/$PID/stat); now=$(date +%s.%N)
  cpu=$(echo "($cur-$prev)/$TICKS/($now-$prevt)*100" | bc -l)
  prev=$cur; prevt=$now
  [ "$rss" -gt "$peak" ] && peak=$rss
  printf 'server rss=%d MB cpu=%.1f%% of one core conns=%s\n' $((rss/1024)) "$cpu" \
    "$(curl -fs http://127.0.0.1:9081/metrics | awk '/^tarpit_active_connections/{print $2}')"
done
wait $LOAD || true
echo "peak server RSS: $((peak/1024)) MB"
curl -fs http://127.0.0.1:9081/metrics | grep -E '^tarpit_(degraded|sessions_ended|bytes_sent|time_wasted)' || true
