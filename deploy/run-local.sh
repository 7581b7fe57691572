#!/usr/bin/env bash
# deploy/run-local.sh — run all of chirp natively, without Docker.
#
#   deploy/run-local.sh up      start the backends, build the services (release) and start them
#   deploy/run-local.sh down    stop the services (and the load balancer); the backends keep
#                               running: `deploy/backends.sh down` stops those
#   deploy/run-local.sh status  which services run
#   deploy/run-local.sh kill N  SIGKILL instance N (1-based) of every service, as a crash would
#
# The services listen where docker-compose.yml publishes them: the gateway on 127.0.0.1:8080,
# the gRPC services on 50051 (tweet), 50052 (graph), 50053 (timeline). Logs and pid files go to
# .backends/services/ (CHIRP_RUN_DIR).
# The gateway's web console (http://127.0.0.1:8080/) reads the first instance of each service's
# metrics (CONSOLE_METRICS_TARGETS) for its live view.
#
# Scaling out: REPLICAS=2 deploy/run-local.sh up starts two instances of each service, the
# way docker-compose.yml and deploy/k8s run them. Instance i (from 0) listens 10·i ports above
# the first (tweet 50051, 50061, …), and every client is given the list of all instances of its
# peers, over which it balances its calls, health-checked (TWEET_ADDR=127.0.0.1:50051,
# 127.0.0.1:50061). The gateways listen on 8081, 8091, … behind HAProxy on 8080 (installed
# from Debian's package on first use), which health-checks them (GET /healthz) and sends each
# request to a live one. The fan-out workers share the topic as one consumer group. Every
# instance serves its Prometheus metrics on 127.0.0.1:9200 + 10·service + i (gateway 9200,
# 9201; tweet 9210, 9211; graph 9220, …; timeline 9230, …; fanout 9240, …), so that each one's
# share of the load can be read.
#
# Traces: JAEGER=1 deploy/run-local.sh up also starts Jaeger natively (deploy/jaeger.sh: built
# once from source with Go, minutes the first time, then cached) and points every service's
# OTEL_EXPORTER_OTLP_ENDPOINT at it; open http://127.0.0.1:16686 and pick the service `gateway`.
# With PORT_OFFSET its ports move too (the UI on 16686 + PORT_OFFSET, OTLP on 4317 +
# PORT_OFFSET). `down` leaves it running, as the backends: `deploy/jaeger.sh down` stops it.
# An OTEL_EXPORTER_OTLP_ENDPOINT of your own (a collector elsewhere) is passed on as it is.
#
# Other settings: PORT_OFFSET moves every port (e.g. 2000: the gateway on 10080), BIN_DIR runs
# binaries from elsewhere (default: the release build), SKIP_BUILD=1 does not build them, and
# the services read the rest of their settings from the environment (.env.example).
# PROFILE=debug builds and runs the debug binaries instead of the release ones (faster to build,
# slower to run). With deploy/backends.sh's CHIRP_PG_PORT, CHIRP_REDIS_PORT, CHIRP_KAFKA_PORT
# and CHIRP_CQL_PORT set (an isolated set of backends, e.g. the one `loadtest chaos` runs), the
# services are pointed at those ports (DATABASE_URL, REDIS_URL, KAFKA_BROKERS, CQL_NODES, unless
# given outright), and the run folder follows CHIRP_BACKENDS_DIR: two stacks side by side.
set -euo pipefail

REPO_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RUN_DIR=${CHIRP_RUN_DIR:-${CHIRP_BACKENDS_DIR:-$REPO_DIR/.backends}/services}
PROFILE=${PROFILE:-release}
BIN_DIR=${BIN_DIR:-${CARGO_TARGET_DIR:-$REPO_DIR/target}/$PROFILE}
REPLICAS=${REPLICAS:-1}
PORT_OFFSET=${PORT_OFFSET:-0}
SERVICES=(graph tweet timeline fanout gateway)   # start order: dependencies first
declare -A GRPC_PORT=([tweet]=50051 [graph]=50052 [timeline]=50053)
declare -A METRICS_SLOT=([gateway]=0 [tweet]=1 [graph]=2 [timeline]=3 [fanout]=4)
EDGE_PORT=$((8080 + PORT_OFFSET))

