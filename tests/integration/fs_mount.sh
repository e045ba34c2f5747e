#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Mounting as an operator does (issue 5, atrestfs(1)): the literal
# "mount -t fuse.atrestfs URL MOUNTPOINT -o ..." form, examples/atrestfs.fstab
# as shipped through "mount -T FILE MOUNTPOINT", umount; SIGHUP leaves the
# mount alone while SIGTERM unmounts cleanly, keeping what was written.
#
# Runs in its own mount and network namespaces: mount(8) drops PATH and
# mount.fuse3 then finds "atrestfs" on sh's default PATH, so the build's
# binary is bind-mounted onto /usr/local/sbin; the fstab example names
# /run/atrest/tef.sock, /var/cache/atrestfs, /mnt/secure and port 8080,
# which are made private here.
if [ "${ATREST_FS_MOUNT_NS:-}" != 1 ]; then
	if [ "$(id -u)" != 0 ] || ! unshare --mount --net true 2>/dev/null; then
		echo "SKIP: needs root and unshare(CLONE_NEWNS|CLONE_NEWNET)" >&2
		exit 77
	fi
	ATREST_FS_MOUNT_NS=1 exec unshare --mount --net --propagation private bash "$0" "$@"
fi
. "$ATREST_SRC/tests/integration/lib.sh"
need_root
need_fuse
ip link set lo up

A=2801
mkdir "$T/bin"
ln -s "$ATREST_BUILD/fs/atrestfs" "$T/bin/atrestfs"
mount --bind "$T/bin" /usr/local/sbin
# private /run, /mnt and /var/cache for the example's paths
for d in /run /mnt /var/cache; do mount -t tmpfs -o mode=0755 tmpfs "$d"; done
mkdir -p /run/atrest /mnt/secure
start_tefd
ln -s "$TEF_SOCK" /run/atrest/tef.sock
HCSE_PORT=8080
start_hcsed

# daemon_of MOUNTPOINT: the pid of the atrestfs serving it
daemon_of() { pgrep -f "^atrestfs [^ ]+ $1 " | head -n1; }
# umount_and_wait MOUNTPOINT PID: umount(8), then the daemon must exit
umount_and_wait() {
	umount "$1" || fail "umount $1"
	mountpoint -q "$1" && fail "$1 still mounted after umount"
	for ((i = 0; i < 100; i++)); do
		kill -0 "$2" 2>/dev/null || return 0
		sleep 0.1
	done
	fail "atrestfs ($2) did not exit after umount $1"
}
# round_trip MOUNTPOINT NAME: uid A writes, reads back, and it reaches hcsed
round_trip() {
	as_user $A $A sh -c "echo '$2' > '$1/$2'"
	[ "$(as_user $A $A cat "$1/$2")" = "$2" ] || fail "round trip on $1"
	wait_synced "$1/$2"
}

# ---- the literal form ----
M=$T/mnt
mkdir "$M"
mount -t fuse.atrestfs "$HCSE_URL" "$M" -o "tef=$TEF_SOCK,cache=$T/cache,allow_other" ||
	fail "mount -t fuse.atrestfs"
at_exit "umount -l $M"
grep " $M fuse.atrestfs " /proc/mounts | grep -q "^$HCSE_URL " ||
	fail "/proc/mounts: $(grep " $M " /proc/mounts)"
pid=$(daemon_of "$M")
[ -n "$pid" ] || fail "no atrestfs daemon serves $M"
chmod 1777 "$M"
round_trip "$M" literal
umount_and_wait "$M" "$pid"
ok "mount -t fuse.atrestfs URL MOUNTPOINT -o ... mounts, serves and umount(8) ends it"

# ---- the fstab example as shipped ----
mount -T "$ATREST_SRC/examples/atrestfs.fstab" /mnt/secure || fail "mount -T examples/atrestfs.fstab"
at_exit "umount -l /mnt/secure"
line=$(grep " /mnt/secure " /proc/mounts)
[[ $line == "http://127.0.0.1:8080/cse-in /mnt/secure fuse.atrestfs "* ]] || fail "/proc/mounts: $line"
[[ $line == *allow_other* ]] || fail "allow_other not applied: $line"
pid=$(daemon_of /mnt/secure)
[ -n "$pid" ] || fail "no atrestfs daemon serves /mnt/secure"
[ -n "$(ls -A /var/cache/atrestfs)" ] || fail "the example's cache=/var/cache/atrestfs is unused"
chmod 1777 /mnt/secure
round_trip /mnt/secure fstab
# share=owner (the example's): another uid is refused
if as_user 2802 2802 cat /mnt/secure/fstab >/dev/null 2>&1; then fail "share=owner let uid 2802 read"; fi
ok "examples/atrestfs.fstab as shipped: mount -T FILE /mnt/secure mounts with its options"

# ---- SIGHUP keeps the mount (daemonised, as from fstab) ----
kill -HUP "$pid"
sleep 1
kill -0 "$pid" 2>/dev/null || fail "atrestfs exited on SIGHUP"
mountpoint -q /mnt/secure || fail "SIGHUP unmounted /mnt/secure"
[ "$(as_user $A $A cat /mnt/secure/fstab)" = fstab ] || fail "read after SIGHUP"
round_trip /mnt/secure after-hup
ok "SIGHUP: the mount stays and serves"
umount_and_wait /mnt/secure "$pid"

# ---- SIGTERM unmounts cleanly and keeps what was written (foreground) ----
mount_atrestfs "$M" "$T/cache"
kill -HUP "$ATRESTFS_PID"
sleep 1
mountpoint -q "$M" || fail "SIGHUP unmounted a foreground mount"
as_user $A $A sh -c "echo term > '$M/term'"
kill -TERM "$ATRESTFS_PID"
for ((i = 0; i < 100; i++)); do
	kill -0 "$ATRESTFS_PID" 2>/dev/null || break
	sleep 0.1
done
kill -0 "$ATRESTFS_PID" 2>/dev/null && fail "atrestfs still running 10 s after SIGTERM"
rc=0
wait "$ATRESTFS_PID" || rc=$?
[ $rc = 0 ] || fail "atrestfs exited with $rc on SIGTERM"
mountpoint -q "$M" && fail "SIGTERM left $M mounted"
grep -q " $M " /proc/mounts && fail "SIGTERM left $M in /proc/mounts"
mount_atrestfs "$M" "$T/cache"
[ "$(as_user $A $A cat "$M/term")" = term ] || fail "a file written before SIGTERM is lost"
wait_synced "$M/term"
umount_atrestfs "$M"
# and it reached hcsed: through a fresh cache
mount_atrestfs "$M" "$T/cache-fresh"
[ "$(as_user $A $A cat "$M/term")" = term ] || fail "the file written before SIGTERM never reached hcsed"
umount_atrestfs "$M"
ok "SIGTERM unmounts cleanly (exit 0); what was written survives and uploads"

# ---- the read-ahead is one segment (sysfs: as root only) ----
for seg in 1M 256k; do
	mount_atrestfs "$M" "$T/cache-ra$seg" "segment_size=$seg"
	[ -e "$M/none" ] || true # a lookup: the first one sets it (after the kernel's INIT)
	ra=$(cat "/sys/class/bdi/$(mountpoint -d "$M")/read_ahead_kb")
	want=$([ $seg = 1M ] && echo 1024 || echo 256)
	[ "$ra" = "$want" ] || fail "segment_size=$seg: read-ahead $ra KiB, not $want"
	umount_atrestfs "$M"
done
ok "the mount's read-ahead is one segment (1024 KiB, 256 KiB)"
check_sanitizer_logs "$T"/*.log
