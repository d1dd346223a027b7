#!/usr/bin/env bash
# Tests the SQLite backup and restore recipe of docs/operations.md: an online backup of a running
# resetd with `sqlite3 .backup` and with `VACUUM INTO`, each checked with PRAGMA integrity_check,
# and one restored into a fresh data directory (with the same outbox key) that a new server
# starts on and still knows the person created before the backup.
#   scripts/backup-test.sh [BINARY]   (default: target/debug/resetd)
set -euo pipefail
cd "$(dirname "$0")/.."
bin="${1:-target/debug/resetd}"
command -v sqlite3 >/dev/null || { echo "backup-test: sqlite3 is missing" >&2; exit 1; }
work=$(mktemp -d)
pid=""
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# Starts a server on data directory $1; sets $pid, $base and $key (the first start's admin key).
start() {
  local port mgmt
  port=$(free_port); mgmt=$(free_port)
  RESETD_MANAGEMENT_LISTEN="127.0.0.1:$mgmt" "$bin" --data-dir "$1" serve --listen "127.0.0.1:$port" \
    >"$1.log" 2>&1 &
  pid=$!
  for _ in $(seq 1 100); do grep -q '^resetd listening on ' "$1.log" && break; sleep 0.1; done
  grep -q '^resetd listening on ' "$1.log" || { cat "$1.log"; exit 1; }
  base="http://127.0.0.1:$port"
  key=$(sed -n 's/.*(shown only once): //p' "$1.log")
}
stop() { kill -TERM "$pid"; wait "$pid" || true; pid=""; }

start "$work/live"
admin_key=$key
curl -fsS -o /dev/null -H "authorization: Bearer $admin_key" -H 'content-type: application/json' \
  -d '{"login":"backed-up","email":"backed-up@example.com"}' "$base/v1/default/people"

# Online, while the server runs and writes.
sqlite3 "$work/live/resetd.db" ".backup '$work/backup.db'"
sqlite3 "$work/live/resetd.db" "VACUUM INTO '$work/vacuumed.db'"
for f in backup.db vacuumed.db; do
  [ "$(sqlite3 "$work/$f" 'PRAGMA integrity_check')" = ok ] || { echo "$f is damaged" >&2; exit 1; }
  [ "$(sqlite3 "$work/$f" "SELECT count(*) FROM person WHERE login = 'backed-up'")" = 1 ]
done
stop

# Restore: a fresh data directory with the backup as resetd.db and the same outbox key file.
mkdir -p "$work/restored"
install -m 0600 "$work/vacuumed.db" "$work/restored/resetd.db"
install -m 0600 "$work/live/outbox.key" "$work/restored/outbox.key"
start "$work/restored"
[ -z "$key" ] || { echo "the restored server bootstrapped a new tenant" >&2; exit 1; }
found=$(curl -fsS -H "authorization: Bearer $admin_key" "$base/v1/default/people?login=backed-up")
echo "$found" | grep -q '"backed-up@example.com"' || { echo "restored server lacks the person: $found" >&2; exit 1; }
stop
echo "backup-test: online .backup and VACUUM INTO are consistent; the restore serves the data"
