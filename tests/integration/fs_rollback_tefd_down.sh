#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# A version uploaded while tefd is down must still be recorded at tefd, or the
# HCSE can roll that file back unseen by a fresh reader (DESIGN.md 4).
# Found by the e2e work: the uploader used to ignore a failed version record.
# With KILL_TEFD=0 it shows the same tampering detected with tefd up (EIO).
. "$ATREST_SRC/tests/integration/lib.sh"
need_root
need_fuse

A=2311
start_tefd
start_hcsed
M=$T/mnt
mount_atrestfs "$M" "$T/cache"
chmod 1777 "$M"

# the attacker's edits of hcsed's store: fs_tamper.sh's tamper.py, plus row save/insert
sed -n '/^cat >"\$T\/tamper.py"/,/^PY$/p' "$ATREST_SRC/tests/integration/fs_tamper.sh" |
	sed '1d;$d' >"$T/tamper.py"
tamper() { /usr/bin/python3 "$T/tamper.py" "$HCSE_DB" "$@"; }
row() {
	/usr/bin/python3 - "$HCSE_DB" "$@" <<'PY'
import json, sqlite3, sys
db = sqlite3.connect(sys.argv[1])
if sys.argv[2] == "save":
    cur = db.execute("SELECT * FROM res WHERE path=?", (sys.argv[3],))
    cols = [d[0] for d in cur.description]
    vals = [v.decode() if isinstance(v, bytes) else v for v in cur.fetchone()]
    json.dump([c for c in zip(cols, vals) if c[0] != "seq"], open(sys.argv[4], "w"))
else:
    cols = json.load(open(sys.argv[3]))
    db.execute("INSERT INTO res(%s) VALUES(%s)" % (",".join(c for c, _ in cols),
               ",".join("?" * len(cols))), [v for _, v in cols])
    db.commit()
PY
}

echo v1 >"$T/v1"
as_user $A $A cp "$T/v1" "$M/f"
wait_synced "$M/f"
R=$(getfattr --absolute-names --only-values -n user.onem2m.resource "$M/f")
R=${R#/}
tamper save "$R/m1" "$T/f.m1"
row save "$R/s0g1" "$T/s0g1.json"

# version 2 is committed while hcsed hangs, and uploaded while tefd is down
kill -STOP "$HCSED_PID"
as_user $A $A sh -c "echo v2 >> '$M/f'"
if [ "${KILL_TEFD:-1}" = 1 ]; then
	stop_daemon "$TEFD_PID"
	rm -f "$TEF_SOCK"
fi
kill -CONT "$HCSED_PID"
if [ "${KILL_TEFD:-1}" = 1 ]; then
	sleep 4 # uploader passes while tefd is down: the version cannot be recorded
	st=$(getfattr --absolute-names --only-values -n user.onem2m.state "$M/f")
	[ "$st" = pending ] || fail "version 2 counted as synced while tefd could not record it ($st)"
	ok "version 2 stays pending while tefd is down"
	start_tefd
fi
wait_synced "$M/f"
umount_atrestfs "$M"
ok "version 2 uploaded and recorded after the tefd outage"

# the HCSE rolls the file back to version 1 (labels, manifest, the old segment)
stop_daemon "$HCSED_PID"
tamper rollback "$R" "$T/f.m1"
row insert "$T/s0g1.json"
start_hcsed
mount_atrestfs "$M" "$T/fresh"
if out=$(as_user $A $A cat "$M/f" 2>&1); then
	fail "a fresh reader was served the rolled-back version: '$out'"
fi
[[ $out == *"Input/output error"* ]] || fail "expected EIO, got: $out"
ok "the rollback is detected through a fresh cache"
umount_atrestfs "$M"
