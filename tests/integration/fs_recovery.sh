#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Failures: hcsed stopped while 100 files are written and 10 modified, atrestfs
# restarted offline, then hcsed back: every byte arrives. kill -9 of atrestfs in
# the middle of uploads: the same. Verified through fresh mounts with empty caches.
. "$ATREST_SRC/tests/integration/lib.sh"
need_root
need_fuse

A=2401
start_tefd
start_hcsed
M=$T/mnt
mount_atrestfs "$M" "$T/cache"
chmod 1777 "$M"
mkdir -p "$T/ref"

# put NAME SIZE: writes a random file as uid A and keeps a reference copy
put() {
	head -c "$2" /dev/urandom >"$T/ref/$1"
	as_user $A $A cp "$T/ref/$1" "$M/$1"
}
# verify_all: every reference file reads back identically as uid A
verify_all() {
	local f n=0
	for f in "$T"/ref/*; do
		as_user $A $A cmp "$f" "$M/$(basename "$f")" || fail "$(basename "$f") differs"
		n=$((n + 1))
	done
	echo "$n"
}

for i in $(seq 1 10); do put "old$i" $((RANDOM * 7)); done
wait_synced "$M"/old*
ok "10 files uploaded"

# ---- offline: hcsed stopped ----
stop_daemon "$HCSED_PID"
for i in $(seq 1 100); do put "new$i" $((RANDOM % 5000 + i)); done
for i in $(seq 1 10); do
	head -c 777 /dev/urandom >>"$T/ref/old$i"
	as_user $A $A cp "$T/ref/old$i" "$M/old$i"
done
[ "$(getfattr --only-values -n user.onem2m.state "$M/new50")" = pending ] ||
	fail "state is not pending while hcsed is down"
[ "$(verify_all)" = 110 ] || fail "cached files do not read back offline"
ok "hcsed down: 100 files written, 10 modified, all readable, state pending"

umount_atrestfs "$M"
mount_atrestfs "$M" "$T/cache"
[ "$(getfattr --only-values -n user.onem2m.state "$M/old3")" = pending ] ||
	fail "the queue did not survive the restart"
ok "atrestfs restarted while hcsed is down: still pending"
start_hcsed
wait_synced "$M"/old* "$M"/new*
ok "hcsed back: every file synced"
umount_atrestfs "$M"
mount_atrestfs "$M" "$T/fresh1"
[ "$(verify_all)" = 110 ] || fail "count"
ok "a fresh mount reads all 110 files from hcsed"
umount_atrestfs "$M"

# ---- kill -9 in the middle of uploads ----
mount_atrestfs "$M" "$T/cache"
for i in $(seq 1 150); do put "k$i" $((RANDOM % 20000 + 1)); done
put kbig 6000000
for i in $(seq 1 5); do
	head -c 1000 /dev/urandom >>"$T/ref/k$i"
	as_user $A $A cp "$T/ref/k$i" "$M/k$i"
done
pending=$(getfattr --only-values -n user.onem2m.state "$M/kbig")
kill -KILL "$ATRESTFS_PID"
wait "$ATRESTFS_PID" 2>/dev/null || true
fusermount3 -uz "$M"
ok "atrestfs killed with -9 (kbig was $pending)"
mount_atrestfs "$M" "$T/cache"
[ "$(verify_all)" = 261 ] || fail "count after kill -9"
wait_synced "$M"/k*
umount_atrestfs "$M"
mount_atrestfs "$M" "$T/fresh2"
[ "$(verify_all)" = 261 ] || fail "count through the fresh mount"
ok "after kill -9 every byte arrives: 261 files verified through a fresh mount"
umount_atrestfs "$M"
check_sanitizer_logs "$T"/*.log
