#!/usr/bin/env bash
# `npm run bench:dns`: dnsperf against gslb-dns on loopback next to the peer servers
# (PowerDNS LUA shared, gdnsd, NSD, Knot) on the same zone, in the same run, through the
# peer harness bench/peers/run.sh (server pinned to CPU 1, dnsperf to CPU 0, query mix
# 70% www A / 20% static A / 10% nonexistent). Prints the table (median qps, latency,
# lost %, server RSS), one ratio line per peer, and the command line used; the report is
# saved to bench/peers/results/bench-latest.md. Peers that are not installed show
# "not installed" and get no ratio.
#
# gslb-dns runs like for like with pdns and gdnsd: its zones come from
# bench/gslb-bench-config.mjs, where `www` is a GSLB pool (weighted 3:2:1, TTL 20, one address
# per answer) and REPORT_SITES sites each own a member of a `fleet` pool. During the whole
# gslb-dns measurement bench/report-load.mjs posts signed reports for every site at 1 Hz to
# its API (`--api 127.0.0.1:$REPORT_API_PORT`), pinned to the client CPU next to dnsperf:
# first one `--once` round (the pools are up before dnsperf starts), then continuously until
# the last run ends (run.sh hooks CANDIDATE_BEFORE_CMD / CANDIDATE_SIDECAR_CMD). Its
# statistics (sent, accepted, rejected, POST latency, its own CPU) follow the ratio lines.
#
# Response-rate limiting: dnsperf sends from one address, which RRL at its default rate (200/s
# per /24 and response class) would cut down, so the `gslb-dns` row runs with
# `--rrl-rate 1000000`: RRL on, every reply through the same accounting, at a rate the bench
# does not reach. With RRL_COMPARE=1 (default) a second row, `gslb-dns-rrl-off`, runs right
# after it with `--rrl-rate 0` under the same report load, and the ratio line
# `gslb-dns / gslb-dns-rrl-off` is the cost of RRL (the peers run without RRL: see peers/conf).
#
# Request-duration histogram: the `gslb-dns` row runs with gslb_dns_request_duration_seconds on
# (the default); with DURATION_COMPARE=1 (default) a `gslb-dns-duration-off` row runs right after
# it with `--metrics-request-duration off`, same flags otherwise, and the ratio line
# `gslb-dns / gslb-dns-duration-off` is the histogram's cost (target: >= 0.95x), printed again
# as a "request-duration cost" line with both qps side by side.
#
# DNSSEC: `gslb-dns-signed` (the same zones plus a CSK from `gslb-dns dnssec keygen`),
# `knot-signed` (Knot's automatic signing) and `pdns-signed` (pdns-shared, zone secured with
# pdnsutil) get the same mix with DO=1 (dnsperf -D); "signed / unsigned" ratio lines follow, and
# the signature cache of gslb-dns-signed (from its shutdown log line) after the report load.
#
# Knobs (env): DURATION (10 s), REPEAT (3), SERVERS (peers; default "pdns-shared gdnsd nsd
# knot knot-signed pdns-signed", plus "pdns" with BENCH_ALL=1), SIGNED_COMPARE (1; 0 drops the gslb-dns-signed row), CANDIDATE_PORT (5309), REPORT_SITES (1000; 0: no
# report load, `www` then answers per the pool's allDown), REPORT_RATE (1 report/s per
# site), REPORT_API_PORT (5390; the next free port above it when taken), RRL_COMPARE (1; 0
# drops the RRL-off row), DURATION_COMPARE (1; 0 drops the duration-off row); everything else
# run.sh knows (WARMUP, CLIENTS, OUTSTANDING, QUIET_WAIT, ...) is passed through.
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
  SERVERS="pdns-shared gdnsd nsd knot knot-signed pdns-signed"
  [ "${BENCH_ALL:-0}" = 1 ] && SERVERS="pdns $SERVERS"
fi
CANDIDATE_NAME=gslb-dns
CANDIDATE_PORT=${CANDIDATE_PORT:-5309}

