#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# HCSE conformance: every fixture in tests/data/hcse against a real hcsed on 127.0.0.1.
. "$ATREST_SRC/tests/integration/lib.sh"

[ -x /usr/bin/python3 ] || skip "/usr/bin/python3 is not installed"
/usr/bin/python3 "$ATREST_SRC/tests/integration/hcse_runner.py" "$ATREST_SRC/tests/data/hcse" ||
	fail "conformance cases failed"
ok "hcse conformance"
