#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# DESIGN.md 4: a file's key is rotated long before 2^32 seals. With its seal count
# set 2 below seal.h's SEAL_ROTATE_SEALS (2^30) in the index, one append brings it
# there and the next commit rotates: a new Credential-Id registered at tefd with the
# same targets, every stored object sealed under it, the old key de-registered once
# hcsed acknowledged the new version; the file reads back byte-exact as the owner
# and as a granted uid, through a fresh mount too; descriptors open across the
# rotation (a reader of uid B, a writer of the owner) keep reading and writing
# correct bytes; kill -9 right after the rotating close loses nothing.
. "$ATREST_SRC/tests/integration/lib.sh"
need_root
need_fuse

A=2711 B=2712
ROT=$((1 << 30))
PY=/usr/bin/python3
start_tefd
start_hcsed
M=$T/mnt
OPTS=segment_size=4096
mount_atrestfs "$M" "$T/cache" "$OPTS"
chmod 1777 "$M"
mkdir -m 0777 "$T/rd"

# make_file NAME BYTES: a random file of uid A in $M, synced; $T/expect-NAME holds its bytes
make_file() {
	head -c "$2" /dev/urandom >"$T/expect-$1"
	chmod 0644 "$T/expect-$1"
	as_user $A $A cp "$T/expect-$1" "$M/$1"
	wait_synced "$M/$1"
}
seals_of() { /usr/bin/sqlite3 "$T/cache/index.db" "SELECT seals FROM nodes WHERE name = '$1'"; }
set_seals() {
	/usr/bin/sqlite3 "$T/cache/index.db" "UPDATE nodes SET seals = $2 WHERE name = '$1'"
	[ "$(seals_of "$1")" = "$2" ] || fail "the index has no seal count for $1"
}
# kids_of FILE: the kid of every sealed object hcsed holds for FILE (segments,
# manifest, sealed attributes), one a line
kids_of() {
	local res
	res=$(getfattr --only-values -n user.onem2m.resource "$1")
	hcse_get "${res#/cse-in/}" "fu=1&ty=4" >"$T/uril.json"
	$PY - "$T/uril.json" "$HCSE_URL" <<'PYEOF'
import base64, json, sys, urllib.request
for u in json.load(open(sys.argv[1]))["m2m:uril"]:
    req = urllib.request.Request(sys.argv[2] + "/" + u.split("/", 1)[1], headers={
        "X-M2M-Origin": "CAdmin", "X-M2M-RI": "t", "X-M2M-RVI": "3"})
    cin = json.load(urllib.request.urlopen(req))["m2m:cin"]
    # xa<N>: "name=compact" lines; the others: one compact string
    for c in ([l.split("=", 1)[1] for l in cin["con"].splitlines()]
              if cin["rn"].startswith("xa") else [cin["con"]]):
        h = c.split(".")[0]
        print(u.rsplit("/", 1)[1], json.loads(base64.urlsafe_b64decode(h + "=" * (-len(h) % 4)))["kid"])
PYEOF
}

# a file of 257 segments (the last one short), granted to uid B, with a sealed attribute
head -c $((256 * 4096 + 1000)) /dev/urandom >"$T/expect"
chmod 0644 "$T/expect"
as_user $A $A cp "$T/expect" "$M/f"
as_user $A $A setfattr -n user.onem2m.targets -v "uid:$A,uid:$B" "$M/f"
as_user $A $A setfattr -n user.note -v secret-note "$M/f"
wait_synced "$M/f"
C1=$(cred_of "$M/f")
umount_atrestfs "$M"
set_seals f $((ROT - 2))
mount_atrestfs "$M" "$T/cache" "$OPTS"

# a reader as uid B opens before the rotation and reads only the first segment
cat >"$T/reader.py" <<'PYEOF'
import os, sys, time
path, d = sys.argv[1], sys.argv[2]
fd = os.open(path, os.O_RDONLY)
os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_RANDOM)  # no read-ahead: later reads reach atrestfs
data = bytearray(os.pread(fd, 4096, 0))
open(d + "/ready", "w").close()
while not os.path.exists(d + "/go"):
    time.sleep(0.05)
try:
    while True:
        b = os.pread(fd, 65536, len(data))
        if not b:
            break
        data += b
    open(d + "/out", "wb").write(data)