REPORT_SITES=${REPORT_SITES:-1000}
REPORT_RATE=${REPORT_RATE:-1}
REPORT_API_PORT=${REPORT_API_PORT:-5390}
[[ "$REPORT_SITES" =~ ^[0-9]+$ ]] || { echo "bench/dns.sh: REPORT_SITES must be a number, got '$REPORT_SITES'" >&2; exit 2; }
[[ "$REPORT_API_PORT" =~ ^[0-9]+$ ]] || { echo "bench/dns.sh: REPORT_API_PORT must be a port, got '$REPORT_API_PORT'" >&2; exit 2; }
# the `web` pool lives at s0..s2: with a report load, those three report too
[ "$REPORT_SITES" -gt 0 ] && [ "$REPORT_SITES" -lt 3 ] && REPORT_SITES=3

# private work dir: zones/ is what the server loads (and watches: nothing else is written
# there once it runs), the generator's statistics go next to it
WORK=$(mktemp -d "${TMPDIR:-/tmp}/gslb-bench-dns.XXXXXX")
trap 'rm -rf -- "$WORK"' EXIT
ZONES_DIR=$WORK/zones
node "$REPO/bench/gslb-bench-config.mjs" --dir "$ZONES_DIR" --sites "$REPORT_SITES" \
  --static-zone "$PEERS/conf/static/$ZONE.zone" >/dev/null

# `check` first: a zone the server rejects is reported here, not as a start-up timeout
if ! node "$MAIN" check --zones "$ZONES_DIR" >"$WORK/check.log" 2>&1; then
  echo "bench/dns.sh: 'node $MAIN check --zones $ZONES_DIR' failed:" >&2
  tail -20 "$WORK/check.log" >&2
  exit 1
fi

# the signed run: the same zones and pools with a CSK (ECDSA P-256) for the zone, asked with DO=1
SIGNED_ZONES_DIR=$WORK/zones-signed
cp -r "$ZONES_DIR" "$SIGNED_ZONES_DIR"
node "$MAIN" dnssec keygen --zones "$SIGNED_ZONES_DIR" "$ZONE" >/dev/null

# the API port: REPORT_API_PORT, or the next free one above it (TCP, 127.0.0.1)
port_free() { [ -z "$(ss -Hlnt "sport = :$1" 2>/dev/null)" ]; }
API_PORT=$REPORT_API_PORT
api_port_ok() { [ "$1" != "$CANDIDATE_PORT" ] && port_free "$1"; }
for ((i = 0; i < 100; i++)); do api_port_ok "$API_PORT" && break; API_PORT=$((API_PORT + 1)); done
api_port_ok "$API_PORT" || { echo "bench/dns.sh: no free TCP port in $REPORT_API_PORT..$API_PORT for the API" >&2; exit 1; }

# run.sh starts it as: bash -c "exec $CANDIDATE_CMD" ($PORT is set by the harness)
CANDIDATE_BASE="node $(printf '%q' "$MAIN") --zones $(printf '%q' "$ZONES_DIR") --listen 127.0.0.1:\$PORT --api 127.0.0.1:$API_PORT"
CANDIDATE_CMD="$CANDIDATE_BASE --rrl-rate 1000000"
CANDIDATE_ALT_NAME=
CANDIDATE_ALT_CMD=
CANDIDATE_ALT_NOTE=
if [ "${RRL_COMPARE:-1}" = 1 ]; then
  CANDIDATE_ALT_NAME=$CANDIDATE_NAME-rrl-off
  CANDIDATE_ALT_CMD="$CANDIDATE_BASE --rrl-rate 0"
  CANDIDATE_ALT_NOTE="RRL cost: \`$CANDIDATE_NAME / $CANDIDATE_ALT_NAME\` above is RRL on / RRL off in this run. $CANDIDATE_NAME ran with --rrl-rate 1000000 (RRL on, every reply counted in its table, a rate dnsperf from one address does not reach; at the default 200/s it would be limited), $CANDIDATE_ALT_NAME with --rrl-rate 0 (off); same zones, same report load."
fi

CANDIDATE_ALT2_NAME=
CANDIDATE_ALT2_CMD=
CANDIDATE_ALT2_NOTE=
if [ "${DURATION_COMPARE:-1}" = 1 ]; then
  CANDIDATE_ALT2_NAME=$CANDIDATE_NAME-duration-off
  CANDIDATE_ALT2_CMD="$CANDIDATE_CMD --metrics-request-duration off"
  CANDIDATE_ALT2_NOTE="Request-duration histogram cost: \`$CANDIDATE_NAME / $CANDIDATE_ALT2_NAME\` above is gslb_dns_request_duration_seconds on / off in this run ($CANDIDATE_ALT2_NAME: the same command plus --metrics-request-duration off; target >= 0.95x)."
