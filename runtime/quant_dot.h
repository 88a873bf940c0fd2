/* quant_dot.h: the dot-product kernel interface of the CPU matmul, the
 * on-the-fly Q8 quantization of activations, and the scalar reference every
 * SIMD path is checked against.
 *
 * Weights W are `rows` rows of `cols` elements of one type, rows w_stride
 * bytes apart (as stored in GGUF).  Activations X are n_tokens rows of cols
 * floats.  Output Y[t][r] = sum_c W[r][c] * X[t][c].
 *
 * Float weights (F32, F16, BF16) are dotted against the f32 activations
 * (accumulation order is the path's own: SIMD paths match the scalar path to
 * NMSE <= 1e-7).  Quantized weights (Q8_0, Q4_0) are dotted against the
 * activations quantized to 8-bit blocks of 32 (the Q8_0 rule: d = amax/127
 * rounded to fp16, q = round(x/d)), as ggml does.  Their result is defined
 * exactly, so every path gives the same bits:
 *     isum_b = sum_j qw_b[j] * qx_b[j]                       (int32)
 *     term_b = (dw_b * dx_b) * (float)isum_b                  (two f32 muls)
 *     lane[b % 8] += term_b                                   (f32, in b order)
 *     y = ((l0+l4) + (l2+l6)) + ((l1+l5) + (l3+l7))
 * (no fused multiply-add anywhere in that chain).  Q4_1, Q5_0 and Q5_1
 * weights use the same activations with the rule of quant_legacy.h (which
 * adds the minimum's term m * dx * sum(qx) per block). */
#ifndef ST_QUANT_DOT_H
#define ST_QUANT_DOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cpu_features.h"
#include "types.h"

#define ST_Q8_LANES 8

/* Quantized activations: separate arrays so kernels load 8 scales or sums
 * with one instruction. */
struct st_q8_act {
	int64_t nb;          /* blocks of 32 per token */
	int64_t n_tokens;
	int8_t *qs;          /* [n_tokens][nb * 32] */
	float *d;            /* [n_tokens][nb] scale (an fp16 value, held as f32) */
	int32_t *s;          /* [n_tokens][nb] sum of the block's qs */
};

/* Bytes of scratch for cols x n_tokens activations (cols % 32 == 0);
 * -EOVERFLOW/-EINVAL on bad sizes, else 0 with *bytes set. */
int st_q8_act_bytes(int64_t cols, int64_t n_tokens, size_t *bytes);
/* Lay the arrays out in mem (64-byte aligned, st_q8_act_bytes big). */
void st_q8_act_init(struct st_q8_act *a, void *mem, int64_t cols, int64_t n_tokens);
/* Quantize one token's row x[cols] into token slot t (exact, shared by all
 * paths). */
void st_q8_act_quantize(struct st_q8_act *a, int64_t t, const float *x);

/* A faster quantizer with the same result, per path (st_q8_act_quantize
 * when the path has none). */
typedef void (*st_q8_quantize_fn)(struct st_q8_act *a, int64_t t, const float *x);
st_q8_quantize_fn st_q8_quantizer(enum st_isa isa);
st_q8_quantize_fn st_q8_quantizer_x86(enum st_isa isa);
st_q8_quantize_fn st_q8_quantizer_arm(enum st_isa isa);

struct st_q8k_act;
struct st_gemm_act;

/* Activations as a kernel sees them. */
struct st_mm_act {
	const float *f;          /* f32 rows (float weights) */
	size_t f_stride;         /* floats between token rows */
	const struct st_q8_act *q; /* quantized rows (quantized weights) */
	const struct st_q8k_act *qk; /* Q8_K rows (K-quant weights, kquant.h) */
	const struct st_gemm_act *g; /* packed Q8 rows (prompt GEMM kernels, gemm.h) */
};

/* Kernel: rows [0, nr) of W (starting at w) against tokens [t0, t0+nt);
 * writes y[t * ldy + r] (y points at the output of row 0, token t0).
 * Each output's arithmetic must not depend on nr, nt or t0, so any split
 * of rows and tokens between threads gives the same bits. */
typedef void (*st_mm_fn)(const void *w, size_t w_stride, int64_t cols, int64_t nr,
			 const struct st_mm_act *a, int64_t t0, int64_t nt, float *y, size_t ldy);

/* True for weight types dotted against Q8 activations. */
bool st_mm_type_is_quant(uint32_t type);
/* True for weight types the matmul kernels handle (F32 F16 BF16 Q8_0 Q4_0,
 * Q4_1 Q5_0 Q5_1, and the K-quants of kquant.h, dotted against Q8_K
 * activations). */
bool st_mm_type_supported(uint32_t type);
/* Kernel for (isa, type), or NULL when the path is not compiled in or the
 * type is not handled by it (callers then use the scalar path). */
st_mm_fn st_mm_kernel(enum st_isa isa, uint32_t type);

/* ---- scalar reference (written straight from the definitions) -------- */

/* Float weights: sum accumulated in double, rounded once. */
float st_dot_float_ref(uint32_t type, const void *wrow, const float *x, int64_t cols);
/* Quantized weights against token t of a: the exact rule above. */
float st_dot_q8_ref(uint32_t type, const void *wrow, const struct st_q8_act *a, int64_t t);
/* Integer dot of one weight block with activation block (b of token t). */
int32_t st_dot_q8_block_isum(uint32_t type, const void *wblock, const int8_t *qx);

/* Vector helpers for attention (over the head dimension). */
/* out[j] = scale * (q . k_j) for j < n; k_j = k + j * ks, hd floats each. */
typedef void (*st_vec_dots_fn)(const float *q, const float *k, size_t ks, int n, int hd, float scale, float *out);
/* o[i] = sum_j p[j] * v_j[i] for i < hd (o overwritten); v_j = v + j * vs. */
typedef void (*st_vec_wsum_fn)(const float *p, const float *v, size_t vs, int n, int hd, float *o);
void st_vec_ops_get(enum st_isa isa, st_vec_dots_fn *dots, st_vec_wsum_fn *wsum);
bool st_vec_ops_x86(enum st_isa isa, st_vec_dots_fn *dots, st_vec_wsum_fn *wsum);
bool st_vec_ops_arm(enum st_isa isa, st_vec_dots_fn *dots, st_vec_wsum_fn *wsum);

/* Per-path kernel tables (simd_x86.c, simd_arm.c); NULL type = not handled. */
st_mm_fn st_mm_kernel_x86(enum st_isa isa, uint32_t type);
st_mm_fn st_mm_kernel_arm(enum st_isa isa, uint32_t type);

#endif
