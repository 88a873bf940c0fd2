/* quant_legacy.c: Q4_1, Q5_0 and Q5_1 reference (de)quantization (ggml's
 * reference formulas: round to nearest, fp16 scale and minimum), the
 * reference dot rule of quant_legacy.h and kernel selection. */
#include "quant_legacy.h"

#include <float.h>
#include <math.h>
#include <string.h>

#include "util.h"

#define QK ST_QK_LEGACY

bool st_ql_type(uint32_t type)
{
	return type == ST_TYPE_Q4_1 || type == ST_TYPE_Q5_0 || type == ST_TYPE_Q5_1;
}

/* ---- dequantization ------------------------------------------------------ */

static void to_float(uint32_t type, const void *src, float *y, int64_t n)
{
	const size_t bsz = st_ql_block_bytes(type);
	const uint8_t *x = src;
	uint8_t q[QK];
	for (int64_t b = 0; b < n / QK; b++, x += bsz, y += QK) {
		uint16_t dh, mh;
		memcpy(&dh, x, 2);
		memcpy(&mh, x + st_ql_min_offset(type), 2);
		const float d = st_fp16_to_fp32(dh), m = st_fp16_to_fp32(mh);
		st_ql_block_unpack(type, x, q);
		for (int j = 0; j < QK; j++)
			y[j] = type == ST_TYPE_Q5_0 ? (float)(q[j] - 16) * d : (float)q[j] * d + m;
	}
}

void st_ql_q4_1_to_float(const void *src, float *dst, int64_t n) { to_float(ST_TYPE_Q4_1, src, dst, n); }
void st_ql_q5_0_to_float(const void *src, float *dst, int64_t n) { to_float(ST_TYPE_Q5_0, src, dst, n); }
void st_ql_q5_1_to_float(const void *src, float *dst, int64_t n) { to_float(ST_TYPE_Q5_1, src, dst, n); }

/* ---- quantization -------------------------------------------------------- */

/* Pack 32 quants (0..31) into qs (and qh when given). */
static void pack(const uint8_t q[QK], uint8_t *qs, uint8_t *qh)
{
	uint32_t h = 0;
	for (int j = 0; j < QK / 2; j++) {
		qs[j] = (uint8_t)((q[j] & 0x0F) | ((q[j + QK / 2] & 0x0F) << 4));
		h |= (uint32_t)(q[j] >> 4) << j;
		h |= (uint32_t)(q[j + QK / 2] >> 4) << (j + QK / 2);
	}
	if (qh)
		memcpy(qh, &h, 4);
}

/* Q4_1 / Q5_1: d = (max - min) / (2^bits - 1), m = min, q = (x - min) / d
 * rounded to nearest (+0.5, truncated), capped at the top code. */
static void minmax_from_float(const float *x, uint16_t *dd, uint16_t *mm, uint8_t q[QK], int top)
{
	float mn = FLT_MAX, mx = -FLT_MAX;
	for (int j = 0; j < QK; j++) {
		mn = x[j] < mn ? x[j] : mn;
		mx = x[j] > mx ? x[j] : mx;
	}
	const float d = (mx - mn) / (float)top;
	const float id = d != 0.0f ? 1.0f / d : 0.0f;
	*dd = st_fp32_to_fp16(d);
	*mm = st_fp32_to_fp16(mn);
	for (int j = 0; j < QK; j++)
		q[j] = (uint8_t)ST_MIN(top, (int)((x[j] - mn) * id + 0.5f));
}

void st_ql_q4_1_from_float(const float *x, void *dst, int64_t n)
{
	st_block_q4_1 *y = dst;
	uint8_t q[QK];
	for (int64_t b = 0; b < n / QK; b++, x += QK) {
		minmax_from_float(x, &y[b].d, &y[b].m, q, 15);
		pack(q, y[b].qs, NULL);
	}
}

void st_ql_q5_1_from_float(const float *x, void *dst, int64_t n)
{
	st_block_q5_1 *y = dst;
	uint8_t q[QK];
	for (int64_t b = 0; b < n / QK; b++, x += QK) {
		minmax_from_float(x, &y[b].d, &y[b].m, q, 31);
		pack(q, y[b].qs, y[b].qh);
	}
}

