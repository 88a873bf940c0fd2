/* stream.h: memory read bandwidth (bench/stream.c). */
#ifndef ST_BENCH_STREAM_H
#define ST_BENCH_STREAM_H

#include <stddef.h>
#include <stdint.h>

struct st_stream_result {
	size_t bytes;            /* buffer size read per pass */
	int threads;
	double best_gbs, worst_gbs;  /* 1e9 bytes per second */
	uint64_t checksum;       /* keeps the reads alive */
};

/* Read a `bytes` buffer with n_threads threads, reps passes; 0 or -1. */
int st_stream_read(int n_threads, size_t bytes, int reps, struct st_stream_result *res);

#endif
