/* simd_x86.c: matmul kernels for AVX2, AVX-512 and AVX-512 VNNI.
 *
 * Every function is compiled for its ISA with a target attribute and
 * chosen at run time (cpu_features.c), so one binary runs on any x86-64.
 * Quantized kernels follow the exact rule of quant_dot.h: per-block integer
 * sums are reduced exactly (a transpose-and-add tree gives 8 blocks' sums in
 * the 8 lanes of one vector), scaled with two multiplies and added into the
 * 8 lanes b % 8, so they reproduce the scalar reference bit for bit.
 * Q4_0 nibbles are used unsigned (0..15) and the -8 offset is applied as
 * -8 * sum(qx) per block; Q8_0 on VNNI uses w + 128 and -128 * sum(qx). */
#include "quant_dot.h"

#if defined(__x86_64__)

#include <immintrin.h>
#include <string.h>

#define TGT_AVX2 __attribute__((target("avx2,fma,f16c")))
#define TGT_AVX512 __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512dq")))
#define TGT_VNNI __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512dq,avx512vnni")))
#define INLINE static inline __attribute__((always_inline))

/* Largest micro-tiles. */
#define QT 4          /* quantized, AVX2: 1 row x QT tokens */
#define QT512 4       /* quantized, AVX-512 (8 measured no faster on Zen 4) */

static inline uint16_t ld16(const uint8_t *p)
{
	uint16_t v;
	memcpy(&v, p, 2);
	return v;
}

/* ===================================================================== */
/* Shared quantized pieces                                                 */

/* 8 fp16 weight scales of blocks at stride bsz; missing ones (k >= n) 0. */
TGT_AVX2 INLINE __m256 load_dw8(const uint8_t *wb, size_t bsz, int n)
{
	if (n == 8)
		return _mm256_cvtph_ps(_mm_setr_epi16((short)ld16(wb), (short)ld16(wb + bsz), (short)ld16(wb + 2 * bsz),
						      (short)ld16(wb + 3 * bsz), (short)ld16(wb + 4 * bsz),
						      (short)ld16(wb + 5 * bsz), (short)ld16(wb + 6 * bsz),
						      (short)ld16(wb + 7 * bsz)));
	uint16_t h[8] = { 0 };
	for (int k = 0; k < n; k++)
		h[k] = ld16(wb + (size_t)k * bsz);
	return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)h));
}

/* 8 floats / int32 from p, the ones past n read as 0. */
TGT_AVX2 INLINE __m256 load8f(const float *p, int n)
{
	if (n == 8)
		return _mm256_loadu_ps(p);
	float t[8] = { 0 };
	memcpy(t, p, (size_t)n * 4);
	return _mm256_loadu_ps(t);
}

TGT_AVX2 INLINE __m256i load8i(const int32_t *p, int n)
{
	if (n == 8)
		return _mm256_loadu_si256((const __m256i *)p);
	int32_t t[8] = { 0 };
	memcpy(t, p, (size_t)n * 4);
	return _mm256_loadu_si256((const __m256i *)t);
}

TGT_AVX2 static inline float hsum8_canon(__m256 acc)
{
	/* ((l0+l4) + (l2+l6)) + ((l1+l5) + (l3+l7)) */
	__m128 s4 = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
	__m128 s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
	__m128 s1 = _mm_add_ss(s2, _mm_shuffle_ps(s2, s2, 1));
	return _mm_cvtss_f32(s1);
}

/* acc += (dw * dx) * float(isum - (s << shift)), lanes = blocks b..b+7. */
TGT_AVX2 INLINE __m256 q_accum(__m256 acc, __m256 dw, __m256i is, const struct st_q8_act *a, int64_t o, int n,
			       int shift)
{
	if (shift)
		is = _mm256_sub_epi32(is, _mm256_slli_epi32(load8i(a->s + o, n), shift));
	__m256 sc = _mm256_mul_ps(dw, load8f(a->d + o, n));
	return _mm256_add_ps(acc, _mm256_mul_ps(sc, _mm256_cvtepi32_ps(is)));
}

/* ===================================================================== */
/* AVX2 quantized: one block per ymm, hadd tree per 8 blocks.              */

