#!/usr/bin/env bash
# deploy/bench.sh — the numbers of docs/BENCHMARKS.md, reproduced in one command.
#
#   deploy/bench.sh [RESULTS_DIR]        default: bench-results/<date-time>
#
# 1. starts the backends (deploy/backends.sh up),
# 2. builds the services, the load tool and the experiment binary in release mode,
# 3. starts the five services on ports of their own (the gateway on 127.0.0.1:18080, gRPC on
#    51051-51053, the fan-out worker's metrics on 19100), on fresh state: a new Postgres
#    database, a new Redis key prefix and Kafka topic (the CQL keyspace chirp_bench is reused;
#    seeded users are new each time, so old tweets are never read),
# 4. seeds a power-law graph, measures the idle cost (`loadtest idle`: every process's CPU, the
#    services' and the backends', by pid file, over BENCH_IDLE_WINDOW with no traffic, once the
#    system is quiet; quiet.md records what the check found), runs `loadtest bench`, stops the
#    services,
# 5. runs the scale-out stage (the reads through 2 gateways behind HAProxy and 2 timeline
#    services next to 1 + 1, then both again with the timelines on the Redis Cluster of
#    `deploy/backends.sh up redis-cluster`; BENCH_SCALE_OUT=0 skips the stage,
#    BENCH_REDIS_CLUSTER=0 its cluster half),
# 6. runs `experiment strategies`, which starts its own in-process services.
#
# RESULTS_DIR then holds bench.md (the tables of docs/BENCHMARKS.md), bench.json, idle.json,
# quiet.md, one report per stage, strategies/ (strategies.md, strategies.json, index.html with the plot), and
# run.json, the run's record for docs/runs/ (deploy/lib/record-run.py), from which
# deploy/render-docs.py renders the tables of the docs.
# Sizes and durations can be changed through the environment, e.g. BENCH_USERS=10000; the
# defaults take about five minutes after the build on a 2-core machine. The services' logs
# are in RESULTS_DIR/logs/. BENCH_READ_PATH=0 skips `loadtest bench` (step 4) and
# BENCH_STRATEGIES=0 the experiment (step 6): with both, a run is the seed and the scale-out
# stage alone, e.g. `BENCH_USERS=1000 BENCH_READ_PATH=0 BENCH_STRATEGIES=0 deploy/bench.sh`.
# BENCH_IDLE=0 skips the idle cost; BENCH_IDLE_ONLY=1 runs it alone (the seed, then the idle
# window; no read path, scale-out or experiment), e.g. `BENCH_IDLE_ONLY=1 BENCH_USERS=1000
# BENCH_IDLE_WINDOW=30s deploy/bench.sh`. The quiet check waits up to BENCH_QUIET_TIMEOUT
# seconds (120) for fan-out lag 0, no query of the run active and BENCH_QUIET_IDLE % (80) of
# the CPU idle. The backends' pid files are read from CHIRP_BACKENDS_DIR/run/ (default
# .backends/run/, where deploy/backends.sh writes them); a backend started otherwise is
# reported as not measured.
# BENCH_BIN_DIR=DIR runs the binaries in DIR instead of building them (step 2), e.g. to
# compare two commits' builds in turn on the same machine.
set -euo pipefail

REPO_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RESULTS=${1:-$REPO_DIR/bench-results/$(date +%Y%m%d-%H%M%S)}
RUN_ID=bench$(date +%s)

