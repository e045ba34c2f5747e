#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Plaintext never reaches a disk (issue 5), not even swap: while a file is
# open for writing, every copy of its content in atrestfs's memory is in a
# locked (mlock) mapping left out of core dumps (MADV_DONTDUMP), VmLck
# counts them, and once the file is closed no copy is left (wiped).
. "$ATREST_SRC/tests/integration/lib.sh"
need_root
need_fuse

A=2342
start_tefd
start_hcsed
M=$T/mnt
mount_atrestfs "$M" "$T/cache"
chmod 1777 "$M"
scan="/usr/bin/python3 $ATREST_SRC/tests/integration/plainmem_scan.py $ATRESTFS_PID"
MARK=$(head -c 48 /dev/urandom | od -An -tx1 | tr -d ' \n')
vmlck() { awk '/^VmLck:/ { print $2 }' "/proc/$ATRESTFS_PID/status"; }

# the writer keeps the file open (its 100 KiB sit in a dirty segment buffer)
# until told to close it; the marker comes three times, between zeros
# fifos opened read-write here: neither open nor a dead peer can block the test
mkfifo -m 0666 "$T/go" "$T/ready"
exec 3<>"$T/ready" 4<>"$T/go"
at_exit "echo go >&4; echo go >&4" # a failed check still lets the peers end
as_user $A $A /usr/bin/python3 -c '
import os, sys
mark = bytes.fromhex(sys.argv[2])
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT, 0o600)
for off in (1000, 40000, 90000):
    os.pwrite(fd, mark, off)
os.pwrite(fd, b"\0", 100 * 1024)
open(sys.argv[3], "w").write("written\n")
open(sys.argv[4]).readline()
os.close(fd)' "$M/secret" "$MARK" "$T/ready" "$T/go" &
WP=$!
read -t 60 -r _ <&3 || fail "the peer did not get ready"
lck=$(vmlck)
$scan "$MARK" >"$T/open.scan"
cat "$T/open.scan" >&2
echo "VmLck while open: $lck kB" >&2
[ -s "$T/open.scan" ] || fail "the written plaintext is nowhere in atrestfs's memory (the scan is broken)"
! grep -v "locked=True dontdump=True" "$T/open.scan" || fail "plaintext in memory that may be swapped or dumped"
[ "$lck" -ge 1024 ] || fail "VmLck is $lck kB while a 1 MiB segment buffer is held"
ok "while open for writing: every copy of the plaintext is locked and not dumpable (VmLck $lck kB)"

echo go >&4
wait "$WP" || fail "the writer failed"
sleep 0.5 # RELEASE follows close() asynchronously
$scan "$MARK" >"$T/closed.scan"
[ ! -s "$T/closed.scan" ] || fail "plaintext left in memory after close: $(cat "$T/closed.scan")"
ok "after close: no copy of the plaintext left (wiped)"

# a reader's buffers too: the content is back in memory only while read
as_user $A $A /usr/bin/python3 -c '
import sys
f = open(sys.argv[1], "rb")
assert bytes.fromhex(sys.argv[2]) in f.read()
open(sys.argv[3], "w").write("read\n")
open(sys.argv[4]).readline()' "$M/secret" "$MARK" "$T/ready" "$T/go" &
WP=$!
read -t 60 -r _ <&3 || fail "the peer did not get ready"
$scan "$MARK" >"$T/read.scan"
cat "$T/read.scan" >&2
! grep -v "locked=True dontdump=True" "$T/read.scan" || fail "read plaintext in memory that may be swapped or dumped"
echo go >&4
wait "$WP" || fail "the reader failed"
sleep 0.5
$scan "$MARK" >"$T/read-closed.scan"
[ ! -s "$T/read-closed.scan" ] || fail "read plaintext left in memory after close: $(cat "$T/read-closed.scan")"
ok "a reader's plaintext is locked while open and wiped after close"
# a sealed user.* attribute's value: nowhere in memory once set and read back
XMARK=$(head -c 48 /dev/urandom | od -An -tx1 | tr -d ' \n')
as_user $A $A setfattr -n user.note -v "0x$XMARK" "$M/secret" || fail "setfattr"
as_user $A $A getfattr -e hex -n user.note "$M/secret" | grep -qx "user.note=0x$XMARK" ||
	fail "the sealed attribute does not read back"
$scan "$XMARK" >"$T/xattr.scan"
[ ! -s "$T/xattr.scan" ] || fail "an attribute's plaintext left in memory: $(cat "$T/xattr.scan")"
ok "a sealed attribute's value is wiped once set and read"
umount_atrestfs "$M"
check_sanitizer_logs "$T"/*.log
