# SPDX-License-Identifier: Apache-2.0
# What the filesystem benchmarks share: min/median/max of a run list and a
# gocryptfs (the issue's peer) on the same disk. Sourced after
# tests/integration/lib.sh, with B set to the benchmark directory.

# stats "v1 v2 v3" -> "min/median/max"
stats() { tr ' ' '\n' <<<"$1" | grep . | sort -g | awk '{ v[NR] = $1 } END {
	printf "%s/%s/%s", v[1], v[int((NR + 1) / 2)], v[NR] }'; }
median() { stats "$1" | cut -d/ -f2; }

GM=$B/gocrypt.plain
gocryptfs_mount() {
	mkdir -p "$GM"
	gocryptfs -q -extpass "echo benchpass" "$B/gocrypt.cipher" "$GM" 2>>"$T/gocryptfs.out"
	at_exit "fusermount3 -uz $GM"
}
gocryptfs_umount() { fusermount3 -u "$GM"; }
# a new, empty gocryptfs at $GM
gocryptfs_fresh() {
	rm -rf "$B/gocrypt.cipher" && mkdir -p "$B/gocrypt.cipher"
	gocryptfs -q -init -extpass "echo benchpass" "$B/gocrypt.cipher" >/dev/null
	gocryptfs_mount
}
