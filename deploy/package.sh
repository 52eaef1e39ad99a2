#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Builds a Debian package of weir (for Debian 12, the machine's architecture) from this checkout:
# a release build installed under /usr, the systemd units, weir-prepare, the man page, the
# example configuration, payload rules and defaults as conffiles under /etc, and deploy/'s
# ClickHouse, Prometheus and Grafana files under /usr/share/weir. Dependencies come from
# dpkg-shlibdeps. Needs the build dependencies (deploy/install-deps.sh) and dpkg-dev.
# usage: deploy/package.sh [--build DIR] [OUTDIR]   (default: build-deb/; prints the .deb's path)
# --build packages an existing release build configured with --prefix=/usr (tests/run.sh's
# build/), instead of making one in build-deb/build.
set -euo pipefail
cd "$(dirname "$0")/.."
build=build-deb/build
if [ "${1:-}" = --build ]; then
  [ $# -ge 2 ] || { echo "package: --build needs a meson build directory" >&2; exit 2; }
  build=$2
  shift 2
  [ -f "$build/build.ninja" ] || { echo "package: $build is not a meson build directory" >&2; exit 2; }
  opts=$(meson introspect --buildoptions "$build" | python3 -c '
import json, sys
o = {x["name"]: x["value"] for x in json.load(sys.stdin)}
print(o["prefix"], o["buildtype"])')
  [ "$opts" = "/usr release" ] || {
    echo "package: $build is configured with prefix and buildtype \"$opts\"; a package needs \"/usr release\"" >&2
    exit 2
  }
fi
out=$(realpath -m "${1:-build-deb}")
[ -f "$build/build.ninja" ] || meson setup "$build" --buildtype=release -Dtests=false --prefix=/usr > /dev/null
ninja -C "$build" app/weir/weir > /dev/null
version=$(meson introspect --projectinfo "$build" | python3 -c 'import json,sys; print(json.load(sys.stdin)["version"])')
arch=$(dpkg --print-architecture)
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
root="$stage/root"
DESTDIR="$root" meson install -C "$build" --no-rebuild --quiet > /dev/null
install -D -m 0755 deploy/systemd/weir-prepare "$root/usr/lib/weir/weir-prepare"
deploy/systemd/render-units /usr "$root/lib/systemd/system"
sed -i 's|file:///usr/share/doc/weir/README.md|file:///usr/share/doc/weir/README.md.gz|' "$root"/lib/systemd/system/weir*.service
install -D -m 0644 deploy/systemd/weir.default "$root/etc/default/weir"
install -D -m 0644 deploy/weir.json.example "$root/etc/weir/weir.json"
install -D -m 0644 deploy/rules/apps.json "$root/etc/weir/rules/apps.json"
for d in clickhouse prometheus grafana; do
  mkdir -p "$root/usr/share/weir/$d"
  cp -r deploy/$d/. "$root/usr/share/weir/$d/"
done
# Debian's places: compressed man page and documents, the copyright file.
gzip -9n "$root/usr/share/man/man8/weir.8"
gzip -9n "$root/usr/share/doc/weir/README.md" "$root/usr/share/doc/weir/SIZING.md"
{
  echo "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/"
  echo "Upstream-Name: weir"
  echo
  echo "Files: *"
  echo "License: BSD-3-Clause"
  echo
  sed 's/^$/./; s/^/ /' LICENSE
} > "$root/usr/share/doc/weir/copyright"
strip --strip-unneeded --remove-section=.comment --remove-section=.note "$root/usr/bin/weir"
find "$root" -type d -exec chmod 0755 {} +

# Shared-library dependencies, as dpkg-shlibdeps reads them off the binary.
mkdir -p "$stage/src/debian"
printf 'Source: weir\n\nPackage: weir\nArchitecture: any\n' > "$stage/src/debian/control"
depends=$(cd "$stage/src" && dpkg-shlibdeps -O -e"$root/usr/bin/weir" 2> /dev/null | sed -n 's/^shlibs:Depends=//p')
[ -n "$depends" ] || { echo "package: dpkg-shlibdeps found no dependencies" >&2; exit 1; }
size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
mkdir -p "$root/DEBIAN"
sed -e "s|@VERSION@|$version-1|" -e "s|@ARCH@|$arch|" -e "s|@DEPENDS@|$depends|" -e "s|@SIZE@|$size|" \
  deploy/debian/control > "$root/DEBIAN/control"
(cd "$root" && find etc -type f | sed 's|^|/|' | sort) > "$root/DEBIAN/conffiles"
install -m 0755 deploy/debian/postinst deploy/debian/prerm deploy/debian/postrm "$root/DEBIAN/"
(cd "$root" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | sort -z | xargs -0 md5sum) > "$root/DEBIAN/md5sums"
mkdir -p "$out"
deb="$out/weir_${version}-1_${arch}.deb"
dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" > /dev/null
echo "$deb"
