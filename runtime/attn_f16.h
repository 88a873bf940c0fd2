/* attn_f16.h: the attention helpers of matmul.c (score dots and weighted
 * sums over the head dimension) for a KV cache of IEEE half floats, one set
 * per kernel path: scalar, AVX2 (+F16C), AVX-512 (vcvtph2ps) and NEON
 * (vcvt_f32_f16).  Every path converts each cached value to f32 (exact) and
 * does all arithmetic in f32, like quant_dot.h's f32 helpers; paths differ
 * only in accumulation order (NMSE against the scalar path ~1e-14). */
#ifndef ST_ATTN_F16_H
#define ST_ATTN_F16_H

#include <stddef.h>
#include <stdint.h>

#include "cpu_features.h"

/* out[j] = scale * (q . k_j) for j < n; k_j = k + j * ks, hd halves each. */
typedef void (*st_vec_dots_f16_fn)(const float *q, const uint16_t *k, size_t ks, int n, int hd, float scale,
				   float *out);
/* o[i] = sum_j p[j] * v_j[i] for i < hd (o overwritten); v_j = v + j * vs halves. */
typedef void (*st_vec_wsum_f16_fn)(const float *p, const uint16_t *v, size_t vs, int n, int hd, float *o);

/* The helpers of a path (the scalar ones when the path lacks them or the
 * CPU does not support it). */
void st_vec_ops_f16_get(enum st_isa isa, st_vec_dots_f16_fn *dots, st_vec_wsum_f16_fn *wsum);

#endif
