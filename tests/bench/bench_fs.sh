#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# atrestfs side by side with gocryptfs on the same disk (issue 5's benchmark):
# sequential write of 256 MiB, warm and cold sequential reads, 2,000 files of
# 4 KiB created and read back, the time until every upload is acknowledged, and
# atrestfs's peak RSS while writing a 2 GiB file. Each figure is min/median/max
# of RUNS runs (default 3); ratios compare medians (atrestfs / gocryptfs). The
# load average is printed too: on a shared machine the figures are only as
# good as it was quiet.
# Usage (root): tests/bench/bench_fs.sh [BUILD-DIR]    env: RUNS, BENCH_DIR, SIZE_MIB
set -euo pipefail
ATREST_SRC=$(cd "$(dirname "$0")/../.." && pwd)
ATREST_BUILD=$(cd "${1:-$ATREST_SRC/build}" && pwd)
export ATREST_SRC ATREST_BUILD
. "$ATREST_SRC/tests/integration/lib.sh"
need_root
need_fuse
command -v gocryptfs >/dev/null || skip "gocryptfs is not installed (apt-get install gocryptfs)"

RUNS=${RUNS:-3}
SIZE_MIB=${SIZE_MIB:-256}
N_SMALL=${N_SMALL:-2000}
# the same disk for both: under BENCH_DIR (default: the temp dir)
B=${BENCH_DIR:-$T}
mkdir -p "$B"
small=$ATREST_SRC/tests/bench/bench_small.py

start_tefd
start_hcsed
# in memory, so the source disk is not measured; a name of its own, so two
# benchmarks running at once on a shared machine do not remove each other's
SRC=$(mktemp /dev/shm/atrest-bench-src.XXXXXX)
at_exit "rm -f $SRC"
head -c $((SIZE_MIB * 1024 * 1024)) /dev/urandom >"$SRC"

now() { date +%s.%N; }
# mibs SECONDS -> MiB/s of SIZE_MIB
mibs() { awk -v s="$1" -v m="$SIZE_MIB" 'BEGIN { printf "%.1f", m / s }'; }
fps() { awk -v s="$1" -v n="$N_SMALL" 'BEGIN { printf "%.0f", n / s }'; }
drop_caches() { sync; echo 3 >/proc/sys/vm/drop_caches; }

declare -A R # R[metric/fs] = "v1 v2 v3"
add() { R[$1/$2]="${R[$1/$2]:-} $3"; }

. "$ATREST_SRC/tests/bench/bench_lib.sh"

small_gocryptfs() {
	mkdir "$GM/small"
	add create gocryptfs "$(fps "$(/usr/bin/python3 "$small" create "$GM/small" "$N_SMALL")")"
	add readsmall gocryptfs "$(fps "$(/usr/bin/python3 "$small" read "$GM/small" "$N_SMALL")")"
}
small_atrestfs() {
	mkdir "$AM/small"
	add create atrestfs "$(fps "$(/usr/bin/python3 "$small" create "$AM/small" "$N_SMALL")")"
	add synced atrestfs "$(/usr/bin/python3 "$small" synced "$AM/small" "$N_SMALL")"
	add readsmall atrestfs "$(fps "$(/usr/bin/python3 "$small" read "$AM/small" "$N_SMALL")")"
}

