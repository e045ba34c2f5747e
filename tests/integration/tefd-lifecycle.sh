#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# tefd's life: config file, readiness (parent and NOTIFY_SOCKET), no core dumps,
# the sweeper, request limits, the failed-retrieval rate limit, SIGHUP reloads.
. "$ATREST_SRC/tests/integration/lib.sh"
need_root
. "$ATREST_SRC/tests/integration/tefd.sh"
PY=/usr/bin/python3

make_master_key

# 1. Daemon mode: the parent returns only once tefd serves; settings from tefd.conf.
cat >"$T/tefd.conf" <<CONF
# tefd.conf(5)
socket = $SOCK
db = $T/tef.db
master-key = $T/master.key
fqdn = conf.test
admin = 900
max-registrations = 3
max-failed-retrievals = 5
failure-window = 60
sweep-interval = 1
threads = 2
CONF
# a service manager's notification socket, read by a helper
"$PY" - "$T/notify.sock" >"$T/notify.out" <<'PYEOF' &
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
s.settimeout(20)
print(s.recv(256).decode(), flush=True)
PYEOF
notify_pid=$!
at_exit "kill $notify_pid"
wait_for_path "$T/notify.sock" || fail "notify helper did not start"
NOTIFY_SOCKET=$T/notify.sock "$TEFD" -c "$T/tefd.conf" --pidfile "$T/daemon.pid" ||
	fail "tefd (daemon mode) reported failure"
# ready means ready: the very first request is served
treq root POST /keys '{"suid":34}'
expect_answer 201 2001 "first request right after the parent returned"
[[ $(jq -r .credentialID <<<"$BODY") == *@conf.test ]] || fail "fqdn from tefd.conf not used"
daemon_pid=$(cat "$T/daemon.pid")
at_exit "kill $daemon_pid"
wait "$notify_pid" || true
grep -qx "READY=1" "$T/notify.out" || fail "no READY=1 on NOTIFY_SOCKET"
grep -q "^Max core file size *0 *0" "/proc/$daemon_pid/limits" || fail "core dumps not disabled"
[ "$(stat -c %a "$SOCK")" = 666 ] || fail "socket mode is not the default 0666"
[ "$(stat -c %a "$T/tef.db")" = 600 ] || fail "database mode is not 0600"
[ "$(stat -c %a "$T/tef.db-audit.log")" = 600 ] || fail "audit log mode is not 0600"
ok "daemon mode: ready before the parent returns, READY=1 notified, no core dumps"

# SIGHUP reopens the audit log (logrotate) and does not stop tefd.
mv "$T/tef.db-audit.log" "$T/tef.db-audit.log.1"
kill -HUP "$daemon_pid"
for ((i = 0; i < 50; i++)); do [ -e "$T/tef.db-audit.log" ] && break; sleep 0.1; done
treq root GET /keys
expect_answer 200 2000 "a request after SIGHUP"
grep -q "op=list" "$T/tef.db-audit.log" || fail "no audit line in the reopened log"
grep -q "op=register" "$T/tef.db-audit.log.1" || fail "the rotated log lost its lines"
ok "SIGHUP reopens the audit log"

# 2. Limits: registrations per owner, body size, label count.
treq root POST /keys '{"suid":34}'
treq root POST /keys '{"suid":34}'
treq root POST /keys '{"suid":34}'
expect_answer 406 5207 "a fourth registration over max-registrations = 3"
big=$("$PY" -c 'print("{\"suid\":34,\"labels\":[\"" + "a" * 70000 + "\"]}")')
treq 1000:1000 POST /keys "$big"
expect_answer 413 4000 "an oversized body"
treq 1000:1000 POST /keys '{"suid":34,"labels":["a"],"targetIDs":["nobody"]}'
expect_answer 400 4000 "a bad principal"
grep -q targetIDs <<<"$BODY" || fail "the error does not name targetIDs"
treq 1000:1000 GET /keys
[ "$(jq '.keys | length' <<<"$BODY")" = 0 ] || fail "a refused registration was stored"
ok "per-owner quota, body size and strict members"

