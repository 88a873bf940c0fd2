/* kquant_arm_row4.c: K-quant prefill kernels for NEON (and SDOT): one
 * weight row dotted with four tokens at once (kquant.h st_kq_row4_fn), so a
 * prompt reads and unpacks each weight block once per four tokens instead
 * of once per token.
 *
 * Each super-block's quants are unpacked once into 16 vectors of 16
 * unsigned bytes in element order (Q4_K 0..15, Q5_K 0..31, Q6_K 0..63;
 * vector v holds elements 16v..16v+15), then per token the integer sums of
 * kquant.h are formed exactly (SDOT, or widening multiplies whose int16
 * pairs stay below 2*63*127), and the float rule is kquant_arm.c's ROW_ARM
 * (same multiplies, lanes b % 8, same reduction): every output has the
 * scalar reference's bits. */
#include "kquant.h"

#if defined(__aarch64__)

#include <arm_neon.h>
#include <string.h>

#define INLINE static inline __attribute__((always_inline))
#define TGT_DOT __attribute__((target("arch=armv8.2-a+dotprod")))
#define NOTGT
#define NT 4

/* acc + the 4-lane partial sums of q[i] * x[i] (16 bytes). */
INLINE int32x4_t dotv_neon(int32x4_t acc, uint8x16_t q, const int8_t *x)
{
	const int8x16_t a = vreinterpretq_s8_u8(q), b = vld1q_s8(x);
	int16x8_t p = vmull_s8(vget_low_s8(a), vget_low_s8(b));
	p = vmlal_high_s8(p, a, b);
	return vpadalq_s16(acc, p);
}

TGT_DOT INLINE int32x4_t dotv_sdot(int32x4_t acc, uint8x16_t q, const int8_t *x)
{
	return vdotq_s32(acc, vreinterpretq_s8_u8(q), vld1q_s8(x));
}

/* Q4_K/Q5_K block -> q[16] in element order (sub-block j = q[2j], q[2j+1]). */
INLINE void unpack_q45(int five, const uint8_t *wb, uint8x16_t q[16])
{
	const uint8x16_t m4 = vdupq_n_u8(0x0F), v16 = vdupq_n_u8(16);
	const uint8_t *qs = five ? ((const st_block_q5_K *)wb)->qs : ((const st_block_q4_K *)wb)->qs;
	const uint8_t *qh = ((const st_block_q5_K *)wb)->qh;
	for (int c = 0; c < 4; c++)
		for (int k = 0; k < 2; k++) {
			const uint8x16_t v = vld1q_u8(qs + 32 * c + 16 * k);
			uint8x16_t lo = vandq_u8(v, m4), hi = vshrq_n_u8(v, 4);
			if (five) {
				const uint8x16_t hb = vld1q_u8(qh + 16 * k);
				lo = vorrq_u8(lo, vandq_u8(vtstq_u8(hb, vdupq_n_u8((uint8_t)(1u << (2 * c)))), v16));
				hi = vorrq_u8(hi, vandq_u8(vtstq_u8(hb, vdupq_n_u8((uint8_t)(2u << (2 * c)))), v16));
			}
			q[4 * c + k] = lo;        /* elements 64c + 16k .. */
			q[4 * c + 2 + k] = hi;    /* elements 64c + 32 + 16k .. */
		}
}

/* Q6_K block -> q[16] (0..63, the -32 is applied through the bsums). */
INLINE void unpack_q6(const st_block_q6_K *b, uint8x16_t q[16])
{
	const uint8x16_t m4 = vdupq_n_u8(0x0F), m3 = vdupq_n_u8(3);
	for (int h = 0; h < 2; h++) {
		const uint8_t *ql = b->ql + 64 * h, *qh = b->qh + 32 * h;
		for (int k = 0; k < 2; k++) {
			const uint8x16_t l0 = vld1q_u8(ql + 16 * k), l1 = vld1q_u8(ql + 32 + 16 * k);
			const uint8x16_t hb = vld1q_u8(qh + 16 * k);
			q[8 * h + k] = vorrq_u8(vandq_u8(l0, m4), vshlq_n_u8(vandq_u8(hb, m3), 4));
			q[8 * h + 2 + k] = vorrq_u8(vandq_u8(l1, m4), vshlq_n_u8(vandq_u8(vshrq_n_u8(hb, 2), m3), 4));
			q[8 * h + 4 + k] = vorrq_u8(vshrq_n_u8(l0, 4), vshlq_n_u8(vandq_u8(vshrq_n_u8(hb, 4), m3), 4));
			q[8 * h + 6 + k] = vorrq_u8(vshrq_n_u8(l1, 4), vshlq_n_u8(vshrq_n_u8(hb, 6), 4));
		}
	}
}