TGT_AVX2 INLINE __m256i avx2_wblock(uint32_t type, const uint8_t *blk)
{
	if (type == ST_TYPE_Q4_0) {   /* unsigned nibbles 0..15 */
		__m128i q = _mm_loadu_si128((const __m128i *)(blk + 2));
		return _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(q, 4), q), _mm256_set1_epi8(0x0F));
	}
	return _mm256_loadu_si256((const __m256i *)(blk + 2));
}

/* 8 int32 partial sums of one block's products. */
TGT_AVX2 INLINE __m256i avx2_bdot(uint32_t type, __m256i w, const int8_t *xq)
{
	__m256i x = _mm256_loadu_si256((const __m256i *)xq);
	__m256i p = type == ST_TYPE_Q4_0 ? _mm256_maddubs_epi16(w, x)
					  : _mm256_maddubs_epi16(_mm256_sign_epi8(w, w), _mm256_sign_epi8(x, w));
	return _mm256_madd_epi16(p, _mm256_set1_epi16(1));
}

TGT_AVX2 INLINE void avx2_group(uint32_t type, const uint8_t *wg, int n, const struct st_q8_act *a,
				int64_t t0, int nt, int64_t nb, int64_t b, __m256 *acc)
{
	const size_t bsz = type == ST_TYPE_Q4_0 ? sizeof(st_block_q4_0) : sizeof(st_block_q8_0);
	__m256i g[QT][2];
	for (int half = 0; half < 2; half++) {
		__m256i h[QT][2];
		for (int p = 0; p < 2; p++) {
			const int k = half * 4 + p * 2;
			const __m256i z = _mm256_setzero_si256();
			__m256i w0 = k < n ? avx2_wblock(type, wg + (size_t)k * bsz) : z;
			__m256i w1 = k + 1 < n ? avx2_wblock(type, wg + (size_t)(k + 1) * bsz) : z;
			for (int t = 0; t < nt; t++) {
				const int8_t *xq = a->qs + ((t0 + t) * nb + b + k) * 32;
				__m256i v0 = k < n ? avx2_bdot(type, w0, xq) : z;
				__m256i v1 = k + 1 < n ? avx2_bdot(type, w1, xq + 32) : z;
				h[t][p] = _mm256_hadd_epi32(v0, v1);
			}
		}
		for (int t = 0; t < nt; t++)
			g[t][half] = _mm256_hadd_epi32(h[t][0], h[t][1]);
	}
	const __m256 dw = load_dw8(wg, bsz, n);
	for (int t = 0; t < nt; t++) {
		__m256i is = _mm256_add_epi32(_mm256_permute2x128_si256(g[t][0], g[t][1], 0x20),
					      _mm256_permute2x128_si256(g[t][0], g[t][1], 0x31));
		acc[t] = q_accum(acc[t], dw, is, a, (t0 + t) * nb + b, n, type == ST_TYPE_Q4_0 ? 3 : 0);
	}
}

TGT_AVX2 INLINE void avx2_quant_row(uint32_t type, const uint8_t *w, int64_t nb, const struct st_q8_act *a,
				    int64_t t0, int nt, float *y, size_t ldy)
{
	const size_t bsz = type == ST_TYPE_Q4_0 ? sizeof(st_block_q4_0) : sizeof(st_block_q8_0);
	__m256 acc[QT];
	for (int t = 0; t < nt; t++)
		acc[t] = _mm256_setzero_ps();
	int64_t b = 0;
	for (; b + 8 <= nb; b += 8)
		avx2_group(type, w + (size_t)b * bsz, 8, a, t0, nt, nb, b, acc);
	if (b < nb)
		avx2_group(type, w + (size_t)b * bsz, (int)(nb - b), a, t0, nt, nb, b, acc);
	for (int t = 0; t < nt; t++)
		y[(size_t)t * ldy] = hsum8_canon(acc[t]);
}

