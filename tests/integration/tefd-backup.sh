#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# tefctl backup and restore: a consistent copy with keys still wrapped, admins only,
# no overwriting without --force, restored onto a fresh tefd with the same keys.
. "$ATREST_SRC/tests/integration/lib.sh"
need_root
. "$ATREST_SRC/tests/integration/tefd.sh"
PY=/usr/bin/python3

make_master_key
start_tefd --admin 900
mkdir -m 0777 "$T/out"

k=$("$PY" -c 'import os,base64; print(base64.urlsafe_b64encode(os.urandom(32)).decode().rstrip("="))')
kept=$(register 1000:1000 "{\"suid\":34,\"keyValue\":\"$k\",\"labels\":[\"backup\"]}")
gone=$(register 1000:1000 '{"suid":35}')

as_user 1000 1000 "$TEFCTL" --socket "$SOCK" backup "$T/out/user.db" 2>/dev/null &&
	fail "a non-admin took a backup"
as_user 900 900 "$TEFCTL" --socket "$SOCK" backup "$T/out/tef.bak" >/dev/null ||
	fail "admin backup failed"
[ "$(stat -c %a "$T/out/tef.bak")" = 600 ] || fail "the backup is not mode 0600"
as_user 900 900 "$TEFCTL" --socket "$SOCK" backup "$T/out/tef.bak" 2>/dev/null &&
	fail "backup overwrote a file without --force"
grep -q "op=backup rsc=2000" "$T/tef.db-audit.log" || fail "backup not audited"
key_hex=$("$PY" -c "import base64; print(base64.urlsafe_b64decode('$k' + '=').hex())")
"$PY" - "$T/out/tef.bak" "$key_hex" <<'PYEOF' && fail "the backup holds a key in clear"
import base64, sys
data = open(sys.argv[1], "rb").read()
raw = bytes.fromhex(sys.argv[2])
sys.exit(0 if raw in data or base64.urlsafe_b64encode(raw).rstrip(b"=") in data else 1)
PYEOF
ok "admins take backups (0600, no overwrite, audited, keys wrapped)"

# Changes after the backup are undone by a restore.
treq 1000:1000 DELETE "/keys/$gone"
expect_answer 200 2002 "deleting after the backup"
stop_tefd
"$TEFCTL" restore "$T/out/tef.bak" --db "$T/tef.db" --master-key "$T/master.key" 2>/dev/null &&
	fail "restore replaced a database without --force"
"$TEFCTL" restore "$T/out/tef.bak" --db "$T/tef.db" --master-key "$T/master.key" --force >/dev/null ||
	fail "restore --force failed"
start_tefd --admin 900
treq 1000:1000 GET "/keys/$gone"
expect_answer 200 2000 "a registration deleted after the backup, restored"
treq 1000:1000 GET "/keys/$kept"
[ "$(jq -r .keyValue <<<"$BODY")" = "$k" ] || fail "restored key differs"
stop_tefd
ok "restore --force brings the backup back"

# Onto a fresh tefd (new database path, same master key), through its config file.
cat >"$T/fresh.conf" <<CONF
socket = $T/fresh.sock
db = $T/fresh.db
master-key = $T/master.key
CONF
"$TEFCTL" restore "$T/out/tef.bak" -c "$T/fresh.conf" >/dev/null || fail "restore onto a fresh path"
"$TEFD" -c "$T/fresh.conf" -d 2>>"$T/tefd.log" &
fresh=$!
at_exit "kill $fresh"
wait_for_path "$T/fresh.sock" || fail "fresh tefd did not start"
SOCK=$T/fresh.sock
for ((i = 0; i < 50; i++)); do treq 1000:1000 GET "/keys/$kept"; [ "$HTTP" = 200 ] && break; sleep 0.1; done
expect_answer 200 2000 "retrieval from the fresh tefd"
[ "$(jq -r .keyValue <<<"$BODY")" = "$k" ] || fail "key differs on the fresh tefd"
kill -TERM "$fresh"
wait "$fresh" || fail "fresh tefd did not stop cleanly"
ok "a backup restored onto a fresh tefd serves the same keys"

# A backup is useless without its master key.
make_master_key "$T/other.key"
"$TEFCTL" restore "$T/out/tef.bak" --db "$T/other.db" --master-key "$T/other.key" 2>"$T/refuse.log" &&
	fail "restore accepted a backup the master key does not unwrap"
grep -q "does not unwrap" "$T/refuse.log" || fail "no reason for refusing a foreign backup"
echo "not a database" >"$T/junk"
"$TEFCTL" restore "$T/junk" --db "$T/other.db" 2>/dev/null && fail "restore accepted junk"
ok "restore refuses foreign and junk backups"
check_sanitizer_logs "$T/tefd.log"
