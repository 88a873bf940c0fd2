/* kquant_x86.c: integer sums of the K-quant dot products (kquant.h) for
 * AVX2, AVX-512 (BW) and AVX-512 VNNI, compiled per ISA with target
 * attributes and chosen at run time.
 *
 * Quants are used unsigned (Q4_K 0..15, Q5_K 0..31, Q6_K 0..63) against
 * the signed Q8_K bytes: maddubs gives exact pair sums (int16), which
 * madd (VNNI: dpwssd, fused with the accumulation) multiplies by the
 * sub-block scales into 32-bit lanes.  Q6_K's -32 offset is applied as
 * -32 * sum_g sc_g * bsums_g; Q4_K/Q5_K mins are sum_j m_j * (bsums pair),
 * both with one madd.  All integer: any order gives the same
 * sums as the reference (no intermediate can overflow: the bounds are
 * 2*63*127 per int16 pair and < 2^28 per block). */
#include "kquant.h"

#if defined(__x86_64__)

#include <immintrin.h>
#include <string.h>

#define TGT_AVX2 __attribute__((target("avx2,fma,f16c")))
#define TGT_AVX512 __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512dq")))
#define TGT_VNNI __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512dq,avx512vnni")))
#define INLINE static inline __attribute__((always_inline))

/* Q4_K/Q5_K: the 8 scales (sc) and the 8 mins as int16 (m16), unpacked
 * as scales_mins() does, and one token's sum_j m_j * bsums pair j. */
TGT_AVX2 static inline __m128i unpack_scales(const uint8_t *scales, uint8_t sc[8])
{
	uint32_t u[3];
	memcpy(u, scales, 12);
	const uint32_t sc_lo = u[0] & 0x3f3f3f3fu, sc_hi = (u[2] & 0x0f0f0f0fu) | (((u[0] >> 6) & 0x03030303u) << 4);
	const uint32_t mn_lo = u[1] & 0x3f3f3f3fu, mn_hi = ((u[2] >> 4) & 0x0f0f0f0fu) | (((u[1] >> 6) & 0x03030303u) << 4);
	memcpy(sc, &sc_lo, 4);
	memcpy(sc + 4, &sc_hi, 4);
	return _mm_cvtepu8_epi16(_mm_set_epi32(0, 0, (int)mn_hi, (int)mn_lo));
}

TGT_AVX2 static inline int32_t mins_dot(__m128i m16, const st_block_q8_K *x)
{
	const __m128i pair = _mm_hadd_epi16(_mm_loadu_si128((const __m128i *)x->bsums),
					    _mm_loadu_si128((const __m128i *)(x->bsums + 8)));
	__m128i p = _mm_madd_epi16(pair, m16);
	p = _mm_add_epi32(p, _mm_shuffle_epi32(p, 0x4e));
	p = _mm_add_epi32(p, _mm_shuffle_epi32(p, 0xb1));
	return _mm_cvtsi128_si32(p);
}

/* Q4_K/Q5_K: the 8 scales (sc) and sum_j m_j * bsums of sub-block j, the
 * 12 packed bytes unpacked as three 32-bit words (bytes 0-3: scales 0-3 and
 * the top bits of scales 4-7; 4-7: mins 0-3 and the top bits of mins 4-7;
 * 8-11: low nibbles of scales 4-7, high nibbles of mins 4-7). */
TGT_AVX2 static inline int32_t scales_mins(const uint8_t *scales, const st_block_q8_K *x, uint8_t sc[8])
{
	uint32_t u[3];
	memcpy(u, scales, 12);
	const uint32_t sc_lo = u[0] & 0x3f3f3f3fu, sc_hi = (u[2] & 0x0f0f0f0fu) | (((u[0] >> 6) & 0x03030303u) << 4);
	const uint32_t mn_lo = u[1] & 0x3f3f3f3fu, mn_hi = ((u[2] >> 4) & 0x0f0f0f0fu) | (((u[1] >> 6) & 0x03030303u) << 4);
	memcpy(sc, &sc_lo, 4);
	memcpy(sc + 4, &sc_hi, 4);
	/* pairs of bsums (sub-blocks of 32; each pair <= 4064, an int16) times the mins */
	const __m128i pair = _mm_hadd_epi16(_mm_loadu_si128((const __m128i *)x->bsums),
					    _mm_loadu_si128((const __m128i *)(x->bsums + 8)));
	const __m128i m16 = _mm_cvtepu8_epi16(_mm_set_epi32(0, 0, (int)mn_hi, (int)mn_lo));
	__m128i p = _mm_madd_epi16(pair, m16);
	p = _mm_add_epi32(p, _mm_shuffle_epi32(p, 0x4e));
	p = _mm_add_epi32(p, _mm_shuffle_epi32(p, 0xb1));
	return _mm_cvtsi128_si32(p);
}

/* Q6_K: sum_g sc_g * bsums_g (times 32 is the offset). */
TGT_AVX2 static inline int32_t q6_offset(const int8_t *sc, const st_block_q8_K *x)
{
	const __m256i s16 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)sc));
	const __m256i p = _mm256_madd_epi16(s16, _mm256_loadu_si256((const __m256i *)x->bsums));
	__m128i q = _mm_add_epi32(_mm256_castsi256_si128(p), _mm256_extracti128_si256(p, 1));
	q = _mm_add_epi32(q, _mm_shuffle_epi32(q, 0x4e));
	q = _mm_add_epi32(q, _mm_shuffle_epi32(q, 0xb1));
	return _mm_cvtsi128_si32(q);
}

