/* kquant.c: scalar reference dequantization (exactly ggml's formulas) and
 * quantization of Q4_K, Q5_K, Q6_K, written from the block definitions.
 *
 * Quantization follows the approach of ggml's reference quantizers (its
 * code is not copied): per sub-block, a small search over candidate inverse
 * scales, each followed by a weighted least-squares fit of scale (and min),
 * keeping the one with the smallest weighted error; the sub-block scales
 * are then quantized to 6 bits (Q4_K/Q5_K) or 8 bits (Q6_K) against an fp16
 * super-scale and the values are re-quantized with the final scales. */
#include "kquant.h"

#include <math.h>
#include <string.h>

#include "util.h"

/* Round to nearest, half away from zero (inline: lrintf is a libm call). */
static inline int nearest_int(float f)
{
	return (int)(f + (f >= 0.0f ? 0.5f : -0.5f));
}

/* fminf/fmaxf for values that are not NaN (also calls without -ffast-math) */
static inline float min_f(float a, float b) { return b < a ? b : a; }
static inline float max_f(float a, float b) { return b > a ? b : a; }

bool st_kq_type(uint32_t type)
{
	return type == ST_TYPE_Q4_K || type == ST_TYPE_Q5_K || type == ST_TYPE_Q6_K;
}

/* ---- dequantization ------------------------------------------------- */

void st_kq_q4_K_to_float(const void *src, float *y, int64_t n)
{
	const st_block_q4_K *x = src;
	for (int64_t i = 0; i < n / ST_QK_K; i++) {
		const float d = st_fp16_to_fp32(x[i].d), min = st_fp16_to_fp32(x[i].dmin);
		const uint8_t *q = x[i].qs;
		for (int j = 0, is = 0; j < ST_QK_K; j += 64, is += 2, q += 32) {
			uint8_t sc, m;
			st_kq_scale_min(is, x[i].scales, &sc, &m);
			const float d1 = d * sc, m1 = min * m;
			st_kq_scale_min(is + 1, x[i].scales, &sc, &m);
			const float d2 = d * sc, m2 = min * m;
			for (int l = 0; l < 32; l++)
				*y++ = d1 * (float)(q[l] & 0xF) - m1;
			for (int l = 0; l < 32; l++)
				*y++ = d2 * (float)(q[l] >> 4) - m2;
		}
	}
}

void st_kq_q5_K_to_float(const void *src, float *y, int64_t n)
{
	const st_block_q5_K *x = src;
	for (int64_t i = 0; i < n / ST_QK_K; i++) {
		const float d = st_fp16_to_fp32(x[i].d), min = st_fp16_to_fp32(x[i].dmin);
		const uint8_t *ql = x[i].qs, *qh = x[i].qh;
		unsigned u1 = 1, u2 = 2;
		for (int j = 0, is = 0; j < ST_QK_K; j += 64, is += 2, ql += 32, u1 <<= 2, u2 <<= 2) {
			uint8_t sc, m;
			st_kq_scale_min(is, x[i].scales, &sc, &m);
			const float d1 = d * sc, m1 = min * m;
			st_kq_scale_min(is + 1, x[i].scales, &sc, &m);
			const float d2 = d * sc, m2 = min * m;
			for (int l = 0; l < 32; l++)
				*y++ = d1 * (float)((ql[l] & 0xF) + (qh[l] & u1 ? 16 : 0)) - m1;
			for (int l = 0; l < 32; l++)
				*y++ = d2 * (float)((ql[l] >> 4) + (qh[l] & u2 ? 16 : 0)) - m2;
		}
	}
}

void st_kq_q6_K_to_float(const void *src, float *y, int64_t n)
{
	const st_block_q6_K *x = src;
	for (int64_t i = 0; i < n / ST_QK_K; i++, y += ST_QK_K) {
		const float d = st_fp16_to_fp32(x[i].d);
		const uint8_t *ql = x[i].ql, *qh = x[i].qh;
		const int8_t *sc = x[i].scales;
		for (int h = 0; h < 2; h++, ql += 64, qh += 32, sc += 8) {
			float *yy = y + 128 * h;
			for (int l = 0; l < 32; l++) {
				const int is = l / 16;
				const int q1 = ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
				const int q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
				const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
				const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
				yy[l] = d * (float)sc[is + 0] * (float)q1;
				yy[l + 32] = d * (float)sc[is + 2] * (float)q2;
				yy[l + 64] = d * (float)sc[is + 4] * (float)q3;
				yy[l + 96] = d * (float)sc[is + 6] * (float)q4;
			}
		}
	}
}

/* ---- quantization --------------------------------------------------- */

/* Asymmetric fit of n (<= 32) values to scale * L - mn with L in 0..nmax,
 * mn >= 0 (x's minimum clamped to at most 0, as every K-quant does): for
 * each candidate inverse scale around nmax / (max - min), round, then the
 * least-squares scale and min for those L; the squared error comes from the
 * same sums (no second pass).  Returns the scale and sets *mn. */