/* Rows x tokens in 1 x QT micro-tiles; type is a compile-time constant. */
#define QUANT_DRIVER(prefix, TGT, rowfn, QTV) \
	TGT INLINE void prefix##_mm_quant(uint32_t type, const void *w, size_t ws, int64_t cols, int64_t nr, \
					  const struct st_mm_act *a, int64_t t0, int64_t nt, float *y, size_t ldy) \
	{ \
		const int64_t nb = cols / 32; \
		for (int64_t r = 0; r < nr; r++) { \
			const uint8_t *wr = (const uint8_t *)w + (size_t)r * ws; \
			int64_t t = 0; \
			for (; t + QTV <= nt; t += QTV) \
				rowfn(type, wr, nb, a->q, t0 + t, QTV, y + (size_t)t * ldy + (size_t)r, ldy); \
			switch (nt - t) { \
			case 7: if (7 < QTV) rowfn(type, wr, nb, a->q, t0 + t, 7, y + (size_t)t * ldy + (size_t)r, ldy); break; \
			case 6: if (6 < QTV) rowfn(type, wr, nb, a->q, t0 + t, 6, y + (size_t)t * ldy + (size_t)r, ldy); break; \
			case 5: if (5 < QTV) rowfn(type, wr, nb, a->q, t0 + t, 5, y + (size_t)t * ldy + (size_t)r, ldy); break; \
			case 4: if (4 < QTV) rowfn(type, wr, nb, a->q, t0 + t, 4, y + (size_t)t * ldy + (size_t)r, ldy); break; \
			case 3: rowfn(type, wr, nb, a->q, t0 + t, 3, y + (size_t)t * ldy + (size_t)r, ldy); break; \
			case 2: rowfn(type, wr, nb, a->q, t0 + t, 2, y + (size_t)t * ldy + (size_t)r, ldy); break; \
			case 1: rowfn(type, wr, nb, a->q, t0 + t, 1, y + (size_t)t * ldy + (size_t)r, ldy); break; \
			default: break; \
			} \
		} \
	} \
	TGT static void prefix##_mm_q4_0(const void *w, size_t ws, int64_t cols, int64_t nr, \
					  const struct st_mm_act *a, int64_t t0, int64_t nt, float *y, size_t ldy) \
	{ prefix##_mm_quant(ST_TYPE_Q4_0, w, ws, cols, nr, a, t0, nt, y, ldy); } \
	TGT static void prefix##_mm_q8_0(const void *w, size_t ws, int64_t cols, int64_t nr, \
					  const struct st_mm_act *a, int64_t t0, int64_t nt, float *y, size_t ldy) \
	{ prefix##_mm_quant(ST_TYPE_Q8_0, w, ws, cols, nr, a, t0, nt, y, ldy); }

QUANT_DRIVER(avx2, TGT_AVX2, avx2_quant_row, QT)

/* ===================================================================== */
/* AVX-512 / VNNI quantized: blocks k and k+1 of a group share one zmm     */
/* (their activations are one contiguous 64-byte load).                    */

#define DEF_Q512(prefix, TGT, VNNI) \
TGT INLINE __m512i prefix##_pair32(const uint8_t *p0, const uint8_t *p1, bool have1) \
{ \
	__m256i lo = _mm256_loadu_si256((const __m256i *)p0); \
	__m256i hi = have1 ? _mm256_loadu_si256((const __m256i *)p1) : _mm256_setzero_si256(); \
	return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1); \
} \
/* weights of blocks k | k+1: Q4_0 as unsigned nibbles, Q8_0 as int8 (VNNI: +128) */ \
TGT INLINE __m512i prefix##_wpair(uint32_t type, const uint8_t *b0, const uint8_t *b1, bool have1) \
{ \
	if (type == ST_TYPE_Q4_0) { \
		__m256i q = _mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)(b0 + 2))); \
		if (have1) \
			q = _mm256_inserti128_si256(q, _mm_loadu_si128((const __m128i *)(b1 + 2)), 1); \
		else \
			q = _mm256_zextsi128_si256(_mm256_castsi256_si128(q)); \
		__m512i z = _mm512_castsi256_si512(q); \
		z = _mm512_shuffle_i64x2(z, z, _MM_SHUFFLE(1, 1, 0, 0)); \
		z = _mm512_srlv_epi64(z, _mm512_set_epi64(4, 4, 0, 0, 4, 4, 0, 0)); \
		return _mm512_and_si512(z, _mm512_set1_epi8(0x0F)); \
	} \
	__m512i z = prefix##_pair32(b0 + 2, b1 + 2, have1); \
	return VNNI ? _mm512_xor_si512(z, _mm512_set1_epi8((char)0x80)) : z; \
} \
TGT INLINE __m512i prefix##_pdot(uint32_t type, __m512i w, __m512i x) \
{ \
	if (VNNI) \
		return Q512_DP_U8(w, x); \
	if (type == ST_TYPE_Q4_0) \
		return _mm512_madd_epi16(_mm512_maddubs_epi16(w, x), _mm512_set1_epi16(1)); \
	__m512i sx = _mm512_mask_sub_epi8(x, _mm512_movepi8_mask(w), _mm512_setzero_si512(), x); \
	return _mm512_madd_epi16(_mm512_maddubs_epi16(_mm512_abs_epi8(w), sx), _mm512_set1_epi16(1)); \
} \
TGT INLINE void prefix##_group(uint32_t type, const uint8_t *wg, int n, const struct st_q8_act *a, \
			       int64_t t0, int nt, int64_t nb, int64_t b, __m256 *acc) \
{ \
	const size_t bsz = type == ST_TYPE_Q4_0 ? sizeof(st_block_q4_0) : sizeof(st_block_q8_0); \
	__m512i u[QT512][2]; \
	for (int p = 0; p < 2; p++) { \
		__m512i zz[QT512][2]; \
		for (int q = 0; q < 2; q++) { \
			const int k = (p * 2 + q) * 2;   /* blocks k, k+1 share a zmm */ \
			if (k >= n) { \
				for (int t = 0; t < nt; t++) \
					zz[t][q] = _mm512_setzero_si512(); \
				continue; \
			} \
			const bool h1 = k + 1 < n; \
			__m512i wq = prefix##_wpair(type, wg + (size_t)k * bsz, wg + (size_t)(k + 1) * bsz, h1); \
			for (int t = 0; t < nt; t++) { \
				const int8_t *xq = a->qs + ((t0 + t) * nb + b + k) * 32; \
				__m512i x = h1 ? _mm512_loadu_si512((const void *)xq) \
					       : _mm512_maskz_loadu_epi8((__mmask64)0xFFFFFFFFull, xq); \
				zz[t][q] = prefix##_pdot(type, wq, x); \
			} \
		} \
		for (int t = 0; t < nt; t++) \
			u[t][p] = _mm512_add_epi32(_mm512_unpacklo_epi32(zz[t][0], zz[t][1]), \
						   _mm512_unpackhi_epi32(zz[t][0], zz[t][1])); \
	} \
	const __m256 dw = load_dw8(wg, bsz, n); \
	const int shift = type == ST_TYPE_Q4_0 ? 3 : (VNNI ? 7 : 0); \
	for (int t = 0; t < nt; t++) { \
		__m512i w4 = _mm512_add_epi32(_mm512_unpacklo_epi64(u[t][0], u[t][1]), \
					      _mm512_unpackhi_epi64(u[t][0], u[t][1])); \
		__m512i s = _mm512_add_epi32(w4, _mm512_shuffle_i32x4(w4, w4, _MM_SHUFFLE(2, 3, 0, 1))); \
		__m256i is = _mm512_castsi512_si256(_mm512_shuffle_i32x4(s, s, _MM_SHUFFLE(0, 0, 2, 0))); \
		/* lanes hold blocks 0 2 4 6 1 3 5 7: back to block order */ \
		is = _mm256_permutevar8x32_epi32(is, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7)); \
		acc[t] = q_accum(acc[t], dw, is, a, (t0 + t) * nb + b, n, shift); \
	} \
} \
TGT INLINE void prefix##_quant_row(uint32_t type, const uint8_t *w, int64_t nb, const struct st_q8_act *a, \
				   int64_t t0, int nt, float *y, size_t ldy) \
{ \
	const size_t bsz = type == ST_TYPE_Q4_0 ? sizeof(st_block_q4_0) : sizeof(st_block_q8_0); \
	__m256 acc[QT512]; \
	for (int t = 0; t < nt; t++) \
		acc[t] = _mm256_setzero_ps(); \
	int64_t b = 0; \
	for (; b + 8 <= nb; b += 8) \
		prefix##_group(type, w + (size_t)b * bsz, 8, a, t0, nt, nb, b, acc); \
	if (b < nb) \
		prefix##_group(type, w + (size_t)b * bsz, (int)(nb - b), a, t0, nt, nb, b, acc); \
	for (int t = 0; t < nt; t++) \
		y[(size_t)t * ldy] = hsum8_canon(acc[t]); \
}