fi

CANDIDATE_ALT3_NAME=
CANDIDATE_ALT3_CMD=
CANDIDATE_ALT3_NOTE=
if [ "${SIGNED_COMPARE:-1}" = 1 ]; then
  CANDIDATE_ALT3_NAME=$CANDIDATE_NAME-signed
  CANDIDATE_ALT3_CMD="node $(printf '%q' "$MAIN") --zones $(printf '%q' "$SIGNED_ZONES_DIR") --listen 127.0.0.1:\$PORT --api 127.0.0.1:$API_PORT --rrl-rate 1000000"
  CANDIDATE_ALT3_NOTE="DNSSEC: rows named *-signed serve the zone signed and are asked the same mix with DO=1 (dnsperf -D): $CANDIDATE_ALT3_NAME (online signing, a CSK made by \`gslb-dns dnssec keygen\`, compact denial), knot-signed (Knot's automatic signing, default policy), pdns-signed (pdns-shared with the zone secured by pdnsutil: online signing of the LUA answers). Target: $CANDIDATE_ALT3_NAME >= 0.7x $CANDIDATE_NAME."
fi

# the report load (run.sh pins the hooks to its CLIENT_CPU, where dnsperf runs)
CANDIDATE_BEFORE_CMD=
CANDIDATE_SIDECAR_CMD=
CANDIDATE_REPORT_CMD=
if [ "$REPORT_SITES" -gt 0 ]; then
  WARMUP_S=${WARMUP:-2}
  QUIET_S=${QUIET_WAIT:-60}
  # a bound only: the harness stops it after the last run (each run may wait QUIET_WAIT first)
  LOAD_BOUND=$((WARMUP_S + REPEAT * (DURATION + QUIET_S + 10) + 60))
  LOAD="node $(printf '%q' "$REPO/bench/report-load.mjs") --api http://127.0.0.1:$API_PORT --config-dir $(printf '%q' "$ZONES_DIR") --sites $REPORT_SITES"
  # one summary per row (run.sh sets CANDIDATE_ROW for the hooks); the report shows the main row's
  CANDIDATE_BEFORE_CMD="$LOAD --once --summary $(printf '%q' "$WORK")/once-\$CANDIDATE_ROW.md"
  CANDIDATE_SIDECAR_CMD="$LOAD --rate $REPORT_RATE --duration $LOAD_BOUND --summary $(printf '%q' "$WORK")/load-\$CANDIDATE_ROW.md"
  CANDIDATE_REPORT_CMD="echo 'Report load on $CANDIDATE_NAME (bench/report-load.mjs: $REPORT_SITES sites x $REPORT_RATE signed report/s to --api, pinned to the client CPU with dnsperf, from before the warm-up to the end of the last run):'; echo; cat $(printf '%q' "$WORK/once-$CANDIDATE_NAME.md") $(printf '%q' "$WORK/load-$CANDIDATE_NAME.md") 2>/dev/null || echo '- no statistics: the generator did not finish (see the harness log dir)'"
else
  CANDIDATE_REPORT_CMD="echo 'Report load on $CANDIDATE_NAME: off (REPORT_SITES=0); no site reports, so www answers per the pool'\''s allDown.'"
fi
if [ -n "$CANDIDATE_ALT3_NAME" ]; then
  # gslb-dns logs its signature cache's size when it stops (its "shutting down" line)
  CANDIDATE_REPORT_CMD+="; echo; echo 'Signature cache of $CANDIDATE_ALT3_NAME when it stopped (bytes charged, bounded at 64 MiB + 8 MiB: docs/dnssec.md):'; echo; grep -ho '\"signatureCache\":{[^}]*}' $(printf '%q' "${RUN_DIR:-$PEERS/run}/logs/$CANDIDATE_ALT3_NAME.log") | tail -1 | sed 's/^/- /' || echo '- not in its log'"
fi
CANDIDATE_VERSION="$(node -p 'require(process.argv[1]).version' "$REPO/package.json" 2>/dev/null || echo '?')"
REV=$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || true)
[ -n "$REV" ] && CANDIDATE_VERSION+="+$REV"
[ -n "$(git -C "$REPO" status --porcelain -- dns shared 2>/dev/null || true)" ] && CANDIDATE_VERSION+="-dirty"

