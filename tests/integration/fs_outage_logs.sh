#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Logs an operator can read (issue 6 section 4): an outage of tefd or hcsed is
# one line when it starts (with the reason) and one when it ends (with its
# length and what failed or queued), not a line per failed request; a file
# that got EIO is named by its path in the mount and its hcsed resource.
. "$ATREST_SRC/tests/integration/lib.sh"
need_root
need_fuse
command -v jq >/dev/null || skip "jq is not installed"

U=2411
start_tefd

# mounted without -f, a failure to start is told on stderr, not only to syslog
mkdir "$T/m0"
if out=$("$ATREST_BUILD/fs/atrestfs" http://127.0.0.1:1/cse-in "$T/m0" \
	-o "tef=$TEF_SOCK,cache=$T/c0" 2>&1); then
	fusermount3 -uz "$T/m0"
	fail "mounted with an unreachable HCSE and an empty cache"
fi
[[ $out == *"cannot register AE 'atrestfs' with the HCSE, and the cache is empty"* ]] ||
	fail "atrestfs failed to start without saying why on stderr: '$out'"
ok "a daemonising atrestfs that cannot start says why on stderr"

start_hcsed
M=$T/mnt
# key_cache=0: every open asks tefd, so the outage is felt (with the cache a
# caller whose key is cached keeps opening for key_cache seconds, FS.md)
mount_atrestfs "$M" "$T/cache" "key_cache=0"
mkdir "$M/logs"
chown $U:$U "$M/logs"
for i in 0 1 2 3 4 5 6 7; do echo "seed $i" | as_user $U $U tee "$M/logs/f$i" >/dev/null; done

# a writer rewriting and reading back its files in a tight loop, as the legacy app would
cat >"$T/writer.sh" <<'SH'
i=0
while [ ! -e "$1/stop" ]; do
	i=$((i + 1))
	{ echo "line $i" >"$2/f$((i % 8))"; } 2>/dev/null && echo ok >>"$1/w.ok" || echo eio >>"$1/w.err"
	cat "$2/f$(((i + 3) % 8))" >/dev/null 2>&1 || true
done
SH
touch "$T/w.ok" "$T/w.err"
chmod 0777 "$T"
chmod 0666 "$T/w.ok" "$T/w.err"
as_user $U $U bash "$T/writer.sh" "$T" "$M/logs" &
W=$!
at_exit "touch '$T/stop'; wait $W"
sleep 1

# ---- tefd stops for 3 seconds while the writer goes on
stop_daemon "$TEFD_PID"
sleep 3
start_tefd
sleep 2
fails=$(wc -l <"$T/w.err")
[ "$fails" -ge 2 ] || fail "the writer saw $fails failures while tefd was down: the outage was not exercised"

log=$T/atrestfs.log
n_down=$(grep -c "tefd at '$TEF_SOCK' is unreachable: " "$log" || true)
n_up=$(grep -c "tefd at '$TEF_SOCK' answers again after [0-9.]* s down: [0-9]* requests\? and [0-9]* operations\? failed" "$log" || true)
[ "$n_down" = 1 ] || fail "$n_down outage lines for one tefd outage"
[ "$n_up" = 1 ] || fail "$n_up recovery lines for one tefd outage"
grep -q "tefd at '$TEF_SOCK' is unreachable: \(No such file or directory\|Connection refused\)" "$log" ||
	fail "the outage line does not give the reason"
# the first file that failed is named by its path and its hcsed resource
grep -Eq "of '/logs/f[0-7]' \(hcsed '/cse-in/atrestfs/i[0-9]+'\) failed with EIO because tefd is down" "$log" ||
	fail "the EIO'd file is not named by its path"
[ "$(grep -c 'failed with EIO because tefd is down' "$log")" = 1 ] ||
	fail "more than one line per outage names a failed file"
ok "a tefd outage of 3 s ($fails failed writes) logs one line, its recovery one line"
# the whole log stays short: no line per failed request
lines=$(wc -l <"$log")
[ "$lines" -lt 20 ] || fail "$lines log lines for one outage"

# ---- hcsed stops for 3 seconds: writes go on into the cache, one line each way
port=$HCSE_PORT
stop_daemon "$HCSED_PID"
ok_before=$(wc -l <"$T/w.ok")
sleep 3
ok_during=$(($(wc -l <"$T/w.ok") - ok_before))
[ "$ok_during" -ge 5 ] || fail "only $ok_during writes succeeded while hcsed was down"
HCSE_PORT=$port start_hcsed
for ((i = 0; i < 100; i++)); do
	grep -q "hcsed at '$HCSE_URL' answers again" "$log" && break
	sleep 0.1
done
n_down=$(grep -c "hcsed at '$HCSE_URL' is unreachable: " "$log" || true)
n_up=$(grep -c "hcsed at '$HCSE_URL' answers again after [0-9.]* s down: .* queued for upload" "$log" || true)
[ "$n_down" = 1 ] || fail "$n_down outage lines for one hcsed outage"
[ "$n_up" = 1 ] || fail "$n_up recovery lines for one hcsed outage"
ok "an hcsed outage of 3 s ($ok_during writes into the cache meanwhile) logs one line, its recovery one line"

touch "$T/stop"
wait $W || true

# ---- a create is the first thing tefd's absence fails: the new file is named by its path;
# a file removed meanwhile still has its key destroyed once tefd is back
K=$(getfattr --absolute-names --only-values -n user.onem2m.credential-id "$M/logs/f1")
K=${K%@*}
has_key() {
	curl -s --unix-socket "$TEF_SOCK" "http://tef/keys?owner=uid:$U" |
		jq -e --arg k "$K" '.keys | map(.relativeKeyID) | index($k)' >/dev/null
}
has_key || fail "no key $K at tefd for /logs/f1"
wait_synced "$M"/logs/f* # nothing else waits for tefd: the removal is all the uploader has to do
stop_daemon "$TEFD_PID"
# by root, who has no registration made ahead in the pool ($U has: FS.md)
sh -c "echo x > '$M/logs/created-while-down'" 2>/dev/null && fail "created a file without tefd"
as_user $U $U rm "$M/logs/f1"
sync
echo 2 >/proc/sys/vm/drop_caches # the kernel forgets the inode: atrestfs reaps it now
sleep 3
start_tefd
grep -Eq "key registration of '/logs/created-while-down' \(hcsed '/cse-in/atrestfs/i[0-9]+'\) failed with EIO" \
	"$log" || fail "a create that failed is not named by its path"
ok "a create failed by tefd's absence is named by its path"
for ((i = 0; i < 300; i++)); do has_key || break; sleep 0.1; done
has_key && fail "the key of a file removed while tefd was down outlives it"
ok "a file removed while tefd was down has its key destroyed once tefd is back"

lines=$(wc -l <"$log")
[ "$lines" -lt 24 ] || fail "$lines log lines for three outages"
! grep -q "inode [0-9]" "$log" || fail "a log line names an inode instead of a path"
wait_synced "$M"/logs/f*
check_sanitizer_logs "$log" "$T/tefd.log" "$T/hcsed.log"
sed "s/^/    /" "$log"
ok "the log of three outages is $lines lines"
