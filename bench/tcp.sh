#!/usr/bin/env bash
# Runs the TCP benchmark of issue 4 (item 8): direct vs through the L4 engine on loopback, printing
# ratios. Bounded in time: each measurement lasts DURATION (default 3s), the whole run at most
# TIMEOUT (default 300s). Extra arguments go to tcpload (see go run ./bench/tcpload -h).
set -euo pipefail
cd "$(dirname "$0")/.."
# 10,000 idle proxied connections need ~20,000 descriptors in the engine; raise the soft limit as far
# as the hard limit allows (tcpload spreads the connections over several engine processes if needed).
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
bin="$(mktemp -d)/tcpload"
trap 'rm -rf "$(dirname "$bin")"' EXIT
go build -o "$bin" ./bench/tcpload
timeout "${TIMEOUT:-300}" "$bin" -duration "${DURATION:-3s}" -timeout "${TIMEOUT:-300}s" "$@"
