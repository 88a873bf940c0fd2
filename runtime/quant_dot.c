/* quant_dot.c: activation quantization to Q8 blocks, the scalar reference
 * dots, and kernel selection. */
#include "quant_dot.h"

#include <math.h>
#include <string.h>

#include "kquant.h"
#include "quant_legacy.h"
#include "util.h"

int st_q8_act_bytes(int64_t cols, int64_t n_tokens, size_t *bytes)
{
	if (cols < 0 || n_tokens < 0 || cols % 32)
		return -EINVAL;
	size_t nb = (size_t)cols / 32, blocks, qs, ds, tot;
	if (st_mul_overflow_size(nb, (size_t)n_tokens, &blocks) ||
	    st_mul_overflow_size(blocks, 32, &qs) || st_mul_overflow_size(blocks, 8, &ds) ||
	    st_add_overflow_size(qs, ds, &tot) || st_add_overflow_size(tot, 3 * 64, &tot))
		return -EOVERFLOW;
	*bytes = tot;
	return 0;
}

static void *align64(void *p)
{
	return (void *)(((uintptr_t)p + 63) & ~(uintptr_t)63);
}

void st_q8_act_init(struct st_q8_act *a, void *mem, int64_t cols, int64_t n_tokens)
{
	a->nb = cols / 32;
	a->n_tokens = n_tokens;
	size_t blocks = (size_t)a->nb * (size_t)n_tokens;
	a->qs = align64(mem);
	a->d = align64(a->qs + blocks * 32);
	a->s = align64(a->d + blocks);
}

void st_q8_act_quantize(struct st_q8_act *a, int64_t t, const float *x)
{
	int8_t *qs = a->qs + t * a->nb * 32;
	float *dd = a->d + t * a->nb;
	int32_t *ss = a->s + t * a->nb;
	for (int64_t b = 0; b < a->nb; b++, x += 32, qs += 32) {
		float amax = 0.0f;
		for (int j = 0; j < 32; j++)
			amax = fmaxf(amax, fabsf(x[j]));
		const float d = amax / 127.0f;
		const float id = d != 0.0f ? 1.0f / d : 0.0f;
		int32_t s = 0;
		dd[b] = st_fp16_to_fp32(st_fp32_to_fp16(d));
		for (int j = 0; j < 32; j++) {
			/* round half away from zero, like roundf, without the call */
			float v = x[j] * id;
			int q = (int)(v + (v >= 0.0f ? 0.49999997f : -0.49999997f));
			qs[j] = (int8_t)q;
			s += q;
		}
		ss[b] = s;
	}
}

st_q8_quantize_fn st_q8_quantizer(enum st_isa isa)
{
	st_q8_quantize_fn f = NULL;
	if (isa != ST_ISA_SCALAR && st_cpu_isa_supported(isa)) {
#if defined(__x86_64__)
		f = st_q8_quantizer_x86(isa);
#elif defined(__aarch64__)
		f = st_q8_quantizer_arm(isa);
#endif
	}
	return f ? f : st_q8_act_quantize;
}

bool st_mm_type_is_quant(uint32_t type)
{
	return type == ST_TYPE_Q8_0 || type == ST_TYPE_Q4_0 || st_ql_type(type);
}

bool st_mm_type_supported(uint32_t type)
{
	return type == ST_TYPE_F32 || type == ST_TYPE_F16 || type == ST_TYPE_BF16 ||
	       st_mm_type_is_quant(type) || st_kq_type(type);
}

static float w_elem(uint32_t type, const void *wrow, int64_t c)
{
	switch (type) {
	case ST_TYPE_F32:
		return ((const float *)wrow)[c];
	case ST_TYPE_F16:
		return st_fp16_to_fp32(((const uint16_t *)wrow)[c]);
	case ST_TYPE_BF16:
		return st_bf16_to_fp32(((const uint16_t *)wrow)[c]);
	default:
		return 0.0f;
	}
}

float st_dot_float_ref(uint32_t type, const void *wrow, const float *x, int64_t cols)
{
	double s = 0.0;
	for (int64_t c = 0; c < cols; c++)
		s += (double)w_elem(type, wrow, c) * (double)x[c];
	return (float)s;
}

int32_t st_dot_q8_block_isum(uint32_t type, const void *wblock, const int8_t *qx)
{
	int32_t s = 0;
	if (type == ST_TYPE_Q8_0) {
		const st_block_q8_0 *b = wblock;
		for (int j = 0; j < 32; j++)
			s += (int32_t)b->qs[j] * qx[j];
	} else if (type == ST_TYPE_Q4_0) {
		const st_block_q4_0 *b = wblock;
		for (int j = 0; j < 16; j++) {
			s += ((b->qs[j] & 0x0F) - 8) * qx[j];
			s += ((b->qs[j] >> 4) - 8) * qx[j + 16];
		}
	}
	return s;
}

