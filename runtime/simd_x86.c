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
#define QT 4          /* quantized: 1 row x QT tokens */

static inline uint16_t ld16(const uint8_t *p)
{
	uint16_t v;
	memcpy(&v, p, 2);
	return v;
}

/* ===================================================================== */
/* Shared quantized pieces (AVX2 encodings, usable from every target).    */

/* 8 vectors of 8 int32 partial sums -> one vector of the 8 totals. */
#define REDUCE8_AVX2(v, out) do { \
	__m256i h01_ = _mm256_hadd_epi32(v[0], v[1]), h23_ = _mm256_hadd_epi32(v[2], v[3]); \
	__m256i h45_ = _mm256_hadd_epi32(v[4], v[5]), h67_ = _mm256_hadd_epi32(v[6], v[7]); \
	__m256i g0_ = _mm256_hadd_epi32(h01_, h23_), g1_ = _mm256_hadd_epi32(h45_, h67_); \
	out = _mm256_add_epi32(_mm256_permute2x128_si256(g0_, g1_, 0x20), \
			       _mm256_permute2x128_si256(g0_, g1_, 0x31)); \
} while (0)

/* 8 fp16 weight scales at stride bsz, from block b0; missing ones are 0. */
#define LOAD_DW8(wb, bsz, n, out) do { \
	uint16_t h_[8] = { 0 }; \
	for (int k_ = 0; k_ < (n); k_++) \
		h_[k_] = ld16((wb) + (size_t)k_ * (bsz)); \
	out = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)h_)); \
} while (0)

TGT_AVX2 static inline float hsum8_canon(__m256 acc)
{
	/* ((l0+l4) + (l2+l6)) + ((l1+l5) + (l3+l7)) */
	__m128 s4 = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
	__m128 s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
	__m128 s1 = _mm_add_ss(s2, _mm_shuffle_ps(s2, s2, 1));
	return _mm_cvtss_f32(s1);
}

/* ===================================================================== */
/* AVX2 quantized                                                          */

TGT_AVX2 INLINE __m256i avx2_q4_unpack(const st_block_q4_0 *b)
{
	__m128i q = _mm_loadu_si128((const __m128i *)b->qs);
	__m256i w = _mm256_set_m128i(_mm_srli_epi16(q, 4), q);
	return _mm256_and_si256(w, _mm256_set1_epi8(0x0F));
}

TGT_AVX2 INLINE void avx2_mm_quant_row(uint32_t type, const uint8_t *w, int64_t nb,
				       const struct st_q8_act *a, int64_t t0, int nt, float *y, size_t ldy)
{
	const size_t bsz = type == ST_TYPE_Q4_0 ? sizeof(st_block_q4_0) : sizeof(st_block_q8_0);
	const __m256i ones = _mm256_set1_epi16(1);
	__m256 acc[QT];
	for (int t = 0; t < nt; t++)
		acc[t] = _mm256_setzero_ps();
	for (int64_t b = 0; b < nb; b += 8) {
		const int n = nb - b >= 8 ? 8 : (int)(nb - b);
		__m256i v[QT][8];
		for (int k = 0; k < 8; k++) {
			if (k >= n) {
				for (int t = 0; t < nt; t++)
					v[t][k] = _mm256_setzero_si256();
				continue;
			}
			const uint8_t *blk = w + (size_t)(b + k) * bsz;
			if (type == ST_TYPE_Q4_0) {
				__m256i wq = avx2_q4_unpack((const st_block_q4_0 *)blk);
				for (int t = 0; t < nt; t++) {
					__m256i x = _mm256_loadu_si256((const __m256i *)(a->qs + ((t0 + t) * nb + b + k) * 32));
					v[t][k] = _mm256_madd_epi16(_mm256_maddubs_epi16(wq, x), ones);
				}
			} else {
				__m256i wq = _mm256_loadu_si256((const __m256i *)(blk + 2));
				__m256i aw = _mm256_sign_epi8(wq, wq);
				for (int t = 0; t < nt; t++) {
					__m256i x = _mm256_loadu_si256((const __m256i *)(a->qs + ((t0 + t) * nb + b + k) * 32));
					v[t][k] = _mm256_madd_epi16(_mm256_maddubs_epi16(aw, _mm256_sign_epi8(x, wq)), ones);
				}
			}
		}
		__m256 dw;
		LOAD_DW8(w + (size_t)b * bsz, bsz, n, dw);
		for (int t = 0; t < nt; t++) {
			__m256i is;
			REDUCE8_AVX2(v[t], is);
			const float *dxp = a->d + (t0 + t) * nb + b;
			__m256 dx;
			if (type == ST_TYPE_Q4_0) {
				__m256i s;
				if (n == 8) {
					s = _mm256_loadu_si256((const __m256i *)(a->s + (t0 + t) * nb + b));
				} else {
					int32_t st[8] = { 0 };
					memcpy(st, a->s + (t0 + t) * nb + b, (size_t)n * 4);
					s = _mm256_loadu_si256((const __m256i *)st);
				}
				is = _mm256_sub_epi32(is, _mm256_slli_epi32(s, 3));
			}
			if (n == 8) {
				dx = _mm256_loadu_ps(dxp);
			} else {
				float dt[8] = { 0 };
				memcpy(dt, dxp, (size_t)n * 4);
				dx = _mm256_loadu_ps(dt);
			}
			__m256 sc = _mm256_mul_ps(dw, dx);
			acc[t] = _mm256_add_ps(acc[t], _mm256_mul_ps(sc, _mm256_cvtepi32_ps(is)));
		}
	}
	for (int t = 0; t < nt; t++)
		y[(size_t)t * ldy] = hsum8_canon(acc[t]);
}

