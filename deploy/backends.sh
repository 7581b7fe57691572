#!/usr/bin/env bash
# deploy/backends.sh — the real backends of chirp, installed and run natively on 127.0.0.1.
#
#   deploy/backends.sh up       install what is missing, start what is not running, wait until
#                               every backend answers (safe to call any number of times,
#                               also concurrently: parallel test binaries all call it)
#   deploy/backends.sh down     stop the backends this script started (never foreign ones),
#                               the scale-out ones included; their data stays
#   deploy/backends.sh status   one line per backend (and per scale-out one that runs); exit 0
#                               if all four are up, 3 otherwise
#   deploy/backends.sh up|down|status|reset redis-cluster|pg-replica|kafka-cluster|cassandra-tombstones
#                               scale-out backends on their own ports, started only when asked
#                               for; `down` alone stops them too (see "scale-out" below)
#   deploy/backends.sh kill|restart redis-cluster PORT|kafka-cluster NODE
#                               one member of a cluster, for fault tests
#
#   PostgreSQL 15  127.0.0.1:5432  user postgres (trust), database chirp   Debian package
#   Redis 7        127.0.0.1:6379  no persistence                           Debian package
#   Kafka 4 KRaft  127.0.0.1:9092  (controller 9093), 6 partitions/topic    jars from Maven Central
#   Cassandra 5.0  127.0.0.1:9042  CQL, single node, LWT work               jars from Maven Central
#
# A second, isolated set beside those (for fault tests: `loadtest chaos`): its own folder and
# other ports, e.g. CHIRP_BACKENDS_DIR=/tmp/chaos CHIRP_PG_PORT=25432 CHIRP_REDIS_PORT=26379
# CHIRP_KAFKA_PORT=29092 CHIRP_KAFKA_CONTROLLER_PORT=29093 CHIRP_CQL_PORT=29042
# CHIRP_CASSANDRA_STORAGE_PORT=27000 (and 27001 for its TLS port) deploy/backends.sh up|down.
# Unset, each keeps the standard port above. The scale-out backends move the same way (see
# "scale-out" below): CHIRP_REDIS_CLUSTER_PORT (the first of six), CHIRP_PG_REPLICA_PORT,
# CHIRP_KAFKA_CLUSTER_PORT and CHIRP_KAFKA_CLUSTER_CONTROLLER_PORT (node 1's; nodes 2 and 3
# on the next two).
#
# Why not Docker/systemd: neither exists on our dev/CI machines, and only package registries
# are reachable, so Kafka and Cassandra come as plain jars from Maven Central (their poms are
# in deploy/backends/) and run on the machine's JDK 17.
#
# Measured on a 2-core dev machine: first `up` from nothing (apt + Maven downloads) ~25 s,
# `up` after `down` ~8-12 s, `up` when all are running ~0.3 s.
#
# Everything the script creates (jars, rendered configs, data, logs, pid files) lives in ONE
# folder: $CHIRP_BACKENDS_DIR, default <repo>/.backends (git-ignored). `rm -rf` it after
# `down` to start from scratch (the next `up` downloads the jars again).
set -euo pipefail

REPO_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SHIPPED=$REPO_DIR/deploy/backends            # config templates and poms, in git
BACKENDS_DIR=${CHIRP_BACKENDS_DIR:-$REPO_DIR/.backends}

# Standard ports on purpose: every tool and doc assumes them. A second, isolated set (the one
# `loadtest chaos` kills and pauses) moves every port with CHIRP_*_PORT and lives in its own
# CHIRP_BACKENDS_DIR; Cassandra's inter-node port must move too (two nodes on one storage port
# would be one cluster). Nothing listens on JMX's 7199: our jvm.options enable no JMX port.
PG_PORT=${CHIRP_PG_PORT:-5432}
REDIS_PORT=${CHIRP_REDIS_PORT:-6379}
KAFKA_PORT=${CHIRP_KAFKA_PORT:-9092}
KAFKA_CONTROLLER_PORT=${CHIRP_KAFKA_CONTROLLER_PORT:-9093}   # only the broker itself talks to it
CQL_PORT=${CHIRP_CQL_PORT:-9042}
CASSANDRA_STORAGE_PORT=${CHIRP_CASSANDRA_STORAGE_PORT:-7000}   # inter-node; 7001 above it for TLS

PG_BIN=/usr/lib/postgresql/15/bin   # Debian bookworm's `postgresql` is version 15
PG_DB=chirp

# How long `up` waits for each backend before giving up with its log. Generous: a first
# start on a busy 2-core machine (JIT warming up, Cassandra creating its system tables)
# is several times slower than a warm one.
PG_TIMEOUT=60
REDIS_TIMEOUT=20
KAFKA_TIMEOUT=120
CASSANDRA_TIMEOUT=240
STOP_TIMEOUT=60    # `down`: SIGKILL whatever has not exited by then

BACKENDS=(postgres redis kafka cassandra)
declare -A PORT=([postgres]=$PG_PORT [redis]=$REDIS_PORT [kafka]=$KAFKA_PORT [cassandra]=$CQL_PORT)
# A word of the command line of each server process. Before trusting a pid file we check
# that the pid still runs *that* program: pids are reused after a reboot or a crash.
declare -A SIGNATURE=([postgres]=postgres [redis]=redis-server [kafka]=kafka.Kafka [cassandra]=CassandraDaemon)

# ----------------------------------------------------------------------------- output helpers

log()  { printf '%s ==> %s\n' "$(date +%T)" "$*"; }
ok()   { printf '%s ✔ %s\n' "$(date +%T)" "$*"; }
warn() { printf '%s !   %s\n' "$(date +%T)" "$*" >&2; }
die()  { printf '%s ✘ %s\n' "$(date +%T)" "$*" >&2; exit 1; }

# die, showing the end of a log file: the reason a server did not come up is almost always
# in its last lines.
die_with_log() {
  local logfile=$1; shift
  printf '%s ✘ %s\n' "$(date +%T)" "$*" >&2
  if [[ -s $logfile ]]; then
    printf -- '---- last 40 lines of %s ----\n' "$logfile" >&2
    tail -n 40 "$logfile" >&2
    printf -- '----\n' >&2
  fi
  exit 1
}

# ------------------------------------------------------------------------------ small helpers

# Does anything accept TCP connections on 127.0.0.1:PORT? bash's /dev/tcp needs no tools.
port_open() {
  timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null
}

# Print the pid of backend NAME if THIS script started it and it still runs.
our_pid() {
  local name=$1 pidfile=$RUN_DIR/$1.pid pid
  [[ -s $pidfile ]] || return 1
  pid=$(head -n 1 "$pidfile")
  [[ $pid =~ ^[0-9]+$ && -r /proc/$pid/cmdline ]] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "${SIGNATURE[$name]}" || return 1
  echo "$pid"
}

# Start a long-running server in the background, detached from this script:
#   start_detached LOGFILE PIDFILE WORKDIR COMMAND...
# - setsid gives it its own session: no controlling terminal means no SIGHUP when the
#   terminal closes (what nohup is for), and a Ctrl-C or a test runner killing our process
#   group does not reach it.
# - `exec` keeps the pid, so the pid written by the inner shell is the server's pid.
# - 9>&- : fd 9 holds our flock (see with_lock). A child that inherited it would keep the
#   lock held for as long as the server runs, and the next `up` would wait forever.
start_detached() {
  local logfile=$1 pidfile=$2 workdir=$3; shift 3
  rm -f "$pidfile"
  # shellcheck disable=SC2016 # $1.. and $$ belong to the inner shell
  setsid bash -c 'cd "$1" && echo $$ >"$2" && shift 2 && exec "$@"' _ "$workdir" "$pidfile" "$@" \
    </dev/null >"$logfile" 2>&1 9>&- &
  local i
  for ((i = 0; i < 50; i++)); do [[ -s $pidfile ]] && return 0; sleep 0.1; done
  die_with_log "$logfile" "could not start: $*"
}

