/* kquant_arm.c: integer sums of the K-quant dot products (kquant.h) for
 * NEON, with the dot-product extension (SDOT) where the CPU has it.
 *
 * Quants are unpacked to unsigned bytes (Q4_K 0..15, Q5_K 0..31, Q6_K
 * 0..63, all < 128 so they are valid int8) and dotted 16 at a time with the
 * Q8_K bytes: SDOT, or widening multiplies (each int16 holds two products,
 * at most 2*63*127) summed across.  Q6_K's -32 offset is -32 * sum_g sc_g *
 * bsums_g.  All integer, so the sums equal the reference exactly. */
#include "kquant.h"

#if defined(__aarch64__)

#include <arm_neon.h>
#include <string.h>

#define INLINE static inline __attribute__((always_inline))
#define TGT_DOT __attribute__((target("arch=armv8.2-a+dotprod")))
#define NOTGT

INLINE int32_t dot16_neon(uint8x16_t q, const int8_t *x)
{
	const int8x16_t a = vreinterpretq_s8_u8(q), b = vld1q_s8(x);
	int16x8_t p = vmull_s8(vget_low_s8(a), vget_low_s8(b));
	p = vmlal_high_s8(p, a, b);
	return vaddlvq_s16(p);
}

TGT_DOT INLINE int32_t dot16_sdot(uint8x16_t q, const int8_t *x)
{
	return vaddvq_s32(vdotq_s32(vdupq_n_s32(0), vreinterpretq_s8_u8(q), vld1q_s8(x)));
}

/* Q4_K/Q5_K: the 8 scales and sum_j m_j * bsums of sub-block j. */
static inline int32_t scales_mins(const uint8_t *scales, const st_block_q8_K *x, uint8_t sc[8])
{
	int32_t m = 0;
	for (int j = 0; j < 8; j++) {
		uint8_t mn;
		st_kq_scale_min(j, scales, &sc[j], &mn);
		m += mn * (x->bsums[2 * j] + x->bsums[2 * j + 1]);
	}
	return m;
}

