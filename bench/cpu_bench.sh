#!/bin/bash
# cpu_bench.sh: the single-device CPU comparison of BENCHMARKS.md (issue 3):
# TinyLlama-1.1B-shaped F16 / Q8_0 / Q4_0 files (and the Llama-2-7B shape in
# Q4_0) from `strata mkmodel`, measured with `strata bench` like llama-bench
# (pp512, pp128, tg64; 1 and 2 threads), JSON lines appended to OUT.
#   bench/cpu_bench.sh [BUILD_DIR] [MODELS_DIR] [OUT.jsonl]
# Models are generated once into MODELS_DIR (outside the repository).
# Compare with llama.cpp on the same files:
#   llama-bench -m FILE -p 512 -n 64 -t 2 -r 5
set -eu
build=${1:-build}
models=${2:-/work/bench-models}
out=${3:-bench-cpu.jsonl}
strata=$build/tools/strata
mkdir -p "$models"
for t in f16 q8_0 q4_0; do
	f=$models/tinyllama-1.1b-$t.gguf
	[ -s "$f" ] || "$strata" mkmodel "$f" --shape tinyllama-1.1b --type $t
done
f7=$models/llama2-7b-q4_0.gguf
[ -s "$f7" ] || "$strata" mkmodel "$f7" --shape llama2-7b --type q4_0
for t in f16 q8_0 q4_0; do
	"$strata" bench -m "$models/tinyllama-1.1b-$t.gguf" -p 128,512 -n 64 -t 2 -r ${REPS:-5} --json | tee -a "$out"
	"$strata" bench -m "$models/tinyllama-1.1b-$t.gguf" -p 0 -n 64 -t 1 -r ${REPS:-5} --json | tee -a "$out"
done
"$strata" bench -m "$f7" -p 0 -n 64 -t 2 -r ${REPS:-3} --json | tee -a "$out"
