/* quant_legacy_x86.c: Q4_1, Q5_0 and Q5_1 matmul kernels for AVX2, AVX-512
 * and AVX-512 VNNI (compiled per ISA with target attributes, chosen at run
 * time), reproducing quant_legacy.h's exact rule bit for bit.
 *
 * A block's 32 quants are unpacked unsigned (0..15 or 0..31) into one ymm
 * in element order: nibbles as Q4_0, the 5th bits of Q5_0/Q5_1 spread from
 * qh (AVX2: byte shuffle + bit test; AVX-512: qh is a byte mask).  Their
 * products with the signed activation bytes are summed exactly (maddubs +
 * madd, VNNI: dpbusd; no int16 overflow: 2 * 31 * 127 < 2^15), a hadd tree
 * puts 8 blocks' sums in the 8 lanes of one vector, and the float part of
 * the rule runs in those lanes with the reference's operations.  All three
 * paths work on 256-bit vectors; AVX-512 adds mask registers for the high
 * bits, VNNI the fused byte dot product. */
#include "quant_legacy.h"

#if defined(__x86_64__)

#include <immintrin.h>
#include <string.h>

#define TGT_AVX2 __attribute__((target("avx2,fma,f16c")))
#define TGT_AVX512 __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512dq")))
#define TGT_VNNI __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512dq,avx512vnni")))
#define INLINE static inline __attribute__((always_inline))

#define QT 4   /* tokens per micro-tile (one weight unpack serves QT tokens; ST_QL_MM_DRIVER's 4) */

static inline uint16_t rd16(const uint8_t *p)
{
	uint16_t v;
	memcpy(&v, p, 2);
	return v;
}

static inline uint32_t rd32(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
	return v;
}

/* 0x10 in byte i where bit i of qh is set. */
TGT_AVX2 INLINE __m256i hibits_avx2(uint32_t qh)
{
	const __m256i shuf = _mm256_setr_epi64x(0, 0x0101010101010101ll, 0x0202020202020202ll, 0x0303030303030303ll);
	const __m256i bit = _mm256_set1_epi64x((long long)0x8040201008040201ull);
	__m256i v = _mm256_shuffle_epi8(_mm256_set1_epi32((int)qh), shuf);
	v = _mm256_cmpeq_epi8(_mm256_and_si256(v, bit), bit);
	return _mm256_and_si256(v, _mm256_set1_epi8(0x10));
}

TGT_AVX512 INLINE __m256i hibits_avx512(uint32_t qh)
{
	return _mm256_maskz_mov_epi8((__mmask32)qh, _mm256_set1_epi8(0x10));
}

TGT_AVX2 INLINE __m256i dot_avx2(__m256i u, __m256i x)
{
	return _mm256_madd_epi16(_mm256_maddubs_epi16(u, x), _mm256_set1_epi16(1));
}

TGT_VNNI INLINE __m256i dot_vnni(__m256i u, __m256i x)
{
	return _mm256_dpbusd_epi32(_mm256_setzero_si256(), u, x);
}

/* 8 fp16 values at p + k * stride (k < n), the others 0. */
TGT_AVX2 INLINE __m256 load_h8(const uint8_t *p, size_t stride, int n)
{
	if (n == 8)   /* in registers: a store + wide load would stall store forwarding */
		return _mm256_cvtph_ps(_mm_setr_epi16((short)rd16(p), (short)rd16(p + stride), (short)rd16(p + 2 * stride),
						      (short)rd16(p + 3 * stride), (short)rd16(p + 4 * stride),
						      (short)rd16(p + 5 * stride), (short)rd16(p + 6 * stride),
						      (short)rd16(p + 7 * stride)));
	uint16_t h[8] = { 0 };
	for (int k = 0; k < n; k++)
		h[k] = rd16(p + (size_t)k * stride);
	return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)h));
}

