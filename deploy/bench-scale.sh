#!/usr/bin/env bash
# deploy/bench-scale.sh — chirp at a million users on one machine, in one command.
#
#   deploy/bench-scale.sh [RESULTS_DIR]        default: bench-results/scale-<date-time>
#
# Sibling of deploy/bench.sh, run twice: once at BASE users (5 000) and once at SCALE users
# (1 000 000, power-law graph of about 23 M follows, 5 tweets each), each on fresh state of its
# own (a new Postgres database, CQL keyspace, Redis key prefix and Kafka topic, all dropped at
# the end: at a million users they hold gigabytes). For each size it
#
# 1. starts the five services (release builds, copied aside so that another build cannot swap
#    them mid-run), as deploy/bench.sh does;
# 2. seeds through the bulk paths (`loadtest seed`: ImportGraph, ImportTweets) and records each
#    stage's time;
# 3. warms the timelines of the ACTIVE share of users (10 %) and runs `loadtest bench` over
#    them: cached home-timeline pages/s and p99 at each layer, and fan-out;
# 4. reads the home timelines of users who were not warmed (`loadtest run`, one page each at a
#    low rate): cold reads, each a rebuild, p50/p99;
# 5. times a post through the gateway to the home timeline of the last follower of an author
#    with threshold − 1 followers, the largest audience still pushed, read through the gateway
#    every 10 ms (`loadtest visible`);
# 6. records what Redis holds: timeline keys, bytes in total (MEMORY USAGE of every key) and
#    per entry, and the lists of pulled authors stored beside the timelines (keys, bytes);
# 7. stops the services and drops the size's database, keyspace, key prefix and topic before
#    the next size starts (and on any failure, on the way out).
#
# Then it runs `experiment strategies` at EXPERIMENT_USERS (100 000) users, on a
# database and keyspace of its own, dropped afterwards: push, pull and hybrid on one graph, with
# its plot (strategies/index.html).
#
# Before the seed and before each measurement it checks that the system is quiet — fan-out
# consumer lag 0, the seed settled (no query of the run still active in Postgres) and the
# machine's CPU at least QUIET_IDLE % idle over 5 s — waiting up to QUIET_TIMEOUT seconds, and
# records what it found in quiet.md either way, with the load average and the busiest
# processes: on a shared machine "not quiet" is a result to report, not to hide.
#
# RESULTS_DIR then holds scale.md (the summary), quiet.md, and per size: the seed's output,
# the manifest, bench.md/bench.json, visible.json, the cold-read report and the services' logs;
# and run.json, the run's record (deploy/lib/record-run.py). Two runs are published together,
# `deploy/lib/record-run.py publish-bench-scale DIR1 DIR2`, into docs/runs/bench-scale/, from
# which deploy/render-docs.py renders the tables of docs/BENCHMARKS.md.
set -euo pipefail

REPO_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RESULTS=${1:-$REPO_DIR/bench-results/scale-$(date +%Y%m%d-%H%M%S)}
RUN_ID=scale$(date +%s)

BASE_USERS=${SCALE_BASE_USERS:-5000}
SCALE_USERS=${SCALE_USERS:-1000000}
SIZES=${SCALE_SIZES:-"$BASE_USERS $SCALE_USERS"}
TWEETS_PER_USER=${SCALE_TWEETS_PER_USER:-5}
ACTIVE_PERCENT=${SCALE_ACTIVE_PERCENT:-10}
MAX_READERS=${SCALE_MAX_READERS:-100000}
DURATION=${SCALE_DURATION:-10s}
CONNECTIONS=${SCALE_CONNECTIONS:-64}
COLD_READS=${SCALE_COLD_READS:-1000}
COLD_RATE=${SCALE_COLD_RATE:-50}
VISIBLE_POSTS=${SCALE_VISIBLE_POSTS:-5}
EXPERIMENT_USERS=${SCALE_EXPERIMENT_USERS:-100000}   # 0: no strategies experiment
QUIET_IDLE=${SCALE_QUIET_IDLE:-80}
QUIET_TIMEOUT=${SCALE_QUIET_TIMEOUT:-120}
SKIP_BENCH=${SCALE_SKIP_BENCH:-}   # set: seed and count Redis only
# SCALE_BIN_DIR=DIR: use the binaries in DIR instead of building them.
# BENCH_TIMELINE_ENV, BENCH_GATEWAY_ENV="VAR=value …": settings for the timeline service and the
# gateway, recorded in scale.md. By default their caches are sized, at every size, for the
# largest size's active set: the hydration cache holds 3 M tweets for an hour (the warm-up of
# 100 000 readers takes about 14 minutes), the gateway 1 M handles (every user). Set either to
# "" for the services' own defaults.
export BENCH_TIMELINE_ENV=${BENCH_TIMELINE_ENV-"TWEET_CACHE_CAPACITY=3000000 TWEET_CACHE_TTL_MS=3600000"}
export BENCH_GATEWAY_ENV=${BENCH_GATEWAY_ENV-"HANDLE_CACHE_CAPACITY=1000000"}

