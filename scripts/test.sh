#!/usr/bin/env bash
# Runs resetd's whole test suite, installing what the tests need first.
# On CI (CI=true) tests that need an external service fail instead of skipping when it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== test dependencies"
# A real SMTP server for crates/resetd/tests/api/smtp.rs (driven by scripts/smtp-test-server.py).
if ! python3 -c 'import aiosmtpd' >/dev/null 2>&1; then
  python3 -m pip install --quiet --disable-pip-version-check 'aiosmtpd>=1.4,<2'
fi
# schemathesis for scripts/schemathesis.sh (property-based tests of the OpenAPI contract).
if ! command -v schemathesis >/dev/null 2>&1; then
  python3 -m pip install --quiet --disable-pip-version-check 'schemathesis>=4.32,<5'
fi

# A real OTLP/HTTP receiver for crates/resetd/tests/api/traces.rs (scripts/otlp-receiver.py
# decodes the protobuf with the OpenTelemetry protocol package).
if ! python3 -c 'from opentelemetry.proto.collector.trace.v1 import trace_service_pb2' >/dev/null 2>&1; then
  python3 -m pip install --quiet --disable-pip-version-check 'opentelemetry-proto>=1.20,<2'
fi

# Reference password-hash generators for crates/resetd/tests/api/import.rs.
if ! python3 -c 'import passlib, bcrypt, argon2' >/dev/null 2>&1; then
  python3 -m pip install --quiet --disable-pip-version-check 'passlib>=1.7,<2' 'bcrypt>=4,<6' 'argon2-cffi>=21,<26'
fi
# The reference Standard Webhooks library for crates/resetd-apps/tests/webhook (receiver.py).
if ! python3 -c 'import standardwebhooks' >/dev/null 2>&1; then
  python3 -m pip install --quiet --disable-pip-version-check 'standardwebhooks>=1.1,<2'
fi
if ! command -v htpasswd >/dev/null 2>&1 || ! command -v openssl >/dev/null 2>&1; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq && $SUDO apt-get install -y -qq apache2-utils openssl
fi

# OpenLDAP for crates/resetd-ldap's tests: each test starts a private slapd on a free loopback
# port with a generated configuration (resetd_ldap::testing::Slapd) and checks the passwords it
# wrote with the real ldapwhoami. Debian starts the package's own slapd on port 389 at install;
# no test uses that one.
if ! [ -x /usr/sbin/slapd ] || ! command -v ldapwhoami >/dev/null 2>&1; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq && $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slapd ldap-utils
fi
# Samba's AD domain controller for the Active Directory mode's test (crates/resetd-ldap/tests/
# slapd/samba_ad.rs provisions a domain in a temporary directory and runs only its LDAP service,
# on 127.0.0.1:389 and :636, which Samba does not let one move).
if ! command -v samba >/dev/null 2>&1 || ! command -v samba-tool >/dev/null 2>&1; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq && $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq samba samba-ad-dc samba-ad-provision winbind
fi

# A private network namespace for the IPv6 /64 test in crates/resetd/tests/api/ratelimit_ipv6.rs
# (`unshare -n` and `ip`; the test must run as root).
if ! command -v unshare >/dev/null 2>&1 || ! command -v ip >/dev/null 2>&1; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq && $SUDO apt-get install -y -qq util-linux iproute2
fi

# The package and image checks of scripts/package-test.sh: podman builds the OCI image, curl
# probes /readyz, systemd-analyze verifies the unit.
if ! command -v podman >/dev/null 2>&1 || ! command -v curl >/dev/null 2>&1 \
  || ! command -v systemd-analyze >/dev/null 2>&1; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq && $SUDO apt-get install -y -qq podman curl systemd
fi

echo "== toolchain checks"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
# The core stays free of I/O (issue 14): no runtime, web, database or mail crate among its normal
# dependencies, direct or transitive.
core_deps=$(cargo tree -p resetd-core -e normal --locked --prefix none --format '{p}')
core_io=$(printf '%s\n' "$core_deps" | awk '{print $1}' \
  | grep -Ex 'tokio|axum|hyper|rusqlite|postgres|tokio-postgres|lettre' | sort -u | tr '\n' ' ' || true)
if [ -n "$core_io" ]; then
  echo "resetd-core must not depend on I/O crates (move that code to an adapter crate): $core_io" >&2
  exit 1
fi

echo "== services"
./scripts/postgres.sh

echo "== vendor-client test dependencies (Node.js 18+, the vendors' npm clients)"
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq && $SUDO apt-get install -y -qq nodejs npm
fi
# `npm ci` installs exactly the committed lock file; skipped when it is already installed.
(cd tests/vendor-clients && { [ node_modules/.package-lock.json -nt package-lock.json ] || npm ci --no-audit --no-fund; })

# A real unleash-server 8.2.0 and the Node.js 22 it needs, for crates/resetd-apps/tests/unleash.
(cd tests/unleash-server && { [ node_modules/.package-lock.json -nt package-lock.json ] || npm ci --no-audit --no-fund; })

echo "== tests"
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --locked --no-fail-fast
else
  cargo test --workspace --locked --no-fail-fast
fi

echo "== SQLite backup and restore recipe (docs/operations.md)"
./scripts/backup-test.sh target/debug/resetd

# The lean build (no OpenTelemetry) still compiles and passes its own unit tests.
cargo test -p resetd --bins --no-default-features --locked

echo "== packages (Debian package and OCI image, installed and started)"
./scripts/package-test.sh

echo "== API fuzzing (schemathesis against /openapi.json)"
./scripts/schemathesis.sh

echo "== browser tests (hosted reset page in headless Chromium)"
./scripts/browser-tests.sh

echo "== fuzzing (short run of every cargo-fuzz target)"
./scripts/fuzz.sh