/* ===================================================================== */
/* AVX2                                                                    */

TGT_AVX2 INLINE int32_t hsum_i32_avx2(__m256i v)
{
	__m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
	s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
	s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
	return _mm_cvtsi128_si32(s);
}

/* qh: 32 bytes; returns 16 in the bytes whose bit `bit` is set. */
TGT_AVX2 INLINE __m256i q5_high(__m256i qh, int bit)
{
	const __m256i mask = _mm256_set1_epi8((char)(1 << bit));
	return _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(qh, mask), mask), _mm256_set1_epi8(16));
}

TGT_AVX2 INLINE void avx2_q45(bool five, const uint8_t *wb, size_t bsz, const st_block_q8_K *x, int64_t nb,
			      int32_t *isum, int32_t *imin)
{
	const __m256i m4 = _mm256_set1_epi8(0x0F);
	for (int64_t b = 0; b < nb; b++, wb += bsz) {
		const st_block_q4_K *h = (const st_block_q4_K *)wb;   /* d, dmin, scales shared */
		const uint8_t *qs = five ? ((const st_block_q5_K *)wb)->qs : h->qs;
		uint8_t sc[8];
		imin[b] = scales_mins(h->scales, &x[b], sc);
		__m256i qh = five ? _mm256_loadu_si256((const __m256i *)((const st_block_q5_K *)wb)->qh)
				  : _mm256_setzero_si256();
		__m256i acc = _mm256_setzero_si256();
		for (int c = 0; c < 4; c++) {
			const __m256i v = _mm256_loadu_si256((const __m256i *)(qs + 32 * c));
			__m256i lo = _mm256_and_si256(v, m4), hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
			if (five) {
				lo = _mm256_or_si256(lo, q5_high(qh, 2 * c));
				hi = _mm256_or_si256(hi, q5_high(qh, 2 * c + 1));
			}
			const __m256i x0 = _mm256_loadu_si256((const __m256i *)(x[b].qs + 64 * c));
			const __m256i x1 = _mm256_loadu_si256((const __m256i *)(x[b].qs + 64 * c + 32));
			const __m256i p0 = _mm256_maddubs_epi16(lo, x0), p1 = _mm256_maddubs_epi16(hi, x1);
			acc = _mm256_add_epi32(acc, _mm256_madd_epi16(p0, _mm256_set1_epi16(sc[2 * c])));
			acc = _mm256_add_epi32(acc, _mm256_madd_epi16(p1, _mm256_set1_epi16(sc[2 * c + 1])));
		}
		isum[b] = hsum_i32_avx2(acc);
	}
}

TGT_AVX2 static void avx2_q4_K(const void *w, const st_block_q8_K *x, int64_t nb, int32_t *isum, int32_t *imin)
{
	avx2_q45(false, w, sizeof(st_block_q4_K), x, nb, isum, imin);
}

TGT_AVX2 static void avx2_q5_K(const void *w, const st_block_q8_K *x, int64_t nb, int32_t *isum, int32_t *imin)
{
	avx2_q45(true, w, sizeof(st_block_q5_K), x, nb, isum, imin);
}

TGT_AVX2 static void avx2_q6_K(const void *w, const st_block_q8_K *x, int64_t nb, int32_t *isum, int32_t *imin)
{
	(void)imin;
	const st_block_q6_K *wb = w;
	const __m256i m4 = _mm256_set1_epi8(0x0F), m3 = _mm256_set1_epi8(3);
	for (int64_t b = 0; b < nb; b++) {
		const int8_t *sc = wb[b].scales;
		__m256i acc = _mm256_setzero_si256();
		for (int h = 0; h < 2; h++) {
			const uint8_t *ql = wb[b].ql + 64 * h;
			const __m256i qh = _mm256_loadu_si256((const __m256i *)(wb[b].qh + 32 * h));
			const __m256i l0 = _mm256_loadu_si256((const __m256i *)ql);
			const __m256i l1 = _mm256_loadu_si256((const __m256i *)(ql + 32));
			__m256i q[4];
			q[0] = _mm256_or_si256(_mm256_and_si256(l0, m4), _mm256_slli_epi16(_mm256_and_si256(qh, m3), 4));
			q[1] = _mm256_or_si256(_mm256_and_si256(l1, m4),
					       _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2), m3), 4));
			q[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4),
					       _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 4), m3), 4));
			q[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4),
					       _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 6), m3), 4));
			for (int i = 0; i < 4; i++) {
				const __m256i xv = _mm256_loadu_si256((const __m256i *)(x[b].qs + 128 * h + 32 * i));
				const __m256i p = _mm256_maddubs_epi16(q[i], xv);
				const int g = 8 * h + 2 * i;
				const __m256i s = _mm256_setr_m128i(_mm_set1_epi16(sc[g]), _mm_set1_epi16(sc[g + 1]));
				acc = _mm256_add_epi32(acc, _mm256_madd_epi16(p, s));
			}
		}
		isum[b] = hsum_i32_avx2(acc) - 32 * q6_offset(sc, &x[b]);
	}
}

/* ===================================================================== */
/* AVX-512 (BW) and VNNI: 64 quants per 512-bit vector                     */

TGT_AVX512 INLINE __m512i cat256(__m256i lo, __m256i hi)
{
	return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
}

