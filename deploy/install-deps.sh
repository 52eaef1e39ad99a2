#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-3-Clause
# Installs weir's build dependencies from Debian (12, bookworm). With --test, also the real
# collectors and tools the integration tests run against. Needs root.
set -euo pipefail
packages=(g++ meson ninja-build pkg-config python3
          dpdk dpdk-dev libdpdk-dev libpcap-dev nlohmann-json3-dev prometheus-cpp-dev libcivetweb-dev
          libcurl4-openssl-dev zlib1g-dev libhyperscan-dev librdkafka-dev libyaml-cpp-dev libssl-dev libcrypt-dev)
if [ "${1:-}" = "--test" ]; then
  packages+=(libgtest-dev tshark nfdump iproute2 prometheus curl clickhouse-server pmacct systemd man-db groff-base openssl chromium)
fi
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "install-deps: need root to install: ${missing[*]}" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
# tshark's package asks whether non-root users may capture; answer no without a prompt.
echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections
echo "install-deps: installing ${missing[*]}"
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"