log() { printf '%s ==> %s\n' "$(date +%T)" "$*"; }
die() { printf '%s ✘ %s\n' "$(date +%T)" "$*" >&2; exit 1; }

[[ $REPLICAS =~ ^[1-9][0-9]*$ ]] || die "REPLICAS must be a positive number, not '$REPLICAS'"
[[ $PROFILE == release || $PROFILE == debug ]] || die "PROFILE must be release or debug, not '$PROFILE'"

# Backends moved to other ports (deploy/backends.sh's CHIRP_*_PORT): every service goes there.
[[ -z ${CHIRP_PG_PORT:-} ]] || export DATABASE_URL=${DATABASE_URL:-postgres://postgres@127.0.0.1:$CHIRP_PG_PORT/chirp}
[[ -z ${CHIRP_REDIS_PORT:-} ]] || export REDIS_URL=${REDIS_URL:-redis://127.0.0.1:$CHIRP_REDIS_PORT}
[[ -z ${CHIRP_KAFKA_PORT:-} ]] || export KAFKA_BROKERS=${KAFKA_BROKERS:-127.0.0.1:$CHIRP_KAFKA_PORT}
[[ -z ${CHIRP_CQL_PORT:-} ]] || export CQL_NODES=${CQL_NODES:-127.0.0.1:$CHIRP_CQL_PORT}

# An instance's name: `timeline` for the first (as before scaling out), `timeline-2` next.
instance() { if (($2 == 0)); then echo "$1"; else echo "$1-$(($2 + 1))"; fi; }
grpc_addr() { echo "127.0.0.1:$((GRPC_PORT[$1] + 10 * $2 + PORT_OFFSET))"; }
# Every instance of a gRPC service, comma-separated: what its clients balance over.
peers() {
  local i list=()
  for ((i = 0; i < REPLICAS; i++)); do list+=("$(grpc_addr "$1" "$i")"); done
  (IFS=,; echo "${list[*]}")
}
gateway_port() {
  if ((REPLICAS == 1)); then echo "$EDGE_PORT"; else echo $((EDGE_PORT + 1 + 10 * $1)); fi
}

# A killed instance stays a zombie until its parent (init, here) reaps it: that is not running.
running() {
  [[ -f $RUN_DIR/$1.pid ]] && kill -0 "$(cat "$RUN_DIR/$1.pid")" 2>/dev/null \
    && [[ $(ps -o stat= -p "$(cat "$RUN_DIR/$1.pid")") != Z* ]]
}

# The gateway signs tokens with this. Generated once per machine, never committed; every
# gateway instance must share it.
token_secret() {
  local file=$RUN_DIR/token_secret
  [[ -s $file ]] || head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$file"
  cat "$file"
}

# The settings that place instance $2 of service $1 and wire it to its peers' instances.
metrics_addr() { echo "127.0.0.1:$((9200 + 10 * METRICS_SLOT[$1] + $2 + PORT_OFFSET))"; }

# What the console's live view scrapes: name=host:port of each service's first instance.
console_targets() {
  local targets=() service
  for service in "${SERVICES[@]}"; do targets+=("$service=$(metrics_addr "$service" 0)"); done
  (IFS=,; echo "${targets[*]}")
}

placement() {
  local service=$1 i=$2
  echo "METRICS_ADDR=$(metrics_addr "$service" "$i")"
  case $service in
    gateway) echo "LISTEN_ADDR=127.0.0.1:$(gateway_port "$i")"; echo "CONSOLE_METRICS_TARGETS=$(console_targets)" ;;
    tweet) echo "LISTEN_ADDR=$(grpc_addr tweet "$i")"; echo "NODE_ID=$i" ;;
    graph | timeline) echo "LISTEN_ADDR=$(grpc_addr "$service" "$i")" ;;
  esac
  case $service in
    gateway) echo "TWEET_ADDR=$(peers tweet)"; echo "TIMELINE_ADDR=$(peers timeline)" ;;
    timeline) echo "TWEET_ADDR=$(peers tweet)" ;;
  esac
  case $service in gateway | timeline | fanout) echo "GRAPH_ADDR=$(peers graph)" ;; esac
}

