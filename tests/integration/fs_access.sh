#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# atrestfs end to end: round trips, per-uid access through tefd (uid:, gid:, root
# denied), stored objects are compact JOSE with kid == credential-id, no plaintext
# anywhere on disk or in logs, and a fresh cache reads everything back.
. "$ATREST_SRC/tests/integration/lib.sh"
need_root
need_fuse

A=2101 B=2102 G=2200
start_tefd
start_hcsed
M=$T/mnt
mount_atrestfs "$M" "$T/cache"
chmod 1777 "$M"

marker="PLAINTEXT-MARKER-$RANDOM$RANDOM"
as_user $A $A sh -c "printf '%s\n' '$marker' > '$M/a.txt'"
[ "$(as_user $A $A cat "$M/a.txt")" = "$marker" ] || fail "round trip as uid $A"
ok "uid $A writes and reads back"

[ "$(stat -c %u "$M/a.txt")" = $A ] || fail "owner is not uid $A"
if as_user $B $B cat "$M/a.txt" 2>"$T/err"; then fail "uid $B read uid $A's file"; fi
grep -q "Permission denied" "$T/err" || fail "uid $B: expected EACCES, got $(cat "$T/err")"
ok "uid $B is denied (EACCES)"
if cat "$M/a.txt" >/dev/null 2>&1; then fail "root read without a grant"; fi
ok "root without a grant is denied"

# xattrs without a key, as any user who can stat
cred=$(as_user $B $B getfattr --only-values -n user.onem2m.credential-id "$M/a.txt")
[[ $cred =~ ^[0-9a-f]{32}@ ]] || fail "credential-id '$cred'"
[ "$(getfattr --only-values -n user.onem2m.protection "$M/a.txt")" = confidentiality ] ||
	fail "protection xattr"
listing=$(as_user $B $B getfattr -R -n user.onem2m.credential-id "$M" 2>/dev/null || true)
[[ $listing == *"$cred"* ]] || fail "getfattr -R does not list the credential id"
listing=$(getfattr -d -m - "$M/a.txt")
[[ $listing == *user.onem2m.resource* ]] || fail "listxattr lacks resource"
ok "xattrs readable without a key: $cred"

# the owner grants uid B, then a group
if as_user $B $B setfattr -n user.onem2m.targets -v "uid:$B" "$M/a.txt" 2>/dev/null; then
	fail "uid $B changed the targets of uid $A's file"
fi
as_user $A $A setfattr -n user.onem2m.targets -v "uid:$A,uid:$B" "$M/a.txt"
[ "$(as_user $B $B cat "$M/a.txt")" = "$marker" ] || fail "uid $B not granted by uid:$B"
ok "granted to uid $B through user.onem2m.targets"
as_user $A $A setfattr -n user.onem2m.targets -v "uid:$A,gid:$G" "$M/a.txt"
if as_user $B $B cat "$M/a.txt" >/dev/null 2>&1; then fail "grant to uid $B not revoked"; fi
[ "$(as_user $B $B,$G cat "$M/a.txt")" = "$marker" ] || fail "supplementary group $G not honoured"
[ "$(as_user $B $G cat "$M/a.txt")" = "$marker" ] || fail "primary group $G not honoured"
ok "gid:$G grants members of group $G (primary and supplementary)"
if cat "$M/a.txt" >/dev/null 2>&1; then fail "root read after the group grant"; fi

