#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# chown moves a file's key to its new owner at tefd (issue 5, DESIGN.md 2): the
# new owner's rewrites are recorded (so a rollback by the HCSE is still caught
# by a reader with an empty cache) and the new owner edits user.onem2m.targets;
# the old owner neither edits nor reads it any more.
. "$ATREST_SRC/tests/integration/lib.sh"
need_root
need_fuse
command -v jq >/dev/null || skip "jq is not installed"

A=2511
B=2512
start_tefd
start_hcsed
M=$T/mnt
mount_atrestfs "$M" "$T/cache"
chmod 1777 "$M"

tamper_tools
owner_at_tefd() {
	curl -s --unix-socket "$TEF_SOCK" "http://tef/keys?owner=uid:$1" |
		jq -r --arg k "$2" '.keys[] | select(.relativeKeyID == $k) | .owner'
}

echo v1 | as_user $A $A tee "$M/f" >/dev/null
wait_synced "$M/f"
R=$(getfattr --absolute-names --only-values -n user.onem2m.resource "$M/f")
R=${R#/}
K=$(getfattr --absolute-names --only-values -n user.onem2m.credential-id "$M/f")
K=${K%@*}
tamper save "$R/m1" "$T/f.m1"
row save "$R/s0g1" "$T/s0g1.json"
[ "$(owner_at_tefd $A "$K")" = uid:$A ] || fail "the key is not uid $A's before chown"

# an ordinary user cannot give a file away (the kernel says so, tefd is not asked)
as_user $A $A chown $B "$M/f" 2>/dev/null && fail "uid $A gave its file away without privilege"
chown $B "$M/f"
[ "$(stat -c %u "$M/f")" = $B ] || fail "chown did not change the owner"
[ "$(owner_at_tefd $B "$K")" = uid:$B ] || fail "the key did not follow the file to uid $B"
grep -q "op=update rsc=2004 .*onbehalf=uid=$A,.*reason=owner-transferred" "$T/tef.db-audit.log" ||
	fail "the transfer was not asked on behalf of the old owner"
targets=$(getfattr --absolute-names --only-values -n user.onem2m.targets "$M/f")
[ "$targets" = uid:$B ] || fail "the owner's target did not follow the file: '$targets'"
ok "chown moves the key to uid $B at tefd, with the owner's target"

# the new owner rewrites it: version 2 is recorded at tefd under the new owner
echo v2 | as_user $B $B tee -a "$M/f" >/dev/null
wait_synced "$M/f"
! grep -q "tefd refused version" "$T/atrestfs.log" || fail "tefd refused the new owner's version record"
[ "$(as_user $B $B cat "$M/f")" = "$(printf 'v1\nv2')" ] || fail "the new owner reads something else"

# the new owner edits the targets; the old owner can neither edit them nor read
as_user $B $B setfattr -n user.onem2m.targets -v "uid:$B,uid:3001" "$M/f" ||
	fail "the new owner cannot edit user.onem2m.targets"
as_user $A $A setfattr -n user.onem2m.targets -v "uid:$A" "$M/f" 2>/dev/null &&
	fail "the old owner edited user.onem2m.targets"
as_user $A $A cat "$M/f" >/dev/null 2>&1 && fail "the old owner still reads the file"
[ "$(as_user 3001 3001 cat "$M/f")" = "$(printf 'v1\nv2')" ] || fail "the new owner's grant does not work"
ok "the new owner edits user.onem2m.targets; the old owner neither edits nor reads"
umount_atrestfs "$M"

# the HCSE rolls the file back to version 1: a fresh reader must notice
stop_daemon "$HCSED_PID"
tamper rollback "$R" "$T/f.m1"
row insert "$T/s0g1.json"
HCSE_PORT=$HCSE_PORT start_hcsed
mount_atrestfs "$M" "$T/fresh"
if out=$(as_user $B $B cat "$M/f" 2>&1); then
	fail "a fresh reader was served the rolled-back version: '$out'"
fi
[[ $out == *"Input/output error"* ]] || fail "expected EIO, got: $out"
grep -q "integrity check failed for manifest .* of '/f'" "$T/atrestfs.log" ||
	fail "the rollback is not logged naming '/f'"
ok "a rollback of the chowned file is detected through a fresh cache"
umount_atrestfs "$M"
check_sanitizer_logs "$T/atrestfs.log" "$T/tefd.log" "$T/hcsed.log"
