#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# What the README and examples/ promise a new user works: the quickstart end to
# end (start, sample file, stop), the example configuration files and units.
. "$ATREST_SRC/tests/integration/lib.sh"
need_root
need_fuse

# 1. The example configs are accepted as they are (paths overridden on the command line).
"$ATREST_BUILD/tefd/tefd" --init --master-key "$T/master.key" >/dev/null
"$ATREST_BUILD/tefd/tefd" -c "$ATREST_SRC/examples/config/tefd.conf" --socket "$T/tef.sock" \
	--db "$T/tef.db" --master-key "$T/master.key" --audit-log "$T/audit.log" -d \
	2>>"$T/tefd.log" &
pid=$!
at_exit "kill $pid"
at_exit "chattr -a '$T/audit.log'"
wait_for_path "$T/tef.sock" 10 || fail "tefd did not start with examples/config/tefd.conf"
"$ATREST_BUILD/tefd/tefctl" --socket "$T/tef.sock" list >/dev/null ||
	fail "tefctl cannot list on a tefd started from the example config"
stop_pid $pid
ok "examples/config/tefd.conf is accepted"

port=$((20000 + RANDOM % 20000))
"$ATREST_BUILD/hcsed/hcsed" -c "$ATREST_SRC/examples/config/hcsed.conf" \
	--listen "127.0.0.1:$port" --db "$T/hcse.db" -d 2>>"$T/hcsed.log" &
pid=$!
at_exit "kill $pid"
for i in $(seq 100); do
	out=$(curl -sf -H 'X-M2M-Origin: CAdmin' -H 'X-M2M-RI: t' -H 'X-M2M-RVI: 3' \
		"http://127.0.0.1:$port/cse-in" || true)
	[ -n "$out" ] && break
	sleep 0.1
done
echo "$out" | grep -q '"csi":"/id-in"' || fail "hcsed from the example config: '$out'"
stop_pid $pid
ok "examples/config/hcsed.conf is accepted"

# 2. The units start what the build installs, with the example config files.
for u in tefd hcsed; do
	grep -q "^ExecStart=/usr/local/sbin/$u -c /etc/atrest/$u.conf" \
		"$ATREST_SRC/examples/systemd/$u.service" || fail "$u.service ExecStart"
	grep -q "^Type=notify" "$ATREST_SRC/examples/systemd/$u.service" || fail "$u.service Type"
done
if command -v systemd-analyze >/dev/null; then
	SYSTEMD_LOG_LEVEL=err systemd-analyze verify --man=no \
		"$ATREST_SRC"/examples/systemd/*.service 2>&1 | grep -v 'not found\|Failed to' | grep . &&
		fail "systemd-analyze finds problems in the units"
fi
ok "systemd units name the installed programs and the example configs"

# 3. README's first command, for real, on a private state dir and port.
port=$((20000 + RANDOM % 20000))
export ATREST_STATE=$T/state HCSED_LISTEN=127.0.0.1:$port DEMO_UID=4242
"$ATREST_SRC/examples/quickstart.sh" "$T/mnt" >"$T/quickstart.log" 2>&1 &
qs=$!
at_exit "'$ATREST_SRC/examples/quickstart.sh' stop"
for i in $(seq 600); do
	grep -q "atrest is running" "$T/quickstart.log" && break
	kill -0 $qs 2>/dev/null || { cat "$T/quickstart.log" >&2; fail "quickstart exited early"; }
	sleep 0.1
done
grep -q "atrest is running" "$T/quickstart.log" || { cat "$T/quickstart.log" >&2; fail "quickstart did not come up"; }
grep -q "^hello from a legacy app$" "$T/quickstart.log" || fail "quickstart did not read the sample back"
grep -q 'user.onem2m.credential-id="[0-9a-f]\{32\}@' "$T/quickstart.log" || fail "no Credential-Id shown"
grep -q '"cnf":"application/octet-stream:0:1"' "$T/quickstart.log" || fail "no sealed contentInstance shown"
grep -q '"con":"eyJ' "$T/quickstart.log" || fail "the contentInstance shown is not a compact JOSE string"
mountpoint -q "$T/mnt" || fail "quickstart left nothing mounted"
ok "quickstart.sh runs end to end"

"$ATREST_SRC/examples/quickstart.sh" stop >>"$T/quickstart.log" 2>&1
wait $qs || true
mountpoint -q "$T/mnt" && fail "quickstart.sh stop left $T/mnt mounted"
for d in tefd hcsed atrestfs; do [ -f "$ATREST_STATE/$d.pid" ] && fail "$d.pid left behind"; done
# the foreground quickstart sees atrestfs go and must not stop the rest a second time
for d in tefd hcsed; do
	n=$(grep -c "stopping $d " "$T/quickstart.log" || true)
	[ "$n" = 1 ] || fail "'stopping $d' said $n times"
done
grep -q "atrestfs\[[0-9]*\] info: unmounted '$T/mnt': " "$ATREST_STATE/log/atrestfs.log" ||
	fail "atrestfs's log does not say it was unmounted"
ok "quickstart.sh stop unmounts and stops the daemons, once"

# 4. Running it twice reuses the state: the same master key, the file still there.
key_before=$(sha256sum "$ATREST_STATE/master.key")
"$ATREST_SRC/examples/quickstart.sh" "$T/mnt" >"$T/quickstart2.log" 2>&1 &
qs=$!
for i in $(seq 600); do
	grep -q "atrest is running" "$T/quickstart2.log" && break
	kill -0 $qs 2>/dev/null || { cat "$T/quickstart2.log" >&2; fail "second quickstart exited early"; }
	sleep 0.1
done
[ "$(sha256sum "$ATREST_STATE/master.key")" = "$key_before" ] || fail "the master key changed"
grep -q "creating the TEF master key" "$T/quickstart2.log" && fail "a second master key was made"
"$ATREST_SRC/examples/quickstart.sh" stop >/dev/null 2>&1
wait $qs || true
check_sanitizer_logs "$ATREST_STATE"/log/*.log
ok "a second run reuses the state"
