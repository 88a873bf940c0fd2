/* matmul_decode.h: the matmuls of one decode step (one token) that read the
 * same activation row, run as one thread-pool task with one activation
 * quantization, and an epilogue applied to each chunk of rows as soon as it
 * is computed (RoPE, the KV-cache store, SwiGLU, the residual add: see
 * cpu_fuse.c).  A decode step then needs 5 pool runs per layer instead of
 * 8, and no elementwise op runs on one thread while the others wait.
 *
 * Every output row is computed by the same kernel call sequence as
 * st_matmul (matmul.h) whatever the chunking or the thread count, so the
 * results are bit-identical to it. */
#ifndef ST_MATMUL_DECODE_H
#define ST_MATMUL_DECODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "matmul.h"

#define ST_MM_MAX_PARTS 4

/* y[r] = sum_c W[r][c] * x[c] for r < rows; W rows w_stride bytes apart. */
struct st_mm_part {
	uint32_t type;
	const void *w;
	size_t w_stride;
	int64_t rows;
	float *y;
};

/* Called once per chunk, on rows [r0, r1) of part `part` right after they
 * are computed; with lockstep, part is -1 and rows [r0, r1) of every part
 * are done.  r0 is a multiple of the call's align. */
typedef void (*st_mm_epilogue_fn)(void *user, int part, int64_t r0, int64_t r1);

/* x: cols floats (one token).  align >= 1: chunks start at multiples of it
 * (e.g. head_dim, so an epilogue sees whole heads).  lockstep: every part
 * has the same rows and a chunk covers those rows of all parts (an
 * epilogue combining two outputs row by row).  epi may be NULL.  Returns 0
 * or -errno (-ENOTSUP type, -EINVAL shapes, -ENOMEM scratch). */
int st_matmul_decode(struct st_matmul_ctx *ctx, const struct st_mm_part *parts, int n_parts, int64_t cols,
		     const float *x, int64_t align, bool lockstep, st_mm_epilogue_fn epi, void *user);

#endif
