#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# tefd's authorisation matrix: principal kinds x direct/delegated x operations x
# states (active, expired, deleted), with real other uids through setpriv.
. "$ATREST_SRC/tests/integration/lib.sh"
need_root
. "$ATREST_SRC/tests/integration/tefd.sh"

make_master_key
start_tefd --admin 900 --delegate 2000

OWNER=1000:1000
DELEGATE=2000:2000
# principal kind -> the uid:gid[,groups] acting
declare -A WHO=(
	[owner]=1000:1000 [uid-target]=1001:1001 [gid-target]=1002:1002,77 [all]=1003:1003
	[non-target]=1003:1003 [admin]=900:900 [delegate-itself]=2000:2000
)
KINDS="owner uid-target gid-target all non-target admin delegate-itself"

obo_of() {
	local u=${1%%:*} rest=${1#*:} groups=
	[[ $rest == *,* ]] && groups=";groups=${rest#*,}"
	echo "uid=$u;gid=${rest%%,*}$groups"
}

# new_key KIND SECONDS: a key of the owner that KIND may see, expiring in SECONDS.
new_key() {
	local targets='["uid:1001","gid:77"]'
	[ "$1" = all ] && targets='["all"]'
	register "$OWNER" "{\"suid\":34,\"labels\":[\"m\"],\"targetIDs\":$targets,\"expirationTime\":\"$(ts "$2")\"}"
}

# act KIND MODE METHOD PATH [BODY]
act() {
	if [ "$2" = direct ] || [ "$1" = delegate-itself ]; then
		treq "${WHO[$1]}" "$3" "$4" "${5:-}"
	else
		treq "$DELEGATE" "$3" "$4" "${5:-}" "$(obo_of "${WHO[$1]}")"
	fi
}

# expected KIND OP STATE -> "HTTP RSC"
expected() {
	local kind=$1 op=$2 state=$3
	[ "$state" = deleted ] && { echo "404 4004"; return; }
	case $kind in
	non-target | delegate-itself) echo "404 4004"; return ;;
	esac
	case $op in
	retrieve)
		[ "$kind" = admin ] && { echo "404 4004"; return; }
		[ "$state" = expired ] && echo "403 4103" || echo "200 2000" ;;
	update)
		case $kind in
		owner | admin) [ "$state" = expired ] && echo "403 4103" || echo "200 2004" ;;
		*) echo "403 4103" ;;
		esac ;;
	delete)
		case $kind in
		owner | admin) echo "200 2002" ;;
		*) echo "403 4103" ;;
		esac ;;
	esac
}

checks=0
check() { # check KIND MODE OP STATE ID
	local kind=$1 mode=$2 op=$3 state=$4 id=$5 exp
	case $op in
	retrieve) act "$kind" "$mode" GET "/keys/$id" ;;
	update) act "$kind" "$mode" PUT "/keys/$id" '{"labels":["u"]}' ;;
	delete) act "$kind" "$mode" DELETE "/keys/$id" ;;
	esac
	exp=$(expected "$kind" "$op" "$state")
	expect_answer "${exp% *}" "${exp#* }" "$kind ($mode) $op on an $state key"
	if [ "$op" = retrieve ] && [ "$HTTP" = 200 ]; then
		[ "$(jq -r .keyValue <<<"$BODY" | tr -d '\n' | wc -c)" = 43 ] ||
			fail "$kind ($mode): no 256-bit key in the answer"
	fi
	if [ "$op" = retrieve ] && [ "$state" = expired ] && [ "$HTTP" = 403 ]; then
		[ "$(jq -r .reason <<<"$BODY")" = expired ] || fail "$kind: expired without reason"
	fi
	checks=$((checks + 1))
}

# Expired keys first: they need a few seconds to expire while the rest runs.
declare -A EXP_SHARED EXP_DEL
for kind in $KINDS; do
	EXP_SHARED[$kind]=$(new_key "$kind" 3)
	for mode in direct delegated; do
		EXP_DEL[$kind.$mode]=$(new_key "$kind" 3)
	done
done
expire_at=$(($(date +%s) + 4))

# Active and deleted states.
for kind in $KINDS; do
	for mode in direct delegated; do
		id=$(new_key "$kind" 3600)
		check "$kind" "$mode" retrieve active "$id"
		check "$kind" "$mode" update active "$id"
		check "$kind" "$mode" delete active "$id"
		# whoever deleted it or not, delete as owner now to reach the deleted state
		treq "$OWNER" DELETE "/keys/$id"
		[ "$HTTP" = 200 ] || [ "$HTTP" = 404 ] || fail "owner cleanup delete: $HTTP"
		for op in retrieve update delete; do
			check "$kind" "$mode" "$op" deleted "$id"
		done
	done