/* acc + products of 64 unsigned quants with 64 signed bytes, scaled: s16
 * holds the scale of each int16 of maddubs' pair sums.  VNNI fuses the
 * scaling multiply-add (vpdpwssd); a dpbusd form would need a 32-bit
 * multiply by the scales afterwards, slower on the CPUs measured. */
TGT_AVX512 INLINE __m512i acc_bw(__m512i acc, __m512i q, __m512i xv, __m512i s16)
{
	return _mm512_add_epi32(acc, _mm512_madd_epi16(_mm512_maddubs_epi16(q, xv), s16));
}

TGT_VNNI INLINE __m512i acc_vnni(__m512i acc, __m512i q, __m512i xv, __m512i s16)
{
	return _mm512_dpwssd_epi32(acc, _mm512_maddubs_epi16(q, xv), s16);
}

/* One block of Q4_K/Q5_K, one 32-byte chunk c of quants per step: the chunk
 * is broadcast to both halves of a vector and shifted by 0 (low half: the
 * low nibbles = sub-block 2c) or 4 (high half: sub-block 2c+1), so the
 * activations of the two sub-blocks are one contiguous 64-byte load; the
 * scales of the pair come from one permute of the 8 scales. */
#define Q45_BLOCK(ACC, STORE) \
	do { \
		const st_block_q4_K *h = (const st_block_q4_K *)wb; \
		const uint8_t *qs = five ? ((const st_block_q5_K *)wb)->qs : h->qs; \
		uint8_t sc[8]; \
		imin[b] = scales_mins(h->scales, &x[b], sc); \
		const __m512i sc16 = _mm512_castsi128_si512(_mm_cvtepu8_epi16(_mm_loadl_epi64((const __m128i *)sc))); \
		__m512i qh = _mm512_setzero_si512(); \
		if (five) \
			qh = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)((const st_block_q5_K *)wb)->qh)); \
		__m512i acc = _mm512_setzero_si512(); \
		for (int c = 0; c < 4; c++) { \
			const __m512i v = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(qs + 32 * c))); \
			__m512i q = _mm512_and_si512(_mm512_srlv_epi16(v, nib_shift), m4); \
			if (five)   /* bit 2c (low half) or 2c+1 (high half) of qh[l], as 16 */ \
				q = _mm512_or_si512(q, _mm512_slli_epi16(_mm512_and_si512( \
					_mm512_srlv_epi16(qh, _mm512_add_epi16(hb_shift, _mm512_set1_epi16((short)(2 * c)))), \
					one), 4)); \
			const __m512i s16 = _mm512_permutexvar_epi16(_mm512_add_epi16(sc_idx, _mm512_set1_epi16((short)(2 * c))), sc16); \
			acc = ACC(acc, q, _mm512_loadu_si512((const void *)(x[b].qs + 64 * c)), s16); \
		} \
		STORE(b, acc); \
	} while (0)

/* where a block's 16 lanes of partial sums go: reduced into isum[b], or
 * kept for the 8-block reduction of the row dots */
#define ST_ISUM(b, acc) (isum[b] = _mm512_reduce_add_epi32(acc))
#define ST_ACCS(b, acc) (accs[b] = (acc))

/* constants of Q45_BLOCK: per-half shifts and the scale index pattern */
#define Q45_CONSTS \
	const __m512i m4 = _mm512_set1_epi8(0x0F), one = _mm512_set1_epi8(1); \
	const __m512i nib_shift = cat256(_mm256_setzero_si256(), _mm256_set1_epi16(4)); \
	const __m512i hb_shift = cat256(_mm256_setzero_si256(), _mm256_set1_epi16(1)); \
	const __m512i sc_idx = hb_shift; \
	(void)one; (void)hb_shift

TGT_AVX512 INLINE void avx512_q45(bool five, const uint8_t *wb, size_t bsz, const st_block_q8_K *x, int64_t nb,
				  int32_t *isum, int32_t *imin)
{
	Q45_CONSTS;
	for (int64_t b = 0; b < nb; b++, wb += bsz)
		Q45_BLOCK(acc_bw, ST_ISUM);
}

TGT_VNNI INLINE void vnni_q45(bool five, const uint8_t *wb, size_t bsz, const st_block_q8_K *x, int64_t nb,
			      int32_t *isum, int32_t *imin)
{
	Q45_CONSTS;
	for (int64_t b = 0; b < nb; b++, wb += bsz)
		Q45_BLOCK(acc_vnni, ST_ISUM);
}

TGT_AVX512 static void avx512_q4_K(const void *w, const st_block_q8_K *x, int64_t nb, int32_t *isum, int32_t *imin)
{
	avx512_q45(false, w, sizeof(st_block_q4_K), x, nb, isum, imin);
}

TGT_AVX512 static void avx512_q5_K(const void *w, const st_block_q8_K *x, int64_t nb, int32_t *isum, int32_t *imin)
{
	avx512_q45(true, w, sizeof(st_block_q5_K), x, nb, isum, imin);
}

TGT_VNNI static void vnni_q4_K(const void *w, const st_block_q8_K *x, int64_t nb, int32_t *isum, int32_t *imin)
{
	vnni_q45(false, w, sizeof(st_block_q4_K), x, nb, isum, imin);
}

TGT_VNNI static void vnni_q5_K(const void *w, const st_block_q8_K *x, int64_t nb, int32_t *isum, int32_t *imin)
{
	vnni_q45(true, w, sizeof(st_block_q5_K), x, nb, isum, imin);
}

