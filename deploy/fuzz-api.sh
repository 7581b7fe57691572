#!/usr/bin/env bash
# deploy/fuzz-api.sh — fuzz the public API from its own OpenAPI document.
#
# Installs schemathesis in a virtualenv under .backends/ (once), then runs the e2e test that
# spawns a whole stack in process and points schemathesis at the gateway's /openapi.json. It
# fails on any 5xx and on any response the document does not describe. The backends must be
# up (deploy/backends.sh up). CHIRP_FUZZ_EXAMPLES bounds the cases per operation (default 50).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

VENV=${CHIRP_BACKENDS_DIR:-$PWD/.backends}/schemathesis
if [[ ! -x $VENV/bin/st ]]; then
  echo "==> installing schemathesis into $VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet 'schemathesis>=4,<5'
fi

echo "==> schemathesis against a live stack"
SCHEMATHESIS=$VENV/bin/st cargo test -p chirp-e2e --test api --locked -- \
  --ignored --exact openapi::schemathesis_finds_no_server_error_and_no_undocumented_response \
  --nocapture
