/* matmul.h: the CPU matmul driver: picks the kernel path once, quantizes
 * activations for quantized weights, splits rows between the thread pool's
 * threads and tiles tokens for cache reuse (prefill), and runs attention
 * parallel over heads.
 *
 *   y[t * y_stride + r] = sum_c W[r][c] * x[t * x_stride + c]
 *
 * Each output is computed by exactly one thread with the same instruction
 * sequence whatever the thread count, so 1, 2 or N threads give the same
 * bits. */
#ifndef ST_MATMUL_H
#define ST_MATMUL_H

#include <stddef.h>
#include <stdint.h>

#include "cpu_features.h"
#include "threadpool.h"

struct st_matmul_ctx;

/* n_threads <= 0: one per core; isa ST_ISA_AUTO: best supported (ST_ISA env
 * can lower it).  Asking for an unsupported isa is -ENOTSUP. */
int st_matmul_ctx_create(int n_threads, enum st_isa isa, struct st_matmul_ctx **out);
void st_matmul_ctx_destroy(struct st_matmul_ctx *ctx);
struct st_threadpool *st_matmul_ctx_pool(struct st_matmul_ctx *ctx);
enum st_isa st_matmul_ctx_isa(const struct st_matmul_ctx *ctx);
/* The activation scratch of ctx, grown to at least need bytes (NULL: out of
 * memory).  Valid until the next call that uses ctx. */
void *st_matmul_ctx_scratch(struct st_matmul_ctx *ctx, size_t need);

/* W: rows x cols of `type` (st_mm_type_supported), rows w_stride bytes
 * apart; x: n_tokens rows of cols floats, x_stride floats apart; y: n_tokens
 * rows, y_stride floats apart.  Returns 0 or -errno (-ENOTSUP type, -EINVAL
 * shapes, -ENOMEM scratch). */
int st_matmul(struct st_matmul_ctx *ctx, uint32_t type, const void *w, size_t w_stride,
	      int64_t rows, int64_t cols, const float *x, size_t x_stride, int64_t n_tokens,
	      float *y, size_t y_stride);

/* Causal grouped-query attention over a KV cache of f32 rows, parallel over
 * heads.  q: n_tokens x (n_head*head_dim) (q_stride floats apart), token t at
 * position pos0 + t sees cache rows 0..pos0+t.  k, v: rows of
 * n_head_kv*head_dim floats, kv_stride apart.  out like q (out_stride).
 * Softmax in f32 with max subtraction; scale multiplies q.k. */
int st_attention(struct st_matmul_ctx *ctx, const float *q, size_t q_stride, int64_t n_tokens,
		 int64_t pos0, const float *k, const float *v, size_t kv_stride,
		 int n_head, int n_head_kv, int head_dim, float scale, float *out, size_t out_stride);
/* The same over a cache of kv_type elements, ST_TYPE_F32 or ST_TYPE_F16
 * (IEEE halves, converted to f32 on load: attn_f16.h); kv_stride counts
 * elements.  Other types are -ENOTSUP. */
int st_attention_kv(struct st_matmul_ctx *ctx, uint32_t kv_type, const float *q, size_t q_stride,
		    int64_t n_tokens, int64_t pos0, const void *k, const void *v, size_t kv_stride,
		    int n_head, int n_head_kv, int head_dim, float scale, float *out, size_t out_stride);

#endif
