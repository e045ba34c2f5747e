# SPDX-License-Identifier: Apache-2.0
# Helpers for the Client AE tests: a PKI, tefd and hcsed (optionally over mutual TLS), an owner's upload, a reader's get.
# Source after lib.sh: . "$ATREST_SRC/tests/integration/client_lib.sh"

TEFD=$ATREST_BUILD/tefd/tefd
HCSED=$ATREST_BUILD/hcsed/hcsed
GET=$ATREST_BUILD/examples/atrest-get
PUT=$ATREST_BUILD/tests/tools/atrest-put
PKI=$T/pki
# The owner of the data: uid A when root can switch to it, else ourselves.
OWNER_UID=1001
OWNER_GID=1001
[ "$(id -u)" = 0 ] || { OWNER_UID=$(id -u); OWNER_GID=$(id -g); }

# A port nobody listens on now (the kernel picks it).
free_port() {
	/usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# make_pki AE-ID...: examples/pki.sh into $PKI; the owner may read Cwriter's key.
make_pki() {
	"$ATREST_SRC/examples/pki.sh" "$PKI" "$@" >"$T/pki.log" || fail "pki.sh failed: $(cat "$T/pki.log")"
	[ -f "$PKI/Cwriter.key" ] && chown "$OWNER_UID:$OWNER_GID" "$PKI/Cwriter.key" 2>/dev/null
	return 0
}

# start_tefd [tls] [TEFD-ARGS...]: tefd on $T/tef.sock (any local uid may
# connect), plus a mutual-TLS TCP listener with "tls"; sets TEF_SOCK and TEF_URL.
start_tefd() {
	local extra=()
	TEF_SOCK=$T/tef.sock
	"$TEFD" --init --master-key "$T/master.key" >/dev/null
	# tefd makes its audit log append-only (chattr +a) where it can: undo
	# that after it stopped so the temp dir can go
	at_exit "chattr -a '$T/tef.db-audit.log'"
	if [ "${1:-}" = tls ]; then
		TEF_PORT=$(free_port)
		TEF_URL=https://127.0.0.1:$TEF_PORT
		extra=(--listen "127.0.0.1:$TEF_PORT" --tls-cert "$PKI/tefd.crt"
			--tls-key "$PKI/tefd.key" --tls-ca "$PKI/ca.crt")
		shift
	fi
	extra+=("$@")
	"$TEFD" --socket "$TEF_SOCK" --socket-mode 0666 --db "$T/tef.db" \
		--master-key "$T/master.key" --fqdn tef.atrest.test -d "${extra[@]}" \
		2>>"$T/tefd.log" &
	TEFD_PID=$!
	at_exit "kill $TEFD_PID; wait $TEFD_PID"
	wait_for_path "$TEF_SOCK" 10 || fail "tefd did not create its socket"
	if [ -n "${TEF_PORT:-}" ]; then
		local i
		for ((i = 0; i < 100; i++)); do
			(exec 3<>"/dev/tcp/127.0.0.1/$TEF_PORT") 2>/dev/null && return 0
			sleep 0.1
		done
		fail "tefd's TLS listener did not come up on port $TEF_PORT"
	fi
}

# start_hcsed [tls]: hcsed on a free port, plain or mutual TLS; sets HCSE_URL.
start_hcsed() {
	local extra=() scheme=http i
	HCSE_PORT=$(free_port)
	if [ "${1:-}" = tls ]; then
		scheme=https
		extra=(--tls-cert "$PKI/hcsed.crt" --tls-key "$PKI/hcsed.key" --tls-ca "$PKI/ca.crt")
	fi
	HCSE_URL=$scheme://127.0.0.1:$HCSE_PORT/cse-in
	"$HCSED" --listen "127.0.0.1:$HCSE_PORT" --db "$T/hcse.db" -d "${extra[@]}" \
		2>>"$T/hcsed.log" &
	HCSED_PID=$!
	at_exit "kill $HCSED_PID; wait $HCSED_PID"
	for ((i = 0; i < 100; i++)); do
		(exec 3<>"/dev/tcp/127.0.0.1/$HCSE_PORT") 2>/dev/null && return 0
		sleep 0.1
	done
	fail "hcsed did not come up on port $HCSE_PORT"
}

# hcse_as ORIGIN CURL-ARGS...: a oneM2M request as ORIGIN (with its
# certificate when hcsed speaks TLS). Prints the body; the RSC goes to $T/rsc.
hcse_as() {
	local who=$1 tls=()
	shift
	case "$HCSE_URL" in
	https:*) tls=(--cacert "$PKI/ca.crt" --cert "$PKI/$who.crt" --key "$PKI/$who.key") ;;
	esac
	curl -s -D "$T/headers" "${tls[@]}" -H "X-M2M-Origin: $who" -H "X-M2M-RI: t$RANDOM" \
		-H 'X-M2M-RVI: 3' "$@"
	tr -d '\r' <"$T/headers" | sed -n 's/^X-M2M-RSC: //Ip' >"$T/rsc"
}

# grant_retrieve OWNER AE-RN ORIGIN...: the owner gives ORIGINs retrieve +
# discover (acop 2|32, TS-0004 table 6.3.4.2.x) on its AE's subtree.
grant_retrieve() {
	local owner=$1 ae=$2 acor
	shift 2
	acor=$(printf '"%s",' "$@")
	hcse_as "$owner" -H 'Content-Type: application/json;ty=1' \
		-d "{\"m2m:acp\":{\"rn\":\"readers\",\"pv\":{\"acr\":[{\"acor\":[${acor%,}],\"acop\":34}]},\"pvs\":{\"acr\":[{\"acor\":[\"$owner\"],\"acop\":63}]}}}" \
		"$HCSE_URL/$ae" >/dev/null
	[ "$(cat "$T/rsc")" = 2001 ] || fail "ACP creation answered RSC $(cat "$T/rsc")"
	hcse_as "$owner" -X PUT -H 'Content-Type: application/json' \
		-d "{\"m2m:ae\":{\"acpi\":[\"cse-in/$ae/readers\"]}}" "$HCSE_URL/$ae" >/dev/null
	[ "$(cat "$T/rsc")" = 2004 ] || fail "setting acpi answered RSC $(cat "$T/rsc")"
}

