/* gemm_x86.c: the prompt GEMM of gemm.h for AVX-512 VNNI (Q4_0, Q8_0).
 *
 * Micro-tile: GR weight rows x GV groups of 16 tokens, GR*GV int32 block
 * sums and GR*GV f32 lane accumulators in registers.  Per block and per 4
 * values: GV loads of packed activations, GR broadcast weight dwords,
 * GR*GV vpdpbusd.  Per block and tile: per (row, group) one convert and
 * the exact rule's two multiplies and add.  Rows are unpacked GR at a time
 * for one lane's blocks (at most LB of them per pass) into a stack scratch
 * that stays in L1 while every token group of the call streams past it. */
#include "gemm.h"

#if defined(__x86_64__)

#include <immintrin.h>
#include <string.h>

#include "types.h"

#define TGT_VNNI __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512dq,avx512vnni")))
#define INLINE static inline __attribute__((always_inline))

#ifndef GR
#define GR 4
#endif
//      /* rows per micro-tile */
#ifndef GV
#define GV 2
#endif
//      /* token groups (of 16) per micro-tile */
#define LB 64     /* blocks of one lane unpacked per pass */
#define TT 128    /* tokens per pass over a row group (lane accumulators on the stack) */
#define TG ST_GEMM_TG
#define RB 16     /* rows whose outputs are gathered before writing y */

/* GR rows x (up to) LB blocks of one lane, unpacked. */
struct wpanel {
	_Alignas(64) int32_t q[GR][LB * 8];   /* signed int8 weights, 4 per int32 */
	int32_t corr[GR][LB];                 /* -128 * sum of the block's weights */
	float dw[GR][LB];                     /* block scale */
};

/* Unpack rows [0, nr) (nr <= GR) of blocks b = b0, b0 + 8, ... (n of them). */
TGT_VNNI INLINE void unpack(uint32_t type, const uint8_t *w, size_t ws, int nr, int64_t b0, int n,
			    struct wpanel *p)
{
	const __m128i m0f = _mm_set1_epi8(0x0F), eight = _mm_set1_epi8(8);
	for (int r = 0; r < nr; r++) {
		const uint8_t *row = w + (size_t)r * ws;
		for (int i = 0; i < n; i++) {
			int32_t s;
			__m128i *dst = (__m128i *)(p->q[r] + i * 8);
			if (type == ST_TYPE_Q4_0) {
				const st_block_q4_0 *blk = (const st_block_q4_0 *)row + b0 + 8 * (int64_t)i;
				const __m128i raw = _mm_loadu_si128((const __m128i *)blk->qs);
				const __m128i lo = _mm_and_si128(raw, m0f);
				const __m128i hi = _mm_and_si128(_mm_srli_epi16(raw, 4), m0f);
				_mm_store_si128(dst, _mm_sub_epi8(lo, eight));
				_mm_store_si128(dst + 1, _mm_sub_epi8(hi, eight));
				const __m128i sad = _mm_sad_epu8(_mm_add_epi8(lo, hi), _mm_setzero_si128());
				s = _mm_cvtsi128_si32(_mm_add_epi64(sad, _mm_unpackhi_epi64(sad, sad))) - 8 * 32;
				p->dw[r][i] = _cvtsh_ss(blk->d);
			} else {
				const st_block_q8_0 *blk = (const st_block_q8_0 *)row + b0 + 8 * (int64_t)i;
				const __m256i raw = _mm256_loadu_si256((const __m256i *)blk->qs);
				_mm256_store_si256((__m256i *)dst, raw);
				const __m256i sad = _mm256_sad_epu8(_mm256_xor_si256(raw, _mm256_set1_epi8((char)0x80)),
								    _mm256_setzero_si256());
				__m128i s2 = _mm_add_epi64(_mm256_castsi256_si128(sad), _mm256_extracti128_si256(sad, 1));
				s = _mm_cvtsi128_si32(_mm_add_epi64(s2, _mm_unpackhi_epi64(s2, s2))) - 128 * 32;
				p->dw[r][i] = _cvtsh_ss(blk->d);
			}
			p->corr[r][i] = -128 * s;
		}
	}
}

/* One lane's n blocks for R rows x V token groups: the lane accumulators
 * lanes[v * lvs + r * 8 * TG] (already offset to the lane) are loaded,
 * advanced and stored.  xq/xd: packed activations of group 0 at the lane's
 * first block of the pass; groups xgs bytes / xds floats apart. */
