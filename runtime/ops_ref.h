/* ops_ref.h: scalar reference kernels for every op of backend.h.
 *
 * Written straight from the op definitions, on host memory, with no
 * cleverness: every faster path (SIMD, Vulkan, OpenCL) is checked against
 * these by tests/test_backend_ops.c.  The CPU backend runs them directly.
 *
 * Layout: a tensor is ne1 rows of ne0 elements, rows nb1 bytes apart
 * (struct st_tensor); the pointers below point at row 0 (buffer base +
 * tensor offset).  Activations are F32; for them only the first
 * run->n_tokens rows are live. */
#ifndef ST_OPS_REF_H
#define ST_OPS_REF_H

#include <stdint.h>

#include "backend.h"

/* Check an op's shapes and types against its definition and a run's
 * dynamic parameters (n_tokens within every activation's capacity, KV
 * positions within the cache).  Returns 0 or -EINVAL with a message naming
 * the op and the numbers.  Every backend calls it (graph_prepare with
 * run = NULL checks the static part; graph_run the dynamic part). */
int st_op_check(const struct st_op *op, const struct st_graph_run *run);
const char *st_op_name(enum st_op_kind kind);

/* Run one op: dst and src[i] are host pointers to row 0 of each tensor
 * (src[i] NULL where the op has no such source).  Returns 0 or negative. */
int st_ref_op_run(const struct st_op *op, const struct st_graph_run *run,
		  void *dst, const void *const src[3]);

/* The kernels, for backends that want one of them alone.  Rows: W is
 * `rows` rows of `cols` elements of `type`, nb_w bytes apart; x and y are
 * F32 with row strides ldx/ldy in floats. */
void st_ref_matmul(uint32_t type, const void *W, int64_t rows, int64_t cols, size_t nb_w,
		   const float *x, int64_t ldx, int64_t n_tokens, float *y, int64_t ldy);
/* Causal GQA attention for n_tokens queries at positions pos0..; K/V cache
 * rows 0..pos0+n_tokens-1 (cache_type F32 or F16, row strides in bytes).
 * Returns 0 or -ENOMEM (long contexts allocate their score row). */
int st_ref_attn(const float *q, int64_t ldq, const void *k, const void *v, uint32_t cache_type,
		size_t nb_kv, float *out, int64_t ldo, int64_t n_tokens, int64_t pos0,
		uint32_t n_head, uint32_t n_head_kv, uint32_t head_dim, float scale);
/* RoPE ("normal" mode: adjacent pairs) in place on n_tokens rows of
 * n_head*head_dim floats, positions pos0... */
void st_ref_rope(float *x, int64_t ldx, int64_t n_tokens, int64_t pos0,
		 uint32_t n_head, uint32_t head_dim, uint32_t rope_dim, float theta);

#endif
