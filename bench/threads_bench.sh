#!/bin/bash
# threads_bench.sh: 1 -> 2 thread generation scaling (issue 3), two builds
# side by side: for each model, rounds of {base, new} x {1, 2 threads},
# interleaved so both builds see the same machine load.  `strata bench -p 0
# -n 64 -t T -r REPEATS --json` (it measures the read bandwidth with T
# threads first and prints the fraction of the limit reached).  Prints one
# JSON object per test, plus "build", "round" and "load" (1-minute load
# average before the test); append them to OUT.
#   bench/threads_bench.sh BASE_BUILD NEW_BUILD OUT.jsonl [ROUNDS] [REPEATS] MODEL...
# e.g. bench/threads_bench.sh /tmp/base/build build t.jsonl 2 5 /work/bench-models/tinyllama-1.1b-q4_0.gguf
# Summarise: jq -s 'group_by([.model,.build,.threads])[] | ...' OUT.jsonl
set -eu
base=${1:?base build dir}
new=${2:?new build dir}
out=${3:?output .jsonl}
rounds=${4:-2}
repeats=${5:-5}
shift 5
for model in "$@"; do
	for round in $(seq 1 "$rounds"); do
		for t in 1 2; do
			for b in base new; do
				dir=$base
				[ "$b" = new ] && dir=$new
				load=$(cut -d' ' -f1 /proc/loadavg)
				echo "# $(basename "$model") round $round $b -t $t: load $load" >&2
				"$dir/tools/strata" bench -m "$model" -p 0 -n 64 -t "$t" -r "$repeats" --bw-mib 512 --json |
					sed "s/^{/{\"build\":\"$b\",\"round\":$round,\"load\":$load,/" | tee -a "$out"
			done
		done
	done
done
