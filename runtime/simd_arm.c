/* simd_arm.c: NEON matmul kernels for aarch64, with the dot-product
 * extension (SDOT) where the CPU has it (chosen at run time from hwcaps).
 * Quantized kernels follow the exact rule of quant_dot.h (per-block integer
 * sums, two f32 multiplies, 8 lanes b % 8, fixed reduction), so they give
 * the scalar reference's bits. */
#include "quant_dot.h"

#if defined(__aarch64__)

#include <arm_neon.h>
#include <string.h>

#define INLINE static inline __attribute__((always_inline))
#define TGT_DOT __attribute__((target("arch=armv8.2-a+dotprod")))
#define QT 4
#define FR 4
#define FT 4

/* 32 weights of block as int8 in two vectors (elements 0-15, 16-31). */
INLINE void q_unpack(uint32_t type, const uint8_t *blk, int8x16_t *w0, int8x16_t *w1)
{
	if (type == ST_TYPE_Q4_0) {
		uint8x16_t q = vld1q_u8(blk + 2);
		*w0 = vsubq_s8(vreinterpretq_s8_u8(vandq_u8(q, vdupq_n_u8(0x0F))), vdupq_n_s8(8));
		*w1 = vsubq_s8(vreinterpretq_s8_u8(vshrq_n_u8(q, 4)), vdupq_n_s8(8));
	} else {
		*w0 = vld1q_s8((const int8_t *)blk + 2);
		*w1 = vld1q_s8((const int8_t *)blk + 18);
	}
}

INLINE int32_t isum_neon(int8x16_t w0, int8x16_t w1, const int8_t *x)
{
	int8x16_t x0 = vld1q_s8(x), x1 = vld1q_s8(x + 16);
	int16x8_t p0 = vmull_s8(vget_low_s8(w0), vget_low_s8(x0));
	int16x8_t p1 = vmull_s8(vget_high_s8(w0), vget_high_s8(x0));
	int16x8_t p2 = vmull_s8(vget_low_s8(w1), vget_low_s8(x1));
	int16x8_t p3 = vmull_s8(vget_high_s8(w1), vget_high_s8(x1));
	int32x4_t s = vpaddlq_s16(p0);
	s = vpadalq_s16(s, p1);
	s = vpadalq_s16(s, p2);
	s = vpadalq_s16(s, p3);
	return vaddvq_s32(s);
}

TGT_DOT INLINE int32_t isum_dot(int8x16_t w0, int8x16_t w1, const int8_t *x)
{
	int32x4_t s = vdotq_s32(vdupq_n_s32(0), w0, vld1q_s8(x));
	s = vdotq_s32(s, w1, vld1q_s8(x + 16));
	return vaddvq_s32(s);
}

INLINE float hsum8_canon(float32x4_t lo, float32x4_t hi)
{
	/* ((l0+l4) + (l2+l6)) + ((l1+l5) + (l3+l7)) */
	float32x4_t s4 = vaddq_f32(lo, hi);
	float32x2_t s2 = vadd_f32(vget_low_f32(s4), vget_high_f32(s4));
	return vget_lane_f32(s2, 0) + vget_lane_f32(s2, 1);
}

