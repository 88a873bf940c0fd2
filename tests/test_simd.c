/* test_simd.c: every SIMD matmul path this CPU has (AVX2, AVX-512, VNNI on
 * x86; NEON, dotprod on aarch64) against the scalar reference, for every
 * weight type and awkward shapes: bit-exact for the quantized (integer dot)
 * types, NMSE <= 1e-7 for float weights.  Also: the on-the-fly activation
 * quantizer against types.c's Q8_0 reference, the reference dots against a
 * double-precision computation from dequantized values, quantize->dequantize
 * error per type, thread-count invariance and attention (F32 and F16 KV). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "attn_f16.h"
#include "cpu_features.h"
#include "matmul.h"
#include "quant_dot.h"
#include "quant_legacy.h"
#include "tap.h"
#include "types.h"
#include "util.h"

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static uint32_t rnd_u32(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint32_t)(rng >> 32);
}
static float rnd_unif(void) { return (float)((rnd_u32() >> 8) * (1.0 / 16777216.0)); }
static float rnd_gauss(void)
{
	float u1 = rnd_unif() + 1e-7f, u2 = rnd_unif();
	return sqrtf(-2.0f * logf(u1)) * cosf(6.2831853f * u2);
}

static double nmse(const float *ref, const float *got, size_t n)
{
	double num = 0, den = 0;
	for (size_t i = 0; i < n; i++) {
		if (isnan(got[i]) || isnan(ref[i]))
			return INFINITY;
		double d = (double)ref[i] - got[i];
		num += d * d;
		den += (double)ref[i] * ref[i];
	}
	return den > 0 ? num / den : num;
}

static const uint32_t types[] = { ST_TYPE_F32, ST_TYPE_F16, ST_TYPE_BF16, ST_TYPE_Q8_0, ST_TYPE_Q4_0,
				   ST_TYPE_Q4_1, ST_TYPE_Q5_0, ST_TYPE_Q5_1 };

/* Random activations with the awkward cases: zero blocks, huge blocks,
 * values on rounding ties. */
static void fill_x(float *x, int64_t n)
{
	for (int64_t i = 0; i < n; i++)
		x[i] = rnd_gauss();
	if (n >= 64)
		for (int j = 32; j < 64; j++)
			x[j] = 0.0f;
	if (n >= 96)
		for (int j = 64; j < 96; j++)
			x[j] = (j & 1 ? -1e3f : 1e3f) * rnd_unif();
	if (n >= 128) { /* amax 127 -> d = 1: exact ties at k + 0.5 */
		x[96] = 127.0f;
		for (int j = 97; j < 128; j++)
			x[j] = (float)((int)(rnd_u32() % 200) - 100) + 0.5f;
	}
}

/* Weights of `type`: from random floats through types.c, plus extreme
 * blocks (q8_0 -128, q4_0/q4_1/q5 all nibbles, q5 all 5th bits set in
 * block 1 and alternating in block 2). */
static void *make_w(uint32_t type, int64_t rows, int64_t cols, size_t stride)
{
	const struct st_type_traits *tr = st_type_traits(type);
	uint8_t *w = calloc((size_t)rows, stride);
	float *f = malloc((size_t)cols * sizeof(float));
	for (int64_t r = 0; r < rows; r++) {
		for (int64_t c = 0; c < cols; c++)
			f[c] = rnd_gauss() * (r % 3 == 2 ? 100.0f : 1.0f);
		tr->from_float(f, w + (size_t)r * stride, cols);
	}
	if (type == ST_TYPE_Q8_0 && cols >= 64) {
		st_block_q8_0 *b = (st_block_q8_0 *)w + 1;
		for (int j = 0; j < 32; j++)
			b->qs[j] = (int8_t)(j & 1 ? -128 : 127);
	}
	if (type == ST_TYPE_Q4_0 && cols >= 64) {
		st_block_q4_0 *b = (st_block_q4_0 *)w + 1;
		for (int j = 0; j < 16; j++)
			b->qs[j] = (uint8_t)(j | ((15 - j) << 4));
	}
	if (st_ql_type(type) && cols >= 96) {
		const size_t bsz = st_ql_block_bytes(type);
		for (int k = 1; k <= 2; k++) {
			uint8_t *b = w + (size_t)k * bsz, *qs = b + bsz - 16;
			for (int j = 0; j < 16; j++)
				qs[j] = (uint8_t)(j | ((15 - j) << 4));
			if (type != ST_TYPE_Q4_1)
				memset(qs - 4, k == 1 ? 0xFF : 0x5A, 4);
		}
	}
	free(f);
	return w;
}

