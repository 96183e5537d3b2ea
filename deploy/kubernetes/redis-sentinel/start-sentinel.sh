#!/bin/sh
# Starts this pod's sentinel, monitoring the master the other sentinels name, or INITIAL_MASTER
# (pod 0) when none answers. Sentinels and replicas are known by host name (the StatefulSet's
# stable DNS names), not by pod IP, which changes on every restart. Parameterised by the
# environment like start-redis.sh.
set -eu
: "${REDIS_PASSWORD:?}" "${MY_HOST:?}" "${INITIAL_MASTER:?}" "${SENTINEL_HOSTS:?}"
SENTINEL_PORT=${SENTINEL_PORT:-26379}
MASTER_NAME=${MASTER_NAME:-portvakt}
DATA_DIR=${DATA_DIR:-/data}
# every interface in the pod; the test binds to loopback only
BIND_ADDRESSES=${BIND_ADDRESSES:-* -::*}
QUORUM=${QUORUM:-2}
DOWN_AFTER_MS=${DOWN_AFTER_MS:-5000}
FAILOVER_TIMEOUT_MS=${FAILOVER_TIMEOUT_MS:-60000}

. "$(dirname "$0")/sentinels.sh"
master=$(current_master) || master=$INITIAL_MASTER
echo "monitoring $MASTER_NAME at $master" >&2

config="$DATA_DIR/sentinel.conf"
cat > "$config" <<CONF
port $SENTINEL_PORT
bind $BIND_ADDRESSES
dir $DATA_DIR
requirepass "$REDIS_PASSWORD"
sentinel sentinel-pass "$REDIS_PASSWORD"
sentinel resolve-hostnames yes
sentinel announce-hostnames yes
sentinel announce-ip $MY_HOST
sentinel announce-port $SENTINEL_PORT
sentinel monitor $MASTER_NAME ${master%:*} ${master##*:} $QUORUM
sentinel auth-pass $MASTER_NAME "$REDIS_PASSWORD"
sentinel down-after-milliseconds $MASTER_NAME $DOWN_AFTER_MS
sentinel failover-timeout $MASTER_NAME $FAILOVER_TIMEOUT_MS
sentinel parallel-syncs $MASTER_NAME 1
CONF
chmod 600 "$config"
exec redis-server "$config" --sentinel
