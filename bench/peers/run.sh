#!/usr/bin/env bash
# Side-by-side dnsperf benchmark of authoritative DNS servers answering the
# gslb.example.test zone (PowerDNS LUA, gdnsd plugins, knot/nsd static), plus an
# optional candidate server given as a command.
#
#   ./run.sh                                   # pdns pdns-shared gdnsd knot nsd
#   SERVERS="knot nsd" DURATION=5 ./run.sh
#   CANDIDATE_CMD='node /path/to/server.js --port $PORT' CANDIDATE_PORT=5309 \
#     CANDIDATE_NAME=ts-gslb ./run.sh          # adds one more row
#
# The candidate command is run with `bash -c "exec $CANDIDATE_CMD"`, pinned to the
# server CPU, in its own process group, with these variables in its environment:
#   PORT / CANDIDATE_PORT  port to listen on (127.0.0.1 only, UDP+TCP)
#   PEERS_ZONE_FILE        static RFC1035 zone of gslb.example.test (www has the 3 pool A RRs)
#   PEERS_CONF_DIR         conf/ (pdns LUA + gdnsd plugin configs for the GSLB semantics)
#   PEERS_RUN_DIR          a private scratch dir
# It must answer `static.gslb.example.test A` with 192.0.2.10 to be considered ready.
# Optional candidate hooks (each run with `bash -c`, pinned to the CLIENT CPU, in its own
# process group recorded in $PID_DIR, output in $LOG_DIR/<candidate>-<hook>.log; the peers
# never see them):
#   CANDIDATE_BEFORE_CMD   run once the candidate is ready, before its warm-up; a non-zero
#                          exit fails the candidate's row
#   CANDIDATE_SIDECAR_CMD  started after that and kept running (client side, next to dnsperf)
#                          until the candidate's last run ends; then SIGTERM to its group
#                          (stop_all cleans it up on any exit)
#   CANDIDATE_REPORT_CMD   its stdout goes into the report after the ratio lines
# A variant of the candidate (e.g. a feature turned off) gets its own row, measured right after
# the candidate on the same port with the same hooks, and a ratio line like a peer:
#   CANDIDATE_ALT_NAME, CANDIDATE_ALT_CMD   its row name and command
#   CANDIDATE_ALT_NOTE     a line printed after the ratios (what the two rows differ in)
#   CANDIDATE_ALT2_NAME, CANDIDATE_ALT2_CMD, CANDIDATE_ALT2_NOTE   a second variant, the same way
# The hooks see CANDIDATE_ROW: the name of the row they run for.
#
# Knobs (env): SERVERS, DURATION (10 s), WARMUP (2 s), REPEAT (1), CLIENTS (dnsperf -c, 1),
# OUTSTANDING (dnsperf -q, 100), QUERY_FILE (queries/mix.txt: 70% www A, 20% static A,
# 10% NXDOMAIN), SERVER_CPU (1), CLIENT_CPU (0), RUN_DIR, RESULTS_DIR, *_PORT,
# QUIET_PCT (10) / QUIET_WAIT (60 s): before each run wait until processes that are not
# ours use < QUIET_PCT % of a CPU (the box may be shared); their CPU use during the run
# is reported in the "other procs CPU" column -- distrust rows where it is high.
# BENCH_COMMAND: command line to record in the report (default: reconstructed from the knobs).
#
# "server RSS (MB)": VmRSS summed over the server's process group, sampled at the end of
# each run (median shown); "(N procs)" marks servers that fork (nsd), whose shared pages
# are then counted more than once. With a candidate, a ratio line per peer follows the
# table (candidate qps / peer qps), and the exit status is 1 if the candidate failed.
set -uo pipefail
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"

DURATION=${DURATION:-10}
WARMUP=${WARMUP:-2}
REPEAT=${REPEAT:-1}
CLIENTS=${CLIENTS:-1}
OUTSTANDING=${OUTSTANDING:-100}
QUERY_FILE=${QUERY_FILE:-$PEERS_DIR/queries/mix.txt}
SERVERS=${SERVERS:-"pdns pdns-shared gdnsd knot nsd"}
if [ -n "${CANDIDATE_CMD:-}" ] && [[ " $SERVERS " != *" $CANDIDATE_NAME "* ]]; then
  SERVERS="$SERVERS $CANDIDATE_NAME"
fi
for v in $CANDIDATE_VARIANTS; do
  n=CANDIDATE_${v}_NAME
  if [ -n "${CANDIDATE_CMD:-}" ] && [ -n "${!n:-}" ] && [[ " $SERVERS " != *" ${!n} "* ]]; then SERVERS="$SERVERS ${!n}"; fi