done

while [ "$(date +%s)" -le "$expire_at" ]; do sleep 0.2; done
for kind in $KINDS; do
	for mode in direct delegated; do
		check "$kind" "$mode" retrieve expired "${EXP_SHARED[$kind]}"
		check "$kind" "$mode" update expired "${EXP_SHARED[$kind]}"
		check "$kind" "$mode" delete expired "${EXP_DEL[$kind.$mode]}"
	done
done
ok "authorisation matrix: $checks checks"

# Registration on behalf of someone makes them the owner; both identities are audited.
id=$(register "$DELEGATE" '{"suid":35}' "uid=1000;gid=1000")
treq "$OWNER" GET "/keys/$id"
expect_answer 200 2000 "owner retrieving what the delegate registered for them"
[ "$(jq -r .owner <<<"$BODY")" = uid:1000 ] || fail "owner is not uid:1000"
grep -q "op=register rsc=2001 .*caller=uid=2000,gid=2000,pid=[0-9]* onbehalf=uid=1000,gid=1000" \
	"$T/tef.db-audit.log" || fail "audit line lacks the delegate and the identity it acted for"
ok "delegated registration is owned by the identity acted for"

# On-behalf-of from a non-delegate: 403 / 4103 and an audit line.
treq 1003:1003 GET "/keys/$id" "" "uid=1000;gid=1000"
expect_answer 403 4103 "on-behalf-of from a non-delegate"
grep -q "caller=uid=1003,gid=1003,pid=[0-9]* .*reason=not-a-delegate" "$T/tef.db-audit.log" ||
	fail "refused on-behalf-of was not audited"
grep -q "not a delegate" "$T/tefd.log" || fail "refused on-behalf-of was not logged"
ok "on-behalf-of from a non-delegate refused and logged"

# A malformed on-behalf-of header from a delegate is a 400.
treq "$DELEGATE" GET "/keys/$id" "" "uid=1000"
expect_answer 400 4000 "malformed on-behalf-of"

# Listing: owners see their own, admins everyone's, others nothing of it.
lid=$(new_key all 3600)
treq "$OWNER" GET /keys
expect_answer 200 2000 "owner listing"
jq -e --arg id "$id" '.keys | map(.relativeKeyID) | index($id)' <<<"$BODY" >/dev/null ||
	fail "owner does not see the registration"
jq -e '.keys | map(has("keyValue")) | any | not' <<<"$BODY" >/dev/null ||
	fail "a listing released a key"
treq 1003:1003 GET /keys
expect_answer 200 2000 "other listing"
[ "$(jq '.keys | length' <<<"$BODY")" = 0 ] || fail "uid 1003 sees others' registrations"
treq 1003:1003 GET "/keys?owner=uid:1000"
expect_answer 403 4103 "non-admin listing another owner"
treq 900:900 GET "/keys?owner=uid:1000&label=m"
expect_answer 200 2000 "admin listing by owner and label"
[ "$(jq -r '.keys[0].relativeKeyID' <<<"$BODY")" = "$lid" ] || fail "admin listing lacks $lid"
jq -e '.keys | map(.owner == "uid:1000") | all' <<<"$BODY" >/dev/null ||
	fail "owner filter not applied"
treq 900:900 GET "/keys?expiresBefore=19700102T000000"
[ "$(jq '.keys | length' <<<"$BODY")" = 0 ] || fail "expiresBefore filter not applied"
treq 900:900 GET "/keys?colour=red"
expect_answer 400 4000 "unknown query argument"
ok "listing rules"

