/* quant_matvec.c: one thread's matmul kernel time per weight type on the
 * TinyLlama ffn_up shape (5632 x 2048), the fastest of REPS runs (the
 * minimum is what a shared machine lets through; medians move with the
 * load).  Prints one JSON object per type.  Kernel path: the best the CPU
 * has, or ST_ISA=scalar|avx2|avx512|avx512_vnni|neon|neon_dotprod.
 *   cc -O2 -std=c11 -D_GNU_SOURCE -Iruntime -IBUILD bench/quant_matvec.c \
 *      BUILD/runtime/libstrata_runtime.a -lm -lpthread -lpcre2-8 -o /tmp/qmv
 *   /tmp/qmv [N_TOKENS [REPS]] */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "matmul.h"
#include "types.h"

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

int main(int argc, char **argv)
{
	const int nt = argc > 1 ? atoi(argv[1]) : 1, reps = argc > 2 ? atoi(argv[2]) : 15;
	const int64_t rows = 5632, cols = 2048;
	static const uint32_t types[] = { ST_TYPE_Q4_0, ST_TYPE_Q4_1, ST_TYPE_Q5_0, ST_TYPE_Q5_1, ST_TYPE_Q8_0,
					  ST_TYPE_Q4_K, ST_TYPE_Q5_K, ST_TYPE_Q6_K };
	struct st_matmul_ctx *ctx;
	if (nt < 1 || reps < 1 || st_matmul_ctx_create(1, ST_ISA_AUTO, &ctx))
		return 1;
	float *x = malloc(sizeof(float) * (size_t)(cols * nt)), *y = malloc(sizeof(float) * (size_t)(rows * nt));
	float *f = malloc(sizeof(float) * (size_t)cols);
	for (int64_t i = 0; i < cols * nt; i++)
		x[i] = (float)((i * 7919) % 1000) / 500.0f - 1.0f;
	for (size_t k = 0; k < sizeof(types) / sizeof(types[0]); k++) {
		uint64_t rb;
		st_type_row_size(types[k], (uint64_t)cols, &rb);
		uint8_t *w = malloc(rb * (uint64_t)rows);
		for (int64_t r = 0; r < rows; r++) {
			for (int64_t c = 0; c < cols; c++)
				f[c] = (float)((r * 31 + c * 17) % 997) / 500.0f - 1.0f;
			st_type_traits(types[k])->from_float(f, w + rb * (uint64_t)r, cols);
		}
		double best = 1e30;
		for (int it = 0; it < reps; it++) {
			double t0 = now();
			st_matmul(ctx, types[k], w, rb, rows, cols, x, (size_t)cols, nt, y, (size_t)rows);
			double t = now() - t0;
			best = t < best ? t : best;
		}
		printf("{\"type\":\"%s\",\"isa\":\"%s\",\"rows\":%lld,\"cols\":%lld,\"n_tokens\":%d,\"ms_min\":%.4f,"
		       "\"weight_gb_s\":%.2f}\n", st_type_name(types[k]), st_cpu_isa_name(st_matmul_ctx_isa(ctx)),
		       (long long)rows, (long long)cols, nt, best * 1e3, (double)(rb * (uint64_t)rows) / best / 1e9);
		free(w);
	}
	free(x);
	free(y);
	free(f);
	st_matmul_ctx_destroy(ctx);
	return 0;
}
