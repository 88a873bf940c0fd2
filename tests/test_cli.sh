#!/bin/bash
# test_cli.sh: the `strata` command line: --help of every subcommand, bad
# arguments (exit 2 or 1 with one line, no crash), mkmodel + info for every
# type, run on generated models (text, stats, seeds), run and perplexity on
# the real stories260K model.  TAP on stdout.
set -u

STRATA="${ST_BUILD_DIR:?ST_BUILD_DIR not set}/tools/strata"
MODELS="${ST_MODELS_DIR:-}"
if [ ! -x "$STRATA" ]; then
	echo "Bail out! $STRATA is not built"
	exit 1
fi
TMP=$(mktemp -d "${TMPDIR:-/tmp}/st_cli_XXXXXX")
trap 'rm -rf "$TMP"' EXIT

. "$(dirname "$0")/tap.sh"
skip() {
	n=$((n + 1))
	echo "ok $n # SKIP $1"
}
diag() { echo "# $*"; }

# run CMD...: sets $rc, $out (stdout), $err (stderr)
run() {
	"$@" >"$TMP/out" 2>"$TMP/err"
	rc=$?
	out=$(cat "$TMP/out")
	err=$(cat "$TMP/err")
}

# A crash is a signal exit (>= 128) or a sanitizer report.
no_crash() {
	[ "$rc" -lt 128 ] && ! grep -q -E "AddressSanitizer|runtime error:|LeakSanitizer" "$TMP/err"
}

# ---- help --------------------------------------------------------------
run "$STRATA" --help
[ $rc -eq 0 ] && echo "$out" | grep -q "run" && echo "$out" | grep -q "perplexity" && echo "$out" | grep -q "mkmodel" && echo "$out" | grep -q "info"
ok $? "strata --help lists run, info, mkmodel, perplexity"

check_help() {  # cmd options...
	local cmd=$1
	shift
	run "$STRATA" "$cmd" --help
	local good=$(( rc == 0 ? 0 : 1 ))
	for o in "$@"; do
		if ! grep -q -- "$o" "$TMP/out"; then
			diag "strata $cmd --help does not mention $o"
			good=1
		fi
	done
	ok $good "strata $cmd --help exits 0 and mentions $*"
}
check_help run -m -p -n --temp --top-k --top-p --min-p --repeat-penalty --repeat-last-n --seed -t --ctx --kv-type --stages --verbose
check_help info -m --tensors
check_help mkmodel --shape --type --seed --layers --dim --ff --heads --kv-heads --vocab --ctx tiny stories260k tinyllama-1.1b llama2-7b llama3-8b custom q4_0 q4_1 q5_0 q5_1 q8_0 bf16 f16
check_help perplexity -m -f --ctx --chunks --json "2..N"

# ---- bad arguments ------------------------------------------------------
# expect_fail CODE DESCRIPTION CMD...: exit CODE, one line on stderr, no crash
expect_fail() {
	local code=$1 desc=$2
	shift 2
	run "$@"
	local lines
	lines=$(wc -l <"$TMP/err")
	if [ "$rc" -eq "$code" ] && [ "$lines" -eq 1 ] && no_crash; then
		ok 0 "$desc: exit $code, '$err'"
	else
		ok 1 "$desc: got exit $rc with $lines stderr lines (want $code, 1): $err"
	fi
}

# a tiny model first (several failures need a real file)
run "$STRATA" mkmodel "$TMP/tiny.gguf" --shape tiny --type f32 --seed 1
ok $rc "mkmodel tiny f32 for the argument tests"
head -c 1000 "$TMP/tiny.gguf" >"$TMP/broken.gguf"
printf 'GGUF\003\000\000\000garbage' >"$TMP/garbage.gguf"

expect_fail 2 "unknown command" "$STRATA" frobnicate
for c in run info perplexity mkmodel; do
	expect_fail 2 "$c: unknown flag" "$STRATA" $c --bogus
