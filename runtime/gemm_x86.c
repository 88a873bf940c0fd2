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

#include "kquant.h"
#include "types.h"

#define TGT_VNNI __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512dq,avx512vnni")))
#define INLINE static inline __attribute__((always_inline))

#define GR 4      /* rows per micro-tile */
#define GV 2      /* token groups (of 16) per micro-tile */
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
#define TV(r) T(r, 1); T(r, 2)
	switch (R * 8 + V) {
	TV(1); TV(2); TV(3); TV(4);
	default: break;
	}
#undef T
}

_Static_assert(GR == 4 && GV == 2, "tile_any lists the tile sizes");
_Static_assert(RB == 16, "ybuf rows are one zmm");

/* ---- Q4_K / Q5_K (kquant.h's rule) ------------------------------------ */

#define LBK 8     /* super-blocks of one lane unpacked per pass */

/* GR rows x (up to) LBK super-blocks of one lane, unpacked. */
struct wpanel_k {
	_Alignas(64) int32_t q[GR][LBK * 64];  /* quants 0..31 as int8, 4 per int32 */
	int32_t corr[GR][LBK][8];              /* -128 * sum of sub-block j's quants */
	int32_t sc[GR][LBK][8];                /* 6-bit scales */
	int32_t mp[GR][LBK][4];                /* 6-bit mins as int16 pairs (m[2k], m[2k+1]) */
	float d[GR][LBK], dmin[GR][LBK];
};

/* Sum of the 32 unsigned bytes of v. */
TGT_VNNI INLINE int32_t sum_u8(__m256i v)
{
	const __m256i sad = _mm256_sad_epu8(v, _mm256_setzero_si256());
	const __m128i s2 = _mm_add_epi64(_mm256_castsi256_si128(sad), _mm256_extracti128_si256(sad, 1));
	return _mm_cvtsi128_si32(_mm_add_epi64(s2, _mm_unpackhi_epi64(s2, s2)));
}

TGT_VNNI INLINE void unpack_k(uint32_t type, const uint8_t *w, size_t ws, int nr, int64_t b0, int n,
			      struct wpanel_k *p)
{
	const __m256i m0f = _mm256_set1_epi8(0x0F), one = _mm256_set1_epi8(1);
	const size_t bsz = type == ST_TYPE_Q4_K ? sizeof(st_block_q4_K) : sizeof(st_block_q5_K);
	for (int r = 0; r < nr; r++) {
		for (int i = 0; i < n; i++) {
			const uint8_t *wb = w + (size_t)r * ws + (size_t)(b0 + 8 * (int64_t)i) * bsz;
			const st_block_q4_K *b4 = (const st_block_q4_K *)wb;   /* d, dmin, scales: same in Q5_K */
			const uint8_t *qs = type == ST_TYPE_Q4_K ? b4->qs : ((const st_block_q5_K *)wb)->qs;
			const __m256i qh = type == ST_TYPE_Q5_K
						   ? _mm256_loadu_si256((const __m256i *)((const st_block_q5_K *)wb)->qh)
						   : _mm256_setzero_si256();
			for (int c = 0; c < 4; c++) {   /* 64 values per 32 bytes: sub-blocks 2c, 2c+1 */
				const __m256i raw = _mm256_loadu_si256((const __m256i *)(qs + 32 * c));
				__m256i lo = _mm256_and_si256(raw, m0f);
				__m256i hi = _mm256_and_si256(_mm256_srli_epi16(raw, 4), m0f);
				if (type == ST_TYPE_Q5_K) {
					const __m256i bl = _mm256_and_si256(_mm256_srli_epi16(qh, 2 * c), one);
					const __m256i bh = _mm256_and_si256(_mm256_srli_epi16(qh, 2 * c + 1), one);
					lo = _mm256_or_si256(lo, _mm256_slli_epi16(bl, 4));
					hi = _mm256_or_si256(hi, _mm256_slli_epi16(bh, 4));
				}
				_mm256_store_si256((__m256i *)(p->q[r] + i * 64 + (2 * c) * 8), lo);
				_mm256_store_si256((__m256i *)(p->q[r] + i * 64 + (2 * c + 1) * 8), hi);
				p->corr[r][i][2 * c] = -128 * sum_u8(lo);
				p->corr[r][i][2 * c + 1] = -128 * sum_u8(hi);
			}
			uint8_t sc[8], mn[8];
			for (int j = 0; j < 8; j++) {
				st_kq_scale_min(j, b4->scales, &sc[j], &mn[j]);
				p->sc[r][i][j] = sc[j];
			}
			for (int k = 0; k < 4; k++)
				p->mp[r][i][k] = (int32_t)((uint32_t)mn[2 * k + 1] << 16 | mn[2 * k]);
			p->d[r][i] = _cvtsh_ss(b4->d);
			p->dmin[r][i] = _cvtsh_ss(b4->dmin);
		}
	}
}