# Ownership transfer (atrestfs's chown): PUT {"owner": ...} by the owner, an admin
# or a delegate acting for the owner; never by a target, another uid, or a
# delegate acting for someone else. The key survives it (it is re-wrapped).
xid=$(new_key all 3600)
treq "$OWNER" GET "/keys/$xid"
key_before=$(jq -r .keyValue <<<"$BODY")
for who in "1001:1001" "1003:1003" "$DELEGATE:uid=1003;gid=1003" "$DELEGATE:uid=1001;gid=1001"; do
	as=${who%%:uid=*}; obo=
	[[ $who == *uid=* ]] && obo=uid=${who#*:uid=}
	treq "$as" PUT "/keys/$xid" '{"owner":"uid:1003"}' "$obo"
	expect_answer 403 4103 "transfer by $who (not the owner)"
done
treq "$OWNER" PUT "/keys/$xid" '{"owner":"all"}'
expect_answer 400 4000 "transfer to a non-identity"
treq "$OWNER" PUT "/keys/$xid" '{"owner":"gid:77"}'
expect_answer 400 4000 "transfer to a group"
treq "$DELEGATE" PUT "/keys/$xid" '{"owner":"uid:1003"}' "uid=1000;gid=1000"
expect_answer 200 2004 "transfer by a delegate acting for the owner"
[ "$(jq -r .owner <<<"$BODY")" = uid:1003 ] || fail "the answer does not name the new owner"
grep -q "op=update rsc=2004 .*reason=owner-transferred" "$T/tef.db-audit.log" ||
	fail "the transfer was not audited as such"
grep -q "transferred from 'uid:1000' to 'uid:1003'" "$T/tefd.log" || fail "the transfer was not logged"
treq "$OWNER" PUT "/keys/$xid" '{"labels":["x"]}'
expect_answer 403 4103 "the old owner updating after the transfer"
treq "$OWNER" PUT "/keys/$xid" '{"owner":"uid:1000"}'
expect_answer 403 4103 "the old owner taking it back"
treq 1003:1003 PUT "/keys/$xid" '{"atrestVersion":4}'
expect_answer 200 2004 "the new owner recording a version"
treq 1003:1003 GET "/keys/$xid"
expect_answer 200 2000 "the new owner retrieving"
[ "$(jq -r .keyValue <<<"$BODY")" = "$key_before" ] || fail "the key changed with its owner"
treq 900:900 PUT "/keys/$xid" '{"owner":"uid:1000"}'
expect_answer 200 2004 "transfer by an admin"
treq "$OWNER" GET "/keys/$xid"
expect_answer 200 2000 "retrieval by the owner it was given back to"
[ "$(jq -r .keyValue <<<"$BODY")" = "$key_before" ] || fail "the key changed on its way back"
as_user 1001 1001 "$TEFCTL" --socket "$SOCK" transfer "$xid" uid:1001 2>/dev/null &&
	fail "tefctl transfer by a non-owner"
as_user 1000 1000 "$TEFCTL" --socket "$SOCK" --json transfer "$xid" uid:1001 |
	jq -e '.[0].owner == "uid:1001"' >/dev/null || fail "tefctl transfer by the owner"
ok "ownership transfer: owner, admin and owner's delegate only; the key survives it"

# tefctl as admin over the same socket.
out=$(as_user 900 900 "$TEFCTL" --socket "$SOCK" list --owner uid:1000)
grep -q "$id" <<<"$out" || fail "tefctl list does not show $id"
as_user 900 900 "$TEFCTL" --socket "$SOCK" grant "$id" uid:1003 >/dev/null
treq 1003:1003 GET "/keys/$id"
expect_answer 200 2000 "retrieval after tefctl grant"
as_user 900 900 "$TEFCTL" --socket "$SOCK" ungrant "$id" uid:1003 >/dev/null
treq 1003:1003 GET "/keys/$id"
expect_answer 404 4004 "retrieval after tefctl ungrant"
as_user 900 900 "$TEFCTL" --socket "$SOCK" --json show "$id" | jq -e '.owner == "uid:1000"' >/dev/null ||
	fail "tefctl --json show"
as_user 900 900 "$TEFCTL" --socket "$SOCK" renew "$id" --for 60 >/dev/null
as_user 1003 1003 "$TEFCTL" --socket "$SOCK" revoke "$id" 2>/dev/null &&
	fail "a non-owner revoked through tefctl"
as_user 900 900 "$TEFCTL" --socket "$SOCK" revoke "$id" >/dev/null
treq "$OWNER" GET "/keys/$id"
expect_answer 404 4004 "retrieval after tefctl revoke"
ok "tefctl list/grant/ungrant/show/renew/revoke"

[ "$("$TEFCTL" audit-tail --db "$T/tef.db" -n 3 | grep -c ' op=')" = 3 ] || fail "tefctl audit-tail -n 3"
"$TEFCTL" audit-tail --db "$T/tef.db" -n 1 | grep -q "op=retrieve rsc=4004" ||
	fail "tefctl audit-tail does not end with the last request"
ok "tefctl audit-tail"

stop_tefd
