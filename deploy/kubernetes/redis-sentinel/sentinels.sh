# Sourced by start-redis.sh and start-sentinel.sh. current_master prints the host:port of the
# master the other pods' sentinels name (this pod's own sentinel starts at the same time and
# knows nothing yet), or fails when none answers.
current_master() {
  for sentinel in $SENTINEL_HOSTS; do
    [ "$sentinel" = "$MY_HOST:$SENTINEL_PORT" ] && continue
    answer=$(REDISCLI_AUTH="$REDIS_PASSWORD" timeout 3 redis-cli -h "${sentinel%:*}" \
      -p "${sentinel##*:}" --raw sentinel get-master-addr-by-name "$MASTER_NAME" 2>/dev/null \
      | tr '\n' ' ') || continue
    set -- $answer
    # a host and a port; nothing (a sentinel that knows no master yet) or an error is no answer
    case "$#:${2:-}" in 2:*[!0-9]* | 2:) ;; 2:*) echo "$1:$2"; return 0 ;; esac
  done
  return 1
}