/* tile() for super-blocks: per sub-block 8 vpdpbusd, times its scale into
 * isum; imin from 4 vpdpwssd; then
 * term = (d * dx) * (float)isum - (dmin * dx) * (float)imin. */
TGT_VNNI INLINE void tile_k(const int R, const int V, const struct wpanel_k *p, int n, const uint8_t *xq,
			    size_t xgs, const float *xd, size_t xds, const int32_t *xb, float *lanes, size_t lvs)
{
	__m512 facc[GR][GV];
	for (int r = 0; r < R; r++)
		for (int v = 0; v < V; v++)
			facc[r][v] = _mm512_load_ps(lanes + (size_t)v * lvs + (size_t)r * 8 * TG);
	for (int i = 0; i < n; i++) {
		__m512i isum[GR][GV], acc[GR][GV];
		for (int r = 0; r < R; r++)
			for (int v = 0; v < V; v++)
				isum[r][v] = _mm512_setzero_si512();
		const uint8_t *xp = xq + (size_t)i * 256 * TG;
		for (int j = 0; j < 8; j++) {
			for (int r = 0; r < R; r++) {
				const __m512i c = _mm512_set1_epi32(p->corr[r][i][j]);
				for (int v = 0; v < V; v++)
					acc[r][v] = c;
			}
			for (int g = 0; g < 8; g++) {
				__m512i x[GV];
				for (int v = 0; v < V; v++)
					x[v] = _mm512_load_si512((const void *)(xp + (size_t)v * xgs + (j * 8 + g) * 4 * TG));
				for (int r = 0; r < R; r++) {
					const __m512i wv = _mm512_set1_epi32(p->q[r][i * 64 + j * 8 + g]);
					for (int v = 0; v < V; v++)
						acc[r][v] = _mm512_dpbusd_epi32(acc[r][v], x[v], wv);
				}
			}
			for (int r = 0; r < R; r++) {
				const __m512i sc = _mm512_set1_epi32(p->sc[r][i][j]);
				for (int v = 0; v < V; v++)
					isum[r][v] = _mm512_add_epi32(isum[r][v], _mm512_mullo_epi32(acc[r][v], sc));
			}
		}
		__m512i imin[GR][GV];
		for (int r = 0; r < R; r++)
			for (int v = 0; v < V; v++)
				imin[r][v] = _mm512_setzero_si512();
		for (int k = 0; k < 4; k++) {
			__m512i bs[GV];
			for (int v = 0; v < V; v++)
				bs[v] = _mm512_load_si512((const void *)(xb + (size_t)v * xds * 4 + (size_t)i * 4 * TG + k * TG));
			for (int r = 0; r < R; r++) {
				const __m512i m = _mm512_set1_epi32(p->mp[r][i][k]);
				for (int v = 0; v < V; v++)
					imin[r][v] = _mm512_dpwssd_epi32(imin[r][v], bs[v], m);
			}
		}
		__m512 dx[GV];
		for (int v = 0; v < V; v++)
			dx[v] = _mm512_load_ps(xd + (size_t)v * xds + (size_t)i * TG);
		for (int r = 0; r < R; r++) {
			const __m512 d = _mm512_set1_ps(p->d[r][i]), dm = _mm512_set1_ps(p->dmin[r][i]);
			for (int v = 0; v < V; v++) {
				const __m512 ta = _mm512_mul_ps(_mm512_mul_ps(d, dx[v]), _mm512_cvtepi32_ps(isum[r][v]));
				const __m512 tm = _mm512_mul_ps(_mm512_mul_ps(dm, dx[v]), _mm512_cvtepi32_ps(imin[r][v]));
				facc[r][v] = _mm512_add_ps(facc[r][v], _mm512_sub_ps(ta, tm));
			}
		}
	}
	for (int r = 0; r < R; r++)
		for (int v = 0; v < V; v++)
			_mm512_store_ps(lanes + (size_t)v * lvs + (size_t)r * 8 * TG, facc[r][v]);
}

