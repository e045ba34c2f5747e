#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The whole test suite: installs what is missing (Debian 12, as root), builds,
# runs `meson test`, then the same suite under ASan+UBSan in a second build,
# and compiles a release build (-O3) where new warnings would be fatal.
# Usage: tests/run.sh [--quick]   (--quick: skip the sanitizer pass and the release compile)
set -uo pipefail

cd "$(dirname "$0")/.."
src=$(pwd)
quick=0
[ "${1:-}" = "--quick" ] && quick=1

packages=(
	meson ninja-build pkg-config gcc clang libclang-rt-14-dev
	libfuse3-dev fuse3 libsodium-dev libcurl4-openssl-dev libsqlite3-dev sqlite3
	libcmocka-dev libmicrohttpd-dev libjansson-dev libgnutls28-dev
	python3 python3-jwcrypto attr util-linux procps psmisc curl openssl gnutls-bin
	jq
	bc gocryptfs
	iproute2
	nftables man-db systemd
	strace
)
"$src/tests/install-deps.sh" "${packages[@]}" || exit 1
# examples/node (tests/integration/node_reader.sh): node and npm. NodeSource's
# nodejs ships npm itself; Debian's nodejs needs its npm package.
command -v npm >/dev/null || "$src/tests/install-deps.sh" nodejs npm || exit 1
# ... and its one dependency, jose, pinned by package-lock.json, from the npm
# registry. Unreachable registry: node_reader fails (it never skips for that).
(cd "$src/examples/node" && npm ci --no-audit --no-fund --loglevel=error) ||
	echo "run.sh: 'npm ci' in examples/node failed (npm registry unreachable?): node_reader will fail" >&2

summary=()
total_pass=0
total_fail=0
total_skip=0
rc=0

# run_suite DIR [meson setup options...]: configures, builds and tests one build dir.
run_suite() {
	local dir=$1
	shift
	if [ -d "$dir" ] && [ -f "$dir/build.ninja" ]; then
		meson setup --reconfigure "$dir" "$@" >/dev/null || return 1
	else
		rm -rf "$dir"
		meson setup "$dir" "$@" || return 1
	fi
	meson compile -C "$dir" || return 1
	meson test -C "$dir" --print-errorlogs --num-processes "$(nproc)" \
		--timeout-multiplier "${TIMEOUT_MULTIPLIER:-1}"
}

# count_results DIR LABEL: adds the testlog's results to the totals.
count_results() {
	local log=$1/meson-logs/testlog.json line
	[ -f "$log" ] || return 0
	line=$(/usr/bin/python3 - "$log" <<'PY'
import json, sys
p = f = s = 0
for raw in open(sys.argv[1]):
    r = json.loads(raw)["result"]
    if r in ("OK", "EXPECTEDFAIL"):
        p += 1
    elif r == "SKIP":
        s += 1
    else:
        f += 1
print(p, f, s)
PY
)
	set -- $line
	total_pass=$((total_pass + $1))
	total_fail=$((total_fail + $2))
	total_skip=$((total_skip + $3))
	summary+=("$LABEL: $1 passed, $2 failed, $3 skipped")
}

LABEL=build
run_suite "$src/build" || rc=1
count_results "$src/build"

if [ $quick = 0 ]; then
	LABEL=asan
	TIMEOUT_MULTIPLIER=4 run_suite "$src/build-asan" \
		-Db_sanitize=address,undefined -Db_lundef=false -Dbench=false ||
		rc=1
	count_results "$src/build-asan"
fi

if [ $quick = 0 ]; then
	# packagers build -Dbuildtype=release: -O3 warns where -O2 does not
	# (maybe-uninitialized, format-truncation), and -Werror makes that fatal
	if [ -f "$src/build-release/build.ninja" ] ||
		meson setup "$src/build-release" -Dbuildtype=release >/dev/null; then
		if meson compile -C "$src/build-release" >"$src/build-release/compile.log" 2>&1; then
			summary+=("release: compiled without warnings")
		else
			grep -E 'error|warning' "$src/build-release/compile.log" >&2
			summary+=("release: FAILED to compile (build-release/compile.log)")
			rc=1
		fi
	else
		summary+=("release: FAILED to configure")
		rc=1
	fi
fi

echo
for l in "${summary[@]}"; do echo "$l"; done
[ $total_fail -gt 0 ] && rc=1
[ $total_pass -eq 0 ] && rc=1
echo "total: $total_pass passed, $total_fail failed, $total_skip skipped"
exit $rc
