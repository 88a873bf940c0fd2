#!/bin/bash
# kquant_bench.sh: K-quant CPU speed for BENCHMARKS.md (issue 3, K-quants):
# TinyLlama-1.1B-shaped Q4_K and Q4_K_M files from `strata mkmodel`, with the
# Q4_0 file of the same shape side by side, measured with `strata bench`
# (tg64 and pp128 with 2 threads), JSON lines appended to OUT.
#   bench/kquant_bench.sh [BUILD_DIR] [MODELS_DIR] [OUT.jsonl]
# Models are generated once into MODELS_DIR (outside the repository).
# Compare with llama.cpp on the same files:
#   llama-bench -m FILE -p 128 -n 64 -t 2 -r 5
set -eu
build=${1:-build}
models=${2:-/work/bench-models}
out=${3:-bench-kquant.jsonl}
strata=$build/tools/strata
mkdir -p "$models"
for t in q4_0 q4_k q4_k_m; do
	f=$models/tinyllama-1.1b-$t.gguf
	[ -s "$f" ] || "$strata" mkmodel "$f" --shape tinyllama-1.1b --type $t
done
for t in q4_0 q4_k q4_k_m; do
	"$strata" bench -m "$models/tinyllama-1.1b-$t.gguf" -p ${PP:-128} -n 64 -t 2 -r ${REPS:-5} --json | tee -a "$out"
done
