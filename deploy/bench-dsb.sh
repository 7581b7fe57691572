#!/usr/bin/env bash
# deploy/bench-dsb.sh — DeathStarBench's social-network workload on DeathStarBench's graph.
#
#   deploy/bench-dsb.sh [RESULTS_DIR]        default: bench-results/dsb-<date-time>
#
# The one comparison people ask for first: the field measures microservice social networks
# with DeathStarBench (github.com/delimitrou/DeathStarBench), and publishes the highest rate
# whose p99 stays near 10 ms. This script measures chirp the same way, with the same request
# mixes (load/src/dsb.rs cites the scripts they are read from) on the same graph. For each
# mix of MIXES (DSB_MIXES, default: `dsb-mixed`, DeathStarBench's wrk2 mixed workload;
# `nightcore-mixed`, the Nightcore artifact's mix; `post`, its write-only run) it
#
# 1. starts the five services (release builds, copied aside so that another build cannot swap
#    them mid-run) on fresh state of its own: a new Postgres database, CQL keyspace, Redis key
#    prefix and Kafka topic, all dropped when the mix is done (and on any failure);
# 2. seeds socfb-Reed98 as DeathStarBench's `scripts/init_social_graph.py` does: 962 users,
#    each friendship followed in both directions (`loadtest seed --edges … --undirected`, the
#    bulk import), and TWEETS_PER_USER posts each (10, the average of its `--compose`). No user
#    reaches the celebrity threshold (10 000; the graph's largest degree is a few hundred):
#    every post is pushed to every follower, as DeathStarBench's write-home-timeline does;
# 3. reads every user's home timeline once (TIMELINES_WARMUP of a closed loop over the users
#    in turn): DeathStarBench's seed writes every home timeline, chirp builds one on its first
#    read, and a benchmark at a rate measures the steady state, not those first reads;
# 4. steps the open-loop rate up through RATES (requests/s, all kinds together, as wrk2's -R),
#    each step a quiet check, a WARMUP at that rate (as the Nightcore artifact warms up before
#    measuring) and DURATION measured, over CONNECTIONS connections (wrk2's -c), pages of the
#    size the mix's benchmark reads; a step passes when its p99 is at most P99_MS and at most
#    one request in a thousand failed, timed out or was dropped. The mix stops at its first
#    failing step: the highest passing rate is its result, divided by the machine's cores
#    for the per-core figure.
#
# Before the seed and before each step it checks that the system is quiet (fan-out consumer
# lag 0, the database idle, the CPU at least QUIET_IDLE % idle over 5 s, waiting up to
# QUIET_TIMEOUT seconds; deploy/lib/bench-common.sh) and records what it found in quiet.md
# either way: on a shared machine "not quiet" is a result to report, not to hide.
#
# RESULTS_DIR then holds dsb.md (the summary), quiet.md, per mix the seed's output, the
# manifest and per rate the load tool's report (report.json, report.html), the services'
# histograms over the measured step (histograms.json: where its requests spent their time) and
# step.json; and run.json, the run's record (deploy/lib/record-run.py). Two runs are published
# together, `deploy/lib/record-run.py publish-dsb DIR1 DIR2`, into docs/runs/dsb/, from which
# deploy/render-docs.py renders the tables of docs/BENCHMARKS.md.
#
# Settings (environment): DSB_EDGES (the graph; default ../shared/data/socfb-Reed98/ beside the
# repository), DSB_MIXES, DSB_RATES, DSB_WARMUP, DSB_DURATION, DSB_CONNECTIONS, DSB_P99_MS,
# DSB_TWEETS_PER_USER, DSB_TIMELINES_WARMUP, DSB_QUIET_IDLE, DSB_QUIET_TIMEOUT; DSB_BIN_DIR=DIR
# runs the binaries in DIR instead of building them; DSB_PORT_OFFSET moves the services' ports (gateway
# 127.0.0.1:18380, gRPC 51351-51353, the metrics of the fan-out worker, the tweet service and the
# gateway 19390-19392), e.g. for a short smoke run beside
# a real one: `DSB_RATES="20 40" DSB_WARMUP=2s DSB_DURATION=5s DSB_PORT_OFFSET=8000 deploy/bench-dsb.sh`.
set -euo pipefail

REPO_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RESULTS=${1:-$REPO_DIR/bench-results/dsb-$(date +%Y%m%d-%H%M%S)}
RUN_ID=dsb$(date +%s)

EDGES=${DSB_EDGES:-$REPO_DIR/../shared/data/socfb-Reed98/socfb-Reed98.edges}
MIXES=${DSB_MIXES:-"dsb-mixed nightcore-mixed post"}
RATES=${DSB_RATES:-"250 500 750 1000 1500 2000 3000 4000 6000 8000"}
WARMUP=${DSB_WARMUP:-10s}
TIMELINES_WARMUP=${DSB_TIMELINES_WARMUP:-20s}
DURATION=${DSB_DURATION:-30s}
CONNECTIONS=${DSB_CONNECTIONS:-64}
P99_MS=${DSB_P99_MS:-10}
TWEETS_PER_USER=${DSB_TWEETS_PER_USER:-10}
QUIET_IDLE=${DSB_QUIET_IDLE:-80}
QUIET_TIMEOUT=${DSB_QUIET_TIMEOUT:-120}
THRESHOLD=10000
OFFSET=${DSB_PORT_OFFSET:-0}