USERS=${BENCH_USERS:-5000}
CELEBRITIES=${BENCH_CELEBRITIES:-3}
THRESHOLD=${BENCH_CELEBRITY_THRESHOLD:-1000}
TWEETS_PER_USER=${BENCH_TWEETS_PER_USER:-5}
DURATION=${BENCH_DURATION:-10s}
CONNECTIONS=${BENCH_CONNECTIONS:-64}
READERS=${BENCH_READERS:-1000}
FANOUT_FOLLOWERS=${BENCH_FANOUT_FOLLOWERS:-900}
FANOUT_EVENTS=${BENCH_FANOUT_EVENTS:-200}
EXPERIMENT_USERS=${BENCH_EXPERIMENT_USERS:-2000}
IDLE_WINDOW=${BENCH_IDLE_WINDOW:-60s}
QUIET_IDLE=${BENCH_QUIET_IDLE:-80}
QUIET_TIMEOUT=${BENCH_QUIET_TIMEOUT:-120}
if [[ ${BENCH_IDLE_ONLY:-0} == 1 ]]; then
  BENCH_IDLE=1 BENCH_READ_PATH=0 BENCH_SCALE_OUT=0 BENCH_STRATEGIES=0
fi

PG=postgres://postgres@127.0.0.1:5432
DATABASE=chirp_bench
GATEWAY=127.0.0.1:18080
TWEET=127.0.0.1:51051
GRAPH=127.0.0.1:51052
TIMELINE=127.0.0.1:51053
FANOUT_METRICS=127.0.0.1:19100
BACKENDS_DIR=${CHIRP_BACKENDS_DIR:-$REPO_DIR/.backends}
# Where cargo puts the release binaries (CARGO_TARGET_DIR, when set, moves them).
BIN_DIR=${BENCH_BIN_DIR:-${CARGO_TARGET_DIR:-$REPO_DIR/target}/release}

mkdir -p "$RESULTS/logs"
LOG_DIR=$RESULTS/logs
# shellcheck source=deploy/lib/bench-common.sh
source "$REPO_DIR/deploy/lib/bench-common.sh"

cleanup() {
  stop_services
  # The run's timelines and rate-limit buckets (they would expire anyway), and its topic: a
  # topic's partitions cost the broker at rest.
  PREFIXES+=("$RUN_ID:") TOPICS+=("$RUN_ID")
  drop_state
}
trap cleanup EXIT

log "starting the backends"
bash "$REPO_DIR/deploy/backends.sh" up

if [[ -z ${BENCH_BIN_DIR:-} ]]; then
  log "building the services and the load tool (cargo build --release)"
  build_release "$REPO_DIR"
fi

log "fresh database $DATABASE"
psql -q "$PG/postgres" -c "DROP DATABASE IF EXISTS $DATABASE" -c "CREATE DATABASE $DATABASE"

TOKEN_SECRET=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
log "starting the services (logs: $RESULTS/logs/)"
start_stack "$PG/$DATABASE" "$DATABASE" "$RUN_ID" "$THRESHOLD" "$TOKEN_SECRET"

LOADTEST=$BIN_DIR/loadtest
EXPERIMENT=$BIN_DIR/experiment
log "seeding $USERS users"
"$LOADTEST" seed --gateway "http://$GATEWAY" --graph-addr $GRAPH --tweet-addr $TWEET \
  --users "$USERS" --celebrities "$CELEBRITIES" --celebrity-threshold "$THRESHOLD" \
  --tweets-per-user "$TWEETS_PER_USER" --manifest "$RESULTS/manifest.json" --quiet
# Fresh statistics now, rather than an autovacuum in the middle of a measurement.
psql -q "$PG/$DATABASE" -c "VACUUM ANALYZE"
quiet_table

# The idle cost (docs/BENCHMARKS.md, "The idle cost"): the stack up, seeded and settled, and no
# request at all for the window.
if [[ ${BENCH_IDLE:-1} == 1 ]]; then
  quiet "$USERS" "idle" "$DATABASE"
  processes=()
  for service in graph tweet timeline fanout gateway; do
    processes+=(--process "$service=$LOG_DIR/$service.pid")
  done
  for backend in postgres redis kafka cassandra; do
    processes+=(--process "$backend=$BACKENDS_DIR/run/$backend.pid")
  done
  log "the idle cost: every process's CPU over $IDLE_WINDOW with no traffic"
  "$LOADTEST" idle "${processes[@]}" --window "$IDLE_WINDOW" --out "$RESULTS"