/* Q6_K: per half, Q12 = quants of elements 0..63 (q1 then q2), Q34 =
 * 64..127; the Q8_K bytes are contiguous for both. */
TGT_AVX512 INLINE void q6_half(const st_block_q6_K *w, int h, __m512i *q12, __m512i *q34)
{
	const __m512i m4 = _mm512_set1_epi8(0x0F), m3 = _mm512_set1_epi8(3);
	const __m512i ql = _mm512_loadu_si512((const void *)(w->ql + 64 * h));
	const __m256i qh = _mm256_loadu_si256((const __m256i *)(w->qh + 32 * h));
	const __m512i h12 = cat256(qh, _mm256_srli_epi16(qh, 2));
	const __m512i h34 = cat256(_mm256_srli_epi16(qh, 4), _mm256_srli_epi16(qh, 6));
	*q12 = _mm512_or_si512(_mm512_and_si512(ql, m4), _mm512_slli_epi16(_mm512_and_si512(h12, m3), 4));
	*q34 = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(ql, 4), m4),
			       _mm512_slli_epi16(_mm512_and_si512(h34, m3), 4));
}

#define Q6_BODY(ACC, STORE, COUNT) \
	const st_block_q6_K *wb = w; \
	/* int16 lane i of a 64-byte product belongs to group i / 8 */ \
	const __m512i idx = _mm512_set_epi16(3, 3, 3, 3, 3, 3, 3, 3, 2, 2, 2, 2, 2, 2, 2, 2, \
					     1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0); \
	const __m512i four = _mm512_set1_epi16(4); \
	for (int64_t b = 0; b < (COUNT); b++) { \
		const __m512i s16 = _mm512_castsi256_si512( \
			_mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)wb[b].scales))); \
		__m512i acc = _mm512_setzero_si512(); \
		for (int h = 0; h < 2; h++) { \
			__m512i q12, q34; \
			q6_half(&wb[b], h, &q12, &q34); \
			const __m512i i12 = _mm512_add_epi16(idx, _mm512_set1_epi16((short)(8 * h))); \
			const __m512i s12 = _mm512_permutexvar_epi16(i12, s16); \
			const __m512i s34 = _mm512_permutexvar_epi16(_mm512_add_epi16(i12, four), s16); \
			const int8_t *xq = x[b].qs + 128 * h; \
			acc = ACC(acc, q12, _mm512_loadu_si512((const void *)xq), s12); \
			acc = ACC(acc, q34, _mm512_loadu_si512((const void *)(xq + 64)), s34); \
		} \
		STORE(b, acc); \
	}
#define ST6_ISUM(b, acc) (isum[b] = _mm512_reduce_add_epi32(acc) - 32 * q6_offset(wb[b].scales, &x[b]))
#define ST6_ACCS(b, acc) (accs[b] = (acc), imin[b] = q6_offset(wb[b].scales, &x[b]))

TGT_AVX512 static void avx512_q6_K(const void *w, const st_block_q8_K *x, int64_t nb, int32_t *isum, int32_t *imin)
{
	(void)imin;
	Q6_BODY(acc_bw, ST6_ISUM, nb)
}

TGT_VNNI static void vnni_q6_K(const void *w, const st_block_q8_K *x, int64_t nb, int32_t *isum, int32_t *imin)
{
	(void)imin;
	Q6_BODY(acc_vnni, ST6_ISUM, nb)
}

/* ===================================================================== */
/* Whole-row dots: the integer sums of up to 8 blocks, then kquant.h's     */
/* float rule for those 8 blocks in the 8 lanes of one vector (the same    */
/* IEEE multiplies and subtraction per block as st_kq_combine, lane b % 8, */
/* blocks in order, the same final reduction): the scalar path's bits.     */

static inline uint16_t ld16(const uint8_t *p)
{
	uint16_t v;
	memcpy(&v, p, 2);
	return v;
}

/* 8 fp16 values at p, p + stride, ... (k >= n read as 0) */
TGT_AVX2 INLINE __m256 ld_f16x8(const uint8_t *p, size_t stride, int n)
{
	if (n == 8)
		return _mm256_cvtph_ps(_mm_setr_epi16((short)ld16(p), (short)ld16(p + stride), (short)ld16(p + 2 * stride),
						      (short)ld16(p + 3 * stride), (short)ld16(p + 4 * stride),
						      (short)ld16(p + 5 * stride), (short)ld16(p + 6 * stride),
						      (short)ld16(p + 7 * stride)));
	uint16_t h[8] = { 0 };
	for (int k = 0; k < n; k++)
		h[k] = ld16(p + (size_t)k * stride);
	return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)h));
}

/* n (< 8) floats at p, p + stride bytes, ...; the rest 0 */
TGT_AVX2 INLINE __m256 ld_f32x8(const float *p, size_t stride, int n)
{
	float f[8] = { 0 };
	for (int k = 0; k < n; k++)
		memcpy(&f[k], (const uint8_t *)p + (size_t)k * stride, 4);
	return _mm256_loadu_ps(f);
}

TGT_AVX2 INLINE float hsum8_canon(__m256 acc)
{
	/* ((l0+l4) + (l2+l6)) + ((l1+l5) + (l3+l7)) */
	__m128 s4 = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
	__m128 s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
	__m128 s1 = _mm_add_ss(s2, _mm_shuffle_ps(s2, s2, 1));
	return _mm_cvtss_f32(s1);
}