start() {
  local service=$1 i=$2 name
  name=$(instance "$service" "$i")
  if running "$name"; then log "$name already running (pid $(cat "$RUN_DIR/$name.pid"))"; return; fi
  log "starting $name (log: $RUN_DIR/$name.log)"
  local settings
  mapfile -t settings < <(placement "$service" "$i")
  # The load tool seeds its users through sign-up, all from this machine: the per-address
  # sign-up limit is raised here (override it in the environment to try the default).
  env "${settings[@]}" RUST_LOG="${RUST_LOG:-info}" TOKEN_SECRET="$(token_secret)" \
    RATE_LIMIT_SIGNUPS_PER_MINUTE="${RATE_LIMIT_SIGNUPS_PER_MINUTE:-1000000}" \
    RATE_LIMIT_SIGNUP_BURST="${RATE_LIMIT_SIGNUP_BURST:-100000}" \
    nohup "$BIN_DIR/$service" >"$RUN_DIR/$name.log" 2>&1 &
  echo $! >"$RUN_DIR/$name.pid"
}

# HAProxy from Debian's package; its install must not start the packaged service (no
# systemd here, and it would take port 80 with a config we do not control).
ensure_haproxy() {
  command -v haproxy >/dev/null && return 0
  [[ $EUID -eq 0 ]] || die "REPLICAS>1 needs HAProxy: apt-get install haproxy (as root)"
  log "installing haproxy (apt)"
  local own_policy=
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d
    own_policy=1
  fi
  local rc=0
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
      --no-install-recommends haproxy; } >"$RUN_DIR/apt-haproxy.log" 2>&1 || rc=$?
  [[ -z $own_policy ]] || rm -f /usr/sbin/policy-rc.d
  ((rc == 0)) || die "apt-get install haproxy failed (see $RUN_DIR/apt-haproxy.log)"
}

# The load balancer in front of the gateways: the article's first box. Health checks every
# second take a dead gateway out after one failed check; a request whose connection fails is
# sent again to another gateway (retry-on conn-failure, redispatch), so a crash costs only
# the requests that were inside the dead gateway. Those are not retried here (a POST may have
# taken effect): the client sees a 502 and retries.
start_load_balancer() {
  ensure_haproxy
  if running haproxy; then log "haproxy already running"; return; fi
  local cfg=$RUN_DIR/haproxy.cfg i
  {
    printf 'global\n  maxconn 4096\n\n'
    printf 'defaults\n  mode http\n  timeout connect 1s\n  timeout client 30s\n  timeout server 30s\n'
    printf '  retries 3\n  retry-on conn-failure\n  option redispatch 1\n\n'
    printf 'frontend chirp\n  bind 127.0.0.1:%s\n  default_backend gateways\n\n' "$EDGE_PORT"
    printf 'backend gateways\n  balance roundrobin\n  option httpchk GET /healthz\n'
    printf '  default-server check inter 1s fall 1 rise 1\n'
    for ((i = 0; i < REPLICAS; i++)); do
      printf '  server gateway-%s 127.0.0.1:%s\n' "$((i + 1))" "$(gateway_port "$i")"
    done
  } >"$cfg"
  haproxy -c -q -f "$cfg" || die "haproxy rejects $cfg"
  log "starting haproxy on 127.0.0.1:$EDGE_PORT in front of $REPLICAS gateways"
  nohup haproxy -db -f "$cfg" >"$RUN_DIR/haproxy.log" 2>&1 &
  echo $! >"$RUN_DIR/haproxy.pid"
}