/* Q5_0: d = (value of largest magnitude) / -16, q = min(31, x/d + 16.5
 * truncated), like Q4_0 with 5 bits. */
void st_ql_q5_0_from_float(const float *x, void *dst, int64_t n)
{
	st_block_q5_0 *y = dst;
	uint8_t q[QK];
	for (int64_t b = 0; b < n / QK; b++, x += QK) {
		float amax = 0.0f, max = 0.0f;
		for (int j = 0; j < QK; j++) {
			if (amax < fabsf(x[j])) {
				amax = fabsf(x[j]);
				max = x[j];
			}
		}
		const float d = max / -16.0f;
		const float id = d != 0.0f ? 1.0f / d : 0.0f;
		y[b].d = st_fp32_to_fp16(d);
		for (int j = 0; j < QK; j++)
			q[j] = (uint8_t)ST_MIN(31, (int8_t)(x[j] * id + 16.5f));
		pack(q, y[b].qs, y[b].qh);
	}
}

/* ---- the reference dot --------------------------------------------------- */

float st_ql_dot_ref(uint32_t type, const void *wrow, const struct st_q8_act *a, int64_t t)
{
	const size_t bsz = st_ql_block_bytes(type);
	const uint8_t *w = wrow;
	const int8_t *qx = a->qs + t * a->nb * QK;
	const float *dx = a->d + t * a->nb;
	const int32_t *sx = a->s + t * a->nb;
	float lane[ST_Q8_LANES] = { 0 };
	uint8_t q[QK];
	for (int64_t b = 0; b < a->nb; b++, w += bsz, qx += QK) {
		uint16_t dh, mh;
		memcpy(&dh, w, 2);
		memcpy(&mh, w + st_ql_min_offset(type), 2);
		st_ql_block_unpack(type, w, q);
		int32_t usum = 0;
		for (int j = 0; j < QK; j++)
			usum += (int32_t)q[j] * qx[j];
		const float sc = st_fp16_to_fp32(dh) * dx[b];
		float term;
		if (type == ST_TYPE_Q5_0) {
			term = sc * (float)(usum - 16 * sx[b]);
		} else {
			const float t1 = sc * (float)usum;
			const float t2 = (st_fp16_to_fp32(mh) * dx[b]) * (float)sx[b];
			term = t1 + t2;
		}
		lane[b % ST_Q8_LANES] += term;
	}
	const float s0 = lane[0] + lane[4], s1 = lane[1] + lane[5];
	const float s2 = lane[2] + lane[6], s3 = lane[3] + lane[7];
	return (s0 + s2) + (s1 + s3);
}

static void scalar_mm(uint32_t type, const void *w, size_t ws, int64_t nr, const struct st_mm_act *a, int64_t t0,
		      int64_t nt, float *y, size_t ldy)
{
	for (int64_t r = 0; r < nr; r++)
		for (int64_t t = 0; t < nt; t++)
			y[(size_t)t * ldy + (size_t)r] = st_ql_dot_ref(type, (const uint8_t *)w + (size_t)r * ws, a->q, t0 + t);
}

#define NOTGT
ST_QL_MM_ENTRIES(scalar, NOTGT, scalar_mm)

st_mm_fn st_ql_mm_kernel(enum st_isa isa, uint32_t type)
{
	if (!st_ql_type(type))
		return NULL;
	if (isa == ST_ISA_SCALAR)
		return type == ST_TYPE_Q4_1 ? scalar_mm_q4_1 : type == ST_TYPE_Q5_0 ? scalar_mm_q5_0 : scalar_mm_q5_1;
	if (!st_cpu_isa_supported(isa))
		return NULL;
#if defined(__x86_64__)
	return st_ql_mm_kernel_x86(isa, type);
#elif defined(__aarch64__)
	return st_ql_mm_kernel_arm(isa, type);
#else
	return NULL;
#endif
}