static float fit_scale_min(const float *x, int n, int nmax, float *mn)
{
	float lo = x[0], hi = x[0], sx = 0, sx2 = 0;
	for (int i = 0; i < n; i++) {
		lo = min_f(lo, x[i]);
		hi = max_f(hi, x[i]);
		sx += x[i];
		sx2 += x[i] * x[i];
	}
	if (lo > 0)
		lo = 0;
	if (hi <= lo) {
		*mn = -lo;
		return 0.0f;
	}
	const float sw = (float)n;
	float best_scale = (hi - lo) / (float)nmax, best_min = lo, best_err = INFINITY;
	for (int step = -10; step <= 10; step++) {
		const float iscale = ((float)nmax + 0.1f * (float)step) / (hi - lo);
		float sl = 0, sl2 = 0, sxl = 0;
		for (int i = 0; i < n; i++) {
			int l = (int)(iscale * (x[i] - lo) + 0.5f);    /* >= 0: round half up */
			l = l > nmax ? nmax : l;
			sl += (float)l;
			sl2 += (float)(l * l);
			sxl += (float)l * x[i];
		}
		const float D = sw * sl2 - sl * sl;
		if (!(D > 0))
			continue;
		float scale = (sw * sxl - sx * sl) / D, m = (sl2 * sx - sl * sxl) / D;
		if (m > 0) {
			m = 0;
			scale = sxl / sl2;
		}
		/* sum (scale*l + m - x)^2 expanded */
		const float err = scale * scale * sl2 + 2 * scale * m * sl - 2 * scale * sxl + m * m * sw -
				  2 * m * sx + sx2;
		if (err < best_err) {
			best_err = err;
			best_scale = scale;
			best_min = m;
		}
	}
	*mn = -best_min;
	return best_scale;
}

/* Shared by Q4_K (nmax 15) and Q5_K (nmax 31): fills d, dmin, scales and
 * the final quants L[256] (0..nmax). */
static void quant_k_asym(const float *x, int nmax, uint16_t *d_out, uint16_t *dmin_out,
			 uint8_t scales[ST_K_SCALE_SIZE], uint8_t L[ST_QK_K])
{
	float sc[8], mn[8];
	float max_sc = 0, max_mn = 0;
	/* plain squared error (ggml weights it by av + |x|; on gaussian data
	 * uniform weights gave the lower NMSE: 5.1e-3 vs 5.15e-3 for Q4_K) */
	for (int j = 0; j < 8; j++) {
		sc[j] = fit_scale_min(x + 32 * j, 32, nmax, &mn[j]);
		if (sc[j] < 0)
			sc[j] = 0;
		if (mn[j] < 0)
			mn[j] = 0;
		max_sc = max_f(max_sc, sc[j]);
		max_mn = max_f(max_mn, mn[j]);
	}
	const float inv_sc = max_sc > 0 ? 63.0f / max_sc : 0.0f;
	const float inv_mn = max_mn > 0 ? 63.0f / max_mn : 0.0f;
	memset(scales, 0, ST_K_SCALE_SIZE);
	for (int j = 0; j < 8; j++) {
		const uint8_t ls = (uint8_t)ST_MIN(63, nearest_int(inv_sc * sc[j]));
		const uint8_t lm = (uint8_t)ST_MIN(63, nearest_int(inv_mn * mn[j]));
		if (j < 4) {
			scales[j] = ls;
			scales[j + 4] = lm;
		} else {
			scales[j + 4] = (uint8_t)((ls & 0xF) | ((lm & 0xF) << 4));
			scales[j - 4] |= (uint8_t)((ls >> 4) << 6);
			scales[j] |= (uint8_t)((lm >> 4) << 6);
		}
	}
	*d_out = st_fp32_to_fp16(max_sc / 63.0f);
	*dmin_out = st_fp32_to_fp16(max_mn / 63.0f);
	const float d = st_fp16_to_fp32(*d_out), dmin = st_fp16_to_fp32(*dmin_out);
	for (int j = 0; j < 8; j++) {
		uint8_t s, m;
		st_kq_scale_min(j, scales, &s, &m);
		const float dl = d * s, dm = dmin * m, idl = dl != 0.0f ? 1.0f / dl : 0.0f;
		for (int l = 0; l < 32; l++) {
			int q = nearest_int((x[32 * j + l] + dm) * idl);
			L[32 * j + l] = (uint8_t)ST_MAX(0, ST_MIN(nmax, q));
		}
	}
}