static size_t row_bytes(uint32_t type, int64_t cols)
{
	uint64_t b;
	st_type_row_size(type, (uint64_t)cols, &b);
	return (size_t)b;
}

/* Compare one path against the scalar path on one shape; returns 1 if ok. */
static int check_shape(struct st_matmul_ctx *ref, struct st_matmul_ctx *ctx, uint32_t type, int64_t rows,
		       int64_t cols, int64_t nt, size_t pad, double *worst)
{
	const size_t ws = row_bytes(type, cols) + pad;
	void *w = make_w(type, rows, cols, ws);
	float *x = malloc((size_t)(nt * cols) * sizeof(float));
	float *y0 = malloc((size_t)(nt * rows) * sizeof(float));
	float *y1 = malloc((size_t)(nt * rows) * sizeof(float));
	for (int64_t t = 0; t < nt; t++)
		fill_x(x + t * cols, cols);
	int good = st_matmul(ref, type, w, ws, rows, cols, x, (size_t)cols, nt, y0, (size_t)rows) == 0 &&
		   st_matmul(ctx, type, w, ws, rows, cols, x, (size_t)cols, nt, y1, (size_t)rows) == 0;
	if (good) {
		if (st_mm_type_is_quant(type)) {
			good = memcmp(y0, y1, (size_t)(nt * rows) * sizeof(float)) == 0;
			if (!good)
				for (int64_t i = 0; i < nt * rows; i++)
					if (memcmp(&y0[i], &y1[i], 4)) {
						diag("  first difference at t=%lld r=%lld: ref %.9g got %.9g",
						     (long long)(i / rows), (long long)(i % rows), y0[i], y1[i]);
						break;
					}
		} else {
			double e = nmse(y0, y1, (size_t)(nt * rows));
			if (e > *worst)
				*worst = e;
			good = e <= 1e-7;
		}
	}
	free(w);
	free(x);
	free(y0);
	free(y1);
	return good;
}

static void test_act_quant(void)
{
	const int64_t n = 32 * 64;
	float *x = malloc(n * sizeof(float));
	for (int64_t i = 0; i < n; i++)
		x[i] = rnd_gauss() * (i % 97 == 0 ? 50.0f : 1.0f);
	for (int j = 0; j < 32; j++) /* ties at k + 0.5 with d exactly 1 */
		x[j] = j == 0 ? 127.0f : (float)(j * 7 % 200 - 100) + 0.5f;
	for (int j = 32; j < 64; j++)
		x[j] = 0.0f;
	size_t bytes;
	st_q8_act_bytes(n, 1, &bytes);
	void *mem = malloc(bytes);
	struct st_q8_act a;
	st_q8_act_init(&a, mem, n, 1);
	st_q8_act_quantize(&a, 0, x);
	st_block_q8_0 *ref = malloc((size_t)(n / 32) * sizeof(*ref));
	st_type_traits(ST_TYPE_Q8_0)->from_float(x, ref, n);
	int bad = 0;
	for (int64_t b = 0; b < n / 32; b++) {
		int32_t s = 0;
		for (int j = 0; j < 32; j++) {
			bad += a.qs[b * 32 + j] != ref[b].qs[j];
			s += ref[b].qs[j];
		}
		bad += a.d[b] != st_fp16_to_fp32(ref[b].d);
		bad += a.s[b] != s;
	}
	ok(bad == 0, "activation Q8 quantizer equals types.c q8_0 reference (qs, d, block sums; %d differ)", bad);
	free(x);
	free(mem);
	free(ref);
}

