#!/usr/bin/env bash
# Installs what `go test -race ./...` needs beyond Go, on a Debian machine
# (as root): Redis (store tests), PostgreSQL (directory tests; they start
# their own server, as the postgres user the package creates), Chromium and
# CJK fonts (browser tests), iproute2 (deploy/image_test.go brings up the
# loopback of a network namespace; chroot and unshare are in every Debian), and
# oauth2-proxy v7.8.1 built from the Go module proxy (real-client test).
# Idempotent: what is there already is skipped.
set -euo pipefail
cd "$(dirname "$0")/.."

export DEBIAN_FRONTEND=noninteractive
need=()
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
# Debian keeps initdb and postgres out of PATH, in /usr/lib/postgresql/N/bin.
if ! command -v initdb >/dev/null 2>&1 && ! compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null; then
  need+=(postgresql)
fi
# Browser tests (bridge/browser_test.go): Debian's Chromium, and CJK fonts so
# the Chinese pages render as text, not boxes.
command -v chromium >/dev/null 2>&1 || need+=(chromium)
dpkg -s fonts-noto-cjk >/dev/null 2>&1 || need+=(fonts-noto-cjk)
command -v ip >/dev/null 2>&1 || need+=(iproute2)
if [ ${#need[@]} -gt 0 ]; then
  echo "test deps: installing ${need[*]}"
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}"
fi

# A real relying party for bridge/oauth2proxy_test.go (cached in .cache/bin).
bash scripts/install-oauth2-proxy.sh
