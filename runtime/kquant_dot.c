/* kquant_dot.c: Q8_K activations, the reference K-quant dot products (the
 * exact rule of kquant.h) and the matmul kernels built on each path's
 * integer sums. */
#include "kquant.h"

#include <math.h>
#include <string.h>

#include "util.h"

/* ---- Q8_K activations ------------------------------------------------ */

int st_q8k_act_bytes(int64_t cols, int64_t n_tokens, size_t *bytes)
{
	size_t blocks, tot;
	if (cols < 0 || n_tokens < 0 || cols % ST_QK_K)
		return -EINVAL;
	if (st_mul_overflow_size((size_t)cols / ST_QK_K, (size_t)n_tokens, &blocks) ||
	    st_mul_overflow_size(blocks, sizeof(st_block_q8_K), &tot) || st_add_overflow_size(tot, 64, &tot))
		return -EOVERFLOW;
	*bytes = tot;
	return 0;
}

void st_q8k_act_init(struct st_q8k_act *a, void *mem, int64_t cols, int64_t n_tokens)
{
	a->nb = cols / ST_QK_K;
	a->n_tokens = n_tokens;
	a->b = (st_block_q8_K *)(((uintptr_t)mem + 63) & ~(uintptr_t)63);
}

void st_q8k_quantize_row(const float *x, st_block_q8_K *y, int64_t nb)
{
	for (int64_t b = 0; b < nb; b++, x += ST_QK_K) {
		float amax = 0.0f;
		for (int j = 0; j < ST_QK_K; j++)
			amax = fmaxf(amax, fabsf(x[j]));
		const float d = amax / 127.0f;
		const float id = d != 0.0f ? 1.0f / d : 0.0f;
		y[b].d = d;
		for (int g = 0; g < ST_QK_K / 16; g++) {
			int s = 0;
			for (int j = 16 * g; j < 16 * g + 16; j++) {
				const float v = x[j] * id;
				/* round half away from zero; |v| <= 127 (+ rounding) */
				int q = (int)(v + (v >= 0.0f ? 0.49999997f : -0.49999997f));
				q = ST_MAX(-127, ST_MIN(127, q));
				y[b].qs[j] = (int8_t)q;
				s += q;
			}
			y[b].bsums[g] = (int16_t)s;
		}
	}
}

void st_q8k_act_quantize(struct st_q8k_act *a, int64_t t, const float *x)
{
	st_q8k_quantize_row(x, a->b + t * a->nb, a->nb);
}

/* ---- reference integer sums ------------------------------------------ */

/* Quants of one block in element order: Q4_K 0..15, Q5_K 0..31. */
static void unpack_q45(uint32_t type, const void *wb, int q[ST_QK_K])
{
	const uint8_t *ql = type == ST_TYPE_Q4_K ? ((const st_block_q4_K *)wb)->qs : ((const st_block_q5_K *)wb)->qs;
	const uint8_t *qh = type == ST_TYPE_Q5_K ? ((const st_block_q5_K *)wb)->qh : NULL;
	for (int c = 0; c < 4; c++) {          /* 64 values per 32 bytes */
		for (int l = 0; l < 32; l++) {
			int lo = ql[32 * c + l] & 0xF, hi = ql[32 * c + l] >> 4;
			if (qh) {
				lo += (qh[l] >> (2 * c)) & 1 ? 16 : 0;
				hi += (qh[l] >> (2 * c + 1)) & 1 ? 16 : 0;
			}
			q[64 * c + l] = lo;
			q[64 * c + 32 + l] = hi;
		}
	}
}

/* Q6_K quants minus 32 (-32..31) in element order. */
static void unpack_q6(const st_block_q6_K *b, int q[ST_QK_K])
{
	for (int h = 0; h < 2; h++) {
		const uint8_t *ql = b->ql + 64 * h, *qh = b->qh + 32 * h;
		int *o = q + 128 * h;
		for (int l = 0; l < 32; l++) {
			o[l] = ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
			o[l + 32] = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
			o[l + 64] = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
			o[l + 96] = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
		}
	}
}

static size_t block_bytes(uint32_t type)
{
	return type == ST_TYPE_Q4_K ? sizeof(st_block_q4_K) :
	       type == ST_TYPE_Q5_K ? sizeof(st_block_q5_K) : sizeof(st_block_q6_K);
}