TGT_AVX2 INLINE __m256 load_f8(const float *p, int n)
{
	if (n == 8)
		return _mm256_loadu_ps(p);
	float t[8] = { 0 };
	memcpy(t, p, (size_t)n * 4);
	return _mm256_loadu_ps(t);
}

TGT_AVX2 INLINE __m256i load_i8(const int32_t *p, int n)
{
	if (n == 8)
		return _mm256_loadu_si256((const __m256i *)p);
	int32_t t[8] = { 0 };
	memcpy(t, p, (size_t)n * 4);
	return _mm256_loadu_si256((const __m256i *)t);
}

/* ((l0+l4) + (l2+l6)) + ((l1+l5) + (l3+l7)), as the reference. */
TGT_AVX2 INLINE float lanes_sum(__m256 acc)
{
	__m128 s4 = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
	__m128 s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
	return _mm_cvtss_f32(_mm_add_ss(s2, _mm_shuffle_ps(s2, s2, 1)));
}

/* Per path: block unpack, 8-block group (integer sums and float rule), row
 * over QT-token tiles, and the st_mm_fn entries. */
#define DEF_QL(prefix, TGT, HIBITS, DOT) \
TGT INLINE __m256i prefix##_unpack(uint32_t type, const uint8_t *blk) \
{ \
	const size_t off = st_ql_block_bytes(type) - 16;   /* qs: the last 16 bytes */ \
	const __m128i q = _mm_loadu_si128((const __m128i *)(blk + off)); \
	const __m256i u = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(q, 4), q), _mm256_set1_epi8(0x0F)); \
	return type == ST_TYPE_Q4_1 ? u : _mm256_or_si256(u, HIBITS(rd32(blk + off - 4))); \
} \
/* sums of blocks k, k+1 (k+1 < n optional) hadd-ed for each token */ \
TGT INLINE void prefix##_pair(uint32_t type, const uint8_t *wg, size_t bsz, int k, int n, const int8_t *x0, \
			      size_t xs, int nt, __m256i *h) \
{ \
	const __m256i z = _mm256_setzero_si256(); \
	const __m256i u0 = k < n ? prefix##_unpack(type, wg + (size_t)k * bsz) : z; \
	const __m256i u1 = k + 1 < n ? prefix##_unpack(type, wg + (size_t)(k + 1) * bsz) : z; \
	for (int t = 0; t < nt; t++) { \
		const int8_t *xq = x0 + (size_t)t * xs + (size_t)k * 32; \
		__m256i v0 = k < n ? DOT(u0, _mm256_loadu_si256((const __m256i *)xq)) : z; \
		__m256i v1 = k + 1 < n ? DOT(u1, _mm256_loadu_si256((const __m256i *)(xq + 32))) : z; \
		h[t] = _mm256_hadd_epi32(v0, v1); \
	} \
} \
TGT INLINE void prefix##_group(uint32_t type, const uint8_t *wg, int n, const struct st_q8_act *a, int64_t t0, \
			       int nt, int64_t b, __m256 *acc) \
{ \
	const size_t bsz = st_ql_block_bytes(type); \
	const int8_t *x0 = a->qs + (t0 * a->nb + b) * 32; \
	const size_t xs = (size_t)a->nb * 32; \
	__m256i g[2][QT]; \
	for (int half = 0; half < 2; half++) { \
		__m256i h0[QT], h1[QT]; \
		prefix##_pair(type, wg, bsz, 4 * half, n, x0, xs, nt, h0); \
		prefix##_pair(type, wg, bsz, 4 * half + 2, n, x0, xs, nt, h1); \
		for (int t = 0; t < nt; t++) \
			g[half][t] = _mm256_hadd_epi32(h0[t], h1[t]); \
	} \
	const __m256 dw = load_h8(wg, bsz, n); \
	const __m256 mw = type == ST_TYPE_Q5_0 ? _mm256_setzero_ps() : load_h8(wg + 2, bsz, n); \
	for (int t = 0; t < nt; t++) { \
		const __m256i us = _mm256_add_epi32(_mm256_permute2x128_si256(g[0][t], g[1][t], 0x20), \
						    _mm256_permute2x128_si256(g[0][t], g[1][t], 0x31)); \
		const int64_t o = (t0 + t) * a->nb + b; \
		const __m256 dx = load_f8(a->d + o, n); \
		const __m256i sx = load_i8(a->s + o, n); \
		const __m256 sc = _mm256_mul_ps(dw, dx); \
		__m256 term; \
		if (type == ST_TYPE_Q5_0) \
			term = _mm256_mul_ps(sc, _mm256_cvtepi32_ps(_mm256_sub_epi32(us, _mm256_slli_epi32(sx, 4)))); \
		else \
			term = _mm256_add_ps(_mm256_mul_ps(sc, _mm256_cvtepi32_ps(us)), \
					     _mm256_mul_ps(_mm256_mul_ps(mw, dx), _mm256_cvtepi32_ps(sx))); \
		acc[t] = _mm256_add_ps(acc[t], term); \
	} \
} \
TGT INLINE void prefix##_row(uint32_t type, const uint8_t *w, const struct st_q8_act *a, int64_t t0, int nt, \
			     float *y, size_t ldy) \
{ \
	const size_t bsz = st_ql_block_bytes(type); \
	__m256 acc[QT]; \
	for (int t = 0; t < nt; t++) \
		acc[t] = _mm256_setzero_ps(); \
	int64_t b = 0; \
	for (; b + 8 <= a->nb; b += 8) \
		prefix##_group(type, w + (size_t)b * bsz, 8, a, t0, nt, b, acc); \
	if (b < a->nb) \
		prefix##_group(type, w + (size_t)b * bsz, (int)(a->nb - b), a, t0, nt, b, acc); \
	for (int t = 0; t < nt; t++) \
		y[(size_t)t * ldy] = lanes_sum(acc[t]); \
}

