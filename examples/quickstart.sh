#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Runs atrest on embedded defaults: builds, starts tefd and hcsed, mounts
# atrestfs, shows a sealed file end to end, and keeps running until Ctrl-C.
#
#   examples/quickstart.sh [MOUNTPOINT]   start (default ./mnt), stay in the foreground
#   examples/quickstart.sh stop           stop a running quickstart
#
# Environment: ATREST_STATE (default ./.atrest), HCSED_LISTEN (127.0.0.1:8080),
# DEMO_UID (1000): the unprivileged uid the demo writes and reads as,
# ATREST_BUILD (./build): the meson build directory to use.
set -euo pipefail

src=$(cd "$(dirname "$0")/.." && pwd)
state=${ATREST_STATE:-$src/.atrest}
listen=${HCSED_LISTEN:-127.0.0.1:8080}
demo_uid=${DEMO_UID:-1000}
build=${ATREST_BUILD:-$src/build}

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }
die() { printf 'quickstart: %s\n' "$*" >&2; exit 1; }

stop_all() {
	local mnt
	if [ -f "$state/mountpoint" ]; then
		mnt=$(cat "$state/mountpoint")
		if mountpoint -q "$mnt" 2>/dev/null; then
			say "unmounting $mnt (pending uploads stay queued in $state/cache)"
			fusermount3 -u "$mnt" 2>/dev/null || umount "$mnt" 2>/dev/null || umount -l "$mnt" || true
		fi
	fi
	for d in atrestfs hcsed tefd; do
		[ -f "$state/$d.pid" ] || continue
		local pid
		pid=$(cat "$state/$d.pid")
		if kill -0 "$pid" 2>/dev/null; then
			say "stopping $d (pid $pid)"
			kill -TERM "$pid" 2>/dev/null || true
			for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
			kill -KILL "$pid" 2>/dev/null || true
		fi
		rm -f "$state/$d.pid"
	done
}

if [ "${1:-}" = "stop" ]; then
	# the foreground quickstart sees atrestfs go: it must not stop the rest a second time
	touch "$state/stopping" 2>/dev/null || true
	stop_all
	rm -f "$state/stopping"
	exit 0
fi
case "${1:-}" in
-h | --help)
	sed -n '3,12p' "$0" | sed 's/^# \{0,1\}//'
	exit 0
	;;
esac

[ "$(id -u)" = 0 ] || die "run as root: it mounts a FUSE filesystem and acts as another uid"
mnt=$(realpath -m "${1:-$src/mnt}")

say "installing what is missing"
"$src/tests/install-deps.sh" meson ninja-build pkg-config gcc libfuse3-dev fuse3 \
	libsodium-dev libcurl4-openssl-dev libsqlite3-dev libcmocka-dev libmicrohttpd-dev \
	libjansson-dev libgnutls28-dev attr curl util-linux

say "building in $build"
if [ -f "$build/build.ninja" ]; then
	meson compile -C "$build" >/dev/null
else
	meson setup "$build" >/dev/null
	meson compile -C "$build" >/dev/null
fi

stop_all
mkdir -p "$state/cache" "$state/log" "$mnt"
chmod 0700 "$state" "$state/cache"
echo "$mnt" >"$state/mountpoint"

if [ ! -f "$state/master.key" ]; then
	say "creating the TEF master key $state/master.key"
	"$build/tefd/tefd" --init --master-key "$state/master.key"
fi

# wait_for CHECK-COMMAND...: up to 10 s
wait_for() {
	for _ in $(seq 100); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
	return 1
}

say "starting tefd on $state/tef.sock"
"$build/tefd/tefd" --socket "$state/tef.sock" --db "$state/tef.db" \
	--master-key "$state/master.key" --delegate 0 --admin 0 -d \
	2>>"$state/log/tefd.log" &
echo $! >"$state/tefd.pid"
wait_for test -S "$state/tef.sock" || die "tefd did not start: see $state/log/tefd.log"

say "starting hcsed on http://$listen"
"$build/hcsed/hcsed" --listen "$listen" --db "$state/hcse.db" -d \
	2>>"$state/log/hcsed.log" &
echo $! >"$state/hcsed.pid"
base="http://$listen/cse-in"
wait_for curl -sf -H 'X-M2M-Origin: CAdmin' -H 'X-M2M-RI: qs' -H 'X-M2M-RVI: 3' "$base" ||
	die "hcsed did not start: see $state/log/hcsed.log"

say "mounting atrestfs at $mnt"
"$build/fs/atrestfs" "$base" "$mnt" -f \
	-o "tef=$state/tef.sock,cache=$state/cache,allow_other,default_permissions" \
	2>>"$state/log/atrestfs.log" &
echo $! >"$state/atrestfs.pid"
wait_for mountpoint -q "$mnt" || die "atrestfs did not mount: see $state/log/atrestfs.log"

trap 'stop_all; exit 0' INT TERM

demo="$mnt/demo-$demo_uid"
[ -d "$demo" ] || { mkdir "$demo" && chown "$demo_uid:$demo_uid" "$demo"; }
as_demo() { setpriv --reuid="$demo_uid" --regid="$demo_uid" --clear-groups -- "$@"; }

say "uid $demo_uid writes $demo/hello.txt and reads it back"
as_demo sh -c "echo 'hello from a legacy app' > '$demo/hello.txt'"
as_demo cat "$demo/hello.txt"

say "its Credential-Id (getfattr, no key released)"
getfattr --absolute-names -n user.onem2m.credential-id "$demo/hello.txt" || true
getfattr --absolute-names -n user.onem2m.resource "$demo/hello.txt" || true

res=$(getfattr --only-values -n user.onem2m.resource "$demo/hello.txt" 2>/dev/null || true)
if [ -n "$res" ]; then
	say "what hcsed stores for it: sealed JWE only (latest contentInstance)"
	for _ in $(seq 50); do
		[ "$(getfattr --only-values -n user.onem2m.state "$demo/hello.txt" 2>/dev/null)" = synced ] && break
		sleep 0.1
	done
	curl -s -H 'X-M2M-Origin: CAdmin' -H 'X-M2M-RI: qs' -H 'X-M2M-RVI: 3' "http://$listen$res/la" |
		cut -c1-400
	echo " ..."
fi

cat <<EOF

atrest is running.
  mount point   $mnt  (write files there as any user; $demo belongs to uid $demo_uid)
  HCSE          $base  (X-M2M-Origin: CAdmin is the admin)
  TEF socket    $state/tef.sock   (admin: $build/tefd/tefctl --socket $state/tef.sock list)
  logs          $state/log/
Stop with Ctrl-C here, or from another shell: $0 stop
EOF

fs_pid=$(cat "$state/atrestfs.pid")
while kill -0 "$fs_pid" 2>/dev/null; do sleep 1; done
# Stopped from another shell: that one cleans up.
[ -f "$state/tefd.pid" ] && [ ! -f "$state/stopping" ] || exit 0
say "atrestfs exited (see $state/log/atrestfs.log); stopping"
stop_all
