#!/bin/bash
# upload_bench.sh: weights into a device-local buffer with and without the
# upload overlap (ioring/upload.h; BENCHMARKS.md "Weight loading"), side by
# side in one session.  Needs root for drop_caches.
#
#   bench/upload_bench.sh STRATA MODEL ROUNDS ["vulkan0 opencl0"] [STAGE] > results.jsonl
#   python3 bench/ioring_summary.py < results.jsonl
#
# Each round, cold (page cache dropped before each run) and then warm (file
# read once beforehand), for each device, in a rotating order:
#   overlap   strata bench-load --device D --upload overlap: chunk k+1 read
#             while the device copies chunk k
#   serial    the same chunks, each copy waited for before the next read
#   read-all  every tensor read into host memory first, then written
# --io auto: O_DIRECT when cold, the page cache when it holds the file.
# One JSON object per run ("io" is "DEVICE MODE"); the load average goes
# to stderr before and after.  EXTRA="--slots 2" adds options to every run.
set -u
S=$1; M=$2; N=$3; DEVS=${4:-vulkan0 opencl0}; STAGE=${5:-}
stage_args=()
[ -n "$STAGE" ] && stage_args=(--stage "$STAGE")

drop() { sync; echo 3 > /proc/sys/vm/drop_caches; }

run() {  # device, mode, cold(0/1)
	[ "$3" = 1 ] && drop
	"$S" bench-load -m "$M" "${stage_args[@]}" --io auto --device "$1" --upload "$2" --json ${EXTRA:-} |
		python3 -c "
import json,sys
d=json.loads(sys.stdin.read()); d['io']='$1 $2'; d['cold']=bool($3); print(json.dumps(d))"
}

echo "start: $(uptime)" >&2
modes=(overlap serial read-all)
for ((r = 0; r < N; r++)); do
	for cold in 1 0; do
		[ "$cold" = 0 ] && cat "$M" > /dev/null
		for dev in $DEVS; do
			for ((k = 0; k < ${#modes[@]}; k++)); do
				run "$dev" "${modes[$(( (k + r) % ${#modes[@]} ))]}" "$cold"
			done
		done
	done
done
echo "end: $(uptime)" >&2
