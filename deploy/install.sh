#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Installs weir on a capture server: Debian packages, a release build installed under
# /usr/local, the systemd unit and its prepare step, /etc/default/weir and an example
# /etc/weir/weir.json (existing files are kept). Run as root from a checkout.
set -euo pipefail
cd "$(dirname "$0")/.."
prefix=${PREFIX:-/usr/local}
deploy/install-deps.sh
[ -f build-release/build.ninja ] || meson setup build-release --buildtype=release -Dtests=false --prefix "$prefix"
ninja -C build-release
ninja -C build-release install
install -D -m 0755 deploy/systemd/weir-prepare "$prefix/lib/weir/weir-prepare"
deploy/systemd/render-units "$prefix" /etc/systemd/system
[ -f /etc/default/weir ] || install -D -m 0644 deploy/systemd/weir.default /etc/default/weir
[ -f /etc/weir/weir.json ] || install -D -m 0644 deploy/weir.json.example /etc/weir/weir.json
[ -f /etc/weir/rules/apps.json ] || install -D -m 0644 deploy/rules/apps.json /etc/weir/rules/apps.json
command -v systemctl > /dev/null && systemctl daemon-reload 2> /dev/null || true
cat <<TXT
weir installed in $prefix/bin/weir.
Next: edit /etc/default/weir (hugepages, ports to bind) and /etc/weir/weir.json (ports, workers,
exporters; payload rules in /etc/weir/rules/apps.json), then: systemctl enable --now weir;
journalctl -u weir -f
Several probes on one server: /etc/weir/NAME.json and /etc/default/weir-NAME, then
systemctl enable --now weir@NAME (each with its own ports, CPUs and management address).
Metrics: http://127.0.0.1:9471/metrics (see deploy/prometheus/ and deploy/grafana/).
TXT