# Wait until a check command succeeds, printing progress every 5 s:
#   wait_until NAME WHAT TIMEOUT LOGFILE PID CHECK...
# Fails early with the log if the server process (PID, may be empty) has died.
wait_until() {
  local name=$1 what=$2 timeout=$3 logfile=$4 pid=$5; shift 5
  local start=$SECONDS next_report=$((SECONDS + 5))
  until "$@"; do
    if [[ -n $pid ]] && ! kill -0 "$pid" 2>/dev/null; then
      die_with_log "$logfile" "$name: the server process (pid $pid) exited during startup"
    fi
    if ((SECONDS - start >= timeout)); then
      die_with_log "$logfile" "$name: still no answer ($what) after ${timeout}s"
    fi
    if ((SECONDS >= next_report)); then
      log "$name: waiting for $what ($((SECONDS - start))s)…"
      next_report=$((SECONDS + 5))
    fi
    sleep 0.25
  done
}

# Take the lock of the backends folder for the rest of this script (released on exit).
# Two `up`s at once (parallel test binaries) would otherwise both see "nothing on 9042"
# and both start a Cassandra. The second one waits here, then finds everything running.
with_lock() {
  exec 9>"$BACKENDS_DIR/.lock"
  if ! flock -n 9; then
    log "another deploy/backends.sh holds $BACKENDS_DIR/.lock; waiting for it…"
    flock -w 900 9 || die "timed out waiting for $BACKENDS_DIR/.lock"
  fi
}

# ------------------------------------------------------------------------------- probes
# "Answering" means a real exchange in each backend's own protocol, not just an open port.

pg_answers() { "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" 2>/dev/null; }

redis_answers() { [[ $(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null) == PONG ]]; }

# Kafka: list topics with Kafka's own CLI class, i.e. a real metadata request. A JVM start
# (~1 s), so it runs once after startup, not in the polling loop.
kafka_answers() {
  # A short-lived client: C1 only and the serial GC keep its CPU use (and start) small.
  timeout 30 java -Xmx128m -XX:TieredStopAtLevel=1 -XX:+UseSerialGC -cp "$KAFKA_HOME/libs/*" \
    org.apache.kafka.tools.TopicCommand --bootstrap-server "127.0.0.1:$KAFKA_PORT" --list \
    >/dev/null 2>&1
}

# Cassandra: a real CQL query over the native protocol (v4) with nothing but bash — no
# driver needed. We send STARTUP and expect READY (opcode 0x02), then send
#   QUERY "SELECT release_version FROM system.local" at consistency ONE
# and expect RESULT (opcode 0x08). Frame header: version, flags, stream id (2 bytes),
# opcode, body length (4 bytes, big-endian).
be32() { printf '\\x%02x' $(($1 >> 24 & 255)) $(($1 >> 16 & 255)) $(($1 >> 8 & 255)) $(($1 & 255)); }
cql_answers() {
  local q='SELECT release_version FROM system.local'
  local startup query
  startup='\x04\x00\x00\x01\x01'$(be32 22)'\x00\x01\x00\x0bCQL_VERSION\x00\x053.0.0'
  query='\x04\x00\x00\x02\x07'$(be32 $((4 + ${#q} + 3)))$(be32 ${#q})"$q"'\x00\x01\x00'
  # shellcheck disable=SC2016 # the inner shell expands $1..$3
  timeout 5 bash -c '
    exec 3<>"/dev/tcp/127.0.0.1/$3" || exit 1
    printf "%b" "$1" >&3
    [[ $(head -c 9 <&3 | od -An -tx1 | tr -d " \n") == 840000010200000000 ]] || exit 1
    printf "%b" "$2" >&3
    [[ $(head -c 9 <&3 | od -An -tx1 | tr -d " \n") == 8400000208* ]]
  ' _ "$startup" "$query" "$CQL_PORT" 2>/dev/null
}

backend_answers() {
  case $1 in
    postgres) pg_answers ;;
    redis) redis_answers ;;
    kafka) port_open "$KAFKA_PORT" ;;   # cheap; `up` runs kafka_answers after a start
    cassandra) cql_answers ;;
  esac
}

# --------------------------------------------------------------------------- installation

