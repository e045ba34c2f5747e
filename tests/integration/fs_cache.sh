#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Promises of issue 5 not visible in a file's bytes: inode numbers stable across
# remounts (same cache, and a fresh one), writes reaching atrestfs 1 MiB at a
# time (max_write), the cache evicting clean segments least recently used first
# and never a pending one, and user.onem2m.expires set in the past.
. "$ATREST_SRC/tests/integration/lib.sh"
need_root
need_fuse

A=2901
start_tefd
start_hcsed
M=$T/mnt

# ---- inode numbers ----
mount_atrestfs "$M" "$T/cache"
chmod 1777 "$M"
# the symlink first: it has no state xattr to wait for, the files after it do
as_user $A $A ln -s d/e/one "$M/ln"
as_user $A $A mkdir -p "$M/d/e"
as_user $A $A sh -c "echo one > '$M/d/one'; echo two > '$M/d/e/two'"
as_user $A $A mv "$M/d/one" "$M/d/e/one"
inos() { (cd "$M" && find . -printf '%p %i\n' | sort); }
inos >"$T/ino.1"
wait_synced "$M/d/e/one" "$M/d/e/two" "$M/d/e" "$M/d"
umount_atrestfs "$M"
mount_atrestfs "$M" "$T/cache"
inos >"$T/ino.2"
diff -u "$T/ino.1" "$T/ino.2" >&2 || fail "inode numbers changed across a remount on the same cache"
# the kernel's view must not be the only one: atrestfs answers lookups after a drop
echo 2 >/proc/sys/vm/drop_caches
inos >"$T/ino.3"
diff -u "$T/ino.1" "$T/ino.3" >&2 || fail "inode numbers changed after the dentry cache was dropped"
umount_atrestfs "$M"
mount_atrestfs "$M" "$T/cache-fresh"
inos >"$T/ino.4"
diff -u "$T/ino.1" "$T/ino.4" >&2 || fail "inode numbers changed through a fresh cache"
# a new file after the rebuild takes a new number, not one in use
as_user $A $A sh -c "echo new > '$M/new'"
new=$(stat -c %i "$M/new")
grep -q " $new\$" "$T/ino.1" && fail "a new file reuses inode $new"
umount_atrestfs "$M"
ok "inode numbers stable across remounts, the same cache or a fresh one ($(wc -l <"$T/ino.1") nodes)"

# ---- max_write: the kernel hands atrestfs 1 MiB writes ----
# FUSE's debug output (-d) logs every request with its size
"$ATREST_BUILD/fs/atrestfs" "$HCSE_URL" "$M" -f -d -o "tef=$TEF_SOCK,cache=$T/cache,allow_other" \
	2>"$T/fuse-debug.out" &
ATRESTFS_PID=$!
at_exit "fusermount3 -uz $M"
for ((i = 0; i < 100; i++)); do mountpoint -q "$M" && break; sleep 0.1; done
mountpoint -q "$M" || fail "debug mount"
as_user $A $A dd if=/dev/zero of="$M/big" bs=4M count=4 status=none
umount_atrestfs "$M"
grep -Eq "max_write=0x0*100000$" "$T/fuse-debug.out" || fail "INIT did not negotiate max_write=1 MiB: $(grep -m1 max_write "$T/fuse-debug.out")"
# "opcode: WRITE (16), nodeid: N, insize: BYTES": the payload is insize - 80
largest=$(grep -o 'opcode: WRITE (16), nodeid: [0-9]*, insize: [0-9]*' "$T/fuse-debug.out" |
	awk '{ if ($NF > m) m = $NF } END { print m - 80 }')
n1m=$(grep -o 'opcode: WRITE (16), nodeid: [0-9]*, insize: [0-9]*' "$T/fuse-debug.out" |
	awk '$NF - 80 == 1048576' | wc -l)
[ "$largest" = 1048576 ] || fail "the largest write atrestfs saw is $largest bytes, not 1 MiB"
[ "$n1m" -ge 15 ] || fail "only $n1m of the 16 MiB came as 1 MiB writes"
ok "max_write: 16 MiB written with bs=4M reach atrestfs as $n1m writes of 1 MiB"
rm -f "$T/fuse-debug.out"

# ---- cache eviction: least recently used clean segments, never pending ones ----
# segment_size=64k, cache_size=1M: a 320 KiB file is 5 sealed segments of ~87 KiB
# (base64url), two
# fit, a third evicts at least 2
opts="segment_size=64k,cache_size=1M,hcse_timeout=2"
mount_atrestfs "$M" "$T/cache-lru" "ae=lru,$opts"
chmod 1777 "$M"
segs() { ls "$T/cache-lru/seg/$(stat -c %i "$M/$1")" 2>/dev/null | wc -l; }
for f in old mid; do
	head -c $((5 * 65536)) /dev/urandom >"$T/$f"
	as_user $A $A cp "$T/$f" "$M/$f"
	wait_synced "$M/$f"
	sleep 1.1 # last use is kept in seconds
