# deploy/lib/bench-common.sh — what deploy/bench.sh and deploy/bench-scale.sh share, sourced by
# both: logging, the release build, and the five services started natively on fresh state of
# one run, each given exactly the settings that wire it to that run.
#
# The caller sets, before using these:
#   BIN_DIR   where the release binaries are
#   LOG_DIR   where each service's log goes (LOG_DIR/<service>.log; replicas append to one)
#   GATEWAY TWEET GRAPH TIMELINE FANOUT_METRICS   the services' addresses (host:port)
# `start_stack` then sets REDIS and KAFKA (arrays of VAR=value) for the load tool's own use.

PIDS=()

log() { printf '%s ==> %s\n' "$(date +%T)" "$*"; }
die() { printf '%s ✘ %s\n' "$(date +%T)" "$*" >&2; exit 1; }

# cargo build --release of the five services, the load tool and the experiment binary, in the
# repository $1.
build_release() {
  (cd "$1" && cargo build --release --locked \
    --bin graph --bin tweet --bin timeline --bin fanout --bin gateway --bin loadtest \
    --bin experiment)
}

# start SERVICE VAR=value…: runs BIN_DIR/SERVICE in the background with those variables and
# nothing from the caller's environment but the PATH.
start() {
  local service=$1; shift
  env -i PATH="$PATH" RUST_LOG=warn "$@" "$BIN_DIR/$service" >>"$LOG_DIR/$service.log" 2>&1 &
  PIDS+=($!)
}

stop_services() {
  local pid
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  PIDS=()
}

# wait_http URL SECONDS WHAT: until URL answers 2xx, or dies naming WHAT.
wait_http() {
  local deadline=$((SECONDS + $2))
  until curl -fsS "$1" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || die "$3 did not answer within $2 s; see $LOG_DIR/"
    sleep 0.5
  done
}

# start_stack DATABASE_URL KEYSPACE RUN THRESHOLD TOKEN_SECRET: the five services on one run's
# state: the Postgres database, the CQL keyspace, RUN as the Redis key prefix ("RUN:"), Kafka
# topic and consumer group, and the celebrity threshold. Returns once the gateway answers.
start_stack() {
  local database_url=$1 keyspace=$2 run=$3 threshold=$4 secret=$5
  REDIS=(REDIS_URL=redis://127.0.0.1:6379 REDIS_KEY_PREFIX="$run:" TIMELINE_TTL_SECS=3600)
  KAFKA=(KAFKA_BROKERS=127.0.0.1:9092 KAFKA_TOPIC="$run" KAFKA_TOPIC_PARTITIONS=1)
  start graph LISTEN_ADDR="$GRAPH" DATABASE_URL="$database_url" CELEBRITY_THRESHOLD="$threshold" "${REDIS[@]}"
  start tweet LISTEN_ADDR="$TWEET" CQL_NODES=127.0.0.1:9042 CQL_KEYSPACE="$keyspace" "${KAFKA[@]}"
  # BENCH_TIMELINE_ENV="VAR=value …": more settings for the timeline service (its caches).
  local -a timeline_env
  read -r -a timeline_env <<<"${BENCH_TIMELINE_ENV:-}"
  start timeline LISTEN_ADDR="$TIMELINE" TWEET_ADDR="$TWEET" GRAPH_ADDR="$GRAPH" "${REDIS[@]}" \
    "${timeline_env[@]}"
  start fanout GRAPH_ADDR="$GRAPH" KAFKA_GROUP_ID="$run" METRICS_ADDR="$FANOUT_METRICS" "${KAFKA[@]}" "${REDIS[@]}"
  # BENCH_GATEWAY_ENV="VAR=value …": more settings for the gateway (its handle cache).
  local -a gateway_env
  read -r -a gateway_env <<<"${BENCH_GATEWAY_ENV:-}"
  start gateway LISTEN_ADDR="$GATEWAY" TWEET_ADDR="$TWEET" GRAPH_ADDR="$GRAPH" TIMELINE_ADDR="$TIMELINE" \
    TOKEN_SECRET="$secret" RATE_LIMIT_WRITES_PER_MINUTE=1000000 RATE_LIMIT_BURST=100000 \
    RATE_LIMIT_SIGNUPS_PER_MINUTE=1000000 RATE_LIMIT_SIGNUP_BURST=100000 "${REDIS[@]}" \
    "${gateway_env[@]}"
  wait_http "http://$GATEWAY/healthz" 120 "the gateway"
}