# Debian packages: PostgreSQL and Redis, plus the JDK and Maven if a machine lacks them.
ensure_debian_packages() {
  local missing=()
  [[ -x $PG_BIN/postgres ]] || missing+=(postgresql)
  [[ -x $PG_BIN/pg_isready && -x $PG_BIN/psql ]] || missing+=(postgresql-client-15)
  command -v redis-server >/dev/null || missing+=(redis-server)
  command -v redis-cli >/dev/null || missing+=(redis-tools)
  command -v java >/dev/null || missing+=(openjdk-17-jre-headless)
  command -v mvn >/dev/null || missing+=(maven)
  command -v flock >/dev/null || missing+=(util-linux)
  ((${#missing[@]})) || return 0

  log "installing ${missing[*]} (apt)…"
  # Package installs start their service (postgresql's "main" cluster, a redis-server on
  # 6379) through invoke-rc.d unless /usr/sbin/policy-rc.d says no (exit 101). Those would
  # take our ports with a config we do not control, so forbid it for this install.
  local own_policy=
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\n# temporary, from chirp deploy/backends.sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    own_policy=1
  fi
  local rc=0
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
      --no-install-recommends "${missing[@]}"; } >"$LOG_DIR/apt.log" 2>&1 || rc=$?
  [[ -z $own_policy ]] || rm -f /usr/sbin/policy-rc.d
  ((rc == 0)) || die_with_log "$LOG_DIR/apt.log" "apt-get install ${missing[*]} failed"
  ok "installed ${missing[*]}"
}

# Copy the jars a pom lists from Maven Central into DEST, once. A checksum of the pom is
# kept next to them, so editing the pom (e.g. a version bump) fetches again.
fetch_jars() {
  local name=$1 pom=$2 dest=$3 stamp want
  stamp=$dest/.pom.sha256
  want=$(sha256sum "$pom" | cut -d' ' -f1)
  if [[ -f $stamp && $(<"$stamp") == "$want" ]]; then
    return 0
  fi
  log "$name: fetching jars from Maven Central (first time only)…"
  local started=$SECONDS
  rm -rf "$dest"
  mkdir -p "$dest"
  # -B: no colours/progress bars in logs. The dependency plugin version is pinned in the pom.
  mvn -B -q -f "$pom" dependency:copy-dependencies -DoutputDirectory="$dest" \
    >"$LOG_DIR/mvn-$name.log" 2>&1 \
    || die_with_log "$LOG_DIR/mvn-$name.log" "$name: mvn dependency:copy-dependencies failed"
  echo "$want" >"$stamp"
  ok "$name: $(find "$dest" -name '*.jar' | wc -l) jars in $((SECONDS - started))s"
}

# Class-data sharing (AppCDS) for a JVM server: most of a warm Kafka or Cassandra start is
# CPU spent loading and verifying thousands of classes, and on a 2-core machine the two
# servers booting side by side slow each other down. The JVM can dump the classes it
# loaded into an archive when it exits (first run, written by `down`) and map that archive
# on later starts, which saves each of them 1-3 s of CPU here. A new JDK or new jars
# invalidate an archive, hence the key file next to it. Sets the array CDS_OPTS.
#   cds_options HOME LIBDIR   (the archive is HOME/cds.jsa; LIBDIR/.pom.sha256 names the jars)
cds_options() {
  local archive=$1/cds.jsa libdir=$2 key
  key="$(java -version 2>&1 | tr -d '\n') $(<"$libdir/.pom.sha256")"
  if [[ ! -f $archive.key || $(<"$archive.key") != "$key" ]]; then
    rm -f "$archive"
    echo "$key" >"$archive.key"
  fi
  CDS_OPTS=(-Xlog:cds=error)   # not the harmless per-class warnings of the dump
  if [[ -s $archive ]]; then
    CDS_OPTS+=("-XX:SharedArchiveFile=$archive")
  else
    CDS_OPTS+=("-XX:ArchiveClassesAtExit=$archive")
  fi
}

# ------------------------------------------------------------------------------- PostgreSQL

up_postgres() {
  local pid
  if pid=$(our_pid postgres); then
    wait_until postgres "pg_isready on 127.0.0.1:$PG_PORT" "$PG_TIMEOUT" "$LOG_DIR/postgres.log" "$pid" pg_answers
    ok "postgres already running on 127.0.0.1:$PG_PORT (started by us, pid $pid)"
  elif port_open "$PG_PORT"; then
    wait_until postgres "pg_isready on 127.0.0.1:$PG_PORT" "$PG_TIMEOUT" "$LOG_DIR/postgres.log" "" pg_answers
    ok "postgres: reusing the server already on 127.0.0.1:$PG_PORT (not started by us)"
  else
    start_postgres
  fi
  create_database
  configure_postgres
}

# The postgres OS user must be able to walk down to our data folder. A checkout inside a
# private folder (root's home, a `mktemp -d` directory: mode 700) blocks it, so grant other
# users the bare traverse bit (o+x: enter, not list or read) on each ancestor that lacks it.
let_postgres_traverse() {
  local dir=$1
  while [[ $dir != / ]]; do
    if ! runuser -u postgres -- test -x "$dir" 2>/dev/null; then
      log "postgres: granting traverse permission (chmod o+x) on $dir so the postgres user can reach its data"
      chmod o+x "$dir"
    fi
    dir=$(dirname "$dir")
  done
}

# Run a PostgreSQL program as the postgres OS user, from a folder that user can enter
# (initdb fails if the current directory is, say, root's private home).
as_postgres() { (cd "$BACKENDS_DIR/postgres" && runuser -u postgres -- "$@"); }

start_postgres() {
  local dir=$BACKENDS_DIR/postgres started=$SECONDS
  # PostgreSQL refuses to run as root: the data folder belongs to the `postgres` OS user
  # (created by the Debian package), and we run its programs as that user with runuser.
  let_postgres_traverse "$BACKENDS_DIR"
  install -d -o postgres -g postgres -m 700 "$dir"
  as_postgres test -w "$dir" \
    || die "postgres: the postgres OS user cannot write $dir; set CHIRP_BACKENDS_DIR elsewhere"
  install -o postgres -g postgres -m 644 /dev/null "$LOG_DIR/postgres.log"

  if [[ ! -s $dir/data/PG_VERSION ]]; then
    log "postgres: initdb $dir/data"
    # trust: any local connection may log in as any user, no password. Fine on loopback
    # on a dev machine; it is what lets tests and tools connect with just -U postgres.
    as_postgres "$PG_BIN/initdb" -D "$dir/data" -U postgres --auth=trust \
      -E UTF8 --locale=C.UTF-8 >>"$LOG_DIR/postgres.log" 2>&1 \
      || die_with_log "$LOG_DIR/postgres.log" "postgres: initdb failed"
  fi

  log "postgres: starting on 127.0.0.1:$PG_PORT"
  # -k: the Unix socket goes in our folder (/var/run/postgresql may not exist without the
  # init script). -w: pg_ctl itself waits until the server accepts connections.
  as_postgres "$PG_BIN/pg_ctl" -D "$dir/data" -l "$LOG_DIR/postgres.log" -w -t "$PG_TIMEOUT" \
    -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -k '$dir'" start >/dev/null 9>&- \
    || die_with_log "$LOG_DIR/postgres.log" "postgres: pg_ctl start failed"
  # postmaster.pid's first line is the server's pid; our own copy marks it "started by us".
  head -n 1 "$dir/data/postmaster.pid" >"$RUN_DIR/postgres.pid"
  wait_until postgres "pg_isready on 127.0.0.1:$PG_PORT" "$PG_TIMEOUT" "$LOG_DIR/postgres.log" \
    "$(<"$RUN_DIR/postgres.pid")" pg_answers
  ok "postgres ready on 127.0.0.1:$PG_PORT ($((SECONDS - started))s)"
}

create_database() {
  local psql=("$PG_BIN/psql" -X -q -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres -v ON_ERROR_STOP=1)
  if [[ $("${psql[@]}" -tAc "SELECT 1 FROM pg_database WHERE datname = '$PG_DB'" 2>/dev/null) == 1 ]]; then
    return 0
  fi
  if "${psql[@]}" -c "CREATE DATABASE $PG_DB" >/dev/null 2>&1; then
    ok "postgres: created database $PG_DB"
  elif our_pid postgres >/dev/null; then
    die "postgres: could not create database $PG_DB"
  else
    warn "postgres: could not create database $PG_DB on the foreign server (no trust auth?)"
  fi
}

# ------------------------------------------------------------------------------------ Redis

up_redis() {
  local pid
  if pid=$(our_pid redis); then
    wait_until redis "PING on 127.0.0.1:$REDIS_PORT" "$REDIS_TIMEOUT" "$LOG_DIR/redis.log" "$pid" redis_answers
    ok "redis already running on 127.0.0.1:$REDIS_PORT (started by us, pid $pid)"
  elif port_open "$REDIS_PORT"; then
    wait_until redis "PING on 127.0.0.1:$REDIS_PORT" "$REDIS_TIMEOUT" "$LOG_DIR/redis.log" "" redis_answers
    ok "redis: reusing the server already on 127.0.0.1:$REDIS_PORT (not started by us)"
  else
    local started=$SECONDS
    mkdir -p "$BACKENDS_DIR/redis"
    log "redis: starting on 127.0.0.1:$REDIS_PORT"
    # A cache and timeline store for dev/tests: no RDB snapshots, no AOF. Redis daemonizes
    # itself and writes its own pid file (and deletes it on shutdown).
    redis-server --daemonize yes --bind 127.0.0.1 --port "$REDIS_PORT" \
      --dir "$BACKENDS_DIR/redis" --pidfile "$RUN_DIR/redis.pid" --logfile "$LOG_DIR/redis.log" \
      --save '' --appendonly no 9>&- \
      || die_with_log "$LOG_DIR/redis.log" "redis: redis-server failed to start"
    wait_until redis "PING on 127.0.0.1:$REDIS_PORT" "$REDIS_TIMEOUT" "$LOG_DIR/redis.log" "" redis_answers
    ok "redis ready on 127.0.0.1:$REDIS_PORT ($((SECONDS - started))s)"
  fi
  configure_redis
}

# Postgres for bulk loads (the graph import: tens of millions of follows in one transaction),
# applied at runtime (ALTER SYSTEM, then a reload) so that a server reused gets it too: with the
# default 1 GB of WAL between checkpoints, a load that writes a few GB checkpoints every few
# seconds, flushing the same pages again and again.
configure_postgres() {
  "$PG_BIN/psql" -X -q -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres \
    -c "ALTER SYSTEM SET max_wal_size = '4GB'" -c "SELECT pg_reload_conf()" >/dev/null 2>&1 \
    || warn "postgres: could not set max_wal_size (not a superuser?)"
}

# Redis as chirp uses it, applied at runtime so that a server reused (not started here) gets
# it too: a home timeline of up to TIMELINE_CAPACITY (800) 8-byte ids plus 3 markers stays a
# compact listpack (12 B an entry instead of ~115 as a skiplist), and a full Redis evicts the
# least recently used keys (cached timelines, rebuilt on read) instead of refusing writes.
# REDIS_MAXMEMORY is generous by default: tests and seeds share this server.
configure_redis() {
  local setting
  for setting in "zset-max-listpack-entries 1024" "maxmemory ${REDIS_MAXMEMORY:-4gb}" \
    "maxmemory-policy allkeys-lru"; do
    # shellcheck disable=SC2086 # the setting is a name and a value
    redis-cli -h 127.0.0.1 -p "$REDIS_PORT" CONFIG SET $setting >/dev/null \
      || warn "redis: could not CONFIG SET $setting"
  done
}

# ------------------------------------------------------------------------------------ Kafka

# Phase 1 (in the background during `up`): jars, config, storage format, start the JVM.
start_kafka() {
  local pid
  if pid=$(our_pid kafka); then
    return 0   # running (or still starting): phase 2 waits for it
  elif port_open "$KAFKA_PORT"; then
    return 0   # someone else's broker: phase 2 reports it as reused
  fi
  fetch_jars kafka "$SHIPPED/kafka/pom.xml" "$KAFKA_HOME/libs"

  # Render the shipped config (only the data path is filled in), every time, so edits to
  # deploy/backends/kafka/ take effect on the next start.
  mkdir -p "$KAFKA_HOME/config" "$KAFKA_HOME/data"
  sed -e "s|@KAFKA_DATA_DIR@|$KAFKA_HOME/data|g" -e "s|@KAFKA_PORT@|$KAFKA_PORT|g" \
    -e "s|@KAFKA_CONTROLLER_PORT@|$KAFKA_CONTROLLER_PORT|g" "$SHIPPED/kafka/server.properties" \
    >"$KAFKA_HOME/config/server.properties"
  cp "$SHIPPED/kafka/log4j2.yaml" "$KAFKA_HOME/config/log4j2.yaml"

  local java_cmd=(java -cp "$KAFKA_HOME/libs/*"
    "-Dlog4j2.configurationFile=file:$KAFKA_HOME/config/log4j2.yaml")
  # KRaft keeps the cluster metadata in the log dir, which must be formatted once with a
  # cluster id. --standalone makes this node the one voter of a dynamic controller quorum.
  if [[ ! -f $KAFKA_HOME/data/meta.properties ]]; then
    local cluster_id
    cluster_id=$(java -cp "$KAFKA_HOME/libs/*" kafka.tools.StorageTool random-uuid | tail -n 1)
    log "kafka: formatting $KAFKA_HOME/data (cluster id $cluster_id)"
    "${java_cmd[@]}" kafka.tools.StorageTool format --standalone --cluster-id "$cluster_id" \
      --config "$KAFKA_HOME/config/server.properties" >"$LOG_DIR/kafka-format.log" 2>&1 \
      || die_with_log "$LOG_DIR/kafka-format.log" "kafka: storage format failed"
  fi

  cds_options "$KAFKA_HOME" "$KAFKA_HOME/libs"   # class-data sharing, see cds_options

  log "kafka: starting on 127.0.0.1:$KAFKA_PORT (KRaft, controller on :$KAFKA_CONTROLLER_PORT)"
  # The JVM flags of Kafka's own kafka-server-start.sh, with a heap for a dev machine.
  start_detached "$LOG_DIR/kafka.log" "$RUN_DIR/kafka.pid" "$KAFKA_HOME" \
    java "${CDS_OPTS[@]}" -Xms256m -Xmx512m -server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
    -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent \
    -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true \
    "-Dlog4j2.configurationFile=file:$KAFKA_HOME/config/log4j2.yaml" \
    -cp "$KAFKA_HOME/libs/*" kafka.Kafka "$KAFKA_HOME/config/server.properties"
  date +%s >"$RUN_DIR/kafka.started"
}

# Phase 2: wait until it answers.
wait_kafka() {
  local pid
  if ! pid=$(our_pid kafka); then
    port_open "$KAFKA_PORT" || die "kafka: not running and not started (see $LOG_DIR/kafka.log)"
    ok "kafka: reusing the broker already on 127.0.0.1:$KAFKA_PORT (not started by us)"
    return 0
  fi
  if [[ ! -f $RUN_DIR/kafka.started ]]; then
    # Started by an earlier `up`, which waited for it already.
    ok "kafka already running on 127.0.0.1:$KAFKA_PORT (started by us, pid $pid)"
    return 0
  fi
  local started
  started=$(<"$RUN_DIR/kafka.started")
  wait_until kafka "\"Kafka Server started\" on 127.0.0.1:$KAFKA_PORT" "$KAFKA_TIMEOUT" \
    "$LOG_DIR/kafka.log" "$pid" grep -q 'Kafka Server started' "$LOG_DIR/kafka.log"
  log "kafka: listing topics (metadata request)…"
  wait_until kafka "a metadata request on 127.0.0.1:$KAFKA_PORT" "$KAFKA_TIMEOUT" \
    "$LOG_DIR/kafka.log" "$pid" kafka_answers
  rm -f "$RUN_DIR/kafka.started"
  ok "kafka ready on 127.0.0.1:$KAFKA_PORT ($(($(date +%s) - started))s after start)"
}

# -------------------------------------------------------------------------------- Cassandra

# Phase 1 (in the background during `up`): jars, config, start the JVM.
start_cassandra() {
  local pid
  if pid=$(our_pid cassandra); then
    return 0
  elif port_open "$CQL_PORT"; then
    return 0
  fi
  fetch_jars cassandra "$SHIPPED/cassandra/pom.xml" "$CASSANDRA_HOME/lib"

  mkdir -p "$CASSANDRA_HOME/conf" "$CASSANDRA_HOME/data" "$CASSANDRA_HOME/triggers"
  sed -e "s|@CASSANDRA_DATA_DIR@|$CASSANDRA_HOME/data|g" -e "s|@CQL_PORT@|$CQL_PORT|g" \
    -e "s|@STORAGE_PORT@|$CASSANDRA_STORAGE_PORT|g" -e "s|@SSL_STORAGE_PORT@|$((CASSANDRA_STORAGE_PORT + 1))|g" \
    "$SHIPPED/cassandra/cassandra.yaml" >"$CASSANDRA_HOME/conf/cassandra.yaml"
  # Settings of a special-purpose node (cassandra-tombstones), after the shipped ones.
  [[ -z ${CASSANDRA_EXTRA_YAML:-} ]] || echo "$CASSANDRA_EXTRA_YAML" >>"$CASSANDRA_HOME/conf/cassandra.yaml"
  cp "$SHIPPED/cassandra/logback.xml" "$CASSANDRA_HOME/conf/logback.xml"

  # JVM flags: every line of the shipped jvm.options that starts with "-".
  local jvm_opts
  mapfile -t jvm_opts < <(grep -E '^-' "$SHIPPED/cassandra/jvm.options")
  # A special-purpose node's own flags (a smaller heap): the JVM takes the last of each.
  # shellcheck disable=SC2206 # a list of flags, split on spaces
  [[ -z ${CASSANDRA_EXTRA_JVM:-} ]] || jvm_opts+=($CASSANDRA_EXTRA_JVM)
  # jamm measures object sizes (memtable accounting); Cassandra needs it as a java agent.
  local jamm=("$CASSANDRA_HOME"/lib/jamm-*.jar)

  # Class-data sharing (see cds_options). With a java agent attached, the JVM only archives
  # classes behind this diagnostic switch; jamm transforms no class, so that is safe.
  cds_options "$CASSANDRA_HOME" "$CASSANDRA_HOME/lib"
  CDS_OPTS+=(-XX:+UnlockDiagnosticVMOptions -XX:+AllowArchivingWithJavaAgent)

  log "cassandra: starting on 127.0.0.1:$CQL_PORT"
  # No conf/ directory on the class path: the config files are passed by path, and class-data
  # sharing refuses class paths with non-empty directories.
  start_detached "$LOG_DIR/cassandra.log" "$RUN_DIR/cassandra.pid" "$CASSANDRA_HOME" \
    java "${jvm_opts[@]}" "${CDS_OPTS[@]}" "-javaagent:${jamm[0]}" \
    "-Dcassandra.config=file://$CASSANDRA_HOME/conf/cassandra.yaml" \
    "-Dlogback.configurationFile=file://$CASSANDRA_HOME/conf/logback.xml" \
    "-Dcassandra.storagedir=$CASSANDRA_HOME/data" \
    "-Dcassandra.logdir=$LOG_DIR" \
    "-Dcassandra.triggers_dir=$CASSANDRA_HOME/triggers" \
    -Dcassandra-foreground=yes \
    -cp "$CASSANDRA_HOME/lib/*" org.apache.cassandra.service.CassandraDaemon
  date +%s >"$RUN_DIR/cassandra.started"
}

# Phase 2: wait for the log line, then for a real CQL query.
wait_cassandra() {
  local pid
  if ! pid=$(our_pid cassandra); then
    wait_until cassandra "CQL on 127.0.0.1:$CQL_PORT" "$CASSANDRA_TIMEOUT" /dev/null "" cql_answers
    ok "cassandra: reusing the node already on 127.0.0.1:$CQL_PORT (not started by us)"
    return 0
  fi
  if [[ ! -f $RUN_DIR/cassandra.started ]] && cql_answers; then
    ok "cassandra already running on 127.0.0.1:$CQL_PORT (started by us, pid $pid)"
    return 0
  fi
  local started
  started=$(cat "$RUN_DIR/cassandra.started" 2>/dev/null || date +%s)
  wait_until cassandra "\"Starting listening for CQL clients\" on 127.0.0.1:$CQL_PORT" \
    "$CASSANDRA_TIMEOUT" "$LOG_DIR/cassandra.log" "$pid" \
    grep -q 'Starting listening for CQL clients' "$LOG_DIR/cassandra.log"
  wait_until cassandra "a CQL query on 127.0.0.1:$CQL_PORT" "$CASSANDRA_TIMEOUT" \
    "$LOG_DIR/cassandra.log" "$pid" cql_answers
  rm -f "$RUN_DIR/cassandra.started"
  ok "cassandra ready on 127.0.0.1:$CQL_PORT ($(($(date +%s) - started))s after start)"
}

# ------------------------------------------------------------------- scale-out (on demand)
# Backends for growing chirp past one node, started only when asked for (`up NAME`), each on
# its own ports so that stopping or killing one never touches the four standard backends:
#
#   redis-cluster  127.0.0.1:6391-6396  3 masters + 3 replicas, cluster-node-timeout 2 s
#   pg-replica     127.0.0.1:5442       a hot-standby streaming replica of the primary on :5432
#   kafka-cluster  127.0.0.1:19092-19094 (controllers 19192-19194), three KRaft nodes,
#                  replication factor 3, min.insync.replicas 2, small heaps
#   cassandra-tombstones  127.0.0.1:9142 (inter-node 7100-7101), a second single Cassandra
#                  node with tombstone thresholds lowered (warn 100, fail 1 000 per read,
#                  Cassandra's defaults are 1 000 and 100 000) and a small heap: what the
#                  outbox relay's tombstone test runs on, so that the shared node keeps its
#                  defaults and a test need not write 100 000 rows to reach the limit
#
# A cluster lives as long as its data: `up NAME` starts the members that are down, each alone
# on its own data, and they rejoin (the others keep running, nothing is formatted again);
# `down NAME` stops every member and keeps the data, so the next `up NAME` resumes the same
# cluster; `reset NAME` stops it and deletes it, so the next `up NAME` creates a new one.
# `kill NAME MEMBER` SIGKILLs one member (a Redis port, a Kafka node id 1-3) for fault tests,
# `restart NAME MEMBER` stops it cleanly and starts it again on its data.

# Those are the defaults; an isolated set (the soak's, with its cluster faults) moves them with
# the CHIRP_* variables of the header, each naming the first member's port. A Redis node's
# cluster bus listens 10 000 above its port, as Redis places it.
REDIS_CLUSTER_PORT=${CHIRP_REDIS_CLUSTER_PORT:-6391}
mapfile -t REDIS_CLUSTER_PORTS < <(seq "$REDIS_CLUSTER_PORT" $((REDIS_CLUSTER_PORT + 5)))
PG_REPLICA_PORT=${CHIRP_PG_REPLICA_PORT:-5442}
KAFKA_CLUSTER_PORT=${CHIRP_KAFKA_CLUSTER_PORT:-19092}
KAFKA_CLUSTER_CONTROLLER_PORT=${CHIRP_KAFKA_CLUSTER_CONTROLLER_PORT:-19192}
KAFKA_CLUSTER_NODES=(1 2 3)
kafka_cluster_port() { echo $((KAFKA_CLUSTER_PORT + $1 - 1)); }
kafka_cluster_controller_port() { echo $((KAFKA_CLUSTER_CONTROLLER_PORT + $1 - 1)); }
kafka_cluster_ports() { echo "$KAFKA_CLUSTER_PORT-$(kafka_cluster_port "${KAFKA_CLUSTER_NODES[-1]}")"; }
CASSANDRA_TOMBSTONES_PORT=9142
EXTRAS=(redis-cluster pg-replica kafka-cluster cassandra-tombstones)

# Each scale-out backend has a lock of its own: bringing one up never waits for `up`.
with_extra_lock() {
  exec 9>"$BACKENDS_DIR/.lock-$1"
  flock -w 900 9 || die "timed out waiting for $BACKENDS_DIR/.lock-$1"
}

# A pid from a pid file, if that process still runs the program named by a word of its
# command line (pids are reused).
pid_running() {
  local pidfile=$1 signature=$2 pid
  [[ -s $pidfile ]] || return 1
  pid=$(head -n 1 "$pidfile")
  [[ $pid =~ ^[0-9]+$ && -r /proc/$pid/cmdline ]] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "$signature" || return 1
  echo "$pid"
}

redis_cluster_ok() {
  local port
  for port in "${REDIS_CLUSTER_PORTS[@]}"; do
    redis-cli -p "$port" cluster info 2>/dev/null | grep -q '^cluster_state:ok' || return 1
  done
}

# One node of the Redis Cluster, started on its own folder: its nodes.conf (who it is, which
# slots it serves or whom it replicates) and its append-only file (its keys). Both survive a
# crash, so a node started again rejoins as the same member with its own data: a master
# killed and back before its replica was promoted still has its keys (all but the last
# second's writes: `appendfsync everysec`), one back after the failover learns it was
# replaced and resyncs from the new master as its replica.
start_redis_cluster_node() {
  local port=$1 dir=$BACKENDS_DIR/redis-cluster/$1
  ! port_open "$port" || die "redis-cluster: 127.0.0.1:$port is taken by a server we did not start"
  mkdir -p "$dir"
  # cluster-node-timeout: how long a master may be silent before its replica takes over.
  redis-server --daemonize yes --bind 127.0.0.1 --port "$port" --cluster-enabled yes \
    --cluster-config-file "$dir/nodes.conf" --cluster-node-timeout 2000 \
    --dir "$dir" --pidfile "$RUN_DIR/redis-cluster-$port.pid" \
    --logfile "$LOG_DIR/redis-cluster-$port.log" --save '' --appendonly yes \
    --appendfsync everysec 9>&- \
    || die_with_log "$LOG_DIR/redis-cluster-$port.log" "redis-cluster: node $port failed to start"
}

redis_cluster_node_running() { pid_running "$RUN_DIR/redis-cluster-$1.pid" redis-server >/dev/null; }

# `up redis-cluster`: a no-op when every node runs; nodes that are down are started alone,
# on their own folders, and rejoin; only a cluster that never existed (no node has a
# nodes.conf) is created. `reset redis-cluster` deletes it, for a fresh one.
up_redis_cluster() {
  local dir=$BACKENDS_DIR/redis-cluster port started=$SECONDS down=() known=0
  for port in "${REDIS_CLUSTER_PORTS[@]}"; do
    redis_cluster_node_running "$port" || down+=("$port")
    [[ -s $dir/$port/nodes.conf ]] && known=$((known + 1))
  done
  if ((${#down[@]} == 0)) && redis_cluster_ok; then
    configure_redis_cluster
    ok "redis-cluster already running on 127.0.0.1:${REDIS_CLUSTER_PORTS[0]}-${REDIS_CLUSTER_PORTS[-1]}"
    return 0
  fi
  if ((known == 0)); then
    create_redis_cluster
  elif ((known < ${#REDIS_CLUSTER_PORTS[@]})); then
    die "redis-cluster: only $known of ${#REDIS_CLUSTER_PORTS[@]} nodes have a nodes.conf under $dir; \`deploy/backends.sh reset redis-cluster\` starts a new cluster"
  else
    for port in "${down[@]}"; do
      log "redis-cluster: starting node $port again on its own data"
      start_redis_cluster_node "$port"
    done
    for port in "${down[@]}"; do
      # PING answers LOADING while the node replays its append-only file.
      wait_until redis-cluster "PING on 127.0.0.1:$port" "$REDIS_TIMEOUT" \
        "$LOG_DIR/redis-cluster-$port.log" "" redis_answers_on "$port"
    done
    wait_until redis-cluster "cluster_state:ok on every node" "$REDIS_TIMEOUT" \
      "$LOG_DIR/redis-cluster-${REDIS_CLUSTER_PORTS[0]}.log" "" redis_cluster_ok
  fi
  configure_redis_cluster
  ok "redis-cluster ready on 127.0.0.1:${REDIS_CLUSTER_PORTS[0]}-${REDIS_CLUSTER_PORTS[-1]}, 3 masters + 3 replicas ($((SECONDS - started))s${down[*]:+; started ${down[*]}})"
}

# A new cluster: six empty nodes, joined as 3 masters with a replica each.
create_redis_cluster() {
  local port nodes=()
  for port in "${REDIS_CLUSTER_PORTS[@]}"; do
    rm -rf "${BACKENDS_DIR:?}/redis-cluster/$port"
    start_redis_cluster_node "$port"
  done
  for port in "${REDIS_CLUSTER_PORTS[@]}"; do
    wait_until redis-cluster "PING on 127.0.0.1:$port" "$REDIS_TIMEOUT" \
      "$LOG_DIR/redis-cluster-$port.log" "" redis_answers_on "$port"
    nodes+=("127.0.0.1:$port")
  done
  log "redis-cluster: creating a new cluster"
  redis-cli --cluster create "${nodes[@]}" --cluster-replicas 1 --cluster-yes \
    >"$LOG_DIR/redis-cluster-create.log" 2>&1 \
    || die_with_log "$LOG_DIR/redis-cluster-create.log" "redis-cli --cluster create failed"
  wait_until redis-cluster "cluster_state:ok on every node" "$REDIS_TIMEOUT" \
    "$LOG_DIR/redis-cluster-create.log" "" redis_cluster_ok
}

# Every node as configure_redis sets the single one (compact timelines, LRU eviction), with
# REDIS_CLUSTER_MAXMEMORY per node (a master holds a third of the timelines; a replica, a copy).
configure_redis_cluster() {
  local port setting
  for port in "${REDIS_CLUSTER_PORTS[@]}"; do
    for setting in "zset-max-listpack-entries 1024" "maxmemory ${REDIS_CLUSTER_MAXMEMORY:-1gb}" \
      "maxmemory-policy allkeys-lru"; do
      # shellcheck disable=SC2086 # the setting is a name and a value
      redis-cli -h 127.0.0.1 -p "$port" CONFIG SET $setting >/dev/null \
        || warn "redis-cluster: could not CONFIG SET $setting on $port"
    done
  done
}

redis_answers_on() { [[ $(redis-cli -p "$1" ping 2>/dev/null) == PONG ]]; }

down_redis_cluster() {
  local port pid
  for port in "${REDIS_CLUSTER_PORTS[@]}"; do
    if pid=$(pid_running "$RUN_DIR/redis-cluster-$port.pid" redis-server); then
      kill -TERM "$pid"
      while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
    fi
    rm -f "$RUN_DIR/redis-cluster-$port.pid"
  done
}

pg_replica_answers() { "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_REPLICA_PORT" 2>/dev/null; }

# A hot standby of the primary on :5432, streaming its WAL. pg_basebackup copies the whole
# primary (every database on it) and -R writes the standby settings (primary_conninfo,
# standby.signal); initdb's default pg_hba.conf already lets local connections replicate.
up_pg_replica() {
  local dir=$BACKENDS_DIR/pg-replica pid started=$SECONDS
  if pid=$(pid_running "$RUN_DIR/pg-replica.pid" postgres) && pg_replica_answers; then
    ok "pg-replica already running on 127.0.0.1:$PG_REPLICA_PORT (pid $pid)"
    return 0
  fi
  ! port_open "$PG_REPLICA_PORT" || die "pg-replica: 127.0.0.1:$PG_REPLICA_PORT is taken by a server we did not start"
  pg_answers || die "pg-replica: no primary answers on 127.0.0.1:$PG_PORT (deploy/backends.sh up)"
  let_postgres_traverse "$BACKENDS_DIR"
  rm -rf "$dir"
  install -d -o postgres -g postgres -m 700 "$dir"
  install -o postgres -g postgres -m 644 /dev/null "$LOG_DIR/pg-replica.log"
  log "pg-replica: pg_basebackup from 127.0.0.1:$PG_PORT into $dir/data"
  (cd "$dir" && runuser -u postgres -- "$PG_BIN/pg_basebackup" -h 127.0.0.1 -p "$PG_PORT" \
    -U postgres -D "$dir/data" -R -X stream -c fast) >>"$LOG_DIR/pg-replica.log" 2>&1 \
    || die_with_log "$LOG_DIR/pg-replica.log" "pg-replica: pg_basebackup failed"
  (cd "$dir" && runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$dir/data" -l "$LOG_DIR/pg-replica.log" \
    -w -t "$PG_TIMEOUT" -o "-c listen_addresses=127.0.0.1 -p $PG_REPLICA_PORT -k '$dir' -c hot_standby=on" \
    start >/dev/null 9>&-) || die_with_log "$LOG_DIR/pg-replica.log" "pg-replica: pg_ctl start failed"
  head -n 1 "$dir/data/postmaster.pid" >"$RUN_DIR/pg-replica.pid"
  wait_until pg-replica "pg_isready on 127.0.0.1:$PG_REPLICA_PORT" "$PG_TIMEOUT" \
    "$LOG_DIR/pg-replica.log" "$(<"$RUN_DIR/pg-replica.pid")" pg_replica_answers
  ok "pg-replica ready on 127.0.0.1:$PG_REPLICA_PORT, streaming from :$PG_PORT ($((SECONDS - started))s)"
}

down_pg_replica() {
  local pid
  if pid=$(pid_running "$RUN_DIR/pg-replica.pid" postgres); then
    kill -INT "$pid"
    while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
  fi
  rm -f "$RUN_DIR/pg-replica.pid"
  # A standby is a copy: the next `up` takes a fresh one rather than catch up on old WAL.
  rm -rf "${BACKENDS_DIR:?}/pg-replica"
}

kafka_cluster_node_up() {
  grep -q 'Kafka Server started' "$LOG_DIR/kafka-cluster-$1.log" 2>/dev/null \
    && pid_running "$RUN_DIR/kafka-cluster-$1.pid" kafka.Kafka >/dev/null
}

# The cluster id a node's log dir was formatted with; fails if it never was.
kafka_cluster_node_id() {
  local meta=$BACKENDS_DIR/kafka-cluster/$1/data/meta.properties
  [[ -s $meta ]] && sed -n 's/^cluster\.id=//p' "$meta"
}

# `up kafka-cluster`: a no-op when every node runs; a node that is down is started alone, on
# its own log dir (its partitions, the committed offsets, the cluster id) and catches up
# from the others; only a cluster that never existed (no log dir formatted) gets a new
# cluster id. `reset kafka-cluster` deletes it, for a fresh one.
up_kafka_cluster() {
  local home=$BACKENDS_DIR/kafka-cluster node started=$SECONDS voters=() down=() formatted=0
  for node in "${KAFKA_CLUSTER_NODES[@]}"; do
    kafka_cluster_node_up "$node" || down+=("$node")
    kafka_cluster_node_id "$node" >/dev/null && formatted=$((formatted + 1))
  done
  if ((${#down[@]} == 0)); then
    ok "kafka-cluster already running on 127.0.0.1:$(kafka_cluster_ports)"
    return 0
  fi
  if ((formatted > 0 && formatted < ${#KAFKA_CLUSTER_NODES[@]})); then
    die "kafka-cluster: only $formatted of ${#KAFKA_CLUSTER_NODES[@]} nodes have a formatted log dir under $home; \`deploy/backends.sh reset kafka-cluster\` starts a new cluster"
  fi
  # The jars of the single broker; nothing more to download. Its logging config is read from
  # the repository, not from the single broker's rendered config: that one is missing when the
  # single broker on :9092 is someone else's (reused, never rendered here), and without it
  # nothing logs "Kafka Server started".
  fetch_jars kafka "$SHIPPED/kafka/pom.xml" "$KAFKA_HOME/libs"
  for node in "${KAFKA_CLUSTER_NODES[@]}"; do
    voters+=("$node@127.0.0.1:$(kafka_cluster_controller_port "$node")")
  done
  # Rendered on every start, so edits to the shipped config take effect on the next one.
  for node in "${down[@]}"; do
    mkdir -p "$home/$node/data"
    sed -e "s|@NODE_ID@|$node|g" -e "s|@PORT@|$(kafka_cluster_port "$node")|g" \
      -e "s|@CONTROLLER_PORT@|$(kafka_cluster_controller_port "$node")|g" \
      -e "s|@VOTERS@|$(IFS=,; echo "${voters[*]}")|g" -e "s|@DATA_DIR@|$home/$node/data|g" \
      "$SHIPPED/kafka/cluster-server.properties" >"$home/$node/server.properties"
  done
  if ((formatted == 0)); then
    local cluster_id
    cluster_id=$(java -cp "$KAFKA_HOME/libs/*" kafka.tools.StorageTool random-uuid | tail -n 1)
    log "kafka-cluster: formatting a new cluster (cluster id $cluster_id)"
    for node in "${KAFKA_CLUSTER_NODES[@]}"; do
      java -Xmx128m -cp "$KAFKA_HOME/libs/*" kafka.tools.StorageTool format --cluster-id "$cluster_id" \
        --config "$home/$node/server.properties" >"$LOG_DIR/kafka-cluster-format-$node.log" 2>&1 \
        || die_with_log "$LOG_DIR/kafka-cluster-format-$node.log" "kafka-cluster: storage format of node $node failed"
    done
  fi
  # The single broker's class-data archive, when there is one: same jars, faster starts.
  local cds=()
  [[ -s $KAFKA_HOME/cds.jsa ]] && cds=(-Xlog:cds=error "-XX:SharedArchiveFile=$KAFKA_HOME/cds.jsa")
  for node in "${down[@]}"; do
    # A node that died without exiting cleanly may still hold its ports for a moment.
    local port
    for port in "$(kafka_cluster_port "$node")" "$(kafka_cluster_controller_port "$node")"; do
      ! port_open "$port" || die "kafka-cluster: 127.0.0.1:$port is taken by a server we did not start"
    done
    log "kafka-cluster: starting node $node on 127.0.0.1:$(kafka_cluster_port "$node") (cluster id $(kafka_cluster_node_id "$node"))"
    start_detached "$LOG_DIR/kafka-cluster-$node.log" "$RUN_DIR/kafka-cluster-$node.pid" "$home/$node" \
      java "${cds[@]}" -Xms128m -Xmx320m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 \
      -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true \
      "-Dlog4j2.configurationFile=file:$SHIPPED/kafka/log4j2.yaml" \
      -cp "$KAFKA_HOME/libs/*" kafka.Kafka "$home/$node/server.properties"
  done
  for node in "${down[@]}"; do
    wait_until kafka-cluster "\"Kafka Server started\" on node $node" "$KAFKA_TIMEOUT" \
      "$LOG_DIR/kafka-cluster-$node.log" "$(<"$RUN_DIR/kafka-cluster-$node.pid")" \
      grep -q 'Kafka Server started' "$LOG_DIR/kafka-cluster-$node.log"
  done
  ok "kafka-cluster ready on 127.0.0.1:$(kafka_cluster_ports) ($((SECONDS - started))s; started node ${down[*]})"
}

down_kafka_cluster() {
  local node pid pids=()
  for node in "${KAFKA_CLUSTER_NODES[@]}"; do
    if pid=$(pid_running "$RUN_DIR/kafka-cluster-$node.pid" kafka.Kafka); then
      kill -TERM "$pid"
      pids+=("$pid")
    fi
  done
  local start=$SECONDS
  for pid in "${pids[@]}"; do
    while kill -0 "$pid" 2>/dev/null; do
      ((SECONDS - start < STOP_TIMEOUT)) || kill -KILL "$pid" 2>/dev/null || true
      sleep 0.2
    done
  done
  for node in "${KAFKA_CLUSTER_NODES[@]}"; do rm -f "$RUN_DIR/kafka-cluster-$node.pid"; done
}

# Whether every member of scale-out backend NAME runs and answers.
extra_running() {
  local port node
  case $1 in
    redis-cluster)
      for port in "${REDIS_CLUSTER_PORTS[@]}"; do redis_cluster_node_running "$port" || return 1; done
      redis_cluster_ok
      ;;
    kafka-cluster)
      for node in "${KAFKA_CLUSTER_NODES[@]}"; do kafka_cluster_node_up "$node" || return 1; done
      ;;
    pg-replica) pid_running "$RUN_DIR/pg-replica.pid" postgres >/dev/null && pg_replica_answers ;;
    cassandra-tombstones)
      pid_running "$RUN_DIR/cassandra-tombstones/cassandra.pid" CassandraDaemon >/dev/null
      ;;
    *) die "no scale-out backend '$1' (one of: ${EXTRAS[*]})" ;;
  esac
}

# Stops one member (a Redis port, a Kafka node id) cleanly: SIGTERM, SIGKILL after
# STOP_TIMEOUT. Its data stays; the next `up` starts it on that data.
stop_member() {
  local name=$1 member=$2 pid start=$SECONDS
  pid=$(pid_running "$RUN_DIR/$name-$member.pid" "${name%-cluster}") || return 0
  kill -TERM "$pid"
  while kill -0 "$pid" 2>/dev/null; do
    ((SECONDS - start < STOP_TIMEOUT)) || kill -KILL "$pid" 2>/dev/null || true
    sleep 0.1
  done
  rm -f "$RUN_DIR/$name-$member.pid"
}

# The standard node's start and wait, pointed at a folder and ports of its own. A subshell, so
# the overrides end with it.
up_cassandra_tombstones() (
  CASSANDRA_HOME=$BACKENDS_DIR/cassandra-tombstones RUN_DIR=$RUN_DIR/cassandra-tombstones
  LOG_DIR=$LOG_DIR/cassandra-tombstones CQL_PORT=$CASSANDRA_TOMBSTONES_PORT
  CASSANDRA_STORAGE_PORT=7100
  CASSANDRA_EXTRA_YAML=$'tombstone_warn_threshold: 100\ntombstone_failure_threshold: 1000'
  CASSANDRA_EXTRA_JVM='-Xms256m -Xmx512m'
  mkdir -p "$RUN_DIR" "$LOG_DIR"
  start_cassandra
  wait_cassandra
)

down_cassandra_tombstones() {
  local pidfile=$RUN_DIR/cassandra-tombstones/cassandra.pid pid start=$SECONDS
  pid=$(pid_running "$pidfile" CassandraDaemon) || { log "cassandra-tombstones: not running"; return 0; }
  kill -TERM "$pid"
  while kill -0 "$pid" 2>/dev/null; do
    ((SECONDS - start < STOP_TIMEOUT)) || kill -KILL "$pid" 2>/dev/null || true
    sleep 0.2
  done
  rm -f "$pidfile"
  ok "cassandra-tombstones stopped"
}

cmd_extra() {
  local action=$1 name=$2 member=${3:-}
  if [[ $action == status ]]; then
    init_dirs
    extra_running "$name" && { ok "$name running"; return 0; }
    log "$name not (entirely) running"
    return 3
  fi
  [[ $EUID -eq 0 ]] || die "$action $name needs root"
  init_dirs
  with_extra_lock "$name"
  if [[ $action == kill || $action == restart ]]; then
    local members
    case $name in
      redis-cluster) members=" ${REDIS_CLUSTER_PORTS[*]} " ;;
      kafka-cluster) members=" ${KAFKA_CLUSTER_NODES[*]} " ;;
      *) members= ;;
    esac
    [[ -n $member && $members == *" $member "* ]] \
      || die "$action $name: no member '$member' (a Redis port ${REDIS_CLUSTER_PORTS[0]}-${REDIS_CLUSTER_PORTS[-1]}, a Kafka node 1-3)"

  fi
  case $action:$name in
    up:redis-cluster) command -v redis-server >/dev/null || ensure_debian_packages; up_redis_cluster ;;
    up:pg-replica) up_pg_replica ;;
    up:kafka-cluster) up_kafka_cluster ;;
    up:cassandra-tombstones) up_cassandra_tombstones ;;
    down:redis-cluster) down_redis_cluster ;;
    down:pg-replica | reset:pg-replica) down_pg_replica ;;
    down:kafka-cluster) down_kafka_cluster ;;
    down:cassandra-tombstones) down_cassandra_tombstones ;;
    reset:redis-cluster | reset:kafka-cluster | reset:cassandra-tombstones)
      "down_${name//-/_}"
      rm -rf "${BACKENDS_DIR:?}/$name"
      ok "$name: stopped and deleted; the next \`up $name\` creates a new one"
      ;;
    kill:redis-cluster | kill:kafka-cluster)
      local pidfile=$RUN_DIR/$name-$member.pid pid
      pid=$(pid_running "$pidfile" "${name%-cluster}") || die "$name: no member $member running"
      kill -KILL "$pid"
      while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
      ok "$name: member $member (pid $pid) killed"
      ;;
    restart:redis-cluster | restart:kafka-cluster)
      stop_member "$name" "$member"
      "up_${name//-/_}"
      ;;
    *) die "cannot $action $name${member:+ $member} (one of: ${EXTRAS[*]})" ;;
  esac
}

