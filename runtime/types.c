/* types.c: the type table and scalar reference (de)quantization, written
 * straight from the GGUF block definitions. */
#include "types.h"

#include <math.h>
#include <strings.h>

#include "kquant.h"
#include "quant_legacy.h"
#include "util.h"

static void f32_to_float(const void *src, float *dst, int64_t n) { memcpy(dst, src, (size_t)n * sizeof(float)); }
static void f32_from_float(const float *src, void *dst, int64_t n) { memcpy(dst, src, (size_t)n * sizeof(float)); }

static void f16_to_float(const void *src, float *dst, int64_t n)
{
	const uint16_t *s = src;
	for (int64_t i = 0; i < n; i++)
		dst[i] = st_fp16_to_fp32(s[i]);
}

static void f16_from_float(const float *src, void *dst, int64_t n)
{
	uint16_t *d = dst;
	for (int64_t i = 0; i < n; i++)
		d[i] = st_fp32_to_fp16(src[i]);
}

static void bf16_to_float(const void *src, float *dst, int64_t n)
{
	const uint16_t *s = src;
	for (int64_t i = 0; i < n; i++)
		dst[i] = st_bf16_to_fp32(s[i]);
}

static void bf16_from_float(const float *src, void *dst, int64_t n)
{
	uint16_t *d = dst;
	for (int64_t i = 0; i < n; i++)
		d[i] = st_fp32_to_bf16(src[i]);
}

/* Q8_0: d = max|x| / 127, q = round(x / d). */
static void q8_0_from_float(const float *x, void *dst, int64_t n)
{
	st_block_q8_0 *y = dst;
	for (int64_t b = 0; b < n / ST_QK8_0; b++, x += ST_QK8_0) {
		float amax = 0.0f;
		for (int j = 0; j < ST_QK8_0; j++)
			amax = fmaxf(amax, fabsf(x[j]));
		const float d = amax / 127.0f;
		const float id = d != 0.0f ? 1.0f / d : 0.0f;
		y[b].d = st_fp32_to_fp16(d);
		for (int j = 0; j < ST_QK8_0; j++)
			y[b].qs[j] = (int8_t)roundf(x[j] * id);
	}
}

static void q8_0_to_float(const void *src, float *y, int64_t n)
{
	const st_block_q8_0 *x = src;
	for (int64_t b = 0; b < n / ST_QK8_0; b++, y += ST_QK8_0) {
		const float d = st_fp16_to_fp32(x[b].d);
		for (int j = 0; j < ST_QK8_0; j++)
			y[j] = (float)x[b].qs[j] * d;
	}
}

/* Q4_0: d = (value of largest magnitude) / -8, q = clamp(x/d + 8.5, 0, 15);
 * element j in the low nibble of qs[j], element j+16 in the high nibble. */
static void q4_0_from_float(const float *x, void *dst, int64_t n)
{
	st_block_q4_0 *y = dst;
	for (int64_t b = 0; b < n / ST_QK4_0; b++, x += ST_QK4_0) {
		float amax = 0.0f, max = 0.0f;
		for (int j = 0; j < ST_QK4_0; j++) {
			if (amax < fabsf(x[j])) {
				amax = fabsf(x[j]);
				max = x[j];
			}
		}
		const float d = max / -8.0f;
		const float id = d != 0.0f ? 1.0f / d : 0.0f;
		y[b].d = st_fp32_to_fp16(d);
		for (int j = 0; j < ST_QK4_0 / 2; j++) {
			const float x0 = x[j] * id, x1 = x[ST_QK4_0 / 2 + j] * id;
			const uint8_t q0 = (uint8_t)ST_MIN(15, (int8_t)(x0 + 8.5f));
			const uint8_t q1 = (uint8_t)ST_MIN(15, (int8_t)(x1 + 8.5f));
			y[b].qs[j] = (uint8_t)(q0 | (q1 << 4));
		}
	}
}

static void q4_0_to_float(const void *src, float *y, int64_t n)
{
	const st_block_q4_0 *x = src;
	for (int64_t b = 0; b < n / ST_QK4_0; b++, y += ST_QK4_0) {
		const float d = st_fp16_to_fp32(x[b].d);
		for (int j = 0; j < ST_QK4_0 / 2; j++) {
			y[j] = (float)((x[b].qs[j] & 0x0F) - 8) * d;
			y[j + ST_QK4_0 / 2] = (float)((x[b].qs[j] >> 4) - 8) * d;
		}
	}
}

