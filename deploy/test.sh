#!/usr/bin/env bash
# deploy/test.sh — the one command that tests chirp, locally and in CI.
#
# Starts the real backends natively (deploy/backends.sh up: installs them on a fresh machine,
# reuses them when they already run), then runs every test of the workspace: unit tests,
# each service's integration tests and the end-to-end tests, all against those backends;
# then fuzzes the public API from its OpenAPI document (deploy/fuzz-api.sh).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash deploy/backends.sh up

echo "==> cargo test --workspace"
# Two cores: more test threads than that only make Cassandra's schema changes time out.
cargo test --workspace --locked --no-fail-fast -- --test-threads="${CHIRP_TEST_THREADS:-4}"

echo "==> fuzzing the API (deploy/fuzz-api.sh)"
bash deploy/fuzz-api.sh