#define DEF_QROW(prefix, TGT, ISUM) \
TGT INLINE void prefix##_quant_row(uint32_t type, const uint8_t *w, int64_t nb, const struct st_q8_act *a, \
				   int64_t t0, int nt, float *y, size_t ldy) \
{ \
	const size_t bsz = type == ST_TYPE_Q4_0 ? sizeof(st_block_q4_0) : sizeof(st_block_q8_0); \
	float32x4_t lo[QT], hi[QT]; \
	for (int t = 0; t < nt; t++) \
		lo[t] = hi[t] = vdupq_n_f32(0.0f); \
	for (int64_t b = 0; b < nb; b += 8) { \
		const int n = nb - b >= 8 ? 8 : (int)(nb - b); \
		int32_t is[QT][8]; \
		uint16_t dh[8]; \
		memset(is, 0, sizeof(is)); \
		memset(dh, 0, sizeof(dh)); \
		for (int k = 0; k < n; k++) { \
			const uint8_t *blk = w + (size_t)(b + k) * bsz; \
			int8x16_t w0, w1; \
			memcpy(&dh[k], blk, 2); \
			q_unpack(type, blk, &w0, &w1); \
			for (int t = 0; t < nt; t++) \
				is[t][k] = ISUM(w0, w1, a->qs + ((t0 + t) * nb + b + k) * 32); \
		} \
		uint16x8_t dv = vld1q_u16(dh); \
		float32x4_t dwl = vcvt_f32_f16(vreinterpret_f16_u16(vget_low_u16(dv))); \
		float32x4_t dwh = vcvt_f32_f16(vreinterpret_f16_u16(vget_high_u16(dv))); \
		for (int t = 0; t < nt; t++) { \
			float dx[8] = { 0 }; \
			memcpy(dx, a->d + (t0 + t) * nb + b, (size_t)n * 4); \
			float32x4_t scl = vmulq_f32(dwl, vld1q_f32(dx)), sch = vmulq_f32(dwh, vld1q_f32(dx + 4)); \
			lo[t] = vaddq_f32(lo[t], vmulq_f32(scl, vcvtq_f32_s32(vld1q_s32(is[t])))); \
			hi[t] = vaddq_f32(hi[t], vmulq_f32(sch, vcvtq_f32_s32(vld1q_s32(is[t] + 4)))); \
		} \
	} \
	for (int t = 0; t < nt; t++) \
		y[(size_t)t * ldy] = hsum8_canon(lo[t], hi[t]); \
} \
TGT static void prefix##_mm_quant(uint32_t type, const void *w, size_t ws, int64_t cols, int64_t nr, \
				  const struct st_mm_act *a, int64_t t0, int64_t nt, float *y, size_t ldy) \
{ \
	const int64_t nb = cols / 32; \
	for (int64_t r = 0; r < nr; r++) { \
		const uint8_t *wr = (const uint8_t *)w + (size_t)r * ws; \
		int64_t t = 0; \
		for (; t + QT <= nt; t += QT) \
			prefix##_quant_row(type, wr, nb, a->q, t0 + t, QT, y + (size_t)t * ldy + (size_t)r, ldy); \
		for (; t < nt; t++) \
			prefix##_quant_row(type, wr, nb, a->q, t0 + t, 1, y + (size_t)t * ldy + (size_t)r, ldy); \
	} \
} \
TGT static void prefix##_mm_q4_0(const void *w, size_t ws, int64_t cols, int64_t nr, \
				 const struct st_mm_act *a, int64_t t0, int64_t nt, float *y, size_t ldy) \
{ prefix##_mm_quant(ST_TYPE_Q4_0, w, ws, cols, nr, a, t0, nt, y, ldy); } \
TGT static void prefix##_mm_q8_0(const void *w, size_t ws, int64_t cols, int64_t nr, \
				 const struct st_mm_act *a, int64_t t0, int64_t nt, float *y, size_t ldy) \
{ prefix##_mm_quant(ST_TYPE_Q8_0, w, ws, cols, nr, a, t0, nt, y, ldy); }

#define NOTGT
DEF_QROW(neon, NOTGT, isum_neon)
DEF_QROW(dot, TGT_DOT, isum_dot)

/* ---- float weights ---------------------------------------------------- */

INLINE float32x4_t wload(uint32_t type, const uint8_t *w, int64_t c)
{
	if (type == ST_TYPE_F32)
		return vld1q_f32((const float *)w + c);
	uint16x4_t h = vld1_u16((const uint16_t *)w + c);
	if (type == ST_TYPE_F16)
		return vcvt_f32_f16(vreinterpret_f16_u16(h));
	return vreinterpretq_f32_u32(vshll_n_u16(h, 16));
}

static inline float w_scalar(uint32_t type, const uint8_t *w, int64_t c)
{
	if (type == ST_TYPE_F32)
		return ((const float *)w)[c];
	uint16_t h = ((const uint16_t *)w)[c];
	return type == ST_TYPE_F16 ? st_fp16_to_fp32(h) : st_bf16_to_fp32(h);
}

INLINE void float_tile(uint32_t type, const uint8_t *w, size_t ws, int64_t cols, int nr, const float *x,
		       size_t xs, int nt, float *y, size_t ldy)
{
	float32x4_t acc[FR][FT];
	for (int r = 0; r < nr; r++)
		for (int t = 0; t < nt; t++)
			acc[r][t] = vdupq_n_f32(0.0f);
	int64_t c = 0;
	for (; c + 4 <= cols; c += 4) {
		float32x4_t xv[FT];
		for (int t = 0; t < nt; t++)
			xv[t] = vld1q_f32(x + (size_t)t * xs + c);
		for (int r = 0; r < nr; r++) {
			float32x4_t wv = wload(type, w + (size_t)r * ws, c);
			for (int t = 0; t < nt; t++)
				acc[r][t] = vfmaq_f32(acc[r][t], wv, xv[t]);
		}
	}
	for (int r = 0; r < nr; r++)
		for (int t = 0; t < nt; t++) {
			float s = vaddvq_f32(acc[r][t]);
			for (int64_t cc = c; cc < cols; cc++)
				s += w_scalar(type, w + (size_t)r * ws, cc) * x[(size_t)t * xs + cc];
			y[(size_t)t * ldy + r] = s;
		}
}

static void neon_mm_float(uint32_t type, const void *w, size_t ws, int64_t cols, int64_t nr,
			  const struct st_mm_act *a, int64_t t0, int64_t nt, float *y, size_t ldy)
{
	const uint8_t *wb = w;
	const float *x = a->f + (size_t)t0 * a->f_stride;
	const size_t xs = a->f_stride;
	for (int64_t r = 0; r < nr; r += FR) {
		const int rr = nr - r >= FR ? FR : (int)(nr - r);
		for (int64_t t = 0; t < nt; t += FT) {
			const int tt = nt - t >= FT ? FT : (int)(nt - t);
			const uint8_t *wr = wb + (size_t)r * ws;
			const float *xt = x + (size_t)t * xs;
			float *yt = y + (size_t)t * ldy + (size_t)r;
			if (rr == FR && tt == FT)
				float_tile(type, wr, ws, cols, FR, xt, xs, FT, yt, ldy);
			else if (tt == 1)
				float_tile(type, wr, ws, cols, rr, xt, xs, 1, yt, ldy);
			else
				float_tile(type, wr, ws, cols, rr, xt, xs, tt, yt, ldy);
		}
	}
}

#define FLOAT_ENTRY(name, T) \
	static void name(const void *w, size_t ws, int64_t cols, int64_t nr, const struct st_mm_act *a, \
			 int64_t t0, int64_t nt, float *y, size_t ldy) \
	{ neon_mm_float(T, w, ws, cols, nr, a, t0, nt, y, ldy); }
FLOAT_ENTRY(neon_mm_f32, ST_TYPE_F32)
FLOAT_ENTRY(neon_mm_f16, ST_TYPE_F16)
FLOAT_ENTRY(neon_mm_bf16, ST_TYPE_BF16)

st_mm_fn st_mm_kernel_arm(enum st_isa isa, uint32_t type)
{
	if (isa != ST_ISA_NEON && isa != ST_ISA_NEON_DOTPROD)
		return NULL;
	const bool dot = isa == ST_ISA_NEON_DOTPROD;
	switch (type) {
	case ST_TYPE_F32: return neon_mm_f32;
	case ST_TYPE_F16: return neon_mm_f16;
	case ST_TYPE_BF16: return neon_mm_bf16;
	case ST_TYPE_Q8_0: return dot ? dot_mm_q8_0 : neon_mm_q8_0;
	case ST_TYPE_Q4_0: return dot ? dot_mm_q4_0 : neon_mm_q4_0;
	default: return NULL;
	}
}

/* ---- activation quantization (st_q8_act_quantize's exact arithmetic) --- */

static void neon_q8_quantize(struct st_q8_act *a, int64_t t, const float *x)
{
	int8_t *qs = a->qs + t * a->nb * 32;
	float *dd = a->d + t * a->nb;
	int32_t *ss = a->s + t * a->nb;
	const uint32x4_t signbit = vdupq_n_u32(0x80000000u);
	const uint32x4_t half = vreinterpretq_u32_f32(vdupq_n_f32(0.49999997f));
	for (int64_t b = 0; b < a->nb; b++, x += 32, qs += 32) {
		float32x4_t v[8];
		float32x4_t m = vdupq_n_f32(0.0f);
		for (int i = 0; i < 8; i++) {
			v[i] = vld1q_f32(x + 4 * i);
			m = vmaxq_f32(m, vabsq_f32(v[i]));
		}
		const float amax = vmaxvq_f32(m);
		const float d = amax / 127.0f;
		const float id = d != 0.0f ? 1.0f / d : 0.0f;
		dd[b] = st_fp16_to_fp32(st_fp32_to_fp16(d));
		int32x4_t sum = vdupq_n_s32(0);
		int16x8_t q16[4];
		for (int i = 0; i < 8; i += 2) {
			int32x4_t q[2];
			for (int j = 0; j < 2; j++) {
				float32x4_t sv = vmulq_n_f32(v[i + j], id);
				uint32x4_t h = vorrq_u32(half, vandq_u32(vreinterpretq_u32_f32(sv), signbit));
				q[j] = vcvtq_s32_f32(vaddq_f32(sv, vreinterpretq_f32_u32(h)));
				sum = vaddq_s32(sum, q[j]);
			}
			q16[i / 2] = vcombine_s16(vmovn_s32(q[0]), vmovn_s32(q[1]));
		}
		vst1q_s8(qs, vcombine_s8(vmovn_s16(q16[0]), vmovn_s16(q16[1])));
		vst1q_s8(qs + 16, vcombine_s8(vmovn_s16(q16[2]), vmovn_s16(q16[3])));
		ss[b] = vaddvq_s32(sum);
	}
}

st_q8_quantize_fn st_q8_quantizer_arm(enum st_isa isa)
{
	return isa == ST_ISA_NEON || isa == ST_ISA_NEON_DOTPROD ? neon_q8_quantize : NULL;
}

/* ---- attention helpers ------------------------------------------------ */

static void neon_vec_dots(const float *q, const float *k, size_t ks, int n, int hd, float scale, float *out)
{
	for (int j = 0; j < n; j++, k += ks) {
		float32x4_t a0 = vdupq_n_f32(0.0f), a1 = vdupq_n_f32(0.0f);
		int i = 0;
		for (; i + 8 <= hd; i += 8) {
			a0 = vfmaq_f32(a0, vld1q_f32(q + i), vld1q_f32(k + i));
			a1 = vfmaq_f32(a1, vld1q_f32(q + i + 4), vld1q_f32(k + i + 4));
		}
		float s = vaddvq_f32(vaddq_f32(a0, a1));
		for (; i < hd; i++)
			s += q[i] * k[i];
		out[j] = s * scale;
	}
}

static void neon_vec_wsum(const float *p, const float *v, size_t vs, int n, int hd, float *o)
{
	int i = 0;
	for (; i + 16 <= hd; i += 16) {
		float32x4_t a[4] = { vdupq_n_f32(0.0f), vdupq_n_f32(0.0f), vdupq_n_f32(0.0f), vdupq_n_f32(0.0f) };
		const float *vj = v + i;
		for (int j = 0; j < n; j++, vj += vs)
			for (int c = 0; c < 4; c++)
				a[c] = vfmaq_n_f32(a[c], vld1q_f32(vj + 4 * c), p[j]);
		for (int c = 0; c < 4; c++)
			vst1q_f32(o + i + 4 * c, a[c]);
	}
	for (; i < hd; i++) {
		float acc = 0.0f;
		for (int j = 0; j < n; j++)
			acc += p[j] * v[(size_t)j * vs + i];
		o[i] = acc;
	}
}

bool st_vec_ops_arm(enum st_isa isa, st_vec_dots_fn *dots, st_vec_wsum_fn *wsum)
{
	if (isa != ST_ISA_NEON && isa != ST_ISA_NEON_DOTPROD)
		return false;
	*dots = neon_vec_dots;
	*wsum = neon_vec_wsum;
	return true;
}

#else
st_q8_quantize_fn st_q8_quantizer_arm(enum st_isa isa)
{
	(void)isa;
	return NULL;
}

st_mm_fn st_mm_kernel_arm(enum st_isa isa, uint32_t type)
{
	(void)isa;
	(void)type;
	return NULL;
}

bool st_vec_ops_arm(enum st_isa isa, st_vec_dots_fn *dots, st_vec_wsum_fn *wsum)
{
	(void)isa;
	(void)dots;
	(void)wsum;
	return false;
}
#endif
