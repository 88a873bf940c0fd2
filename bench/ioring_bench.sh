#!/bin/bash
# ioring_bench.sh: weight-loading throughput, side by side in one session
# (BENCHMARKS.md "Weight loading").  Needs root for drop_caches.
#
#   bench/ioring_bench.sh STRATA MODEL ROUNDS [STAGE] > results.jsonl
#
# Each round runs, in a rotating order, with the page cache dropped before
# each: dd bs=4M iflag=direct (the disk's sequential speed), bench-load
# --io uring (O_DIRECT), --io pread (buffered), --io mmap (map + copy),
# --io uring --no-direct (buffered io_uring) and --io readahead (io_uring
# readahead into the page cache, timed until every page is mapped: what
# strata run's CPU stages do by default); then the same loaders
# warm (file in the page cache), plus --io auto (which reads through the
# page cache when it holds the bytes).  One JSON object per measurement; feed the
# output to bench/ioring_summary.py for medians.  EXTRA="--prefault" adds
# options to every bench-load run but readahead's (its destination is the
# page cache).
set -u
S=$1; M=$2; N=$3; STAGE=${4:-}
stage_args=()
[ -n "$STAGE" ] && stage_args=(--stage "$STAGE")
size=$(stat -c %s "$M")

drop() { sync; echo 3 > /proc/sys/vm/drop_caches; }

dd_direct() {
	local t0 t1
	t0=$(date +%s.%N)
	dd if="$M" of=/dev/null bs=4M iflag=direct status=none
	t1=$(date +%s.%N)
	python3 -c "s=$t1-$t0; print('{\"io\":\"dd-direct\",\"bytes\":%d,\"seconds\":%.6f,\"bytes_per_s\":%.0f,\"cold\":true}' % ($size, s, $size/s))"
}

load() {  # name, cold(0/1), args...
	local name=$1 cold=$2; shift 2
	[ "$cold" = 1 ] && drop
	"$S" bench-load -m "$M" "${stage_args[@]}" --json ${EXTRA:-} "$@" | python3 -c "
import json,sys
d=json.loads(sys.stdin.read()); d['io']='$name'; d['cold']=bool($cold); print(json.dumps(d))"
}

methods=(dd uring pread mmap uring-buffered readahead)
for ((r = 0; r < N; r++)); do
	for ((k = 0; k < ${#methods[@]}; k++)); do
		m=${methods[$(( (k + r) % ${#methods[@]} ))]}
		case $m in
		dd) drop; dd_direct ;;
		uring) load uring 1 --io uring ;;
		pread) load pread 1 --io pread ;;
		mmap) load mmap 1 --io mmap ;;
		uring-buffered) load uring-buffered 1 --io uring --no-direct ;;
		readahead) EXTRA= load readahead 1 --io readahead ;;
		esac
	done
	# warm: read once to fill the page cache, then measure each
	cat "$M" > /dev/null
	warm=(auto uring uring-buffered pread mmap readahead)
	for ((k = 0; k < ${#warm[@]}; k++)); do
		m=${warm[$(( (k + r) % ${#warm[@]} ))]}
		case $m in
		auto) load auto 0 --io auto ;;
		uring) load uring 0 --io uring ;;
		uring-buffered) load uring-buffered 0 --io uring --no-direct ;;
		pread) load pread 0 --io pread ;;
		mmap) load mmap 0 --io mmap ;;
		readahead) EXTRA= load readahead 0 --io readahead ;;
		esac
	done
done
