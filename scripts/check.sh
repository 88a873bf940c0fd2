#!/usr/bin/env bash
# check.sh: the whole test suite. Installs what is missing, builds, runs
# every test, then runs the suite again under AddressSanitizer + UBSan, and
# ends with one line "N passed, N failed, N skipped" over both passes.
#   scripts/check.sh                      everything
#   ST_NO_SANITIZE=1 scripts/check.sh     skip the sanitizer pass
set -uo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh || { echo "0 passed, 1 failed"; exit 1; }

passed=0 failed=0 skipped=0 status=0
run_suite() {       # run_suite BUILD_DIR [meson test args...]
	local dir=$1 log
	shift
	log=$(mktemp)
	meson test -C "$dir" --print-errorlogs --num-processes 2 "$@" 2>&1 | tee "$log"
	local rc=${PIPESTATUS[0]}
	[ "$rc" -eq 0 ] || status=1
	local ok fail skip to xp
	ok=$(awk '/^Ok:/{print $2}' "$log"); fail=$(awk '/^Fail:/{print $2}' "$log")
	skip=$(awk '/^Skipped:/{print $2}' "$log"); to=$(awk '/^Timeout:/{print $2}' "$log")
	xp=$(awk '/^Unexpected Pass:/{print $3}' "$log")
	passed=$((passed + ${ok:-0})); skipped=$((skipped + ${skip:-0}))
	failed=$((failed + ${fail:-0} + ${to:-0} + ${xp:-0}))
	if [ "$rc" -ne 0 ] && [ -z "$ok$fail" ]; then failed=$((failed + 1)); fi
	rm -f "$log"
}

run_suite build
if [ -z "${ST_NO_SANITIZE:-}" ]; then
	echo
	echo "=== the same suite under AddressSanitizer + UBSan ==="
	if [ ! -f build-asan/build.ninja ]; then
		meson setup build-asan -Db_sanitize=address,undefined -Db_lundef=false \
			-Dbuildtype=debugoptimized >/dev/null || status=1
	fi
	if ninja -C build-asan >/dev/null; then
		run_suite build-asan --no-suite bench
	else
		echo "check: the sanitizer build failed"; failed=$((failed + 1)); status=1
	fi
fi
echo
echo "${passed} passed, ${failed} failed, ${skipped} skipped"
exit $status
