/* quant_legacy_arm.c: Q4_1, Q5_0 and Q5_1 matmul kernels for NEON, with
 * the dot-product extension (SDOT) where the CPU has it, reproducing
 * quant_legacy.h's exact rule bit for bit: the 32 quants of a block (0..31,
 * so they fit int8) times the activation bytes summed exactly per block,
 * then the float part in 8 lanes (two float32x4) with the reference's
 * operations. */
#include "quant_legacy.h"

#if defined(__aarch64__)

#include <arm_neon.h>
#include <string.h>

#define INLINE static inline __attribute__((always_inline))
#define TGT_DOT __attribute__((target("arch=armv8.2-a+dotprod")))
#define QT 4   /* ST_QL_MM_DRIVER's token tile */

/* Quants of one block, elements 0-15 in *w0 and 16-31 in *w1. */
INLINE void ql_unpack(uint32_t type, const uint8_t *blk, int8x16_t *w0, int8x16_t *w1)
{
	const size_t off = st_ql_block_bytes(type) - 16;   /* qs: the last 16 bytes */
	const uint8x16_t q = vld1q_u8(blk + off);
	uint8x16_t lo = vandq_u8(q, vdupq_n_u8(0x0F)), hi = vshrq_n_u8(q, 4);
	if (type != ST_TYPE_Q4_1) {
		uint32_t qh;
		memcpy(&qh, blk + off - 4, 4);
		static const uint8_t bit[16] = { 1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128 };
		const uint8x16_t bv = vld1q_u8(bit), x10 = vdupq_n_u8(0x10);
		const uint8x16_t b0 = vcombine_u8(vdup_n_u8((uint8_t)qh), vdup_n_u8((uint8_t)(qh >> 8)));
		const uint8x16_t b1 = vcombine_u8(vdup_n_u8((uint8_t)(qh >> 16)), vdup_n_u8((uint8_t)(qh >> 24)));
		lo = vorrq_u8(lo, vandq_u8(vtstq_u8(b0, bv), x10));
		hi = vorrq_u8(hi, vandq_u8(vtstq_u8(b1, bv), x10));
	}
	*w0 = vreinterpretq_s8_u8(lo);
	*w1 = vreinterpretq_s8_u8(hi);
}

INLINE int32_t ql_isum_neon(int8x16_t w0, int8x16_t w1, const int8_t *x)
{
	int8x16_t x0 = vld1q_s8(x), x1 = vld1q_s8(x + 16);
	int32x4_t s = vpaddlq_s16(vmull_s8(vget_low_s8(w0), vget_low_s8(x0)));
	s = vpadalq_s16(s, vmull_s8(vget_high_s8(w0), vget_high_s8(x0)));
	s = vpadalq_s16(s, vmull_s8(vget_low_s8(w1), vget_low_s8(x1)));
	s = vpadalq_s16(s, vmull_s8(vget_high_s8(w1), vget_high_s8(x1)));
	return vaddvq_s32(s);
}

TGT_DOT INLINE int32_t ql_isum_dot(int8x16_t w0, int8x16_t w1, const int8_t *x)
{
	int32x4_t s = vdotq_s32(vdupq_n_s32(0), w0, vld1q_s8(x));
	s = vdotq_s32(s, w1, vld1q_s8(x + 16));
	return vaddvq_s32(s);
}

/* lanes (l0..l3, l4..l7) += term of the rule for 4 blocks */
INLINE float32x4_t ql_terms(uint32_t type, float32x4_t dw, float32x4_t mw, const float *dx, const int32_t *us,
			    const int32_t *sx)
{
	const float32x4_t vdx = vld1q_f32(dx);
	const float32x4_t sc = vmulq_f32(dw, vdx);
	const int32x4_t vs = vld1q_s32(sx), vu = vld1q_s32(us);
	if (type == ST_TYPE_Q5_0)
		return vmulq_f32(sc, vcvtq_f32_s32(vsubq_s32(vu, vshlq_n_s32(vs, 4))));
	return vaddq_f32(vmulq_f32(sc, vcvtq_f32_s32(vu)), vmulq_f32(vmulq_f32(mw, vdx), vcvtq_f32_s32(vs)));
}