BENCH_COMMAND="SERVERS='$SERVERS' DURATION=$DURATION REPEAT=$REPEAT CANDIDATE_NAME=$CANDIDATE_NAME CANDIDATE_PORT=$CANDIDATE_PORT CANDIDATE_CMD='$CANDIDATE_CMD'"
[ -n "$CANDIDATE_ALT_NAME" ] && BENCH_COMMAND+=" CANDIDATE_ALT_NAME=$CANDIDATE_ALT_NAME CANDIDATE_ALT_CMD='$CANDIDATE_ALT_CMD'"
[ -n "$CANDIDATE_ALT2_NAME" ] && BENCH_COMMAND+=" CANDIDATE_ALT2_NAME=$CANDIDATE_ALT2_NAME CANDIDATE_ALT2_CMD='$CANDIDATE_ALT2_CMD'"
[ -n "$CANDIDATE_ALT3_NAME" ] && BENCH_COMMAND+=" CANDIDATE_ALT3_NAME=$CANDIDATE_ALT3_NAME CANDIDATE_ALT3_CMD='$CANDIDATE_ALT3_CMD'"
[ -n "$CANDIDATE_BEFORE_CMD" ] && BENCH_COMMAND+=" CANDIDATE_BEFORE_CMD='$CANDIDATE_BEFORE_CMD' CANDIDATE_SIDECAR_CMD='$CANDIDATE_SIDECAR_CMD'"
BENCH_COMMAND+=" bash bench/peers/run.sh"
echo "bench/dns.sh: $BENCH_COMMAND"
echo "bench/dns.sh: zones from bench/gslb-bench-config.mjs (www: GSLB pool, weighted 3:2:1, 1 answer, TTL 20); report load: $([ "$REPORT_SITES" -gt 0 ] && echo "$REPORT_SITES sites x $REPORT_RATE/s to 127.0.0.1:$API_PORT" || echo "off (REPORT_SITES=0)")"

# run.sh runs in the background so that a SIGTERM/SIGINT sent to this script alone reaches it
# too: its own trap then stops everything it started (server, sidecar, dnsperf) before we
# remove the work dir
rc=0
RUN_PID=
forward() {
  trap - INT TERM
  if [ -n "$RUN_PID" ]; then kill -TERM "$RUN_PID" 2>/dev/null || true; wait "$RUN_PID" 2>/dev/null || true; fi
  exit 130
}
trap forward INT TERM
SERVERS=$SERVERS DURATION=$DURATION REPEAT=$REPEAT \
CANDIDATE_NAME=$CANDIDATE_NAME CANDIDATE_PORT=$CANDIDATE_PORT CANDIDATE_CMD=$CANDIDATE_CMD \
CANDIDATE_ALT_NAME=$CANDIDATE_ALT_NAME CANDIDATE_ALT_CMD=$CANDIDATE_ALT_CMD CANDIDATE_ALT_NOTE=$CANDIDATE_ALT_NOTE \
CANDIDATE_ALT2_NAME=$CANDIDATE_ALT2_NAME CANDIDATE_ALT2_CMD=$CANDIDATE_ALT2_CMD CANDIDATE_ALT2_NOTE=$CANDIDATE_ALT2_NOTE \
CANDIDATE_ALT3_NAME=$CANDIDATE_ALT3_NAME CANDIDATE_ALT3_CMD=$CANDIDATE_ALT3_CMD CANDIDATE_ALT3_NOTE=$CANDIDATE_ALT3_NOTE \
CANDIDATE_BEFORE_CMD=$CANDIDATE_BEFORE_CMD CANDIDATE_SIDECAR_CMD=$CANDIDATE_SIDECAR_CMD \
CANDIDATE_REPORT_CMD=$CANDIDATE_REPORT_CMD \
CANDIDATE_VERSION=$CANDIDATE_VERSION BENCH_COMMAND=$BENCH_COMMAND \
  bash "$PEERS/run.sh" &
RUN_PID=$!
wait "$RUN_PID" || rc=$?
RUN_PID=
trap - INT TERM
echo
echo "command: $BENCH_COMMAND"
echo "report:  bench/peers/results/bench-latest.md"
exit $rc
