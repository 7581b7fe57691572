# deploy/lib/bench-common.sh — what deploy/bench.sh, deploy/bench-scale.sh and deploy/bench-dsb.sh
# share, sourced by each: logging, the release build, the five services started natively on
# fresh state of one run, each given exactly the settings that wire it to that run, and the
# check that the machine is quiet before a measurement.
#
# The caller sets, before using these:
#   BIN_DIR   where the release binaries are
#   LOG_DIR   where each service's log goes (LOG_DIR/<service>.log; replicas append to one),
#             and the pid file of each service `start_stack` starts (LOG_DIR/<service>.pid)
#   GATEWAY TWEET GRAPH TIMELINE FANOUT_METRICS   the services' addresses (host:port)
#   RESULTS PG QUIET_IDLE QUIET_TIMEOUT   for `quiet`: where quiet.md goes, the Postgres
#             server's URL, the CPU idle % a quiet machine shows, and how long to wait for it
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

# record_pid SERVICE: the pid file of the instance of SERVICE `start` started last, for what
# reads a process by its pid file (`loadtest idle`).
record_pid() {
  echo "${PIDS[-1]}" >"$LOG_DIR/$1.pid"
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
  record_pid graph
  # TWEET_METRICS, GATEWAY_METRICS: where those two serve /metrics, when the caller reads them.
  start tweet LISTEN_ADDR="$TWEET" CQL_NODES=127.0.0.1:9042 CQL_KEYSPACE="$keyspace" "${KAFKA[@]}" \
    ${TWEET_METRICS:+METRICS_ADDR=$TWEET_METRICS}
  record_pid tweet
  # BENCH_TIMELINE_ENV="VAR=value …": more settings for the timeline service (its caches).
  local -a timeline_env
  read -r -a timeline_env <<<"${BENCH_TIMELINE_ENV:-}"
  start timeline LISTEN_ADDR="$TIMELINE" TWEET_ADDR="$TWEET" GRAPH_ADDR="$GRAPH" "${REDIS[@]}" \
    "${timeline_env[@]}"
  record_pid timeline
  start fanout GRAPH_ADDR="$GRAPH" KAFKA_GROUP_ID="$run" METRICS_ADDR="$FANOUT_METRICS" "${KAFKA[@]}" "${REDIS[@]}"
  record_pid fanout
  # BENCH_GATEWAY_ENV="VAR=value …": more settings for the gateway (its handle cache).
  local -a gateway_env
  read -r -a gateway_env <<<"${BENCH_GATEWAY_ENV:-}"
  start gateway LISTEN_ADDR="$GATEWAY" TWEET_ADDR="$TWEET" GRAPH_ADDR="$GRAPH" TIMELINE_ADDR="$TIMELINE" \
    TOKEN_SECRET="$secret" RATE_LIMIT_WRITES_PER_MINUTE=1000000 RATE_LIMIT_BURST=100000 \
    RATE_LIMIT_SIGNUPS_PER_MINUTE=1000000 RATE_LIMIT_SIGNUP_BURST=100000 "${REDIS[@]}" \
    ${GATEWAY_METRICS:+METRICS_ADDR=$GATEWAY_METRICS} "${gateway_env[@]}"
  record_pid gateway
  wait_http "http://$GATEWAY/healthz" 120 "the gateway"
}

# Percent of the machine's CPU time idle over $1 seconds (all cores, from /proc/stat).
cpu_idle() {
  local a b
  read -r -a a < <(head -1 /proc/stat)
  sleep "$1"
  read -r -a b < <(head -1 /proc/stat)
  local total=0 i
  for i in 1 2 3 4 5 6 7 8; do total=$((total + b[i] - a[i])); done
  echo $((100 * ((b[4] - a[4]) + (b[5] - a[5])) / (total > 0 ? total : 1)))
}