void st_kq_isum_ref(uint32_t type, const void *w, const st_block_q8_K *x, int64_t nb, int32_t *isum,
		    int32_t *imin)
{
	int q[ST_QK_K];
	for (int64_t b = 0; b < nb; b++) {
		const uint8_t *wb = (const uint8_t *)w + (size_t)b * block_bytes(type);
		int32_t s = 0, m = 0;
		if (type == ST_TYPE_Q6_K) {
			const st_block_q6_K *blk = (const st_block_q6_K *)wb;
			unpack_q6(blk, q);
			for (int g = 0; g < 16; g++) {
				int32_t gs = 0;
				for (int i = 16 * g; i < 16 * g + 16; i++)
					gs += q[i] * x[b].qs[i];
				s += blk->scales[g] * gs;
			}
		} else {
			/* scales[] is at the same offset in Q4_K and Q5_K */
			const uint8_t *scales = ((const st_block_q4_K *)wb)->scales;
			unpack_q45(type, wb, q);
			for (int j = 0; j < 8; j++) {
				uint8_t sc, mn;
				int32_t js = 0;
				st_kq_scale_min(j, scales, &sc, &mn);
				for (int i = 32 * j; i < 32 * j + 32; i++)
					js += q[i] * x[b].qs[i];
				s += sc * js;
				m += mn * (x[b].bsums[2 * j] + x[b].bsums[2 * j + 1]);
			}
		}
		isum[b] = s;
		imin[b] = m;
	}
}

/* lane[(b0 + b) % 8] += term_b for blocks b of this chunk. */
static void kq_accum(uint32_t type, const void *w, const st_block_q8_K *x, int64_t nb, const int32_t *isum,
		     const int32_t *imin, int64_t b0, float lane[8])
{
	for (int64_t b = 0; b < nb; b++) {
		const uint8_t *wb = (const uint8_t *)w + (size_t)b * block_bytes(type);
		const float dx = x[b].d;
		float term;
		if (type == ST_TYPE_Q6_K) {
			const float d = st_fp16_to_fp32(((const st_block_q6_K *)wb)->d);
			term = (d * dx) * (float)isum[b];
		} else {
			const st_block_q4_K *blk = (const st_block_q4_K *)wb;   /* d, dmin shared layout */
			const float d = st_fp16_to_fp32(blk->d), dmin = st_fp16_to_fp32(blk->dmin);
			const float a = (d * dx) * (float)isum[b], m = (dmin * dx) * (float)imin[b];
			term = a - m;
		}
		lane[(b0 + b) % 8] += term;
	}
}

static float lanes_reduce(const float lane[8])
{
	const float s0 = lane[0] + lane[4], s1 = lane[1] + lane[5];
	const float s2 = lane[2] + lane[6], s3 = lane[3] + lane[7];
	return (s0 + s2) + (s1 + s3);
}

float st_kq_combine(uint32_t type, const void *w, const st_block_q8_K *x, int64_t nb,
		    const int32_t *isum, const int32_t *imin)
{
	float lane[8] = { 0 };
	kq_accum(type, w, x, nb, isum, imin, 0, lane);
	return lanes_reduce(lane);
}

/* Dot of one row with one token, in chunks of CH blocks. */
enum { CH = 32 };

static float kq_dot(st_kq_isum_fn fn, uint32_t type, const void *w, const st_block_q8_K *x, int64_t nb)
{
	int32_t isum[CH], imin[CH];
	float lane[8] = { 0 };
	for (int64_t b0 = 0; b0 < nb; b0 += CH) {
		const int64_t n = ST_MIN((int64_t)CH, nb - b0);
		const uint8_t *wb = (const uint8_t *)w + (size_t)b0 * block_bytes(type);
		if (fn) {
			memset(imin, 0, sizeof(imin));
			fn(wb, x + b0, n, isum, imin);
		} else {
			st_kq_isum_ref(type, wb, x + b0, n, isum, imin);
		}
		kq_accum(type, wb, x + b0, n, isum, imin, b0, lane);
	}
	return lanes_reduce(lane);
}

float st_kq_dot_ref(uint32_t type, const void *w, const st_block_q8_K *x, int64_t nb)
{
	return kq_dot(NULL, type, w, x, nb);
}

st_kq_isum_fn st_kq_isum_kernel(enum st_isa isa, uint32_t type)
{
	if (isa == ST_ISA_SCALAR || !st_kq_type(type) || !st_cpu_isa_supported(isa))
		return NULL;
#if defined(__x86_64__)
	return st_kq_isum_kernel_x86(isa, type);
#elif defined(__aarch64__)
	return st_kq_isum_kernel_arm(isa, type);
#else
	return NULL;
#endif
}

