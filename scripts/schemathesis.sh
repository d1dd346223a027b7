#!/usr/bin/env bash
# Property-based API tests: schemathesis (PyPI) generates requests from resetd's own
# /openapi.json and checks every answer: no 5xx, documented status codes, documented content
# types, bodies that match the response schemas, and bad data refused / good data accepted.
# Starts the debug binary (built first; RESETD_BIN names another) with the per-IP limits
# off and cheap Argon2, authenticates as the bootstrap admin key, exits non-zero on any failure.
# SCHEMATHESIS_MAX_EXAMPLES (default 100) bounds the examples per operation.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v schemathesis >/dev/null 2>&1; then
  python3 -m pip install --quiet --disable-pip-version-check 'schemathesis>=4.32,<5'
fi
if [ -z "${RESETD_BIN:-}" ]; then
  cargo build --quiet --locked -p resetd   # a no-op when the test run built it already
fi
BIN="${RESETD_BIN:-target/debug/resetd}"

WORK="$(mktemp -d)"
PID=""
cleanup() {
  [ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT

cat >"$WORK/resetd.toml" <<'TOML'
[http]
recovery_per_minute = 0
auth_per_minute = 0
password_check_per_minute = 0
[argon2]
m_cost = 1024
t_cost = 1
p_cost = 1
TOML
RESETD_LOG=warn NO_COLOR=1 RESETD_MANAGEMENT_LISTEN=127.0.0.1:0 "$BIN" --config "$WORK/resetd.toml" --data-dir "$WORK" \
  serve --listen 127.0.0.1:0 >"$WORK/stdout" 2>"$WORK/stderr" &
PID=$!
for _ in $(seq 1 100); do
  grep -q '^resetd listening on ' "$WORK/stdout" 2>/dev/null && break
  sleep 0.1
done
BASE="$(sed -n 's/^resetd listening on \([^ ]*\).*/\1/p' "$WORK/stdout")"
KEY="$(sed -n 's/.*(shown only once): *//p' "$WORK/stdout" | tr -d '[:space:]')"
if [ -z "$BASE" ] || [ -z "$KEY" ]; then
  echo "resetd did not start:" >&2
  cat "$WORK/stdout" "$WORK/stderr" >&2
  exit 1
fi

status=0
schemathesis --no-color --config-file scripts/schemathesis.toml run "$BASE/openapi.json" \
  --header "Authorization: Bearer $KEY" \
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,negative_data_rejection,positive_data_acceptance \
  --phases examples,coverage,fuzzing \
  --max-examples "${SCHEMATHESIS_MAX_EXAMPLES:-100}" \
  --workers 1 \
  --request-timeout 10 \
  --seed 1 \
  || status=$?
if grep -E 'panicked|ERROR' "$WORK/stderr" >/dev/null; then
  echo "resetd logged errors during the run:" >&2
  grep -E 'panicked|ERROR' "$WORK/stderr" | head -20 >&2
  status=1
fi
exit "$status"
