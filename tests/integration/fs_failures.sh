#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The command line (unknown and malformed options named, mount -t fuse.atrestfs),
# tefd unreachable (EIO, nothing written), an expired key (EKEYEXPIRED), the cache
# bound (LRU eviction of clean segments, ENOSPC for pending ones) and reads of
# uncached data with hcsed down (EIO after a bounded wait).
. "$ATREST_SRC/tests/integration/lib.sh"
need_root
need_fuse

A=2501
fs=$ATREST_BUILD/fs/atrestfs
start_tefd
start_hcsed
M=$T/mnt
mkdir -p "$M"

# ---- options ----
expect_error() { # expect_error PATTERN ARGS...: atrestfs fails and says PATTERN
	local pat=$1
	shift
	if "$fs" "$@" >"$T/opt.out" 2>&1; then fail "atrestfs $* succeeded"; fi
	grep -q -- "$pat" "$T/opt.out" || fail "atrestfs $*: expected '$pat', got: $(cat "$T/opt.out")"
}
expect_error "unknown option 'bogus=1'" "$HCSE_URL" "$M" -o "tef=$TEF_SOCK,cache=$T/c0,bogus=1"
expect_error "invalid value 'abc' for option 'segment_size'" "$HCSE_URL" "$M" -o "tef=$TEF_SOCK,cache=$T/c0,segment_size=abc"
expect_error "invalid value 'secret' for option 'protect'" "$HCSE_URL" "$M" -o "tef=$TEF_SOCK,cache=$T/c0,protect=secret"
expect_error "invalid value 'world' for option 'share'" "$HCSE_URL" "$M" -o "tef=$TEF_SOCK,cache=$T/c0,share=world"
expect_error "invalid value '-5' for option 'key_ttl'" "$HCSE_URL" "$M" -o "tef=$TEF_SOCK,cache=$T/c0,key_ttl=-5"
expect_error "invalid value '2' for option 'ae_lease'" "$HCSE_URL" "$M" -o "tef=$TEF_SOCK,cache=$T/c0,ae_lease=2"
expect_error "invalid value '0' for option 'uploads'" "$HCSE_URL" "$M" -o "tef=$TEF_SOCK,cache=$T/c0,uploads=0"
expect_error "invalid value '9' for option 'uploads'" "$HCSE_URL" "$M" -o "tef=$TEF_SOCK,cache=$T/c0,uploads=9"
expect_error "missing option 'tef=SOCKET'" "$HCSE_URL" "$M" -o "cache=$T/c0"
expect_error "missing option 'cache=DIR'" "$HCSE_URL" "$M" -o "tef=$TEF_SOCK"
expect_error "invalid value 'ftp://x/cse-in' for option 'HCSE-URL'" ftp://x/cse-in "$M" -o "tef=$TEF_SOCK,cache=$T/c0"
"$fs" --help | grep -q "usage: atrestfs HCSE-URL MOUNTPOINT" || fail "--help"
mountpoint -q "$M" && fail "a refused command line mounted something"
ok "unknown and malformed options are refused, naming the option"

# ---- mount(8) through mount.fuse3, as from /etc/fstab ----
# mount(8) drops PATH before mount.fuse3 runs the program, so the uninstalled
# binary is named in the source ("PROGRAM#SOURCE"); fs_mount.sh runs the
# installed form, "-t fuse.atrestfs URL", with the binary where it is looked for
mount -t fuse "$ATREST_BUILD/fs/atrestfs#$HCSE_URL" "$M" \
	-o "tef=$TEF_SOCK,cache=$T/cache,allow_other,nosuid,nodev,_netdev,x-systemd.after=x" ||
	fail "mount(8) of fuse.atrestfs"
at_exit "umount -l $M"
mountpoint -q "$M" || fail "not mounted"
grep " $M fuse.atrestfs " /proc/mounts | grep -q "^$HCSE_URL " || fail "source is not the HCSE URL"
chmod 1777 "$M"
as_user $A $A sh -c "echo fstab > '$M/f'"
[ "$(as_user $A $A cat "$M/f")" = fstab ] || fail "round trip on the fstab mount"
wait_synced "$M/f"
umount "$M"
for i in $(seq 100); do mountpoint -q "$M" || break; sleep 0.1; done
mountpoint -q "$M" && fail "umount"
sleep 0.5 # the daemon exits after the kernel let go
ok "mount(8) via mount.fuse3: HCSE URL as source, type fuse.atrestfs; umount"

