#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# What a durable close() costs (DESIGN.md 6): N files of 4 KiB created and
# closed by 1 and by 8 concurrent writers, on atrestfs (default options, the
# durable close) and on gocryptfs (whose close syncs nothing) on the same
# disk. Prints files/s and the median close() in ms, min/median/max of RUNS
# runs, with the load average.
# Usage (root): tests/bench/bench_close.sh [BUILD-DIR]   env: RUNS, N, BENCH_DIR
set -euo pipefail
ATREST_SRC=$(cd "$(dirname "$0")/../.." && pwd)
ATREST_BUILD=$(cd "${1:-$ATREST_SRC/build}" && pwd)
export ATREST_SRC ATREST_BUILD
. "$ATREST_SRC/tests/integration/lib.sh"
need_root
need_fuse

RUNS=${RUNS:-3}
N=${N:-500}
B=${BENCH_DIR:-$T}
py=$ATREST_SRC/tests/bench/bench_close.py
start_tefd
start_hcsed
mount_atrestfs "$B/mnt" "$B/cache"
chmod 1777 "$B/mnt"
. "$ATREST_SRC/tests/bench/bench_lib.sh"
if command -v gocryptfs >/dev/null; then
	gocryptfs_fresh
fi

declare -A R
for run in $(seq 1 "$RUNS"); do
	for fs in atrestfs gocryptfs; do
		m=$B/mnt
		[ $fs = gocryptfs ] && { [ -d "$GM" ] && mountpoint -q "$GM" || continue; m=$GM; }
		for w in 1 8; do
			rm -rf "$m/b" && mkdir "$m/b"
			read -r fps ms < <(/usr/bin/python3 "$py" "$m/b" $w "$N")
			R[$fs/$w/fps]="${R[$fs/$w/fps]:-} $fps"
			R[$fs/$w/ms]="${R[$fs/$w/ms]:-} $ms"
		done
	done
done
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
printf "%-10s %-8s %-22s %s\n" fs writers "files/s min/med/max" "close ms min/med/max"
for fs in atrestfs gocryptfs; do
	for w in 1 8; do
		[ -n "${R[$fs/$w/fps]:-}" ] || continue
		printf "%-10s %-8s %-22s %s\n" $fs $w "$(stats "${R[$fs/$w/fps]}")" "$(stats "${R[$fs/$w/ms]}")"
	done
done