/* The reference dots against double-precision math on dequantized values. */
static void test_reference(void)
{
	const int64_t cols = 32 * 37;
	float *x = malloc(cols * sizeof(float)), *wf = malloc(cols * sizeof(float));
	fill_x(x, cols);
	size_t bytes;
	st_q8_act_bytes(cols, 1, &bytes);
	void *mem = malloc(bytes);
	struct st_q8_act a;
	st_q8_act_init(&a, mem, cols, 1);
	st_q8_act_quantize(&a, 0, x);
	for (size_t i = 0; i < ST_ARRAY_SIZE(types); i++) {
		uint32_t type = types[i];
		void *w = make_w(type, 1, cols, row_bytes(type, cols));
		st_type_traits(type)->to_float(w, wf, cols);
		double want = 0;
		float got;
		if (st_mm_type_is_quant(type)) {
			/* activations dequantized from their Q8 blocks */
			for (int64_t c = 0; c < cols; c++)
				want += (double)wf[c] * ((double)a.qs[c] * a.d[c / 32]);
			got = st_dot_q8_ref(type, w, &a, 0);
		} else {
			for (int64_t c = 0; c < cols; c++)
				want += (double)wf[c] * x[c];
			got = st_dot_float_ref(type, w, x, cols);
		}
		double scale = 0;
		for (int64_t c = 0; c < cols; c++)
			scale += fabs((double)wf[c] * x[c]);
		ok(fabs(got - want) <= 1e-5 * scale, "%s reference dot matches double math (%.6g vs %.6g)",
		   st_type_name(type), got, want);
		free(w);
	}
	free(x);
	free(wf);
	free(mem);
}

/* Quantize -> dequantize error against the bounds each format is known for. */
static void test_roundtrip(void)
{
	const int64_t n = 32 * 4096;
	float *x = malloc(n * sizeof(float)), *y = malloc(n * sizeof(float));
	for (int64_t i = 0; i < n; i++)
		x[i] = rnd_gauss();
	const struct { uint32_t type; double bound; } cases[] = {
		{ ST_TYPE_F16, 1e-6 }, { ST_TYPE_BF16, 3e-5 }, { ST_TYPE_Q8_0, 1e-4 }, { ST_TYPE_Q4_0, 1.5e-2 },
	};
	for (size_t i = 0; i < ST_ARRAY_SIZE(cases); i++) {
		const struct st_type_traits *tr = st_type_traits(cases[i].type);
		void *q = malloc(row_bytes(cases[i].type, n));
		tr->from_float(x, q, n);
		tr->to_float(q, y, n);
		double e = nmse(x, y, (size_t)n);
		ok(e <= cases[i].bound, "%s quantize->dequantize NMSE %.3g <= %.3g (gaussian data)", tr->name, e,
		   cases[i].bound);
		free(q);
	}
	/* Q4_1, Q5_0, Q5_1: rounding to nearest on a uniform grid of step s
	 * gives an error of s^2/12 per value, with s = (max - min) / 15 or
	 * / 31 (Q4_1, Q5_1) or max|x| / 16 (Q5_0) of each block: the NMSE must
	 * be within 15% of that prediction (fp16 scales, Q5_0's clamp of the
	 * one code +16 above the range). */
	const uint32_t lt[] = { ST_TYPE_Q4_1, ST_TYPE_Q5_0, ST_TYPE_Q5_1 };
	for (size_t i = 0; i < ST_ARRAY_SIZE(lt); i++) {
		const struct st_type_traits *tr = st_type_traits(lt[i]);
		void *q = malloc(row_bytes(lt[i], n));
		tr->from_float(x, q, n);
		tr->to_float(q, y, n);
		double pred = 0, den = 0;
		for (int64_t b = 0; b < n / 32; b++) {
			float mn = x[b * 32], mx = x[b * 32], am = 0;
			for (int j = 0; j < 32; j++) {
				mn = fminf(mn, x[b * 32 + j]);
				mx = fmaxf(mx, x[b * 32 + j]);
				am = fmaxf(am, fabsf(x[b * 32 + j]));
			}
			const double st = lt[i] == ST_TYPE_Q5_0 ? am / 16.0 : (mx - mn) / (lt[i] == ST_TYPE_Q4_1 ? 15.0 : 31.0);
			pred += 32 * st * st / 12;
		}
		for (int64_t j = 0; j < n; j++)
			den += (double)x[j] * x[j];
		pred /= den;
		const double e = nmse(x, y, (size_t)n);
		ok(e <= 1.15 * pred && e >= 0.85 * pred,
		   "%s quantize->dequantize NMSE %.3g within 15%% of the step^2/12 bound %.3g (gaussian data)", tr->name,
		   e, pred);
		free(q);
	}
	free(x);
	free(y);
}

