#!/usr/bin/env bash
# Runs the HTTPS relay benchmark of issue 3 (item 7): a backend called directly vs through the portal's
# relay over HTTPS with keep-alive (HTTP/1.1 and HTTP/2), on loopback in one process, printing req/s,
# p50/p99 latency and the relay/direct ratios. Bounded in time: each phase lasts DURATION (default 10s)
# after a 1 s warm-up, the whole run at most TIMEOUT seconds (default 120). Extra arguments go to
# relayload (see go run ./bench/relayload -h), e.g. bench/relay.sh -c 64 -size 4096.
set -euo pipefail
cd "$(dirname "$0")/.."
bin="$(mktemp -d)/relayload"
trap 'rm -rf "$(dirname "$bin")"' EXIT
go build -o "$bin" ./bench/relayload
timeout "${TIMEOUT:-120}" "$bin" -duration "${DURATION:-10s}" -timeout "${TIMEOUT:-120}s" "$@"