static inline float f16_at(const uint8_t *p)
{
	uint16_t h;
	memcpy(&h, p, 2);
	return st_fp16_to_fp32(h);
}

/* Integer sums of one block for NT tokens: is[t][k], im[t][k] (Q6_K: the
 * -32 offset folded into is, im 0). */
#define DEF_ISUM4(prefix, TGT, DOTV) \
TGT INLINE void prefix##_isum4(uint32_t type, const uint8_t *wb, const st_block_q8_K *const *xs, int64_t b, \
			       int k, int32_t is[NT][8], int32_t im[NT][8]) \
{ \
	uint8x16_t q[16]; \
	int32_t sc[16]; \
	if (type == ST_TYPE_Q6_K) { \
		const st_block_q6_K *blk = (const st_block_q6_K *)wb; \
		unpack_q6(blk, q); \
		for (int g = 0; g < 16; g++) \
			sc[g] = blk->scales[g]; \
	} else { \
		uint8_t s8[8], m8[8]; \
		for (int j = 0; j < 8; j++) \
			st_kq_scale_min(j, ((const st_block_q4_K *)wb)->scales, &s8[j], &m8[j]); \
		unpack_q45(type == ST_TYPE_Q5_K, wb, q); \
		for (int j = 0; j < 8; j++) \
			sc[j] = s8[j], sc[8 + j] = m8[j]; \
	} \
	for (int t = 0; t < NT; t++) { \
		const st_block_q8_K *x = &xs[t][b]; \
		int32x4_t acc = vdupq_n_s32(0); \
		if (type == ST_TYPE_Q6_K) { \
			int32_t off = 0; \
			for (int g = 0; g < 16; g++) { \
				acc = vmlaq_n_s32(acc, DOTV(vdupq_n_s32(0), q[g], x->qs + 16 * g), sc[g]); \
				off += sc[g] * x->bsums[g]; \
			} \
			is[t][k] = vaddvq_s32(acc) - 32 * off; \
			im[t][k] = 0; \
		} else { \
			int32_t m = 0; \
			for (int j = 0; j < 8; j++) { \
				int32x4_t s = DOTV(vdupq_n_s32(0), q[2 * j], x->qs + 32 * j); \
				s = DOTV(s, q[2 * j + 1], x->qs + 32 * j + 16); \
				acc = vmlaq_n_s32(acc, s, sc[j]); \
				m += sc[8 + j] * (x->bsums[2 * j] + x->bsums[2 * j + 1]); \
			} \
			is[t][k] = vaddvq_s32(acc); \
			im[t][k] = m; \
		} \
	} \
}

DEF_ISUM4(neon, NOTGT, dotv_neon)
DEF_ISUM4(sdot, TGT_DOT, dotv_sdot)

/* The row against NT tokens: chunks of 8 blocks, ROW_ARM's float rule per
 * token. */