st_kq_row_fn st_kq_row_kernel(enum st_isa isa, uint32_t type)
{
	if (isa == ST_ISA_SCALAR || !st_kq_type(type) || !st_cpu_isa_supported(isa))
		return NULL;
#if defined(__x86_64__)
	return st_kq_row_kernel_x86(isa, type);
#elif defined(__aarch64__)
	return st_kq_row_kernel_arm(isa, type);
#else
	return NULL;
#endif
}

st_kq_row4_fn st_kq_row4_kernel(enum st_isa isa, uint32_t type)
{
	if (isa == ST_ISA_SCALAR || !st_kq_type(type) || !st_cpu_isa_supported(isa))
		return NULL;
#if defined(__x86_64__)
	return st_kq_row4_kernel_x86(isa, type);
#elif defined(__aarch64__)
	return st_kq_row4_kernel_arm(isa, type);
#else
	return NULL;
#endif
}

/* ---- matmul kernels (st_mm_fn) ---------------------------------------- */

static void kq_mm(enum st_isa isa, uint32_t type, const void *w, size_t ws, int64_t nr,
		  const struct st_mm_act *a, int64_t t0, int64_t nt, float *y, size_t ldy)
{
	const st_kq_row_fn rf = st_kq_row_kernel(isa, type);
	const st_kq_row4_fn rf4 = rf ? st_kq_row4_kernel(isa, type) : NULL;
	const st_kq_isum_fn fn = rf ? NULL : st_kq_isum_kernel(isa, type);
	const struct st_q8k_act *q = a->qk;
	for (int64_t r = 0; r < nr; r++) {
		const uint8_t *wr = (const uint8_t *)w + (size_t)r * ws;
		int64_t t = 0;
		for (; rf4 && t + 4 <= nt; t += 4) {
			const st_block_q8_K *xs[4];
			float yy[4];
			for (int k = 0; k < 4; k++)
				xs[k] = q->b + (t0 + t + k) * q->nb;
			rf4(wr, xs, q->nb, yy);
			for (int k = 0; k < 4; k++)
				y[(size_t)(t + k) * ldy + (size_t)r] = yy[k];
		}
		for (; t < nt; t++) {
			const st_block_q8_K *xt = q->b + (t0 + t) * q->nb;
			y[(size_t)t * ldy + (size_t)r] = rf ? rf(wr, xt, q->nb) : kq_dot(fn, type, wr, xt, q->nb);
		}
	}
}

#define KQ_MM(name, ISA, T) \
	static void name(const void *w, size_t ws, int64_t cols, int64_t nr, const struct st_mm_act *a, \
			 int64_t t0, int64_t nt, float *y, size_t ldy) \
	{ (void)cols; kq_mm(ISA, T, w, ws, nr, a, t0, nt, y, ldy); }
#define KQ_MM_ISA(suffix, ISA) \
	KQ_MM(kq_mm_q4_K_##suffix, ISA, ST_TYPE_Q4_K) \
	KQ_MM(kq_mm_q5_K_##suffix, ISA, ST_TYPE_Q5_K) \
	KQ_MM(kq_mm_q6_K_##suffix, ISA, ST_TYPE_Q6_K)
KQ_MM_ISA(scalar, ST_ISA_SCALAR)
KQ_MM_ISA(avx2, ST_ISA_AVX2)
KQ_MM_ISA(avx512, ST_ISA_AVX512)
KQ_MM_ISA(vnni, ST_ISA_AVX512_VNNI)
KQ_MM_ISA(neon, ST_ISA_NEON)
KQ_MM_ISA(neon_dot, ST_ISA_NEON_DOTPROD)

#define KQ_PICK(suffix) \
	(type == ST_TYPE_Q4_K ? kq_mm_q4_K_##suffix : type == ST_TYPE_Q5_K ? kq_mm_q5_K_##suffix : kq_mm_q6_K_##suffix)

st_mm_fn st_kq_mm_kernel(enum st_isa isa, uint32_t type)
{
	if (!st_kq_type(type))
		return NULL;
	if (isa != ST_ISA_SCALAR && !st_kq_isum_kernel(isa, type))
		return NULL;     /* the caller falls back to the scalar kernel */
	switch (isa) {
	case ST_ISA_SCALAR: return KQ_PICK(scalar);
	case ST_ISA_AVX2: return KQ_PICK(avx2);
	case ST_ISA_AVX512: return KQ_PICK(avx512);
	case ST_ISA_AVX512_VNNI: return KQ_PICK(vnni);
	case ST_ISA_NEON: return KQ_PICK(neon);
	case ST_ISA_NEON_DOTPROD: return KQ_PICK(neon_dot);
	default: return NULL;
	}
}
