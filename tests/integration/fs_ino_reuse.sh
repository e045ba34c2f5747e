#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# A removed file's inode number is not handed out again while the deletion of its
# container is still queued: unlink while hcsed is down, remount, create a file,
# bring hcsed back. The queued deletion must take the old container only: the new
# file reads back whole through a fresh mount with an empty cache.
. "$ATREST_SRC/tests/integration/lib.sh"
need_root
need_fuse

start_tefd
start_hcsed
M=$T/mnt
mount_atrestfs "$M" "$T/cache"
printf 'removed\n' >"$M/a"
ino_a=$(stat -c %i "$M/a")
wait_synced "$M/a"
[ "$(hcse_get "atrestfs/i$ino_a" | head -c 200)" != "" ] || fail "a's container is not at hcsed"

# hcsed down: the unlink's container deletion stays queued across a remount
stop_daemon "$HCSED_PID"
rm "$M/a"
umount_atrestfs "$M"
mount_atrestfs "$M" "$T/cache"
printf 'created after\n' >"$M/b"
ino_b=$(stat -c %i "$M/b")
[ "$ino_b" != "$ino_a" ] || echo "# b got a's inode number $ino_a"
start_hcsed
wait_synced "$M/b"
# the queued deletion has run once a's container is gone
for ((i = 0; i < 100; i++)); do
	code=$(curl -s -o /dev/null -w '%{http_code}' -H 'X-M2M-Origin: CAdmin' -H 'X-M2M-RI: t' \
		-H 'X-M2M-RVI: 3' "$HCSE_URL/atrestfs/i$ino_a")
	[ "$code" = 404 ] && break
	sleep 0.1
done
[ "$code" = 404 ] || fail "the removed file's container is still at hcsed ($code)"
ok "the unlink queued while hcsed was down removed the old container after a remount"
umount_atrestfs "$M"

mount_atrestfs "$M" "$T/fresh"
got=$(cat "$M/b" 2>&1) || true
[ "$got" = "created after" ] || fail "the file created after the remount is lost at hcsed: '$got'"
ok "the new file reads back through a fresh mount (inode $ino_b, the removed one was $ino_a)"
umount_atrestfs "$M"
check_sanitizer_logs "$T"/*.log