TGT_VNNI INLINE void tile(const int R, const int V, const struct wpanel *p, int n, const uint8_t *xq, size_t xgs,
			  const float *xd, size_t xds, float *lanes, size_t lvs)
{
	__m512 facc[GR][GV];
	for (int r = 0; r < R; r++)
		for (int v = 0; v < V; v++)
			facc[r][v] = _mm512_load_ps(lanes + (size_t)v * lvs + (size_t)r * 8 * TG);
	for (int i = 0; i < n; i++) {
		__m512i acc[GR][GV];
		for (int r = 0; r < R; r++) {
			const __m512i c = _mm512_set1_epi32(p->corr[r][i]);
			for (int v = 0; v < V; v++)
				acc[r][v] = c;
		}
		const uint8_t *xp = xq + (size_t)i * 32 * TG;
		for (int g = 0; g < 8; g++) {
			__m512i x[GV];
			for (int v = 0; v < V; v++)
				x[v] = _mm512_load_si512((const void *)(xp + (size_t)v * xgs + g * 4 * TG));
			for (int r = 0; r < R; r++) {
				const __m512i wv = _mm512_set1_epi32(p->q[r][i * 8 + g]);
				for (int v = 0; v < V; v++)
					acc[r][v] = _mm512_dpbusd_epi32(acc[r][v], x[v], wv);
			}
		}
		__m512 dx[GV];
		for (int v = 0; v < V; v++)
			dx[v] = _mm512_load_ps(xd + (size_t)v * xds + (size_t)i * TG);
		for (int r = 0; r < R; r++) {
			const __m512 dw = _mm512_set1_ps(p->dw[r][i]);
			for (int v = 0; v < V; v++) {
				/* term = (dw * dx) * (float)isum; lane += term */
				const __m512 term = _mm512_mul_ps(_mm512_mul_ps(dw, dx[v]), _mm512_cvtepi32_ps(acc[r][v]));
				facc[r][v] = _mm512_add_ps(facc[r][v], term);
			}
		}
	}
	for (int r = 0; r < R; r++)
		for (int v = 0; v < V; v++)
			_mm512_store_ps(lanes + (size_t)v * lvs + (size_t)r * 8 * TG, facc[r][v]);
}

/* tile() with compile-time R (1..GR) and V (1..GV). */
TGT_VNNI static void tile_any(int R, int V, const struct wpanel *p, int n, const uint8_t *xq, size_t xgs,
			      const float *xd, size_t xds, float *lanes, size_t lvs)
{
#define T(r, v) case r * 8 + v: tile(r, v, p, n, xq, xgs, xd, xds, lanes, lvs); break
#if GV == 3
#define TV(r) T(r, 1); T(r, 2); T(r, 3)
#else
#define TV(r) T(r, 1); T(r, 2)
#endif
	switch (R * 8 + V) {
	TV(1); TV(2); TV(3);
#if GR >= 4
	TV(4);
#endif
#if GR >= 6
	TV(5); TV(6);
#endif
	default: break;
	}
#undef TV
#undef T
}

_Static_assert((GR == 3 || GR == 4 || GR == 6) && (GV == 2 || GV == 3), "tile_any lists the tile sizes");
_Static_assert(RB == 16, "ybuf rows are one zmm");

/* Offsets of token t's slot in ybuf, t = 0..15. */
TGT_VNNI static inline __m512i idx_rb(void)
{
	return _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
				  _mm512_set1_epi32(RB));
}

/* Prefetch part j of 8 of rows [0, nr) (the next row group's weights). */
static inline void prefetch_rows(const uint8_t *w, size_t ws, int nr, size_t row_bytes, int j)
{
	const size_t lines = (row_bytes + 63) / 64, l0 = lines * (size_t)j / 8, l1 = lines * (size_t)(j + 1) / 8;
	for (int r = 0; r < nr; r++)
		for (size_t l = l0; l < l1; l++)
			_mm_prefetch((const char *)(w + (size_t)r * ws + l * 64), _MM_HINT_T0);
}

