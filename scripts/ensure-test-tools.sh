#!/usr/bin/env bash
# The tests start their own redis-server on a free loopback port, drive Debian's chromium
# headless, run an unmodified openid-client under node (tests/interop) and check BankID
# signatures with xmlsec1 and openssl as an e-service would (tests/providers/bankid), and
# checks and unit-tests the Prometheus alert rules with promtool, renders the Kubernetes
# manifests with `kubectl kustomize` and runs the Redis Sentinel start scripts (tests/deploy); this
# makes sure those binaries are here, and any other command named as an argument
# whose Debian package has the same name (`make bench` asks for wrk). On a fresh Debian/Ubuntu
# machine it installs the missing packages with apt (root or sudo needed).
set -euo pipefail
missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
# fonts: --no-install-recommends would leave the screenshots without glyphs
command -v chromium >/dev/null 2>&1 || missing+=(chromium fonts-dejavu-core)
# openid-client 6 wants Node 20+; Debian 12's nodejs is 18 (the interop test turns on its
# Web Crypto global there), Debian 13's is 20.
command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || missing+=(nodejs npm)
command -v xmlsec1 >/dev/null 2>&1 || missing+=(xmlsec1)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
# promtool comes with Debian's prometheus server
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
# Debian 12's kubectl is 1.20 with kustomize v2.0.3: deploy/kubernetes is written for it as
# well as for a current kubectl (docs/kubernetes.md)
command -v kubectl >/dev/null 2>&1 || missing+=(kubernetes-client)
# the Sentinel start scripts' redis-cli (Debian's redis-server brings it in redis-tools)
command -v redis-cli >/dev/null 2>&1 || missing+=(redis-tools)
for extra in "$@"; do
  command -v "$extra" >/dev/null 2>&1 || missing+=("$extra")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "installing Debian packages the tests need: ${missing[*]}" >&2
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "need root or sudo to apt-get install ${missing[*]}" >&2; exit 1; }
  SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# Debian starts a system redis service on install; the tests do not use it.
($SUDO service redis-server stop >/dev/null 2>&1 || true)
# ... and a Prometheus server: the tests only need its promtool.
($SUDO service prometheus stop >/dev/null 2>&1 || true)
for needed in redis-server redis-cli chromium node npm xmlsec1 openssl promtool kubectl "$@"; do
  command -v "$needed" >/dev/null || { echo "still missing after apt-get: $needed" >&2; exit 1; }
done