/* acc + the float rule of n (<= 8) blocks at w (stride bsz, fp16 d at
 * doff, dmin at 2 when min) against x, given their integer sums: lane k
 * gets block k's term; lanes >= n get nothing added. */
TGT_AVX2 INLINE __m256 combine8(__m256 acc, const uint8_t *w, size_t bsz, int doff, bool min,
				const st_block_q8_K *x, int n, __m256i is, __m256i im)
{
	/* vectors built element by element (a wide load of just-stored scalars
	 * would stall on store forwarding) */
	const __m256 dx = n == 8 ? _mm256_setr_ps(x[0].d, x[1].d, x[2].d, x[3].d, x[4].d, x[5].d, x[6].d, x[7].d)
				 : ld_f32x8(&x[0].d, sizeof(st_block_q8_K), n);
	__m256 term = _mm256_mul_ps(_mm256_mul_ps(ld_f16x8(w + doff, bsz, n), dx), _mm256_cvtepi32_ps(is));
	if (min)
		term = _mm256_sub_ps(term, _mm256_mul_ps(_mm256_mul_ps(ld_f16x8(w + 2, bsz, n), dx), _mm256_cvtepi32_ps(im)));
	if (n == 8)
		return _mm256_add_ps(acc, term);
	const __m256 live = _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_set1_epi32(n),
								   _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7)));
	return _mm256_blendv_ps(acc, _mm256_add_ps(acc, term), live);
}

#define ROW_FN(name, TGT, ISUM, BSZ, DOFF, MIN) \
TGT static float name(const void *w, const st_block_q8_K *x, int64_t nb) \
{ \
	const uint8_t *wb = w; \
	__m256 acc = _mm256_setzero_ps(); \
	int32_t is[8] = { 0 }, im[8] = { 0 }; \
	for (int64_t b0 = 0; b0 < nb; b0 += 8, wb += 8 * (BSZ), x += 8) { \
		const int n = nb - b0 < 8 ? (int)(nb - b0) : 8; \
		ISUM(wb, x, n, is, im); \
		acc = combine8(acc, wb, BSZ, DOFF, MIN, x, n, \
			       _mm256_setr_epi32(is[0], is[1], is[2], is[3], is[4], is[5], is[6], is[7]), \
			       _mm256_setr_epi32(im[0], im[1], im[2], im[3], im[4], im[5], im[6], im[7])); \
	} \
	return hsum8_canon(acc); \
}

ROW_FN(avx2_row_q4_K, TGT_AVX2, avx2_q4_K, sizeof(st_block_q4_K), 0, 1)
ROW_FN(avx2_row_q5_K, TGT_AVX2, avx2_q5_K, sizeof(st_block_q5_K), 0, 1)
ROW_FN(avx2_row_q6_K, TGT_AVX2, avx2_q6_K, sizeof(st_block_q6_K), 208, 0)


/* 8 blocks' 16-lane partial sums reduced at once (a transpose-and-add
 * tree): lane k of the result is block k's integer sum. */
TGT_AVX512 INLINE __m256i reduce8(const __m512i *a)
{
	__m256i r[8];
	for (int k = 0; k < 8; k++)
		r[k] = _mm256_add_epi32(_mm512_castsi512_si256(a[k]), _mm512_extracti64x4_epi64(a[k], 1));
	const __m256i h0123 = _mm256_hadd_epi32(_mm256_hadd_epi32(r[0], r[1]), _mm256_hadd_epi32(r[2], r[3]));
	const __m256i h4567 = _mm256_hadd_epi32(_mm256_hadd_epi32(r[4], r[5]), _mm256_hadd_epi32(r[6], r[7]));
	return _mm256_add_epi32(_mm256_permute2x128_si256(h0123, h4567, 0x20),
				_mm256_permute2x128_si256(h0123, h4567, 0x31));
}

/* Row dots with the 8-block reduction (AVX-512, VNNI): Q4_K/Q5_K ... */
#define GROW_Q45(name, TGT, ACC, FIVE, BSZ) \
TGT static float name(const void *w, const st_block_q8_K *x, int64_t nb) \
{ \
	Q45_CONSTS; \
	const bool five = FIVE; \
	const uint8_t *wb = w; \
	__m256 accf = _mm256_setzero_ps(); \
	for (int64_t b0 = 0; b0 < nb; b0 += 8, x += 8) { \
		const int n = nb - b0 < 8 ? (int)(nb - b0) : 8; \
		const uint8_t *w0 = wb; \
		__m512i accs[8]; \
		int32_t imin[8] = { 0 }; \
		for (int b = 0; b < n; b++, wb += (BSZ)) \
			Q45_BLOCK(ACC, ST_ACCS); \
		for (int b = n; b < 8; b++) \
			accs[b] = _mm512_setzero_si512(); \
		accf = combine8(accf, w0, BSZ, 0, true, x, n, reduce8(accs), \
				_mm256_setr_epi32(imin[0], imin[1], imin[2], imin[3], imin[4], imin[5], imin[6], imin[7])); \
	} \
	return hsum8_canon(accf); \
}
/* ... and Q6_K (imin holds the offset sums sum_g sc_g * bsums_g) */
#define GROW_Q6(name, TGT, ACC) \
TGT static float name(const void *w, const st_block_q8_K *x, int64_t nb) \
{ \
	__m256 accf = _mm256_setzero_ps(); \
	for (int64_t b0 = 0; b0 < nb; b0 += 8, x += 8, w = (const st_block_q6_K *)w + 8) { \
		const int n = nb - b0 < 8 ? (int)(nb - b0) : 8; \
		__m512i accs[8]; \
		int32_t imin[8] = { 0 }; \
		{ \
			Q6_BODY(ACC, ST6_ACCS, n) \
		} \
		for (int b = n; b < 8; b++) \
			accs[b] = _mm512_setzero_si512(); \
		const __m256i is = _mm256_sub_epi32(reduce8(accs), _mm256_slli_epi32(_mm256_setr_epi32(imin[0], \
			imin[1], imin[2], imin[3], imin[4], imin[5], imin[6], imin[7]), 5)); \
		accf = combine8(accf, w, sizeof(st_block_q6_K), 208, false, x, n, is, _mm256_setzero_si256()); \
	} \
	return hsum8_canon(accf); \
}