PG=postgres://postgres@127.0.0.1:5432
GATEWAY=127.0.0.1:18180
TWEET=127.0.0.1:51151
GRAPH=127.0.0.1:51152
TIMELINE=127.0.0.1:51153
FANOUT_METRICS=127.0.0.1:19190

mkdir -p "$RESULTS/bin"
BIN_DIR=$RESULTS/bin
LOG_DIR=$RESULTS/logs
# shellcheck source=deploy/lib/bench-common.sh
source "$REPO_DIR/deploy/lib/bench-common.sh"

cleanup() {
  stop_services
  drop_state
}
trap cleanup EXIT

# Timeline keys under $1, their entries (by type) and bytes (MEMORY USAGE), as "keys entries
# bytes". Whatever layout the timeline store uses, these count what it holds.
redis_timelines() {
  local keys=$RESULTS/keys.txt
  # `tl:{id}` only: not a rebuild's staging key (`tl:{id}:rebuild`), nor tombstones.
  redis-cli -h 127.0.0.1 --scan --pattern "$1tl:{*}" >"$keys"
  local count
  count=$(wc -l <"$keys")
  if ((count == 0)); then echo "0 0 0"; return; fi
  awk '{ print "MEMORY USAGE " $0; print "TYPE " $0 }' "$keys" | redis-cli -h 127.0.0.1 >"$RESULTS/usage.txt"
  local bytes
  bytes=$(awk 'NR % 2 == 1 { s += $1 } END { print s + 0 }' "$RESULTS/usage.txt")
  paste - - <"$RESULTS/usage.txt" | paste - "$keys" | awk '{
      if ($2 == "zset") print "ZCARD " $3; else if ($2 == "list") print "LLEN " $3;
      else if ($2 == "string") print "STRLEN " $3 }' | redis-cli -h 127.0.0.1 >"$RESULTS/entries.txt"
  local entries
  entries=$(awk '{ s += $1 } END { print s + 0 }' "$RESULTS/entries.txt")
  echo "$count $entries $bytes"
}

# The lists of pulled authors stored beside the timelines under $1 (`tl:{id}:pulled`), as
# "keys bytes" (MEMORY USAGE): part of what an active reader costs, counted apart from the
# timelines' entries.
redis_pulled_lists() {
  local keys=$RESULTS/pulled-keys.txt
  redis-cli -h 127.0.0.1 --scan --pattern "$1tl:{*}:pulled" >"$keys"
  local count
  count=$(wc -l <"$keys")
  if ((count == 0)); then echo "0 0"; return; fi
  awk '{ print "MEMORY USAGE " $0 }' "$keys" | redis-cli -h 127.0.0.1 >"$RESULTS/pulled-usage.txt"
  echo "$count $(awk '{ s += $1 } END { print s + 0 }' "$RESULTS/pulled-usage.txt")"
}

log "starting the backends"
bash "$REPO_DIR/deploy/backends.sh" up

if [[ -z ${SCALE_BIN_DIR:-} ]]; then
  log "building the services and the load tool (cargo build --release)"
  build_release "$REPO_DIR"
fi
for bin in graph tweet timeline fanout gateway loadtest experiment; do
  cp "${SCALE_BIN_DIR:-${CARGO_TARGET_DIR:-$REPO_DIR/target}/release}/$bin" "$BIN_DIR/"
done
LOADTEST=$BIN_DIR/loadtest
EXPERIMENT=$BIN_DIR/experiment

quiet_table
printf '| users | follows | tweets | users s | follows s | commit s | tweets s | seed total s | timeline keys | entries | Redis bytes | bytes/entry | pulled-list keys | pulled-list bytes | readers | gateway pages/s | gateway p99 ms (70 %%) | cold p50 ms | cold p99 ms | visible median ms (min-max) |\n' >"$RESULTS/scale.tsv"

