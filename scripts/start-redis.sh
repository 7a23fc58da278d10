#!/bin/sh
# Start a throwaway Redis for local development or manual testing of the
# Redis store: loopback only, no persistence, in the foreground (Ctrl-C stops it).
#   scripts/start-redis.sh [port]      (default 6379)
# The store tests do not need this: they start their own redis-server.
set -eu
port="${1:-6379}"
if ! command -v redis-server >/dev/null 2>&1; then
	echo "redis-server not found: install it (apt-get install redis-server, brew install redis)" >&2
	exit 1
fi
echo "redis on 127.0.0.1:${port} (no persistence); set store.redis.url to redis://127.0.0.1:${port}/0" >&2
exec redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no
