#!/bin/sh
# Starts this pod's redis-server as the master or as a replica of the current master.
# The sentinels know the current master, so they are asked first (the other pods' sentinels:
# this pod's own starts at the same time and knows nothing yet). Only when none answers (the
# first start, or every pod restarted) does INITIAL_MASTER (pod 0) start as master and the
# others replicate it. A sentinel that still names this pod as master (its redis restarted
# before they failed over) is waited out: coming back empty as master would make the replicas
# copy the empty data set. Everything comes from the environment, so the test runs it on
# loopback ports (tests/deploy/test_kubernetes_redis_sentinel.py).
set -eu
: "${REDIS_PASSWORD:?}" "${MY_HOST:?}" "${INITIAL_MASTER:?}" "${SENTINEL_HOSTS:?}"
REDIS_PORT=${REDIS_PORT:-6379}
SENTINEL_PORT=${SENTINEL_PORT:-26379}
MASTER_NAME=${MASTER_NAME:-portvakt}
DATA_DIR=${DATA_DIR:-/data}
# every interface in the pod; the test binds to loopback only
BIND_ADDRESSES=${BIND_ADDRESSES:-* -::*}
# How long a sentinel naming this pod is waited out: longer than down-after + a failover.
SELF_WAIT_SECONDS=${SELF_WAIT_SECONDS:-60}
me="$MY_HOST:$REDIS_PORT"

. "$(dirname "$0")/sentinels.sh"

waited=0
while master=$(current_master) && [ "$master" = "$me" ] && [ "$waited" -lt "$SELF_WAIT_SECONDS" ]; do
  echo "sentinels still name $me as master; waiting for their failover" >&2
  sleep 2
  waited=$((waited + 2))
done
if [ -z "${master:-}" ]; then
  master=$INITIAL_MASTER
  echo "no sentinel answered; the initial master is $master" >&2
fi

config="$DATA_DIR/redis.conf"
cat > "$config" <<CONF
port $REDIS_PORT
bind $BIND_ADDRESSES
dir $DATA_DIR
requirepass "$REDIS_PASSWORD"
masterauth "$REDIS_PASSWORD"
replica-announce-ip $MY_HOST
replica-announce-port $REDIS_PORT
protected-mode no
save ""
appendonly no
CONF
if [ "$master" != "$me" ]; then
  echo "replicaof ${master%:*} ${master##*:}" >> "$config"
  echo "starting as a replica of $master" >&2
else
  echo "starting as master" >&2
fi
chmod 600 "$config"
exec redis-server "$config"
