#!/bin/bash
# vulkan_bench.sh: the Vulkan (lavapipe) vs CPU measurements of BENCHMARKS.md
# ("Accelerators: Vulkan").  Usage: bench/vulkan_bench.sh BUILD_DIR [MODEL.gguf] [OUT_DIR]
#   MODEL: a TinyLlama-1.1B-shaped Q4_0 GGUF, e.g. from
#          BUILD_DIR/tools/strata mkmodel /tmp/tl.gguf --shape tinyllama-1.1b --type q4_0
# Writes OUT_DIR/*.json (default /tmp/strata-vulkan-bench) and prints the tables.
set -eu
B=${1:?build dir}
MODEL=${2:-}
OUT=${3:-/tmp/strata-vulkan-bench}
S="$B/tools/strata"
mkdir -p "$OUT"
echo "== $(date -u '+%Y-%m-%d %H:%M UTC'), load: $(cut -d' ' -f1-3 /proc/loadavg)"
"$S" devices
for d in vulkan0 cpu; do
	echo "== per-op, $d"
	"$S" bench-ops --device "$d" --reps 5 --layers 0 --json "$OUT/ops-$d.json"
	echo "== stage of 10 layers (decode at position 256), $d"
	"$S" bench-ops --device "$d" --reps 5 --layers 10 --stage-only --json "$OUT/stage10-$d.json"
	echo "== whole model (22 layers + head), $d"
	"$S" bench-ops --device "$d" --reps 3 --layers 22 --head --stage-only --json "$OUT/model-$d.json"
done
if [ -n "$MODEL" ]; then
	echo "== strata bench on $MODEL"
	"$S" bench -m "$MODEL" --stages vulkan0:0-21 -p 32 -n 16 -r 2 --bw-mib 0 --json > "$OUT/bench-vulkan0.json" || true
	"$S" bench -m "$MODEL" -p 32 -n 16 -r 2 --bw-mib 0 --json > "$OUT/bench-cpu.json" || true
	cat "$OUT"/bench-*.json
fi
