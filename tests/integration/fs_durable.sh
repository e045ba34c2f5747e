#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# close() makes a version durable (DESIGN.md 6): strace on atrestfs shows the
# index WAL fdatasync()ed before close() returns, and for a segment too large
# for the index (over 64 KiB sealed) its file: one sync per segment file and
# one WAL sync per batch of concurrent closes; a small file costs the WAL sync
# alone. A file closed just before kill -9 is there after a remount.
. "$ATREST_SRC/tests/integration/lib.sh"
need_root
need_fuse
command -v strace >/dev/null || skip "strace is not installed (tests/run.sh installs it)"

A=2341
start_tefd
start_hcsed
M=$T/mnt
C=$T/cache
mount_atrestfs "$M" "$C"
chmod 1777 "$M"
as_user $A $A sh -c "echo warm > '$M/warm'" # registers the AE, opens the WAL

# strace_on LOG: attaches to every thread of atrestfs (-f with -p does)
strace_on() {
	strace -f -p "$ATRESTFS_PID" -qq -y -ttt -T -e trace=fdatasync,fsync,syncfs -o "$1" &
	STRACE_PID=$!
	at_exit "kill $STRACE_PID 2>/dev/null"
	sleep 1 # strace attaches asynchronously: nothing before this is seen
}
strace_off() {
	sleep 0.5
	kill -INT "$STRACE_PID"
	wait "$STRACE_PID" 2>/dev/null || true
}
# count LOG SYSCALL PATH-REGEX: calls on matching descriptors (strace -f
# splits a call other threads interrupt into "<unfinished ...>" and "resumed")
count() {
	{ grep -E " $2\([0-9]+<$3>(\) += 0| <unfinished)" "$1" || true; } | wc -l
}

# ---- one close alone ---------------------------------------------------------
strace_on "$T/one.strace"
as_user $A $A /usr/bin/python3 -c '
import os, sys, time
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
os.write(fd, b"d" * 4096)
t0 = time.time()
os.close(fd)
print("%.6f %.6f" % (t0, time.time()))' "$M/one" >"$T/one.times" || fail "writing one file"
strace_off
read -r T0 T1 <"$T/one.times"
cat "$T/one.strace" >&2
segs=$(count "$T/one.strace" fdatasync "$C/seg/[0-9]+/0\.[0-9]+")
wals=$(count "$T/one.strace" fdatasync ".*/index\.db-wal")
dirs=$(count "$T/one.strace" fsync "$C/seg(/[0-9]+)?")
syncfs=$(grep -c "syncfs(" "$T/one.strace" || true)
[ "$segs" = 0 ] || fail "one close of a 4 KiB file: $segs segment fdatasyncs, expected 0 (in the index)"
[ "$wals" = 1 ] || fail "one close: $wals WAL fdatasyncs, expected 1"
[ "$dirs" = 0 ] || fail "one close of a small file: $dirs directory fsyncs, expected 0"
[ -z "$(find "$C/seg" -mindepth 1)" ] || fail "a 4 KiB file left files under $C/seg"
[ "$syncfs" = 0 ] || fail "syncfs() called: it would sync every other file on the disk"
# the WAL sync ends (start + duration) before close() returned, and after it began
/usr/bin/python3 - "$T/one.strace" "$T0" "$T1" <<'EOF' || fail "close() returned before its WAL sync ended"
import re, sys
t0, t1 = float(sys.argv[2]), float(sys.argv[3])
for line in open(sys.argv[1]):
    m = re.search(r"^\d+\s+([\d.]+) fdatasync\(\d+<.*index\.db-wal>\) += 0 <([\d.]+)>", line)
    if m:
        end = float(m.group(1)) + float(m.group(2))
        print("close %.6f..%.6f, WAL sync ended %.6f" % (t0, t1, end))
        sys.exit(0 if t0 <= end <= t1 else 1)
sys.exit(1)
EOF
ok "one close of 4 KiB: 1 WAL fdatasync and nothing else, before close() returned"

# copy_traced NAME BYTES: copies BYTES of random data to $M/NAME as $A under
# strace, sets segs, wals and dirs to the syncs seen, and checks the copy
copy_traced() {
	head -c "$2" /dev/urandom >"$T/$1"
	chmod 0644 "$T/$1"
	strace_on "$T/$1.strace"
	as_user $A $A cp "$T/$1" "$M/$1" || fail "writing $1"
	strace_off
	segs=$(count "$T/$1.strace" fdatasync "$C/seg/[0-9]+/[0-9]+\.[0-9]+")
	wals=$(count "$T/$1.strace" fdatasync ".*/index\.db-wal")
	dirs=$(count "$T/$1.strace" fsync "$C/seg(/[0-9]+)?")
	as_user $A $A cmp "$T/$1" "$M/$1" || fail "$1 reads back wrong"
}

