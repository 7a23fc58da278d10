#!/usr/bin/env bash
# Build oauth2-proxy (a real OIDC relying party) for bridge/oauth2proxy_test.go,
# from the Go module proxy, into
#   ${WECHAT_OIDC_TOOLS:-/var/cache/wechat-oidc-tools}/oauth2-proxy-v7.15.6/oauth2-proxy
# (scripts/lib/go-module-tool.sh says why not `go install`). Idempotent: does
# nothing when that version is there already. Prints the time it took.
#   bash scripts/install-oauth2-proxy.sh
set -euo pipefail
. "$(dirname "$0")/lib/go-module-tool.sh"

version="v7.15.6"
module="github.com/oauth2-proxy/oauth2-proxy/v7"
dir="$(tool_dir oauth2-proxy "$version")"

installed() {
	[ -f "$dir/.complete" ] && [ -x "$dir/oauth2-proxy" ] &&
		"$dir/oauth2-proxy" --version 2>&1 | grep -q "oauth2-proxy $version"
}
if installed; then
	echo "oauth2-proxy $version already installed in $dir"
	exit 0
fi
tool_lock oauth2-proxy "$version"
if installed; then # built by another run while this one waited for the lock
	echo "oauth2-proxy $version already installed in $dir"
	exit 0
fi

start=$(date +%s)
tmp="$(mktemp -d "$(tools_root)/.oauth2-proxy-$version.XXXXXX")"
trap 'remove_tree "$tmp"' EXIT

echo "building oauth2-proxy $version (from the Go module proxy)"
module_source "$module" "$version" "$tmp/src"
(
	cd "$tmp/src"
	GOFLAGS=-mod=mod GOWORK=off go build -trimpath -o "$tmp/oauth2-proxy" \
		-ldflags "-s -w -X $module/pkg/version.VERSION=$version" .
)
remove_tree "$tmp/src"
install_tree "$tmp" "$dir" "$version"
trap - EXIT

"$dir/oauth2-proxy" --version
echo "oauth2-proxy $version built into $dir in $(($(date +%s) - start)) s"
