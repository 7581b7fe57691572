#!/usr/bin/env bash
# deploy/browser-test.sh — the web console, tested in a real browser.
#
# Installs Debian's Chromium and Node.js (apt, once) and the pinned playwright-core
# (npm ci in e2e/browser; no browser download: it drives /usr/bin/chromium), then runs the
# e2e test that starts a whole stack in process and points e2e/browser/console.test.mjs at
# its gateway. The backends must be up (deploy/backends.sh up).
#   CHIRP_SCREENSHOTS=docs deploy/browser-test.sh   also saves docs/console-*.png
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

need=()
command -v chromium >/dev/null || need+=(chromium)
command -v node >/dev/null || need+=(nodejs)
command -v npm >/dev/null || need+=(npm)
if (( ${#need[@]} )); then
  echo "==> installing ${need[*]} (apt)"
  SUDO=; (( EUID == 0 )) || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" fonts-dejavu-core
fi
node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)' \
  || { echo "✘ playwright-core needs Node.js 20 or later; this is $(node --version)" >&2; exit 1; }

if [[ ! -d e2e/browser/node_modules/playwright-core ]]; then
  echo "==> npm ci (e2e/browser)"
  (cd e2e/browser && npm ci --no-audit --no-fund)
fi

if [[ -n ${CHIRP_SCREENSHOTS:-} ]]; then
  mkdir -p "$CHIRP_SCREENSHOTS"
  CHIRP_SCREENSHOTS=$(cd "$CHIRP_SCREENSHOTS" && pwd)
  export CHIRP_SCREENSHOTS
fi

echo "==> the console in Chromium"
cargo test -p chirp-e2e --test browser --locked -- --ignored --nocapture
