# Shared by scripts/install-gitea.sh and scripts/install-oauth2-proxy.sh:
# build a Go program that other people wrote from its module on the Go module
# proxy, outside this project's module, into a machine-wide cache, so that a
# fresh clone (CI) on the same machine does not build it again.
#
# `go install MODULE@VERSION` does not work against every module proxy (some
# refuse a module's version list), so the module is fetched with
# `go mod download`, copied out of the read-only module cache into a scratch
# directory, made writable, and built there with its own go.mod: the project's
# go.mod and go.sum are never involved.
#
# Layout: ${WECHAT_OIDC_TOOLS:-/var/cache/wechat-oidc-tools}/NAME-VERSION/,
# complete when it holds the file .complete (written last). A build goes to a
# temporary sibling directory renamed into place at the end, under a lock, so
# two runs at once neither build twice nor see half a tool.
# Source this file; it defines functions only.

tools_root() {
	printf '%s\n' "${WECHAT_OIDC_TOOLS:-/var/cache/wechat-oidc-tools}"
}

# tool_dir NAME VERSION: where the tool lives once installed.
tool_dir() {
	printf '%s/%s-%s\n' "$(tools_root)" "$1" "$2"
}

# tool_lock NAME VERSION: takes an exclusive lock for this tool on fd 9 until
# the calling script exits.
tool_lock() {
	local root
	root="$(tools_root)"
	if ! mkdir -p "$root" 2>/dev/null || [ ! -w "$root" ]; then
		echo "cannot write the tools cache $root: run as root, or set WECHAT_OIDC_TOOLS to a writable directory (the tests read it too)" >&2
		return 1
	fi
	exec 9>"$root/.$1-$2.lock"
	if command -v flock >/dev/null 2>&1; then
		flock 9
	fi
}

# module_source MODULE VERSION DEST: a writable copy of the module's source in
# DEST (which must not exist yet).
module_source() {
	local module="$1" version="$2" dest="$3" dir
	command -v go >/dev/null 2>&1 || { echo "go not found in PATH" >&2; return 1; }
	# Download outside any module, so that no go.mod is consulted or changed.
	dir="$(cd "$(dirname "$dest")" && GOFLAGS=-mod=mod GOWORK=off go mod download -json "$module@$version" |
		sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')"
	if [ -z "$dir" ] || [ ! -f "$dir/go.mod" ]; then
		echo "go mod download $module@$version gave no module directory (is the version served by the module proxy?)" >&2
		return 1
	fi
	cp -R "$dir" "$dest"
	chmod -R u+w "$dest"
}

# remove_tree DIR: removes a tree that may hold read-only copies of the module cache.
remove_tree() {
	[ -e "$1" ] || return 0
	chmod -R u+w "$1" 2>/dev/null || true
	rm -rf "$1"
}

# install_tree TMP DIR VERSION: marks the built tree TMP complete (.complete
# holds VERSION, written last), readable by other users, and renames it to
# DIR in place of any incomplete or older tree there.
install_tree() {
	chmod 755 "$1" # mktemp made it 0700: let other users run the tool
	echo "$3" >"$1/.complete"
	remove_tree "$2"
	mv "$1" "$2"
}
