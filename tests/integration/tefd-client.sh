#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# lib/tef_client.c against the real tefd on its Unix socket, acting as a delegate.
. "$ATREST_SRC/tests/integration/lib.sh"
need_root
. "$ATREST_SRC/tests/integration/tefd.sh"

make_master_key
start_tefd --delegate 0
"$ATREST_BUILD/tests/integration/tef_client_check" unix "$SOCK" ||
	fail "tef_client checks failed"
ok "tef_client: register, retrieve, update, list, deregister, errno mapping, threads"
stop_tefd
