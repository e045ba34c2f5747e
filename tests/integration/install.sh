#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# What `meson install` puts on a gateway works there (issue 6, section 4): the
# programs, manuals that render without warnings, the example configs, units
# that systemd-analyze accepts with the hardening the issue asks for, each
# daemon run as its unit runs it (READY=1, reload, stop), and the fstab line and
# mount unit mounting atrestfs through mount(8).
. "$ATREST_SRC/tests/integration/lib.sh"
need_root
need_fuse
PY=/usr/bin/python3

# ---- 1. meson install --destdir: programs, manuals, examples ----
R=$T/root
meson install -C "$ATREST_BUILD" --no-rebuild --destdir "$R" >"$T/install.log" 2>&1 ||
	fail "meson install failed: $(tail -5 "$T/install.log")"
read -r prefix bindir sbindir mandir datadir < <(meson introspect "$ATREST_BUILD" --buildoptions |
	$PY -c 'import json, sys
o = {x["name"]: x["value"] for x in json.load(sys.stdin)}
print(*(o[k] for k in ("prefix", "bindir", "sbindir", "mandir", "datadir")))')
P=$R$prefix
for f in "$bindir/atrestfs" "$bindir/atrest-get" "$sbindir/tefd" "$sbindir/tefctl" "$sbindir/hcsed"; do
	[ -f "$P/$f" ] && [ -x "$P/$f" ] || fail "meson install did not install $prefix/$f"
	"$P/$f" --help >/dev/null 2>&1 || fail "the installed $prefix/$f does not run (--help)"
done
ok "meson install: atrestfs, atrest-get in $prefix/$bindir; tefd, tefctl, hcsed in $prefix/$sbindir; they run"

mans=(atrestfs.1 atrest-get.1 tefd.8 tefctl.8 hcsed.8 tefd.conf.5 hcsed.conf.5)
# every manual in man/ is installed, and none is forgotten in this list
for f in "$ATREST_SRC"/man/*.[1-9]; do
	[[ " ${mans[*]} " == *" ${f##*/} "* ]] || mans+=("${f##*/}")
done
for m in "${mans[@]}"; do
	f=$P/$mandir/man${m##*.}/$m
	[ -f "$f" ] || fail "manual $m not installed as $f"
	warn=$(MANWIDTH=80 man --warnings -l "$f" 2>&1 >"$T/man.out") || fail "man -l $m failed: $warn"
	[ -z "$warn" ] || fail "man $m renders with warnings: $(echo "$warn" | head -5)"
	grep -q '^NAME' "$T/man.out" && grep -q '^SYNOPSIS\|^DESCRIPTION' "$T/man.out" ||
		fail "man $m renders without NAME and SYNOPSIS/DESCRIPTION"
done
ok "${#mans[@]} manuals installed in $prefix/$mandir; each renders with man --warnings silent"

EX=$P/$datadir/doc/atrest/examples
for f in config/tefd.conf config/hcsed.conf systemd/tefd.service systemd/hcsed.service \
	mnt-secure.mount atrestfs.fstab pki.sh; do
	cmp -s "$ATREST_SRC/examples/$f" "$EX/${f##*/}" || fail "examples/$f not installed in $EX"
done
# README's Install section says where they go with the default prefix
readme=$(tr '\n' ' ' <"$ATREST_SRC/README.md")
for d in "$bindir" "$sbindir" "$datadir/doc/atrest/examples"; do
	[[ $readme == *" /usr/local/$d"[\ .,]* ]] || fail "README does not say that meson install puts files in /usr/local/$d"
done
ok "example configs, units, the fstab line and pki.sh installed in $prefix/$datadir/doc/atrest/examples"

# ---- 2. the units: systemd-analyze verify on the installed copies ----
# Units name $prefix/sbin/...: the copies name the installed programs under $R
# (so "is not executable" is a real finding), and man: links resolve in $R.
U=$T/units
mkdir "$U"
cp "$EX"/*.service "$EX"/*.mount "$U/"
sed -i "s|^\(Exec[A-Za-z]*=\)$prefix/|\1$P/|" "$U"/*.service
for u in tefd hcsed; do
	grep -q "^ExecStart=$P/$sbindir/$u -c /etc/atrest/$u.conf -d$" "$U/$u.service" ||
		fail "$u.service: ExecStart is not $prefix/$sbindir/$u -c /etc/atrest/$u.conf -d"
done
# verify [--man=no] NAMES...: systemd-analyze verify in $U prints nothing and succeeds
verify() {
	local out man=--man=yes
	[ "$1" = --man=no ] && { man=$1; shift; }
	out=$(cd "$U" && MANPATH=$P/$mandir SYSTEMD_LOG_LEVEL=notice \
		systemd-analyze verify $man "${@/#/./}" 2>&1) ||
		fail "systemd-analyze verify $*: $out"
	[ -z "$out" ] || fail "systemd-analyze verify $* warns: $out"
}
verify tefd.service hcsed.service mnt-secure.mount

# the fstab line, as systemd-fstab-generator turns it into a mount unit
mkdir -p "$T/gen/normal" "$T/gen/early" "$T/gen/late"
SYSTEMD_FSTAB=$EX/atrestfs.fstab SYSTEMD_PROC_CMDLINE= \
	/lib/systemd/system-generators/systemd-fstab-generator "$T/gen/normal" "$T/gen/early" "$T/gen/late" ||
	fail "systemd-fstab-generator rejects atrestfs.fstab"
G=$T/gen/normal/mnt-secure.mount
[ -f "$G" ] || fail "atrestfs.fstab does not make mnt-secure.mount"
mkdir "$U/gen"
cp "$G" "$U/gen/mnt-secure.mount"
cp "$U/tefd.service" "$U/hcsed.service" "$U/gen/"
# (its Documentation= names fstab(5), which this machine may not have)
U=$U/gen verify --man=no mnt-secure.mount
# key FILE: the value(s) of KEY= in a unit
key() { sed -n "s/^$1=//p" "$2"; }
for k in What Where Type; do
	[ "$(key $k "$G")" = "$(key $k "$U/mnt-secure.mount")" ] ||
		fail "atrestfs.fstab and mnt-secure.mount disagree on $k"
done
[ "$(key Options "$G" | tr , '\n' | grep -v '^x-systemd\.')" = "$(key Options "$U/mnt-secure.mount" | tr , '\n')" ] ||
	fail "atrestfs.fstab and mnt-secure.mount disagree on the mount options"
for dep in Requires After; do
	for d in $(key $dep "$G"); do
		key $dep "$U/mnt-secure.mount" | tr ' ' '\n' | grep -qx "$d" ||
			fail "mnt-secure.mount lacks $dep=$d that atrestfs.fstab has"
	done
done

# every unit the units name exists: one of ours or one systemd ships
for f in "$U"/*.service "$U"/*.mount; do
	for d in $(sed -n 's/^\(Requires\|Requisite\|Wants\|BindsTo\|PartOf\|After\|Before\|WantedBy\|RequiredBy\)=//p' "$f"); do
		[ -f "$U/$d" ] || [ -f "/lib/systemd/system/$d" ] || [ -f "/usr/lib/systemd/system/$d" ] ||
			fail "${f##*/} names $d, which no example and no systemd package provides"
	done
done
ok "systemd-analyze verify: units and the fstab line's generated unit clean; they agree; every unit they name exists"

# ---- 3. the hardening issue 6 asks for, and its consequences for the configs ----
need_key() { grep -qx "$2" "$U/$1" || fail "$1 lacks $2"; }
for u in tefd.service hcsed.service; do
	for kv in Type=notify NoNewPrivileges=yes ProtectSystem=strict ProtectHome=yes PrivateTmp=yes \
		PrivateDevices=yes UMask=0077 CapabilityBoundingSet= Restart=on-failure \
		'ExecReload=/bin/kill -HUP $MAINPID'; do
		need_key $u "$kv"
	done
	grep -q '^StateDirectory=atrest/' "$U/$u" || fail "$u has no StateDirectory under atrest/"
	score=$(systemd-analyze security --offline=yes --no-pager "$U/$u" 2>&1 |
		sed -n 's/.*Overall exposure level for .*: \([0-9.]*\) .*/\1/p')
	[ -n "$score" ] || fail "systemd-analyze security gives no exposure level for $u"
	awk "BEGIN { exit !($score <= 2.5) }" || fail "$u: exposure level $score (want <= 2.5)"
	echo "# $u: systemd-analyze security exposure level $score"
done
need_key tefd.service RuntimeDirectory=atrest
need_key hcsed.service DynamicUser=yes
# ProtectSystem=strict leaves only the unit's own directories writable: every
# path the example configs write to must be in one
writable() {
	local u=$1 p=$2 d
	for d in $(key StateDirectory "$U/$u" | sed 's|^|/var/lib/|') \
		$(key RuntimeDirectory "$U/$u" | sed 's|^|/run/|') \
		$(key LogsDirectory "$U/$u" | sed 's|^|/var/log/|'); do
		[[ $p == "$d"/* ]] && return 0
	done
	fail "$u: $p (from the example config) is read-only under ProtectSystem=strict"
}
for k in socket db master-key audit-log; do
	writable tefd.service "$(sed -n "s/^$k *= *//p" "$EX/tefd.conf")"
done
writable hcsed.service "$(sed -n 's/^db *= *//p' "$EX/hcsed.conf")"
# the mount: after tefd (required) and hcsed, as a network mount, readable by all uids
need_key mnt-secure.mount Requires=tefd.service
key After "$U/mnt-secure.mount" | grep -qw hcsed.service || fail "mnt-secure.mount is not ordered after hcsed"
for o in _netdev allow_other; do
	key Options "$U/mnt-secure.mount" | tr , '\n' | grep -qx $o || fail "mnt-secure.mount lacks option $o"
done
tef_sock=$(sed -n 's/^socket *= *//p' "$EX/tefd.conf")
key Options "$U/mnt-secure.mount" | tr , '\n' | grep -qx "tef=$tef_sock" ||
	fail "mnt-secure.mount's tef= is not tefd.conf's socket $tef_sock"
hcse_listen=$(sed -n 's/^listen *= *//p' "$EX/hcsed.conf")
[ "$(key What "$U/mnt-secure.mount")" = "http://$hcse_listen/cse-in" ] ||
	fail "mnt-secure.mount's What= is not hcsed.conf's listen address"
ok "tefd and hcsed units: Type=notify, ProtectSystem=strict, NoNewPrivileges, PrivateTmp, state/runtime dirs; configs write only there; the mount needs tefd"

# ---- 4. each daemon run as its unit runs it ----
# PID 1 here may not be systemd (then no unit can be started for real): run the
# unit's ExecStart (the installed program, the example config with its paths
# moved under $T) as systemd would: its directories made, UMask=0077,
# NoNewPrivileges, an empty capability bounding set, a DynamicUser uid for
# hcsed, a notification socket; then its ExecReload command, then SIGTERM.
echo "# PID 1 is $(ps -p 1 -o comm=): units run under an emulated service manager, not systemd"
mkdir -p "$T/etc"
# a free port below the ephemeral range (32768-: outgoing connections take those)
for ((i = 0; i < 20; i++)); do
	port=$((20000 + RANDOM % 12000))
	[ -z "$(ss -Htan "sport = :$port")" ] && break
done
relocate() { sed -e "s|/run/|$T/run/|; s|/var/|$T/var/|; s|127.0.0.1:8080|127.0.0.1:$port|" "$@"; }
relocate "$EX/tefd.conf" >"$T/etc/tefd.conf"
relocate "$EX/hcsed.conf" >"$T/etc/hcsed.conf"
DYN_UID=61977
# unit-dirs UNIT UID: the unit's State/Runtime/LogsDirectory under $T, owned by UID
unit_dirs() {
	local u=$1 uid=$2 kind base mode d
	for kind in State:var/lib Runtime:run Logs:var/log; do
		base=$T/${kind#*:}
		mode=$(key "${kind%%:*}DirectoryMode" "$U/$u.service")
		for d in $(key "${kind%%:*}Directory" "$U/$u.service"); do
			mkdir -p "$base/$d"
			chown "$uid:$uid" "$base/$d"
			chmod "${mode:-0755}" "$base/$d"
		done
	done
}
# svc_start UNIT [SETPRIV-ARGS]: sets SVC_PID; waits for READY=1 on its notify socket
svc_start() {
	local u=$1 cmd i
	shift
	cmd=$(key ExecStart "$U/$u.service" | sed "s| -c /etc/atrest/$u.conf | -c $T/etc/$u.conf |")
	$PY -c 'import os, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
os.chmod(sys.argv[1], 0o666)
while True:
    print(s.recv(4096).decode(), flush=True)' "$T/$u.notify.sock" >"$T/$u.notify" &
	at_exit "kill $!"
	wait_for_path "$T/$u.notify.sock" || fail "notify helper for $u did not start"
	(umask 0077 && NOTIFY_SOCKET=$T/$u.notify.sock exec setpriv --no-new-privs \
		--bounding-set=-all --inh-caps=-all "$@" -- $cmd) 2>>"$T/$u.log" &
	SVC_PID=$!
	at_exit "kill $SVC_PID"
	for ((i = 0; i < 100; i++)); do
		grep -qx READY=1 "$T/$u.notify" && return 0
		kill -0 $SVC_PID 2>/dev/null || fail "$u (as its unit runs it) exited before READY=1"
		sleep 0.1
	done
	fail "$u sent no READY=1 within 10 s"
}
# svc_reload UNIT PID: runs the unit's ExecReload= command for PID
svc_reload() {
	local cmd
	cmd=$(key ExecReload "$U/$1.service")
	${cmd//\$MAINPID/$2} || fail "$1's ExecReload failed"
	sleep 0.5
	kill -0 "$2" 2>/dev/null || fail "$1 died on its ExecReload"
}
# svc_stop UNIT PID: SIGTERM (KillSignal=); it must send STOPPING=1 and exit 0
svc_stop() {
	local i rc=0
	kill -TERM "$2"
	for ((i = 0; i < 100; i++)); do kill -0 "$2" 2>/dev/null || break; sleep 0.1; done
	kill -0 "$2" 2>/dev/null && fail "$1 did not stop within 10 s of SIGTERM"
	wait "$2" || rc=$?
	[ $rc = 0 ] || fail "$1 exited with $rc on SIGTERM (systemd would call that a failure)"
	grep -qx STOPPING=1 "$T/$1.notify" || fail "$1 sent no STOPPING=1"
}

unit_dirs tefd 0
tef_sock=$T$tef_sock
tef_dir=$T/var/lib/$(key StateDirectory "$U/tefd.service")
"$P/$sbindir/tefd" --init --master-key "$tef_dir/master.key" >/dev/null
svc_start tefd
TEFD=$SVC_PID
"$P/$sbindir/tefctl" --socket "$tef_sock" list >/dev/null || fail "tefd (as its unit runs it) does not serve tefctl"
[ "$(stat -c %a "$tef_dir/tef.db")" = 600 ] || fail "tefd's database is not 0600 under UMask=0077"
audit=$(sed -n 's/^audit-log *= *//p' "$T/etc/tefd.conf")
[ -f "$audit" ] || fail "tefd wrote no audit log in its LogsDirectory"
mv "$audit" "$audit.1"
svc_reload tefd $TEFD
[ -f "$audit" ] || fail "tefd's ExecReload did not reopen the audit log (logrotate would lose it)"
"$P/$sbindir/tefctl" --socket "$tef_sock" list >/dev/null || fail "tefd does not serve after its ExecReload"
ok "tefd.service: READY=1 without capabilities, files 0600, ExecReload reopens the audit log"

unit_dirs hcsed $DYN_UID
svc_start hcsed --reuid=$DYN_UID --regid=$DYN_UID --clear-groups
HCSED=$SVC_PID
hcse() {
	curl -sf -H 'X-M2M-Origin: CAdmin' -H 'X-M2M-RI: t' -H 'X-M2M-RVI: 3' "http://127.0.0.1:$port/cse-in"
}
hcse | grep -q '"csi":"/id-in"' || fail "hcsed (as its unit runs it) does not answer"
hcse_db=$(sed -n 's/^db *= *//p' "$T/etc/hcsed.conf")
[ "$(stat -c '%a %u' "$hcse_db")" = "600 $DYN_UID" ] ||
	fail "hcsed's database is $(stat -c '%a %u' "$hcse_db"), not 0600 of its DynamicUser"
svc_reload hcsed $HCSED
hcse | grep -q '"csi":"/id-in"' || fail "hcsed does not answer after its ExecReload"
ok "hcsed.service: READY=1 as an unprivileged DynamicUser, its database 0600, alive and serving after ExecReload"

# ---- 5. the fstab line and the mount unit mount atrestfs through mount(8) ----
# mount(8) drops PATH, so mount.fuse3's /bin/sh finds "atrestfs" (of
# Type=fuse.atrestfs) on the default PATH, in $prefix/$bindir. In a private mount
# namespace the installed programs are overlaid on $prefix/$bindir, as on a
# gateway (hiding nothing there); the mounts, reads and unmounts run there.
mnt=$T/mnt/secure
mkdir -p "$mnt" "$T/var/cache"
relocate "$EX/atrestfs.fstab" | sed "s|/mnt/secure|$mnt|" >"$T/fstab"
M=$U/mnt-secure.mount
cat >"$T/ns.sh" <<NS
set -euo pipefail
trap 'umount -l $mnt 2>/dev/null || true' EXIT
mount -t overlay overlay -o "lowerdir=$P/$bindir:$prefix/$bindir" "$prefix/$bindir"
[ "\$(command -v atrestfs)" = "$prefix/$bindir/atrestfs" ]
as_demo() { setpriv --reuid=4343 --regid=4343 --clear-groups -- "\$@"; }
echo "# mount -T fstab"
mount -T "$T/fstab" "$mnt"
mountpoint -q "$mnt"
mkdir "$mnt/u4343"
chown 4343:4343 "$mnt/u4343"
as_demo sh -c "echo 'mounted from fstab' >$mnt/u4343/f"
[ "\$(as_demo cat $mnt/u4343/f)" = "mounted from fstab" ]
getfattr --only-values -n user.onem2m.credential-id "$mnt/u4343/f" | grep -q '^[0-9a-f]\{32\}@'
umount "$mnt"
! mountpoint -q "$mnt"
echo "# mount as mnt-secure.mount does"
mount -t "$(key Type "$M")" -o "$(key Options "$M" | relocate)" "$(key What "$M" | relocate)" "$mnt"
[ "\$(as_demo cat $mnt/u4343/f)" = "mounted from fstab" ]
umount "$mnt"
echo "# done"
NS
unshare --mount --propagation private bash -x "$T/ns.sh" >"$T/ns.log" 2>&1 ||
	fail "mounting through mount(8) failed: $(tail -12 "$T/ns.log")"
grep -qx '# done' "$T/ns.log" || fail "the mount namespace script did not finish: $(tail -5 "$T/ns.log")"
ok "atrestfs.fstab and mnt-secure.mount mount the installed atrestfs through mount(8); a file written through one reads back through the other"

svc_stop hcsed $HCSED
svc_stop tefd $TEFD
ok "tefd and hcsed stop on SIGTERM with STOPPING=1 and exit status 0"
check_sanitizer_logs "$T"/*.log