# 3. Failed retrievals are rate limited per identity; others are not affected.
mine=$(register 1001:1001 '{"suid":34}')
for i in 1 2 3 4 5; do
	treq 1000:1000 GET "/keys/$(printf '%032x' "$i")"
	expect_answer 404 4004 "probe $i"
done
treq 1000:1000 GET /keys/00000000000000000000000000000009
expect_answer 429 4103 "the sixth failed retrieval"
[ "$(jq -r .reason <<<"$BODY")" = rate-limited ] || fail "no rate-limited reason"
treq 1001:1001 GET "/keys/$mine"
expect_answer 200 2000 "another uid is not limited"
grep -q "reason=rate-limited" "$T/tef.db-audit.log" || fail "rate limiting not audited"
ok "failed retrievals are rate limited per uid"

# 4. The sweeper purges expired registrations from the database.
gone=$(register 1001:1001 "{\"suid\":34,\"expirationTime\":\"$(ts 2)\"}")
for ((i = 0; i < 50; i++)); do
	n=$(sqlite3 "$T/tef.db" "SELECT count(*) FROM keys WHERE id = x'$gone'" 2>/dev/null || echo 1)
	[ "$n" = 0 ] && break
	sleep 0.2
done
[ "$n" = 0 ] || fail "the sweeper did not purge an expired registration"
grep -Eq "op=sweep rsc=2002 .* cred=[0-9a-f]{32} reason=expired" "$T/tef.db-audit.log" ||
	fail "sweeping not audited per registration"
treq 1001:1001 GET "/keys/$gone"
expect_answer 404 4004 "a purged registration"
ok "the sweeper purges expired registrations"

kill -TERM "$daemon_pid"
for ((i = 0; i < 50; i++)); do kill -0 "$daemon_pid" 2>/dev/null || break; sleep 0.1; done
kill -0 "$daemon_pid" 2>/dev/null && fail "tefd did not stop on SIGTERM"
[ -e "$SOCK" ] && fail "tefd left its socket behind"
[ -e "$T/daemon.pid" ] && fail "tefd left its pid file behind"

# 5. A failing start in daemon mode makes the parent fail too.
chmod 0644 "$T/master.key"
"$TEFD" -c "$T/tefd.conf" && fail "daemon mode reported success with a loose master key"
chmod 0600 "$T/master.key"
# and a symlinked database is refused
ln -s "$T/tef.db" "$T/link.db"
"$TEFD" -c "$T/tefd.conf" --db "$T/link.db" -d 2>"$T/refuse.log" &&
	fail "tefd opened a symlinked database"
grep -q "symlink" "$T/refuse.log" || fail "no reason for refusing a symlinked database"
"$TEFD" -c "$T/tefd.conf" --bogus 2>/dev/null && fail "an unknown option was accepted"
echo "colour = red" >>"$T/tefd.conf"
"$TEFD" -c "$T/tefd.conf" -d 2>"$T/refuse.log" && fail "an unknown setting was accepted"
grep -q "unknown setting" "$T/refuse.log" || fail "no reason for an unknown setting"
ok "failed starts are reported; symlinks, unknown options and settings refused"

# 6. Unprivileged tefd: not dumpable, so its /proc files belong to root and
#    processes of its own uid cannot ptrace it or read its memory.
mkdir -m 0700 "$T/u" && chown 1500:1500 "$T/u"
as_user 1500 1500 "$TEFD" --init --master-key "$T/u/master.key"
as_user 1500 1500 "$TEFD" --socket "$T/u/tef.sock" --db "$T/u/tef.db" \
	--master-key "$T/u/master.key" --pidfile "$T/u/tefd.pid" -d 2>>"$T/tefd-u.log" &
wrapper=$!
at_exit "kill $wrapper"
for ((i = 0; i < 100; i++)); do [ -s "$T/u/tefd.pid" ] && break; sleep 0.1; done
upid=$(cat "$T/u/tefd.pid" 2>/dev/null) || fail "unprivileged tefd did not start"
at_exit "kill $upid"
[ "$(readlink "/proc/$upid/exe")" = "$(readlink -f "$TEFD")" ] || fail "pid file does not name tefd"
[ "$(stat -c %u "/proc/$upid/mem")" = 0 ] || fail "tefd is dumpable (PR_SET_DUMPABLE not 0)"
as_user 1500 1500 cat "/proc/$upid/environ" >/dev/null 2>&1 &&
	fail "a process of tefd's own uid read its /proc/PID/environ"
