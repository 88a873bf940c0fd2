#!/bin/bash
# ioring_ttft.sh: cold-cache time to the first token, per weight path
# (strata's mapped file vs the io_uring span loader vs buffered pread), in a
# rotating order (BENCHMARKS.md "Weight loading").
#   bench/ioring_ttft.sh STRATA MODEL ROUNDS > ttft.jsonl
set -u
S=$1; M=$2; N=$3
modes=(mmap uring pread)
for ((r = 0; r < N; r++)); do
	for ((k = 0; k < ${#modes[@]}; k++)); do
		m=${modes[$(( (k + r) % ${#modes[@]} ))]}
		"$S" bench-load -m "$M" --ttft --cold --json --io $m
	done
done
