#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# contentInstances that other AEs put into a mounted directory's container appear
# as read-only files: plain con as is, compact JOSE verified and decrypted through
# tefd by its kid, for the callers the key's registration allows.
. "$ATREST_SRC/tests/integration/lib.sh"
need_root
need_fuse

A=2601 B=2602
start_tefd
start_hcsed
M=$T/mnt
mount_atrestfs "$M" "$T/cache"
mkdir "$M/inbox"
chmod 777 "$M/inbox"
wait_synced "$M/inbox"
res=$(getfattr --only-values -n user.onem2m.resource "$M/inbox")
cnt=${res#/cse-in/}

# another AE (the admin here) puts a plain contentInstance...
curl -sf -o /dev/null -X POST -H 'X-M2M-Origin: CAdmin' -H 'X-M2M-RI: t' -H 'X-M2M-RVI: 3' \
	-H 'Content-Type: application/json;ty=4' \
	-d '{"m2m:cin":{"rn":"note.txt","cnf":"text/plain:0","con":"hello plain"}}' \
	"$HCSE_URL/$cnt" || fail "posting a plain contentInstance"
# ...and a sealed one, its key registered at tefd by uid A
out=$(printf 'sealed by another AE\n' | as_user $A $A "$ATREST_BUILD/tests/tools/atrest-put" \
	-T "$TEF_SOCK" -H "$HCSE_URL" -O CAdmin -a "${cnt%%/*}" -c "${cnt#*/}" \
	--esdata secret.txt -t "uid:$A") || fail "atrest-put --esdata"
cred=$(sed -n 's/^credential-id=//p' <<<"$out")

ls_out=$(ls "$M/inbox" | tr '\n' ' ')
[ "$ls_out" = "note.txt secret.txt " ] || fail "listing: '$ls_out'"
ok "foreign contentInstances are listed"
[ "$(cat "$M/inbox/note.txt")" = "hello plain" ] || fail "plain con"
[ "$(stat -c %s "$M/inbox/note.txt")" = 11 ] || fail "plain size"
ok "plain con reads as is"
[ "$(as_user $A $A cat "$M/inbox/secret.txt")" = "sealed by another AE" ] || fail "JOSE con for uid $A"
[ "$(stat -c %s "$M/inbox/secret.txt")" = 21 ] || fail "size of the sealed object's plaintext"
if as_user $B $B cat "$M/inbox/secret.txt" >/dev/null 2>"$T/err"; then fail "uid $B read it"; fi
grep -q "Permission denied" "$T/err" || fail "uid $B: expected EACCES, got $(cat "$T/err")"
[ "$(getfattr --only-values -n user.onem2m.credential-id "$M/inbox/secret.txt")" = "$cred" ] ||
	fail "credential-id of the foreign object"
[ "$(getfattr --only-values -n user.onem2m.resource "$M/inbox/secret.txt")" = "$res/secret.txt" ] ||
	fail "resource of the foreign object"
ok "compact JOSE is decrypted through tefd by its kid, for uid $A only"
if sh -c "echo x >> '$M/inbox/note.txt'" 2>"$T/err"; then fail "wrote to a foreign object"; fi
grep -q "Read-only file system" "$T/err" || fail "write: expected EROFS, got $(cat "$T/err")"
if rm -f "$M/inbox/note.txt" 2>"$T/err"; then fail "removed a foreign object"; fi
ok "foreign objects are read-only"

# our own files in the same directory are unaffected, and a fresh mount sees both
as_user $A $A sh -c "echo mine > '$M/inbox/own.txt'"
wait_synced "$M/inbox/own.txt"
umount_atrestfs "$M"
mount_atrestfs "$M" "$T/cache2"
[ "$(ls "$M/inbox" | tr '\n' ' ')" = "note.txt own.txt secret.txt " ] || fail "fresh listing: $(ls "$M/inbox")"
[ "$(as_user $A $A cat "$M/inbox/own.txt")" = mine ] || fail "own file"
[ "$(as_user $A $A cat "$M/inbox/secret.txt")" = "sealed by another AE" ] || fail "foreign after remount"
ok "a fresh mount shows own and foreign files side by side"
umount_atrestfs "$M"
check_sanitizer_logs "$T"/*.log
