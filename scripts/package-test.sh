#!/usr/bin/env bash
# Builds resetd's release binary once, then checks the two ways it ships (called by test.sh):
#  1. the Debian package: built (scripts/package-deb.sh), installed with dpkg -i, its unit checked
#     with systemd-analyze verify, and the binary started the way the unit's ExecStart does, as
#     a DynamicUser-like throwaway uid with the StateDirectory and a credentials directory (no
#     systemd as PID 1 here); /readyz must answer, SIGTERM must stop it cleanly;
#  2. the OCI image (packaging/Containerfile): built with podman, its filesystem exported and the
#     binary run from it with chroot as the image's non-root user (podman run cannot start
#     containers on these machines, see docs/operations.md); /readyz must answer.
# Prints how long each step took. With CI=true a missing tool fails the script.
set -euo pipefail
cd "$(dirname "$0")/.."
started=$SECONDS
step() { echo "== package-test: $1 (+$((SECONDS - started)) s)"; }
missing() {
  if [ "${CI:-}" = "true" ]; then echo "package-test: $1 is missing" >&2; exit 1; fi
  echo "package-test: skipping, $1 is missing"
}
work=$(mktemp -d)
# The service runs as another uid below and reads its credentials directory inside $work.
chmod 0711 "$work"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  dpkg --purge resetd >/dev/null 2>&1 || true
  rm -rf "$work" /var/lib/resetd-package-test
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# Starts "$@" in the background with its output in $work/$name.log, waits for the public
# listener's line, checks /readyz on $mgmt, stops it with SIGTERM and checks the exit status.
serve_and_probe() {
  local name=$1 mgmt=$2; shift 2
  "$@" >"$work/$name.log" 2>&1 &
  local pid=$!
  pids+=("$pid")
  for _ in $(seq 1 150); do
    grep -q '^resetd listening on ' "$work/$name.log" && break
    kill -0 "$pid" 2>/dev/null || { cat "$work/$name.log"; echo "$name exited early" >&2; exit 1; }
    sleep 0.2
  done
  grep -q '^resetd listening on ' "$work/$name.log" || { cat "$work/$name.log"; exit 1; }
  local ready
  ready=$(curl -fsS "http://127.0.0.1:$mgmt/readyz")
  echo "$name /readyz: $ready"
  kill -TERM "$pid"
  local status=0
  wait "$pid" || status=$?
  [ "$status" -eq 0 ] || { cat "$work/$name.log"; echo "$name exited with $status after SIGTERM" >&2; exit 1; }
}

step "release build"
cargo build --release --locked -p resetd
bin=target/release/resetd

step "Debian package"
deb=$(./scripts/package-deb.sh "$bin" | tail -1)
dpkg-deb --info "$deb" | sed -n '/Package:/,/Depends:/p'
dpkg -i "$deb" >/dev/null
test -x /usr/bin/resetd
dpkg -L resetd | grep -qx /lib/systemd/system/resetd.service
unit=/lib/systemd/system/resetd.service

if command -v systemd-analyze >/dev/null 2>&1; then
  step "systemd-analyze verify"
  # With the credentials a deployment adds in a drop-in, which verify checks too.
  creds_src="$work/credstore"
  mkdir -p "$creds_src" /etc/systemd/system/resetd.service.d
  printf 'x\n' >"$creds_src/smtp_password"
  printf '[Service]\nLoadCredential=mail.smtp.password:%s\n' "$creds_src/smtp_password" \
    >/etc/systemd/system/resetd.service.d/package-test.conf
  verify=$(systemd-analyze verify "$unit" 2>&1 || true)
  rm -rf /etc/systemd/system/resetd.service.d/package-test.conf
  # Without systemd as PID 1, verify cannot reach a manager for the dependencies it names
  # (network-online.target...): those lines are not about this file.
  bad=$(printf '%s\n' "$verify" | grep -i 'resetd.service' || true)
  if [ -n "$bad" ]; then printf '%s\n' "$verify" >&2; echo "systemd-analyze verify: the unit has problems" >&2; exit 1; fi
  echo "systemd-analyze verify: no problem in resetd.service"
  systemd-analyze security --offline=true "$unit" 2>/dev/null | tail -1 || true
else
  missing systemd-analyze
fi