# ---------------------------------------------------------------------------------- commands

init_dirs() {
  # 755: the postgres OS user must be able to enter it (checked in start_postgres).
  if [[ ! -d $BACKENDS_DIR ]]; then
    mkdir -p "$BACKENDS_DIR"
    chmod 755 "$BACKENDS_DIR"
  fi
  BACKENDS_DIR=$(cd "$BACKENDS_DIR" && pwd)   # absolute: it ends up in configs
  RUN_DIR=$BACKENDS_DIR/run
  LOG_DIR=$BACKENDS_DIR/logs
  KAFKA_HOME=$BACKENDS_DIR/kafka
  CASSANDRA_HOME=$BACKENDS_DIR/cassandra
  mkdir -p "$RUN_DIR" "$LOG_DIR"
  chmod 755 "$LOG_DIR"   # the postgres OS user writes its log here
}

cmd_up() {
  [[ $EUID -eq 0 ]] || die "up needs root (apt-get, and running PostgreSQL as the postgres user)"
  local t0=$SECONDS
  init_dirs
  with_lock
  log "backends folder: $BACKENDS_DIR"

  # Java and Maven first (present on our machines; installed if not), because the slow
  # part — fetching jars and booting two JVM servers — starts right away in the
  # background while apt, PostgreSQL and Redis are dealt with in the foreground.
  if ! command -v java >/dev/null || ! command -v mvn >/dev/null; then
    ensure_debian_packages
  fi
  # Cassandra first: it is the slowest to boot. One job, so the two Maven runs do not
  # write to the shared ~/.m2 at the same time.
  (start_cassandra && start_kafka) &
  local jvm_job=$!

  ensure_debian_packages
  up_postgres
  up_redis

  wait "$jvm_job" || die "starting kafka/cassandra failed (see above)"
  wait_kafka
  wait_cassandra
  ok "all backends up in $((SECONDS - t0))s"
  cmd_status || true
}