TGT_VNNI static void tile_k_any(int R, int V, const struct wpanel_k *p, int n, const uint8_t *xq, size_t xgs,
				const float *xd, size_t xds, const int32_t *xb, float *lanes, size_t lvs)
{
#define T(r, v) case r * 8 + v: tile_k(r, v, p, n, xq, xgs, xd, xds, xb, lanes, lvs); break
	switch (R * 8 + V) {
	TV(1); TV(2); TV(3); TV(4);
	default: break;
	}
#undef T
}

/* ---- the driver --------------------------------------------------------- */

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

/* Unpack and run one pass over n blocks of lane j for R rows and every
 * token group of the call. */
TGT_VNNI INLINE void pass(uint32_t type, const uint8_t *wr, size_t ws, int R, int j, int64_t q, int n, size_t off,
			  const struct st_gemm_act *ga, int64_t g0, int ng, void *panel, float *lanes, size_t lvs)
{
	const size_t bv = (size_t)ga->bvals;
	const size_t xgs = (size_t)ga->nb * bv * TG, xds = (size_t)ga->nb * TG;
	const bool kq = type == ST_TYPE_Q4_K || type == ST_TYPE_Q5_K;
	if (kq)
		unpack_k(type, wr, ws, R, j + 8 * q, n, panel);
	else
		unpack(type, wr, ws, R, j + 8 * q, n, panel);
	for (int v = 0; v < ng; v += GV) {
		const int V = ng - v < GV ? ng - v : GV;
		const uint8_t *xq = ga->qs + (size_t)(g0 + v) * xgs + off * bv * TG;
		const float *xd = ga->d + (size_t)(g0 + v) * xds + off * TG;
		float *l = lanes + (size_t)v * lvs + (size_t)j * TG;
		if (kq)
			tile_k_any(R, V, panel, n, xq, xgs, xd, xds, ga->bs + (size_t)(g0 + v) * xds * 4 + off * 4 * TG, l,
				   lvs);
		else
			tile_any(R, V, panel, n, xq, xgs, xd, xds, l, lvs);
	}
}

TGT_VNNI INLINE void gemm(uint32_t type, const void *w, size_t ws, int64_t cols, int64_t nr,
			  const struct st_mm_act *a, int64_t t0, int64_t nt, float *y, size_t ldy)
{
	const struct st_gemm_act *ga = a->g;
	const int64_t nb = ga->nb;
	const bool kq = type == ST_TYPE_Q4_K || type == ST_TYPE_Q5_K;
	const int lb = kq ? LBK : LB;
	size_t bsz;
	switch (type) {
	case ST_TYPE_Q4_0: bsz = sizeof(st_block_q4_0); break;
	case ST_TYPE_Q8_0: bsz = sizeof(st_block_q8_0); break;
	case ST_TYPE_Q4_K: bsz = sizeof(st_block_q4_K); break;
	default: bsz = sizeof(st_block_q5_K); break;
	}
	const size_t row_bytes = (size_t)nb * bsz;
	(void)cols;
	union {
		struct wpanel q;
		struct wpanel_k k;
	} panel;
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
					for (int64_t q = 0; q < le - ls; q += lb) {
						const int n = le - ls - q < lb ? (int)(le - ls - q) : lb;
						pass(type, wr, ws, R, j, q, n, (size_t)(ls + q), ga, g0, ng, &panel, &lanes[0][0][0][0],
						     lvs);
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

TGT_VNNI static void gemm_q4_k(const void *w, size_t ws, int64_t cols, int64_t nr, const struct st_mm_act *a,
			       int64_t t0, int64_t nt, float *y, size_t ldy)
{
	gemm(ST_TYPE_Q4_K, w, ws, cols, nr, a, t0, nt, y, ldy);
}

TGT_VNNI static void gemm_q5_k(const void *w, size_t ws, int64_t cols, int64_t nr, const struct st_mm_act *a,
			       int64_t t0, int64_t nt, float *y, size_t ldy)
{
	gemm(ST_TYPE_Q5_K, w, ws, cols, nr, a, t0, nt, y, ldy);
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
	case ST_TYPE_Q4_K: return gemm_q4_k;
	case ST_TYPE_Q5_K: return gemm_q5_k;
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