/* Without VNNI this is never reached (VNNI == 0 folds it away). */
#define Q512_DP_U8(u, s) _mm512_madd_epi16(_mm512_maddubs_epi16((u), (s)), _mm512_set1_epi16(1))
DEF_Q512(avx512, TGT_AVX512, 0)
#undef Q512_DP_U8
#define Q512_DP_U8(u, s) _mm512_dpbusd_epi32(_mm512_setzero_si512(), (u), (s))
DEF_Q512(vnni, TGT_VNNI, 1)
#undef Q512_DP_U8

QUANT_DRIVER(avx512, TGT_AVX512, avx512_quant_row, QT512)
QUANT_DRIVER(vnni, TGT_VNNI, vnni_quant_row, QT512)

/* ===================================================================== */
/* Float weights (F32, F16, BF16) against f32 activations.                 */
/* Micro-tile FR rows x FT tokens; every (row, token) output follows the    */
/* same op sequence whatever the tile, so row/token splits do not change    */
/* bits.                                                                    */

#define FR 4
#define FT_AVX2 2
#define FT_512 4

TGT_AVX2 INLINE __m256 avx2_wload(uint32_t type, const uint8_t *w, int64_t c)
{
	if (type == ST_TYPE_F32)
		return _mm256_loadu_ps((const float *)w + c);
	__m128i h = _mm_loadu_si128((const __m128i *)((const uint16_t *)w + c));
	if (type == ST_TYPE_F16)
		return _mm256_cvtph_ps(h);
	return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}