cmd_down() {
  [[ $EUID -eq 0 ]] || die "down needs root"
  init_dirs
  # The scale-out backends first, each under its own lock (a subshell: its fd 9 is its own);
  # their data stays for the next `up NAME` (`reset NAME` deletes it).
  local extra
  for extra in "${EXTRAS[@]}"; do
    (with_extra_lock "$extra" && "down_${extra//-/_}")
  done
  with_lock
  local name pid stopping=()
  for name in cassandra kafka redis postgres; do
    if pid=$(our_pid "$name"); then
      log "$name: stopping (pid $pid)"
      # Postgres: SIGINT is its "fast" shutdown (SIGTERM would wait for clients to leave).
      # Kafka and Cassandra shut down cleanly on SIGTERM (Cassandra also writes its
      # class-data archive then). Redis exits on SIGTERM without saving (no persistence).
      if [[ $name == postgres ]]; then kill -INT "$pid"; else kill -TERM "$pid"; fi
      stopping+=("$name:$pid")
    elif port_open "${PORT[$name]}"; then
      log "$name: running on 127.0.0.1:${PORT[$name]} but not started by us: leaving it alone"
    else
      log "$name: not running"
    fi
    rm -f "$RUN_DIR/$name.started"
  done
  # Stop them in parallel, wait for all.
  local entry start=$SECONDS
  for entry in "${stopping[@]}"; do
    name=${entry%%:*} pid=${entry#*:}
    while kill -0 "$pid" 2>/dev/null; do
      if ((SECONDS - start >= STOP_TIMEOUT)); then
        warn "$name: still running after ${STOP_TIMEOUT}s, sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
      fi
      sleep 0.2
    done
    rm -f "$RUN_DIR/$name.pid"
    ok "$name stopped"
  done
}

cmd_status() {
  if [[ -d $BACKENDS_DIR ]]; then
    BACKENDS_DIR=$(cd "$BACKENDS_DIR" && pwd)
  fi
  RUN_DIR=$BACKENDS_DIR/run
  LOG_DIR=$BACKENDS_DIR/logs   # where a Kafka cluster node's start is read from
  local name pid state owner all_up=0
  for name in "${BACKENDS[@]}"; do
    owner=external
    pid=$(our_pid "$name") && owner="started by us (pid $pid)"
    if backend_answers "$name"; then
      state=up
    elif [[ $owner != external ]]; then
      state=starting all_up=3
    else
      state=down owner=- all_up=3
    fi
    printf '%-10s %-9s 127.0.0.1:%-5s %s\n' "$name" "$state" "${PORT[$name]}" "$owner"
  done
  # The scale-out backends, only when some member of one runs (`down` stops them too).
  local extra pidfile
  for extra in "${EXTRAS[@]}"; do
    for pidfile in "$RUN_DIR/$extra"*.pid "$RUN_DIR/$extra"/*.pid; do
      [[ -s $pidfile ]] || continue
      if extra_running "$extra"; then state=up; else state=partial; fi
      printf '%-14s %-9s (scale-out; deploy/backends.sh status %s)\n' "$extra" "$state" "$extra"
      break
    done
  done
  return $all_up
}

case ${1:-} in
  up) if [[ -n ${2:-} ]]; then cmd_extra "$@"; else cmd_up; fi ;;
  down) if [[ -n ${2:-} ]]; then cmd_extra "$@"; else cmd_down; fi ;;
  status) if [[ -n ${2:-} ]]; then cmd_extra "$@"; else cmd_status; fi ;;
  kill | restart | reset) if [[ -n ${2:-} ]]; then cmd_extra "$@"; else die "usage: $0 $1 NAME"; fi ;;
  *)
    echo "usage: $0 up|down|status, or up|down|status|reset redis-cluster|pg-replica|kafka-cluster|cassandra-tombstones, or kill|restart redis-cluster PORT|kafka-cluster NODE   (backends folder: \${CHIRP_BACKENDS_DIR:-<repo>/.backends})" >&2
    exit 2
    ;;
esac