done
expect_fail 2 "run: missing value for -m" "$STRATA" run -m
expect_fail 2 "run: -n abc" "$STRATA" run -m "$TMP/tiny.gguf" -n abc
expect_fail 2 "run: --temp -1" "$STRATA" run -m "$TMP/tiny.gguf" --temp -1
expect_fail 2 "run: --top-p 1.5" "$STRATA" run -m "$TMP/tiny.gguf" --top-p 1.5
expect_fail 2 "run: --kv-type q4" "$STRATA" run -m "$TMP/tiny.gguf" --kv-type q4
expect_fail 2 "run: missing -m" "$STRATA" run -p hello
expect_fail 1 "run: nonexistent model" "$STRATA" run -m "$TMP/nope.gguf" -p hi
expect_fail 1 "run: truncated GGUF" "$STRATA" run -m "$TMP/broken.gguf" -p hi
expect_fail 1 "run: garbage GGUF" "$STRATA" run -m "$TMP/garbage.gguf" -p hi
expect_fail 1 "run: bad --stages" "$STRATA" run -m "$TMP/tiny.gguf" --stages "cpu:0-99" -n 1
expect_fail 2 "info: missing -m" "$STRATA" info
expect_fail 1 "info: nonexistent model" "$STRATA" info -m "$TMP/nope.gguf"
expect_fail 1 "info: truncated GGUF" "$STRATA" info -m "$TMP/broken.gguf"
expect_fail 2 "perplexity: missing -f" "$STRATA" perplexity -m "$TMP/tiny.gguf"
expect_fail 2 "perplexity: --ctx 1" "$STRATA" perplexity -m "$TMP/tiny.gguf" -f /dev/null --ctx 1
expect_fail 1 "perplexity: nonexistent text" "$STRATA" perplexity -m "$TMP/tiny.gguf" -f "$TMP/nope.txt"
expect_fail 1 "perplexity: text shorter than a chunk" "$STRATA" perplexity -m "$TMP/tiny.gguf" -f /dev/null
expect_fail 2 "mkmodel: missing output" "$STRATA" mkmodel --shape tiny
expect_fail 2 "mkmodel: unknown shape" "$STRATA" mkmodel "$TMP/x.gguf" --shape huge
expect_fail 2 "mkmodel: unknown type" "$STRATA" mkmodel "$TMP/x.gguf" --type q2_k
expect_fail 2 "mkmodel: heads not dividing dim" "$STRATA" mkmodel "$TMP/x.gguf" --shape custom --dim 64 --heads 5
expect_fail 1 "mkmodel: unwritable path" "$STRATA" mkmodel /nonexistent-dir/x.gguf

# ---- mkmodel + info for every type ------------------------------------------
for ty in f32 f16 bf16 q8_0 q4_0 q4_1 q5_0 q5_1; do
	run "$STRATA" mkmodel "$TMP/tiny_$ty.gguf" --shape tiny --type "$ty" --seed 3
	ok $rc "mkmodel tiny $ty"
	run "$STRATA" info -m "$TMP/tiny_$ty.gguf" --tensors
	good=1
	if [ $rc -eq 0 ] && echo "$out" | grep -q "GGUF v3" && echo "$out" | grep -q "layers *2" &&
		echo "$out" | grep -q "blk.1.ffn_down.weight *$ty" && echo "$out" | grep -q "output_norm.weight *f32" &&
		echo "$out" | grep -q "vocab size *512" && echo "$out" | grep -q "add_bos *true" &&
		echo "$out" | grep -q "^strata: loads"; then
		good=0
	fi
	ok $good "info on tiny $ty: version, layers, tensor types, tokenizer, loads"
done
# An independent GGUF reader (Python struct, written from the GGUF spec)
# must accept the generated files: header, every key, tensor table, aligned
# offsets, sizes that match the types, data inside the file.
PYCHECK='
import struct, sys
BS = {0: (1, 4), 1: (1, 2), 2: (32, 18), 3: (32, 20), 6: (32, 22), 7: (32, 24), 8: (32, 34), 30: (1, 2)}
f = open(sys.argv[1], "rb").read()
o = 0
def rd(fmt):
    global o
    v = struct.unpack_from("<" + fmt, f, o); o += struct.calcsize("<" + fmt); return v[0]
def rs():
    global o
    n = rd("Q"); s = f[o:o + n]; o += n; return s.decode("utf-8")
SC = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}
def val(t):
    if t == 8: return rs()
    if t == 9:
        et = rd("I"); n = rd("Q"); return [val(et) for _ in range(n)]
    return rd(SC[t])
assert f[:4] == b"GGUF", "magic"
o = 4
ver = rd("I"); nt = rd("Q"); nkv = rd("Q")
assert ver == 3
kv = {}
for _ in range(nkv):
    k = rs(); kv[k] = val(rd("I"))
assert kv["general.architecture"] == "llama"
nv = len(kv["tokenizer.ggml.tokens"])
assert nv == len(kv["tokenizer.ggml.scores"]) == len(kv["tokenizer.ggml.token_type"])
assert kv["tokenizer.ggml.tokens"][1] == "<s>" and kv["tokenizer.ggml.tokens"][2] == "</s>"
ts = []
for _ in range(nt):
    name = rs(); nd = rd("I"); ne = [rd("Q") for _ in range(nd)]; ty = rd("I"); off = rd("Q")
    ts.append((name, ne, ty, off))
