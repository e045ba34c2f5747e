#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# A file's key never seals past seal.h's SEAL_MAX_SEALS (2^31), counted across
# opens and remounts: the count lives in the cache index. A file whose recorded
# count is 2 short of the limit takes one more version (a segment and a manifest),
# then closes fail with EDQUOT, also after a remount; reads keep working.
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
umount_atrestfs "$M"
/usr/bin/sqlite3 "$T/cache/index.db" "UPDATE nodes SET seals = $((MAX - 2)) WHERE name = 'f'"
[ "$(/usr/bin/sqlite3 "$T/cache/index.db" "SELECT seals FROM nodes WHERE name = 'f'")" = $((MAX - 2)) ] ||
	fail "the index has no seal count for f"

# append: opens, writes, closes; prints the errno name close() or write() failed with
append() {
	$PY - "$1" "$2" <<'PYEOF'
import errno, os, sys
try:
    fd = os.open(sys.argv[1], os.O_WRONLY | os.O_APPEND)
    os.write(fd, sys.argv[2].encode())
    os.close(fd)
    print("ok")
except OSError as e:
    print(errno.errorcode.get(e.errno, e.errno))
PYEOF
}

mount_atrestfs "$M" "$T/cache"
[ "$(append "$M/f" 'v2
')" = ok ] || fail "the last 2 seals the key has left were refused"
got=$(append "$M/f" 'v3
')
[ "$got" = EDQUOT ] || fail "a version past the key's seal limit: close gave '$got', not EDQUOT"
ok "the key's last seals are used, the next version is refused with EDQUOT"
grep -q "its key made $MAX seals, the limit" "$T/atrestfs.log" || fail "the refusal is not logged"

umount_atrestfs "$M"
mount_atrestfs "$M" "$T/cache"
# (the refused bytes stayed in memory, as a failed close leaves them; gone now)
[ "$(cat "$M/f")" = "v1
v2" ] || fail "the file does not read back as its last sealed version: $(od -c "$M/f" | head -3)"
got=$(append "$M/f" 'v3
')
[ "$got" = EDQUOT ] || fail "after a remount the key seals again: close gave '$got'"
ok "after a remount the file reads as its last sealed version and the count holds: EDQUOT"
umount_atrestfs "$M"
check_sanitizer_logs "$T"/*.log
