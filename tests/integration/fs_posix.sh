#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# POSIX behaviour matrix: the same operations on a native tmpfs directory and on
# atrestfs must give the same results, except the documented refusals (hard links
# and special files give EPERM on atrestfs).
. "$ATREST_SRC/tests/integration/lib.sh"
need_root
need_fuse

start_tefd
start_hcsed
M=$T/mnt
mount_atrestfs "$M" "$T/cache"
mkdir "$T/native"
mount -t tmpfs -o size=64m tmpfs "$T/native" || skip "cannot mount a tmpfs to compare with"
at_exit "umount $T/native"

/usr/bin/python3 "$ATREST_SRC/tests/integration/posix_matrix.py" "$T/native" >"$T/native.out"
/usr/bin/python3 "$ATREST_SRC/tests/integration/posix_matrix.py" "$M" >"$T/atrestfs.out"
cat "$T/atrestfs.out"

# documented differences (atrestfs(1), BUGS): the rest must match line by line
sed -i -e 's/^hard link: .*/hard link: EPERM/' -e 's/^mkfifo: .*/mkfifo: EPERM/' "$T/native.out"
if ! diff -u "$T/native.out" "$T/atrestfs.out" >"$T/diff.out"; then
	cat "$T/diff.out" >&2
	fail "atrestfs differs from tmpfs"
fi
ok "$(wc -l <"$T/atrestfs.out") cases behave as on tmpfs"

# and the same survives a remount and a fresh cache
wait_synced "$M/d/f3" "$M/sparse" "$M/big"
umount_atrestfs "$M"
mount_atrestfs "$M" "$T/cache2"
[ "$(stat -c %s:%a:%u:%g "$M/d/f3")" = "$(stat -c %s:%a:%u:%g "$T/native/d/f3")" ] ||
	fail "d/f3 metadata through a fresh cache"
cmp "$M/sparse" "$T/native/sparse" || fail "sparse file through a fresh cache"
cmp "$M/big" "$T/native/big" || fail "big through a fresh cache"
[ "$(readlink "$M/ln")" = d/f3 ] || fail "symlink through a fresh cache"
[ "$(ls "$M" | sort | tr '\n' ' ')" = "$(ls "$T/native" | grep -vx -e fifo -e hl | sort | tr '\n' ' ')" ] ||
	fail "listing through a fresh cache: $(ls "$M")"
ok "contents, metadata and symlinks identical through a fresh cache"
umount_atrestfs "$M"
check_sanitizer_logs "$T"/*.log