# Every pid file of this run: each instance, and the load balancer.
instances() {
  local file
  for file in "$RUN_DIR"/*.pid; do [[ -e $file ]] && basename "$file" .pid; done
  return 0
}

wait_for_gateway() {
  local deadline=$((SECONDS + 60)) name
  until curl -fsS "http://127.0.0.1:$EDGE_PORT/healthz" >/dev/null 2>&1; do
    for name in $(instances); do
      running "$name" || die "$name exited; last lines of its log:
$(tail -n 20 "$RUN_DIR/$name.log")"
    done
    (( SECONDS < deadline )) || die "the gateway did not answer on 127.0.0.1:$EDGE_PORT within 60 s"
    sleep 0.5
  done
}

# Jaeger on this run's ports (deploy/jaeger.sh), and the services' spans sent to it.
start_jaeger() {
  export JAEGER_UI_PORT=${JAEGER_UI_PORT:-$((16686 + PORT_OFFSET))}
  export JAEGER_OTLP_GRPC_PORT=${JAEGER_OTLP_GRPC_PORT:-$((4317 + PORT_OFFSET))}
  export JAEGER_OTLP_HTTP_PORT=${JAEGER_OTLP_HTTP_PORT:-$((4318 + PORT_OFFSET))}
  export JAEGER_QUERY_GRPC_PORT=${JAEGER_QUERY_GRPC_PORT:-$((16685 + PORT_OFFSET))}
  export JAEGER_HEALTH_PORT=${JAEGER_HEALTH_PORT:-$((13133 + PORT_OFFSET))}
  bash "$REPO_DIR/deploy/jaeger.sh" up
  export OTEL_EXPORTER_OTLP_ENDPOINT=${OTEL_EXPORTER_OTLP_ENDPOINT:-$(bash "$REPO_DIR/deploy/jaeger.sh" endpoint)}
}

up() {
  mkdir -p "$RUN_DIR"
  bash "$REPO_DIR/deploy/backends.sh" up
  [[ ${JAEGER:-0} != 1 ]] || start_jaeger
  if [[ ${SKIP_BUILD:-0} != 1 ]]; then
    log "building the services (cargo build, $PROFILE profile)"
    local profile=()
    [[ $PROFILE == debug ]] || profile=(--release)
    (cd "$REPO_DIR" && cargo build "${profile[@]}" --locked --bin graph --bin tweet --bin timeline --bin fanout --bin gateway)
  fi
  local service i
  for service in "${SERVICES[@]}"; do
    for ((i = 0; i < REPLICAS; i++)); do start "$service" "$i"; done
  done
  if ((REPLICAS > 1)); then start_load_balancer; fi
  wait_for_gateway
  log "chirp is up: the console at http://127.0.0.1:$EDGE_PORT/ (the API: curl -s http://127.0.0.1:$EDGE_PORT/healthz)"
  [[ ${JAEGER:-0} != 1 ]] || log "traces: http://127.0.0.1:$JAEGER_UI_PORT (Jaeger; service gateway)"
}

stop_all() {
  local signal=$1 name
  for name in $(instances); do
    if running "$name"; then
      log "stopping $name"
      kill "-$signal" "$(cat "$RUN_DIR/$name.pid")"
    fi
  done
  for name in $(instances); do
    while running "$name"; do sleep 0.2; done
    rm -f "$RUN_DIR/$name.pid"
  done
}

# Instance N of every service, killed at once without a chance to finish anything.
kill_instance() {
  local n=${1:-} service name
  [[ $n =~ ^[1-9][0-9]*$ ]] || die "usage: $0 kill N (1-based instance number)"
  for service in "${SERVICES[@]}"; do
    name=$(instance "$service" $((n - 1)))
    running "$name" || die "$name is not running"
    kill -KILL "$(cat "$RUN_DIR/$name.pid")"
    while running "$name"; do sleep 0.1; done
    rm -f "$RUN_DIR/$name.pid"
    log "killed $name"
  done
}

status() {
  local name
  for name in $(instances); do
    if running "$name"; then echo "$name: up (pid $(cat "$RUN_DIR/$name.pid"))"; else echo "$name: down"; fi
  done
}

case "${1:-}" in
  up) up ;;
  down) stop_all TERM ;;
  status) status ;;
  kill) kill_instance "${2:-}" ;;
  *) echo "usage: $0 up|down|status|kill N" >&2; exit 2 ;;
esac
