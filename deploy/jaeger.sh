#!/usr/bin/env bash
# deploy/jaeger.sh — a trace viewer without Docker: Jaeger's all-in-one, built from source with Go.
#
#   deploy/jaeger.sh build    build the binary once (minutes) and cache it; a no-op when cached
#   deploy/jaeger.sh up       build if needed, start it, wait until it answers (safe to repeat)
#   deploy/jaeger.sh down     stop the Jaeger this script started
#   deploy/jaeger.sh status   up or down; exit 0 if up, 3 otherwise
#   deploy/jaeger.sh endpoint print the OTLP/gRPC endpoint to set as OTEL_EXPORTER_OTLP_ENDPOINT
#
# Then `JAEGER=1 deploy/run-local.sh up` starts it with the services and points their
# OTEL_EXPORTER_OTLP_ENDPOINT at it; the UI is on http://127.0.0.1:16686, OTLP/gRPC on 4317.
#
# Why build it: compose users get Jaeger as a container image, but our machines have no Docker
# and reach only package registries. Jaeger is a Go program and the Go module proxy serves it,
# so the script makes a scratch Go module, adds Jaeger as a tool at one pinned, approved
# release (JAEGER_VERSION, the Go module version of the repository; its binary is Jaeger v2)
# and builds it, niced and one package at a time so that a build beside a measurement
# does not take the CPU from it. The binary is cached outside the repository
# (JAEGER_CACHE_DIR, default ~/.cache/chirp/jaeger-VERSION): every clone and worktree of the
# machine shares one build. Spans are kept in memory (Jaeger's all-in-one default): a restart
# forgets them, which is what a viewer for a development machine wants.
#
# It runs with deploy/jaeger/config.yaml: OTLP in, spans in memory, the UI and its query API
# (GET /api/traces?service=gateway) out, every port on 127.0.0.1. Other settings:
# JAEGER_UI_PORT (16686), JAEGER_OTLP_GRPC_PORT (4317), JAEGER_OTLP_HTTP_PORT (4318),
# JAEGER_QUERY_GRPC_PORT (16685), JAEGER_HEALTH_PORT (13133) move its ports, e.g. for a second
# stack beside the first (deploy/run-local.sh moves them with its PORT_OFFSET); the pid file and the log go
# to CHIRP_BACKENDS_DIR/jaeger (default <repo>/.backends/jaeger); GO is the go binary
# (default: go on the PATH, else /usr/local/go/bin/go).
set -euo pipefail

REPO_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
JAEGER_VERSION=${JAEGER_VERSION:-v1.75.0}
CACHE_DIR=${JAEGER_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/chirp/jaeger-$JAEGER_VERSION}
BINARY=$CACHE_DIR/jaeger
RUN_DIR=${CHIRP_BACKENDS_DIR:-$REPO_DIR/.backends}/jaeger
UI_PORT=${JAEGER_UI_PORT:-16686}
OTLP_GRPC_PORT=${JAEGER_OTLP_GRPC_PORT:-4317}
OTLP_HTTP_PORT=${JAEGER_OTLP_HTTP_PORT:-4318}
QUERY_GRPC_PORT=${JAEGER_QUERY_GRPC_PORT:-16685}   # the query API over gRPC: Jaeger's own port
HEALTH_PORT=${JAEGER_HEALTH_PORT:-13133}           # its health check: Jaeger's own port
START_TIMEOUT=60   # seconds; a first start on a busy 2-core machine takes a few

log() { printf '%s ==> %s\n' "$(date +%T)" "$*"; }
die() { printf '%s ✘ %s\n' "$(date +%T)" "$*" >&2; exit 1; }

go_binary() {
  if [[ -n ${GO:-} ]]; then echo "$GO"
  elif command -v go >/dev/null; then command -v go
  elif [[ -x /usr/local/go/bin/go ]]; then echo /usr/local/go/bin/go
  else die "no Go toolchain: install Go (https://go.dev/dl/) or set GO"
  fi
}

# Build once. A lock makes concurrent callers (parallel tests) wait for one build rather than
# run several; the binary is moved into place whole, so a reader never sees half of one.
build() {
  mkdir -p "$CACHE_DIR"
  exec 8>"$CACHE_DIR/build.lock"
  flock 8
  if [[ -x $BINARY ]]; then exec 8>&-; return 0; fi
  local go module=$CACHE_DIR/module
  go=$(go_binary)
  log "building Jaeger $JAEGER_VERSION with $("$go" version | cut -d' ' -f3) (once; several minutes, niced; log: $CACHE_DIR/build.log)"
  mkdir -p "$module"
  (
    cd "$module"
    [[ -f go.mod ]] || "$go" mod init chirp.local/jaeger-build
    nice -n 19 "$go" get -tool "github.com/jaegertracing/jaeger/cmd/jaeger@$JAEGER_VERSION"
    GOFLAGS="${GOFLAGS:-} -p=1" nice -n 19 "$go" build -trimpath -ldflags='-s -w' \
      -o "$BINARY.partial" github.com/jaegertracing/jaeger/cmd/jaeger
  ) >"$CACHE_DIR/build.log" 2>&1 || { tail -n 30 "$CACHE_DIR/build.log" >&2; die "the Jaeger build failed"; }
  mv "$BINARY.partial" "$BINARY"
  exec 8>&-
  log "built $BINARY"
}

