#!/usr/bin/env bash
# deploy/policies.sh — the policies of real networks side by side (`experiment policies`), twice,
# recorded and published for docs/BENCHMARKS.md and the console's Strategy lab.
#
#   deploy/policies.sh [RESULTS_DIR] [EXPERIMENT FLAGS...]   default: policies-results/<date-time>
#
# 1. starts the backends (deploy/backends.sh up),
# 2. builds the release binaries (as deploy/bench.sh does),
# 3. runs `experiment policies` twice, each on a fresh Postgres database and CQL keyspace
#    (chirp_policies), with the flags given after RESULTS_DIR (the defaults are the real run's:
#    100 000 users, threshold 10 000, 20 heavy followers of 4 000 accounts), into RESULTS_DIR/1
#    and RESULTS_DIR/2, each recorded by deploy/lib/record-run.py (KIND policies),
# 4. publishes both as docs/runs/policies/run.json (`record-run.py publish-policies`) and
#    renders the docs and services/gateway/console/policies.json (deploy/render-docs.py).
#
# Before each run it checks that the system is quiet (no query of the run's database active, the
# CPU at least POLICIES_QUIET_IDLE % (80) idle over 5 s, waiting up to POLICIES_QUIET_TIMEOUT s
# (120); deploy/lib/bench-common.sh) and records what it found in RESULTS_DIR/quiet.md either way.
# The experiment's fan-out workers run in its own process, on topics of their own, so every
# policy starts with no event pending.
#
# POLICIES_BIN_DIR=DIR runs the experiment binary in DIR instead of building it.
set -euo pipefail

REPO_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RESULTS=${1:-$REPO_DIR/policies-results/$(date +%Y%m%d-%H%M%S)}
shift || true
PG=postgres://postgres@127.0.0.1:5432
DATABASE=chirp_policies
BIN_DIR=${POLICIES_BIN_DIR:-${CARGO_TARGET_DIR:-$REPO_DIR/target}/release}
LOG_DIR=$RESULTS/logs
QUIET_IDLE=${POLICIES_QUIET_IDLE:-80}
QUIET_TIMEOUT=${POLICIES_QUIET_TIMEOUT:-120}
mkdir -p "$LOG_DIR"
# shellcheck source=deploy/lib/bench-common.sh
source "$REPO_DIR/deploy/lib/bench-common.sh"

log "starting the backends"
bash "$REPO_DIR/deploy/backends.sh" up
if [[ -z ${POLICIES_BIN_DIR:-} ]]; then
  log "building the release binaries"
  build_release "$REPO_DIR"
fi

quiet_table run
for run in 1 2; do
  log "run $run of 2: fresh database $DATABASE and keyspace"
  psql -q "$PG/postgres" -c "DROP DATABASE IF EXISTS $DATABASE WITH (FORCE)" -c "CREATE DATABASE $DATABASE"
  quiet "$run" "experiment policies" "$DATABASE"
  "$BIN_DIR/experiment" policies --database-url "$PG/$DATABASE" \
    --cql-keyspace "${DATABASE}_${run}_$(date +%s)" --out "$RESULTS/$run" --quiet "$@"
  python3 "$REPO_DIR/deploy/lib/record-run.py" policies "$RESULTS/$run" deploy/policies.sh "$@"
done

python3 "$REPO_DIR/deploy/lib/record-run.py" publish-policies "$RESULTS/1" "$RESULTS/2"
python3 "$REPO_DIR/deploy/render-docs.py"
log "done: the results are in $RESULTS"