# The fan-out worker's consumer lag, or "none" when no worker of ours runs (the strategies
# experiment runs its own, in process). A worker of ours that does not answer is not quiet.
fanout_lag() {
  local metrics
  if ((${#PIDS[@]} == 0)); then echo none; return; fi
  metrics=$(curl -fsS "http://$FANOUT_METRICS/metrics" 2>/dev/null) || { echo "unreachable"; return; }
  awk '/^chirp_fanout_consumer_lag/ { lag += $2 } END { print lag + 0 }' <<<"$metrics"
}

# Queries of the database $1 still running (other than this check): a seed not yet settled.
active_queries() {
  psql -Atq "$PG/postgres" -c "SELECT count(*) FROM pg_stat_activity WHERE datname = '$1' \
    AND state <> 'idle' AND pid <> pg_backend_pid()" 2>/dev/null || echo "?"
}

# Waits for a quiet system (lag 0, the run's database idle, CPU idle) and records what it found
# before the step $2 of the part $1 of the run (a size, a mix; database $3) as a row of
# RESULTS/quiet.md, with the load average and the busiest processes. The caller sets RESULTS,
# PG, QUIET_IDLE (percent) and QUIET_TIMEOUT (seconds).
quiet() {
  local deadline=$((SECONDS + QUIET_TIMEOUT)) lag idle active status
  while :; do
    lag=$(fanout_lag)
    active=$(active_queries "$3")
    idle=$(cpu_idle 5)
    if [[ ($lag == 0 || $lag == none) && $active == 0 ]] && ((idle >= QUIET_IDLE)); then status=quiet; break; fi
    if ((SECONDS >= deadline)); then status="NOT quiet after ${QUIET_TIMEOUT} s"; break; fi
  done
  local load busiest
  load=$(cut -d ' ' -f 1-3 /proc/loadavg)
  # The second frame of top: CPU over the last second, not since each process started.
  busiest=$(top -b -n 2 -d 1 -w 200 | awk '/^top -/ { frame++ }
    frame == 2 && $1 ~ /^[0-9]+$/ && n < 4 { printf "%s%s %s %%", sep, $12, $9; sep = ", "; n++ }')
  printf '| %s | %s | %s | %s | %s %% | %s | %s | %s |\n' "$1" "$2" "$lag" "$active" "$idle" "$load" \
    "$busiest" "$status" >>"$RESULTS/quiet.md"
  log "$2 ($1): fan-out lag $lag, $active queries active, CPU $idle % idle, load $load: $status"
}

# quiet_table [COLUMN]: starts quiet.md, the table `quiet` adds a row to before each measurement;
# its first column names the part of the run (default: users).
quiet_table() {
  printf '| %s | before | fan-out lag | queries active | CPU idle | load average | busiest processes | |\n|---|---|---|---|---|---|---|---|\n' "${1:-users}" >"$RESULTS/quiet.md"
}

DATABASES=()
KEYSPACES=()
PREFIXES=()
TOPICS=()

# Drops what the runs named in DATABASES, KEYSPACES, PREFIXES and TOPICS created, and forgets
# them: a million users' graph, history and timelines are gigabytes other users of these
# backends should not pay for. The caller sets REPO_DIR, PG and BIN_DIR (its loadtest drops
# keyspaces).
drop_state() {
  local prefix database keyspace topic kafka_libs=${CHIRP_BACKENDS_DIR:-$REPO_DIR/.backends}/kafka/libs
  for prefix in "${PREFIXES[@]}"; do
    redis-cli -h 127.0.0.1 --scan --pattern "$prefix*" | xargs -r -n 1000 redis-cli -h 127.0.0.1 del >/dev/null || true
  done
  for database in "${DATABASES[@]}"; do
    psql -q "$PG/postgres" -c "DROP DATABASE IF EXISTS $database WITH (FORCE)" || true
  done
  for keyspace in "${KEYSPACES[@]}"; do
    "$BIN_DIR/loadtest" drop-keyspace "$keyspace" || true
  done
  # Each topic with the fan-out worker's dead-letter topic beside it (fanout::dead_letter_topic).
  for topic in "${TOPICS[@]/%/-dead-letter}" "${TOPICS[@]}"; do
    timeout 60 java -Xmx128m -XX:TieredStopAtLevel=1 -XX:+UseSerialGC -cp "$kafka_libs/*" \
      org.apache.kafka.tools.TopicCommand --bootstrap-server 127.0.0.1:9092 --delete \
      --topic "$topic" >/dev/null 2>&1 || true
  done
  DATABASES=() KEYSPACES=() PREFIXES=() TOPICS=()
}