step "start as the unit's ExecStart does"
exec_start=$(sed -n 's/^ExecStart=//p' "$unit")
# DynamicUser: an unused uid; StateDirectory: /var/lib/resetd, mode 0700, owned by it.
uid=61999
state=/var/lib/resetd
test ! -e "$state" || { echo "$state exists on this machine; not touching it" >&2; exit 1; }
install -d -m 0700 -o "$uid" -g "$uid" "$state"
trap 'cleanup; rm -rf /var/lib/resetd' EXIT
# LoadCredential: a directory of files named after the settings, readable by the service only.
creds="$work/credentials"
install -d -m 0700 -o "$uid" -g "$uid" "$creds"
printf 'sqlite://%s/from-credential.db\n' "$state" >"$creds/database_url"
chown "$uid:$uid" "$creds/database_url"
chmod 0400 "$creds/database_url"
port=$(free_port); mgmt=$(free_port)
# shellcheck disable=SC2086 # ExecStart is split into words as systemd does (no quoting in it)
serve_and_probe deb "$mgmt" env -i PATH=/usr/bin:/bin STATE_DIRECTORY="$state" \
  CREDENTIALS_DIRECTORY="$creds" RESETD_LOG_FORMAT=json \
  RESETD_LISTEN="127.0.0.1:$port" RESETD_MANAGEMENT_LISTEN="127.0.0.1:$mgmt" \
  setpriv --reuid="$uid" --regid="$uid" --clear-groups --no-new-privs $exec_start
test -f "$state/from-credential.db" || { echo "the database URL credential was not used" >&2; exit 1; }
grep -q '"route"' "$work/deb.log" || grep -q '"message":"listening"' "$work/deb.log" \
  || { cat "$work/deb.log"; echo "no JSON log lines" >&2; exit 1; }
dpkg --purge resetd >/dev/null
test ! -e /usr/bin/resetd

if ! command -v podman >/dev/null 2>&1; then
  missing podman
  step "done"
  exit 0
fi
step "OCI image (podman build)"
ctx=packaging/build
rm -rf "$ctx"
install -d "$ctx/rootfs/usr/bin" "$ctx/rootfs/etc" "$ctx/rootfs/tmp" "$ctx/data"
chmod 1777 "$ctx/rootfs/tmp"
install -m 0755 "$bin" "$ctx/rootfs/usr/bin/resetd"
strip --strip-debug "$ctx/rootfs/usr/bin/resetd" 2>/dev/null || true
# The shared libraries the binary links (and the dynamic loader), at their paths.
for lib in $(ldd "$bin" | grep -o '/[^ ]*'); do
  install -D -m 0755 "$(readlink -f "$lib")" "$ctx/rootfs$lib"
done
printf 'root:x:0:0::/:/sbin/nologin\nresetd:x:10001:10001::/var/lib/resetd:/sbin/nologin\n' >"$ctx/rootfs/etc/passwd"
printf 'root:x:0:\nresetd:x:10001:\n' >"$ctx/rootfs/etc/group"
image=localhost/resetd:package-test
podman build --quiet -f packaging/Containerfile -t "$image" "$ctx" >/dev/null
user=$(podman image inspect --format '{{.Config.User}}' "$image")
[ "$user" = "10001:10001" ] || { echo "the image runs as '$user', not the non-root 10001" >&2; exit 1; }
podman image inspect --format '{{json .Config.Volumes}}' "$image" | grep -q /var/lib/resetd

step "OCI image (exported filesystem, chroot as $user)"
if podman run --rm "$image" --version >"$work/podman-run.log" 2>&1; then
  echo "podman run works here: $(cat "$work/podman-run.log")"
else
  echo "podman run does not work on this machine ($(tail -1 "$work/podman-run.log")); checking the exported filesystem instead"
fi
container=$(podman create "$image")
fs="$work/image"
mkdir -p "$fs"
podman export "$container" | tar -x -C "$fs"
podman rm "$container" >/dev/null
# The image's environment, as the container would get it.
mapfile -t image_env < <(podman image inspect --format '{{range .Config.Env}}{{println .}}{{end}}' "$image" | grep .)
port=$(free_port); mgmt=$(free_port)
serve_and_probe image "$mgmt" env -i "${image_env[@]}" \
  RESETD_LISTEN="127.0.0.1:$port" RESETD_MANAGEMENT_LISTEN="127.0.0.1:$mgmt" \
  chroot --userspec="$user" "$fs" /usr/bin/resetd serve
test -f "$fs/var/lib/resetd/resetd.db" || { echo "no database in the image's data volume" >&2; exit 1; }
[ "$(stat -c %u "$fs/var/lib/resetd/resetd.db")" = 10001 ]
podman rmi "$image" >/dev/null
rm -rf "$ctx"
step "done"
