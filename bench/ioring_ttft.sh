#!/bin/bash
# ioring_ttft.sh: cold-cache time to the first token per weight path, in a
# rotating order, one JSON line per run (BENCHMARKS.md "Weight loading").
#   bench/ioring_ttft.sh STRATA MODEL ROUNDS [MODE...] > ttft.jsonl   # root: drops caches
#   bench/ioring_ttft_summary.py < ttft.jsonl
# MODE: mmap (strata's mapped file, read on demand), readahead (mapped, with
# io_uring readahead of the spans: strata run's default), uring (O_DIRECT
# into memory of its own: strata run --io direct), pread, the last two optionally with
# +overlap (load in the background, per-layer waits), +nofixed (no
# registered buffers), +fixeddest (destinations registered too), +thp
# (MADV_HUGEPAGE on the CPU weight buffer).
# Default modes: mmap readahead uring uring+overlap pread.
set -u
S=$1; M=$2; N=$3; shift 3
modes=("$@")
[ ${#modes[@]} -eq 0 ] && modes=(mmap readahead uring uring+overlap pread)
for ((r = 0; r < N; r++)); do
	for ((k = 0; k < ${#modes[@]}; k++)); do
		m=${modes[$(( (k + r) % ${#modes[@]} ))]}
		args=(--io "${m%%+*}")
		envs=(ST_BENCH=1)
		[[ $m == *+overlap* ]] && args+=(--overlap)
		[[ $m == *+nofixed* ]] && args+=(--no-fixed)
		[[ $m == *+fixeddest* ]] && args+=(--fixed-dest)
		[[ $m == *+thp* ]] && envs+=(ST_CPU_THP=1)
		load=$(cut -d' ' -f1 /proc/loadavg)
		out=$(env "${envs[@]}" "$S" bench-load -m "$M" --ttft --cold --json "${args[@]}") || continue
		echo "${out%\}},\"mode\":\"$m\",\"round\":$r,\"loadavg\":$load}"
	done
done
