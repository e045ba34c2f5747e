#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Tampering in hcsed's database, read through a fresh cache, gives EIO and a log
# line naming the resource: bit flip, segment swapped from another file, segment
# of an older version, deleted trailing segment, older manifest.
. "$ATREST_SRC/tests/integration/lib.sh"
need_root
need_fuse

A=2301
start_tefd
start_hcsed
M=$T/mnt
mount_atrestfs "$M" "$T/cache" "segment_size=64k"
chmod 1777 "$M"

# w NAME SIZE: a random file of SIZE bytes written as uid A, kept in $T/NAME
w() {
	head -c "$2" /dev/urandom >"$T/$1"
	as_user $A $A cp "$T/$1" "$M/$1"
}
res() { getfattr --only-values -n user.onem2m.resource "$M/$1"; }

# tamper.py ACTION ARGS: edits hcsed's SQLite store directly (the attacker's view)
cat >"$T/tamper.py" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
act, args = sys.argv[2], sys.argv[3:]
# a path may end in a LIKE pattern: the newest matching resource is meant
def seq(path):
    row = db.execute("SELECT seq FROM res WHERE path LIKE ? ORDER BY seq DESC LIMIT 1",
                     ("%" + path,)).fetchone()
    assert row, "no resource " + path
    return row[0]
def con(path):
    return db.execute("SELECT con FROM res WHERE seq=?", (seq(path),)).fetchone()[0]
def put(path, value):
    db.execute("UPDATE res SET con=? WHERE seq=?", (value, seq(path)))
if act == "save":
    v = con(args[0])
    open(args[1], "wb").write(v if isinstance(v, bytes) else v.encode())
elif act == "restore":
    v = open(args[1], "rb").read()
    put(args[0], v if isinstance(con(args[0]), bytes) else v.decode())
elif act == "flip":
    v = con(args[0])
    b = bytearray(v if isinstance(v, bytes) else v.encode())
    i = len(b) * 2 // 3
    b[i] = ord("A") if b[i] != ord("A") else ord("B")
    put(args[0], bytes(b) if isinstance(v, bytes) else b.decode())
elif act == "copy":
    put(args[1], con(args[0]))
elif act == "rollback":
    # the whole HCSE view of a file rolled back: labels and manifest of version 1
    cnt, saved = args
    s = seq(cnt + "/m%")
    rn = db.execute("SELECT rn FROM res WHERE seq=?", (s,)).fetchone()[0]
    v = open(saved, "rb").read()
    db.execute("UPDATE res SET con=?, rn='m1', path=substr(path, 1, length(path) - length(rn)) || 'm1'"
               " WHERE seq=?", (v if isinstance(con(cnt + "/m%"), bytes) else v.decode(), s))
    n = db.execute("UPDATE res SET attrs=replace(attrs, ?, 'atrest:version=1') WHERE path LIKE ?",
                   ("atrest:version=" + rn[1:], "%" + cnt)).rowcount
    assert n == 1
elif act == "delete":
    db.execute("DELETE FROM res WHERE seq=?", (seq(args[0]),))
db.commit()
PY
tamper() { /usr/bin/python3 "$T/tamper.py" "$HCSE_DB" "$@"; }

w flip 100000
w swap1 100000
w swap2 100000
w older 100000
w trunc 200000
w man 1000
w intact 150000
w rollback 1000
declare -A R
for f in flip swap1 swap2 older trunc man intact rollback; do
	R[$f]=$(res $f)
	R[$f]=${R[$f]#/}
done
wait_synced "$M"/{flip,swap1,swap2,older,trunc,man,intact,rollback}
# keep objects of the first versions, then commit second versions
tamper save "${R[older]}/s0g1" "$T/older.s0g1"
tamper save "${R[man]}/m1" "$T/man.m1"
tamper save "${R[rollback]}/m1" "$T/rollback.m1"
as_user $A $A sh -c "head -c 100000 /dev/urandom > '$M/older'"
as_user $A $A sh -c "echo v2 >> '$M/man'"
as_user $A $A sh -c "echo v2 >> '$M/rollback'"
wait_synced "$M/older" "$M/man" "$M/rollback"
umount_atrestfs "$M"

stop_daemon "$HCSED_PID"
tamper flip "${R[flip]}/s1g1"                     # one character of a segment
tamper copy "${R[swap2]}/s0g1" "${R[swap1]}/s0g1" # a segment of another file
tamper restore "${R[older]}/s0g%" "$T/older.s0g1" # a segment of an older version
tamper delete "${R[trunc]}/s3g1"                  # the trailing segment
tamper restore "${R[man]}/m%" "$T/man.m1"         # the manifest of version 1
tamper rollback "${R[rollback]}" "$T/rollback.m1" # labels and manifest: tefd knows better
start_hcsed

mount_atrestfs "$M" "$T/cache2" "segment_size=64k"
for f in flip swap1 older trunc man rollback; do
	if as_user $A $A cat "$M/$f" >/dev/null 2>"$T/err"; then fail "tampered '$f' was read"; fi
	grep -q "Input/output error" "$T/err" || fail "'$f': expected EIO, got: $(cat "$T/err")"
	grep -q "integrity check failed.*'/${R[$f]}'" "$T/atrestfs.log" ||
		fail "no log line naming '/${R[$f]}'"
	ok "tampered '$f' gives EIO and a log line naming /${R[$f]}"
done
as_user $A $A cmp "$T/intact" "$M/intact" || fail "the untouched file does not read back"
as_user $A $A cmp "$T/swap2" "$M/swap2" || fail "the swap source does not read back"
ok "untouched files still read back"
umount_atrestfs "$M"
check_sanitizer_logs "$T"/*.log
