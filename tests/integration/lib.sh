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

# ---- atrest daemons (atrestfs's tests; reusable by any) ----
# start_tefd: tefd on $T/tef.sock with root as delegate and admin; sets TEF_SOCK, TEFD_PID.
start_tefd() {
	TEF_SOCK=$T/tef.sock
	# tefd makes its audit log append-only (chattr +a): lift it so $T can go
	at_exit "chattr -a '$T/tef.db-audit.log'"
	[ -f "$T/master.key" ] || "$ATREST_BUILD/tefd/tefd" --init --master-key "$T/master.key" >/dev/null
	"$ATREST_BUILD/tefd/tefd" --socket "$TEF_SOCK" --db "$T/tef.db" --master-key "$T/master.key" \
		--delegate 0 --admin 0 --max-failed-retrievals 100000 -d "$@" 2>>"$T/tefd.log" &
	TEFD_PID=$!
	at_exit "kill $TEFD_PID"
	wait_for_path "$TEF_SOCK" 10 || fail "tefd did not start"
}

# hcse_sql SQL: queries hcsed's database while it runs (WAL), one row per
# line, columns separated by a space
hcse_sql() { sqlite3 -readonly -separator " " "$HCSE_DB" ".timeout 5000" "$1"; }

# start_hcsed: hcsed on a free 127.0.0.1 port with its DB in $T/hcse.db (kept across
# restarts); sets HCSE_URL, HCSE_PORT, HCSE_DB, HCSED_PID.
start_hcsed() {
	HCSE_DB=$T/hcse.db
	local i try fixed=${HCSE_PORT:+1}
	# a random port may be taken by a parallel test: try others, unless
	# restarting on the port the mounts already use
	for ((try = 0; try < 10; try++)); do
		[ -n "$fixed" ] || HCSE_PORT=$((20000 + RANDOM % 20000))
		"$ATREST_BUILD/hcsed/hcsed" --listen "127.0.0.1:$HCSE_PORT" --db "$HCSE_DB" -d "$@" \
			2>>"$T/hcsed.log" &
		HCSED_PID=$!
		at_exit "kill $HCSED_PID"
		HCSE_URL=http://127.0.0.1:$HCSE_PORT/cse-in
		for ((i = 0; i < 100; i++)); do
			curl -sf -o /dev/null -H 'X-M2M-Origin: CAdmin' -H 'X-M2M-RI: t' \
				-H 'X-M2M-RVI: 3' "$HCSE_URL" && return 0
			kill -0 "$HCSED_PID" 2>/dev/null || break
			sleep 0.1
		done
		kill -0 "$HCSED_PID" 2>/dev/null && fail "hcsed did not answer on $HCSE_URL"
		[ -z "$fixed" ] || sleep 0.5
	done
	fail "hcsed could not listen (port $HCSE_PORT taken?)"
}

# stop_pid PID: SIGTERM, wait up to 10 s, then SIGKILL.
stop_pid() {
	local i
	kill "$1" 2>/dev/null || return 0
	for ((i = 0; i < 100; i++)); do
		kill -0 "$1" 2>/dev/null || { wait "$1" 2>/dev/null || true; return 0; }
		sleep 0.1
	done
	kill -KILL "$1" 2>/dev/null || true
	wait "$1" 2>/dev/null || true
}