except OSError as e:
    open(d + "/err", "w").write(str(e.errno))
PYEOF
as_user $B $B $PY "$T/reader.py" "$M/f" "$T/rd" &
READER=$!
at_exit "kill $READER"
wait_for_path "$T/rd/ready" 10 || fail "the reader did not open f as uid $B"
# and a writer as the owner, which appends once the rotation is done
mkdir -m 0777 "$T/wr"
cat >"$T/writer.py" <<'PYEOF'
import os, sys, time
path, d = sys.argv[1], sys.argv[2]
fd = os.open(path, os.O_WRONLY | os.O_APPEND)
open(d + "/ready", "w").close()
while not os.path.exists(d + "/go"):
    time.sleep(0.05)
try:
    os.write(fd, b"from-the-writer\n")
    os.close(fd)
    open(d + "/done", "w").close()
except OSError as e:
    open(d + "/err", "w").write(str(e.errno))
PYEOF
as_user $A $A $PY "$T/writer.py" "$M/f" "$T/wr" &
WRITER=$!
at_exit "kill $WRITER"
wait_for_path "$T/wr/ready" 10 || fail "the writer did not open f as uid $A"

# two seals left before 2^30: this version takes them, under the old key
printf 'tail-one\n' | as_user $A $A tee -a "$M/f" >/dev/null
printf 'tail-one\n' >>"$T/expect"
[ "$(cred_of "$M/f")" = "$C1" ] || fail "rotated before the key made 2^30 seals"
ok "the version that brings the count to 2^30 is sealed under the old key"

# the next commit rotates
printf 'tail-two\n' | as_user $A $A tee -a "$M/f" >/dev/null
printf 'tail-two\n' >>"$T/expect"
C2=$(cred_of "$M/f")
[ -n "$C2" ] && [ "$C2" != "$C1" ] || fail "no rotation at 2^30 seals: credential-id still '$C2'"
grep -q "key rotated after $ROT seals: credential-id $C1 replaced by $C2" "$T/atrestfs.log" ||
	fail "the rotation is not logged with both credential-ids"
registered "$C2" || fail "the new key $C2 is not registered at tefd"
tefctl list --owner "uid:$A" | grep -q "${C2%@*}" || fail "tefd does not list the new key $C2 for uid $A"
registered "$C1" || fail "the old key was de-registered before hcsed had the new version"
[ "$(targets_of "$C2")" = "uid:$A,uid:$B" ] || fail "the new key's targets: $(targets_of "$C2")"
ok "rotated: $C1 -> $C2, registered with the same targets, logged"

# finish_across DIR RESULT WHAT PID: lets a descriptor held open across the
# rotation go on (DIR/go), waits up to 20 s for DIR/RESULT or DIR/err
finish_across() {
	local i
	touch "$1/go"
	for ((i = 0; i < 200; i++)); do
		[ -e "$1/$2" ] || [ -e "$1/err" ] && break
		sleep 0.1
	done
	[ ! -e "$1/err" ] || fail "the $3 open across the rotation failed: errno $(cat "$1/err")"
	wait "$4" 2>/dev/null || true
	drop_kill "$4"
	[ -e "$1/$2" ] || fail "the $3 open across the rotation did not finish"
}

# the writer opened before the rotation appends and closes
finish_across "$T/wr" done writer "$WRITER"
printf 'from-the-writer\n' >>"$T/expect"
grep -q "a descriptor open by uid $A goes on with the rotated key" "$T/atrestfs.log" ||
	fail "the writer's append after the rotation did not use the new key"
[ "$(cred_of "$M/f")" = "$C2" ] || fail "the writer's version was not sealed under $C2"
ok "a descriptor of the owner open across the rotation appends under the new key"

# the descriptor opened before the rotation reads on
finish_across "$T/rd" out reader "$READER"
cmp -s "$T/rd/out" "$T/expect" || fail "the reader open across the rotation read wrong bytes"
grep -q "a descriptor open by uid $B goes on with the rotated key" "$T/atrestfs.log" ||
	fail "the reader's reads after the rotation did not use the new key"
ok "a descriptor of uid $B open across the rotation reads every byte right, with the new key"