# stored objects: compact JWE with kid == credential-id, cnf says compact JOSE
wait_synced "$M/a.txt"
res=$(getfattr --only-values -n user.onem2m.resource "$M/a.txt")
[ "${res#/cse-in/}" != "$res" ] || fail "resource '$res'"
path=${res#/cse-in/}
hcse_get "$path" "fu=1&ty=4" >"$T/uril.json"
n=$(/usr/bin/python3 - "$T/uril.json" "$cred" "$HCSE_URL" <<'PY'
import base64, json, sys, urllib.request
uril = json.load(open(sys.argv[1]))["m2m:uril"]
n = 0
for u in uril:
    rel = u.split("/", 1)[1]
    req = urllib.request.Request(sys.argv[3] + "/" + rel, headers={
        "X-M2M-Origin": "CAdmin", "X-M2M-RI": "t", "X-M2M-RVI": "3"})
    cin = json.load(urllib.request.urlopen(req))["m2m:cin"]
    assert cin["cnf"] == "application/octet-stream:0:1", cin["cnf"]
    parts = cin["con"].split(".")
    assert len(parts) == 5, "not compact JWE"
    hdr = json.loads(base64.urlsafe_b64decode(parts[0] + "=" * (-len(parts[0]) % 4)))
    assert hdr["alg"] == "dir" and hdr["enc"] in ("A256GCM", "XC20P"), hdr
    assert hdr["kid"] == sys.argv[2], (hdr["kid"], sys.argv[2])
    n += 1
print(n)
PY
) || fail "stored contentInstances are not compact JWE with the right kid"
[ "$n" -ge 2 ] || fail "expected a segment and a manifest, found $n"
ok "$n stored contentInstances are compact JWE, kid == credential-id"

# other user.* attributes are stored sealed: readable only with the key
as_user $A $A setfattr -n user.comment -v "note $marker" "$M/a.txt"
[ "$(as_user $A $A getfattr --only-values -n user.comment "$M/a.txt")" = "note $marker" ] ||
	fail "user.comment round trip"
[ "$(as_user $B $G getfattr --only-values -n user.comment "$M/a.txt")" = "note $marker" ] ||
	fail "user.comment for the group grantee"
if as_user $B $B getfattr -n user.comment "$M/a.txt" >/dev/null 2>"$T/err"; then
	fail "uid $B read a sealed attribute without a grant"
fi
/usr/bin/python3 -c 'import os, sys; assert "user.comment" in os.listxattr(sys.argv[1])' "$M/a.txt" ||
	fail "listxattr lacks user.comment"
ok "user.comment is stored sealed: the key holders read it, others get EACCES"
wait_synced "$M/a.txt"

# plaintext nowhere: hcsed's DB, the cache, the logs
sync
for f in "$T"/hcse.db* "$T"/*.log; do
	if grep -a -q "$marker" "$f"; then fail "plaintext found in $f"; fi
done
if grep -r -a -q "$marker" "$T/cache"; then fail "plaintext found in the cache"; fi
[ "$(stat -c %a "$T/cache")" = 700 ] || fail "cache directory is not mode 0700"
ok "plaintext appears nowhere in hcsed's DB, the cache or the logs"

# directories, rename, a 3.5-segment file, then everything through a fresh cache
mkdir "$M/d" && chmod 777 "$M/d"
as_user $A $A mv "$M/a.txt" "$M/d/renamed.txt"
head -c 3670016 /dev/urandom >"$T/big"
as_user $A $A cp "$T/big" "$M/d/big"
as_user $A $A cmp "$T/big" "$M/d/big" || fail "big file differs"
wait_synced "$M/d/renamed.txt" "$M/d/big" "$M/d"
umount_atrestfs "$M"
mount_atrestfs "$M" "$T/cache2"
[ "$(as_user $A $A cat "$M/d/renamed.txt")" = "$marker" ] || fail "renamed file through a fresh cache"
[ "$(as_user $A $A getfattr --only-values -n user.comment "$M/d/renamed.txt")" = "note $marker" ] ||
	fail "sealed attribute through a fresh cache"
as_user $A $A cmp "$T/big" "$M/d/big" || fail "big file through a fresh cache"
[ "$(stat -c %u:%a "$M/d/big")" = "$A:644" ] || fail "metadata lost: $(stat -c %u:%a "$M/d/big")"
if as_user $B $B cat "$M/d/big" >/dev/null 2>&1; then fail "fresh mount let uid $B read"; fi
ok "a fresh cache rebuilds the tree and reads every byte back"

# integrity-only mounts store JWS HS256
umount_atrestfs "$M"
mount_atrestfs "$M" "$T/cache3" "protect=integrity,ae=integ"
chmod 1777 "$M"
as_user $A $A sh -c "echo signed > '$M/s.txt'"
[ "$(as_user $A $A cat "$M/s.txt")" = signed ] || fail "integrity round trip"
[ "$(getfattr --only-values -n user.onem2m.protection "$M/s.txt")" = integrity ] || fail "protection"
wait_synced "$M/s.txt"
res=$(getfattr --only-values -n user.onem2m.resource "$M/s.txt")
hcse_get "${res#/cse-in/}/la" | /usr/bin/python3 -c '
import base64, json, sys
con = json.load(sys.stdin)["m2m:cin"]["con"].split(".")
assert len(con) == 3, "not compact JWS"
h = json.loads(base64.urlsafe_b64decode(con[0] + "=" * (-len(con[0]) % 4)))
assert h["alg"] == "HS256", h' || fail "integrity mount did not store JWS HS256"
ok "protect=integrity stores compact JWS HS256"
umount_atrestfs "$M"

check_sanitizer_logs "$T"/*.log
