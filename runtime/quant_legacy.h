/* quant_legacy.h: the remaining 32-element GGUF weight types Q4_1, Q5_0 and
 * Q5_1 (layouts exactly as ggml-common.h defines them): scalar reference
 * (de)quantization, written from ggml's reference formulas, and the exact
 * CPU dot rule against the Q8 activation blocks of quant_dot.h.
 *
 *   Q4_1: value = d * q + m,   q = 0..15 (nibbles as Q4_0)
 *   Q5_0: value = d * (q - 16), q = 0..31 (low 4 bits as Q4_0, bit 4 of
 *         element j in bit j of qh)
 *   Q5_1: value = d * q + m,   q = 0..31 (as Q5_0)
 *
 * Dot of one weight row with one token (blocks b of 32, activations
 * qx (int8), dx (their scale), sx = sum of the block's qx; quant_dot.h):
 *   usum_b = sum_j q_j * qx_j                                   (int32)
 *   Q5_0:       term_b = (d_b * dx_b) * (float)(usum_b - 16 * sx_b)
 *   Q4_1, Q5_1: term_b = (d_b * dx_b) * (float)usum_b + (m_b * dx_b) * (float)sx_b
 *   lane[b % 8] += term_b (f32, in b order); y = ((l0+l4) + (l2+l6)) + ((l1+l5) + (l3+l7))
 * (two f32 multiplies per product, no fused multiply-add).  SIMD paths
 * compute usum with unsigned-by-signed byte products (exact in any order)
 * and the float part in 8 lanes with the same operations, so every path
 * gives the scalar reference's bits. */
#ifndef ST_QUANT_LEGACY_H
#define ST_QUANT_LEGACY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "cpu_features.h"
#include "quant_dot.h"
#include "types.h"

#define ST_QK_LEGACY 32

typedef struct {
	uint16_t d;                    /* fp16 scale */
	uint16_t m;                    /* fp16 minimum */
	uint8_t qs[ST_QK_LEGACY / 2];  /* nibbles: low = element j, high = element j+16 */
} st_block_q4_1;
_Static_assert(sizeof(st_block_q4_1) == 20, "q4_1 block");

typedef struct {
	uint16_t d;
	uint8_t qh[4];                 /* bit j: 5th bit of element j */
	uint8_t qs[ST_QK_LEGACY / 2];
} st_block_q5_0;
_Static_assert(sizeof(st_block_q5_0) == 22, "q5_0 block");

typedef struct {
	uint16_t d, m;
	uint8_t qh[4];
	uint8_t qs[ST_QK_LEGACY / 2];
} st_block_q5_1;
_Static_assert(sizeof(st_block_q5_1) == 24, "q5_1 block");

/* True for Q4_1, Q5_0, Q5_1. */
bool st_ql_type(uint32_t type);
/* Bytes per block (0 for other types); inline, so kernels instantiated
 * for one type see a constant. */
static inline size_t st_ql_block_bytes(uint32_t type)
{
	return type == ST_TYPE_Q4_1 ? sizeof(st_block_q4_1) : type == ST_TYPE_Q5_0 ? sizeof(st_block_q5_0) :
	       type == ST_TYPE_Q5_1 ? sizeof(st_block_q5_1) : 0;
}

/* Reference conversions (n a multiple of 32), used by the type table:
 * round to nearest as ggml's reference quantizers do. */
void st_ql_q4_1_to_float(const void *src, float *dst, int64_t n);
void st_ql_q5_0_to_float(const void *src, float *dst, int64_t n);
void st_ql_q5_1_to_float(const void *src, float *dst, int64_t n);
void st_ql_q4_1_from_float(const float *src, void *dst, int64_t n);
void st_ql_q5_0_from_float(const float *src, void *dst, int64_t n);
void st_ql_q5_1_from_float(const float *src, void *dst, int64_t n);