# ---- a rename made durable by fsync() of its directory ---------------------------
# the rename's rows wait in a batch nobody syncs; fsync(dir) is what syncs it
as_user $A $A sh -c "echo v1 > '$M/tmpname'"
strace_on "$T/rename.strace"
as_user $A $A /usr/bin/python3 -c '
import os, sys
os.rename(sys.argv[1] + "/tmpname", sys.argv[1] + "/final")
fd = os.open(sys.argv[1], os.O_RDONLY | os.O_DIRECTORY)
os.fsync(fd)
os.close(fd)' "$M" || fail "rename and fsync of the directory"
strace_off
wals=$(count "$T/rename.strace" fdatasync ".*/index\.db-wal")
[ "$wals" -ge 1 ] || fail "rename + fsync(dir): no WAL fdatasync: the rename is not durable"
ok "rename + fsync of the directory: the WAL is synced before fsync returns"

# ---- either side of the 64 KiB threshold ----------------------------------------
# 40 KiB seals to about 54 KiB (in the index), 100 KiB to about 134 KiB (a file)
for kib in 40 100; do
	copy_traced "f$kib" $((kib * 1024))
	want_segs=0 want_dirs=0
	[ $kib = 100 ] && want_segs=1 want_dirs=2 # seg/<ino> and seg/, both new
	[ "$segs/$wals/$dirs" = "$want_segs/1/$want_dirs" ] ||
		fail "a $kib KiB file: $segs segment, $wals WAL, $dirs directory syncs; expected $want_segs/1/$want_dirs"
done
ok "40 KiB: the WAL sync alone; 100 KiB: its segment file, its names, the WAL"

# ---- a file of 4 segments (3 of them sealed by the sealer threads) ----------
copy_traced four $((3 * 1024 * 1024 + 4096))
[ "$segs" = 3 ] || fail "a 4-segment file: $segs segment fdatasyncs, expected 3 (its 4 KiB tail is in the index)"
[ "$wals" = 1 ] || fail "a 4-segment file: $wals WAL fdatasyncs, expected 1"
ok "a 4-segment file: one fdatasync per segment file (3 of 1 MiB), one WAL sync"

# ---- concurrent closes share batches ------------------------------------------
N=8
PER=6
strace_on "$T/many.strace"
as_user $A $A /usr/bin/python3 -c '
import os, sys, threading
m, n, per = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
go = threading.Barrier(n)
def writer(w):
    # created and written first (tefd registrations take turns), then
    # every writer closes its files at the same moment
    fds = []
    for i in range(per):
        fds.append(os.open("%s/c%d_%d" % (m, w, i), os.O_WRONLY | os.O_CREAT, 0o644))
        os.write(fds[-1], b"c" * 4096)
    go.wait()
    for fd in fds:
        os.close(fd)
ts = [threading.Thread(target=writer, args=(w,)) for w in range(n)]
[t.start() for t in ts]
[t.join() for t in ts]' "$M" $N $PER || fail "concurrent writers"
strace_off
! grep -E "(fsync|fdatasync).*= -1" "$T/many.strace" || fail "a sync failed"
files=$((N * PER))
segs=$(count "$T/many.strace" fdatasync "$C/seg/[0-9]+/0\.[0-9]+")
wals=$(count "$T/many.strace" fdatasync ".*/index\.db-wal")
echo "$files closes: $segs segment syncs, $wals WAL syncs" >&2
[ "$segs" = 0 ] || fail "$files small files closed: $segs segment fdatasyncs, expected none"
[ "$wals" -ge 1 ] && [ "$wals" -lt "$files" ] ||
	fail "$files concurrent closes took $wals WAL syncs: no batch was shared"
ok "$files concurrent closes by $N writers: $segs segment syncs, $wals WAL syncs (batched)"

# every byte is there after a remount
umount_atrestfs "$M"
mount_atrestfs "$M" "$C"
for w in $(seq 0 $((N - 1))); do
	for i in $(seq 0 $((PER - 1))); do
		[ "$(as_user $A $A cat "$M/c${w}_$i" | wc -c)" = 4096 ] || fail "c${w}_$i lost after remount"
	done
done
ok "the $files files read back after a remount"

# ---- kill -9 right after close() returned -----------------------------------------
as_user $A $A /usr/bin/python3 -c '
import os, sys
for name, n in (("k9small", 4096), ("k9large", 300 * 1024)):
    fd = os.open(os.path.join(sys.argv[1], name), os.O_WRONLY | os.O_CREAT, 0o644)
    os.write(fd, bytes([n % 251]) * n)
    os.close(fd)' "$M" || fail "writing before kill -9"
kill -KILL "$ATRESTFS_PID"
wait "$ATRESTFS_PID" 2>/dev/null || true
fusermount3 -uz "$M"
mount_atrestfs "$M" "$C"
for f in k9small:4096 k9large:307200; do
	want=$(/usr/bin/python3 -c "import sys; n=int(sys.argv[1]); sys.stdout.buffer.write(bytes([n % 251]) * n)" "${f#*:}" | md5sum)
	[ "$(as_user $A $A cat "$M/${f%%:*}" | md5sum)" = "$want" ] || fail "${f%%:*} lost or wrong after kill -9"
done
ok "a 4 KiB and a 300 KiB file closed just before kill -9 read back whole"
umount_atrestfs "$M"
check_sanitizer_logs "$T"/*.log
