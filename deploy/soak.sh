#!/usr/bin/env bash
# deploy/soak.sh [ARGS...] — a measured soak, recorded for docs/RELIABILITY.md.
#
#   deploy/soak.sh --duration 30m --post-rate 100 --outbox-shard 3 --seed 1
#
# Builds the load tool in release mode, notes the machine's load average, runs
# `loadtest soak ARGS...` (which starts its own isolated stack in .backends-soak/, builds the
# services in release mode, seeds a million users by default, and stops everything at the end)
# and writes run.json beside the soak's report: the date, the machine, the command, the commit
# (deploy/lib/record-run.py). SOAK_OUT sets the report's folder (default
# soak-report/<date-time>). To publish runs in the docs (each with its plots):
#
#   deploy/lib/record-run.py publish-soak DIR1 DIR2 && deploy/render-docs.py
#
# The exit status is the soak's: 0 when every promise held and no curve grew.
set -euo pipefail

REPO_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=${SOAK_OUT:-$REPO_DIR/soak-report/$(date +%Y%m%d-%H%M%S)}
cd "$REPO_DIR"
mkdir -p "$OUT"
cargo build --release -p loadtest
cut -d' ' -f1-3 /proc/loadavg >"$OUT/loadavg-before"
status=0
"${CARGO_TARGET_DIR:-$REPO_DIR/target}/release/loadtest" soak --out "$OUT" "$@" || status=$?
python3 deploy/lib/record-run.py soak "$OUT" deploy/soak.sh "$@"
exit "$status"