al = kv.get("general.alignment", 32)
data = (o + al - 1) // al * al
end = 0
for name, ne, ty, off in ts:
    bs, sz = BS[ty]
    n = 1
    for e in ne: n *= e
    assert ne[0] % bs == 0, name
    nb = n // bs * sz
    assert off % al == 0 and data + off + nb <= len(f), name
    end = max(end, data + off + nb)
names = {t[0] for t in ts}
need = ["token_embd.weight", "output_norm.weight", "output.weight"] + ["blk.%d.%s.weight" % (l, x)
        for l in range(kv["llama.block_count"]) for x in ("attn_norm", "attn_q", "attn_k", "attn_v",
        "attn_output", "ffn_norm", "ffn_gate", "ffn_down", "ffn_up")]
assert names == set(need), "tensor names"
assert dict((t[0], t[1]) for t in ts)["token_embd.weight"] == [kv["llama.embedding_length"], nv]
print("%d keys, %d tensors, data %d..%d of %d bytes" % (nkv, nt, data, end, len(f)))
'
if command -v python3 >/dev/null; then
	for ty in f32 f16 bf16 q8_0 q4_0 q4_1 q5_0 q5_1; do
		res=$(python3 -c "$PYCHECK" "$TMP/tiny_$ty.gguf" 2>&1)
		ok $? "an independent Python GGUF reader accepts tiny $ty: $(echo "$res" | tail -1)"
	done
else
	for ty in f32 f16 bf16 q8_0 q4_0 q4_1 q5_0 q5_1; do skip "no python3"; done
fi

run "$STRATA" mkmodel "$TMP/s260.gguf" --shape stories260k --type q4_0
run "$STRATA" info -m "$TMP/s260.gguf" --tensors
echo "$out" | grep -q "blk.0.ffn_down.weight *f32" && echo "$out" | grep -q "blk.0.ffn_up.weight *q4_0"
ok $? "stories260k q4_0: ffn_down (rows of 172) falls back to f32, ffn_up is q4_0"

run "$STRATA" run -m "$TMP/s260.gguf" -p "Once" -n 8 -t 1
ok $(( rc != 0 )) "run on stories260k q4_0 (q4_0 matrices with f32 ffn_down)"

# Streaming: a model whose embedding alone is 125 MiB as floats is written
# in a few MiB of memory (GNU time measures the peak RSS).
if [ -x /usr/bin/time ]; then
	/usr/bin/time -f "%M" -o "$TMP/rss" "$STRATA" mkmodel "$TMP/wide.gguf" --shape custom --layers 1 \
		--dim 1024 --ff 2816 --heads 16 --kv-heads 4 --vocab 32000 --type q8_0 2>/dev/null
	rc=$?
	rss=$(tail -1 "$TMP/rss")
	size=$(stat -c %s "$TMP/wide.gguf" 2>/dev/null || echo 0)
	diag "mkmodel wide q8_0: file $size bytes, peak RSS $rss KiB"
	[ $rc -eq 0 ] && [ "$size" -gt 70000000 ] && [ "$rss" -lt 49152 ]
	ok $? "mkmodel streams: a $((size / 1048576)) MiB file with a peak RSS of $((rss / 1024)) MiB (< 48)"
	rm -f "$TMP/wide.gguf"
else
	skip "no /usr/bin/time to measure the peak RSS"
fi