done
# reread FILE: reads it as uid A with its pages dropped from the kernel's
# cache first, so that the reads reach atrestfs
reread() {
	as_user $A $A /usr/bin/python3 -c '
import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
while os.read(fd, 1 << 20): pass' "$1"
}
# old is used again: mid becomes the least recently used
reread "$M/old"
sleep 1.1
head -c $((5 * 65536)) /dev/urandom >"$T/new"
as_user $A $A cp "$T/new" "$M/new"
wait_synced "$M/new"
for ((i = 0; i < 50; i++)); do
	[ "$(segs mid)" -lt 5 ] && break
	sleep 0.1
done
[ "$(segs old)" = 5 ] || fail "the recently read file lost segments ($(segs old) of 5 left, mid has $(segs mid))"
[ "$(segs new)" = 5 ] || fail "the newest file lost segments ($(segs new) of 5 left)"
[ "$(segs mid)" -lt 5 ] || fail "nothing evicted from the least recently used file"
ok "eviction takes the least recently used file's segments (mid: $(segs mid) of 5 left; old, new: 5)"

# pending segments are never evicted, even the least recently used: hcsed
# restarted refusing bodies over 50 kB takes small objects but not this
# file's segments (HTTP 413: a refusal, not an outage, so the uploader's
# passes go on and evict); then newer reads push the cache over its bound
stop_daemon "$HCSED_PID"
start_hcsed --max-body 50000
head -c $((3 * 65536)) /dev/urandom >"$T/stuck"
as_user $A $A cp "$T/stuck" "$M/stuck"
sleep 1.1
for f in old mid new; do
	reread "$M/$f"
done
sleep 6 # an idle pass (5 s) evicts
[ "$(getfattr --only-values -n user.onem2m.state "$M/stuck")" = pending ] || fail "stuck was uploaded"
[ "$(segs stuck)" = 3 ] || fail "pending segments were evicted ($(segs stuck) of 3 left)"
used=$(du -sb "$T/cache-lru/seg" | cut -f1)
[ "$used" -le $((1048576 + 300000)) ] || fail "nothing was evicted: $used bytes cached"
echo 3 >/proc/sys/vm/drop_caches
as_user $A $A cmp "$T/stuck" "$M/stuck" || fail "the pending file no longer reads back"
stop_daemon "$HCSED_PID"
start_hcsed
wait_synced "$M/stuck"
ok "pending segments stay while older-used clean ones are evicted ($used bytes cached)"

# a writer keeps committing while the uploader's passes evict; every version
# must arrive complete
# (two at a time: more pending than cache_size would be ENOSPC)
for i in $(seq 8); do
	head -c $((4 * 65536 + i)) /dev/urandom >"$T/p$i"
	as_user $A $A cp "$T/p$i" "$M/p$i"
	[ $((i % 2)) = 1 ] || wait_synced "$M/p$((i - 1))" "$M/p$i"
done
wait_synced "$M"/p*
umount_atrestfs "$M"
mount_atrestfs "$M" "$T/cache-lru2" "ae=lru"
for f in old mid new stuck p1 p2 p3 p4 p5 p6 p7 p8; do
	as_user $A $A cmp "$T/$f" "$M/$f" || fail "$f through a fresh cache"
done
ok "files written while the cache evicts all reach hcsed complete"
umount_atrestfs "$M"

# ---- user.onem2m.expires in the past: refused (tefd refuses an expiration
# time in the past, atrestfs(1)); the key and the data stay as they were ----
mount_atrestfs "$M" "$T/cache"
as_user $A $A sh -c "echo past > '$M/past'"
before=$(getfattr --only-values -n user.onem2m.expires "$M/past")
past=$(( $(date +%s) - 3600 ))
if as_user $A $A setfattr -n user.onem2m.expires -v "$past" "$M/past" 2>"$T/err"; then
	fail "an expiry in the past was accepted"
fi
grep -q "Invalid argument" "$T/err" || fail "expires in the past: expected EINVAL, got $(cat "$T/err")"
[ "$(getfattr --only-values -n user.onem2m.expires "$M/past")" = "$before" ] || fail "expires changed"
[ "$(as_user $A $A cat "$M/past")" = past ] || fail "a refused expiry left the file unreadable"
ok "user.onem2m.expires in the past is refused (EINVAL); the file stays readable"
umount_atrestfs "$M"
check_sanitizer_logs "$T"/*.log