#define T(id, nm, bs, ts) [id] = { .name = nm, .block_size = bs, .type_size = ts }
#define TS(id, nm, bs, ts, to, from) [id] = { .name = nm, .block_size = bs, .type_size = ts, .supported = true, .to_float = to, .from_float = from }

static const struct st_type_traits st_traits[ST_TYPE_COUNT] = {
	TS(ST_TYPE_F32, "f32", 1, 4, f32_to_float, f32_from_float),
	TS(ST_TYPE_F16, "f16", 1, 2, f16_to_float, f16_from_float),
	TS(ST_TYPE_Q4_0, "q4_0", 32, 18, q4_0_to_float, q4_0_from_float),
	TS(ST_TYPE_Q4_1, "q4_1", 32, 20, st_ql_q4_1_to_float, st_ql_q4_1_from_float),
	TS(ST_TYPE_Q5_0, "q5_0", 32, 22, st_ql_q5_0_to_float, st_ql_q5_0_from_float),
	TS(ST_TYPE_Q5_1, "q5_1", 32, 24, st_ql_q5_1_to_float, st_ql_q5_1_from_float),
	TS(ST_TYPE_Q8_0, "q8_0", 32, 34, q8_0_to_float, q8_0_from_float),
	T(ST_TYPE_Q8_1, "q8_1", 32, 36),
	T(ST_TYPE_Q2_K, "q2_K", 256, 84),
	T(ST_TYPE_Q3_K, "q3_K", 256, 110),
	TS(ST_TYPE_Q4_K, "q4_K", 256, 144, st_kq_q4_K_to_float, st_kq_q4_K_from_float),
	TS(ST_TYPE_Q5_K, "q5_K", 256, 176, st_kq_q5_K_to_float, st_kq_q5_K_from_float),
	TS(ST_TYPE_Q6_K, "q6_K", 256, 210, st_kq_q6_K_to_float, st_kq_q6_K_from_float),
	T(ST_TYPE_Q8_K, "q8_K", 256, 292),
	T(ST_TYPE_IQ2_XXS, "iq2_xxs", 256, 66),
	T(ST_TYPE_IQ2_XS, "iq2_xs", 256, 74),
	T(ST_TYPE_IQ3_XXS, "iq3_xxs", 256, 98),
	T(ST_TYPE_IQ1_S, "iq1_s", 256, 50),
	T(ST_TYPE_IQ4_NL, "iq4_nl", 32, 18),
	T(ST_TYPE_IQ3_S, "iq3_s", 256, 110),
	T(ST_TYPE_IQ2_S, "iq2_s", 256, 82),
	T(ST_TYPE_IQ4_XS, "iq4_xs", 256, 136),
	T(ST_TYPE_I8, "i8", 1, 1),
	T(ST_TYPE_I16, "i16", 1, 2),
	T(ST_TYPE_I32, "i32", 1, 4),
	T(ST_TYPE_I64, "i64", 1, 8),
	T(ST_TYPE_F64, "f64", 1, 8),
	T(ST_TYPE_IQ1_M, "iq1_m", 256, 56),
	TS(ST_TYPE_BF16, "bf16", 1, 2, bf16_to_float, bf16_from_float),
	T(ST_TYPE_TQ1_0, "tq1_0", 256, 54),
	T(ST_TYPE_TQ2_0, "tq2_0", 256, 66),
	T(ST_TYPE_MXFP4, "mxfp4", 32, 17),
};

const struct st_type_traits *st_type_traits(uint32_t type)
{
	if (type >= ST_TYPE_COUNT || !st_traits[type].name)
		return NULL;
	return &st_traits[type];
}

const char *st_type_name(uint32_t type)
{
	const struct st_type_traits *t = st_type_traits(type);
	return t ? t->name : "unknown";
}

int st_type_from_name(const char *name)
{
	for (int i = 0; i < ST_TYPE_COUNT; i++)
		if (st_traits[i].name && !strcasecmp(st_traits[i].name, name))
			return i;
	return -1;
}

int st_type_row_size(uint32_t type, uint64_t ne0, uint64_t *bytes)
{
	const struct st_type_traits *t = st_type_traits(type);
	if (!t)
		return -EINVAL;
	if (ne0 % t->block_size)
		return -EINVAL;
	if (st_mul_overflow_u64(ne0 / t->block_size, t->type_size, bytes))
		return -EOVERFLOW;
	return 0;
}
