#!/usr/bin/env bash
# deploy/test.sh — the one command that tests chirp, locally and in CI.
#
# Starts the real backends natively (deploy/backends.sh up: installs them on a fresh machine,
# reuses them when they already run; the scale-out ones the tests start are stopped at the
# end), then runs every test of the workspace: unit tests,
# each service's integration tests and the end-to-end tests, all against those backends;
# then checks the docs against the code (deploy/check-docs.py); then fuzzes the public API from
# its OpenAPI document (deploy/fuzz-api.sh), and drives the web
# console in Chromium (deploy/browser-test.sh).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash deploy/backends.sh up

# The stacks some tests start with deploy/run-local.sh listen on fixed gRPC ports: 50051-50073
# moved by PORT_OFFSET (the tests: scale_out 2000, chaos 4000, the short soak and native_traces
# 6000, the soak on the clusters 7000; `loadtest chaos` and `loadtest soak` run by hand: 3000
# and 5000), all inside Linux's ephemeral range (32768-60999), where any outgoing connection of
# the run may already hold one as its local port ("Address already in use", seen once in a
# fresh-clone run). Reserving them keeps the kernel from handing them out; a machine that does
# not let us is told, and runs anyway.
reserved=50051-50099,52051-52099,53051-53099,54051-54099,55051-55099,56051-56099,57051-57099
if ! sysctl -qw net.ipv4.ip_local_reserved_ports="$reserved" 2>/dev/null; then
  echo "note: could not reserve ports $reserved (net.ipv4.ip_local_reserved_ports); a stack's" \
    "fixed gRPC port may collide with an outgoing connection's" >&2
fi

# A test run stops what it started: the scale-out backends some tests start (the Redis
# Cluster, the Kafka cluster, the Postgres replica, the Cassandra with lowered tombstone
# thresholds) are stopped at the end, whatever the
# outcome, unless they already ran before the run. Their data stays, as with
# `deploy/backends.sh down NAME`. The four standard backends stay up for the next run.
already_running=()
for extra in redis-cluster kafka-cluster pg-replica cassandra-tombstones; do
  if bash deploy/backends.sh status "$extra" >/dev/null 2>&1; then already_running+=("$extra"); fi
done
stop_what_we_started() {
  local extra
  for extra in redis-cluster kafka-cluster pg-replica cassandra-tombstones; do
    [[ " ${already_running[*]} " == *" $extra "* ]] || bash deploy/backends.sh down "$extra"
  done
}
trap stop_what_we_started EXIT

# Tests leave their databases, keyspaces and topics behind (a failed one's data stays for
# whoever looks into it); piled up over runs they cost the backends at rest and slow every
# test after them. sweep-test-stores drops them (see its header): before the tests, for what
# an earlier run left, and after each stage. `--workspace` resolves features as the runs below
# do, so it compiles nothing twice.
sweep_test_stores() {
  echo "==> dropping the tests' stores (sweep-test-stores)"
  cargo build --workspace --locked --quiet --bin sweep-test-stores
  "${CARGO_TARGET_DIR:-target}/debug/sweep-test-stores"
}
sweep_test_stores

echo "==> cargo test --workspace"
# Test binaries run one after another; inside one, a few threads keep both cores busy while
# tests wait on the backends, without piling up Cassandra schema changes.
cargo test --workspace --locked --no-fail-fast -- --test-threads="${CHIRP_TEST_THREADS:-4}"

sweep_test_stores

echo "==> the docs check (deploy/check-docs.py)"
# Every path, Rust item, variable, metric, port, command and flag the docs name must exist, and
# every measured table must be what its committed run renders; right after the workspace's
# tests, whose debug binaries answer the command lines' --help. The self-test proves the check
# can fail (a renamed function, a deleted linked file).
python3 deploy/check-docs.py
python3 deploy/check-docs.py --self-test

echo "==> the Redis tests again on a Redis Cluster (CHIRP_TEST_REDIS_CLUSTER=1)"
# The home-timeline store's behaviours and the end-to-end tests of push, pull, rebuild, the
# delivery records and the rate limiter, with every service's Redis on the 3-master cluster of
# `deploy/backends.sh up redis-cluster` (the tests start it): the keys then spread over three
# masters, and a batch over many users is split per slot.
# `--workspace --test NAME` (not `-p`) resolves features as the run above did, so nothing is
# compiled again.
CHIRP_TEST_REDIS_CLUSTER=1 cargo test --workspace --locked --no-fail-fast --test timeline_service \
  -- --test-threads="${CHIRP_TEST_THREADS:-4}" store::
# Two threads, not four: under a loaded machine's delays the rate limiter (100 ms deadline, then
# it lets writes through) and the 3 s read deadline were seen to give way with four.
CHIRP_TEST_REDIS_CLUSTER=1 cargo test --workspace --locked --no-fail-fast --test api \
  -- --test-threads=2 slice:: hybrid:: rate_limits:: \
  console::a_tweet_s_delivery metrics::pushes_cache_hits api_contract::timeline_pages
sweep_test_stores

echo "==> fuzzing the API (deploy/fuzz-api.sh)"
bash deploy/fuzz-api.sh

echo "==> the web console in a browser (deploy/browser-test.sh)"
bash deploy/browser-test.sh
