#!/usr/bin/env bash
# `npm run bench:dns`: dnsperf against gslb-dns on loopback next to the peer servers
# (PowerDNS LUA shared, gdnsd, NSD, Knot) on the same zone, in the same run, through the
# peer harness bench/peers/run.sh (server pinned to CPU 1, dnsperf to CPU 0, query mix
# 70% www A / 20% static A / 10% nonexistent). Prints the table (median qps, latency,
# lost %, server RSS), one ratio line per peer, and the command line used; the report is
# saved to bench/peers/results/bench-latest.md. Peers that are not installed show
# "not installed" and get no ratio.
#
# Knobs (env): DURATION (10 s), REPEAT (3), SERVERS (peers; default "pdns-shared gdnsd nsd
# knot", plus "pdns" with BENCH_ALL=1), CANDIDATE_PORT (5309); everything else run.sh
# knows (WARMUP, CLIENTS, OUTSTANDING, QUIET_WAIT, ...) is passed through.
#   DURATION=2 REPEAT=1 npm run bench:dns      # smoke run
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PEERS=$REPO/bench/peers
MAIN=$REPO/dist/dns/main.js
ZONE=gslb.example.test

[ -f "$MAIN" ] || { echo "bench/dns.sh: $MAIN not found -- run 'npm run build' first" >&2; exit 1; }
command -v node >/dev/null || { echo "bench/dns.sh: node not found" >&2; exit 1; }

DURATION=${DURATION:-10}
REPEAT=${REPEAT:-3}
if [ -z "${SERVERS:-}" ]; then
  SERVERS="pdns-shared gdnsd nsd knot"
  [ "${BENCH_ALL:-0}" = 1 ] && SERVERS="pdns $SERVERS"
fi
CANDIDATE_NAME=gslb-dns
CANDIDATE_PORT=${CANDIDATE_PORT:-5309}

# the server gets a private zones dir holding a copy of the harness's static zone
ZONES_DIR=$(mktemp -d "${TMPDIR:-/tmp}/gslb-bench-dns.XXXXXX")
trap 'rm -rf -- "$ZONES_DIR"' EXIT
cp "$PEERS/conf/static/$ZONE.zone" "$ZONES_DIR/$ZONE.zone"

# `check` first: a zone the server rejects is reported here, not as a start-up timeout
if ! node "$MAIN" check --zones "$ZONES_DIR" >"$ZONES_DIR/check.log" 2>&1; then
  echo "bench/dns.sh: 'node $MAIN check --zones $ZONES_DIR' failed:" >&2
  tail -20 "$ZONES_DIR/check.log" >&2
  exit 1
fi
rm -f "$ZONES_DIR/check.log"

# run.sh starts it as: bash -c "exec $CANDIDATE_CMD" ($PORT is set by the harness)
CANDIDATE_CMD="node $(printf '%q' "$MAIN") --zones $(printf '%q' "$ZONES_DIR") --listen 127.0.0.1:\$PORT"
CANDIDATE_VERSION="$(node -p 'require(process.argv[1]).version' "$REPO/package.json" 2>/dev/null || echo '?')"
REV=$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || true)
[ -n "$REV" ] && CANDIDATE_VERSION+="+$REV"
[ -n "$(git -C "$REPO" status --porcelain -- dns shared 2>/dev/null || true)" ] && CANDIDATE_VERSION+="-dirty"

BENCH_COMMAND="SERVERS='$SERVERS' DURATION=$DURATION REPEAT=$REPEAT CANDIDATE_NAME=$CANDIDATE_NAME CANDIDATE_PORT=$CANDIDATE_PORT CANDIDATE_CMD='$CANDIDATE_CMD' bash bench/peers/run.sh"
echo "bench/dns.sh: $BENCH_COMMAND"

rc=0
SERVERS=$SERVERS DURATION=$DURATION REPEAT=$REPEAT \
CANDIDATE_NAME=$CANDIDATE_NAME CANDIDATE_PORT=$CANDIDATE_PORT CANDIDATE_CMD=$CANDIDATE_CMD \
CANDIDATE_VERSION=$CANDIDATE_VERSION BENCH_COMMAND=$BENCH_COMMAND \
  bash "$PEERS/run.sh" || rc=$?
echo
echo "command: $BENCH_COMMAND"
echo "report:  bench/peers/results/bench-latest.md"
exit $rc
