#!/usr/bin/env bash
# Installs everything galerad's build, tests, lab and benchmarks need on a fresh Debian machine.
# Idempotent: what is already there is left alone.
#   scripts/setup.sh           npm packages and Debian packages
#   scripts/setup.sh --npm     npm packages only
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x node_modules/.bin/bun ] || [ ! -x node_modules/.bin/deno ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: installing npm packages" >&2
  # npm install, not npm ci: the registry here lacks the other platforms' optional packages of
  # deno, so the lock cannot list them and npm ci refuses it; npm install keeps the lock as it is.
  npm install --no-audit --no-fund --loglevel=error >&2
fi
# The dashboard's chart library, embedded from node_modules (src/proxy/assets/uplot.ts).
node_modules/.bin/bun scripts/gen_assets.ts
[ "${1:-}" = "--npm" ] && exit 0

# Debian packages: the Galera lab (MariaDB + Galera 4, rsync for SST), benchmark baselines
# (HAProxy, sysbench), the registry for discovery tests (etcd), headless Chromium for the
# dashboard test, nftables and iproute2 for the partition tests in network namespaces, conntrack
# for the kernel data-plane spike (scripts/bench/kernel.ts),
# systemd (systemd-analyze verify) and adduser for the package test, prometheus for its promtool
# (the documented alert rules evaluated over real proxies' metrics, tests/proxy/alerts_test.ts).
debs=(mariadb-server mariadb-client galera-4 rsync haproxy sysbench chromium etcd-server etcd-client dnsmasq-base nftables iproute2 conntrack systemd adduser prometheus)
missing=()
for p in "${debs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}" >&2
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  # The lab starts its own servers; keep the packages' init scripts from starting the system one.
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | $sudo tee /usr/sbin/policy-rc.d >/dev/null
    $sudo chmod +x /usr/sbin/policy-rc.d
    trap '$sudo rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  $sudo apt-get update -q >&2 || true
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
fi
