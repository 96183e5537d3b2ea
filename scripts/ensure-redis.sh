#!/usr/bin/env bash
# The tests start their own redis-server on a free loopback port; this makes sure the binary is here.
# On a fresh Debian/Ubuntu machine it installs Debian's redis-server package (root or sudo needed).
set -euo pipefail
if command -v redis-server >/dev/null 2>&1; then
  exit 0
fi
echo "redis-server is missing: installing Debian's redis-server package" >&2
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "need root or sudo to apt-get install redis-server" >&2; exit 1; }
  SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends redis-server >/dev/null
# Debian starts a system service on install; the tests do not use it.
($SUDO service redis-server stop >/dev/null 2>&1 || true)
command -v redis-server >/dev/null
