#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Randomized exerciser (fsx-style) against an in-memory model, across remounts and
# a fresh cache. ATREST_FSX_SEED=N replays a run; the seed is always printed.
. "$ATREST_SRC/tests/integration/lib.sh"
need_root
need_fuse

seed=${ATREST_FSX_SEED:-20261128}
ops=${ATREST_FSX_OPS:-1500}
echo "fs_fsx: seed $seed (replay with ATREST_FSX_SEED=$seed)"
fsx=$ATREST_BUILD/tests/integration/atrest_fsx
start_tefd
start_hcsed
M=$T/mnt
mkdir -p "$T/model"

mount_atrestfs "$M" "$T/cache" "segment_size=64k"
"$fsx" "$M" "$T/model" "$seed" "$ops" || fail "phase 1 (seed $seed)"
ok "phase 1: $ops operations"
umount_atrestfs "$M"

mount_atrestfs "$M" "$T/cache" "segment_size=64k"
"$fsx" "$M" "$T/model" $((seed + 1)) "$ops" || fail "phase 2 after a remount (seed $seed)"
ok "phase 2 after a remount: $ops operations"
wait_synced "$M"/fsx*
umount_atrestfs "$M"

mount_atrestfs "$M" "$T/cache2" "segment_size=64k"
"$fsx" "$M" "$T/model" $((seed + 2)) "$ops" || fail "phase 3 on a fresh cache (seed $seed)"
ok "phase 3 on a fresh cache: $ops operations"
umount_atrestfs "$M"

mount_atrestfs "$M" "$T/cache2" "segment_size=64k"
"$fsx" "$M" "$T/model" $((seed + 3)) 0 || fail "final verification (seed $seed)"
ok "final state verified after a last remount"
umount_atrestfs "$M"
check_sanitizer_logs "$T"/*.log