# Does anything accept TCP connections on 127.0.0.1:PORT? bash's /dev/tcp needs no tools.
port_open() { timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null; }

# The pid of the Jaeger this script started, if it still runs (a pid file can outlive its
# process, and pids are reused: the command line must still be ours).
our_pid() {
  local pid
  [[ -s $RUN_DIR/jaeger.pid ]] || return 1
  pid=$(cat "$RUN_DIR/jaeger.pid")
  [[ $pid =~ ^[0-9]+$ && -r /proc/$pid/cmdline ]] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "$BINARY" || return 1
  echo "$pid"
}

up() {
  build
  mkdir -p "$RUN_DIR"
  local pid
  if pid=$(our_pid); then log "jaeger already running (pid $pid), UI on http://127.0.0.1:$UI_PORT"; return 0; fi
  # Another clone's Jaeger on the same ports (their cache and ours are one build) serves us as
  # well as our own would.
  if curl -fsS "http://127.0.0.1:$UI_PORT/api/services" 2>/dev/null | grep -q '"data"' && port_open "$OTLP_GRPC_PORT"; then
    log "a Jaeger already answers on 127.0.0.1:$UI_PORT (not started by this script): using it"
    return 0
  fi
  local port
  for port in "$UI_PORT" "$OTLP_GRPC_PORT" "$OTLP_HTTP_PORT" "$QUERY_GRPC_PORT" "$HEALTH_PORT"; do
    ! port_open "$port" || die "port $port is taken by another program: move Jaeger's ports (JAEGER_*_PORT)"
  done
  log "starting jaeger (UI http://127.0.0.1:$UI_PORT, OTLP/gRPC 127.0.0.1:$OTLP_GRPC_PORT; log: $RUN_DIR/jaeger.log)"
  # setsid: its own session, so a Ctrl-C or a test runner ending our process group leaves it
  # running, as the backends are left. The inner shell writes its pid and execs Jaeger, so the
  # pid file holds Jaeger's pid whether or not setsid forked. 8>&-: it must not hold the lock.
  rm -f "$RUN_DIR/jaeger.pid"
  # shellcheck disable=SC2016 # $1.. and $$ belong to the inner shell
  JAEGER_UI_PORT=$UI_PORT JAEGER_OTLP_GRPC_PORT=$OTLP_GRPC_PORT JAEGER_OTLP_HTTP_PORT=$OTLP_HTTP_PORT \
    JAEGER_QUERY_GRPC_PORT=$QUERY_GRPC_PORT JAEGER_HEALTH_PORT=$HEALTH_PORT \
    setsid bash -c 'echo $$ >"$1" && shift && exec "$@"' _ "$RUN_DIR/jaeger.pid" \
    "$BINARY" --config "$REPO_DIR/deploy/jaeger/config.yaml" </dev/null >"$RUN_DIR/jaeger.log" 2>&1 8>&- &
  local i
  for ((i = 0; i < 50; i++)); do [[ -s $RUN_DIR/jaeger.pid ]] && break; sleep 0.1; done
  local deadline=$((SECONDS + START_TIMEOUT))
  # Ready when both ends answer: the query API (what a person or a test reads) and OTLP.
  until curl -fsS "http://127.0.0.1:$UI_PORT/api/services" >/dev/null 2>&1 && port_open "$OTLP_GRPC_PORT"; do
    if ! our_pid >/dev/null; then
      tail -n 20 "$RUN_DIR/jaeger.log" >&2
      die "jaeger exited during startup"
    fi
    ((SECONDS < deadline)) || { tail -n 20 "$RUN_DIR/jaeger.log" >&2; die "jaeger did not answer within $START_TIMEOUT s"; }
    sleep 0.2
  done
  log "jaeger is up: http://127.0.0.1:$UI_PORT (OTEL_EXPORTER_OTLP_ENDPOINT=$(endpoint))"
}

down() {
  local pid
  if ! pid=$(our_pid); then rm -f "$RUN_DIR/jaeger.pid"; return 0; fi
  log "stopping jaeger (pid $pid)"
  kill -TERM "$pid"
  local deadline=$((SECONDS + 30))
  while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.2; done
  kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
  rm -f "$RUN_DIR/jaeger.pid"
}

status() {
  local pid
  if pid=$(our_pid); then echo "jaeger: up (pid $pid), UI http://127.0.0.1:$UI_PORT, OTLP/gRPC $(endpoint)"; return 0; fi
  echo "jaeger: down$([[ -x $BINARY ]] && echo " (built: $BINARY)" || echo " (not built)")"
  return 3
}

endpoint() { echo "http://127.0.0.1:$OTLP_GRPC_PORT"; }

case "${1:-}" in
  build) build ;;
  up) up ;;
  down) down ;;
  status) status ;;
  endpoint) endpoint ;;
  *) echo "usage: $0 build|up|down|status|endpoint" >&2; exit 2 ;;
esac