#define ROW4_ARM(name, TGT, ISUM4, T, BSZ, DOFF, MIN) \
TGT static void name(const void *w, const st_block_q8_K *const *xs, int64_t nb, float *y) \
{ \
	const uint8_t *wb = w; \
	float32x4_t acc0[NT], acc1[NT]; \
	for (int t = 0; t < NT; t++) \
		acc0[t] = acc1[t] = vdupq_n_f32(0.0f); \
	for (int64_t b0 = 0; b0 < nb; b0 += 8, wb += 8 * (BSZ)) { \
		const int n = nb - b0 < 8 ? (int)(nb - b0) : 8; \
		int32_t is[NT][8] = { { 0 } }, im[NT][8] = { { 0 } }; \
		float d[8] = { 0 }, dm[8] = { 0 }; \
		for (int k = 0; k < n; k++) { \
			const uint8_t *blk = wb + (size_t)k * (BSZ); \
			ISUM4(T, blk, xs, b0 + k, k, is, im); \
			d[k] = f16_at(blk + (DOFF)); \
			dm[k] = MIN ? f16_at(blk + 2) : 0.0f; \
		} \
		const int32_t lane[8] = { 0, 1, 2, 3, 4, 5, 6, 7 }; \
		const uint32_t nn = (uint32_t)n; \
		const uint32x4_t l0 = vcltq_u32(vreinterpretq_u32_s32(vld1q_s32(lane)), vdupq_n_u32(nn)); \
		const uint32x4_t l1 = vcltq_u32(vreinterpretq_u32_s32(vld1q_s32(lane + 4)), vdupq_n_u32(nn)); \
		for (int t = 0; t < NT; t++) { \
			float dx[8] = { 0 }; \
			for (int k = 0; k < n; k++) \
				dx[k] = xs[t][b0 + k].d; \
			float32x4_t t0 = vmulq_f32(vmulq_f32(vld1q_f32(d), vld1q_f32(dx)), vcvtq_f32_s32(vld1q_s32(is[t]))); \
			float32x4_t t1 = vmulq_f32(vmulq_f32(vld1q_f32(d + 4), vld1q_f32(dx + 4)), \
						   vcvtq_f32_s32(vld1q_s32(is[t] + 4))); \
			if (MIN) { \
				t0 = vsubq_f32(t0, vmulq_f32(vmulq_f32(vld1q_f32(dm), vld1q_f32(dx)), \
							     vcvtq_f32_s32(vld1q_s32(im[t])))); \
				t1 = vsubq_f32(t1, vmulq_f32(vmulq_f32(vld1q_f32(dm + 4), vld1q_f32(dx + 4)), \
							     vcvtq_f32_s32(vld1q_s32(im[t] + 4)))); \
			} \
			/* lanes past the row's end get nothing added */ \
			acc0[t] = vbslq_f32(l0, vaddq_f32(acc0[t], t0), acc0[t]); \
			acc1[t] = vbslq_f32(l1, vaddq_f32(acc1[t], t1), acc1[t]); \
		} \
	} \
	for (int t = 0; t < NT; t++) { \
		/* ((l0+l4) + (l2+l6)) + ((l1+l5) + (l3+l7)) */ \
		const float32x4_t s = vaddq_f32(acc0[t], acc1[t]); \
		y[t] = (vgetq_lane_f32(s, 0) + vgetq_lane_f32(s, 2)) + (vgetq_lane_f32(s, 1) + vgetq_lane_f32(s, 3)); \
	} \
}

ROW4_ARM(neon_row4_q4_K, NOTGT, neon_isum4, ST_TYPE_Q4_K, sizeof(st_block_q4_K), 0, 1)
ROW4_ARM(neon_row4_q5_K, NOTGT, neon_isum4, ST_TYPE_Q5_K, sizeof(st_block_q5_K), 0, 1)
ROW4_ARM(neon_row4_q6_K, NOTGT, neon_isum4, ST_TYPE_Q6_K, sizeof(st_block_q6_K), 208, 0)
ROW4_ARM(sdot_row4_q4_K, TGT_DOT, sdot_isum4, ST_TYPE_Q4_K, sizeof(st_block_q4_K), 0, 1)
ROW4_ARM(sdot_row4_q5_K, TGT_DOT, sdot_isum4, ST_TYPE_Q5_K, sizeof(st_block_q5_K), 0, 1)
ROW4_ARM(sdot_row4_q6_K, TGT_DOT, sdot_isum4, ST_TYPE_Q6_K, sizeof(st_block_q6_K), 208, 0)

st_kq_row4_fn st_kq_row4_kernel_arm(enum st_isa isa, uint32_t type)
{
	switch (isa) {
	case ST_ISA_NEON:
		return type == ST_TYPE_Q4_K ? neon_row4_q4_K : type == ST_TYPE_Q5_K ? neon_row4_q5_K :
		       type == ST_TYPE_Q6_K ? neon_row4_q6_K : NULL;
	case ST_ISA_NEON_DOTPROD:
		return type == ST_TYPE_Q4_K ? sdot_row4_q4_K : type == ST_TYPE_Q5_K ? sdot_row4_q5_K :
		       type == ST_TYPE_Q6_K ? sdot_row4_q6_K : NULL;
	default:
		return NULL;
	}
}

#else

st_kq_row4_fn st_kq_row4_kernel_arm(enum st_isa isa, uint32_t type)
{
	(void)isa;
	(void)type;
	return NULL;
}

#endif