# ---- tefd unreachable ----
# key_cache=0: every open asks tefd (a cached key would serve the caller's
# next opens for key_cache seconds without it; fs_key_cache covers that)
mount_atrestfs "$M" "$T/cache" "segment_size=64k,cache_size=3M,hcse_timeout=2,key_ttl=4,key_cache=0"
[ "$(as_user $A $A cat "$M/f")" = fstab ] || fail "remount"
stop_daemon "$TEFD_PID"
if as_user $A $A cat "$M/f" >/dev/null 2>"$T/err"; then fail "opened without tefd"; fi
grep -q "Input/output error" "$T/err" || fail "without tefd: expected EIO, got $(cat "$T/err")"
if as_user $A $A sh -c "echo x > '$M/new'" 2>"$T/err"; then fail "created a file without tefd"; fi
grep -q "Input/output error" "$T/err" || fail "create without tefd: expected EIO, got $(cat "$T/err")"
[ -e "$M/new" ] && fail "a file exists although its key was never registered"
grep -q "tefd at '.*' is unreachable: " "$T/atrestfs.log" || fail "the reason is not logged"
start_tefd
[ "$(as_user $A $A cat "$M/f")" = fstab ] || fail "tefd back"
ok "tefd down: open and create give EIO, nothing created, reason logged"

# ---- keys renewed while the file exists (key_ttl=4) ----
as_user $A $A sh -c "echo lasting > '$M/lasting'"
first=$(getfattr --only-values -n user.onem2m.expires "$M/lasting")
sleep 6
[ "$(as_user $A $A cat "$M/lasting")" = lasting ] || fail "the key was not renewed"
later=$(getfattr --only-values -n user.onem2m.expires "$M/lasting")
[[ $later > $first ]] || fail "expires did not move: $first -> $later"
ok "key_ttl=4: the key is renewed in the background ($first -> $later)"

# ---- an expired key ----
as_user $A $A sh -c "echo soon > '$M/exp'"
when=$(( $(date +%s) + 2 ))
as_user $A $A setfattr -n user.onem2m.expires -v "$when" "$M/exp"
exp=$(getfattr --only-values -n user.onem2m.expires "$M/exp")
[ "$exp" = "$(date -u -d "@$when" +%Y%m%dT%H%M%S)" ] || fail "expires reads '$exp'"
[ "$(as_user $A $A cat "$M/exp")" = soon ] || fail "read before expiry"
sleep 3
if as_user $A $A cat "$M/exp" >/dev/null 2>"$T/err"; then fail "read after expiry"; fi
grep -q "Key has expired" "$T/err" || fail "after expiry: expected EKEYEXPIRED, got $(cat "$T/err")"
ok "user.onem2m.expires: EKEYEXPIRED after that time"

# ---- the cache bound ----
for i in 1 2 3; do
	head -c 1500000 /dev/urandom >"$T/big$i"
	as_user $A $A cp "$T/big$i" "$M/big$i"
	wait_synced "$M/big$i"
done
wait_synced "$M"/big*
limit=$((3 * 1024 * 1024 + 200000))
for i in $(seq 100); do
	used=$(du -sb "$T/cache/seg" | cut -f1)
	[ "$used" -le $limit ] && break
	sleep 0.1
done
[ "$used" -le $limit ] || fail "cache holds $used bytes with cache_size=3M"
for i in 1 2 3; do
	as_user $A $A cmp "$T/big$i" "$M/big$i" || fail "evicted segments of big$i did not come back"
done
for i in $(seq 100); do
	used=$(du -sb "$T/cache/seg" | cut -f1)
	[ "$used" -le $limit ] && break
	sleep 0.1
done
[ "$used" -le $limit ] || fail "cache holds $used bytes after reading back"
ok "cache_size=3M: clean segments evicted ($used bytes on disk), refetched and verified"

stop_daemon "$HCSED_PID"
# 6.75 MB of sealed segments were fetched through a 3 MB cache: big1 is evicted
# from it; the kernel's page cache (keep_cache) would still serve it: drop that
sync
echo 3 >/proc/sys/vm/drop_caches
start=$(date +%s)
if as_user $A $A cat "$M/big1" >/dev/null 2>"$T/err"; then fail "uncached read with hcsed down succeeded"; fi
grep -q "Input/output error" "$T/err" || fail "uncached read: expected EIO, got $(cat "$T/err")"
[ $(( $(date +%s) - start )) -le 12 ] || fail "EIO took longer than the bounded wait"
grep -q "uncached segment read of '/big1' .* failed with EIO because hcsed is down" "$T/atrestfs.log" ||
	fail "reason not logged"
ok "hcsed down: uncached reads give EIO within the bounded wait, reason logged"
head -c 5000000 /dev/urandom >"$T/big4"
if as_user $A $A cp "$T/big4" "$M/big4" 2>"$T/err"; then fail "pending data beyond cache_size accepted"; fi
grep -q "No space left on device" "$T/err" || fail "expected ENOSPC, got $(cat "$T/err")"
# an application retrying its writes gets ENOSPC each time, the log one line a minute
for i in 1 2 3 4 5; do as_user $A $A dd if="$T/big4" of="$M/big4" bs=64k conv=notrunc 2>/dev/null || true; done
[ "$(grep -c "cache full of pending uploads .*a write to '/big4' (hcsed '/cse-in/" "$T/atrestfs.log")" = 1 ] ||
	fail "a full cache is not logged once, naming the file"
as_user $A $A cmp "$T/big3" "$M/big3" || fail "a cached file is unreadable with hcsed down"
ok "pending data beyond cache_size gives ENOSPC; cached files still read"
umount_atrestfs "$M"
check_sanitizer_logs "$T"/*.log
