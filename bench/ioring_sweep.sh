#!/bin/bash
# ioring_sweep.sh: queue depth x chunk size of the io_uring O_DIRECT loader,
# cold cache, destination pre-faulted (BENCHMARKS.md "Weight loading").
#   bench/ioring_sweep.sh STRATA MODEL ROUNDS > sweep.jsonl
set -u
S=$1; M=$2; N=$3
for ((r = 0; r < N; r++)); do
	for chunk in 262144 1048576 4194304; do
		for qd in 4 16 32 64; do
			sync; echo 3 > /proc/sys/vm/drop_caches
			"$S" bench-load -m "$M" --io uring --prefault --json --qd $qd --chunk $chunk
		done
	done
done
