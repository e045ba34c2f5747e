# SPDX-License-Identifier: Apache-2.0
# Helpers shared by the tefd integration tests: start/stop the real tefd, one-line requests.
# Source after lib.sh.

TEFD=$ATREST_BUILD/tefd/tefd
TEFCTL=$ATREST_BUILD/tefd/tefctl
SOCK=$T/tef.sock

[ -x "$TEFD" ] || fail "tefd is not built"
command -v jq >/dev/null || skip "jq is not installed"
command -v curl >/dev/null || skip "curl is not installed"

# make_master_key [PATH]: a fresh master key (default $T/master.key).
make_master_key() {
	"$TEFD" --init --master-key "${1:-$T/master.key}" || fail "tefd --init failed"
}

# start_tefd [ARGS...]: starts tefd -d in the foreground on $SOCK with $T/tef.db and
# waits until it is ready (it writes the pid file only once it serves).
start_tefd() {
	rm -f "$T/tefd.pid"
	"$TEFD" --socket "$SOCK" --db "$T/tef.db" --master-key "$T/master.key" \
		--fqdn tef.test --pidfile "$T/tefd.pid" --sweep-interval 3600 -d "$@" \
		2>>"$T/tefd.log" &
	TEFD_PID=$!
	at_exit "kill $TEFD_PID"
	local i
	for ((i = 0; i < 100; i++)); do
		[ -s "$T/tefd.pid" ] && return 0
		kill -0 "$TEFD_PID" 2>/dev/null || fail "tefd exited during start-up"
		sleep 0.1
	done
	fail "tefd did not become ready"
}

# stop_tefd: SIGTERM, and the exit status must be 0.
stop_tefd() {
	kill -TERM "$TEFD_PID"
	wait "$TEFD_PID" || fail "tefd exited with status $? on SIGTERM"
	check_sanitizer_logs "$T/tefd.log"
}

# treq AS METHOD PATH [BODY] [ON-BEHALF-OF]: one request over the socket.
# AS is "root" or "UID:GID[,GROUPS]". Sets HTTP, RSC, BODY; the raw answer
# (headers without Date, then body) is in $T/resp.
treq() {
	local as=$1 method=$2 path=$3 body=${4:-} obo=${5:-}
	local args=(-s -i -X "$method" --unix-socket "$SOCK")
	[ -n "$body" ] && args+=(-H 'Content-Type: application/json' --data-binary "$body")
	[ -n "$obo" ] && args+=(-H "X-Atrest-On-Behalf-Of: $obo")
	if [ "$as" = root ]; then
		curl "${args[@]}" "http://tef$path" >"$T/resp.raw" || true
	else
		as_user "${as%%:*}" "${as#*:}" curl "${args[@]}" "http://tef$path" \
			>"$T/resp.raw" || true
	fi
	tr -d '\r' <"$T/resp.raw" | grep -v '^Date:' >"$T/resp"
	HTTP=$(head -n1 "$T/resp" | awk '{print $2}')
	RSC=$(sed -n 's/^X-M2M-RSC: //Ip' "$T/resp" | head -n1)
	BODY=$(sed '1,/^$/d' "$T/resp")
}

# expect_answer HTTP RSC WHAT: the last treq answered HTTP / RSC.
expect_answer() {
	[ "$HTTP" = "$1" ] && [ "$RSC" = "$2" ] ||
		fail "$3: expected $1/$2, got ${HTTP:-none}/${RSC:-none}: $BODY"
}

# register AS BODY [OBO]: registers and prints the relativeKeyID.
register() {
	treq "$1" POST /keys "$2" "${3:-}"
	expect_answer 201 2001 "register as $1"
	jq -r .relativeKeyID <<<"$BODY"
}

# ts SECONDS-FROM-NOW: a oneM2M timestamp.
ts() {
	date -u -d "@$(($(date +%s) + $1))" +%Y%m%dT%H%M%S
}
