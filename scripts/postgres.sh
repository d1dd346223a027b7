#!/usr/bin/env bash
# Makes the PostgreSQL server of the test suites available, idempotently (called by test.sh).
#
# - Already answering at 127.0.0.1:5432 (or RESETD_TEST_DATABASE_URL is set): nothing to do.
# - Installed but stopped (Debian's postgresql-common): starts the clusters.
# - Not installed, CI=true, root with apt-get: installs PostgreSQL, allows the `postgres` role
#   to connect from 127.0.0.1 to the database `test` without a password (trust, like the kind
#   server of the development machine) and creates that database. Nothing secret is set or
#   exported.
# - Otherwise it says so: the PostgreSQL tests then skip with a notice, or fail under CI=true.
set -uo pipefail

say() { echo "== postgres: $*"; }

ready() {
  if command -v pg_isready >/dev/null 2>&1; then
    pg_isready -q -h 127.0.0.1 -p 5432 -t 2
  else
    (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null
  fi
}

wait_ready() {
  for _ in $(seq 1 40); do
    ready && return 0
    sleep 0.25
  done
  return 1
}

if [ -n "${RESETD_TEST_DATABASE_URL:-}" ]; then
  say "using RESETD_TEST_DATABASE_URL (not managed here)"
  exit 0
fi

if ready; then
  say "answering at 127.0.0.1:5432"
  exit 0
fi

fresh=0
if ! command -v pg_ctlcluster >/dev/null 2>&1 && [ "${CI:-}" = "true" ] \
  && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  say "installing PostgreSQL (CI)"
  apt-get update -qq >/dev/null \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null \
    && fresh=1
fi

if command -v pg_lsclusters >/dev/null 2>&1; then
  # Start every cluster that is down.
  pg_lsclusters --no-header 2>/dev/null | while read -r version name port status _; do
    if [ "$status" != "online" ]; then
      say "starting cluster $version/$name (port $port)"
      pg_ctlcluster --skip-systemctl-redirect "$version" "$name" start \
        || say "could not start cluster $version/$name"
    fi
  done
fi

if [ "$fresh" = 1 ]; then
  version=$(pg_lsclusters --no-header | awk 'NR==1 {print $1}')
  hba="/etc/postgresql/$version/main/pg_hba.conf"
  if [ -f "$hba" ] && ! grep -q '^host[[:space:]]\+test[[:space:]]\+postgres[[:space:]]\+127.0.0.1/32[[:space:]]\+trust' "$hba"; then
    sed -i '1i host test postgres 127.0.0.1/32 trust' "$hba"
    pg_ctlcluster --skip-systemctl-redirect "$version" main reload
  fi
  wait_ready
  su postgres -c "psql -qAtc \"SELECT 1 FROM pg_database WHERE datname = 'test'\"" | grep -q 1 \
    || su postgres -c "createdb test"
fi

if wait_ready; then
  say "answering at 127.0.0.1:5432"
else
  say "not reachable at 127.0.0.1:5432: the PostgreSQL tests will SKIP (and FAIL with CI=true)"
fi
exit 0