float st_dot_q8_ref(uint32_t type, const void *wrow, const struct st_q8_act *a, int64_t t)
{
	if (st_ql_type(type))
		return st_ql_dot_ref(type, wrow, a, t);
	const size_t bsz = type == ST_TYPE_Q8_0 ? sizeof(st_block_q8_0) : sizeof(st_block_q4_0);
	const uint8_t *w = wrow;
	const int8_t *qx = a->qs + t * a->nb * 32;
	const float *dx = a->d + t * a->nb;
	float lane[ST_Q8_LANES] = { 0 };
	for (int64_t b = 0; b < a->nb; b++) {
		uint16_t dh;
		memcpy(&dh, w + (size_t)b * bsz, 2);   /* d is the first field of both blocks */
		const float scale = st_fp16_to_fp32(dh) * dx[b];
		const int32_t isum = st_dot_q8_block_isum(type, w + (size_t)b * bsz, qx + b * 32);
		const float term = scale * (float)isum;
		lane[b % ST_Q8_LANES] += term;
	}
	const float s0 = lane[0] + lane[4], s1 = lane[1] + lane[5];
	const float s2 = lane[2] + lane[6], s3 = lane[3] + lane[7];
	return (s0 + s2) + (s1 + s3);
}

/* Scalar path kernels: loops over the reference dots. */
static void mm_scalar_float(uint32_t type, const void *w, size_t w_stride, int64_t cols, int64_t nr,
			    const struct st_mm_act *a, int64_t t0, int64_t nt, float *y, size_t ldy)
{
	for (int64_t r = 0; r < nr; r++)
		for (int64_t t = 0; t < nt; t++)
			y[(size_t)t * ldy + (size_t)r] = st_dot_float_ref(type, (const uint8_t *)w + (size_t)r * w_stride,
									  a->f + (size_t)(t0 + t) * a->f_stride, cols);
}

static void mm_scalar_quant(uint32_t type, const void *w, size_t w_stride, int64_t nr,
			    const struct st_mm_act *a, int64_t t0, int64_t nt, float *y, size_t ldy)
{
	for (int64_t r = 0; r < nr; r++)
		for (int64_t t = 0; t < nt; t++)
			y[(size_t)t * ldy + (size_t)r] = st_dot_q8_ref(type, (const uint8_t *)w + (size_t)r * w_stride, a->q, t0 + t);
}

#define SCALAR_FLOAT(name, T) \
	static void name(const void *w, size_t ws, int64_t cols, int64_t nr, const struct st_mm_act *a, \
			 int64_t t0, int64_t nt, float *y, size_t ldy) \
	{ mm_scalar_float(T, w, ws, cols, nr, a, t0, nt, y, ldy); }
#define SCALAR_QUANT(name, T) \
	static void name(const void *w, size_t ws, int64_t cols, int64_t nr, const struct st_mm_act *a, \
			 int64_t t0, int64_t nt, float *y, size_t ldy) \
	{ (void)cols; mm_scalar_quant(T, w, ws, nr, a, t0, nt, y, ldy); }
SCALAR_FLOAT(mm_scalar_f32, ST_TYPE_F32)
SCALAR_FLOAT(mm_scalar_f16, ST_TYPE_F16)
SCALAR_FLOAT(mm_scalar_bf16, ST_TYPE_BF16)
SCALAR_QUANT(mm_scalar_q8_0, ST_TYPE_Q8_0)
SCALAR_QUANT(mm_scalar_q4_0, ST_TYPE_Q4_0)

st_mm_fn st_mm_kernel(enum st_isa isa, uint32_t type)
{
	if (st_kq_type(type))
		return st_kq_mm_kernel(isa, type);
	if (st_ql_type(type))
		return st_ql_mm_kernel(isa, type);
	if (isa == ST_ISA_SCALAR) {
		switch (type) {
		case ST_TYPE_F32: return mm_scalar_f32;
		case ST_TYPE_F16: return mm_scalar_f16;
		case ST_TYPE_BF16: return mm_scalar_bf16;
		case ST_TYPE_Q8_0: return mm_scalar_q8_0;
		case ST_TYPE_Q4_0: return mm_scalar_q4_0;
		default: return NULL;
		}
	}
	if (!st_cpu_isa_supported(isa))
		return NULL;
#if defined(__x86_64__)
	return st_mm_kernel_x86(isa, type);
#elif defined(__aarch64__)
	return st_mm_kernel_arm(isa, type);
#else
	return NULL;
#endif
}

static void vec_dots_scalar(const float *q, const float *k, size_t ks, int n, int hd, float scale, float *out)
{
	for (int j = 0; j < n; j++, k += ks) {
		float s = 0.0f;
		for (int i = 0; i < hd; i++)
			s += q[i] * k[i];
		out[j] = s * scale;
	}
}

static void vec_wsum_scalar(const float *p, const float *v, size_t vs, int n, int hd, float *o)
{
	for (int i = 0; i < hd; i++)
		o[i] = 0.0f;
	for (int j = 0; j < n; j++, v += vs)
		for (int i = 0; i < hd; i++)
			o[i] += p[j] * v[i];
}

void st_vec_ops_get(enum st_isa isa, st_vec_dots_fn *dots, st_vec_wsum_fn *wsum)
{
	*dots = vec_dots_scalar;
	*wsum = vec_wsum_scalar;
	if (isa == ST_ISA_SCALAR || !st_cpu_isa_supported(isa))
		return;
#if defined(__x86_64__)
	st_vec_ops_x86(isa, dots, wsum);
#elif defined(__aarch64__)
	st_vec_ops_arm(isa, dots, wsum);
#endif
}