#define DEF_KQ(prefix, TGT, DOT16) \
TGT static void prefix##_q45(int five, const uint8_t *wb, size_t bsz, const st_block_q8_K *x, int64_t nb, \
			     int32_t *isum, int32_t *imin) \
{ \
	const uint8x16_t m4 = vdupq_n_u8(0x0F), v16 = vdupq_n_u8(16); \
	for (int64_t b = 0; b < nb; b++, wb += bsz) { \
		const st_block_q4_K *h = (const st_block_q4_K *)wb; \
		const uint8_t *qs = five ? ((const st_block_q5_K *)wb)->qs : h->qs; \
		const uint8_t *qh = ((const st_block_q5_K *)wb)->qh; \
		uint8_t sc[8]; \
		imin[b] = scales_mins(h->scales, &x[b], sc); \
		int32_t s = 0; \
		for (int c = 0; c < 4; c++) { \
			for (int k = 0; k < 2; k++) { \
				const uint8x16_t v = vld1q_u8(qs + 32 * c + 16 * k); \
				uint8x16_t lo = vandq_u8(v, m4), hi = vshrq_n_u8(v, 4); \
				if (five) { \
					const uint8x16_t hb = vld1q_u8(qh + 16 * k); \
					lo = vorrq_u8(lo, vandq_u8(vtstq_u8(hb, vdupq_n_u8((uint8_t)(1u << (2 * c)))), v16)); \
					hi = vorrq_u8(hi, vandq_u8(vtstq_u8(hb, vdupq_n_u8((uint8_t)(2u << (2 * c)))), v16)); \
				} \
				const int8_t *xq = x[b].qs + 64 * c + 16 * k; \
				s += sc[2 * c] * DOT16(lo, xq) + sc[2 * c + 1] * DOT16(hi, xq + 32); \
			} \
		} \
		isum[b] = s; \
	} \
} \
TGT static void prefix##_q4_K(const void *w, const st_block_q8_K *x, int64_t nb, int32_t *isum, int32_t *imin) \
{ \
	prefix##_q45(0, w, sizeof(st_block_q4_K), x, nb, isum, imin); \
} \
TGT static void prefix##_q5_K(const void *w, const st_block_q8_K *x, int64_t nb, int32_t *isum, int32_t *imin) \
{ \
	prefix##_q45(1, w, sizeof(st_block_q5_K), x, nb, isum, imin); \
} \
TGT static void prefix##_q6_K(const void *w, const st_block_q8_K *x, int64_t nb, int32_t *isum, int32_t *imin) \
{ \
	(void)imin; \
	const st_block_q6_K *wb = w; \
	const uint8x16_t m4 = vdupq_n_u8(0x0F), m3 = vdupq_n_u8(3); \
	for (int64_t b = 0; b < nb; b++) { \
		const int8_t *sc = wb[b].scales; \
		int32_t s = 0, off = 0; \
		for (int g = 0; g < 16; g++) \
			off += sc[g] * x[b].bsums[g]; \
		for (int h = 0; h < 2; h++) { \
			const uint8_t *ql = wb[b].ql + 64 * h, *qh = wb[b].qh + 32 * h; \
			const int8_t *xq = x[b].qs + 128 * h; \
			const int8_t *s8 = sc + 8 * h; \
			for (int k = 0; k < 2; k++) {   /* elements 16k.. of each 32-quarter */ \
				const uint8x16_t l0 = vld1q_u8(ql + 16 * k), l1 = vld1q_u8(ql + 32 + 16 * k); \
				const uint8x16_t hb = vld1q_u8(qh + 16 * k); \
				const uint8x16_t q1 = vorrq_u8(vandq_u8(l0, m4), vshlq_n_u8(vandq_u8(hb, m3), 4)); \
				const uint8x16_t q2 = vorrq_u8(vandq_u8(l1, m4), vshlq_n_u8(vandq_u8(vshrq_n_u8(hb, 2), m3), 4)); \
				const uint8x16_t q3 = vorrq_u8(vshrq_n_u8(l0, 4), vshlq_n_u8(vandq_u8(vshrq_n_u8(hb, 4), m3), 4)); \
				const uint8x16_t q4 = vorrq_u8(vshrq_n_u8(l1, 4), vshlq_n_u8(vshrq_n_u8(hb, 6), 4)); \
				s += s8[0 + k] * DOT16(q1, xq + 16 * k) + s8[2 + k] * DOT16(q2, xq + 32 + 16 * k) + \
				     s8[4 + k] * DOT16(q3, xq + 64 + 16 * k) + s8[6 + k] * DOT16(q4, xq + 96 + 16 * k); \
			} \
		} \
		isum[b] = s - 32 * off; \
	} \
}

DEF_KQ(neon, NOTGT, dot16_neon)
DEF_KQ(sdot, TGT_DOT, dot16_sdot)

/* Whole-row dots: integer sums of up to 8 blocks, then kquant.h's float
 * rule for the 8 blocks in two 4-lane vectors (lanes b % 8; the same
 * multiplies and subtraction per block, no fused multiply-add, the same
 * final reduction): the scalar path's bits. */
static inline float f16_at(const uint8_t *p)
{
	uint16_t h;
	memcpy(&h, p, 2);
	return st_fp16_to_fp32(h);
}

