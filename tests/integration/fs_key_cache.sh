#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# atrestfs's registration pool and per-caller key cache (fs/keys.c) keep
# DESIGN.md 2 and 8: pooled registrations belong to the file's owner with the
# mount's targets, are refilled in the background when low, and are
# de-registered at unmount when unused; a key released
# to one caller identity never serves another (other uid, or same uid with
# other groups); a grant revoked at tefd stops serving within key_cache
# seconds, one revoked through user.onem2m.targets at once.
. "$ATREST_SRC/tests/integration/lib.sh"
need_root
need_fuse

A=2301 B=2302 G=2400 TTL=3
start_tefd
start_hcsed
M=$T/mnt
live_regs() { tefctl list | tail -n +2 | grep -c . || true; }

mount_atrestfs "$M" "$T/cache" "key_cache=$TTL"
chmod 1777 "$M"

# ---- the pool: owner and targets as a single registration would have them ----
for i in 1 2 3; do as_user $A $A sh -c "echo secret$i > '$M/f$i'"; done
as_user $B $B sh -c "echo theirs > '$M/g1'"
for f in f1 f2 f3 g1; do
	id=$(getfattr --only-values -n user.onem2m.credential-id "$M/$f")
	owner=$([ $f = g1 ] && echo $B || echo $A)
	tefctl list | grep "^${id%@*} " | grep -q " uid:$owner .* uid:$owner " ||
		fail "$f: registration not owned by and targeted at uid:$owner: $(tefctl list)"
done
ids=$(for f in f1 f2 f3; do getfattr --only-values -n user.onem2m.credential-id "$M/$f"; echo; done | sort -u | wc -l)
[ "$ids" = 3 ] || fail "pooled registrations reused: $ids distinct ids for 3 files"
[ "$(live_regs)" -gt 4 ] || fail "no registrations were made ahead (pool): $(live_regs)"
ok "files take pooled registrations owned by their creator, targets uid:owner"

# ---- the cache serves only the caller the key was released to ----
[ "$(as_user $A $A cat "$M/f1")" = secret1 ] || fail "owner reads"
if as_user $B $B cat "$M/f1" 2>/dev/null; then fail "uid $B served uid $A's cached key"; fi
if cat "$M/f1" 2>/dev/null; then fail "root served uid $A's cached key"; fi
ok "a key cached for uid $A serves neither uid $B nor root"

as_user $A $A setfattr -n user.onem2m.targets -v "uid:$A,gid:$G" "$M/f1"
[ "$(as_user $B $B,$G cat "$M/f1")" = secret1 ] || fail "member of $G denied"
if as_user $B $B cat "$M/f1" 2>/dev/null; then
	fail "uid $B without group $G served the key released to uid $B with group $G"
fi
ok "same uid, other groups: not served from the cache (tefd decides: denied)"

# ---- revocation through atrestfs: at once ----
as_user $A $A setfattr -n user.onem2m.targets -v "uid:$A" "$M/f1"
if as_user $B $B,$G cat "$M/f1" 2>/dev/null; then fail "revoked grant still served"; fi
ok "a grant revoked through user.onem2m.targets ends at once"

# ---- revocation at tefd directly: within key_cache seconds ----
id=$(getfattr --only-values -n user.onem2m.credential-id "$M/f2")
as_user $A $A setfattr -n user.onem2m.targets -v "uid:$A,gid:$G" "$M/f2"
[ "$(as_user $B $B,$G cat "$M/f2")" = secret2 ] || fail "member of $G denied f2"
tefctl ungrant "${id%@*}" "gid:$G" >/dev/null || fail "tefctl ungrant"
revoked=$(date +%s.%N)
while as_user $B $B,$G cat "$M/f2" >/dev/null 2>&1; do
	awk -v t="$revoked" -v n="$(date +%s.%N)" -v ttl=$TTL 'BEGIN { exit !(n - t > ttl + 1) }' &&
		fail "revoked at tefd, still served after key_cache=$TTL s"
	sleep 0.2
done
ok "a grant revoked at tefd ends within key_cache=$TTL s"

# ---- key_cache=0: every open asks tefd ----
umount_atrestfs "$M"
mount_atrestfs "$M" "$T/cache" "key_cache=0"
n0=$(grep -c "op=retrieve" "$T/tef.db-audit.log" || true)
as_user $A $A cat "$M/f3" >/dev/null
as_user $A $A cat "$M/f3" >/dev/null
n1=$(grep -c "op=retrieve" "$T/tef.db-audit.log" || true)
[ $((n1 - n0)) = 2 ] || fail "key_cache=0: $((n1 - n0)) retrievals for 2 opens"
ok "key_cache=0 asks tefd at every open"

# ---- a run of creates: the pool is refilled before it runs out ----
# $A's batches grow 8, 16 (made when the pool is empty: at the 1st and 9th
# file); from then on, with fewer than half the next batch left, a thread
# registers it (32, then 64) while creates go on: 120 in all by the 45th
mkdir "$M/run" && chmod 1777 "$M/run"
for i in $(seq 4 45); do as_user $A $A sh -c "echo run$i > '$M/run/f$i'"; done
mine() { tefctl list | grep -c " uid:$A " || true; }
for ((i = 0; i < 50; i++)); do [ "$(mine)" -ge 120 ] && break; sleep 0.1; done
[ "$(mine)" -ge 120 ] || fail "no batch made ahead in the background: $(mine) registrations for uid $A"
ok "a run of creates has the pool refilled in the background ($(mine) registrations for uid $A)"

# ---- unmount de-registers what the pool did not hand out ----
umount_atrestfs "$M"
[ "$(live_regs)" = 46 ] || fail "$(live_regs) live registrations after unmount, 46 files: $(tefctl list)"
grep -q "op=delete" "$T/tef.db-audit.log" || fail "no de-registration in the audit log"
ok "unused pooled registrations are de-registered at unmount"

# ---- a full cache (4,096 keys) lets the key cached first go, and only it ----
mount_atrestfs "$M" "$T/cache" "key_cache=600"
mkdir "$M/many"
/usr/bin/python3 -c '
import os, sys
for i in range(1, 4101):
    with open(os.path.join(sys.argv[1], "k%d" % i), "w") as f:
        f.write("k%d" % i)
' "$M/many" || fail "cannot create 4,100 files"
retrievals() { grep -c "op=retrieve" "$T/tef.db-audit.log" || true; }
n0=$(retrievals)
[ "$(cat "$M/many/k5")" = k5 ] && [ "$(cat "$M/many/k4100")" = k4100 ] || fail "k5/k4100 read back"
[ "$(retrievals)" = "$n0" ] || fail "k5 and k4100 were not served from the cache: $(($(retrievals) - n0)) retrievals"
[ "$(cat "$M/many/k1")" = k1 ] || fail "k1 read back"
[ "$(retrievals)" = $((n0 + 1)) ] || fail "k1 (evicted) did not ask tefd: $(($(retrievals) - n0)) retrievals"
ok "with 4,100 keys cached at creation the first 4 were evicted, the 4,096 after them kept"
umount_atrestfs "$M"
check_sanitizer_logs
