# SPDX-License-Identifier: Apache-2.0
# Shared shell helpers for integration tests: temp dir, cleanup, skips, checks.
# Source it first: . "$ATREST_SRC/tests/integration/lib.sh"
set -euo pipefail

: "${ATREST_SRC:?run through meson test}"
: "${ATREST_BUILD:?run through meson test}"

T=$(mktemp -d /tmp/atrest-it.XXXXXX)
chmod 0755 "$T"
CLEANUP=()

# Registers a command to run at exit, last registered first.
at_exit() { CLEANUP+=("$*"); }

_run_cleanup() {
	local rc=$?
	for ((i = ${#CLEANUP[@]} - 1; i >= 0; i--)); do
		eval "${CLEANUP[$i]}" >/dev/null 2>&1 || true
	done
	if [ $rc -ne 0 ] && [ $rc -ne 77 ]; then
		echo "--- logs in $T (kept for inspection) ---" >&2
		for f in "$T"/*.log; do
			[ -f "$f" ] || continue
			echo "=== $f" >&2
			tail -n 40 "$f" >&2
		done
	else
		rm -rf "$T"
	fi
	exit $rc
}
trap _run_cleanup EXIT

skip() { echo "SKIP: $*" >&2; exit 77; }
fail() { echo "FAIL: $*" >&2; exit 1; }
ok() { echo "ok - $*"; }

need_root() { [ "$(id -u)" = 0 ] || skip "needs root (runs as uid $(id -u))"; }
need_fuse() {
	[ -c /dev/fuse ] || skip "/dev/fuse is absent on this machine"
	command -v fusermount3 >/dev/null || skip "fusermount3 is not installed"
}

# Fails the test if a sanitizer wrote a report into any of the given logs.
check_sanitizer_logs() {
	local f
	for f in "$@"; do
		[ -f "$f" ] || continue
		if grep -Eq 'ERROR: (Address|Leak|Thread|Undefined)Sanitizer|runtime error:' "$f"; then
			grep -E -A20 'Sanitizer|runtime error:' "$f" >&2 | head -60
			fail "sanitizer report in $f"
		fi
	done
}

# Waits up to $2 seconds (default 10) for a path to exist.
wait_for_path() {
	local i n=$(( ${2:-10} * 10 ))
	for ((i = 0; i < n; i++)); do
		[ -e "$1" ] && return 0
		sleep 0.1
	done
	return 1
}

# Runs a command as another numeric uid/gid with no supplementary groups
# unless given: as_user UID GID[,GROUPS] CMD...
as_user() {
	local uid=$1 gids=$2
	shift 2
	local gid=${gids%%,*} groups=--clear-groups
	[ "$gids" != "$gid" ] && groups="--groups=${gids#*,}"
	setpriv --reuid="$uid" --regid="$gid" $groups -- "$@"
}