void st_kq_q4_K_from_float(const float *x, void *dst, int64_t n)
{
	st_block_q4_K *y = dst;
	uint8_t L[ST_QK_K];
	for (int64_t i = 0; i < n / ST_QK_K; i++, x += ST_QK_K) {
		quant_k_asym(x, 15, &y[i].d, &y[i].dmin, y[i].scales, L);
		uint8_t *q = y[i].qs;
		for (int j = 0; j < ST_QK_K; j += 64, q += 32)
			for (int l = 0; l < 32; l++)
				q[l] = (uint8_t)(L[j + l] | (L[j + l + 32] << 4));
	}
}

void st_kq_q5_K_from_float(const float *x, void *dst, int64_t n)
{
	st_block_q5_K *y = dst;
	uint8_t L[ST_QK_K];
	for (int64_t i = 0; i < n / ST_QK_K; i++, x += ST_QK_K) {
		quant_k_asym(x, 31, &y[i].d, &y[i].dmin, y[i].scales, L);
		uint8_t *ql = y[i].qs, *qh = y[i].qh;
		memset(qh, 0, ST_QK_K / 8);
		unsigned m1 = 1, m2 = 2;
		for (int j = 0; j < ST_QK_K; j += 64, ql += 32, m1 <<= 2, m2 <<= 2) {
			for (int l = 0; l < 32; l++) {
				unsigned l1 = L[j + l], l2 = L[j + l + 32];
				if (l1 > 15) {
					l1 -= 16;
					qh[l] |= (uint8_t)m1;
				}
				if (l2 > 15) {
					l2 -= 16;
					qh[l] |= (uint8_t)m2;
				}
				ql[l] = (uint8_t)(l1 | (l2 << 4));
			}
		}
	}
}

/* Symmetric fit of 16 values to scale * L, L in -32..31, weights x^2:
 * a search over inverse scales around -32/max, each with the
 * least-squares scale for its L, keeping the best. */
static float fit_scale_sym(const float *x)
{
	float amax = 0, max = 0;
	for (int i = 0; i < 16; i++)
		if (fabsf(x[i]) > amax) {
			amax = fabsf(x[i]);
			max = x[i];
		}
	if (amax == 0)
		return 0.0f;
	float best = 0, best_scale = max / -32.0f;
	for (int step = -9; step <= 9; step++) {
		const float iscale = -(32.0f + 0.1f * (float)step) / max;
		float sxl = 0, sl2 = 0;
		for (int i = 0; i < 16; i++) {
			int l = ST_MAX(-32, ST_MIN(31, nearest_int(iscale * x[i])));
			const float w = x[i] * x[i];
			sxl += w * x[i] * (float)l;
			sl2 += w * (float)l * (float)l;
		}
		if (sl2 > 0 && sxl * sxl > best * sl2) {
			best = sxl * sxl / sl2;
			best_scale = sxl / sl2;
		}
	}
	return best_scale;
}

void st_kq_q6_K_from_float(const float *x, void *dst, int64_t n)
{
	st_block_q6_K *y = dst;
	for (int64_t i = 0; i < n / ST_QK_K; i++, x += ST_QK_K) {
		float sc[16], max_sc = 0, amax_sc = 0;
		uint8_t L[ST_QK_K];
		for (int j = 0; j < 16; j++) {
			sc[j] = fit_scale_sym(x + 16 * j);
			if (fabsf(sc[j]) > amax_sc) {
				amax_sc = fabsf(sc[j]);
				max_sc = sc[j];
			}
		}
		memset(&y[i], 0, sizeof(y[i]));
		if (amax_sc == 0) {
			memset(L, 32, sizeof(L));
		} else {
			const float iscale = -128.0f / max_sc;
			y[i].d = st_fp32_to_fp16(1.0f / iscale);
			for (int j = 0; j < 16; j++)
				y[i].scales[j] = (int8_t)ST_MAX(-128, ST_MIN(127, nearest_int(iscale * sc[j])));
			const float d = st_fp16_to_fp32(y[i].d);
			for (int j = 0; j < 16; j++) {
				const float dl = d * (float)y[i].scales[j];
				for (int l = 0; l < 16; l++) {
					int q = dl != 0.0f ? nearest_int(x[16 * j + l] / dl) : 0;
					L[16 * j + l] = (uint8_t)(ST_MAX(-32, ST_MIN(31, q)) + 32);
				}
			}
		}
		uint8_t *ql = y[i].ql, *qh = y[i].qh;
		for (int j = 0; j < ST_QK_K; j += 128, ql += 64, qh += 32) {
			for (int l = 0; l < 32; l++) {
				const uint8_t q1 = L[j + l], q2 = L[j + l + 32], q3 = L[j + l + 64], q4 = L[j + l + 96];
				ql[l] = (uint8_t)((q1 & 0xF) | ((q3 & 0xF) << 4));
				ql[l + 32] = (uint8_t)((q2 & 0xF) | ((q4 & 0xF) << 4));
				qh[l] = (uint8_t)((q1 >> 4) | ((q2 >> 4) << 2) | ((q3 >> 4) << 4) | ((q4 >> 4) << 6));
			}
		}
	}
}
