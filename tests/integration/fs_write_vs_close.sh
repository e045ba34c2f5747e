#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# A reader's open()/close() of a file while its writer waits for the sealers:
# atrestfs must neither crash (out-of-bounds n->dirty, found by e2e_load under
# UBSan) nor commit a manifest that drops the segments written so far.
. "$ATREST_SRC/tests/integration/lib.sh"
need_root
need_fuse

A=2331
start_tefd
start_hcsed
M=$T/mnt
mount_atrestfs "$M" "$T/cache" "segment_size=65536"
chmod 1777 "$M"
head -c 16000000 /dev/urandom >"$T/big"
chmod 0644 "$T/big"
as_user $A $A sh -c "echo x > '$M/f'"

# the reader: opens, reads a little and closes, over and over
(
	while [ ! -e "$T/stop" ]; do
		as_user $A $A /usr/bin/python3 -c '
import sys
for _ in range(50):
    try:
        open(sys.argv[1], "rb").read(10)
    except OSError:
        pass' "$M/f" || true
	done
) &
RP=$!
at_exit "touch '$T/stop'; kill $RP"
for i in 1 2 3 4; do
	as_user $A $A cp "$T/big" "$M/f" || fail "round $i: the writer's cp failed"
	kill -0 "$ATRESTFS_PID" 2>/dev/null || fail "round $i: atrestfs died"
	as_user $A $A cmp "$T/big" "$M/f" || fail "round $i: acknowledged content differs"
done
touch "$T/stop"
wait "$RP" || true
ok "4 x 16 MB written while a reader opens and closes the file: no crash, every byte right"
umount_atrestfs "$M"
check_sanitizer_logs "$T"/*.log
