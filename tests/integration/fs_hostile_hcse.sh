#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The HCSE is trusted with nothing (docs/SECURITY.md): containers it holds under
# the mount's AE whose labels name what the kernel or the namespace cannot take
# (a '/' in a name, "..", an over-long name, an inode number that is not the
# container's (the root's, another node's), one near 2^64, a
# directory that is its own parent, a segment size out of range) are ignored
# with a log line when a fresh cache is rebuilt; the genuine files still read
# back, and new files still get fresh inode numbers. Labels can forge a mode:
# the mount is nosuid,nodev unless the operator asks otherwise.
. "$ATREST_SRC/tests/integration/lib.sh"
need_root
need_fuse

U=2901
start_tefd
start_hcsed
M=$T/mnt
mount_atrestfs "$M" "$T/cache"
chmod 0777 "$M"
as_user $U $U mkdir "$M/d"
as_user $U $U sh -c "printf 'genuine data\n' >'$M/d/f'"
wait_synced "$M/d" "$M/d/f"
opts=$(findmnt -no OPTIONS "$M")
case ",$opts," in
*,nosuid,*nodev,* | *,nodev,*nosuid,*) ;;
*) fail "the mount is not nosuid,nodev: $opts" ;;
esac
ok "mounted nosuid,nodev by default ($opts)"
umount_atrestfs "$M"

# the genuine file's container: its labels are the model for the forged ones
AE=$HCSE_URL/atrestfs
fcnt=$(hcse_get atrestfs 'fu=1&ty=3' | /usr/bin/python3 -c '
import json, sys
print("\n".join(u.rsplit("/", 1)[1] for u in json.load(sys.stdin)["m2m:uril"]))' |
	while read -r rn; do
		hcse_get "atrestfs/$rn" | grep -q '"atrest:file"' && echo "$rn"
	done)
[ -n "$fcnt" ] || fail "no container of a file under the AE"
hcse_get "atrestfs/$fcnt" >"$T/genuine.json"
ino=${fcnt#i}
dino=$(/usr/bin/python3 -c '
import json, sys
l = json.load(open(sys.argv[1]))["m2m:cnt"]["lbl"]
print([x.split("=", 1)[1] for x in l if x.startswith("atrest:parent=")][0])' "$T/genuine.json")

# forge RN LABEL...: a container RN holding the genuine file's
# labels with the given ones replaced ("atrest:key=value") or added
forge() {
	local rn=$1
	shift
	/usr/bin/python3 - "$T/genuine.json" "$rn" "$@" >"$T/forged.json" <<'PYEOF'
import json, sys
lbl = json.load(open(sys.argv[1]))["m2m:cnt"]["lbl"]
for edit in sys.argv[3:]:
    key = edit.split("=", 1)[0] + ("=" if "=" in edit else "")
    lbl = [x for x in lbl if not (x == edit or (key.endswith("=") and x.startswith(key)))
           and not (edit in ("atrest:dir", "atrest:file") and x in ("atrest:dir", "atrest:file"))]
    lbl.append(edit)
print(json.dumps({"m2m:cnt": {"rn": sys.argv[2], "lbl": lbl}}))
PYEOF
	curl -sf -o /dev/null -X POST -H 'X-M2M-Origin: CAdmin' -H 'X-M2M-RI: t' -H 'X-M2M-RVI: 3' \
		-H 'Content-Type: application/json;ty=3' --data-binary @"$T/forged.json" "$AE" ||
		fail "hcsed refused the forged container $rn"
}
x200=$(printf 'x%.0s' $(seq 200))
forge i900 atrest:ino=900 atrest:name=a%2Fb
forge i901 atrest:ino=901 atrest:name=..
forge i902 atrest:ino=902 "atrest:name=$x200" "atrest:name1=${x200:0:100}" # 300 bytes, in 2 labels
forge i909 atrest:ino=1 atrest:name=root-again
forge i903 atrest:ino=904 atrest:name=wrong-number
forge i905 "atrest:ino=$ino" atrest:name=same-number
forge i1152921504606846976 atrest:ino=1152921504606846976 atrest:name=huge-number
forge i906 atrest:ino=906 atrest:parent=906 atrest:dir atrest:mode=755 atrest:name=own-parent
forge i907 atrest:ino=907 atrest:segsize=1 atrest:name=tiny-segments
# accepted: a well-formed file whose mode says set-user-ID root
forge i908 atrest:ino=908 atrest:mode=4755 atrest:uid=0 atrest:name=suid-root

mount_atrestfs "$M" "$T/cache2"
kill -0 "$ATRESTFS_PID" || fail "atrestfs died rebuilding from forged labels"
for rn in i900 i901 i902 i909 i903 i905 i1152921504606846976 i906 i907; do
	grep -q "ignoring container '[^']*/$rn'" "$T/atrestfs.log" ||
		fail "container $rn was not ignored with a log line"
done
ok "9 forged containers ignored, each with a log line"
names=$(ls -A "$M/d" | sort | tr '\n' ' ')
[ "$names" = "f suid-root " ] || fail "directory d lists '$names', expected 'f suid-root '"
[ "$(ls -A "$M" | tr '\n' ' ')" = "d " ] || fail "the root lists $(ls -A "$M")"
[ "$(as_user $U $U cat "$M/d/f")" = "genuine data" ] || fail "the genuine file does not read back"
ok "the genuine file reads back; only the well-formed forgery is listed"
[ "$(stat -c %a "$M/d/suid-root")" = 4755 ] || fail "the forged mode is not what stat shows"
opts=$(findmnt -no OPTIONS "$M")
[[ ",$opts," == *,nosuid,* ]] || fail "a forged set-user-ID file on a suid mount: $opts"
ok "a forged set-user-ID mode is inert: the mount is nosuid"
as_user $U $U sh -c "printf new >'$M/d/new'"
new_ino=$(stat -c %i "$M/d/new")
[ "$new_ino" -gt 908 ] && [ "$new_ino" -lt 1000000 ] ||
	fail "a new file got inode $new_ino (the forged numbers must not move or wrap the counter)"
ok "a new file gets inode $new_ino"
umount_atrestfs "$M"

# the operator's explicit suid wins
mount_atrestfs "$M" "$T/cache2" suid
[[ ",$(findmnt -no OPTIONS "$M")," != *,nosuid,* ]] || fail "-o suid was not honoured"
ok "-o suid is honoured when the operator asks"
umount_atrestfs "$M"
check_sanitizer_logs "$T"/*.log