static void test_path(enum st_isa isa, struct st_matmul_ctx *ref)
{
	struct st_matmul_ctx *ctx;
	if (!st_cpu_isa_supported(isa)) {
		tap_skip("%s: not supported by this CPU or build", st_cpu_isa_name(isa));
		return;
	}
	if (st_matmul_ctx_create(1, isa, &ctx)) {
		ok(0, "%s: context", st_cpu_isa_name(isa));
		return;
	}
	{ /* the path's activation quantizer: same bytes as the reference */
		const int64_t n = 32 * 300;
		float *x = malloc(n * sizeof(float));
		for (int64_t i = 0; i < n; i++)
			x[i] = rnd_gauss() * (i % 89 == 0 ? 300.0f : 1.0f);
		fill_x(x, n);
		size_t bytes;
		st_q8_act_bytes(n, 1, &bytes);
		void *m0 = malloc(bytes), *m1 = malloc(bytes);
		struct st_q8_act a0, a1;
		st_q8_act_init(&a0, m0, n, 1);
		st_q8_act_init(&a1, m1, n, 1);
		st_q8_act_quantize(&a0, 0, x);
		st_q8_quantizer(isa)(&a1, 0, x);
		ok(!memcmp(a0.qs, a1.qs, (size_t)n) && !memcmp(a0.d, a1.d, (size_t)(n / 32) * 4) &&
		   !memcmp(a0.s, a1.s, (size_t)(n / 32) * 4),
		   "%s: activation quantizer gives the reference's bytes (%lld values, ties, zero and huge blocks)",
		   st_cpu_isa_name(isa), (long long)n);
		free(x);
		free(m0);
		free(m1);
	}
	const int64_t qcols[] = { 32, 64, 96, 128, 256, 288, 544 };
	const int64_t fcols[] = { 1, 7, 16, 17, 45, 128, 300 };
	const int64_t rows[] = { 1, 3, 4, 5, 17, 33 };
	for (size_t ti = 0; ti < ST_ARRAY_SIZE(types); ti++) {
		uint32_t type = types[ti];
		const bool q = st_mm_type_is_quant(type);
		const int64_t *cols = q ? qcols : fcols;
		int fails = 0, n = 0;
		double worst = 0;
		for (size_t ci = 0; ci < 7; ci++)
			for (size_t ri = 0; ri < ST_ARRAY_SIZE(rows); ri++)
				for (int64_t nt = 1; nt <= 17; nt += (ri == 4 && ci == 5) ? 1 : 4) {
					n++;
					fails += !check_shape(ref, ctx, type, rows[ri], cols[ci], nt, (ri & 1) ? 8 : 0,
							      &worst);
					/* 33 tokens: past one 32-token tile, then a 1-token remainder */
					if (nt == 17 && ri == 4) {
						n++;
						fails += !check_shape(ref, ctx, type, rows[ri], cols[ci], 33, 0, &worst);
					}
				}
		if (q)
			ok(fails == 0, "%s %s: %d shapes bit-exact vs scalar (%d differ)", st_cpu_isa_name(isa),
			   st_type_name(type), n, fails);
		else
			ok(fails == 0, "%s %s: %d shapes NMSE <= 1e-7 vs scalar (worst %.3g, %d fail)",
			   st_cpu_isa_name(isa), st_type_name(type), n, worst, fails);
	}
	st_matmul_ctx_destroy(ctx);
}

/* 1, 2 and 3 threads: identical bits, on the best path (rows split by
 * thread; tile remainders land in different threads). */
