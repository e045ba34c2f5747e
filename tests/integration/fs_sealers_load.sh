#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The sealer threads under concurrent writers and readers, without faults: e2e_load's
# writers create, append and rewrite files whose segments the sealers seal while
# readers open, read and close the same files; no read may return bytes of no
# version in flight, nor an older version than the last one closed before it began.
. "$ATREST_SRC/tests/integration/lib.sh"
need_root
need_fuse

PY=/usr/bin/python3
export E2E_TEST_PID=$$
LOAD=$ATREST_SRC/tests/integration/e2e_load.py
U=2801
NW=4 NR=4 PER=120 SECS=${FS_SEALERS_SECS:-20}
if [ "${ATREST_SANITIZE:-none}" != none ]; then
	PER=60 SECS=12
fi
canary="SEALERS-CANARY-$RANDOM$RANDOM"

start_tefd
start_hcsed
M=$T/mnt
# 4 KiB segments: nearly every version spans several, so writes hand them to the sealers
mount_atrestfs "$M" "$T/cache" "segment_size=${FS_SEALERS_SEG:-4k}"
chmod 0755 "$M"
mkdir -m 1777 "$T/w"
echo load >"$T/phase"
specs=()
for i in $(seq 1 $NW); do
	mkdir "$M/w$i"
	chown $U:$U "$M/w$i"
	touch "$T/w/w$i.log"
	chown $U "$T/w/w$i.log"
	specs+=("w$i:$T/w/w$i.log:$M/w$i:own")
done

W_PIDS=()
for i in $(seq 1 $NW); do
	as_user $U $U $PY "$LOAD" writer "w$i" "$M/w$i" $PER "" "$T/w/w$i.log" "$T/w/w$i.json" \
		"$T/phase" "$canary" "$SECS" 2>>"$T/writers.log" &
	W_PIDS+=($!)
done
R_PIDS=()
for i in $(seq 1 $NR); do
	as_user $U $U $PY "$LOAD" reader "r$i" "$canary" "$T/phase" "$T/readers.stop" \
		"$T/w/r$i.json" "${specs[@]}" 2>>"$T/readers.log" &
	R_PIDS+=($!)
done
for p in "${W_PIDS[@]}" "${R_PIDS[@]}"; do at_exit "kill $p"; done
sleep "$SECS"
kill -0 "$ATRESTFS_PID" 2>/dev/null || fail "atrestfs died under the load"
echo stop >"$T/phase.new" && mv "$T/phase.new" "$T/phase"
for p in "${W_PIDS[@]}"; do wait "$p" || fail "writer $p exited with $?"; done
touch "$T/readers.stop"
for p in "${R_PIDS[@]}"; do wait "$p" || fail "reader $p exited with $?"; done
ok "$NW writers and $NR readers ran for $SECS s"

mans=$(printf "$T/w/w%s.json," $(seq 1 $NW))
rds=$(printf "$T/w/r%s.json," $(seq 1 $NR))
$PY "$LOAD" report load,stop "${mans%,}" "${rds%,}" || fail "a reader was served bytes no writer wrote, or an older version"
ok "every read returned the last closed version or one in flight"
for i in $(seq 1 $NW); do
	as_user $U $U $PY "$LOAD" verify "$T/w/w$i.json" "$M/w$i" >"$T/verify.out" || fail "w$i: $(cat "$T/verify.out")"
done
ok "every file holds its last version"
umount_atrestfs "$M"
check_sanitizer_logs "$T"/*.log
