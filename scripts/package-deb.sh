#!/usr/bin/env bash
# Builds resetd's Debian package from a release binary, with dpkg-deb (no cargo-deb to compile):
#   scripts/package-deb.sh [BINARY]   (default: target/release/resetd, built if missing)
# Writes target/package/resetd_VERSION_ARCH.deb and prints its path on the last line.
# Contents: /usr/bin/resetd, the hardened unit /lib/systemd/system/resetd.service,
# /etc/resetd/resetd.toml (a conffile, kept on upgrade), the docs under /usr/share/doc/resetd.
set -euo pipefail
cd "$(dirname "$0")/.."

bin="${1:-target/release/resetd}"
if [ ! -x "$bin" ]; then
  cargo build --release --locked -p resetd
fi
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
arch=$(dpkg --print-architecture)
root=target/package/root
out="target/package/resetd_${version}_${arch}.deb"
rm -rf "$root"
install -d "$root/DEBIAN" "$root/usr/bin" "$root/lib/systemd/system" "$root/etc/resetd" \
  "$root/usr/share/doc/resetd"
install -m 0755 "$bin" "$root/usr/bin/resetd"
strip --strip-debug "$root/usr/bin/resetd" 2>/dev/null || true
install -m 0644 packaging/resetd.service "$root/lib/systemd/system/resetd.service"
install -m 0644 packaging/resetd.toml "$root/etc/resetd/resetd.toml"
for doc in README.md docs/operations.md docs/configuration.md docs/security.md; do
  install -m 0644 "$doc" "$root/usr/share/doc/resetd/"
done
printf 'resetd\nCopyright: the resetd authors\nLicense: Apache-2.0 (/usr/share/common-licenses/Apache-2.0)\n' \
  >"$root/usr/share/doc/resetd/copyright"
echo /etc/resetd/resetd.toml >"$root/DEBIAN/conffiles"

# The libraries the binary links, as package names (what dpkg-shlibdeps would find).
depends=$(ldd "$root/usr/bin/resetd" | awk '/=> \//{print $3}' | xargs -r dpkg -S 2>/dev/null \
  | cut -d: -f1 | sort -u | paste -sd, - | sed 's/,/, /g')
size=$(du -sk "$root" | cut -f1)
cat >"$root/DEBIAN/control" <<CONTROL
Package: resetd
Version: ${version}
Architecture: ${arch}
Maintainer: resetd maintainers <resetd@localhost>
Installed-Size: ${size}
Depends: ${depends:-libc6}
Section: net
Priority: optional
Homepage: https://github.com/resetd/resetd
Description: self-hosted password reset and account recovery service
 resetd sends password reset links, checks new passwords against a policy and
 speaks the reset APIs of several products. The package installs a hardened
 systemd unit (not started: set public_url in /etc/resetd/resetd.toml first).
CONTROL

# Reload systemd's view of units when it runs; the service is enabled by the operator.
cat >"$root/DEBIAN/postinst" <<'POSTINST'
#!/bin/sh
set -e
if [ -d /run/systemd/system ]; then
  systemctl daemon-reload >/dev/null 2>&1 || true
fi
POSTINST
cat >"$root/DEBIAN/postrm" <<'POSTRM'
#!/bin/sh
set -e
if [ -d /run/systemd/system ]; then
  systemctl daemon-reload >/dev/null 2>&1 || true
fi
POSTRM
chmod 0755 "$root/DEBIAN/postinst" "$root/DEBIAN/postrm"
dpkg-deb --root-owner-group --build "$root" "$out" >/dev/null
echo "$out"
