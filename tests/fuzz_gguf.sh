#!/bin/bash
# fuzz_gguf.sh: a bounded libFuzzer run over the GGUF reader and writer.
#
# Builds tests/fuzz_gguf.c with clang -fsanitize=fuzzer,address,undefined in a
# temporary directory, seeds the corpus with the valid and hostile files that
# tests/gguf_corpus.c generates, runs for ST_FUZZ_SECONDS (default 20) and
# prints TAP.  Skips when clang or libFuzzer (libclang-rt-14-dev) is missing.
# A crash leaves its input in ST_FUZZ_ARTIFACTS (default: the build dir).
set -u

src=${ST_SOURCE_DIR:-$(cd "$(dirname "$0")/.." && pwd)}
secs=${ST_FUZZ_SECONDS:-20}
cc=${FUZZ_CC:-clang}
artifacts=${ST_FUZZ_ARTIFACTS:-${ST_BUILD_DIR:-.}}

echo "1..2"
skip() {
	echo "ok 1 # SKIP $1"
	echo "ok 2 # SKIP $1"
	exit 0
}

command -v "$cc" >/dev/null 2>&1 || skip "$cc not found (apt-get install clang)"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/fuzz_gguf.XXXXXX") || skip "cannot create a temporary directory"
trap 'rm -rf "$tmp"' EXIT

printf 'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n) { (void)d; (void)n; return 0; }\n' >"$tmp/probe.c"
"$cc" -fsanitize=fuzzer,address,undefined "$tmp/probe.c" -o "$tmp/probe" >/dev/null 2>&1 ||
	skip "$cc cannot link libFuzzer (apt-get install libclang-rt-14-dev)"

flags=(-std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined
	-fno-sanitize-recover=undefined -I"$src/runtime")
[ -n "${ST_BUILD_DIR:-}" ] && flags+=(-I"$ST_BUILD_DIR")

# The reader and writer plus what they link against.  Other runtime files the
# type table (or util) come to depend on are found from the linker's
# undefined references, so this list does not go stale as runtime/ grows.
srcs=("$src/tests/fuzz_gguf.c" "$src/runtime/gguf_read.c" "$src/runtime/gguf_write.c"
	"$src/runtime/util.c" "$src/runtime/types.c")
objs=()
mkdir -p "$tmp/obj"
compile() {
	local o="$tmp/obj/$(basename "$1" .c).o"
	"$cc" "${flags[@]}" -c "$1" -o "$o" >>"$tmp/build.log" 2>&1 || return 1
	objs+=("$o")
}
built=1
for f in "${srcs[@]}"; do compile "$f" || built=0; done
for attempt in 1 2 3 4 5 6 7 8; do
	[ "$built" = 1 ] || break
	if "$cc" "${flags[@]}" "${objs[@]}" -lm -lpthread -o "$tmp/fuzz_gguf" >"$tmp/link.log" 2>&1; then
		built=2
		break
	fi
	added=0
	for sym in $(grep -o "undefined reference to \`[A-Za-z0-9_]*'" "$tmp/link.log" | sed "s/.*\`//; s/'//" | sort -u); do
		f=$(grep -lE "^[A-Za-z_].*[ *]$sym\(" "$src"/runtime/*.c 2>/dev/null | head -1)
		[ -n "$f" ] || continue
		case " ${srcs[*]} " in *" $f "*) continue ;; esac
		srcs+=("$f")
		compile "$f" || built=0
		added=1
	done
	[ "$added" = 1 ] || break
done
if [ "$built" != 2 ]; then
	echo "not ok 1 - build the libFuzzer target"
	cat "$tmp/build.log" "$tmp/link.log" 2>/dev/null | sed 's/^/# /' | tail -30
	echo "not ok 2 - fuzz run (not built)"
	exit 1
fi
echo "ok 1 - built fuzz_gguf with $cc -fsanitize=fuzzer,address,undefined from ${#srcs[@]} sources"

mkdir -p "$tmp/corpus"
if ! "$cc" -std=c11 -D_GNU_SOURCE -DGGUF_CORPUS_MAIN "$src/tests/gguf_corpus.c" -o "$tmp/gguf_corpus" >"$tmp/corpus.log" 2>&1 ||
	! "$tmp/gguf_corpus" "$tmp/corpus"; then
	echo "not ok 2 - generate the seed corpus"
	sed 's/^/# /' "$tmp/corpus.log" | tail -30
	exit 1
fi
nseeds=$(ls "$tmp/corpus" | wc -l)

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
"$tmp/fuzz_gguf" -max_total_time="$secs" -max_len=4096 -timeout=10 -rss_limit_mb=2048 \
	-print_final_stats=1 -artifact_prefix="$artifacts/fuzz_gguf-" "$tmp/corpus" >"$tmp/fuzz.log" 2>&1
rc=$?
runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$tmp/fuzz.log")
cov=$(grep -o 'cov: [0-9]*' "$tmp/fuzz.log" | tail -1)
if [ "$rc" -eq 0 ]; then
	echo "ok 2 - ${secs}s of fuzzing from $nseeds seeds: ${runs:-?} inputs, ${cov:-cov: ?}, no crash, leak, hang or sanitizer report"
else
	echo "not ok 2 - fuzzing found a problem (exit $rc); the input is saved as $artifacts/fuzz_gguf-*"
	grep -v '^#\|INFO:\|NEW \|REDUCE \|pulse ' "$tmp/fuzz.log" | sed 's/^/# /' | tail -60
	exit 1
fi
