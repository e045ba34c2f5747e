#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Parallel uploads (uploads=N, FS.md "The uploader"): small files (64 KiB
# at most) in new nested directories go up at once, each still in its own
# order (its segments, then its manifest); larger ones one at a time; nothing
# fails on the way and a fresh cache reads every byte back.
. "$ATREST_SRC/tests/integration/lib.sh"
need_root
need_fuse
command -v sqlite3 >/dev/null || skip "sqlite3 (the CLI) is not installed"

A=2702
start_tefd
start_hcsed
M=$T/mnt
mount_atrestfs "$M" "$T/cache" "segment_size=16k,uploads=8,ae=par"
chmod 1777 "$M"

mkdir -p "$T/ref"
dirs=(a a/b a/b/c a/d e e/f/g)
for d in "${dirs[@]}"; do as_user $A $A mkdir -p "$M/$d"; done
files=()
for i in $(seq 1 48); do
	f=${dirs[$((i % ${#dirs[@]}))]}/f$i
	# small: three to four segments of 16 KiB each
	head -c $((3 * 16384 + RANDOM % 16384)) /dev/urandom >"$T/ref/${f//\//_}"
	as_user $A $A cp "$T/ref/${f//\//_}" "$M/$f"
	files+=("$f")
done
for i in 1 2 3; do
	# larger than 64 KiB: uploaded alone
	f=${dirs[$i]}/big$i
	head -c $((200000 + i)) /dev/urandom >"$T/ref/${f//\//_}"
	as_user $A $A cp "$T/ref/${f//\//_}" "$M/$f"
	files+=("$f")
done
paths=()
for f in "${files[@]}"; do paths+=("$M/$f"); done
wait_synced "${paths[@]}"
ok "51 files in 7 new nested directories uploaded with uploads=8"

grep -q "upload of .* failed" "$T/atrestfs.log" &&
	fail "an upload failed on the way: $(grep "upload of" "$T/atrestfs.log")"
ok "no upload failed on the way"

# every file's contentInstances as "container seq rn", in creation order
hcse_sql "SELECT p.rn, c.seq, c.rn FROM res c JOIN res p ON c.pi = p.ri WHERE c.ty = 4 AND p.ty = 3
   ORDER BY c.seq" >"$T/cins"
[ "$(awk '$3 ~ /^m/' "$T/cins" | wc -l)" = 51 ] || fail "expected 51 manifests: $(cat "$T/cins")"
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
ok "small files went up at once: their uploads interleave at hcsed"
# the larger ones alone: nothing else between their first and last
big=$(for i in 1 2 3; do getfattr --only-values -n user.onem2m.resource "$M/${dirs[$i]}/big$i" |
	sed 's|.*/||'; echo " "; done | tr -d '\n')
awk -v big="$big" 'BEGIN { n = split(big, b, " "); for (k = 1; k <= n; k++) isbig[b[k]] = 1 }
     { c[NR] = $1; s[NR] = $2; if (!($1 in lo)) lo[$1] = NR; hi[$1] = NR }
     END { for (x in isbig) { if (!(x in lo)) { print "no cins for " x; exit 1 }
           for (i = lo[x]; i <= hi[x]; i++) if (c[i] != x) { print x " shares with " c[i]; exit 1 } } }' \
	"$T/cins" >"$T/bad" || fail "a file over 64 KiB went up beside another: $(cat "$T/bad")"
ok "files over 64 KiB went up alone"

# a fresh cache reads everything back from hcsed
umount_atrestfs "$M"
mount_atrestfs "$M" "$T/fresh" "segment_size=16k,ae=par"
for f in "${files[@]}"; do
	as_user $A $A cmp "$T/ref/${f//\//_}" "$M/$f" || fail "$f differs through a fresh cache"
done
ok "a fresh cache reads the 51 files back byte for byte"
umount_atrestfs "$M"