grep -q "^Max core file size *0 *0" "/proc/$upid/limits" || fail "core dumps not disabled"
kill -TERM "$upid"
wait "$wrapper" || fail "unprivileged tefd did not stop cleanly"
check_sanitizer_logs "$T/tefd-u.log"
ok "tefd is not dumpable and has no core dumps, also unprivileged"

# 7. --audit-append-only sets the inode's append-only attribute where the filesystem has one.
touch "$T/probe"
if command -v lsattr >/dev/null && chattr +a "$T/probe" 2>/dev/null; then
	chattr -a "$T/probe"
	at_exit "chattr -a '$T/ao-audit.log'"
	"$TEFD" --socket "$T/ao.sock" --db "$T/ao.db" --master-key "$T/master.key" \
		--audit-log "$T/ao-audit.log" --audit-append-only yes --pidfile "$T/ao.pid" -d \
		2>>"$T/tefd-ao.log" &
	ao=$!
	at_exit "kill $ao"
	wait_for_path "$T/ao.pid" || fail "tefd with --audit-append-only did not start"
	lsattr "$T/ao-audit.log" | awk '{print $1}' | grep -q a || fail "audit log is not append-only"
	: >"$T/ao-audit.log" 2>/dev/null && fail "an append-only audit log was truncated"
	kill -TERM "$ao"
	wait "$ao" || fail "tefd with --audit-append-only did not stop cleanly"
	ok "--audit-append-only makes the audit log append-only (chattr +a)"
else
	echo "# --audit-append-only not checked: no append-only attribute on this filesystem"
fi

# 8. A full disk under the audit log: one line when it stops taking lines, one
# when it takes them again, not one per request (issue 6 section 4).
mkdir "$T/small"
if mount -t tmpfs -o size=64k tmpfs "$T/small" 2>/dev/null; then
	at_exit "umount -l '$T/small'"
	"$TEFD" --socket "$T/full.sock" --db "$T/full.db" --master-key "$T/master.key" \
		--audit-log "$T/small/audit.log" --audit-append-only no --pidfile "$T/full.pid" -d \
		2>>"$T/tefd-full.log" &
	full=$!
	at_exit "kill $full"
	wait_for_path "$T/full.pid" || fail "tefd with its audit log on a small tmpfs did not start"
	dd if=/dev/zero of="$T/small/filler" bs=4k 2>/dev/null || true
	for i in $(seq 30); do curl -s --unix-socket "$T/full.sock" http://tef/keys/00 >/dev/null; done
	rm -f "$T/small/filler"
	for i in $(seq 3); do curl -s --unix-socket "$T/full.sock" http://tef/keys/00 >/dev/null; done
	n=$(grep -c "cannot write the audit log" "$T/tefd-full.log" || true)
	[ "$n" = 1 ] || fail "$n lines for one stretch of a full audit log"
	grep -q "cannot write the audit log '$T/small/audit.log'.*: No space left on device" \
		"$T/tefd-full.log" || fail "the audit log failure does not give its path and reason"
	[ "$(grep -c "audit log '$T/small/audit.log' takes lines again" "$T/tefd-full.log")" = 1 ] ||
		fail "the audit log's recovery is not logged once"
	kill -TERM "$full"
	wait "$full" || fail "tefd with a full audit log did not stop cleanly"
	umount "$T/small"
	ok "a full audit log is one line in tefd's log, its recovery another"
else
	echo "# a full audit log not checked: cannot mount a tmpfs here"
fi

# 9. Started by hand without -d, a tefd that cannot start says where the reason went.
if out=$("$TEFD" --socket "$T/bad.sock" --db "$T/bad.db" --master-key "$T/no-such.key" 2>&1); then
	fail "tefd started without its master key"
fi
[[ $out == *"did not start; the reason is in the system log"*"-d"* ]] ||
	fail "a daemonising tefd failed silently: '$out'"
ok "a daemonising tefd that cannot start says where to look"
out=$("$TEFCTL" --socket "$T/no-tefd.sock" list 2>&1) && fail "tefctl listed without a tefd"
[[ $out == *"cannot reach tefd at '$T/no-tefd.sock'"*"is it running?"* ]] ||
	fail "tefctl without a tefd does not say which socket it tried: '$out'"