# ---- run on generated models -------------------------------------------
run "$STRATA" run -m "$TMP/tiny_f32.gguf" -p "Once upon a time" -n 24 --seed 5 -t 1
ok $(( rc != 0 )) "run on tiny: exit 0"
gen="$out"
[ ${#out} -gt 16 ] && [[ "$out" == "Once upon a time"* ]]
ok $? "run echoes the prompt and produces text (${#out} bytes)"
echo "$err" | grep -q "prompt .* tokens/s" && echo "$err" | grep -q "generated .* tokens/s" && echo "$err" | grep -q "load"
ok $? "run prints prompt, generation and load statistics to stderr"
diag "$(echo "$err" | tr '\n' ';')"
run "$STRATA" run -m "$TMP/tiny_f32.gguf" -p "Once upon a time" -n 24 --seed 5 -t 1
[ "$out" == "$gen" ]
ok $? "same seed, same text"
run "$STRATA" run -m "$TMP/tiny_f32.gguf" -p "Once upon a time" -n 24 --seed 6 -t 1
[ "$out" != "$gen" ]
ok $? "different seed, different text"
run "$STRATA" run -m "$TMP/tiny_q4_0.gguf" -p "" -n 8 --temp 0 -t 1
ok $(( rc != 0 )) "run with an empty prompt (BOS alone), greedy, q4_0"
run "$STRATA" run -m "$TMP/tiny_f16.gguf" -p "hello" -n 4 --kv-type f16 --ctx 32 --repeat-penalty 1.3 --top-k 5 --top-p 0.9 --min-p 0.1 -t 1
ok $(( rc != 0 )) "run with every sampling option and an f16 KV cache"

# perplexity on a generated model: text and --json agree, JSON is valid
for i in $(seq 40); do echo "The cat sat on the mat and looked at the little dog."; done >"$TMP/text.txt"
run "$STRATA" perplexity -m "$TMP/tiny_f32.gguf" -f "$TMP/text.txt" --ctx 64 --chunks 2 -t 1
txt_nll=$(echo "$out" | sed -n 's/^mean NLL //p')
run "$STRATA" perplexity -m "$TMP/tiny_f32.gguf" -f "$TMP/text.txt" --ctx 64 --chunks 2 -t 1 --json
if command -v python3 >/dev/null; then
	echo "$out" | python3 -c '
import json, math, sys
j = json.load(sys.stdin)
assert j["scored_tokens"] == 2 * 63 and j["chunks"] == 2 and j["ctx"] == 64
assert abs(j["mean_nll"] - float(sys.argv[1])) < 1e-5
assert abs(math.exp(j["mean_nll"]) - j["perplexity"]) < 1e-9 * j["perplexity"]
' "$txt_nll"
	ok $? "perplexity --json is one valid JSON object matching the text output (mean NLL $txt_nll)"
else
	skip "no python3 to parse the JSON"
fi

run "$STRATA" perplexity -m "$TMP/tiny_f32.gguf" -f "$TMP/text.txt" --ctx 64 --chunks 2 -t 1 --stages cpu:0-0,cpu:1-1 --kv-type f16
split_nll=$(echo "$out" | sed -n 's/^mean NLL //p')
awk -v a="$txt_nll" -v b="$split_nll" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(a != "" && b != "" && d < 1e-3) }'
ok $? "perplexity over two stages with an f16 KV cache agrees ($split_nll vs $txt_nll)"
run "$STRATA" run -m "$TMP/tiny_f32.gguf" -p "Once upon a time" -n 16 --temp 0 -t 1
one="$out"
run "$STRATA" run -m "$TMP/tiny_f32.gguf" -p "Once upon a time" -n 16 --temp 0 -t 1 --stages cpu:0-0,cpu:1-1
[ -n "$one" ] && [ "$out" == "$one" ]
ok $? "greedy text is the same on one stage and on two"

# ---- the real model ---------------------------------------------------------
S260="$MODELS/stories260K/stories260K.gguf"
TXT="$MODELS/tinystories/tinystories_val.head200k.txt"
if [ -n "$MODELS" ] && [ -f "$S260" ]; then
	run "$STRATA" run -m "$S260" -p "Once upon a time" -n 64 --temp 0 -t 1
	diag "stories260K greedy: $(echo "$out" | tr '\n' ' ')"
	words=0
	for w in the a was and she he to little day; do
		echo "$out" | tr 'A-Z' 'a-z' | grep -q -w "$w" && words=$((words + 1))
	done
	[ $rc -eq 0 ] && [ $words -ge 4 ]
	ok $? "stories260K --temp 0 tells a story ($words of 9 common words)"
	if [ -f "$TXT" ]; then
		run "$STRATA" perplexity -m "$S260" -f "$TXT" --ctx 512 --chunks 1 -t 1
		diag "stories260K perplexity, first 512 tokens: $(echo "$out" | tr '\n' ';')"
		ppl=$(echo "$out" | sed -n 's/^perplexity //p')
		scored=$(echo "$out" | sed -n 's/^scored tokens \([0-9]*\).*/\1/p')
		awk -v p="$ppl" 'BEGIN { exit !(p == p + 0 && p > 1 && p < 50) }'
		ok $? "perplexity is finite and sane (1 < $ppl < 50, vocab 512)"
		[ "$scored" = "511" ]
		ok $? "511 tokens scored (2..512 of one chunk)"
	else
		skip "no $TXT"
		skip "no $TXT"
	fi
else
	skip "shared models dir absent: no stories260K run"
	skip "shared models dir absent: no perplexity"
	skip "shared models dir absent: no perplexity"
fi

tap_done
