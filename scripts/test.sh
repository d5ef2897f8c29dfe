#!/usr/bin/env bash
# Runs every check and test of the project. On a fresh Debian machine it
# first installs what the tests need (as root, or with sudo).
set -euo pipefail
cd "$(dirname "$0")/.."

STATICCHECK_VERSION=v0.8.2

install_deps() {
	local need=()
	# Real components the tests drive: nginx (the forward-auth snippet),
	# Chromium (challenges solved by a real browser, the hidden trap link),
	# Prometheus and promtool (rules, rule tests, the SLO end-to-end test),
	# amtool (the Alertmanager example).
	command -v nginx >/dev/null || need+=(nginx-light)
	[ -x /usr/bin/chromium ] || need+=(chromium)
	command -v promtool >/dev/null || need+=(prometheus)
	command -v amtool >/dev/null || need+=(prometheus-alertmanager)
	if [ ${#need[@]} -gt 0 ]; then
		local sudo=""
		[ "$(id -u)" -eq 0 ] || sudo="sudo"
		echo "==> installing ${need[*]}"
		$sudo apt-get update -qq
		DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
	fi
}

[ "${SKIP_DEPS:-}" = 1 ] || install_deps

echo "==> gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go'))
if [ -n "$unformatted" ]; then
	echo "gofmt would change:"; echo "$unformatted"; exit 1
fi

echo "==> go vet"
go vet ./...

echo "==> staticcheck"
go run "honnef.co/go/tools/cmd/staticcheck@${STATICCHECK_VERSION}" ./...

echo "==> go test -race"
go test -race -count=1 -timeout 20m ./...
