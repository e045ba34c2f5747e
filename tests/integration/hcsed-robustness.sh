#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# hcsed robustness: 10/60 MiB contents, --max-body, broken/slow clients,
# 1,000 connections, a crash under load, notifications, TLS (loopback only).
. "$ATREST_SRC/tests/integration/lib.sh"

[ -x /usr/bin/python3 ] || skip "/usr/bin/python3 is not installed"
command -v openssl >/dev/null || skip "openssl is not installed"
/usr/bin/python3 "$ATREST_SRC/tests/integration/hcse_robust.py" || fail "robustness checks failed"
ok "hcsed robustness"