DEF_QL(avx2, TGT_AVX2, hibits_avx2, dot_avx2)
DEF_QL(avx512, TGT_AVX512, hibits_avx512, dot_avx2)
DEF_QL(vnni, TGT_VNNI, hibits_avx512, dot_vnni)
ST_QL_MM_DRIVER(avx2, TGT_AVX2, avx2_row)
ST_QL_MM_DRIVER(avx512, TGT_AVX512, avx512_row)
ST_QL_MM_DRIVER(vnni, TGT_VNNI, vnni_row)
ST_QL_MM_ENTRIES(avx2, TGT_AVX2, avx2_mm)
ST_QL_MM_ENTRIES(avx512, TGT_AVX512, avx512_mm)
ST_QL_MM_ENTRIES(vnni, TGT_VNNI, vnni_mm)

st_mm_fn st_ql_mm_kernel_x86(enum st_isa isa, uint32_t type)
{
	static const st_mm_fn k[3][3] = {
		{ avx2_mm_q4_1, avx2_mm_q5_0, avx2_mm_q5_1 },
		{ avx512_mm_q4_1, avx512_mm_q5_0, avx512_mm_q5_1 },
		{ vnni_mm_q4_1, vnni_mm_q5_0, vnni_mm_q5_1 },
	};
	const int ti = type == ST_TYPE_Q4_1 ? 0 : type == ST_TYPE_Q5_0 ? 1 : type == ST_TYPE_Q5_1 ? 2 : -1;
	const int pi = isa == ST_ISA_AVX2 ? 0 : isa == ST_ISA_AVX512 ? 1 : isa == ST_ISA_AVX512_VNNI ? 2 : -1;
	return ti < 0 || pi < 0 ? NULL : k[pi][ti];
}

#else
st_mm_fn st_ql_mm_kernel_x86(enum st_isa isa, uint32_t type)
{
	(void)isa;
	(void)type;
	return NULL;
}
#endif