fi

if [[ ${BENCH_READ_PATH:-1} == 1 ]]; then
log "benchmarking the read path and fan-out"
env "${REDIS[@]}" "${KAFKA[@]}" TOKEN_SECRET="$TOKEN_SECRET" "$LOADTEST" bench --manifest "$RESULTS/manifest.json" \
  --timeline-addr $TIMELINE --graph-addr $GRAPH --fanout-metrics "http://$FANOUT_METRICS/metrics" \
  --duration "$DURATION" --connections "$CONNECTIONS" --readers "$READERS" \
  --fanout-followers "$FANOUT_FOLLOWERS" --fanout-events "$FANOUT_EVENTS" --out "$RESULTS"
fi

# Scale-out stage: the same home-timeline reads through one gateway and one timeline service,
# then through two gateways behind HAProxy, each balancing over two timeline services
# (docs/SCALING.md). On 2 shared cores no speed-up is expected: the point is that it works
# and that no request fails. Results in $RESULTS/scale-out.md.
if [[ ${BENCH_SCALE_OUT:-1} == 1 ]]; then
  log "scale-out stage: 1 gateway + 1 timeline, then 2 + 2 behind HAProxy"
  TIMELINE_2=127.0.0.1:51063
  start timeline LISTEN_ADDR=$TIMELINE_2 TWEET_ADDR=$TWEET GRAPH_ADDR=$GRAPH "${REDIS[@]}"
  for port in 18081 18082; do
    start gateway LISTEN_ADDR=127.0.0.1:$port TWEET_ADDR=$TWEET GRAPH_ADDR=$GRAPH \
      TIMELINE_ADDR=$TIMELINE,$TIMELINE_2 TOKEN_SECRET="$TOKEN_SECRET" "${REDIS[@]}"
  done
  command -v haproxy >/dev/null || die "the scale-out stage needs haproxy (apt-get install haproxy, or BENCH_SCALE_OUT=0)"
  SETUPS=("one:http://$GATEWAY" "two:http://127.0.0.1:18090")
  BACKENDS=("two 18090 18081 18082")
  # The same, with the timelines on the Redis Cluster: their own timeline services and
  # gateways, under the same key prefix; the warm-up below caches the timelines there.
  if [[ ${BENCH_REDIS_CLUSTER:-1} == 1 ]]; then
    bash "$REPO_DIR/deploy/backends.sh" up redis-cluster
    CLUSTER=(REDIS_CLUSTER=true REDIS_URL=redis://127.0.0.1:6391,redis://127.0.0.1:6392,redis://127.0.0.1:6393
      REDIS_KEY_PREFIX="$RUN_ID:" TIMELINE_TTL_SECS=3600)
    for port in 51073 51083; do
      start timeline LISTEN_ADDR=127.0.0.1:$port TWEET_ADDR=$TWEET GRAPH_ADDR=$GRAPH "${CLUSTER[@]}"
    done
    start gateway LISTEN_ADDR=127.0.0.1:18083 TWEET_ADDR=$TWEET GRAPH_ADDR=$GRAPH \
      TIMELINE_ADDR=127.0.0.1:51073 TOKEN_SECRET="$TOKEN_SECRET" "${CLUSTER[@]}"
    for port in 18084 18085; do
      start gateway LISTEN_ADDR=127.0.0.1:$port TWEET_ADDR=$TWEET GRAPH_ADDR=$GRAPH \
        TIMELINE_ADDR=127.0.0.1:51073,127.0.0.1:51083 TOKEN_SECRET="$TOKEN_SECRET" "${CLUSTER[@]}"
    done
    SETUPS+=("cluster-one:http://127.0.0.1:18083" "cluster-two:http://127.0.0.1:18091")
    BACKENDS+=("cluster-two 18091 18084 18085")
  fi
  {
    printf '%s\n' 'defaults' '  mode http' '  timeout connect 1s' '  timeout client 30s' '  timeout server 30s'
    for backend in "${BACKENDS[@]}"; do
      read -r name port first second <<<"$backend"
      printf '%s\n' "frontend $name" "  bind 127.0.0.1:$port" "  default_backend $name-gateways" \
        "backend $name-gateways" '  balance roundrobin' '  option httpchk GET /healthz' \
        "  server g1 127.0.0.1:$first check inter 1s" "  server g2 127.0.0.1:$second check inter 1s"
    done
  } >"$RESULTS/haproxy.cfg"
  haproxy -db -f "$RESULTS/haproxy.cfg" >"$RESULTS/logs/haproxy.log" 2>&1 &
  PIDS+=($!)
  deadline=$((SECONDS + 60))
  wait_http http://127.0.0.1:18090/healthz 60 "the load balancer"
  # What the read bench reads: first pages of READERS readers (the same draw for every setup),
  # warmed first, each setup from a quiet system. Until 2026-12-07 the stage read every seeded
  # user three pages deep, so most of what it measured were rebuilds (docs/SCALING.md).
  READS=(--manifest "$RESULTS/manifest.json" --token-secret "$TOKEN_SECRET" --readers "$READERS"
    --pages 1 --connections "$CONNECTIONS")
  for setup in "${SETUPS[@]}"; do
    wait_http "${setup#*:}/healthz" $((deadline + 60 - SECONDS)) "${setup#*:}"
    # A first pass over the readers caches their timelines (and tweets): the measured pass
    # reads cached home timelines.
    "$LOADTEST" run home-timeline "${READS[@]}" --gateway "${setup#*:}" \
      --duration "${BENCH_WARM_UP:-10s}" --out "$RESULTS/scale-out-${setup%%:*}-warm-up" >/dev/null
    quiet "scale-out" "${setup%%:*}" "$DATABASE"
    echo "${setup%%:*} $(cut -d ' ' -f 1-3 /proc/loadavg)" >>"$RESULTS/scale-out-load.txt"
    "$LOADTEST" run home-timeline "${READS[@]}" --gateway "${setup#*:}" \
      --duration "$DURATION" --out "$RESULTS/scale-out-${setup%%:*}" >/dev/null
  done
  python3 - "$RESULTS" "${SETUPS[@]%%:*}" >"$RESULTS/scale-out.md" <<'PY'