#define ROW_ARM(name, TGT, ISUM, BSZ, DOFF, MIN) \
TGT static float name(const void *w, const st_block_q8_K *x, int64_t nb) \
{ \
	const uint8_t *wb = w; \
	float32x4_t acc0 = vdupq_n_f32(0.0f), acc1 = vdupq_n_f32(0.0f); \
	for (int64_t b0 = 0; b0 < nb; b0 += 8, wb += 8 * (BSZ), x += 8) { \
		const int n = nb - b0 < 8 ? (int)(nb - b0) : 8; \
		int32_t is[8] = { 0 }, im[8] = { 0 }; \
		float d[8] = { 0 }, dm[8] = { 0 }, dx[8] = { 0 }; \
		ISUM(wb, x, n, is, im); \
		for (int k = 0; k < n; k++) { \
			d[k] = f16_at(wb + (size_t)k * (BSZ) + (DOFF)); \
			dm[k] = MIN ? f16_at(wb + (size_t)k * (BSZ) + 2) : 0.0f; \
			dx[k] = x[k].d; \
		} \
		float32x4_t t0 = vmulq_f32(vmulq_f32(vld1q_f32(d), vld1q_f32(dx)), vcvtq_f32_s32(vld1q_s32(is))); \
		float32x4_t t1 = vmulq_f32(vmulq_f32(vld1q_f32(d + 4), vld1q_f32(dx + 4)), vcvtq_f32_s32(vld1q_s32(is + 4))); \
		if (MIN) { \
			t0 = vsubq_f32(t0, vmulq_f32(vmulq_f32(vld1q_f32(dm), vld1q_f32(dx)), vcvtq_f32_s32(vld1q_s32(im)))); \
			t1 = vsubq_f32(t1, vmulq_f32(vmulq_f32(vld1q_f32(dm + 4), vld1q_f32(dx + 4)), \
						     vcvtq_f32_s32(vld1q_s32(im + 4)))); \
		} \
		if (n == 8) { \
			acc0 = vaddq_f32(acc0, t0); \
			acc1 = vaddq_f32(acc1, t1); \
		} else {   /* lanes past the row's end get nothing added */ \
			const int32_t lane[8] = { 0, 1, 2, 3, 4, 5, 6, 7 }; \
			const uint32x4_t l0 = vcltq_s32(vld1q_s32(lane), vdupq_n_s32(n)); \
			const uint32x4_t l1 = vcltq_s32(vld1q_s32(lane + 4), vdupq_n_s32(n)); \
			acc0 = vbslq_f32(l0, vaddq_f32(acc0, t0), acc0); \
			acc1 = vbslq_f32(l1, vaddq_f32(acc1, t1), acc1); \
		} \
	} \
	/* ((l0+l4) + (l2+l6)) + ((l1+l5) + (l3+l7)) */ \
	const float32x4_t s = vaddq_f32(acc0, acc1); \
	return (vgetq_lane_f32(s, 0) + vgetq_lane_f32(s, 2)) + (vgetq_lane_f32(s, 1) + vgetq_lane_f32(s, 3)); \
}

ROW_ARM(neon_row_q4_K, NOTGT, neon_q4_K, sizeof(st_block_q4_K), 0, 1)
ROW_ARM(neon_row_q5_K, NOTGT, neon_q5_K, sizeof(st_block_q5_K), 0, 1)
ROW_ARM(neon_row_q6_K, NOTGT, neon_q6_K, sizeof(st_block_q6_K), 208, 0)
ROW_ARM(sdot_row_q4_K, TGT_DOT, sdot_q4_K, sizeof(st_block_q4_K), 0, 1)
ROW_ARM(sdot_row_q5_K, TGT_DOT, sdot_q5_K, sizeof(st_block_q5_K), 0, 1)
ROW_ARM(sdot_row_q6_K, TGT_DOT, sdot_q6_K, sizeof(st_block_q6_K), 208, 0)

st_kq_row_fn st_kq_row_kernel_arm(enum st_isa isa, uint32_t type)
{
	switch (isa) {
	case ST_ISA_NEON:
		return type == ST_TYPE_Q4_K ? neon_row_q4_K : type == ST_TYPE_Q5_K ? neon_row_q5_K :
		       type == ST_TYPE_Q6_K ? neon_row_q6_K : NULL;
	case ST_ISA_NEON_DOTPROD:
		return type == ST_TYPE_Q4_K ? sdot_row_q4_K : type == ST_TYPE_Q5_K ? sdot_row_q5_K :
		       type == ST_TYPE_Q6_K ? sdot_row_q6_K : NULL;
	default:
		return NULL;
	}
}

st_kq_isum_fn st_kq_isum_kernel_arm(enum st_isa isa, uint32_t type)
{
	switch (isa) {
	case ST_ISA_NEON:
		return type == ST_TYPE_Q4_K ? neon_q4_K : type == ST_TYPE_Q5_K ? neon_q5_K :
		       type == ST_TYPE_Q6_K ? neon_q6_K : NULL;
	case ST_ISA_NEON_DOTPROD:
		return type == ST_TYPE_Q4_K ? sdot_q4_K : type == ST_TYPE_Q5_K ? sdot_q5_K :
		       type == ST_TYPE_Q6_K ? sdot_q6_K : NULL;
	default:
		return NULL;
	}
}

#else

st_kq_isum_fn st_kq_isum_kernel_arm(enum st_isa isa, uint32_t type)
{
	(void)isa;
	(void)type;
	return NULL;
}

st_kq_row_fn st_kq_row_kernel_arm(enum st_isa isa, uint32_t type)
{
	(void)isa;
	(void)type;
	return NULL;
}

#endif
