#!/usr/bin/env bash
# deploy/run-local.sh — run all of chirp natively, without Docker.
#
#   deploy/run-local.sh up      start the backends, build the services (release) and start them
#   deploy/run-local.sh down    stop the five services (the backends keep running:
#                               `deploy/backends.sh down` stops those)
#   deploy/run-local.sh status  which services run
#
# The services listen where docker-compose.yml publishes them: the gateway on 127.0.0.1:8080,
# the gRPC services on 50051 (tweet), 50052 (graph), 50053 (timeline). Logs and pid files go to
# .backends/services/.
set -euo pipefail

REPO_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RUN_DIR=${CHIRP_BACKENDS_DIR:-$REPO_DIR/.backends}/services
SERVICES=(graph tweet timeline fanout gateway)   # start order: dependencies first

log() { printf '%s ==> %s\n' "$(date +%T)" "$*"; }
die() { printf '%s ✘ %s\n' "$(date +%T)" "$*" >&2; exit 1; }

running() { [[ -f $RUN_DIR/$1.pid ]] && kill -0 "$(cat "$RUN_DIR/$1.pid")" 2>/dev/null; }

# The gateway signs tokens with this. Generated once per machine, never committed.
token_secret() {
  local file=$RUN_DIR/token_secret
  [[ -s $file ]] || head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$file"
  cat "$file"
}

start() {
  local service=$1
  if running "$service"; then log "$service already running (pid $(cat "$RUN_DIR/$service.pid"))"; return; fi
  log "starting $service (log: $RUN_DIR/$service.log)"
  # The load tool seeds its users through sign-up, all from this machine: the per-address
  # sign-up limit is raised here (override it in the environment to try the default).
  RUST_LOG=${RUST_LOG:-info} TOKEN_SECRET=$(token_secret) \
    RATE_LIMIT_SIGNUPS_PER_MINUTE=${RATE_LIMIT_SIGNUPS_PER_MINUTE:-1000000} \
    RATE_LIMIT_SIGNUP_BURST=${RATE_LIMIT_SIGNUP_BURST:-100000} \
    nohup "$REPO_DIR/target/release/$service" >"$RUN_DIR/$service.log" 2>&1 &
  echo $! >"$RUN_DIR/$service.pid"
}

wait_for_gateway() {
  local deadline=$((SECONDS + 60))
  until curl -fsS http://127.0.0.1:8080/healthz >/dev/null 2>&1; do
    for service in "${SERVICES[@]}"; do
      running "$service" || die "$service exited; last lines of its log:
$(tail -n 20 "$RUN_DIR/$service.log")"
    done
    (( SECONDS < deadline )) || die "the gateway did not answer on 127.0.0.1:8080 within 60 s"
    sleep 0.5
  done
}

up() {
  mkdir -p "$RUN_DIR"
  bash "$REPO_DIR/deploy/backends.sh" up
  log "building the services (cargo build --release)"
  (cd "$REPO_DIR" && cargo build --release --locked --bin graph --bin tweet --bin timeline --bin fanout --bin gateway)
  for service in "${SERVICES[@]}"; do start "$service"; done
  wait_for_gateway
  log "chirp is up: http://127.0.0.1:8080 (try: curl -s http://127.0.0.1:8080/healthz)"
}

down() {
  for service in "${SERVICES[@]}"; do
    if running "$service"; then
      log "stopping $service"
      kill -TERM "$(cat "$RUN_DIR/$service.pid")"
    fi
  done
  for service in "${SERVICES[@]}"; do
    while running "$service"; do sleep 0.2; done
    rm -f "$RUN_DIR/$service.pid"
  done
}

status() {
  for service in "${SERVICES[@]}"; do
    if running "$service"; then echo "$service: up (pid $(cat "$RUN_DIR/$service.pid"))"; else echo "$service: down"; fi
  done
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) status ;;
  *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