# put_as_owner ATREST-PUT-ARGS... <data: the owner uploads as Cwriter; prints key=value lines.
put_as_owner() {
	local tls=()
	case "$HCSE_URL" in
	https:*) tls=(--cert "$PKI/Cwriter.crt" --key "$PKI/Cwriter.key" --ca "$PKI/ca.crt") ;;
	esac
	if [ "$(id -u)" = 0 ]; then
		as_user "$OWNER_UID" "$OWNER_GID" "$PUT" -T "$TEF_SOCK" -H "$HCSE_URL" -O Cwriter \
			"${tls[@]}" "$@"
	else
		"$PUT" -T "$TEF_SOCK" -H "$HCSE_URL" -O Cwriter "${tls[@]}" "$@"
	fi
}

# get_as ID ATREST-GET-ARGS...: atrest-get as AE ID with its certificate
# for both hcsed and tefd (TLS). Its stderr goes to $T/get.log (appended to
# $T/get-all.log for the sanitizer check); returns its exit code.
get_as() {
	local who=$1 rc=0
	shift
	"$GET" -H "$HCSE_URL" -O "$who" -T "$TEF_URL" --ca "$PKI/ca.crt" \
		--cert "$PKI/$who.crt" --key "$PKI/$who.key" "$@" 2>"$T/get.log" || rc=$?
	cat "$T/get.log" >>"$T/get-all.log"
	return $rc
}

# expect_rc WANT WHAT CMD...: runs CMD, fails unless it exits WANT.
expect_rc() {
	local want=$1 what=$2 rc=0
	shift 2
	"$@" || rc=$?
	[ "$rc" = "$want" ] || fail "$what: exit $rc, expected $want ($(cat "$T/get.log" 2>/dev/null))"
	ok "$what (exit $rc)"
}

# field KEY FILE: the value of a key=value line.
field() { sed -n "s/^$1=//p" "$2"; }

# can_mount: atrestfs is built and this machine can mount it for other uids.
ATRESTFS=${ATRESTFS:-$ATREST_BUILD/fs/atrestfs}
can_mount() { [ -x "$ATRESTFS" ] && [ "$(id -u)" = 0 ] && [ -c /dev/fuse ] && command -v fusermount3 >/dev/null; }

# fs_write_as_owner PLAIN NAME TARGETS [SEGMENT-SIZE]: mounts atrestfs (AE
# "writer", hcsed over mutual TLS as Cwriter when HCSE_URL is https) once,
# then uid A copies PLAIN to a/NAME, sets user.onem2m.targets and waits
# until it is uploaded. Sets RES (CSE-relative), CRED and LISTDIR.
fs_write_as_owner() {
	local plain=$1 name=$2 targets=$3 segsize=${4:-65536} f tls=""
	case "$HCSE_URL" in
	https:*) tls=",hcse_cert=$PKI/Cwriter.crt,hcse_key=$PKI/Cwriter.key,hcse_ca=$PKI/ca.crt" ;;
	esac
	if ! mountpoint -q "$T/mnt" 2>/dev/null; then
		mkdir -p "$T/mnt" "$T/cache"
		"$ATRESTFS" "$HCSE_URL" "$T/mnt" -f \
			-o "tef=$TEF_SOCK,cache=$T/cache,ae=writer$tls,allow_other,default_permissions,segment_size=$segsize" \
			2>>"$T/atrestfs.log" &
		FS_PID=$!
		at_exit "fusermount3 -u '$T/mnt' || umount -l '$T/mnt'; kill $FS_PID; wait $FS_PID"
		for _ in $(seq 100); do mountpoint -q "$T/mnt" && break; sleep 0.1; done
		mountpoint -q "$T/mnt" || fail "atrestfs did not mount"
		mkdir "$T/mnt/a"
		chown "$OWNER_UID:$OWNER_GID" "$T/mnt/a"
	fi
	f=$T/mnt/a/$name
	as_user "$OWNER_UID" "$OWNER_GID" cp "$plain" "$f" || fail "uid $OWNER_UID cannot write $f"
	as_user "$OWNER_UID" "$OWNER_GID" setfattr -n user.onem2m.targets -v "$targets" "$f" ||
		fail "uid $OWNER_UID cannot set the targets of $f"
	for _ in $(seq 200); do
		[ "$(getfattr --absolute-names --only-values -n user.onem2m.state "$f")" = synced ] && break
		sleep 0.1
	done
	[ "$(getfattr --absolute-names --only-values -n user.onem2m.state "$f")" = synced ] ||
		fail "atrestfs did not upload $name within 20 s"
	CRED=$(getfattr --absolute-names --only-values -n user.onem2m.credential-id "$f")
	RES=$(getfattr --absolute-names --only-values -n user.onem2m.resource "$f")
	RES=${RES#/cse-in/}
	LISTDIR=$(getfattr --absolute-names --only-values -n user.onem2m.resource "$T/mnt/a")
}

# cin_names RES: the contentInstance names under RES, one a line, by discovery as Cwriter.
cin_names() {
	hcse_as Cwriter "$HCSE_URL/$1?fu=1&ty=4&lvl=1" | grep -o '"[^"]*"' | tr -d '"' | sed 's|.*/||' |
		grep -x 's[0-9]*g[0-9]*\|m[0-9]*'
}
