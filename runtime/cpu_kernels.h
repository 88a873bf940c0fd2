/* cpu_kernels.h: the CPU backend's heavy kernels behind one function each,
 * so a faster implementation (SIMD, threads) replaces cpu_kernels.c alone
 * (it now does: matmul.c kernels on the thread pool).
 * Same semantics and layouts as st_ref_matmul / st_ref_attn in ops_ref.h
 * (which these must match: tests/test_backend_ops.c checks it). */
#ifndef ST_CPU_KERNELS_H
#define ST_CPU_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "cpu_features.h"
#include "matmul_decode.h"

/* y[t][r] = sum_c W[r][c] * x[t][c] for t < n_tokens, r < rows.
 * W: rows of `cols` elements of `type`, nb_w bytes apart; x, y F32 with
 * row strides ldx, ldy in floats. */
int st_cpu_matmul(uint32_t type, const void *W, int64_t rows, int64_t cols, size_t nb_w,
		  const float *x, int64_t ldx, int64_t n_tokens, float *y, int64_t ldy);

/* st_matmul_decode (matmul_decode.h: one token, parts sharing the input x,
 * an epilogue per chunk of rows) on the kernels' context. */
int st_cpu_matmul_decode(const struct st_mm_part *parts, int n_parts, int64_t cols, const float *x,
			 int64_t align, bool lockstep, st_mm_epilogue_fn epi, void *user);

/* Causal GQA attention (see st_ref_attn). */
int st_cpu_attn(const float *q, int64_t ldq, const void *k, const void *v, uint32_t cache_type,
		size_t nb_kv, float *out, int64_t ldo, int64_t n_tokens, int64_t pos0,
		uint32_t n_head, uint32_t n_head_kv, uint32_t head_dim, float scale);

/* Threads used by the two kernels above (0 = one per core, the default);
 * sessions set it from st_session_params.n_threads.  Returns 0/-EINVAL. */
int st_cpu_kernels_set_threads(int n_threads);
/* Kernel path (ST_ISA_AUTO = best, the default; tests force each one);
 * -ENOTSUP if this CPU/build lacks it. */
int st_cpu_kernels_set_isa(enum st_isa isa);
/* The thread count in effect. */
int st_cpu_kernels_threads(void);

#endif
