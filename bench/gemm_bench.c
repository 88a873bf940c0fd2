/* gemm_bench.c: one thread, the prompt GEMM (runtime/gemm*.c) against the
 * per-block decode kernels it replaced for prefill (1 row x 4 tokens, token
 * tiles of 32, as st_matmul ran them before), on one weight shape, in the
 * same process and interleaved; the fastest of REPS runs of each (the
 * minimum is what a shared machine lets through).  Both must give the same
 * bits.  Prints one JSON object per type.
 *   cc -O2 -std=c11 -D_GNU_SOURCE -Iruntime -IBUILD bench/gemm_bench.c \
 *      BUILD/runtime/libstrata_runtime.a -lm -lpthread -lpcre2-8 -ldrm -o /tmp/gb
 *   /tmp/gb [ROWS [COLS [N_TOKENS [REPS]]]]      (default 256 2048 128 15) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gemm.h"
#include "kquant.h"
#include "types.h"

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

int main(int argc, char **argv)
{
	const int64_t rows = argc > 1 ? atoll(argv[1]) : 256, cols = argc > 2 ? atoll(argv[2]) : 2048;
	const int64_t nt = argc > 3 ? atoll(argv[3]) : 128;
	const int reps = argc > 4 ? atoi(argv[4]) : 15;
	static const uint32_t types[] = { ST_TYPE_Q4_0, ST_TYPE_Q8_0, ST_TYPE_Q4_K, ST_TYPE_Q5_K };
	const enum st_isa isa = st_cpu_isa_best();
	if (rows < 1 || cols < 256 || cols % 256 || nt < 1 || reps < 1) {
		fprintf(stderr, "usage: gemm_bench [ROWS [COLS (multiple of 256) [N_TOKENS [REPS]]]]\n");
		return 2;
	}
	float *x = malloc((size_t)(cols * nt) * sizeof(float));
	float *y0 = malloc((size_t)(rows * nt) * sizeof(float)), *y1 = malloc((size_t)(rows * nt) * sizeof(float));
	for (int64_t i = 0; i < cols * nt; i++)
		x[i] = (float)(rand() % 2001 - 1000) / 500.0f;
	for (size_t ti = 0; ti < sizeof(types) / sizeof(types[0]); ti++) {
		const uint32_t type = types[ti];
		const bool kq = st_kq_type(type);
		st_mm_fn old = st_mm_kernel(isa, type), gemm = st_gemm_kernel(isa, type);
		if (!old || !gemm) {
			printf("{\"type\":\"%s\",\"isa\":\"%s\",\"skipped\":\"no GEMM kernel on this path\"}\n",
			       st_type_name(type), st_cpu_isa_name(isa));
			continue;
		}
		uint64_t rb;
		st_type_row_size(type, (uint64_t)cols, &rb);
		uint8_t *w = malloc((size_t)(rows * (int64_t)rb));
		for (int64_t r = 0; r < rows; r++)
			st_type_traits(type)->from_float(x + (r % nt) * cols, w + (size_t)r * rb, cols);
		size_t b1, b2;
		if (kq)
			st_q8k_act_bytes(cols, nt, &b1);
		else
			st_q8_act_bytes(cols, nt, &b1);
		st_gemm_act_bytes(cols, nt, kq ? 256 : 32, &b2);
		void *m1 = malloc(b1), *m2 = malloc(b2);
		struct st_q8_act q;
		struct st_q8k_act qk;
		struct st_gemm_act g;
		struct st_mm_act a = { .q = &q, .qk = &qk, .g = &g };
		st_gemm_act_init(&g, m2, cols, nt, kq ? 256 : 32);
		if (kq) {
			st_q8k_act_init(&qk, m1, cols, nt);
			for (int64_t t = 0; t < nt; t++)
				st_q8k_act_quantize(&qk, t, x + t * cols);
			for (int64_t i = 0; i < g.n_groups; i++)
				st_gemm_act_pack_k(&g, &qk, i);
		} else {
			st_q8_act_init(&q, m1, cols, nt);
			for (int64_t t = 0; t < nt; t++)
				st_q8_act_quantize(&q, t, x + t * cols);
			for (int64_t i = 0; i < g.n_groups; i++)
				st_gemm_act_pack(&g, &q, i);
		}
		double best_old = 1e30, best_new = 1e30;
		const int64_t tile = st_gemm_tok_tile(cols);
		for (int i = 0; i < reps; i++) {
			double t0 = now();
			for (int64_t t = 0; t < nt; t += 32)
				old(w, rb, cols, rows, &a, t, nt - t < 32 ? nt - t : 32, y0 + t * rows, (size_t)rows);
			double t1 = now();
			for (int64_t t = 0; t < nt; t += tile)
				gemm(w, rb, cols, rows, &a, t, nt - t < tile ? nt - t : tile, y1 + t * rows, (size_t)rows);
			double t2 = now();
			best_old = t1 - t0 < best_old ? t1 - t0 : best_old;
			best_new = t2 - t1 < best_new ? t2 - t1 : best_new;
		}
		const double macs = (double)rows * (double)cols * (double)nt;
		printf("{\"type\":\"%s\",\"isa\":\"%s\",\"rows\":%lld,\"cols\":%lld,\"tokens\":%lld,\"reps\":%d,"
		       "\"decode_kernel_gmacs\":%.2f,\"gemm_gmacs\":%.2f,\"speedup\":%.2f,\"identical\":%s}\n",
		       st_type_name(type), st_cpu_isa_name(isa), (long long)rows, (long long)cols, (long long)nt, reps,
		       macs / best_old * 1e-9, macs / best_new * 1e-9, best_old / best_new,
		       memcmp(y0, y1, (size_t)(rows * nt) * sizeof(float)) ? "false" : "true");
		free(w);
		free(m1);
		free(m2);
	}
	free(x);
	free(y0);
	free(y1);
	return 0;
}