ok "tefctl without a tefd names the socket it tried"

# 10. SIGHUP re-reads tefd.conf: the tunables take effect at once, a broken file
# changes nothing, a changed socket is named as needing a restart (issue 6 section 4).
hup_conf() {
	cat >"$T/hup.conf" <<CONF
socket = ${3:-$T/hup.sock}
db = $T/hup.db
master-key = $T/master.key
pidfile = $T/hup.pid
sweep-interval = 3600
max-ttl = $1
max-registrations = $2
CONF
}
# hup WHAT: SIGHUP, then wait for the next reload verdict in the log.
hup() {
	local n i
	n=$(grep -c "reloaded $T/hup.conf\|reload refused" "$T/tefd-hup.log" || true)
	kill -HUP "$hup_pid"
	for ((i = 0; i < 50; i++)); do
		[ "$(grep -c "reloaded $T/hup.conf\|reload refused" "$T/tefd-hup.log")" -gt "$n" ] &&
			return 0
		sleep 0.1
	done
	fail "no reload verdict in tefd's log after SIGHUP ($1)"
}
hup_conf 86400 10
"$TEFD" -c "$T/hup.conf" -d 2>>"$T/tefd-hup.log" &
hup_pid=$!
at_exit "kill $hup_pid"
wait_for_path "$T/hup.pid" || fail "tefd -c hup.conf did not start"
SOCK=$T/hup.sock
treq root POST /keys "{\"suid\":34,\"expirationTime\":\"$(ts 7200)\"}"
expect_answer 201 2001 "a registration for two hours under max-ttl = 86400"
[[ $(jq -r .expirationTime <<<"$BODY") > $(ts 3600) ]] || fail "expiry cut short before reload"
hup_conf 60 2
hup "lower max-ttl and max-registrations"
# default-ttl (30 days, cut to max-ttl) follows max-ttl down
changes="default-ttl 86400->60, max-ttl 86400->60, max-registrations 10->2"
grep -q "reloaded $T/hup.conf: $changes$" "$T/tefd-hup.log" ||
	fail "the reload does not say what changed: $(tail -n3 "$T/tefd-hup.log")"
treq root POST /keys "{\"suid\":34,\"expirationTime\":\"$(ts 7200)\"}"
expect_answer 201 2001 "a registration for two hours under max-ttl = 60"
[[ $(jq -r .expirationTime <<<"$BODY") < $(ts 120) ]] ||
	fail "the reloaded max-ttl is not applied: $(jq -r .expirationTime <<<"$BODY")"
treq root POST /keys '{"suid":34}'
expect_answer 406 5207 "a third registration over the reloaded max-registrations = 2"
ok "SIGHUP applies a lower max-ttl and max-registrations at once"

hup_conf 86400 10
echo "colour = red" >>"$T/hup.conf"
hup "a broken file"
grep -q "reload refused, keeping the running settings: $T/hup.conf:8: unknown setting" \
	"$T/tefd-hup.log" || fail "a refused reload does not give file:line and reason"
treq root POST /keys '{"suid":34}'
expect_answer 406 5207 "max-registrations = 2 after a refused reload"
ok "a config file with an error is refused whole"

hup_conf 86400 3 "$T/other.sock"
hup "a changed socket"
grep -q "reload: socket changed in $T/hup.conf but needs restart" "$T/tefd-hup.log" ||
	fail "a changed socket is not reported as needing a restart"
[ -e "$T/other.sock" ] && fail "tefd moved its socket without a restart"
treq root POST /keys '{"suid":34}'
expect_answer 201 2001 "a third registration under max-registrations = 3, on the old socket"
[ "$(grep -c "reopened the audit log" "$T/tefd-hup.log")" = 3 ] ||
	fail "SIGHUP with -c no longer reopens the audit log every time"
kill -TERM "$hup_pid"
wait "$hup_pid" || fail "tefd stopped badly after reloads"
check_sanitizer_logs "$T/tefd-hup.log"
ok "restart-only settings are named, the rest applies; the audit log still reopens"
