#!/bin/sh
# preStop of the redis container: a master about to stop hands over first. It asks its own
# sentinel for a failover and waits until the sentinel names another master (at most
# HANDOVER_SECONDS), so a rolling update costs the gateway a failover of a second or two instead
# of down-after-milliseconds of an unreachable master. A replica just stops.
set -u
REDIS_PORT=${REDIS_PORT:-6379}
SENTINEL_PORT=${SENTINEL_PORT:-26379}
MASTER_NAME=${MASTER_NAME:-portvakt}
HANDOVER_SECONDS=${HANDOVER_SECONDS:-20}
export REDISCLI_AUTH="$REDIS_PASSWORD"
me="$MY_HOST:$REDIS_PORT"

named_master() {
  redis-cli -h 127.0.0.1 -p "$SENTINEL_PORT" --raw sentinel get-master-addr-by-name \
    "$MASTER_NAME" 2>/dev/null | tr '\n' ':' | sed 's/:$//'
}

redis-cli -h 127.0.0.1 -p "$REDIS_PORT" info replication 2>/dev/null | grep -q '^role:master' \
  || exit 0
[ "$(named_master)" = "$me" ] || exit 0
waited=0
while [ "$(named_master)" = "$me" ] && [ "$waited" -lt "$HANDOVER_SECONDS" ]; do
  # Refused while the sentinel judges no replica good enough yet (NOGOODSLAVE) and while its
  # failover runs (INPROG): ask again until another master is named.
  redis-cli -h 127.0.0.1 -p "$SENTINEL_PORT" sentinel failover "$MASTER_NAME" >&2
  sleep 1
  waited=$((waited + 1))
done