#define QUANT_DRIVER(prefix, TGT, rowfn) \
	TGT static void prefix##_mm_quant(uint32_t type, const void *w, size_t ws, int64_t cols, int64_t nr, \
					   const struct st_mm_act *a, int64_t t0, int64_t nt, float *y, size_t ldy) \
	{ \
		const int64_t nb = cols / 32; \
		for (int64_t r = 0; r < nr; r++) { \
			const uint8_t *wr = (const uint8_t *)w + (size_t)r * ws; \
			int64_t t = 0; \
			for (; t + QT <= nt; t += QT) \
				rowfn(type, wr, nb, a->q, t0 + t, QT, y + (size_t)t * ldy + (size_t)r, ldy); \
			switch (nt - t) { \
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

QUANT_DRIVER(avx2, TGT_AVX2, avx2_mm_quant_row)

/* ===================================================================== */
/* AVX-512 / VNNI quantized: blocks k and k+4 of a group share one zmm.     */

/* 4 zmm (blocks k | k+4, k = 0..3) of int32 partials -> 8 block totals. */
#define REDUCE8_512(z, out) do { \
	__m512i u01_ = _mm512_add_epi32(_mm512_unpacklo_epi32(z[0], z[1]), _mm512_unpackhi_epi32(z[0], z[1])); \
	__m512i u23_ = _mm512_add_epi32(_mm512_unpacklo_epi32(z[2], z[3]), _mm512_unpackhi_epi32(z[2], z[3])); \
	__m512i w_ = _mm512_add_epi32(_mm512_unpacklo_epi64(u01_, u23_), _mm512_unpackhi_epi64(u01_, u23_)); \
	__m512i s_ = _mm512_add_epi32(w_, _mm512_shuffle_i32x4(w_, w_, _MM_SHUFFLE(2, 3, 0, 1))); \
	out = _mm512_castsi512_si256(_mm512_shuffle_i32x4(s_, s_, _MM_SHUFFLE(0, 0, 2, 0))); \
} while (0)

#define DEF_Q512(prefix, TGT, VNNI) \
TGT INLINE __m512i prefix##_load_pair32(const int8_t *p0, const int8_t *p1, bool have1) \
{ \
	__m256i lo = _mm256_loadu_si256((const __m256i *)p0); \
	__m256i hi = have1 ? _mm256_loadu_si256((const __m256i *)p1) : _mm256_setzero_si256(); \
	return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1); \
} \
TGT INLINE void prefix##_mm_quant_row(uint32_t type, const uint8_t *w, int64_t nb, \
				      const struct st_q8_act *a, int64_t t0, int nt, float *y, size_t ldy) \
{ \
	const size_t bsz = type == ST_TYPE_Q4_0 ? sizeof(st_block_q4_0) : sizeof(st_block_q8_0); \
	const __m512i m0f = _mm512_set1_epi8(0x0F); \
	const __m512i shifts = _mm512_set_epi64(4, 4, 0, 0, 4, 4, 0, 0); \
	__m256 acc[QT]; \
	for (int t = 0; t < nt; t++) \
		acc[t] = _mm256_setzero_ps(); \
	for (int64_t b = 0; b < nb; b += 8) { \
		const int n = nb - b >= 8 ? 8 : (int)(nb - b); \
		__m512i z[QT][4]; \
		for (int k = 0; k < 4; k++) { \
			const bool h0 = k < n, h1 = k + 4 < n; \
			if (!h0) { \
				for (int t = 0; t < nt; t++) \
					z[t][k] = _mm512_setzero_si512(); \
				continue; \
			} \
			const uint8_t *b0 = w + (size_t)(b + k) * bsz, *b1 = w + (size_t)(b + k + 4) * bsz; \
			__m512i wq; \
			if (type == ST_TYPE_Q4_0) { \
				__m256i qa = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(b0 + 2))); \
				__m256i qb = h1 ? _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(b1 + 2))) \
						: _mm256_setzero_si256(); \
				wq = _mm512_inserti64x4(_mm512_castsi256_si512(qa), qb, 1); \
				wq = _mm512_and_si512(_mm512_srlv_epi64(wq, shifts), m0f); \
			} else { \
				wq = prefix##_load_pair32((const int8_t *)(b0 + 2), (const int8_t *)(b1 + 2), h1); \
			} \
			for (int t = 0; t < nt; t++) { \
				const int8_t *xq = a->qs + ((t0 + t) * nb + b + k) * 32; \
				__m512i x = prefix##_load_pair32(xq, xq + 4 * 32, h1); \
				if (type == ST_TYPE_Q4_0) { \
					z[t][k] = VNNI ? Q512_DP_U8(wq, x) \
						       : _mm512_madd_epi16(_mm512_maddubs_epi16(wq, x), _mm512_set1_epi16(1)); \
				} else if (VNNI) { \
					z[t][k] = Q512_DP_U8(_mm512_xor_si512(wq, _mm512_set1_epi8((char)0x80)), x); \
				} else { \
					__mmask64 neg = _mm512_movepi8_mask(wq); \
					__m512i sx = _mm512_mask_sub_epi8(x, neg, _mm512_setzero_si512(), x); \
					z[t][k] = _mm512_madd_epi16(_mm512_maddubs_epi16(_mm512_abs_epi8(wq), sx), \
								    _mm512_set1_epi16(1)); \
				} \
			} \
		} \
		__m256 dw; \
		LOAD_DW8(w + (size_t)b * bsz, bsz, n, dw); \
		const __mmask8 live = (__mmask8)((1u << n) - 1); \
		for (int t = 0; t < nt; t++) { \
			__m256i is; \
			REDUCE8_512(z[t], is); \
			const int64_t o = (t0 + t) * nb + b; \
			if (type == ST_TYPE_Q4_0) { \
				__m256i s = _mm256_maskz_loadu_epi32(live, a->s + o); \
				is = _mm256_sub_epi32(is, _mm256_slli_epi32(s, 3)); \
			} else if (VNNI) { \
				__m256i s = _mm256_maskz_loadu_epi32(live, a->s + o); \
				is = _mm256_sub_epi32(is, _mm256_slli_epi32(s, 7)); \
			} \
			__m256 dx = _mm256_maskz_loadu_ps(live, a->d + o); \
			__m256 sc = _mm256_mul_ps(dw, dx); \
			acc[t] = _mm256_add_ps(acc[t], _mm256_mul_ps(sc, _mm256_cvtepi32_ps(is))); \
		} \
	} \
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

