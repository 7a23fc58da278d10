#!/usr/bin/env bash
# Installs what `go test -race ./...` needs beyond Go, on a Debian machine
# (as root): Redis (store tests), PostgreSQL (directory tests; they start
# their own server, as the postgres user the package creates), Chromium and
# CJK fonts (browser tests), iproute2 (deploy/image_test.go brings up the
# loopback of a network namespace; chroot and unshare are in every Debian),
# gcc (cgo: the race detector and Gitea's SQLite), and two real relying
# parties built from the Go module proxy into the machine-wide tools cache
# ${WECHAT_OIDC_TOOLS:-/var/cache/wechat-oidc-tools}: oauth2-proxy and Gitea.
# Idempotent: what is there already is skipped, so only the first run on a
# machine builds the tools. Prints the time of each step.
set -euo pipefail
cd "$(dirname "$0")/.."

export DEBIAN_FRONTEND=noninteractive
step=$(date +%s)
need=()
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
# Debian keeps initdb and postgres out of PATH, in /usr/lib/postgresql/N/bin.
if ! command -v initdb >/dev/null 2>&1 && ! compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null; then
  need+=(postgresql)
fi
# Browser tests (dev/browser_test.go, bridge/gitea_browser_test.go): Debian's
# Chromium, and CJK fonts so the Chinese pages render as text, not boxes.
command -v chromium >/dev/null 2>&1 || need+=(chromium)
dpkg -s fonts-noto-cjk >/dev/null 2>&1 || need+=(fonts-noto-cjk)
command -v ip >/dev/null 2>&1 || need+=(iproute2)
# cgo: `go test -race` and Gitea's SQLite driver.
command -v gcc >/dev/null 2>&1 || need+=(gcc libc6-dev)
# Gitea runs git for every repository operation and checks for it at start.
command -v git >/dev/null 2>&1 || need+=(git)
if [ ${#need[@]} -gt 0 ]; then
  echo "test deps: installing ${need[*]}"
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}"
fi
echo "test deps: Debian packages ready in $(( $(date +%s) - step )) s"

# Real relying parties for bridge/oauth2proxy_test.go and bridge/gitea_test.go.
step=$(date +%s)
bash scripts/install-oauth2-proxy.sh
echo "test deps: oauth2-proxy ready in $(( $(date +%s) - step )) s"
step=$(date +%s)
bash scripts/install-gitea.sh
echo "test deps: gitea ready in $(( $(date +%s) - step )) s"
