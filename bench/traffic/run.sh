#!/usr/bin/env bash
# Detection-quality run: builds scrapedefense and the traffic simulator,
# starts `scrapedefense serve` (every role, free loopback ports, a fresh data
# directory, 127.0.0.1 trusted for X-Forwarded-For) in front of the demo
# site, drives it with simulated people, good bots and scrapers, and writes
# docs/detection.md (keeping its History section).
#
#   bench/traffic/run.sh                      # about 3 minutes
#   bench/traffic/run.sh -quick               # about 20 s; report to a temp file, not docs/
#   bench/traffic/run.sh -time-scale 0.1 -duration 5m -people 600
#
# Every flag is passed to the simulator (go run ./bench/traffic -h lists
# them). REPORT=path writes the report elsewhere; BIN=path measures a
# prebuilt binary instead of building this tree; LABEL names what was measured.
set -euo pipefail
cd "$(dirname "$0")/../.."

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

quick=false
for a in "$@"; do
	case $a in -quick | --quick | -quick=true | --quick=true) quick=true ;; esac
done
if [ -z "${REPORT:-}" ]; then
	if $quick; then REPORT=$WORK/detection.md; else REPORT=docs/detection.md; fi
fi

echo "== building" >&2
BIN=${BIN:-}
if [ -z "$BIN" ]; then
	BIN=$WORK/scrapedefense
	go build -o "$BIN" ./cmd/scrapedefense
fi
go build -o "$WORK/traffic" ./bench/traffic

label=${LABEL:-commit $(git describe --always --dirty 2>/dev/null || echo unknown)}
echo "== simulating against $label" >&2
"$WORK/traffic" \
	-bin "$BIN" \
	-crawler-data internal/crawlers/data \
	-report-header bench/traffic/header.md \
	-report "$REPORT" \
	-command "bench/traffic/run.sh${*:+ $*}" \
	-label "$label" \
	"$@"
echo "== report: $REPORT" >&2
if $quick; then cat "$REPORT"; fi