GROW_Q45(avx512_grow_q4_K, TGT_AVX512, acc_bw, false, sizeof(st_block_q4_K))
GROW_Q45(avx512_grow_q5_K, TGT_AVX512, acc_bw, true, sizeof(st_block_q5_K))
GROW_Q6(avx512_grow_q6_K, TGT_AVX512, acc_bw)
GROW_Q45(vnni_grow_q4_K, TGT_VNNI, acc_vnni, false, sizeof(st_block_q4_K))
GROW_Q45(vnni_grow_q5_K, TGT_VNNI, acc_vnni, true, sizeof(st_block_q5_K))
GROW_Q6(vnni_grow_q6_K, TGT_VNNI, acc_vnni)

/* Four tokens at once (prompt processing): each sub-block pair's quants
 * and scales are unpacked once and dotted with four tokens' activations;
 * per token the arithmetic is exactly GROW_Q45's. */
#define GROW4_Q45(name, TGT, ACC, FIVE, BSZ) \
TGT static void name(const void *w, const st_block_q8_K *const *xs, int64_t nb, float *y) \
{ \
	Q45_CONSTS; \
	const bool five = FIVE; \
	const uint8_t *wb = w; \
	__m256 accf[4] = { _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps() }; \
	for (int64_t b0 = 0; b0 < nb; b0 += 8) { \
		const int n = nb - b0 < 8 ? (int)(nb - b0) : 8; \
		const uint8_t *w0 = wb; \
		__m512i accs[4][8]; \
		int32_t imin[4][8] = { { 0 } }; \
		for (int b = 0; b < n; b++, wb += (BSZ)) { \
			const st_block_q4_K *h = (const st_block_q4_K *)wb; \
			const uint8_t *qs = five ? ((const st_block_q5_K *)wb)->qs : h->qs; \
			uint8_t sc[8]; \
			const __m128i m16 = unpack_scales(h->scales, sc); \
			for (int t = 0; t < 4; t++) \
				imin[t][b] = mins_dot(m16, &xs[t][b0 + b]); \
			const __m512i sc16 = _mm512_castsi128_si512(_mm_cvtepu8_epi16(_mm_loadl_epi64((const __m128i *)sc))); \
			__m512i qh = _mm512_setzero_si512(); \
			if (five) \
				qh = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)((const st_block_q5_K *)wb)->qh)); \
			__m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0; \
			for (int c = 0; c < 4; c++) { \
				const __m512i v = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(qs + 32 * c))); \
				__m512i q = _mm512_and_si512(_mm512_srlv_epi16(v, nib_shift), m4); \
				if (five) \
					q = _mm512_or_si512(q, _mm512_slli_epi16(_mm512_and_si512( \
						_mm512_srlv_epi16(qh, _mm512_add_epi16(hb_shift, _mm512_set1_epi16((short)(2 * c)))), \
						one), 4)); \
				const __m512i s16 = _mm512_permutexvar_epi16(_mm512_add_epi16(sc_idx, _mm512_set1_epi16((short)(2 * c))), sc16); \
				a0 = ACC(a0, q, _mm512_loadu_si512((const void *)(xs[0][b0 + b].qs + 64 * c)), s16); \
				a1 = ACC(a1, q, _mm512_loadu_si512((const void *)(xs[1][b0 + b].qs + 64 * c)), s16); \
				a2 = ACC(a2, q, _mm512_loadu_si512((const void *)(xs[2][b0 + b].qs + 64 * c)), s16); \
				a3 = ACC(a3, q, _mm512_loadu_si512((const void *)(xs[3][b0 + b].qs + 64 * c)), s16); \
			} \
			accs[0][b] = a0; \
			accs[1][b] = a1; \
			accs[2][b] = a2; \
			accs[3][b] = a3; \
		} \
		for (int t = 0; t < 4; t++) { \
			for (int b = n; b < 8; b++) \
				accs[t][b] = _mm512_setzero_si512(); \
			accf[t] = combine8(accf[t], w0, BSZ, 0, true, xs[t] + b0, n, reduce8(accs[t]), \
					   _mm256_setr_epi32(imin[t][0], imin[t][1], imin[t][2], imin[t][3], imin[t][4], \
							     imin[t][5], imin[t][6], imin[t][7])); \
		} \
	} \
	for (int t = 0; t < 4; t++) \
		y[t] = hsum8_canon(accf[t]); \
}