TGT_AVX2 static inline float hsum256(__m256 v)
{
	__m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
	s = _mm_add_ps(s, _mm_movehl_ps(s, s));
	s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
	return _mm_cvtss_f32(s);
}

static inline float w_scalar(uint32_t type, const uint8_t *w, int64_t c)
{
	if (type == ST_TYPE_F32)
		return ((const float *)w)[c];
	uint16_t h = ((const uint16_t *)w)[c];
	return type == ST_TYPE_F16 ? st_fp16_to_fp32(h) : st_bf16_to_fp32(h);
}

TGT_AVX2 INLINE void avx2_float_tile(uint32_t type, const uint8_t *w, size_t ws, int64_t cols, int nr,
				     const float *x, size_t xs, int nt, float *y, size_t ldy)
{
	__m256 acc[FR][FT_AVX2];
	for (int r = 0; r < nr; r++)
		for (int t = 0; t < nt; t++)
			acc[r][t] = _mm256_setzero_ps();
	int64_t c = 0;
	for (; c + 8 <= cols; c += 8) {
		__m256 xv[FT_AVX2];
		for (int t = 0; t < nt; t++)
			xv[t] = _mm256_loadu_ps(x + (size_t)t * xs + c);
		for (int r = 0; r < nr; r++) {
			__m256 wv = avx2_wload(type, w + (size_t)r * ws, c);
			for (int t = 0; t < nt; t++)
				acc[r][t] = _mm256_fmadd_ps(wv, xv[t], acc[r][t]);
		}
	}
	for (int r = 0; r < nr; r++)
		for (int t = 0; t < nt; t++) {
			float s = hsum256(acc[r][t]);
			for (int64_t cc = c; cc < cols; cc++)
				s += w_scalar(type, w + (size_t)r * ws, cc) * x[(size_t)t * xs + cc];
			y[(size_t)t * ldy + r] = s;
		}
}

