#!/usr/bin/env bash
# Runs the browser tests (tests/browser: Playwright driving Debian's headless Chromium) against
# the built resetd binary: the hosted page, and Unleash 8.2.0's own UI (from the unleash-server
# npm package, served by tests/browser/unleash-proxy.js) on resetd's Unleash dialect. Installs
# what they need first, only when missing: Debian's chromium and chromium-driver, and the npm
# packages pinned in tests/browser's lock file.
# Screenshots land in test-artifacts/screenshots/. With CI=true a missing browser fails the run;
# elsewhere the tests skip with a visible message.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing ${missing[*]} from Debian"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "cannot install ${missing[*]} here (needs root and apt-get)"
  fi
fi

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  if [ "${CI:-}" = "true" ]; then
    echo "node and npm are needed for the browser tests; CI=true, so this is a failure" >&2
    exit 1
  fi
  echo "SKIPPING the browser tests: node and npm not found"
  exit 0
fi

(
  cd tests/browser
  if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    npm ci --no-audit --no-fund
  fi
)

cargo build -p resetd --locked
RESETD_BIN="$PWD/target/debug/resetd" node --test --test-concurrency=1 \
  tests/browser/page.test.js tests/browser/unleash-ui.test.js