GROW4_Q45(avx512_grow4_q4_K, TGT_AVX512, acc_bw, false, sizeof(st_block_q4_K))
GROW4_Q45(avx512_grow4_q5_K, TGT_AVX512, acc_bw, true, sizeof(st_block_q5_K))
GROW4_Q45(vnni_grow4_q4_K, TGT_VNNI, acc_vnni, false, sizeof(st_block_q4_K))
GROW4_Q45(vnni_grow4_q5_K, TGT_VNNI, acc_vnni, true, sizeof(st_block_q5_K))

/* ... and Q6_K (quants of each half and their scales shared by the tokens) */
#define GROW4_Q6(name, TGT, ACC) \
TGT static void name(const void *w, const st_block_q8_K *const *xs, int64_t nb, float *y) \
{ \
	const st_block_q6_K *wb = w; \
	const __m512i idx = _mm512_set_epi16(3, 3, 3, 3, 3, 3, 3, 3, 2, 2, 2, 2, 2, 2, 2, 2, \
					     1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0); \
	const __m512i four = _mm512_set1_epi16(4); \
	__m256 accf[4] = { _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps() }; \
	for (int64_t b0 = 0; b0 < nb; b0 += 8) { \
		const int n = nb - b0 < 8 ? (int)(nb - b0) : 8; \
		__m512i accs[4][8]; \
		int32_t off[4][8] = { { 0 } }; \
		for (int b = 0; b < n; b++) { \
			const st_block_q6_K *blk = &wb[b0 + b]; \
			const __m512i s16 = _mm512_castsi256_si512( \
				_mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)blk->scales))); \
			__m512i a[4] = { _mm512_setzero_si512(), _mm512_setzero_si512(), _mm512_setzero_si512(), \
					 _mm512_setzero_si512() }; \
			for (int h = 0; h < 2; h++) { \
				__m512i q12, q34; \
				q6_half(blk, h, &q12, &q34); \
				const __m512i i12 = _mm512_add_epi16(idx, _mm512_set1_epi16((short)(8 * h))); \
				const __m512i s12 = _mm512_permutexvar_epi16(i12, s16); \
				const __m512i s34 = _mm512_permutexvar_epi16(_mm512_add_epi16(i12, four), s16); \
				for (int t = 0; t < 4; t++) { \
					const int8_t *xq = xs[t][b0 + b].qs + 128 * h; \
					a[t] = ACC(a[t], q12, _mm512_loadu_si512((const void *)xq), s12); \
					a[t] = ACC(a[t], q34, _mm512_loadu_si512((const void *)(xq + 64)), s34); \
				} \
			} \
			for (int t = 0; t < 4; t++) { \
				accs[t][b] = a[t]; \
				off[t][b] = q6_offset(blk->scales, &xs[t][b0 + b]); \
			} \
		} \
		for (int t = 0; t < 4; t++) { \
			for (int b = n; b < 8; b++) \
				accs[t][b] = _mm512_setzero_si512(); \
			const __m256i is = _mm256_sub_epi32(reduce8(accs[t]), _mm256_slli_epi32(_mm256_setr_epi32(off[t][0], \
				off[t][1], off[t][2], off[t][3], off[t][4], off[t][5], off[t][6], off[t][7]), 5)); \
			accf[t] = combine8(accf[t], (const uint8_t *)(wb + b0), sizeof(st_block_q6_K), 208, false, \
					   xs[t] + b0, n, is, _mm256_setzero_si256()); \
		} \
	} \
	for (int t = 0; t < 4; t++) \
		y[t] = hsum8_canon(accf[t]); \
}

GROW4_Q6(avx512_grow4_q6_K, TGT_AVX512, acc_bw)
GROW4_Q6(vnni_grow4_q6_K, TGT_VNNI, acc_vnni)

/* AVX2, four tokens at once (Q4_K/Q5_K): the quants of each chunk and the
 * scales are unpacked once; per token the arithmetic is avx2_q45's and the
 * float rule is ROW_FN's. */
