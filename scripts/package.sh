#!/usr/bin/env bash
# Builds the packages: dist/galerad_VERSION_ARCH.deb and dist/galerad-VERSION-linux-ARCH.tar.gz,
# each with the binary, the systemd units, commented example configs and the man page.
#   scripts/package.sh [--binary FILE]   (default: build ./galerad with compile.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
binary=""
while [ $# -gt 0 ]; do
  case "$1" in
    --binary) binary="$2"; shift ;;
    -h|--help) sed -n '2,4p' "$0"; exit 0 ;;
    *) echo "package.sh: unknown argument '$1' (expected --binary FILE)" >&2; exit 2 ;;
  esac
  shift
done
if [ -z "$binary" ]; then bash compile.sh --out galerad; binary=galerad; fi
[ -x "$binary" ] || { echo "package.sh: $binary is not an executable" >&2; exit 2; }
version=$(node_modules/.bin/bun -e 'console.log(require("./package.json").version)')
arch=$(dpkg --print-architecture)
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
stage="$root/galerad"
install -D -m 0755 "$binary" "$stage/usr/bin/galerad"
install -D -m 0644 packaging/systemd/galerad-proxy.service "$stage/lib/systemd/system/galerad-proxy.service"
install -D -m 0644 packaging/systemd/galerad-healthcheck.service "$stage/lib/systemd/system/galerad-healthcheck.service"
install -D -m 0644 packaging/systemd/mariadb.service.d/galerad-maintenance.conf \
  "$stage/usr/share/doc/galerad/examples/mariadb.service.d/galerad-maintenance.conf"
install -D -m 0644 packaging/etc/proxy.yaml "$stage/etc/galerad/proxy.yaml"
install -D -m 0644 packaging/etc/healthcheck.yaml "$stage/etc/galerad/healthcheck.yaml"
install -D -m 0644 README.md "$stage/usr/share/doc/galerad/README.md"
install -D -m 0644 LICENSE "$stage/usr/share/doc/galerad/copyright"
mkdir -p "$stage/usr/share/man/man1"
node_modules/.bin/bun scripts/manpage.ts "$stage/usr/bin/galerad" "$stage/usr/share/man/man1/galerad.1"
gzip -9n "$stage/usr/share/man/man1/galerad.1"
mkdir -p dist
# The tarball: the same tree, for hosts without dpkg.
tar -C "$stage" --owner=0 --group=0 -czf "dist/galerad-$version-linux-$arch.tar.gz" .
mkdir -p "$stage/DEBIAN"
install -m 0755 packaging/deb/postinst packaging/deb/prerm packaging/deb/postrm "$stage/DEBIAN/"
printf '/etc/galerad/proxy.yaml\n/etc/galerad/healthcheck.yaml\n' >"$stage/DEBIAN/conffiles"
size=$(du -sk --exclude=DEBIAN "$stage" | cut -f1)
cat >"$stage/DEBIAN/control" <<CONTROL
Package: galerad
Version: $version
Architecture: $arch
Maintainer: galerad developers <galerad@localhost>
Installed-Size: $size
Depends: adduser, libc6
Section: database
Priority: optional
Homepage: https://github.com/galerad/galerad
Description: single-writer routing for MariaDB/Percona Galera clusters
 galerad proxy routes every client to one sticky, healthy Galera node and agrees on it with
 its peers; galerad healthcheck is the agent on each node; discover and bootstrap help run
 the cluster.
CONTROL
dpkg-deb --root-owner-group --build "$stage" "dist/galerad_${version}_${arch}.deb" >/dev/null
echo "dist/galerad_${version}_${arch}.deb"
echo "dist/galerad-$version-linux-$arch.tar.gz"
