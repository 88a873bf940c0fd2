#!/bin/bash
# legacy_bench.sh: CPU speed of the Q4_1, Q5_0 and Q5_1 weight types for
# BENCHMARKS.md (issue 3): TinyLlama-1.1B-shaped files from `strata mkmodel`,
# beside the Q4_0 file of the same shape, measured with `strata bench` (tg64
# and pp128, 2 threads, -r 3) in interleaved rounds (Q4_0 -> Q4_1 -> Q5_0 ->
# Q5_1, ROUNDS times) so load changes hit every type alike.  JSON lines are
# appended to OUT.
#   bench/legacy_bench.sh [BUILD_DIR] [MODELS_DIR] [OUT.jsonl]
# Files: MODELS_DIR/${PREFIX}TYPE.gguf (PREFIX default tinyllama-1.1b-),
# generated once if missing; the Q4_0 file is REF (default
# MODELS_DIR/tinyllama-1.1b-q4_0.gguf).  Compare with llama.cpp on the same
# files: llama-bench -m FILE -p 128 -n 64 -t 2 -r 5
set -eu
build=${1:-build}
models=${2:-/work/bench-models}
out=${3:-bench-legacy.jsonl}
prefix=${PREFIX:-tinyllama-1.1b-}
ref=${REF:-$models/tinyllama-1.1b-q4_0.gguf}
strata=$build/tools/strata
mkdir -p "$models"
[ -s "$ref" ] || "$strata" mkmodel "$ref" --shape tinyllama-1.1b --type q4_0
for t in q4_1 q5_0 q5_1; do
	f=$models/$prefix$t.gguf
	[ -s "$f" ] || "$strata" mkmodel "$f" --shape tinyllama-1.1b --type $t
done
for round in $(seq "${ROUNDS:-3}"); do
	for f in "$ref" "$models/${prefix}q4_1.gguf" "$models/${prefix}q5_0.gguf" "$models/${prefix}q5_1.gguf"; do
		echo "# round $round $(basename "$f") load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
		"$strata" bench -m "$f" -p 0 -n 64 -t 2 -r 3 --bw-mib 0 --json | tee -a "$out"
		"$strata" bench -m "$f" -p 128 -n 0 -t 2 -r 3 --bw-mib 0 --json | tee -a "$out"
	done
done