static void test_threads(void)
{
	struct st_matmul_ctx *c[3];
	for (int i = 0; i < 3; i++)
		st_matmul_ctx_create(i + 1, ST_ISA_AUTO, &c[i]);
	const int64_t rows = 67, cols = 320, nt = 37;
	for (size_t ti = 0; ti < ST_ARRAY_SIZE(types); ti++) {
		uint32_t type = types[ti];
		size_t ws = row_bytes(type, cols);
		void *w = make_w(type, rows, cols, ws);
		float *x = malloc(nt * cols * sizeof(float));
		float *y[3];
		for (int64_t t = 0; t < nt; t++)
			fill_x(x + t * cols, cols);
		for (int i = 0; i < 3; i++) {
			y[i] = malloc(nt * rows * sizeof(float));
			st_matmul(c[i], type, w, ws, rows, cols, x, cols, nt, y[i], rows);
		}
		ok(!memcmp(y[0], y[1], nt * rows * 4) && !memcmp(y[0], y[2], nt * rows * 4),
		   "%s %s: 1, 2 and 3 threads give identical results", st_cpu_isa_name(st_matmul_ctx_isa(c[0])),
		   st_type_name(type));
		for (int i = 0; i < 3; i++)
			free(y[i]);
		free(w);
		free(x);
	}
	for (int i = 0; i < 3; i++)
		st_matmul_ctx_destroy(c[i]);
}

/* Attention against a double-precision reference, on every path, with an
 * F32 or an F16 KV cache (the reference then uses the halves' values). */
static void test_attention(int hd, uint32_t kv_type)
{
	const int n_head = 6, n_kv = 2, pos0 = 40, nt = 20;   /* big enough to use the pool */
	const int qd = n_head * hd, kvd = n_kv * hd, nctx = pos0 + nt;
	const bool f16 = kv_type == ST_TYPE_F16;
	float *q = malloc(nt * qd * 4), *k = malloc(nctx * kvd * 4), *v = malloc(nctx * kvd * 4);
	float *o = malloc(nt * qd * 4), *want = malloc(nt * qd * 4), *o1 = malloc(nt * qd * 4);
	uint16_t *k16 = malloc(nctx * kvd * 2), *v16 = malloc(nctx * kvd * 2);
	for (int i = 0; i < nt * qd; i++)
		q[i] = rnd_gauss();
	for (int i = 0; i < nctx * kvd; i++) {
		k[i] = rnd_gauss();
		v[i] = rnd_gauss();
		k16[i] = st_fp32_to_fp16(k[i]);
		v16[i] = st_fp32_to_fp16(v[i]);
		if (f16) {
			k[i] = st_fp16_to_fp32(k16[i]);
			v[i] = st_fp16_to_fp32(v16[i]);
		}
	}
	const float scale = 1.0f / sqrtf((float)hd);
	for (int t = 0; t < nt; t++)
		for (int h = 0; h < n_head; h++) {
			int kh = h / (n_head / n_kv), n = pos0 + t + 1;
			double s[64], mx = -1e300, sum = 0;
			for (int j = 0; j < n; j++) {
				double d = 0;
				for (int e = 0; e < hd; e++)
					d += (double)q[t * qd + h * hd + e] * k[j * kvd + kh * hd + e];
				s[j] = d * scale;
				mx = s[j] > mx ? s[j] : mx;
			}
			for (int j = 0; j < n; j++)
				sum += s[j] = exp(s[j] - mx);
			for (int e = 0; e < hd; e++) {
				double acc = 0;
				for (int j = 0; j < n; j++)
					acc += s[j] / sum * v[j * kvd + kh * hd + e];
				want[t * qd + h * hd + e] = (float)acc;
			}
		}
	for (int isa = 0; isa < ST_ISA_COUNT; isa++) {
		if (!st_cpu_isa_supported((enum st_isa)isa))
			continue;
		struct st_matmul_ctx *c1, *c3;
		st_matmul_ctx_create(1, (enum st_isa)isa, &c1);
		st_matmul_ctx_create(3, (enum st_isa)isa, &c3);
		const void *kc = f16 ? (const void *)k16 : k, *vc = f16 ? (const void *)v16 : v;
		int rc = st_attention_kv(c1, kv_type, q, qd, nt, pos0, kc, vc, kvd, n_head, n_kv, hd, scale, o, qd);
		rc |= st_attention_kv(c3, kv_type, q, qd, nt, pos0, kc, vc, kvd, n_head, n_kv, hd, scale, o1, qd);
		double e = nmse(want, o, (size_t)(nt * qd));
		ok(!rc && e <= 1e-10 && !memcmp(o, o1, nt * qd * 4),
		   "%s attention, %s KV (GQA 6/2 heads of %d, causal, pos0 %d, %d tokens): NMSE %.3g vs double, "
		   "1 thread == 3 threads", st_cpu_isa_name((enum st_isa)isa), st_type_name(kv_type), hd, pos0, nt, e);
		st_matmul_ctx_destroy(c1);
		st_matmul_ctx_destroy(c3);
	}
	free(q); free(k); free(v); free(o); free(o1); free(want); free(k16); free(v16);
}