#define DEF_QL_ROW(prefix, TGT, ISUM) \
TGT INLINE void prefix##_ql_row(uint32_t type, const uint8_t *w, const struct st_q8_act *a, int64_t t0, int nt, \
				float *y, size_t ldy) \
{ \
	const size_t bsz = st_ql_block_bytes(type); \
	const int64_t nb = a->nb; \
	float32x4_t lo[QT], hi[QT]; \
	for (int t = 0; t < nt; t++) \
		lo[t] = hi[t] = vdupq_n_f32(0.0f); \
	for (int64_t b = 0; b < nb; b += 8) { \
		const int n = nb - b >= 8 ? 8 : (int)(nb - b); \
		int32_t us[QT][8]; \
		uint16_t dh[8] = { 0 }, mh[8] = { 0 }; \
		memset(us, 0, sizeof(us)); \
		for (int k = 0; k < n; k++) { \
			const uint8_t *blk = w + (size_t)(b + k) * bsz; \
			int8x16_t w0, w1; \
			memcpy(&dh[k], blk, 2); \
			memcpy(&mh[k], blk + st_ql_min_offset(type), 2); \
			ql_unpack(type, blk, &w0, &w1); \
			for (int t = 0; t < nt; t++) \
				us[t][k] = ISUM(w0, w1, a->qs + ((t0 + t) * nb + b + k) * 32); \
		} \
		const uint16x8_t dv = vld1q_u16(dh), mv = vld1q_u16(mh); \
		const float32x4_t dwl = vcvt_f32_f16(vreinterpret_f16_u16(vget_low_u16(dv))); \
		const float32x4_t dwh = vcvt_f32_f16(vreinterpret_f16_u16(vget_high_u16(dv))); \
		const float32x4_t mwl = vcvt_f32_f16(vreinterpret_f16_u16(vget_low_u16(mv))); \
		const float32x4_t mwh = vcvt_f32_f16(vreinterpret_f16_u16(vget_high_u16(mv))); \
		for (int t = 0; t < nt; t++) { \
			float dx[8] = { 0 }; \
			int32_t sx[8] = { 0 }; \
			memcpy(dx, a->d + (t0 + t) * nb + b, (size_t)n * 4); \
			memcpy(sx, a->s + (t0 + t) * nb + b, (size_t)n * 4); \
			lo[t] = vaddq_f32(lo[t], ql_terms(type, dwl, mwl, dx, us[t], sx)); \
			hi[t] = vaddq_f32(hi[t], ql_terms(type, dwh, mwh, dx + 4, us[t] + 4, sx + 4)); \
		} \
	} \
	for (int t = 0; t < nt; t++) { \
		/* ((l0+l4) + (l2+l6)) + ((l1+l5) + (l3+l7)) */ \
		float32x4_t s4 = vaddq_f32(lo[t], hi[t]); \
		float32x2_t s2 = vadd_f32(vget_low_f32(s4), vget_high_f32(s4)); \
		y[(size_t)t * ldy] = vget_lane_f32(s2, 0) + vget_lane_f32(s2, 1); \
	} \
}

#define NOTGT
DEF_QL_ROW(neon, NOTGT, ql_isum_neon)
DEF_QL_ROW(dot, TGT_DOT, ql_isum_dot)
ST_QL_MM_DRIVER(neon, NOTGT, neon_ql_row)
ST_QL_MM_DRIVER(dot, TGT_DOT, dot_ql_row)
ST_QL_MM_ENTRIES(neon, NOTGT, neon_mm)
ST_QL_MM_ENTRIES(dot, TGT_DOT, dot_mm)

st_mm_fn st_ql_mm_kernel_arm(enum st_isa isa, uint32_t type)
{
	if (isa != ST_ISA_NEON && isa != ST_ISA_NEON_DOTPROD)
		return NULL;
	const bool dot = isa == ST_ISA_NEON_DOTPROD;
	switch (type) {
	case ST_TYPE_Q4_1: return dot ? dot_mm_q4_1 : neon_mm_q4_1;
	case ST_TYPE_Q5_0: return dot ? dot_mm_q5_0 : neon_mm_q5_0;
	case ST_TYPE_Q5_1: return dot ? dot_mm_q5_1 : neon_mm_q5_1;
	default: return NULL;
	}
}

#else
st_mm_fn st_ql_mm_kernel_arm(enum st_isa isa, uint32_t type)
{
	(void)isa;
	(void)type;
	return NULL;
}
#endif