/* The 32 quants of one block in element order (0..15 or 0..31). */
static inline void st_ql_block_unpack(uint32_t type, const void *blk, uint8_t q[ST_QK_LEGACY])
{
	const uint8_t *qs = (const uint8_t *)blk + st_ql_block_bytes(type) - ST_QK_LEGACY / 2;   /* the last field */
	uint32_t qh = 0;
	if (type != ST_TYPE_Q4_1)
		memcpy(&qh, qs - 4, 4);   /* little-endian, as GGUF and every target here */
	for (int j = 0; j < ST_QK_LEGACY / 2; j++) {
		q[j] = (uint8_t)((qs[j] & 0x0F) | (((qh >> j) & 1) << 4));
		q[j + ST_QK_LEGACY / 2] = (uint8_t)((qs[j] >> 4) | (((qh >> (j + ST_QK_LEGACY / 2)) & 1) << 4));
	}
}
/* Offset of the fp16 minimum in a block (Q4_1/Q5_1), 0 for Q5_0. */
static inline size_t st_ql_min_offset(uint32_t type)
{
	return type == ST_TYPE_Q5_0 ? 0 : 2;
}

/* Reference dot of one row against token t of a (the exact rule above). */
float st_ql_dot_ref(uint32_t type, const void *wrow, const struct st_q8_act *a, int64_t t);

/* Matmul kernel (quant_dot.h's st_mm_fn, activations in st_mm_act.q) of a
 * path for a legacy type; the scalar reference loop for ST_ISA_SCALAR;
 * NULL for other types or a path that is not compiled in. */
st_mm_fn st_ql_mm_kernel(enum st_isa isa, uint32_t type);
st_mm_fn st_ql_mm_kernel_x86(enum st_isa isa, uint32_t type);
st_mm_fn st_ql_mm_kernel_arm(enum st_isa isa, uint32_t type);

/* Defines a path's type-generic kernel prefix_mm(type, w, w_stride, nr, a,
 * t0, nt, y, ldy) (target attribute TGT) over its row kernel
 * rowfn(type, wrow, a->q, t0, n, y, ldy) for n <= 4 tokens: tiles of 4
 * tokens, the rest in one tile of a constant size, so loops unroll. */
#define ST_QL_MM_DRIVER(prefix, TGT, rowfn) \
	TGT static inline __attribute__((always_inline)) void prefix##_mm(uint32_t type, const void *w, size_t ws, \
									int64_t nr, const struct st_mm_act *a, \
									int64_t t0, int64_t nt, float *y, size_t ldy) \
	{ \
		for (int64_t r = 0; r < nr; r++) { \
			const uint8_t *wr = (const uint8_t *)w + (size_t)r * ws; \
			int64_t t = 0; \
			for (; t + 4 <= nt; t += 4) \
				rowfn(type, wr, a->q, t0 + t, 4, y + (size_t)t * ldy + (size_t)r, ldy); \
			float *yt = y + (size_t)t * ldy + (size_t)r; \
			switch (nt - t) { \
			case 3: rowfn(type, wr, a->q, t0 + t, 3, yt, ldy); break; \
			case 2: rowfn(type, wr, a->q, t0 + t, 2, yt, ldy); break; \
			case 1: rowfn(type, wr, a->q, t0 + t, 1, yt, ldy); break; \
			default: break; \
			} \
		} \
	}

/* Defines a path's three st_mm_fn entries prefix_mm_q4_1/_q5_0/_q5_1 (with
 * target attribute TGT) over its type-generic kernel
 * mm(type, w, w_stride, nr, a, t0, nt, y, ldy). */
#define ST_QL_MM_ENTRY(prefix, TGT, mm, name, T) \
	TGT static void prefix##_mm_##name(const void *w, size_t ws, int64_t cols, int64_t nr, \
					   const struct st_mm_act *a, int64_t t0, int64_t nt, float *y, size_t ldy) \
	{ (void)cols; mm(T, w, ws, nr, a, t0, nt, y, ldy); }
#define ST_QL_MM_ENTRIES(prefix, TGT, mm) \
	ST_QL_MM_ENTRY(prefix, TGT, mm, q4_1, ST_TYPE_Q4_1) \
	ST_QL_MM_ENTRY(prefix, TGT, mm, q5_0, ST_TYPE_Q5_0) \
	ST_QL_MM_ENTRY(prefix, TGT, mm, q5_1, ST_TYPE_Q5_1)

#endif