/* The F16-cache helpers of each path against the scalar ones, on awkward
 * head sizes (tails of every vector width) and a padded row stride:
 * NMSE <= 1e-7 (float; only the accumulation order differs). */
static void test_attn_f16_helpers(void)
{
	const int hds[] = { 1, 3, 4, 7, 8, 15, 16, 17, 31, 32, 33, 48, 63, 64, 65, 80, 96, 128, 129 };
	st_vec_dots_f16_fn d0, d1;
	st_vec_wsum_f16_fn w0, w1;
	st_vec_ops_f16_get(ST_ISA_SCALAR, &d0, &w0);
	for (int isa = 1; isa < ST_ISA_COUNT; isa++) {
		if (!st_cpu_isa_supported((enum st_isa)isa))
			continue;
		st_vec_ops_f16_get((enum st_isa)isa, &d1, &w1);
		double worst = 0;
		int fails = 0;
		for (size_t hi = 0; hi < ST_ARRAY_SIZE(hds); hi++)
			for (int n = 1; n <= 37; n += 9) {
				const int hd = hds[hi];
				const size_t ks = (size_t)hd + 5;
				float *q = malloc(hd * 4), *p = malloc(n * 4), *r0 = malloc((n + hd) * 4),
				      *r1 = malloc((n + hd) * 4);
				uint16_t *kv = malloc(n * ks * 2);
				for (int i = 0; i < hd; i++)
					q[i] = rnd_gauss();
				for (int j = 0; j < n; j++)
					p[j] = rnd_unif();
				for (size_t i = 0; i < n * ks; i++)
					kv[i] = st_fp32_to_fp16(rnd_gauss());
				d0(q, kv, ks, n, hd, 0.125f, r0);
				d1(q, kv, ks, n, hd, 0.125f, r1);
				w0(p, kv, ks, n, hd, r0 + n);
				w1(p, kv, ks, n, hd, r1 + n);
				const double e = ST_MAX(nmse(r0, r1, (size_t)n), nmse(r0 + n, r1 + n, (size_t)hd));
				worst = e > worst ? e : worst;
				fails += !(e <= 1e-7);
				free(q); free(p); free(r0); free(r1); free(kv);
			}
		ok(fails == 0, "%s F16-KV score dots and weighted sums vs scalar: %zu head sizes x 5 lengths, worst NMSE %.3g",
		   st_cpu_isa_name((enum st_isa)isa), ST_ARRAY_SIZE(hds), worst);
	}
}

int main(void)
{
	const struct st_cpu_features *f = st_cpu_features_get();
	diag("cpu: avx2=%d fma=%d f16c=%d avx512f=%d bw=%d vl=%d vnni=%d bf16=%d neon=%d dotprod=%d; best path %s",
	     f->avx2, f->fma, f->f16c, f->avx512f, f->avx512bw, f->avx512vl, f->avx512vnni, f->avx512bf16,
	     f->neon, f->neon_dotprod, st_cpu_isa_name(st_cpu_isa_best()));
	test_act_quant();
	test_reference();
	test_roundtrip();
	struct st_matmul_ctx *ref;
	if (st_matmul_ctx_create(1, ST_ISA_SCALAR, &ref)) {
		ok(0, "scalar context");
		return tap_done();
	}
#if defined(__aarch64__)
	const enum st_isa paths[] = { ST_ISA_NEON, ST_ISA_NEON_DOTPROD };
#else
	const enum st_isa paths[] = { ST_ISA_AVX2, ST_ISA_AVX512, ST_ISA_AVX512_VNNI };
#endif
	for (size_t i = 0; i < ST_ARRAY_SIZE(paths); i++)
		test_path(paths[i], ref);
	st_matmul_ctx_destroy(ref);
	test_threads();
	test_attention(20, ST_TYPE_F32);
	test_attention(80, ST_TYPE_F32);
	test_attention(20, ST_TYPE_F16);
	test_attention(80, ST_TYPE_F16);
	test_attention(64, ST_TYPE_F16);
	test_attn_f16_helpers();
	return tap_done();
}