import json, sys
out, setups = sys.argv[1], sys.argv[2:]
labels = {
    "one": "1 gateway, 1 timeline",
    "two": "2 gateways (HAProxy), 2 timelines",
    "cluster-one": "1 gateway, 1 timeline, Redis Cluster",
    "cluster-two": "2 gateways (HAProxy), 2 timelines, Redis Cluster",
}
load = dict(line.split(" ", 1) for line in open(f"{out}/scale-out-load.txt").read().splitlines())
print("| setup | pages ok/s | p50 ms | p99 ms | errors | load avg (1, 5, 15 min) before |")
print("|---|---:|---:|---:|---:|---|")
for setup in setups:
    report = json.load(open(f"{out}/scale-out-{setup}/report.json"))
    t, latency, counts = report["throughput"], report["latency"], report["counts"]
    errors = counts["errors"] + counts["timeouts"]
    print(f"| {labels[setup]} | {t['ok_per_sec']:.0f} | {latency['p50_ms']:.1f} "
          f"| {latency['p99_ms']:.1f} | {errors} | {load.get(setup, '?')} |")
PY
  cat "$RESULTS/scale-out.md"
fi
stop_services

if [[ ${BENCH_STRATEGIES:-1} == 1 ]]; then
log "comparing push, pull and hybrid timelines"
"$EXPERIMENT" strategies --database-url "$PG/$DATABASE" \
  --cql-keyspace $DATABASE --users "$EXPERIMENT_USERS" --out "$RESULTS/strategies" --quiet
fi

log "done: the results are in $RESULTS"
python3 "$REPO_DIR/deploy/lib/record-run.py" bench "$RESULTS" deploy/bench.sh "$@"
