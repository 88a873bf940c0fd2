/* kquant.h: the K-quant weight types Q4_K, Q5_K, Q6_K (GGUF/ggml layouts,
 * blocks in types.h): scalar reference (de)quantization, the Q8_K
 * activation blocks their dot products use, and the exact CPU dot rule
 * every SIMD path reproduces bit for bit.
 *
 * Dot of one weight row with one token (nb super-blocks of 256):
 *   Q4_K/Q5_K:  isum_b = sum_j sc_j * sum_{i in sub-block j} q_i * qx_i   (int32)
 *               imin_b = sum_j m_j * (bsums[2j] + bsums[2j+1])          (int32)
 *               term_b = (d_b * dx_b) * (float)isum_b - (dmin_b * dx_b) * (float)imin_b
 *   Q6_K:       isum_b = sum_j sc_j * sum_{i in group j} (q_i - 32) * qx_i  (int32)
 *               term_b = (d_b * dx_b) * (float)isum_b
 *   lane[b % 8] += term_b (f32, in b order); y = ((l0+l4) + (l2+l6)) + ((l1+l5) + (l3+l7))
 * SIMD paths only vectorise the integer sums (exact in any order) and share
 * the float combination (st_kq_combine), so every path gives the same bits. */
#ifndef ST_KQUANT_H
#define ST_KQUANT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cpu_features.h"
#include "quant_dot.h"
#include "types.h"

/* Reference conversions (n a multiple of 256), used by the type table. */
void st_kq_q4_K_to_float(const void *src, float *dst, int64_t n);
void st_kq_q5_K_to_float(const void *src, float *dst, int64_t n);
void st_kq_q6_K_to_float(const void *src, float *dst, int64_t n);
void st_kq_q4_K_from_float(const float *src, void *dst, int64_t n);
void st_kq_q5_K_from_float(const float *src, void *dst, int64_t n);
void st_kq_q6_K_from_float(const float *src, void *dst, int64_t n);

/* Sub-block j (0..7) scale and min of a Q4_K/Q5_K scales[12] array. */
static inline void st_kq_scale_min(int j, const uint8_t *q, uint8_t *sc, uint8_t *m)
{
	if (j < 4) {
		*sc = q[j] & 63;
		*m = q[j + 4] & 63;
	} else {
		*sc = (uint8_t)((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
		*m = (uint8_t)((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
	}
}

/* True for Q4_K, Q5_K, Q6_K. */
bool st_kq_type(uint32_t type);

/* ---- Q8_K activations ---------------------------------------------- */

struct st_q8k_act {
	int64_t nb;              /* super-blocks per token */
	int64_t n_tokens;
	st_block_q8_K *b;        /* [n_tokens][nb] */
};

/* Scratch bytes for cols x n_tokens (cols % 256 == 0), 0 or -EINVAL/-EOVERFLOW. */
int st_q8k_act_bytes(int64_t cols, int64_t n_tokens, size_t *bytes);
void st_q8k_act_init(struct st_q8k_act *a, void *mem, int64_t cols, int64_t n_tokens);
/* d = amax / 127 (f32), q = x / d rounded half away from zero, bsums. */
void st_q8k_act_quantize(struct st_q8k_act *a, int64_t t, const float *x);
/* Same on a plain array of nb blocks (tests). */
void st_q8k_quantize_row(const float *x, st_block_q8_K *y, int64_t nb);

/* ---- dot products --------------------------------------------------- */

/* Integer sums of nb weight blocks (row w) against nb Q8_K blocks:
 * isum[b], imin[b] (imin unused, left 0, for Q6_K). */
typedef void (*st_kq_isum_fn)(const void *w, const st_block_q8_K *x, int64_t nb, int32_t *isum,
			      int32_t *imin);
/* Reference integer sums, written from the definition. */
void st_kq_isum_ref(uint32_t type, const void *w, const st_block_q8_K *x, int64_t nb, int32_t *isum,
		    int32_t *imin);
/* The float combination of the rule above. */
float st_kq_combine(uint32_t type, const void *w, const st_block_q8_K *x, int64_t nb,
		    const int32_t *isum, const int32_t *imin);
/* Reference dot: st_kq_isum_ref then st_kq_combine. */
float st_kq_dot_ref(uint32_t type, const void *w, const st_block_q8_K *x, int64_t nb);

/* Integer-sum kernel of a path for a type, NULL when the path has none
 * (not compiled in, CPU lacks it, or not a K type). */
st_kq_isum_fn st_kq_isum_kernel(enum st_isa isa, uint32_t type);
st_kq_isum_fn st_kq_isum_kernel_x86(enum st_isa isa, uint32_t type);
st_kq_isum_fn st_kq_isum_kernel_arm(enum st_isa isa, uint32_t type);

/* Whole-row dot of a path (integer sums and the float rule vectorised
 * together; same bits as st_kq_dot_ref), NULL when the path has none. */
typedef float (*st_kq_row_fn)(const void *w, const st_block_q8_K *x, int64_t nb);
st_kq_row_fn st_kq_row_kernel(enum st_isa isa, uint32_t type);
st_kq_row_fn st_kq_row_kernel_x86(enum st_isa isa, uint32_t type);
st_kq_row_fn st_kq_row_kernel_arm(enum st_isa isa, uint32_t type);
/* The same for four tokens at once (xs[4] token rows, y[4]): each output
 * has st_kq_row_fn's bits; NULL when the path has none. */
typedef void (*st_kq_row4_fn)(const void *w, const st_block_q8_K *const *xs, int64_t nb, float *y);
st_kq_row4_fn st_kq_row4_kernel(enum st_isa isa, uint32_t type);
st_kq_row4_fn st_kq_row4_kernel_x86(enum st_isa isa, uint32_t type);
st_kq_row4_fn st_kq_row4_kernel_arm(enum st_isa isa, uint32_t type);   /* kquant_arm_row4.c */

/* Matmul kernel (quant_dot.h's st_mm_fn, activations in st_mm_act.qk) of a
 * path for a K type: the path's integer sums (scalar when it has none)
 * and st_kq_combine's arithmetic.  NULL for other types. */
st_mm_fn st_kq_mm_kernel(enum st_isa isa, uint32_t type);

#endif
