#!/usr/bin/env bash
# Build oauth2-proxy (a real OIDC relying party) for bridge/oauth2proxy_test.go
# into .cache/bin/oauth2-proxy of this repository.
#
# `go install github.com/oauth2-proxy/oauth2-proxy/v7@VERSION` does not work
# against every module proxy (some refuse the version list), so this downloads
# the module with `go mod download`, copies it out of the module cache into a
# scratch directory and builds it there, with its own go.mod: the project's
# go.mod and go.sum are not touched. Idempotent: does nothing when the binary
# is already there at the right version. About 80 s cold.
#   bash scripts/install-oauth2-proxy.sh
set -euo pipefail

version="v7.8.1"
module="github.com/oauth2-proxy/oauth2-proxy/v7"
repo="$(cd "$(dirname "$0")/.." && pwd)"
bin_dir="$repo/.cache/bin"
bin="$bin_dir/oauth2-proxy"

if [ -x "$bin" ] && "$bin" --version 2>&1 | grep -q "oauth2-proxy $version"; then
	echo "oauth2-proxy $version already installed at .cache/bin/oauth2-proxy"
	exit 0
fi

command -v go >/dev/null 2>&1 || { echo "go not found" >&2; exit 1; }

start=$(date +%s)
scratch="$(mktemp -d)"
cleanup() {
	# The module cache and copies of it are read-only; make them removable.
	chmod -R u+w "$scratch" 2>/dev/null || true
	rm -rf "$scratch"
}
trap cleanup EXIT

echo "building oauth2-proxy $version (from the Go module proxy)"
# Download outside any module so that the project's go.mod is not involved.
dir="$(cd "$scratch" && GOFLAGS=-mod=mod go mod download -json "$module@$version" |
	sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')"
if [ -z "$dir" ] || [ ! -f "$dir/go.mod" ]; then
	echo "go mod download $module@$version did not give a module directory" >&2
	exit 1
fi
cp -R "$dir" "$scratch/src"
chmod -R u+w "$scratch/src"

mkdir -p "$bin_dir"
(
	cd "$scratch/src"
	GOFLAGS=-mod=mod go build -trimpath -o "$scratch/oauth2-proxy" \
		-ldflags "-X $module/pkg/version.VERSION=$version" .
)
mv "$scratch/oauth2-proxy" "$bin"

"$bin" --version
echo "oauth2-proxy $version built into .cache/bin/oauth2-proxy in $(($(date +%s) - start)) s"