QUANT_DRIVER(avx512, TGT_AVX512, avx512_mm_quant_row)
QUANT_DRIVER(vnni, TGT_VNNI, vnni_mm_quant_row)

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

TGT_AVX512 INLINE __m512 avx512_wload(uint32_t type, const uint8_t *w, int64_t c, __mmask16 m)
{
	if (type == ST_TYPE_F32)
		return _mm512_maskz_loadu_ps(m, (const float *)w + c);
	__m256i h = _mm256_maskz_loadu_epi16(m, (const uint16_t *)w + c);
	if (type == ST_TYPE_F16)
		return _mm512_cvtph_ps(h);
	return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

TGT_AVX512 INLINE void avx512_float_tile(uint32_t type, const uint8_t *w, size_t ws, int64_t cols, int nr,
					 const float *x, size_t xs, int nt, float *y, size_t ldy)
{
	__m512 acc[FR][FT_512];
	for (int r = 0; r < nr; r++)
		for (int t = 0; t < nt; t++)
			acc[r][t] = _mm512_setzero_ps();
	for (int64_t c = 0; c < cols; c += 16) {
		const __mmask16 m = cols - c >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (cols - c)) - 1);
		__m512 xv[FT_512];
		for (int t = 0; t < nt; t++)
			xv[t] = _mm512_maskz_loadu_ps(m, x + (size_t)t * xs + c);
		for (int r = 0; r < nr; r++) {
			__m512 wv = avx512_wload(type, w + (size_t)r * ws, c, m);
			for (int t = 0; t < nt; t++)
				acc[r][t] = _mm512_fmadd_ps(wv, xv[t], acc[r][t]);
		}
	}
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
/* Attention helpers                                                       */