PG=postgres://postgres@127.0.0.1:5432
GATEWAY=127.0.0.1:$((18380 + OFFSET))
TWEET=127.0.0.1:$((51351 + OFFSET))
GRAPH=127.0.0.1:$((51352 + OFFSET))
TIMELINE=127.0.0.1:$((51353 + OFFSET))
FANOUT_METRICS=127.0.0.1:$((19390 + OFFSET))
TWEET_METRICS=127.0.0.1:$((19391 + OFFSET))
GATEWAY_METRICS=127.0.0.1:$((19392 + OFFSET))
# Where a step's requests spent their time, from the services' own histograms scraped before
# and after it (deploy/lib/histogram-delta.py): the gateway's and the tweet service's handlers,
# a post's steps in the tweet service, the outbox relay, and the post's delay to the fan-out's
# writes.
STEP_HISTOGRAMS="chirp_http_request_duration_seconds chirp_grpc_request_duration_seconds
  chirp_tweet_post_step_duration_seconds chirp_outbox_relay_duration_seconds
  chirp_fanout_post_to_push_duration_seconds"
scrape_metrics() {
  local addr
  for addr in "$GATEWAY_METRICS" "$TWEET_METRICS" "$FANOUT_METRICS"; do
    curl -fsS "http://$addr/metrics" || die "no metrics at $addr; see $LOG_DIR/"
  done
}

mkdir -p "$RESULTS/bin"
BIN_DIR=$RESULTS/bin
LOG_DIR=$RESULTS/logs
# shellcheck source=deploy/lib/bench-common.sh
source "$REPO_DIR/deploy/lib/bench-common.sh"

[[ -r $EDGES ]] || die "no graph at $EDGES: set DSB_EDGES to socfb-Reed98.edges (or its .mtx)"

cleanup() {
  stop_services
  drop_state
}
trap cleanup EXIT

log "starting the backends"
bash "$REPO_DIR/deploy/backends.sh" up

if [[ -z ${DSB_BIN_DIR:-} ]]; then
  log "building the services and the load tool (cargo build --release)"
  build_release "$REPO_DIR"
fi
for bin in graph tweet timeline fanout gateway loadtest; do
  cp "${DSB_BIN_DIR:-${CARGO_TARGET_DIR:-$REPO_DIR/target}/release}/$bin" "$BIN_DIR/"
done
LOADTEST=$BIN_DIR/loadtest

quiet_table mix
printf '| mix | rate/s | ok/s | p50 ms | p99 ms | p99.9 ms | failed | |\n|---|--:|--:|--:|--:|--:|--:|---|\n' >"$RESULTS/steps.md"