#define AVX2_ROW4_Q45(name, FIVE, BSZ) \
TGT_AVX2 static void name(const void *w, const st_block_q8_K *const *xs, int64_t nb, float *y) \
{ \
	const bool five = FIVE; \
	const __m256i m4 = _mm256_set1_epi8(0x0F); \
	const uint8_t *wb = w; \
	__m256 accf[4] = { _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps() }; \
	for (int64_t b0 = 0; b0 < nb; b0 += 8) { \
		const int n = nb - b0 < 8 ? (int)(nb - b0) : 8; \
		const uint8_t *w0 = wb; \
		int32_t is[4][8] = { { 0 } }, im[4][8] = { { 0 } }; \
		for (int b = 0; b < n; b++, wb += (BSZ)) { \
			const st_block_q4_K *h = (const st_block_q4_K *)wb; \
			const uint8_t *qs = five ? ((const st_block_q5_K *)wb)->qs : h->qs; \
			uint8_t sc[8]; \
			const __m128i m16 = unpack_scales(h->scales, sc); \
			const __m256i qh = five ? _mm256_loadu_si256((const __m256i *)((const st_block_q5_K *)wb)->qh) \
						: _mm256_setzero_si256(); \
			__m256i a[4] = { _mm256_setzero_si256(), _mm256_setzero_si256(), _mm256_setzero_si256(), \
					 _mm256_setzero_si256() }; \
			for (int c = 0; c < 4; c++) { \
				const __m256i v = _mm256_loadu_si256((const __m256i *)(qs + 32 * c)); \
				__m256i lo = _mm256_and_si256(v, m4), hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4); \
				if (five) { \
					lo = _mm256_or_si256(lo, q5_high(qh, 2 * c)); \
					hi = _mm256_or_si256(hi, q5_high(qh, 2 * c + 1)); \
				} \
				const __m256i s0 = _mm256_set1_epi16(sc[2 * c]), s1 = _mm256_set1_epi16(sc[2 * c + 1]); \
				for (int t = 0; t < 4; t++) { \
					const int8_t *xq = xs[t][b0 + b].qs + 64 * c; \
					const __m256i p0 = _mm256_maddubs_epi16(lo, _mm256_loadu_si256((const __m256i *)xq)); \
					const __m256i p1 = _mm256_maddubs_epi16(hi, _mm256_loadu_si256((const __m256i *)(xq + 32))); \
					a[t] = _mm256_add_epi32(a[t], _mm256_madd_epi16(p0, s0)); \
					a[t] = _mm256_add_epi32(a[t], _mm256_madd_epi16(p1, s1)); \
				} \
			} \
			for (int t = 0; t < 4; t++) { \
				is[t][b] = hsum_i32_avx2(a[t]); \
				im[t][b] = mins_dot(m16, &xs[t][b0 + b]); \
			} \
		} \
		for (int t = 0; t < 4; t++) \
			accf[t] = combine8(accf[t], w0, BSZ, 0, true, xs[t] + b0, n, \
					   _mm256_setr_epi32(is[t][0], is[t][1], is[t][2], is[t][3], is[t][4], is[t][5], \
							     is[t][6], is[t][7]), \
					   _mm256_setr_epi32(im[t][0], im[t][1], im[t][2], im[t][3], im[t][4], im[t][5], \
							     im[t][6], im[t][7])); \
	} \
	for (int t = 0; t < 4; t++) \
		y[t] = hsum8_canon(accf[t]); \
}

AVX2_ROW4_Q45(avx2_row4_q4_K, false, sizeof(st_block_q4_K))
AVX2_ROW4_Q45(avx2_row4_q5_K, true, sizeof(st_block_q5_K))

st_kq_row4_fn st_kq_row4_kernel_x86(enum st_isa isa, uint32_t type)
{
	switch (isa) {
	case ST_ISA_AVX2:
		return type == ST_TYPE_Q4_K ? avx2_row4_q4_K : type == ST_TYPE_Q5_K ? avx2_row4_q5_K : NULL;
	case ST_ISA_AVX512:
		return type == ST_TYPE_Q4_K ? avx512_grow4_q4_K : type == ST_TYPE_Q5_K ? avx512_grow4_q5_K :
		       type == ST_TYPE_Q6_K ? avx512_grow4_q6_K : NULL;
	case ST_ISA_AVX512_VNNI:
		return type == ST_TYPE_Q4_K ? vnni_grow4_q4_K : type == ST_TYPE_Q5_K ? vnni_grow4_q5_K :
		       type == ST_TYPE_Q6_K ? vnni_grow4_q6_K : NULL;
	default:
		return NULL;
	}
}

st_kq_row_fn st_kq_row_kernel_x86(enum st_isa isa, uint32_t type)
{
	switch (isa) {
	case ST_ISA_AVX2:
		return type == ST_TYPE_Q4_K ? avx2_row_q4_K : type == ST_TYPE_Q5_K ? avx2_row_q5_K :
		       type == ST_TYPE_Q6_K ? avx2_row_q6_K : NULL;
	case ST_ISA_AVX512:
		return type == ST_TYPE_Q4_K ? avx512_grow_q4_K : type == ST_TYPE_Q5_K ? avx512_grow_q5_K :
		       type == ST_TYPE_Q6_K ? avx512_grow_q6_K : NULL;
	case ST_ISA_AVX512_VNNI:
		return type == ST_TYPE_Q4_K ? vnni_grow_q4_K : type == ST_TYPE_Q5_K ? vnni_grow_q5_K :
		       type == ST_TYPE_Q6_K ? vnni_grow_q6_K : NULL;
	default:
		return NULL;
	}
}

st_kq_isum_fn st_kq_isum_kernel_x86(enum st_isa isa, uint32_t type)
{
	switch (isa) {
	case ST_ISA_AVX2:
		return type == ST_TYPE_Q4_K ? avx2_q4_K : type == ST_TYPE_Q5_K ? avx2_q5_K :
		       type == ST_TYPE_Q6_K ? avx2_q6_K : NULL;
	case ST_ISA_AVX512:
		return type == ST_TYPE_Q4_K ? avx512_q4_K : type == ST_TYPE_Q5_K ? avx512_q5_K :
		       type == ST_TYPE_Q6_K ? avx512_q6_K : NULL;
	case ST_ISA_AVX512_VNNI:
		return type == ST_TYPE_Q4_K ? vnni_q4_K : type == ST_TYPE_Q5_K ? vnni_q5_K :
		       type == ST_TYPE_Q6_K ? vnni_q6_K : NULL;
	default:
		return NULL;
	}
}

#else

st_kq_isum_fn st_kq_isum_kernel_x86(enum st_isa isa, uint32_t type)
{
	(void)isa;
	(void)type;
	return NULL;
}

st_kq_row_fn st_kq_row_kernel_x86(enum st_isa isa, uint32_t type)
{
	(void)isa;
	(void)type;
	return NULL;
}

st_kq_row4_fn st_kq_row4_kernel_x86(enum st_isa isa, uint32_t type)
{
	(void)isa;
	(void)type;
	return NULL;
}

#endif
