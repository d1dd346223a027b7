#!/usr/bin/env bash
# Runs resetd's whole test suite, installing what the tests need first.
# On CI (CI=true) tests that need an external service fail instead of skipping when it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== test dependencies"
# A real SMTP server for crates/resetd/tests/smtp.rs (driven by scripts/smtp-test-server.py).
if ! python3 -c 'import aiosmtpd' >/dev/null 2>&1; then
  python3 -m pip install --quiet --disable-pip-version-check 'aiosmtpd>=1.4,<2'
fi

echo "== toolchain checks"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "== services"
./scripts/postgres.sh

echo "== tests"
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --locked --no-fail-fast
else
  cargo test --workspace --locked --no-fail-fast
fi

echo "== browser tests (hosted reset page in headless Chromium)"
./scripts/browser-tests.sh