as_user $A $A cmp -s "$M/f" "$T/expect" || fail "the owner does not read the rotated file back"
as_user $B $B cmp -s "$M/f" "$T/expect" || fail "uid $B does not read the rotated file back"
[ "$(as_user $A $A getfattr --only-values -n user.note "$M/f")" = secret-note ] ||
	fail "the sealed attribute does not read back after the rotation"
if cat "$M/f" >/dev/null 2>&1; then fail "root reads the rotated file without a grant"; fi
ok "the owner and the granted uid read the rotated file byte-exact; root is still denied"

wait_synced "$M/f"
wait_deregistered "$C1" "after the upload"
! tefctl list --owner "uid:$A" | grep -q "${C1%@*}" || fail "tefd still lists the old key $C1"
tefctl list --owner "uid:$A" | grep -q "${C2%@*}" || fail "tefd no longer lists the new key $C2"
kids=$(kids_of "$M/f")
[ "$(echo "$kids" | wc -l)" -ge 259 ] || fail "hcsed holds too few objects for f: $(echo "$kids" | wc -l)"
bad=$(echo "$kids" | awk -v k="$C2" '$2 != k' | head -3)
[ -z "$bad" ] || fail "objects in hcsed not sealed under the new key: $bad"
ok "hcsed holds $(echo "$kids" | wc -l) objects of f, every one with kid $C2; the old key is gone"
umount_atrestfs "$M"
s=$(seals_of f)
[ "$s" -lt $((1 << 20)) ] || fail "the seal count did not restart with the new key: $s"
ok "the seal count restarted with the new key ($s reserved)"

# a fresh mount with an empty cache: the count comes from the manifest
M2=$T/mnt2
mount_atrestfs "$M2" "$T/cache2" "$OPTS"
as_user $A $A cmp -s "$M2/f" "$T/expect" || fail "the owner does not read f through a fresh cache"
as_user $B $B cmp -s "$M2/f" "$T/expect" || fail "uid $B does not read f through a fresh cache"
[ "$(cred_of "$M2/f")" = "$C2" ] || fail "a fresh cache sees credential-id $(cred_of "$M2/f")"
[ "$(as_user $A $A getfattr --only-values -n user.note "$M2/f")" = secret-note ] ||
	fail "the sealed attribute does not read back through a fresh cache"
umount_atrestfs "$M2"
s2=$(/usr/bin/sqlite3 "$T/cache2/index.db" "SELECT seals FROM nodes WHERE name = 'f'")
[ "$s2" -ge 259 ] || fail "a cache rebuilt from hcsed does not count f's seals: $s2"
ok "a fresh mount reads f byte-exact as both uids and takes the count from the manifest ($s2)"

# kill -9 right after the rotating close, hcsed down so nothing is uploaded yet
mount_atrestfs "$M" "$T/cache" "$OPTS"
make_file g 20000
G1=$(cred_of "$M/g")
umount_atrestfs "$M"
set_seals g $ROT
mount_atrestfs "$M" "$T/cache" "$OPTS"
stop_daemon "$HCSED_PID"
printf 'killed\n' | as_user $A $A tee -a "$M/g" >/dev/null
printf 'killed\n' >>"$T/expect-g"
G2=$(cred_of "$M/g")
kill -9 "$ATRESTFS_PID"
wait "$ATRESTFS_PID" 2>/dev/null || true
fusermount3 -uz "$M"
[ "$G2" != "$G1" ] || fail "g was not rotated"
registered "$G1" || fail "the old key of g is gone while hcsed never had the new version"
start_hcsed
mount_atrestfs "$M" "$T/cache" "$OPTS"
as_user $A $A cmp -s "$M/g" "$T/expect-g" || fail "g does not read back after kill -9 right after its rotation"
[ "$(cred_of "$M/g")" = "$G2" ] || fail "after kill -9 g has credential-id $(cred_of "$M/g"), not $G2"
wait_synced "$M/g"
wait_deregistered "$G1" "after kill -9 and the upload"
umount_atrestfs "$M"
mount_atrestfs "$M2" "$T/cache3" "$OPTS"
as_user $A $A cmp -s "$M2/g" "$T/expect-g" || fail "g does not read back through a fresh cache after kill -9"
umount_atrestfs "$M2"
ok "kill -9 right after the rotating close: g reads back, uploads, and only then loses its old key"

