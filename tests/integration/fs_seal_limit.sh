#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# A file's key never seals past seal.h's SEAL_MAX_SEALS (2^31), counted across
# opens and remounts: the count lives in the cache index. Past 2^30 a commit
# rotates the key (fs_key_rotation.sh); with tefd down rotation cannot happen, and
# a file whose recorded count is 2 short of the limit takes one more version (a
# segment and a manifest) under its old key, then closes fail with EDQUOT, also
# after a remount; reads keep working. With tefd back the next commit rotates.
. "$ATREST_SRC/tests/integration/lib.sh"
need_root
need_fuse

PY=/usr/bin/python3
MAX=$((1 << 31))
start_tefd
start_hcsed
M=$T/mnt
mount_atrestfs "$M" "$T/cache"
printf 'v1\n' >"$M/f"
wait_synced "$M/f"
C1=$(getfattr --only-values -n user.onem2m.credential-id "$M/f")
umount_atrestfs "$M"
/usr/bin/sqlite3 "$T/cache/index.db" "UPDATE nodes SET seals = $((MAX - 2)) WHERE name = 'f'"
[ "$(/usr/bin/sqlite3 "$T/cache/index.db" "SELECT seals FROM nodes WHERE name = 'f'")" = $((MAX - 2)) ] ||
	fail "the index has no seal count for f"

# append FILE TEXT [fsync]: opens, writes, (fsyncs,) closes; prints the errno name
# close() or write() failed with, "fsync:NAME" when fsync() did
append() {
	$PY - "$1" "$2" "${3:-}" <<'PYEOF'
import errno, os, sys
stage = ""
try:
    fd = os.open(sys.argv[1], os.O_WRONLY | os.O_APPEND)
    os.write(fd, sys.argv[2].encode())
    if sys.argv[3] == "fsync":
        stage = "fsync:"
        os.fsync(fd)
        stage = ""
    os.close(fd)
    print("ok")
except OSError as e:
    print(stage + errno.errorcode.get(e.errno, str(e.errno)))
PYEOF
}

mount_atrestfs "$M" "$T/cache"
# the key is released once with tefd up (key_cache keeps it for this caller),
# then tefd goes: no rotation can register a new key
cat "$M/f" >/dev/null
stop_daemon "$TEFD_PID"
[ "$(append "$M/f" 'v2
')" = ok ] || fail "the last 2 seals the key has left were refused"
grep -q "cannot rotate the key of '/f'" "$T/atrestfs.log" || fail "the failed rotation is not logged"
got=$(append "$M/f" 'v3
')
[ "$got" = EDQUOT ] || fail "a version past the key's seal limit: close gave '$got', not EDQUOT"
got=$(append "$M/f" 'v3
' fsync)
[ "$got" = fsync:EDQUOT ] || fail "a version past the key's seal limit: fsync did not fail with EDQUOT ('$got')"
ok "tefd down, no rotation: the key's last seals are used, the next version is refused with EDQUOT"
grep -q "its key made $MAX seals, the limit" "$T/atrestfs.log" || fail "the refusal is not logged"

umount_atrestfs "$M"
start_tefd
mount_atrestfs "$M" "$T/cache"
# (the refused bytes stayed in memory, as a failed close leaves them; gone now)
[ "$(cat "$M/f")" = "v1
v2" ] || fail "the file does not read back as its last sealed version: $(od -c "$M/f" | head -3)"
[ "$(getfattr --only-values -n user.onem2m.credential-id "$M/f")" = "$C1" ] ||
	fail "the key changed while tefd was down"
stop_daemon "$TEFD_PID"
got=$(append "$M/f" 'v3
')
[ "$got" = EDQUOT ] || fail "after a remount the key seals again: close gave '$got'"
ok "after a remount the file reads as its last sealed version and the count holds: EDQUOT"

# tefd back: the next commit rotates and the file takes versions again
umount_atrestfs "$M"
start_tefd
mount_atrestfs "$M" "$T/cache"
[ "$(append "$M/f" 'v3
')" = ok ] || fail "with tefd back the exhausted key was not rotated"
[ "$(getfattr --only-values -n user.onem2m.credential-id "$M/f")" != "$C1" ] ||
	fail "a version was sealed with no rotation"
[ "$(cat "$M/f")" = "v1
v2
v3" ] || fail "the rotated file does not read back: $(od -c "$M/f" | head -3)"
ok "with tefd back the key is rotated at the next commit and the file is writable again"
umount_atrestfs "$M"
check_sanitizer_logs "$T"/*.log