TGT_AVX512 INLINE __m512 avx512_wload(uint32_t type, const uint8_t *w, int64_t c, __mmask16 m, bool full)
{
	if (type == ST_TYPE_F32)
		return full ? _mm512_loadu_ps((const float *)w + c) : _mm512_maskz_loadu_ps(m, (const float *)w + c);
	__m256i h = full ? _mm256_loadu_si256((const __m256i *)((const uint16_t *)w + c))
			 : _mm256_maskz_loadu_epi16(m, (const uint16_t *)w + c);
	if (type == ST_TYPE_F16)
		return _mm512_cvtph_ps(h);
	return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

/* One 16-column step of the tile (full: no mask). */
TGT_AVX512 INLINE void avx512_float_step(uint32_t type, const uint8_t *w, size_t ws, int64_t c, int nr,
					 const float *x, size_t xs, int nt, __m512 acc[FR][FT_512], __mmask16 m,
					 bool full)
{
	__m512 xv[FT_512];
	for (int t = 0; t < nt; t++)
		xv[t] = full ? _mm512_loadu_ps(x + (size_t)t * xs + c) : _mm512_maskz_loadu_ps(m, x + (size_t)t * xs + c);
	for (int r = 0; r < nr; r++) {
		__m512 wv = avx512_wload(type, w + (size_t)r * ws, c, m, full);
		for (int t = 0; t < nt; t++)
			acc[r][t] = _mm512_fmadd_ps(wv, xv[t], acc[r][t]);
	}
}

TGT_AVX512 INLINE void avx512_float_tile(uint32_t type, const uint8_t *w, size_t ws, int64_t cols, int nr,
					 const float *x, size_t xs, int nt, float *y, size_t ldy)
{
	__m512 acc[FR][FT_512];
	for (int r = 0; r < nr; r++)
		for (int t = 0; t < nt; t++)
			acc[r][t] = _mm512_setzero_ps();
	int64_t c = 0;
	for (; c + 16 <= cols; c += 16)
		avx512_float_step(type, w, ws, c, nr, x, xs, nt, acc, 0xFFFF, true);
	if (c < cols)
		avx512_float_step(type, w, ws, c, nr, x, xs, nt, acc, (__mmask16)((1u << (cols - c)) - 1), false);
	for (int r = 0; r < nr; r++)
		for (int t = 0; t < nt; t++)
			y[(size_t)t * ldy + r] = _mm512_reduce_add_ps(acc[r][t]);
}

/* Dispatch to a tile with compile-time sizes so loops unroll. */
#define FLOAT_DRIVER(prefix, TGT, tilefn, FTMAX) \
	TGT static void prefix##_mm_float(uint32_t type, const void *w, size_t ws, int64_t cols, int64_t nr, \
					   const struct st_mm_act *a, int64_t t0, int64_t nt, float *y, size_t ldy) \
	{ \
		const uint8_t *wb = w; \
		const float *x = a->f + (size_t)t0 * a->f_stride; \
		const size_t xs = a->f_stride; \
		for (int64_t r = 0; r < nr; r += FR) { \
			const int rr = nr - r >= FR ? FR : (int)(nr - r); \
			for (int64_t t = 0; t < nt; t += FTMAX) { \
				const int tt = nt - t >= FTMAX ? FTMAX : (int)(nt - t); \
				const uint8_t *wr = wb + (size_t)r * ws; \
				const float *xt = x + (size_t)t * xs; \
				float *yt = y + (size_t)t * ldy + (size_t)r; \
				if (rr == FR && tt == FTMAX) \
					tilefn(type, wr, ws, cols, FR, xt, xs, FTMAX, yt, ldy); \
				else if (tt == 1) \
					tilefn(type, wr, ws, cols, rr, xt, xs, 1, yt, ldy); \
				else \
					tilefn(type, wr, ws, cols, rr, xt, xs, tt, yt, ldy); \
			} \
		} \
	} \
	TGT static void prefix##_mm_f32(const void *w, size_t ws, int64_t cols, int64_t nr, \
					 const struct st_mm_act *a, int64_t t0, int64_t nt, float *y, size_t ldy) \
	{ prefix##_mm_float(ST_TYPE_F32, w, ws, cols, nr, a, t0, nt, y, ldy); } \
	TGT static void prefix##_mm_f16(const void *w, size_t ws, int64_t cols, int64_t nr, \
					 const struct st_mm_act *a, int64_t t0, int64_t nt, float *y, size_t ldy) \
	{ prefix##_mm_float(ST_TYPE_F16, w, ws, cols, nr, a, t0, nt, y, ldy); } \
	TGT static void prefix##_mm_bf16(const void *w, size_t ws, int64_t cols, int64_t nr, \
					  const struct st_mm_act *a, int64_t t0, int64_t nt, float *y, size_t ldy) \
	{ prefix##_mm_float(ST_TYPE_BF16, w, ws, cols, nr, a, t0, nt, y, ldy); }

FLOAT_DRIVER(avx2, TGT_AVX2, avx2_float_tile, FT_AVX2)
FLOAT_DRIVER(avx512, TGT_AVX512, avx512_float_tile, FT_512)

st_mm_fn st_mm_kernel_x86(enum st_isa isa, uint32_t type)
{
	switch (isa) {
	case ST_ISA_AVX2:
		switch (type) {
		case ST_TYPE_F32: return avx2_mm_f32;
		case ST_TYPE_F16: return avx2_mm_f16;
		case ST_TYPE_BF16: return avx2_mm_bf16;
		case ST_TYPE_Q8_0: return avx2_mm_q8_0;
		case ST_TYPE_Q4_0: return avx2_mm_q4_0;
		default: return NULL;
		}
	case ST_ISA_AVX512:
	case ST_ISA_AVX512_VNNI:
		switch (type) {
		case ST_TYPE_F32: return avx512_mm_f32;
		case ST_TYPE_F16: return avx512_mm_f16;
		case ST_TYPE_BF16: return avx512_mm_bf16;
		case ST_TYPE_Q8_0: return isa == ST_ISA_AVX512_VNNI ? vnni_mm_q8_0 : avx512_mm_q8_0;
		case ST_TYPE_Q4_0: return isa == ST_ISA_AVX512_VNNI ? vnni_mm_q4_0 : avx512_mm_q4_0;
		default: return NULL;
		}
	default:
		return NULL;
	}
}

/* ===================================================================== */
/* Activation quantization (exactly st_q8_act_quantize's arithmetic: the   */
/* same IEEE divide/multiply/add per element, truncation, fp16 scale).     */

TGT_AVX2 static void avx2_q8_quantize(struct st_q8_act *a, int64_t t, const float *x)
{
	int8_t *qs = a->qs + t * a->nb * 32;
	float *dd = a->d + t * a->nb;
	int32_t *ss = a->s + t * a->nb;
	const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
	const __m256 half = _mm256_set1_ps(0.49999997f);
	const __m256 signbit = _mm256_castsi256_ps(_mm256_set1_epi32((int)0x80000000u));
	for (int64_t b = 0; b < a->nb; b++, x += 32, qs += 32) {
		__m256 v[4], m;
		for (int i = 0; i < 4; i++)
			v[i] = _mm256_loadu_ps(x + 8 * i);
		m = _mm256_max_ps(_mm256_max_ps(_mm256_and_ps(v[0], absmask), _mm256_and_ps(v[1], absmask)),
				  _mm256_max_ps(_mm256_and_ps(v[2], absmask), _mm256_and_ps(v[3], absmask)));
		__m128 m4 = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
		m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
		m4 = _mm_max_ss(m4, _mm_shuffle_ps(m4, m4, 1));
		const float amax = _mm_cvtss_f32(m4);
		const float d = amax / 127.0f;
		const float id = d != 0.0f ? 1.0f / d : 0.0f;
		dd[b] = st_fp16_to_fp32(st_fp32_to_fp16(d));
		const __m256 idv = _mm256_set1_ps(id);
		__m256i q[4];
		for (int i = 0; i < 4; i++) {
			__m256 s = _mm256_mul_ps(v[i], idv);
			__m256 h = _mm256_or_ps(half, _mm256_and_ps(s, signbit));
			q[i] = _mm256_cvttps_epi32(_mm256_add_ps(s, h));
		}
		__m256i sum = _mm256_add_epi32(_mm256_add_epi32(q[0], q[1]), _mm256_add_epi32(q[2], q[3]));
		__m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(sum), _mm256_extracti128_si256(sum, 1));
		s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, _MM_SHUFFLE(1, 0, 3, 2)));
		s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, _MM_SHUFFLE(2, 3, 0, 1)));
		ss[b] = _mm_cvtsi128_si32(s4);
		__m256i p01 = _mm256_packs_epi32(q[0], q[1]), p23 = _mm256_packs_epi32(q[2], q[3]);
		__m256i p = _mm256_packs_epi16(p01, p23);
		p = _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
		_mm256_storeu_si256((__m256i *)qs, p);
	}
}