TGT_AVX2 static float avx2_vec_dot(const float *a, const float *b, int n)
{
	__m256 acc = _mm256_setzero_ps();
	int i = 0;
	for (; i + 8 <= n; i += 8)
		acc = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc);
	float s = hsum256(acc);
	for (; i < n; i++)
		s += a[i] * b[i];
	return s;
}

TGT_AVX2 static void avx2_vec_axpy(float alpha, const float *x, float *y, int n)
{
	const __m256 av = _mm256_set1_ps(alpha);
	int i = 0;
	for (; i + 8 <= n; i += 8)
		_mm256_storeu_ps(y + i, _mm256_fmadd_ps(av, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
	for (; i < n; i++)
		y[i] += alpha * x[i];
}

TGT_AVX512 static float avx512_vec_dot(const float *a, const float *b, int n)
{
	__m512 acc = _mm512_setzero_ps();
	for (int i = 0; i < n; i += 16) {
		const __mmask16 m = n - i >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - i)) - 1);
		acc = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i), acc);
	}
	return _mm512_reduce_add_ps(acc);
}

TGT_AVX512 static void avx512_vec_axpy(float alpha, const float *x, float *y, int n)
{
	const __m512 av = _mm512_set1_ps(alpha);
	for (int i = 0; i < n; i += 16) {
		const __mmask16 m = n - i >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - i)) - 1);
		__m512 r = _mm512_fmadd_ps(av, _mm512_maskz_loadu_ps(m, x + i), _mm512_maskz_loadu_ps(m, y + i));
		_mm512_mask_storeu_ps(y + i, m, r);
	}
}

bool st_vec_ops_x86(enum st_isa isa, st_vec_dot_fn *dot, st_vec_axpy_fn *axpy)
{
	if (isa == ST_ISA_AVX2) {
		*dot = avx2_vec_dot;
		*axpy = avx2_vec_axpy;
		return true;
	}
	if (isa == ST_ISA_AVX512 || isa == ST_ISA_AVX512_VNNI) {
		*dot = avx512_vec_dot;
		*axpy = avx512_vec_axpy;
		return true;
	}
	return false;
}

#else
bool st_vec_ops_x86(enum st_isa isa, st_vec_dot_fn *dot, st_vec_axpy_fn *axpy)
{
	(void)isa;
	(void)dot;
	(void)axpy;
	return false;
}

st_mm_fn st_mm_kernel_x86(enum st_isa isa, uint32_t type)
{
	(void)isa;
	(void)type;
	return NULL;
}
#endif
