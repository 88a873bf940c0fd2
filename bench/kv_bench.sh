#!/bin/bash
# kv_bench.sh: generation speed at a long context with an F32 vs an F16 KV
# cache (issue 3): `strata bench -p 0 -n 64 -d DEPTH` (64 decode steps after
# an untimed DEPTH-token prompt), rounds interleaved so the two cache types
# see the same machine load.  Prints one JSON object per test (strata
# bench --json, plus "round"); append them to OUT.
#   bench/kv_bench.sh BUILD_DIR MODEL OUT.jsonl [DEPTH] [ROUNDS] [THREADS]
# e.g. bench/kv_bench.sh build /work/bench-models/tinyllama-1.1b-q4_0.gguf kv.jsonl 512 3 2
set -eu
build=${1:?build dir}
model=${2:?model}
out=${3:?output .jsonl}
depth=${4:-512}
rounds=${5:-3}
threads=${6:-2}
for round in $(seq 1 "$rounds"); do
	for kv in f32 f16; do
		echo "# round $round kv $kv: $(uptime)" >&2
		"$build/tools/strata" bench -m "$model" -p 0 -n 64 -d "$depth" -t "$threads" -r 3 --bw-mib 0 \
			--kv "$kv" --json | sed "s/^{/{\"round\":$round,/" | tee -a "$out"
	done
done