st_q8_quantize_fn st_q8_quantizer_x86(enum st_isa isa)
{
	return isa == ST_ISA_AVX2 || isa == ST_ISA_AVX512 || isa == ST_ISA_AVX512_VNNI ? avx2_q8_quantize : NULL;
}

/* ===================================================================== */
/* Attention helpers                                                       */

/* scores: out[j] = scale * (q . k_j) */
TGT_AVX2 static void avx2_vec_dots(const float *q, const float *k, size_t ks, int n, int hd, float scale,
				   float *out)
{
	for (int j = 0; j < n; j++, k += ks) {
		__m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
		int i = 0;
		for (; i + 16 <= hd; i += 16) {
			a0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), _mm256_loadu_ps(k + i), a0);
			a1 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i + 8), _mm256_loadu_ps(k + i + 8), a1);
		}
		for (; i + 8 <= hd; i += 8)
			a0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), _mm256_loadu_ps(k + i), a0);
		float s = hsum256(_mm256_add_ps(a0, a1));
		for (; i < hd; i++)
			s += q[i] * k[i];
		out[j] = s * scale;
	}
}

/* o = sum_j p[j] * v_j, 32 columns at a time kept in registers over j */
TGT_AVX2 static void avx2_vec_wsum(const float *p, const float *v, size_t vs, int n, int hd, float *o)
{
	int i = 0;
	for (; i + 32 <= hd; i += 32) {
		__m256 a[4] = { _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps() };
		const float *vj = v + i;
		for (int j = 0; j < n; j++, vj += vs) {
			const __m256 pj = _mm256_set1_ps(p[j]);
			for (int c = 0; c < 4; c++)
				a[c] = _mm256_fmadd_ps(pj, _mm256_loadu_ps(vj + 8 * c), a[c]);
		}
		for (int c = 0; c < 4; c++)
			_mm256_storeu_ps(o + i + 8 * c, a[c]);
	}
	for (; i < hd; i++) {
		float acc = 0.0f;
		for (int j = 0; j < n; j++)
			acc += p[j] * v[(size_t)j * vs + i];
		o[i] = acc;
	}
}