# tefd records g's versions under its new key: a rollback by the HCSE to the first
# version sealed under it is still caught by a fresh reader
tamper_tools
mount_atrestfs "$M" "$T/cache" "$OPTS"
R=$(getfattr --only-values -n user.onem2m.resource "$M/g")
R=${R#/}
tamper save "$R/m%" "$T/g.m"
printf 'later\n' | as_user $A $A tee -a "$M/g" >/dev/null
wait_synced "$M/g"
umount_atrestfs "$M"
stop_daemon "$HCSED_PID"
tamper rollback "$R" "$T/g.m"
start_hcsed
mount_atrestfs "$M2" "$T/cache7" "$OPTS"
if out=$(as_user $A $A cat "$M2/g" 2>&1); then
	fail "a fresh reader was served g rolled back to its first version under the new key"
fi
[[ $out == *"Input/output error"* ]] || fail "expected EIO for g rolled back, got: $out"
grep "integrity check failed for manifest" "$T/atrestfs.log" | grep -q "Stale file handle" ||
	fail "g's rollback was not reported as one (SEAL_E_ROLLBACK)"
umount_atrestfs "$M2"
ok "a rollback to the first version under the new key is detected through a fresh cache"

# the HCSE serves a fresh reader its copy of h from before the rotation (labels
# naming the old key, its manifest and segments): the old key is gone, so no
# byte of the old version comes back
subtree() {
	$PY - "$HCSE_DB" "$@" <<'PYEOF'
import json, sqlite3, sys
db = sqlite3.connect(sys.argv[1])
act, path, saved = sys.argv[2:5]
q = "SELECT seq FROM res WHERE path = ? OR path LIKE ? || '/%'"
if act == "save":
    cur = db.execute("SELECT * FROM res WHERE seq IN (%s)" % q, (path, path))
    cols = [d[0] for d in cur.description]
    rows = [[v.decode("latin-1") if isinstance(v, bytes) else v for v in r] for r in cur]
    lbl = db.execute("SELECT label, seq FROM lbl WHERE seq IN (%s)" % q, (path, path)).fetchall()
    json.dump({"cols": cols, "rows": rows, "lbl": lbl}, open(saved, "w"))
else:
    d = json.load(open(saved))
    db.execute("DELETE FROM lbl WHERE seq IN (%s)" % q, (path, path))
    db.execute("DELETE FROM res WHERE seq IN (%s)" % q, (path, path))
    for r in d["rows"]:
        db.execute("INSERT INTO res(%s) VALUES(%s)" % (",".join(d["cols"]), ",".join("?" * len(r))), r)
    db.executemany("INSERT INTO lbl(label, seq) VALUES(?, ?)", d["lbl"])
    db.commit()
PYEOF
}
mount_atrestfs "$M" "$T/cache" "$OPTS"
printf 'before the rotation\n' | as_user $A $A tee "$M/h" >/dev/null
wait_synced "$M/h"
H1=$(cred_of "$M/h")
R=$(getfattr --only-values -n user.onem2m.resource "$M/h")
R=${R#/}
subtree save "$R" "$T/h-before.json"
umount_atrestfs "$M"
set_seals h $ROT
mount_atrestfs "$M" "$T/cache" "$OPTS"
printf 'after\n' | as_user $A $A tee -a "$M/h" >/dev/null
[ "$(cred_of "$M/h")" != "$H1" ] || fail "h was not rotated"
wait_synced "$M/h"
wait_deregistered "$H1" "h"
umount_atrestfs "$M"
stop_daemon "$HCSED_PID"
subtree restore "$R" "$T/h-before.json"
start_hcsed
mount_atrestfs "$M2" "$T/cache4" "$OPTS"
[ "$(cred_of "$M2/h")" = "$H1" ] || fail "the HCSE's pre-rotation copy of h is not what a fresh mount sees"
if out=$(as_user $A $A cat "$M2/h" 2>&1); then
	fail "a fresh reader was served h from before its rotation: '$out'"
fi
[[ $out == *"Permission denied"* || $out == *"Input/output error"* ]] || fail "expected EACCES or EIO, got: $out"
umount_atrestfs "$M2"
ok "the HCSE's copy from before the rotation is refused to a fresh reader (${out##*: })"

# a manifest from before the seal count (no "seals", as older atrestfs wrote it,
# re-sealed here with the file's key): a cache rebuilt from hcsed cannot know the
# count and takes the file as due, so its next commit rotates (docs/FORMAT.md 9)
mount_atrestfs "$M" "$T/cache" "$OPTS"
make_file l 9000
L1=$(cred_of "$M/l")
R=$(getfattr --only-values -n user.onem2m.resource "$M/l")
R=${R#/}
umount_atrestfs "$M"
KEY=$(curl -sf --unix-socket "$TEF_SOCK" -H "X-Atrest-On-Behalf-Of: uid=$A;gid=$A" \
	"http://tefd/keys/${L1%@*}" | $PY -c 'import json, sys; print(json.load(sys.stdin)["keyValue"])')
stop_daemon "$HCSED_PID"
legacy=$($PY - "$HCSE_DB" "$R" "$KEY" <<'PYEOF'
import base64, json, os, sqlite3, sys
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
db, path, key = sqlite3.connect(sys.argv[1]), sys.argv[2], sys.argv[3]
d = lambda s: base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))
e = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
seq, con = db.execute("SELECT seq, con FROM res WHERE path LIKE ? ORDER BY seq DESC LIMIT 1",
                      ("%" + path + "/m%",)).fetchone()
text = json.loads(con)  # hcsed keeps con as its JSON value
h, _, iv, ct, tag = text.split(".")
if json.loads(d(h))["enc"] != "A256GCM":
    print("XC20P")  # this CPU seals without AES-GCM: not re-sealed here
    sys.exit(0)
k = d(key)
m = json.loads(AESGCM(k).decrypt(d(iv), d(ct) + d(tag), h.encode()))
assert m.pop("seals") >= 2, m
iv = os.urandom(12)
out = AESGCM(k).encrypt(iv, json.dumps(m).encode(), h.encode())
text = json.dumps(".".join([h, "", e(iv), e(out[:-16]), e(out[-16:])]))
db.execute("UPDATE res SET con=? WHERE seq=?", (text.encode() if isinstance(con, bytes) else text, seq))
db.commit()
print("ok")
PYEOF
)
start_hcsed
if [ "$legacy" = ok ]; then
	mount_atrestfs "$M2" "$T/cache5" "$OPTS"
	as_user $A $A cmp -s "$M2/l" "$T/expect-l" || fail "l does not read back with a manifest without a seal count"
	printf 'more\n' | as_user $A $A tee -a "$M2/l" >/dev/null
	printf 'more\n' >>"$T/expect-l"
	L2=$(cred_of "$M2/l")
	[ "$L2" != "$L1" ] || fail "a file whose manifest has no seal count was not rotated at its next commit"
	grep -q "key rotated after $ROT seals: credential-id $L1 replaced by $L2" "$T/atrestfs.log" ||
		fail "the rotation of l is not logged"
	as_user $A $A cmp -s "$M2/l" "$T/expect-l" || fail "l does not read back after its rotation"
	umount_atrestfs "$M2"
	ok "a manifest without a seal count counts as due: the next commit through a fresh cache rotates"
else
	echo "# this CPU seals with XC20P: the manifest without a seal count is not re-made here"
fi
# integrity only (JWS HS256): rotated the same way
mount_atrestfs "$M" "$T/cache" "$OPTS,protect=integrity"
make_file i 10000
[ "$(getfattr --only-values -n user.onem2m.protection "$M/i")" = integrity ] || fail "i is not integrity-only"
I1=$(cred_of "$M/i")
umount_atrestfs "$M"
set_seals i $ROT
mount_atrestfs "$M" "$T/cache" "$OPTS,protect=integrity"
printf 'signed\n' | as_user $A $A tee -a "$M/i" >/dev/null
printf 'signed\n' >>"$T/expect-i"
[ "$(cred_of "$M/i")" != "$I1" ] || fail "the integrity-only file i was not rotated"
wait_synced "$M/i"
wait_deregistered "$I1" "i"
umount_atrestfs "$M"
mount_atrestfs "$M2" "$T/cache6" "$OPTS"
as_user $A $A cmp -s "$M2/i" "$T/expect-i" || fail "i does not read back through a fresh cache after its rotation"
umount_atrestfs "$M2"
ok "an integrity-only file (JWS) is rotated and reads back through a fresh cache"
check_sanitizer_logs "$T"/*.log