for USERS in $SIZES; do
  OUT=$RESULTS/$USERS
  LOG_DIR=$OUT/logs
  mkdir -p "$LOG_DIR"
  NAME=${RUN_ID}_$USERS
  DATABASES+=("$NAME"); KEYSPACES+=("$NAME"); PREFIXES+=("$NAME:"); TOPICS+=("$NAME")
  # A celebrity threshold the size can reach, with a few celebrities above it.
  THRESHOLD=$(( USERS >= 100000 ? 10000 : USERS / 5 ))
  CELEBRITIES=$(( USERS >= 100000 ? 20 : 3 ))
  READERS=$(( USERS * ACTIVE_PERCENT / 100 ))
  (( READERS > MAX_READERS )) && READERS=$MAX_READERS

  log "[$USERS] fresh database, keyspace, key prefix and topic $NAME"
  psql -q "$PG/postgres" -c "CREATE DATABASE $NAME"
  TOKEN_SECRET=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
  start_stack "$PG/$NAME" "$NAME" "$NAME" "$THRESHOLD" "$TOKEN_SECRET"

  quiet "$USERS" "seed" "$NAME"
  log "[$USERS] seeding: $USERS users, power law, $TWEETS_PER_USER tweets each"
  seed_started=$SECONDS
  "$LOADTEST" seed --gateway "http://$GATEWAY" --graph-addr "$GRAPH" --tweet-addr "$TWEET" \
    --users "$USERS" --celebrities "$CELEBRITIES" --celebrity-threshold "$THRESHOLD" \
    --tweets-per-user "$TWEETS_PER_USER" --manifest "$OUT/manifest.json" --quiet | tee "$OUT/seed.txt"
  seed_secs=$((SECONDS - seed_started))
  # Fresh statistics now, rather than an autovacuum in the middle of a measurement.
  analyze_started=$SECONDS
  psql -q "$PG/$NAME" -c "VACUUM ANALYZE"
  analyze_secs=$((SECONDS - analyze_started))
  read -r follows tweets users_s follows_s commit_s tweets_s < <(python3 -c '
import json, sys
m = json.load(open(sys.argv[1])); t = m["timings"]
print(m["follows"], m["tweets"], round(t["users_secs"], 1), round(t["follows_secs"], 1),
      round(t["graph_commit_secs"], 1), round(t["tweets_secs"], 1))' "$OUT/manifest.json")
  log "[$USERS] seed: ${seed_secs} s, then VACUUM ANALYZE ${analyze_secs} s"

  pages=- p99=- cold50=- cold99=- visible=-
  if [[ -z $SKIP_BENCH ]]; then
    quiet "$USERS" "bench" "$NAME"
    log "[$USERS] loadtest bench over $READERS active readers"
    env "${REDIS[@]}" "${KAFKA[@]}" TOKEN_SECRET="$TOKEN_SECRET" "$LOADTEST" bench \
      --manifest "$OUT/manifest.json" --timeline-addr "$TIMELINE" --graph-addr "$GRAPH" \
      --fanout-metrics "http://$FANOUT_METRICS/metrics" --duration "$DURATION" \
      --connections "$CONNECTIONS" --readers "$READERS" \
      --fanout-followers "$(( THRESHOLD - 1 < 1000 ? THRESHOLD - 1 : 1000 ))" \
      --out "$OUT" | tee "$OUT/bench.txt"
    read -r pages p99 < <(python3 -c '
import json, sys
b = json.load(open(sys.argv[1]))
print(round(b["gateway_http"]["ok_per_sec"]), round(b["gateway_http_open"]["latency"]["p99_ms"], 2))' "$OUT/bench.json") || true

    quiet "$USERS" "cold reads" "$NAME"
    log "[$USERS] cold reads: $COLD_READS first pages of users drawn from all $USERS"
    # Drawn from everyone, so about (100 - ACTIVE_PERCENT) % were never read: each such read
    # rebuilds the timeline from the stores.
    TOKEN_SECRET="$TOKEN_SECRET" "$LOADTEST" run home-timeline --manifest "$OUT/manifest.json" \
      --rate "$COLD_RATE" --duration "$((COLD_READS / COLD_RATE))s" --pages 1 --seed 7 \
      --out "$OUT/cold" | tee "$OUT/cold.txt"
    read -r cold50 cold99 < <(python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))["latency"]
print(r["p50_ms"], r["p99_ms"])' "$OUT/cold/report.json") || true

    quiet "$USERS" "post to last follower" "$NAME"
    log "[$USERS] post to last follower visible: an author with $((THRESHOLD - 1)) followers"
    TOKEN_SECRET="$TOKEN_SECRET" "$LOADTEST" visible --manifest "$OUT/manifest.json" \
      --graph-addr "$GRAPH" --posts "$VISIBLE_POSTS" --out "$OUT" | tee "$OUT/visible.txt"
    visible=$(python3 -c '
import json, sys
ms = sorted(json.load(open(sys.argv[1]))["last_follower_ms"])
print(f"{ms[len(ms) // 2]:.0f} ({ms[0]:.0f}-{ms[-1]:.0f})")' "$OUT/visible.json") || true
  fi

  read -r keys entries bytes < <(redis_timelines "$NAME:")
  read -r list_keys list_bytes < <(redis_pulled_lists "$NAME:")
  per_entry=$(python3 -c "import sys; e, b = int(sys.argv[1]), int(sys.argv[2]); print(round(b / e, 1) if e else '-')" "$entries" "$bytes")
  printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' \
    "$USERS" "$follows" "$tweets" "$users_s" "$follows_s" "$commit_s" "$tweets_s" "$seed_secs" \
    "$keys" "$entries" "$bytes" "$per_entry" "$list_keys" "$list_bytes" "$READERS" "$pages" "$p99" "$cold50" "$cold99" "$visible" >>"$RESULTS/scale.tsv"
  # The same, as JSON for the run record (deploy/lib/record-run.py); "-" (not measured): null.
  python3 -c 'import json, sys
pairs = zip(sys.argv[2::2], sys.argv[3::2])
number = lambda v: None if v in ("", "-") else float(v) if "." in v else int(v)
json.dump({k: number(v) for k, v in pairs}, open(sys.argv[1], "w"), indent=2)' "$OUT/size.json" \
    users "$USERS" follows "$follows" tweets "$tweets" celebrity_threshold "$THRESHOLD" \
    users_secs "$users_s" follows_secs "$follows_s" graph_commit_secs "$commit_s" tweets_secs "$tweets_s" \
    seed_secs "$seed_secs" timeline_keys "$keys" timeline_entries "$entries" timeline_bytes "$bytes" \
    pulled_list_keys "$list_keys" pulled_list_bytes "$list_bytes" readers "$READERS"
  stop_services
  log "[$USERS] dropping the size's database, keyspace and keys"
  drop_state
done

if ((EXPERIMENT_USERS > 0)); then
  NAME=${RUN_ID}_strategies
  LOG_DIR=$RESULTS/strategies
  mkdir -p "$LOG_DIR"
  DATABASES+=("$NAME"); KEYSPACES+=("$NAME")
  psql -q "$PG/postgres" -c "CREATE DATABASE $NAME"
  quiet "$EXPERIMENT_USERS" "strategies" "$NAME"
  log "comparing push, pull and hybrid timelines at $EXPERIMENT_USERS users"
  # Its own services, in process, on fresh key prefixes and topics it drops itself.
  "$EXPERIMENT" strategies --database-url "$PG/$NAME" --cql-keyspace "$NAME" \
    --users "$EXPERIMENT_USERS" --celebrities 5 --celebrity-threshold "$((EXPERIMENT_USERS / 50))" \
    --readers 2000 --out "$RESULTS/strategies" --quiet | tee "$RESULTS/strategies/strategies.txt"
  drop_state
fi

{
  echo "# chirp at scale ($(date -u +%FT%TZ), $(nproc) cores)"
  echo
  if [[ -n ${BENCH_TIMELINE_ENV:-} ]]; then
    echo "The timeline service ran with \`$BENCH_TIMELINE_ENV\` (BENCH_TIMELINE_ENV)."
    echo
  fi
  if [[ -n ${BENCH_GATEWAY_ENV:-} ]]; then
    echo "The gateway ran with \`$BENCH_GATEWAY_ENV\` (BENCH_GATEWAY_ENV)."
    echo
  fi
  sed '1a|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|' "$RESULTS/scale.tsv"
  echo
  if [[ -f $RESULTS/strategies/strategies.md ]]; then
    echo "## Push, pull and hybrid at $EXPERIMENT_USERS users (plot: strategies/index.html)"
    echo
    cat "$RESULTS/strategies/strategies.md"
    echo
  fi
  echo "## Was the system quiet?"
  echo
  cat "$RESULTS/quiet.md"
} >"$RESULTS/scale.md"
log "done: $RESULTS/scale.md"
python3 "$REPO_DIR/deploy/lib/record-run.py" bench-scale "$RESULTS" deploy/bench-scale.sh "$@"
cat "$RESULTS/scale.md"