TGT_VNNI INLINE void gemm(uint32_t type, const void *w, size_t ws, int64_t cols, int64_t nr,
			  const struct st_mm_act *a, int64_t t0, int64_t nt, float *y, size_t ldy)
{
	const struct st_gemm_act *ga = a->g;
	const int64_t nb = cols / 32;
	const size_t xgs = (size_t)nb * 32 * TG, xds = (size_t)nb * TG;
	const size_t row_bytes = (size_t)nb * (type == ST_TYPE_Q4_0 ? sizeof(st_block_q4_0) : sizeof(st_block_q8_0));
	struct wpanel p;
	_Alignas(64) float lanes[TT / TG][GR][8][TG];
	/* outputs of RB rows, token-major, written to y one token (RB
	 * consecutive floats) at a time: y's rows are 4 KiB-multiples apart
	 * in a model, and 4-byte stores to them thrash one L1 set */
	_Alignas(64) float ybuf[TT][RB];
	const size_t lvs = (size_t)GR * 8 * TG;
	for (int64_t tt = 0; tt < nt; tt += TT) {
		const int64_t ntt = nt - tt < TT ? nt - tt : TT;
		const int ng = (int)((ntt + TG - 1) / TG);
		const int64_t g0 = (t0 + tt) / TG;
		for (int64_t rb0 = 0; rb0 < nr; rb0 += RB) {
			const int nrb = nr - rb0 < RB ? (int)(nr - rb0) : RB;
			for (int r1 = 0; r1 < nrb; r1 += GR) {
				const int64_t r0 = rb0 + r1;
				const int R = nrb - r1 < GR ? nrb - r1 : GR;
				const int64_t rn = r0 + GR;   /* next group, prefetched meanwhile */
				const int Rn = rn >= nr ? 0 : nr - rn < GR ? (int)(nr - rn) : GR;
				const uint8_t *wr = (const uint8_t *)w + (size_t)r0 * ws;
				memset(lanes, 0, sizeof(lanes));
				for (int j = 0; j < 8; j++) {
					prefetch_rows(wr + (size_t)GR * ws, ws, Rn, row_bytes, j);
					const int64_t ls = st_gemm_lane_start(nb, j), le = st_gemm_lane_start(nb, j + 1);
					for (int64_t q = 0; q < le - ls; q += LB) {
						const int n = le - ls - q < LB ? (int)(le - ls - q) : LB;
						unpack(type, wr, ws, R, j + 8 * q, n, &p);
						const size_t off = (size_t)(ls + q);
						for (int v = 0; v < ng; v += GV) {
							const int V = ng - v < GV ? ng - v : GV;
							tile_any(R, V, &p, n, ga->qs + (size_t)(g0 + v) * xgs + off * 32 * TG,
								 xgs, ga->d + (size_t)(g0 + v) * xds + off * TG, xds,
								 &lanes[v][0][j][0], lvs);
						}
					}
				}
				/* y = ((l0+l4) + (l2+l6)) + ((l1+l5) + (l3+l7)), 16 tokens at a time */
				for (int v = 0; v < ng; v++) {
					for (int r = 0; r < R; r++) {
						const float *l = &lanes[v][r][0][0];
						__m512 l0 = _mm512_load_ps(l), l1 = _mm512_load_ps(l + TG);
						__m512 l2 = _mm512_load_ps(l + 2 * TG), l3 = _mm512_load_ps(l + 3 * TG);
						__m512 l4 = _mm512_load_ps(l + 4 * TG), l5 = _mm512_load_ps(l + 5 * TG);
						__m512 l6 = _mm512_load_ps(l + 6 * TG), l7 = _mm512_load_ps(l + 7 * TG);
						const __m512 s = _mm512_add_ps(
							_mm512_add_ps(_mm512_add_ps(l0, l4), _mm512_add_ps(l2, l6)),
							_mm512_add_ps(_mm512_add_ps(l1, l5), _mm512_add_ps(l3, l7)));
						_mm512_i32scatter_ps(&ybuf[v * TG][r1 + r], idx_rb(), s, 4);
					}
				}
			}
			const __mmask16 m = (__mmask16)((1u << nrb) - 1);
			for (int64_t t = 0; t < ntt; t++)
				_mm512_mask_storeu_ps(y + (size_t)(tt + t) * ldy + (size_t)rb0, m, _mm512_load_ps(ybuf[t]));
		}
	}
}

TGT_VNNI static void gemm_q4_0(const void *w, size_t ws, int64_t cols, int64_t nr, const struct st_mm_act *a,
			       int64_t t0, int64_t nt, float *y, size_t ldy)
{
	gemm(ST_TYPE_Q4_0, w, ws, cols, nr, a, t0, nt, y, ldy);
}

TGT_VNNI static void gemm_q8_0(const void *w, size_t ws, int64_t cols, int64_t nr, const struct st_mm_act *a,
			       int64_t t0, int64_t nt, float *y, size_t ldy)
{
	gemm(ST_TYPE_Q8_0, w, ws, cols, nr, a, t0, nt, y, ldy);
}

st_mm_fn st_gemm_kernel_x86(enum st_isa isa, uint32_t type)
{
	if (isa != ST_ISA_AVX512_VNNI)
		return NULL;
	switch (type) {
	case ST_TYPE_Q4_0: return gemm_q4_0;
	case ST_TYPE_Q8_0: return gemm_q8_0;
	default: return NULL;
	}
}

#else
st_mm_fn st_gemm_kernel_x86(enum st_isa isa, uint32_t type)
{
	(void)isa;
	(void)type;
	return NULL;
}
#endif
