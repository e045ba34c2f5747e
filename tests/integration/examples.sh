#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# What the README and examples/ promise a new user works: the quickstart end to end
# (start, sample file, Ctrl-C and stop) and the example configs.
. "$ATREST_SRC/tests/integration/lib.sh"
need_root
need_fuse

# 1. The example configs are accepted as they are (paths overridden on the command line).
"$ATREST_BUILD/tefd/tefd" --init --master-key "$T/master.key" >/dev/null
"$ATREST_BUILD/tefd/tefd" -c "$ATREST_SRC/examples/config/tefd.conf" --socket "$T/tef.sock" \
	--db "$T/tef.db" --master-key "$T/master.key" --audit-log "$T/audit.log" -d \
	2>>"$T/tefd.log" &
pid=$!
at_exit "kill $pid"
at_exit "chattr -a '$T/audit.log'"
wait_for_path "$T/tef.sock" 10 || fail "tefd did not start with examples/config/tefd.conf"
"$ATREST_BUILD/tefd/tefctl" --socket "$T/tef.sock" list >/dev/null ||
	fail "tefctl cannot list on a tefd started from the example config"
stop_pid $pid
ok "examples/config/tefd.conf is accepted"

port=$((20000 + RANDOM % 12000)) # below the ephemeral ports (32768-)
"$ATREST_BUILD/hcsed/hcsed" -c "$ATREST_SRC/examples/config/hcsed.conf" \
	--listen "127.0.0.1:$port" --db "$T/hcse.db" -d 2>>"$T/hcsed.log" &
pid=$!
at_exit "kill $pid"
for i in $(seq 100); do
	out=$(curl -sf -H 'X-M2M-Origin: CAdmin' -H 'X-M2M-RI: t' -H 'X-M2M-RVI: 3' \
		"http://127.0.0.1:$port/cse-in" || true)
	[ -n "$out" ] && break
	sleep 0.1
done
echo "$out" | grep -q '"csi":"/id-in"' || fail "hcsed from the example config: '$out'"
stop_pid $pid
ok "examples/config/hcsed.conf is accepted"

# 2. The units, the fstab line and the mount unit: tests/integration/install.sh
# (systemd-analyze verify on the installed copies, hardening, each daemon run as
# its unit runs it, mounts through mount(8)).
# README shows the fstab line that install.sh mounts.
grep -qxF "$(grep -v '^#' "$ATREST_SRC/examples/atrestfs.fstab")" "$ATREST_SRC/README.md" ||
	fail "README's fstab line is not examples/atrestfs.fstab's"
ok "README's fstab line is examples/atrestfs.fstab's"

