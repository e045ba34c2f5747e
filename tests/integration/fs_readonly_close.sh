#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# A close() of a read-only open commits nothing: while one handle holds unclosed
# writes, another opens the file read-only and closes it; atrestfs is then killed
# and remounted on its cache: the file is its last closed version, not the
# unclosed writes a reader's close would have committed.
. "$ATREST_SRC/tests/integration/lib.sh"
need_root
need_fuse

start_tefd
start_hcsed
M=$T/mnt
mount_atrestfs "$M" "$T/cache"

printf 'closed version\n' >"$M/f"
# one process holds the writer's unclosed bytes (its fd is not inherited by
# anything: every close of a copy would flush it), then opens read-only, reads
# and closes, and an fsync() through a read-only handle
/usr/bin/python3 - "$M/f" "$T/ready" <<'PYEOF' &
import os, sys, time
w = os.open(sys.argv[1], os.O_RDWR)
os.write(w, b"UNCLOSED WRITE\n")
r = os.open(sys.argv[1], os.O_RDONLY)
got = os.read(r, 100)
os.close(r)
if got != b"UNCLOSED WRITE\n":
    sys.exit("a reader does not see the writer's bytes: %r" % got)
r = os.open(sys.argv[1], os.O_RDONLY)
os.fsync(r)
os.close(r)
open(sys.argv[2], "w").close()
time.sleep(60)
PYEOF
PY_PID=$!
at_exit "kill $PY_PID"
wait_for_path "$T/ready" 10 || fail "the writer and reader did not run"
ok "read-only opens and an fsync through one closed while a writer's bytes are unclosed"

kill -KILL "$ATRESTFS_PID"
wait "$ATRESTFS_PID" 2>/dev/null || true
kill "$PY_PID"
wait "$PY_PID" 2>/dev/null || true
fusermount3 -uz "$M"
mount_atrestfs "$M" "$T/cache"
got=$(cat "$M/f")
[ "$got" = "closed version" ] || fail "after a crash the file reads '$got': a read-only close committed another handle's writes"
ok "after a crash and remount the file is its last closed version"

# the writer's own close still commits
printf 'second version\n' >"$M/f"
kill -KILL "$ATRESTFS_PID"
wait "$ATRESTFS_PID" 2>/dev/null || true
fusermount3 -uz "$M"
mount_atrestfs "$M" "$T/cache"
[ "$(cat "$M/f")" = "second version" ] || fail "a writer's close did not commit"
ok "a writer's close commits, crash or not"
umount_atrestfs "$M"
check_sanitizer_logs "$T"/*.log