# the machine may be shared: its load is printed with the figures
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
for run in $(seq 1 "$RUNS"); do
	echo "run $run of $RUNS (load $(cut -d' ' -f1-3 /proc/loadavg))" >&2
	# ---- gocryptfs ----
	gocryptfs_fresh
	t0=$(now); dd if="$SRC" of="$GM/big" bs=1M status=none; t1=$(now)
	add write gocryptfs "$(mibs "$(echo "$t1 - $t0" | bc)")"
	t0=$(now); dd if="$GM/big" of=/dev/null bs=1M status=none; t1=$(now)
	add warm gocryptfs "$(mibs "$(echo "$t1 - $t0" | bc)")"
	gocryptfs_umount; drop_caches; gocryptfs_mount
	t0=$(now); dd if="$GM/big" of=/dev/null bs=1M status=none; t1=$(now)
	add cold gocryptfs "$(mibs "$(echo "$t1 - $t0" | bc)")"

	# ---- atrestfs ----
	AM=$B/atrest.mnt
	rm -rf "$B/atrest.cache" "$B/atrest.cache2"
	HCSE_AE=bench$run$RANDOM
	mount_atrestfs "$AM" "$B/atrest.cache" "ae=$HCSE_AE"
	t0=$(now); dd if="$SRC" of="$AM/big" bs=1M status=none; t1=$(now)
	add write atrestfs "$(mibs "$(echo "$t1 - $t0" | bc)")"
	t0=$(now); dd if="$AM/big" of=/dev/null bs=1M status=none; t1=$(now)
	add warm atrestfs "$(mibs "$(echo "$t1 - $t0" | bc)")"
	# the small files on a settled machine: the big file's upload to hcsed
	# (sync=FULL on the same disk) done first, not competing with the creates
	wait_synced "$AM/big"
	sync
	# both filesystems' small files back to back, in turns first, so the
	# two see the same moment of a shared machine (its speed drifts by
	# tens of percent over minutes, more than the figures measured here)
	if ((run % 2)); then
		small_gocryptfs; sync; small_atrestfs
	else
		small_atrestfs; sync; small_gocryptfs
	fi
	gocryptfs_umount
	umount_atrestfs "$AM"
	drop_caches
	mount_atrestfs "$AM" "$B/atrest.cache2" "ae=$HCSE_AE"
	t0=$(now); dd if="$AM/big" of=/dev/null bs=1M status=none; t1=$(now)
	add cold atrestfs "$(mibs "$(echo "$t1 - $t0" | bc)")"
	umount_atrestfs "$AM"
done

# peak RSS of atrestfs while writing a 2 GiB file (once)
rm -rf "$B/atrest.cache3"
mount_atrestfs "$B/atrest.mnt" "$B/atrest.cache3" "ae=rss$RANDOM"
dd if=/dev/zero of="$B/atrest.mnt/huge" bs=1M count=2048 status=none
rss=$(awk '/VmHWM/ { print int($2 / 1024) }' "/proc/$ATRESTFS_PID/status")
umount_atrestfs "$B/atrest.mnt"

printf '\n%-38s %-24s %-24s %s\n' "metric (min/median/max of $RUNS)" atrestfs gocryptfs ratio
row() { # row KEY LABEL
	local a=${R[$1/atrestfs]:-} g=${R[$1/gocryptfs]:-} ratio=-
	[ -n "$g" ] && ratio=$(awk -v a="$(median "$a")" -v g="$(median "$g")" 'BEGIN { printf "%.2fx", a / g }')
	printf '%-38s %-24s %-24s %s\n' "$2" "$(stats "$a")" "$([ -n "$g" ] && stats "$g" || echo -)" "$ratio"
}
row write "seq write ${SIZE_MIB} MiB (MiB/s)"
row warm "seq read, warm, new open (MiB/s)"
row cold "seq read, fresh mount (MiB/s)"
row create "$N_SMALL x 4 KiB created (files/s)"
row readsmall "$N_SMALL x 4 KiB read back (files/s)"
row synced "until all uploads acknowledged (s)"
# run by run, as the two ran back to back
pairs() { # pairs KEY: each run's atrestfs/gocryptfs
	paste -d' ' <(tr ' ' '\n' <<<"${R[$1/atrestfs]}" | grep .) <(tr ' ' '\n' <<<"${R[$1/gocryptfs]}" | grep .) |
		awk '{ printf "%s%.2fx", (NR > 1 ? " " : ""), $1 / $2 }'
}
printf '%-38s %s\n' "small files created, ratio run by run" "$(pairs create)"
printf '%-38s %s MiB\n' "atrestfs peak RSS, 2 GiB write" "$rss"
printf '%-38s %s at start, %s at the end (%s CPUs)\n' "load average (1/5/15 min)" "$load_start" \
	"$(cut -d' ' -f1-3 /proc/loadavg)" "$(nproc)"