TGT_AVX512 static void avx512_vec_dots(const float *q, const float *k, size_t ks, int n, int hd, float scale,
				       float *out)
{
	for (int j = 0; j < n; j++, k += ks) {
		__m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
		int i = 0;
		for (; i + 32 <= hd; i += 32) {
			a0 = _mm512_fmadd_ps(_mm512_loadu_ps(q + i), _mm512_loadu_ps(k + i), a0);
			a1 = _mm512_fmadd_ps(_mm512_loadu_ps(q + i + 16), _mm512_loadu_ps(k + i + 16), a1);
		}
		for (; i < hd; i += 16) {
			const __mmask16 m = hd - i >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (hd - i)) - 1);
			a0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, q + i), _mm512_maskz_loadu_ps(m, k + i), a0);
		}
		out[j] = _mm512_reduce_add_ps(_mm512_add_ps(a0, a1)) * scale;
	}
}

TGT_AVX512 static void avx512_vec_wsum(const float *p, const float *v, size_t vs, int n, int hd, float *o)
{
	for (int i = 0; i < hd; i += 64) {
		const int w = hd - i >= 64 ? 64 : hd - i;
		__mmask16 m[4];
		for (int c = 0; c < 4; c++) {
			int left = w - 16 * c;
			m[c] = left >= 16 ? (__mmask16)0xFFFF : left > 0 ? (__mmask16)((1u << left) - 1) : 0;
		}
		__m512 a[4] = { _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps() };
		const float *vj = v + i;
		if (w == 64) {
			for (int j = 0; j < n; j++, vj += vs) {
				const __m512 pj = _mm512_set1_ps(p[j]);
				for (int c = 0; c < 4; c++)
					a[c] = _mm512_fmadd_ps(pj, _mm512_loadu_ps(vj + 16 * c), a[c]);
			}
		} else {
			for (int j = 0; j < n; j++, vj += vs) {
				const __m512 pj = _mm512_set1_ps(p[j]);
				for (int c = 0; c < 4; c++)
					a[c] = _mm512_fmadd_ps(pj, _mm512_maskz_loadu_ps(m[c], vj + 16 * c), a[c]);
			}
		}
		for (int c = 0; c < 4; c++)
			_mm512_mask_storeu_ps(o + i + 16 * c, m[c], a[c]);
	}
}

bool st_vec_ops_x86(enum st_isa isa, st_vec_dots_fn *dots, st_vec_wsum_fn *wsum)
{
	if (isa == ST_ISA_AVX2) {
		*dots = avx2_vec_dots;
		*wsum = avx2_vec_wsum;
		return true;
	}
	if (isa == ST_ISA_AVX512 || isa == ST_ISA_AVX512_VNNI) {
		*dots = avx512_vec_dots;
		*wsum = avx512_vec_wsum;
		return true;
	}
	return false;
}

#else
st_q8_quantize_fn st_q8_quantizer_x86(enum st_isa isa)
{
	(void)isa;
	return NULL;
}

bool st_vec_ops_x86(enum st_isa isa, st_vec_dots_fn *dots, st_vec_wsum_fn *wsum)
{
	(void)isa;
	(void)dots;
	(void)wsum;
	return false;
}

st_mm_fn st_mm_kernel_x86(enum st_isa isa, uint32_t type)
{
	(void)isa;
	(void)type;
	return NULL;
}
#endif