for MIX in $MIXES; do
  OUT=$RESULTS/$MIX
  LOG_DIR=$OUT/logs
  mkdir -p "$LOG_DIR"
  NAME=${RUN_ID}_${MIX//-/_}
  DATABASES+=("$NAME"); KEYSPACES+=("$NAME"); PREFIXES+=("$NAME:"); TOPICS+=("$NAME")

  log "[$MIX] fresh database, keyspace, key prefix and topic $NAME"
  psql -q "$PG/postgres" -c "CREATE DATABASE $NAME"
  TOKEN_SECRET=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
  start_stack "$PG/$NAME" "$NAME" "$NAME" "$THRESHOLD" "$TOKEN_SECRET"

  quiet "$MIX" "seed" "$NAME"
  log "[$MIX] seeding $(basename "$EDGES"), both directions of each edge, $TWEETS_PER_USER posts each"
  "$LOADTEST" seed --gateway "http://$GATEWAY" --graph-addr "$GRAPH" --tweet-addr "$TWEET" \
    --edges "$EDGES" --undirected --celebrity-threshold "$THRESHOLD" \
    --tweets-per-user "$TWEETS_PER_USER" --manifest "$OUT/manifest.json" --quiet | tee "$OUT/seed.txt"
  psql -q "$PG/$NAME" -c "VACUUM ANALYZE"
  # Every user's home timeline read once, as DeathStarBench's are all written by its seed: chirp
  # builds a timeline on its first read (a rebuild from the tweet store) and keeps it cached,
  # so without this the first steps would measure rebuilds, not the steady state a benchmark
  # run at a rate means. A closed loop over the users in turn, one first page each at least.
  log "[$MIX] reading every user's home timeline once ($TIMELINES_WARMUP, closed loop)"
  TOKEN_SECRET="$TOKEN_SECRET" "$LOADTEST" run home-timeline --manifest "$OUT/manifest.json" \
    --connections "$CONNECTIONS" --duration "$TIMELINES_WARMUP" --pages 1 \
    --out "$OUT/timelines-warm-up" >/dev/null

  best=0
  for RATE in $RATES; do
    STEP=$OUT/rate-$RATE
    quiet "$MIX" "rate $RATE/s" "$NAME"
    log "[$MIX] $RATE requests/s: $WARMUP warm-up, then $DURATION measured"
    TOKEN_SECRET="$TOKEN_SECRET" "$LOADTEST" run "$MIX" --manifest "$OUT/manifest.json" \
      --rate "$RATE" --connections "$CONNECTIONS" --duration "$WARMUP" --pages 1 --seed "$RATE" \
      --out "$STEP/warm-up" >/dev/null
    scrape_metrics >"$STEP/metrics-before.txt"
    TOKEN_SECRET="$TOKEN_SECRET" "$LOADTEST" run "$MIX" --manifest "$OUT/manifest.json" \
      --rate "$RATE" --connections "$CONNECTIONS" --duration "$DURATION" --pages 1 \
      --seed "$((RATE + 1))" --out "$STEP" | tee "$STEP/run.txt"
    scrape_metrics >"$STEP/metrics-after.txt"
    # shellcheck disable=SC2086 # one metric name per word
    python3 "$REPO_DIR/deploy/lib/histogram-delta.py" "$STEP/metrics-before.txt" \
      "$STEP/metrics-after.txt" $STEP_HISTOGRAMS >"$STEP/histograms.json"
    # The step's verdict, in the run record's form (deploy/lib/record-run.py reads step.json),
    # and its row of steps.md.
    passed=$(python3 -c '
import json, sys
report, rate, p99_ms, out, mix = json.load(open(sys.argv[1])), float(sys.argv[2]), float(sys.argv[3]), sys.argv[4], sys.argv[5]
c, l = report["counts"], report["latency"]
failed = c["errors"] + c["timeouts"] + c["dropped"]
passed = l["p99_ms"] <= p99_ms and failed <= report["scheduled"] / 1000
step = {"rate": rate, "ok_per_sec": report["throughput"]["ok_per_sec"], "p50_ms": l["p50_ms"],
        "p99_ms": l["p99_ms"], "p999_ms": l["p99.9_ms"], "scheduled": report["scheduled"],
        "failed": failed, "passed": passed,
        "histograms": json.load(open(sys.argv[6])),
        "operations": {name: {"answered": o["answered"], "p99_ms": o["latency"]["p99_ms"]}
                       for name, o in report["operations"].items()}}
json.dump(step, open(out, "w"), indent=2)
row = [mix, "%.0f" % rate, "%.0f" % step["ok_per_sec"], "%.2f" % l["p50_ms"], "%.2f" % l["p99_ms"],
       "%.2f" % l["p99.9_ms"], str(failed), "pass" if passed else "FAIL"]
print("| " + " | ".join(row) + " |", file=sys.stderr)
print("yes" if passed else "no")' "$STEP/report.json" "$RATE" "$P99_MS" "$STEP/step.json" "$MIX" \
      "$STEP/histograms.json" \
      2>>"$RESULTS/steps.md")
    if [[ $passed != yes ]]; then
      log "[$MIX] $RATE requests/s: p99 above $P99_MS ms or requests failed; the mix stops here"
      break
    fi
    best=$RATE
  done
  python3 -c 'import json, sys
json.dump({"mix": sys.argv[2], "best_rate": float(sys.argv[3]), "p99_target_ms": float(sys.argv[4]),
           "connections": int(sys.argv[5]), "warmup": sys.argv[6], "duration": sys.argv[7],
           "tweets_per_user": int(sys.argv[8]), "follows": json.load(open(sys.argv[9]))["follows"],
           "users": len(json.load(open(sys.argv[9]))["users"])},
          open(sys.argv[1], "w"), indent=2)' "$OUT/mix.json" "$MIX" "$best" "$P99_MS" "$CONNECTIONS" \
    "$WARMUP" "$DURATION" "$TWEETS_PER_USER" "$OUT/manifest.json"
  log "[$MIX] highest rate with p99 <= $P99_MS ms: $best requests/s ($(nproc) cores)"
  stop_services
  log "[$MIX] dropping the mix's database, keyspace, keys and topic"
  drop_state
done

{
  echo "# DeathStarBench's workload on socfb-Reed98 ($(date -u +%FT%TZ), $(nproc) cores)"
  echo
  echo "Open loop over $CONNECTIONS connections, $WARMUP warm-up then $DURATION per rate; a rate passes"
  echo "with p99 <= $P99_MS ms and at most 1 request in 1 000 failed, timed out or dropped."
  echo
  cat "$RESULTS/steps.md"
  echo
  echo "## Was the system quiet?"
  echo
  cat "$RESULTS/quiet.md"
} >"$RESULTS/dsb.md"
log "done: $RESULTS/dsb.md"
python3 "$REPO_DIR/deploy/lib/record-run.py" dsb "$RESULTS" deploy/bench-dsb.sh "$@"
cat "$RESULTS/dsb.md"
