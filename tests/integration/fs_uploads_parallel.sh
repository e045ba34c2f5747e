#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Parallel uploads (uploads=N, FS.md "The uploader"): files in new nested
# directories go up at once, each still in its own order (its segments, then
# its manifest), every directory's container before what it holds; nothing
# fails on the way and a fresh cache reads every byte back.
. "$ATREST_SRC/tests/integration/lib.sh"
need_root
need_fuse
command -v sqlite3 >/dev/null || skip "sqlite3 (the CLI) is not installed"

A=2702
start_tefd
start_hcsed
M=$T/mnt
mount_atrestfs "$M" "$T/cache" "segment_size=64k,uploads=8,ae=par"
chmod 1777 "$M"

# q SQL: hcsed's DB, read while it runs (WAL)
q() { sqlite3 -readonly -separator " " "$HCSE_DB" ".timeout 5000" "$1"; }

mkdir -p "$T/ref"
dirs=(a a/b a/b/c a/d e e/f/g)
for d in "${dirs[@]}"; do as_user $A $A mkdir -p "$M/$d"; done
files=()
for i in $(seq 1 48); do
	f=${dirs[$((i % ${#dirs[@]}))]}/f$i
	# three to four segments each
	head -c $((3 * 65536 + RANDOM % 65536)) /dev/urandom >"$T/ref/${f//\//_}"
	as_user $A $A cp "$T/ref/${f//\//_}" "$M/$f"
	files+=("$f")
done
paths=()
for f in "${files[@]}"; do paths+=("$M/$f"); done
wait_synced "${paths[@]}"
ok "48 files in 7 new nested directories uploaded with uploads=8"

grep -q "upload of .* failed" "$T/atrestfs.log" &&
	fail "an upload failed on the way: $(grep "upload of" "$T/atrestfs.log")"
ok "no upload failed (every directory's container came before its contents)"

# every file's contentInstances as "container seq rn", in creation order
q "SELECT p.rn, c.seq, c.rn FROM res c JOIN res p ON c.pi = p.ri WHERE c.ty = 4 AND p.ty = 3
   ORDER BY c.seq" >"$T/cins"
[ "$(awk '$3 ~ /^m/' "$T/cins" | wc -l)" = 48 ] || fail "expected 48 manifests: $(cat "$T/cins")"
# per file: every segment before the manifest
awk '$3 ~ /^s/ { last_s[$1] = $2 } $3 ~ /^m/ { m[$1] = $2 }
     END { for (c in m) if (last_s[c] > m[c]) { print c; bad = 1 } exit bad }' "$T/cins" >"$T/bad" ||
	fail "a segment came after its manifest in: $(cat "$T/bad")"
ok "each file in its own order: its segments, then its manifest"
# at once: some file's contentInstances were created between another's
awk '{ if (!($1 in lo)) lo[$1] = $2; hi[$1] = $2 }
     END { for (x in lo) for (y in lo) if (x != y && lo[x] < lo[y] && lo[y] < hi[x]) found = 1
           exit !found }' "$T/cins" ||
	fail "the files went up one after the other: $(cat "$T/cins")"
ok "files went up at once: their uploads interleave at hcsed"

# a fresh cache reads everything back from hcsed
umount_atrestfs "$M"
mount_atrestfs "$M" "$T/fresh" "segment_size=64k,ae=par"
for f in "${files[@]}"; do
	as_user $A $A cmp "$T/ref/${f//\//_}" "$M/$f" || fail "$f differs through a fresh cache"
done
ok "a fresh cache reads the 48 files back byte for byte"
umount_atrestfs "$M"