# 3. README's first command, for real, on a private state dir and port.
port=$((20000 + RANDOM % 12000)) # below the ephemeral ports (32768-)
export ATREST_STATE=$T/state HCSED_LISTEN=127.0.0.1:$port DEMO_UID=4242
QS=$ATREST_SRC/examples/quickstart.sh
at_exit "'$QS' stop"
# qs_start LOG: runs the quickstart in the background, in a process group of
# its own as a shell runs a foreground command (so SIGINT is not ignored);
# sets QS_PID and QS_DAEMONS; returns once it says it is running
qs_start() {
	local i
	: >"$1"
	set -m
	"$QS" "$T/mnt" >"$1" 2>&1 &
	QS_PID=$!
	set +m
	for ((i = 0; i < 600; i++)); do
		if grep -q "atrest is running" "$1"; then
			QS_DAEMONS=$(cat "$ATREST_STATE"/{tefd,hcsed,atrestfs}.pid)
			return 0
		fi
		kill -0 $QS_PID 2>/dev/null || { cat "$1" >&2; fail "quickstart exited early"; }
		sleep 0.1
	done
	cat "$1" >&2
	fail "quickstart did not come up"
}
# qs_stopped HOW: the quickstart exited, nothing mounted, no daemon or pid file left
qs_stopped() {
	local i d
	for ((i = 0; i < 300; i++)); do kill -0 $QS_PID 2>/dev/null || break; sleep 0.1; done
	kill -0 $QS_PID 2>/dev/null && fail "$1: the quickstart still runs 30 s later"
	wait $QS_PID || fail "$1: the quickstart exited with status $?"
	mountpoint -q "$T/mnt" && fail "$1 left $T/mnt mounted"
	for d in $QS_DAEMONS; do kill -0 "$d" 2>/dev/null && fail "$1 left daemon pid $d running"; done
	# a zombie has exited (its parent, maybe init, reaps it in its own time)
	local left
	left=$(ps -e -o pgid=,stat=,pid=,args= | awk -v g=$QS_PID '$1 == g && $2 !~ /^Z/')
	[ -z "$left" ] || fail "$1 left processes in the quickstart's group: $left"
	for d in tefd hcsed atrestfs; do [ -f "$ATREST_STATE/$d.pid" ] && fail "$1 left $d.pid behind"; done
	return 0
}
# kept CMD...: as the demo uid, which owns a file of the demo uid written in the first run, read in later ones
kept() { setpriv --reuid=4242 --regid=4242 --clear-groups -- "$@"; }
qs_start "$T/quickstart.log"
grep -q "^hello from a legacy app$" "$T/quickstart.log" || fail "quickstart did not read the sample back"
grep -q 'user.onem2m.credential-id="[0-9a-f]\{32\}@' "$T/quickstart.log" || fail "no Credential-Id shown"
grep -q '"cnf":"application/octet-stream:0:1"' "$T/quickstart.log" || fail "no sealed contentInstance shown"
grep -q '"con":"eyJ' "$T/quickstart.log" || fail "the contentInstance shown is not a compact JOSE string"
mountpoint -q "$T/mnt" || fail "quickstart left nothing mounted"
kept sh -c "echo 'kept across runs' >'$T/mnt/demo-4242/kept.txt'"
ok "quickstart.sh runs end to end"

"$QS" stop >>"$T/quickstart.log" 2>&1
qs_stopped "quickstart.sh stop"
# the foreground quickstart sees atrestfs go and must not stop the rest a second time
for d in tefd hcsed; do
	n=$(grep -c "stopping $d " "$T/quickstart.log" || true)
	[ "$n" = 1 ] || fail "'stopping $d' said $n times"
done
grep -q "atrestfs\[[0-9]*\] info: unmounted '$T/mnt': " "$ATREST_STATE/log/atrestfs.log" ||
	fail "atrestfs's log does not say it was unmounted"
ok "quickstart.sh stop unmounts and stops the daemons, once"

# 4. Ctrl-C (SIGINT to its process group, as a terminal sends it) stops it
# cleanly too, and every run reuses the state: same master key, old files there.
key_before=$(sha256sum "$ATREST_STATE/master.key")
# reused LOG: the run logged in LOG started on the state of the ones before
reused() {
	[ "$(sha256sum "$ATREST_STATE/master.key")" = "$key_before" ] || fail "the master key changed"
	grep -q "creating the TEF master key" "$1" && fail "a second master key was made"
	[ "$(kept cat "$T/mnt/demo-4242/kept.txt")" = "kept across runs" ] ||
		fail "the file written in the first run does not read back"
}
qs_start "$T/quickstart2.log"
reused "$T/quickstart2.log"
kill -INT -- -$QS_PID
qs_stopped "Ctrl-C"
grep -q "unmounting $T/mnt" "$T/quickstart2.log" || fail "Ctrl-C did not go through the quickstart's own stop"
ok "Ctrl-C unmounts and stops every daemon; the second run had reused the state"

qs_start "$T/quickstart3.log"
reused "$T/quickstart3.log"
"$QS" stop >/dev/null 2>&1
qs_stopped "quickstart.sh stop"
check_sanitizer_logs "$ATREST_STATE"/log/*.log
ok "a run after Ctrl-C reuses the state"