done
is_candidate() { [ "$1" = "${CANDIDATE_NAME:-}" ] || variant_of "$1" >/dev/null; }

for b in dnsperf dig taskset setsid ss; do command -v "$b" >/dev/null || die "$b not found"; done
[ "$(nproc)" -ge 2 ] || log "warning: fewer than 2 CPUs, server/client pinning overlaps"
[ -r "$QUERY_FILE" ] || die "query file $QUERY_FILE not readable"

mkdir -p "$RUN_DIR" "$LOG_DIR" "$PID_DIR" "$RESULTS_DIR"
cleanup() { stop_all; }
trap cleanup EXIT
trap 'exit 130' INT TERM
stop_all   # leftovers of an interrupted earlier run (recorded PIDs only)

TS=$(date +%Y%m%d-%H%M%S)
RAW=$RESULTS_DIR/raw-$TS
mkdir -p "$RAW"
CSV=$RAW/runs.csv
echo "server,run,qps,avg_ms,lost_pct,noerror_pct,nxdomain_pct,resp_bytes,server_cpu_pct,client_cpu_pct,foreign_cpu_pct,server_rss_mb,server_procs" > "$CSV"
TCK=$(getconf CLK_TCK)

# CPU ticks (user+sys, all threads) of every process in process group $1
group_ticks() {
  local pg=$1 f line rest sum=0
  for f in /proc/[0-9]*/stat; do
    read -r line 2>/dev/null < "$f" || continue
    rest=${line##*) }
    # shellcheck disable=SC2086
    set -- $rest
    [ "${3:-}" = "$pg" ] || continue
    sum=$((sum + ${12} + ${13}))
  done
  echo "$sum"
}

# "RSS_MB NPROCS": VmRSS (MB) summed over the live processes of process group $1
group_rss() {
  local pg=$1 f line rest kb=0 n=0 v
  for f in /proc/[0-9]*/stat; do
    read -r line 2>/dev/null < "$f" || continue
    rest=${line##*) }
    # shellcheck disable=SC2086
    set -- $rest
    [ "${3:-}" = "$pg" ] || continue
    v=$(awk '/^VmRSS:/ { print $2 }' "${f%/stat}/status" 2>/dev/null)
    [ -n "$v" ] || continue
    kb=$((kb + v)); n=$((n + 1))
  done
  [ "$n" -gt 0 ] || { echo "NA 0"; return; }
  awk -v k="$kb" -v n="$n" 'BEGIN { printf "%.1f %d\n", k / 1024, n }'
}

# Snapshot ("pid-starttime ticks" lines, into file $1) of the CPU ticks of user-space
# processes that are NOT ours (other load on this box): everything except kernel threads,
# this script's process group (dnsperf, dig) and the process groups recorded in $PID_DIR
# (server under test, health-check listeners).
OWN_PGRP=$(awk '{sub(/.*\) /, ""); print $3}' /proc/$$/stat)
foreign_snap() {
  local f line rest own=" $OWN_PGRP " p pid
  for p in "$PID_DIR"/*.pid; do [ -e "$p" ] && own+="$(cat "$p") "; done
  for f in /proc/[0-9]*/stat; do
    read -r line 2>/dev/null < "$f" || continue
    rest=${line##*) }; pid=${line%% *}
    # shellcheck disable=SC2086
    set -- $rest
    [ "${3:-0}" = 0 ] && continue
    [[ "$own" == *" $3 "* ]] && continue
    echo "$pid-${20} $((${12} + ${13}))"
  done > "$1"
}
# foreign_delta SNAP_BEFORE SNAP_AFTER -> ticks used in between by the processes alive at
# the end (processes started in between count in full; ones that exited are not counted,
# so a short-lived burst is under- rather than mis-counted; never negative)
foreign_delta() {
  awk 'NR == FNR { t[$1] = $2; next } { d = $2 - ($1 in t ? t[$1] : 0); if (d > 0) s += d } END { print s + 0 }' "$1" "$2"
}

# Wait (at most QUIET_WAIT s) until foreign processes use < QUIET_PCT % of one CPU for 2 s.
QUIET_PCT=${QUIET_PCT:-10}
QUIET_WAIT=${QUIET_WAIT:-60}
wait_quiet() {
  local start=$SECONDS a b pct ok=0
  while :; do
    foreign_snap "$RAW/.foreign0"; sleep 1; foreign_snap "$RAW/.foreign1"
    pct=$(( $(foreign_delta "$RAW/.foreign0" "$RAW/.foreign1") * 100 / TCK ))
    if [ "$pct" -lt "$QUIET_PCT" ]; then ok=$((ok + 1)); [ $ok -ge 2 ] && return 0; else ok=0; fi
    if [ $((SECONDS - start)) -ge "$QUIET_WAIT" ]; then
      log "warning: other processes still use ${pct}% CPU after ${QUIET_WAIT}s -- measuring anyway"
      return 0
    fi
  done
}

run_dnsperf() { # port seconds outfile timefile [dnsperf flags]
  # own process group + recorded PID, waited for with `wait` so that Ctrl-C / SIGTERM
  # interrupts the run at once and the EXIT trap can stop dnsperf too
  setsid bash -c 'TIMEFORMAT="%U %S %R"; { time taskset -c "$0" dnsperf -s 127.0.0.1 -p "$1" -d "$2" \
      -l "$3" -c "$4" -q "$5" -t 2 $8 > "$6" 2>&1 ; } 2> "$7"' \
    "$CLIENT_CPU" "$1" "$QUERY_FILE" "$2" "$CLIENTS" "$OUTSTANDING" "$3" "$4" "${5:-}" < /dev/null &
  local pid=$!
  echo "$pid" > "$PID_DIR/dnsperf.pid"
  wait "$pid"
  rm -f "$PID_DIR/dnsperf.pid"
}

run_hook() { # name command -> exit status of `bash -c command` (client CPU, own group, recorded)
  local name=$1 pid rc
  setsid taskset -c "$CLIENT_CPU" bash -c "$2" >>"$LOG_DIR/$name.log" 2>&1 < /dev/null &
  pid=$!
  echo "$pid" > "$PID_DIR/$name.pid"
  wait "$pid"; rc=$?
  rm -f "$PID_DIR/$name.pid"
  return $rc
}

parse_dnsperf() { # file -> "qps avg_ms lost_pct noerror_pct nxdomain_pct resp_bytes"
  awk '
    /Queries per second:/ { qps = $4 }
    /Average Latency \(s\):/ { lat = $4 * 1000 }
    /Queries lost:/ { gsub(/[()%]/, "", $4); lost = $4 }
    /Response codes:/ { for (i = 3; i <= NF; i++) { if ($i == "NOERROR") { v = $(i+2); gsub(/[()%,]/, "", v); noerr = v }
                                                  if ($i == "NXDOMAIN") { v = $(i+2); gsub(/[()%,]/, "", v); nx = v } } }
    /Average packet size:/ { v = $NF; resp = v }
    END { printf "%s %.3f %s %s %s %s\n", (qps == "" ? "NA" : qps), lat, (lost == "" ? "NA" : lost),
                 (noerr == "" ? 0 : noerr), (nx == "" ? 0 : nx), (resp == "" ? "NA" : resp) }' "$1"
}

median() { sort -g | awk '{a[NR] = $1} END { if (NR == 0) { print "NA"; exit } if (NR % 2) print a[(NR+1)/2]; else print (a[NR/2] + a[NR/2+1]) / 2 }'; }

# median of CSV column $2 over the runs of server $1 that produced a qps ("" if none)
peer_col() { awk -F, -v s="$1" -v c="$2" '$1 == s && $3 != "NA" && $3 + 0 > 0 { print $c }' "$CSV" | median | grep -v '^NA$'; }
cand_col() { peer_col "$CANDIDATE_NAME" "$1"; }

q() { # shell-quote words for display, single quotes only where needed
  local a sq="'"
  for a in "$@"; do
    if [[ "$a" =~ ^[A-Za-z0-9_./:=@%+,-]+$ ]]; then printf '%s ' "$a"
    else printf "'%s' " "${a//$sq/$sq\\$sq$sq}"; fi
  done
}
if [ -z "${BENCH_COMMAND:-}" ]; then
  BENCH_COMMAND="$(q "SERVERS=$SERVERS" "DURATION=$DURATION" "REPEAT=$REPEAT" "WARMUP=$WARMUP" "CLIENTS=$CLIENTS" "OUTSTANDING=$OUTSTANDING")"
  [ -n "${CANDIDATE_CMD:-}" ] && BENCH_COMMAND+="$(q "CANDIDATE_NAME=$CANDIDATE_NAME" "CANDIDATE_PORT=$CANDIDATE_PORT" "CANDIDATE_CMD=$CANDIDATE_CMD")"
  BENCH_COMMAND+="$(q "$0")"
  BENCH_COMMAND=${BENCH_COMMAND% }
fi

declare -A ROW
log "servers: $SERVERS | duration ${DURATION}s x$REPEAT (warm-up ${WARMUP}s) | dnsperf -c $CLIENTS -q $OUTSTANDING | server CPU $SERVER_CPU, client CPU $CLIENT_CPU"
start_listeners   # health-check targets for the 'up' pools (idle during the benchmark)

for s in $SERVERS; do
  port=$(port_of "$s") || { ROW[$s]="| $s | - | - | unknown server name | | | | | | | | | |"; continue; }
  if ! is_installed "$s"; then ROW[$s]="| $s | not installed | $port | | | | | | | | | | |"; continue; fi
  if ! start_server "$s"; then ROW[$s]="| $s | $(version_of "$s") | $port | FAILED to start (see $LOG_DIR/$s.log) | | | | | | | | | |"; stop_server "$s"; continue; fi
  pid=$(cat "$PID_DIR/$s.pid")
  if is_candidate "$s" && [ -n "${CANDIDATE_BEFORE_CMD:-}" ]; then
    : > "$LOG_DIR/$s-before.log"
    if ! CANDIDATE_ROW=$s run_hook "$s-before" "$CANDIDATE_BEFORE_CMD"; then
      log "$s: CANDIDATE_BEFORE_CMD failed; last lines of $LOG_DIR/$s-before.log:"; tail -5 "$LOG_DIR/$s-before.log" >&2
      ROW[$s]="| $s | $(version_of "$s") | $port | FAILED: CANDIDATE_BEFORE_CMD (see $LOG_DIR/$s-before.log) | | | | | | | | | |"
      stop_server "$s"; continue
    fi
  fi
  if is_candidate "$s" && [ -n "${CANDIDATE_SIDECAR_CMD:-}" ]; then
    : > "$LOG_DIR/$s-sidecar.log"
    CANDIDATE_ROW=$s start_proc "$s-sidecar" "$CLIENT_CPU" "$LOG_DIR/$s-sidecar.log" bash -c "exec $CANDIDATE_SIDECAR_CMD" >/dev/null
    log "$s: sidecar started (pid $(cat "$PID_DIR/$s-sidecar.pid"), CPU $CLIENT_CPU)"
  fi
  dflags=; is_signed_row "$s" && dflags=-D
  if [ "$WARMUP" -gt 0 ]; then run_dnsperf "$port" "$WARMUP" "$RAW/$s-warmup.txt" /dev/null "$dflags"; fi
  for ((r = 1; r <= REPEAT; r++)); do
    wait_quiet
    foreign_snap "$RAW/.foreign0"; t0=$(group_ticks "$pid")
    run_dnsperf "$port" "$DURATION" "$RAW/$s-$r.txt" "$RAW/$s-$r.time" "$dflags"
    t1=$(group_ticks "$pid"); foreign_snap "$RAW/.foreign1"
    read -r rss nprocs < <(group_rss "$pid")
    read -r cu cs wall < "$RAW/$s-$r.time"
    read -r qps avg lost noerr nx resp < <(parse_dnsperf "$RAW/$s-$r.txt")
    scpu=$(awk -v a="$t0" -v b="$t1" -v t="$TCK" -v w="$wall" 'BEGIN { printf "%.0f", (b - a) / t / w * 100 }')
    ccpu=$(awk -v u="$cu" -v s="$cs" -v w="$wall" 'BEGIN { printf "%.0f", (u + s) / w * 100 }')
    fcpu=$(awk -v d="$(foreign_delta "$RAW/.foreign0" "$RAW/.foreign1")" -v t="$TCK" -v w="$wall" 'BEGIN { printf "%.0f", d / t / w * 100 }')
    echo "$s,$r,$qps,$avg,$lost,$noerr,$nx,$resp,$scpu,$ccpu,$fcpu,$rss,$nprocs" >> "$CSV"
    log "$s run $r: qps=$qps avg=${avg}ms lost=${lost}% nxdomain=${nx}% server_cpu=${scpu}% server_rss=${rss}MB client_cpu=${ccpu}% other_cpu=${fcpu}%"
  done
  if [ -f "$PID_DIR/$s-sidecar.pid" ]; then
    _running "$(cat "$PID_DIR/$s-sidecar.pid")" || log "$s: sidecar ended before the last run did (see $LOG_DIR/$s-sidecar.log)"
    stop_proc "$s-sidecar" 10
  fi
  stop_server "$s"
  col() { awk -F, -v s="$s" -v c="$1" '$1 == s { print $c }' "$CSV" | median; }
  qall=$(awk -F, -v s="$s" '$1 == s { printf "%s%.0f", (n++ ? "/" : ""), $3 }' "$CSV")
  rss_cell=$(col 12); np=$(awk -F, -v s="$s" '$1 == s && $13 > n { n = $13 } END { print n + 0 }' "$CSV")
  [ "$np" -gt 1 ] && rss_cell="$rss_cell ($np procs)"
  ROW[$s]=$(printf '| %s | %s | %s | %.0f | %s | %.3f | %s | %s | %s | %s%% | %s | %s%% | %s%% |' \
    "$s" "$(version_of "$s")" "$port" "$(col 3)" "$qall" "$(col 4)" "$(col 5)" "$(col 7)" "$(col 8)" "$(col 9)" "$rss_cell" "$(col 10)" "$(col 11)")
done
stop_listeners
rm -f "$RAW/.foreign0" "$RAW/.foreign1"

{
  echo "## GSLB peer benchmark $TS"
  echo
  echo "dnsperf ${DURATION}s x$REPEAT per server (median shown), warm-up ${WARMUP}s, \`-c $CLIENTS -q $OUTSTANDING -t 2\`, query mix $(basename "$QUERY_FILE") (70% www A, 20% static A, 10% NXDOMAIN);"
  echo "server pinned to CPU $SERVER_CPU, dnsperf to CPU $CLIENT_CPU ($(nproc) CPUs, $(uname -r)). Raw output: ${RAW#$PEERS_DIR/}"
  echo
  echo "| server | version | port | qps (median) | qps per run | avg latency (ms) | lost % | NXDOMAIN % | avg resp bytes | server CPU | server RSS (MB) | dnsperf CPU | other procs CPU |"
  echo "|---|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|"
  for s in $SERVERS; do echo "${ROW[$s]}"; done
  if [ -n "${CANDIDATE_CMD:-}" ]; then
    echo
    if [ -n "$(cand_col 3)" ]; then
      echo "Ratios (median qps of $CANDIDATE_NAME / median qps of the peer):"
      echo
      for s in $SERVERS; do
        [ "$s" = "$CANDIDATE_NAME" ] && continue
        pq=$(peer_col "$s" 3); [ -n "$pq" ] || continue
        awk -v c="$CANDIDATE_NAME" -v p="$s" -v cq="$(cand_col 3)" -v pq="$pq" -v cl="$(cand_col 4)" -v pl="$(peer_col "$s" 4)" \
            -v cr="$(cand_col 12)" -v pr="$(peer_col "$s" 12)" 'BEGIN {
          printf "- `%s / %s = %.2fx` (qps %.0f vs %.0f; avg latency %.3f vs %.3f ms; RSS %s vs %s MB)\n", c, p, cq / pq, cq, pq, cl, pl, cr, pr }'
      done
      # signed rows (DO=1 to a signed zone) against the same server's unsigned row
      for s in $SERVERS; do
        is_signed_row "$s" || continue
        base=${s%-signed}; [ "$base" = pdns ] && base=pdns-shared
        sq=$(peer_col "$s" 3); bq=$(peer_col "$base" 3)
        [ -n "$sq" ] && [ -n "$bq" ] || continue
        awk -v s="$s" -v b="$base" -v sq="$sq" -v bq="$bq" -v sb="$(peer_col "$s" 8)" -v bb="$(peer_col "$base" 8)" 'BEGIN {
          printf "- signed / unsigned: `%s / %s = %.2fx` (qps %.0f vs %.0f; avg resp %s vs %s bytes)\n", s, b, sq / bq, sq, bq, sb, bb }'
      done
      for v in $CANDIDATE_VARIANTS; do n=CANDIDATE_${v}_NOTE; [ -n "${!n:-}" ] && { echo; echo "${!n}"; }; done
    else
      echo "No ratios: $CANDIDATE_NAME produced no result."
    fi
    if [ -n "${CANDIDATE_REPORT_CMD:-}" ]; then
      echo
      bash -c "$CANDIDATE_REPORT_CMD" 2>&1 || true
    fi
  fi
  echo
  echo "Command: \`$BENCH_COMMAND\`"
} | tee "$RESULTS_DIR/bench-$TS.md"
cp "$RESULTS_DIR/bench-$TS.md" "$RESULTS_DIR/bench-latest.md"
log "report: $RESULTS_DIR/bench-$TS.md (copied to bench-latest.md)"
if [ -n "${CANDIDATE_CMD:-}" ] && [ -z "$(cand_col 3)" ]; then
  log "ERROR: candidate $CANDIDATE_NAME produced no result"; exit 1
fi
exit 0