# drop_kill PID: forgets the at_exit "kill PID" of a process that is gone: its pid
# may belong to another process by the time the test ends (pid_max can be 32768).
drop_kill() {
	local i
	for ((i = 0; i < ${#CLEANUP[@]}; i++)); do
		[ "${CLEANUP[$i]}" != "kill $1" ] || CLEANUP[$i]=true
	done
}

# stop_daemon PID: stop_pid, then drop_kill (for a daemon started again later).
stop_daemon() {
	stop_pid "$1"
	drop_kill "$1"
}

# tefctl ARGS...: the admin CLI on the test's tefd.
tefctl() { "$ATREST_BUILD/tefd/tefctl" --socket "$TEF_SOCK" "$@"; }
# cred_of FILE: its user.onem2m.credential-id.
cred_of() { getfattr --only-values -n user.onem2m.credential-id "$1"; }
# registered CRED: tefd still holds the registration.
registered() { tefctl --json show "$1" >/dev/null 2>&1; }
# wait_deregistered CRED WHAT: the uploader de-registers in the background (15 s at most).
wait_deregistered() {
	local i
	for ((i = 0; i < 150; i++)); do
		registered "$1" || return 0
		sleep 0.1
	done
	fail "$2: key $1 still registered at tefd after 15 s"
}

# targets_of CRED: the registration's targets as tefd holds them, comma-joined
targets_of() {
	tefctl --json show "$1" | /usr/bin/python3 -c '
import json, sys
r = json.load(sys.stdin)
r = r[0] if isinstance(r, list) else r
print(",".join(r["targetIDs"] if "targetIDs" in r else r["tids"]))'
}

# hcse_get PATH [QUERY]: GET $HCSE_URL/PATH as the admin originator.
hcse_get() {
	curl -s -H 'X-M2M-Origin: CAdmin' -H 'X-M2M-RI: t' -H 'X-M2M-RVI: 3' \
		"$HCSE_URL/$1${2:+?$2}"
}

# mount_atrestfs MNT CACHE [EXTRA-OPTS]: mounts in the foreground process
# group with logs in $T/atrestfs.log; sets ATRESTFS_PID.
mount_atrestfs() {
	local mnt=$1 cache=$2 extra=${3:-}
	mkdir -p "$mnt"
	"$ATREST_BUILD/fs/atrestfs" "$HCSE_URL" "$mnt" -f \
		-o "tef=$TEF_SOCK,cache=$cache,allow_other${extra:+,$extra}" 2>>"$T/atrestfs.log" &
	ATRESTFS_PID=$!
	at_exit "fusermount3 -uz $mnt"
	local i
	for ((i = 0; i < 100; i++)); do
		mountpoint -q "$mnt" && return 0
		kill -0 "$ATRESTFS_PID" 2>/dev/null || fail "atrestfs exited before mounting"
		sleep 0.1
	done
	fail "atrestfs did not mount $mnt"
}

# umount_atrestfs MNT: unmounts and waits for atrestfs to exit.
umount_atrestfs() {
	fusermount3 -u "$1" || umount "$1"
	local i
	for ((i = 0; i < 200; i++)); do
		kill -0 "$ATRESTFS_PID" 2>/dev/null || { wait "$ATRESTFS_PID" 2>/dev/null || true; return 0; }
		sleep 0.1
	done
	fail "atrestfs did not exit after unmounting $1"
}

# wait_synced FILE... : waits up to 30 s until user.onem2m.state is synced on each.
wait_synced() {
	local f i
	for f in "$@"; do
		for ((i = 0; i < 300; i++)); do
			[ "$(getfattr --only-values -n user.onem2m.state "$f" 2>/dev/null)" = synced ] && break
			sleep 0.1
		done
		[ $i -lt 300 ] || fail "$f did not reach state synced"
	done
}

# enter_netns [ARGS]: reruns the calling script as root in a private network
# namespace (its own loopback, up, plus 10.77.0.1 as a non-loopback address),
# so a test may use fixed ports such as a daemon's default and addresses
# that are not loopback without touching the host. Call it right after
# sourcing lib.sh; the outer run exits with the inner run's status.
enter_netns() {
	if [ -n "${ATREST_IN_NETNS:-}" ]; then
		ip link set lo up && ip addr add 10.77.0.1/32 dev lo || fail "cannot set up the namespace's loopback"
		return 0
	fi
	need_root
	command -v unshare >/dev/null && command -v ip >/dev/null || skip "unshare or ip is not installed"
	unshare -n true 2>/dev/null || skip "cannot create a network namespace here"
	local rc=0
	ATREST_IN_NETNS=1 unshare -n bash "$0" "$@" || rc=$?
	exit $rc
}

# tamper_tools: defines tamper ACTION ARGS (fs_tamper.sh's edits of hcsed's store) and
# row save|insert (fs_rollback_tefd_down.sh's), both on $HCSE_DB: the attacker's view.
tamper_tools() {
	sed -n '/^cat >"\$T\/tamper.py"/,/^PY$/p' "$ATREST_SRC/tests/integration/fs_tamper.sh" |
		sed '1d;$d' >"$T/tamper.py"
	sed -n '/^row() {$/,/^}$/p' "$ATREST_SRC/tests/integration/fs_rollback_tefd_down.sh" >"$T/row.sh"
	. "$T/row.sh"
	tamper() { /usr/bin/python3 "$T/tamper.py" "$HCSE_DB" "$@"; }
}
