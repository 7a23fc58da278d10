#!/usr/bin/env bash
# Build Gitea (a real internal application with an OpenID Connect auth
# source) for bridge/gitea_test.go, from the Go module proxy, into
#   ${WECHAT_OIDC_TOOLS:-/var/cache/wechat-oidc-tools}/gitea-v1.24.6/
# (the binary `gitea`, and the templates/, options/ and public/ trees that a
# build without the bindata tag reads from disk: point [server]
# STATIC_ROOT_PATH at this directory). Idempotent: does nothing when that
# version is there already. Needs cgo (SQLite), so a C compiler: gcc.
# Several minutes cold on two cores; prints the time it took.
#   bash scripts/install-gitea.sh
set -euo pipefail
. "$(dirname "$0")/lib/go-module-tool.sh"

version="v1.24.6"
module="code.gitea.io/gitea"
tags="sqlite sqlite_unlock_notify"
dir="$(tool_dir gitea "$version")"

installed() {
	[ -f "$dir/.complete" ] && [ -x "$dir/gitea" ] &&
		"$dir/gitea" --version 2>/dev/null | grep -q "version ${version#v} "
}
if installed; then
	echo "gitea $version already installed in $dir"
	exit 0
fi
tool_lock gitea "$version"
if installed; then # built by another run while this one waited for the lock
	echo "gitea $version already installed in $dir"
	exit 0
fi
command -v gcc >/dev/null 2>&1 || command -v cc >/dev/null 2>&1 || {
	echo "gitea needs a C compiler (cgo, for SQLite): apt-get install gcc (scripts/install-test-deps.sh does)" >&2
	exit 1
}

start=$(date +%s)
tmp="$(mktemp -d "$(tools_root)/.gitea-$version.XXXXXX")"
trap 'remove_tree "$tmp"' EXIT

echo "building gitea $version (from the Go module proxy)"
module_source "$module" "$version" "$tmp/src"
(
	cd "$tmp/src"
	CGO_ENABLED=1 GOFLAGS=-mod=mod GOWORK=off go build -trimpath -tags "$tags" \
		-ldflags "-s -w -X main.Version=${version#v} -X 'main.Tags=$tags'" \
		-o "$tmp/gitea" .
)
# Without bindata Gitea reads these from STATIC_ROOT_PATH at run time.
for d in templates options public; do
	mv "$tmp/src/$d" "$tmp/$d"
done
remove_tree "$tmp/src"
install_tree "$tmp" "$dir" "$version"
trap - EXIT

"$dir/gitea" --version
echo "gitea $version built into $dir in $(($(date +%s) - start)) s"
