/* test_kquant.c: the K-quant types Q4_K, Q5_K, Q6_K: hand-built blocks
 * decode to values worked out from the GGUF spec, quantize->dequantize
 * error per type, the Q8_K dot rule against a float dot of the dequantized
 * values, every SIMD path's integer sums and matmul kernels equal to the
 * scalar reference bit for bit (awkward shapes, extreme values), and the
 * matmul driver giving the same bits with 1, 2 and 3 threads; mkmodel's
 * K-quant types, the Q4_K_M mix rule and the fallback of rows that are not
 * whole 256-blocks. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kquant.h"
#include "matmul.h"
#ifndef ST_KQ_KERNELS_ONLY   /* kquant_qemu.sh builds the kernel checks alone */
#include "mkmodel.h"
#endif
#include "tap.h"
#include "util.h"

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}
static float gauss(void)
{
	double u1 = ((double)(rnd() >> 11) + 1.0) / 9007199254740993.0, u2 = (double)(rnd() >> 11) / 9007199254740992.0;
	return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

static const uint32_t ktypes[] = { ST_TYPE_Q4_K, ST_TYPE_Q5_K, ST_TYPE_Q6_K };

/* Sub-block scales and mins used by the hand-built Q4_K/Q5_K blocks, and
 * their 12-byte packing worked out by hand from the spec:
 *   j < 4: scales[j] = sc_j | (sc_{j+4} >> 4) << 6, scales[j+4] = m_j | (m_{j+4} >> 4) << 6
 *   j >= 4: scales[j+4] = (sc_j & 15) | (m_j & 15) << 4 */
static const int hsc[8] = { 1, 2, 3, 4, 17, 33, 50, 63 }, hm[8] = { 0, 1, 2, 3, 20, 40, 5, 63 };
static const uint8_t hscales[12] = { 0x41, 0x82, 0xC3, 0xC4, 0x40, 0x81, 0x02, 0xC3, 0x41, 0x81, 0x52, 0xFF };

static void test_hand_blocks(void)
{
	float y[256];
	int bad = 0;

	/* Q4_K: d = 1, dmin = 0.5; byte i of qs holds (i & 15) low and
	 * 15 - (i & 15) high; 64 values per 32 bytes: low nibbles first. */
	st_block_q4_K b4;
	b4.d = 0x3C00;
	b4.dmin = 0x3800;
	memcpy(b4.scales, hscales, 12);
	for (int i = 0; i < 128; i++)
		b4.qs[i] = (uint8_t)((i & 15) | ((15 - (i & 15)) << 4));
	st_type_traits(ST_TYPE_Q4_K)->to_float(&b4, y, 256);
	for (int e = 0; e < 256; e++) {
		const int l = e % 64, q = l < 32 ? l & 15 : 15 - ((l - 32) & 15);
		const float want = 1.0f * (float)hsc[e / 32] * (float)q - 0.5f * (float)hm[e / 32];
		bad += y[e] != want;
	}
	ok(bad == 0, "q4_K hand-built block decodes to d*sc*q - dmin*m (%d wrong; e.g. y[255] = %g, want 63*0 - 31.5)",
	   bad, (double)y[255]);
	ok(y[0] == -0.0f + 0.0f && y[33] == 2.0f * 14.0f - 0.5f * 1.0f && y[200] == 50.0f * 8.0f - 2.5f,
	   "q4_K spot values y[0]=%g y[33]=%g y[200]=%g", (double)y[0], (double)y[33], (double)y[200]);

	/* Q5_K: the same, plus qh[l] = l * 37 (mod 256): bit 2c (low half of
	 * chunk c) or 2c+1 (high half) of qh[l] adds 16. */
	st_block_q5_K b5;
	b5.d = 0x3C00;
	b5.dmin = 0x3800;
	memcpy(b5.scales, hscales, 12);
	memcpy(b5.qs, b4.qs, 128);
	for (int l = 0; l < 32; l++)
		b5.qh[l] = (uint8_t)(l * 37);
	st_type_traits(ST_TYPE_Q5_K)->to_float(&b5, y, 256);
	bad = 0;
	for (int e = 0; e < 256; e++) {
		const int c = e / 64, l = e % 64, hi = l >= 32, ll = l % 32;
		int q = hi ? 15 - (ll & 15) : ll & 15;
		q += ((ll * 37) & 255) >> (2 * c + hi) & 1 ? 16 : 0;
		bad += y[e] != (float)hsc[e / 32] * (float)q - 0.5f * (float)hm[e / 32];
	}
	ok(bad == 0, "q5_K hand-built block decodes with the 5th bit from qh (%d wrong)", bad);
	/* element 1: ql low nibble 1, qh[1] = 37 = 0b100101 bit 0 set -> q = 17, sc 1, m 0 */
	ok(y[1] == 17.0f && y[32 + 1] == 2.0f * (14.0f + 0.0f) - 0.5f, "q5_K spot values y[1]=%g y[33]=%g",
	   (double)y[1], (double)y[33]);

	/* Q6_K: d = 0.25, scales[g] = g - 8, quant q(e) = (e * 5) % 64; element
	 * e = 128h + 32k + l: low 4 bits in ql[64h + l + 32(k & 1)] (nibble k >> 1),
	 * high 2 bits in qh[32h + l] bits 2k, 2k+1; value d * sc[e / 16] * (q - 32). */
	st_block_q6_K b6;
	memset(&b6, 0, sizeof(b6));
	b6.d = 0x3400;
	for (int g = 0; g < 16; g++)
		b6.scales[g] = (int8_t)(g - 8);
	for (int e = 0; e < 256; e++) {
		const int q = (e * 5) % 64, h = e / 128, k = (e % 128) / 32, l = e % 32;
		b6.ql[64 * h + l + 32 * (k & 1)] |= (uint8_t)((q & 15) << (4 * (k >> 1)));
		b6.qh[32 * h + l] |= (uint8_t)((q >> 4) << (2 * k));
	}
	st_type_traits(ST_TYPE_Q6_K)->to_float(&b6, y, 256);
	bad = 0;
	for (int e = 0; e < 256; e++)
		bad += y[e] != 0.25f * (float)(e / 16 - 8) * (float)((e * 5) % 64 - 32);
	ok(bad == 0, "q6_K hand-built block decodes to d*sc*(q-32) (%d wrong)", bad);
	/* byte-level spot check: e = 1 -> q = 5: ql[1] low nibble 5, qh[1] bits 0-1 = 0;
	 * e = 33 (k=1, l=1) -> q = 165 % 64 = 37 = 0b100101: ql[33] low 5, qh[1] bits 2-3 = 2 */
	ok((b6.ql[1] & 15) == 5 && (b6.ql[33] & 15) == 5 && ((b6.qh[1] >> 2) & 3) == 2 &&
	   y[33] == 0.25f * -6.0f * 5.0f, "q6_K packing spot check (y[33] = %g)", (double)y[33]);
}

static double nmse(const float *a, const float *b, size_t n)
{
	double num = 0, den = 0;
	for (size_t i = 0; i < n; i++) {
		num += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
		den += (double)a[i] * a[i];
	}
	return den > 0 ? num / den : num;
}

static void test_roundtrip(void)
{
	/* The floor of plain uniform rounding on unit gaussians, step^2 / 12
	 * with the step of each sub-block's range (32 values over ~4.1 sigma
	 * for Q4_K/Q5_K, 16 values symmetric over +-2 sigma for Q6_K): ~6.5e-3
	 * (Q4_K, 16 levels), ~1.6e-3 (Q5_K, 32), ~3.3e-4 (Q6_K, 64).  The
	 * scale search gets under it; bounds sit just above the floor.
	 * Measured (this quantizer): 5.1e-3, 1.28e-3, 3.15e-4. */
	const double bound[3] = { 6e-3, 1.6e-3, 4e-4 };
	const size_t n = 256 * 256;
	float *x = malloc(n * 4), *y = malloc(n * 4);
	void *q = malloc(n);
	for (size_t i = 0; i < n; i++)
		x[i] = gauss();
	for (int k = 0; k < 3; k++) {
		const struct st_type_traits *tr = st_type_traits(ktypes[k]);
		tr->from_float(x, q, (int64_t)n);
		tr->to_float(q, y, (int64_t)n);
		double e = nmse(x, y, n);
		ok(e < bound[k], "%s gaussian round trip NMSE %.3g < %.0e (%.4f bits/weight)", tr->name, e, bound[k],
		   8.0 * tr->type_size / tr->block_size);
	}
	/* zeros, a constant row, one spike: no NaN, exact zeros stay zero */
	memset(x, 0, 256 * 4);
	x[17] = 3.0f;
	for (int k = 0; k < 3; k++) {
		const struct st_type_traits *tr = st_type_traits(ktypes[k]);
		tr->from_float(x, q, 256);
		tr->to_float(q, y, 256);
		int nz = 0;
		for (int i = 0; i < 256; i++)
			nz += i != 17 && y[i] != 0.0f;
		ok(nz == 0 && fabsf(y[17] - 3.0f) < 0.05f, "%s single spike: %d nonzero elsewhere, spike %g", tr->name,
		   nz, (double)y[17]);
		for (int i = 0; i < 256; i++)
			x[i] = -1.5f;
		tr->from_float(x, q, 256);
		tr->to_float(q, y, 256);
		ok(nmse(x, y, 256) < 1e-4, "%s constant negative row: NMSE %.3g", tr->name, nmse(x, y, 256));
		memset(x, 0, 256 * 4);
		x[17] = 3.0f;
	}
	free(x);
	free(y);
	free(q);
}

/* Random K-quant weights (quantized gaussians) with extremes mixed in:
 * a block of all-max quants and scales, and one with the minimum values. */
static void make_weights(uint32_t type, void *w, int64_t rows, int64_t cols)
{
	const struct st_type_traits *tr = st_type_traits(type);
	float *f = malloc((size_t)cols * 4);
	const size_t rb = (size_t)cols / 256 * tr->type_size;
	for (int64_t r = 0; r < rows; r++) {
		for (int64_t c = 0; c < cols; c++)
			f[c] = gauss() * (r % 3 == 0 ? 10.0f : 0.1f);
		tr->from_float(f, (uint8_t *)w + (size_t)r * rb, cols);
	}
	if (cols >= 512 && rows >= 1) {
		uint8_t *b = (uint8_t *)w + tr->type_size;   /* row 0, block 1: every byte 0xFF */
		memset(b, 0xFF, tr->type_size);
		uint16_t one = 0x3C00;
		memcpy(type == ST_TYPE_Q6_K ? b + 208 : b, &one, 2);
		if (type != ST_TYPE_Q6_K)
			memcpy(b + 2, &one, 2);
	}
	free(f);
}

static void test_dot_rule(void)
{
	/* The Q8_K rule against the dequantized weights dotted in double with
	 * the float activations: the error is the activation quantization's. */
	for (int k = 0; k < 3; k++) {
		const uint32_t type = ktypes[k];
		const int64_t cols = 1024, rows = 16;
		const struct st_type_traits *tr = st_type_traits(type);
		uint8_t *w = malloc((size_t)rows * cols);
		float *x = malloc((size_t)cols * 4), *wf = malloc((size_t)cols * 4);
		st_block_q8_K xq[4];
		make_weights(type, w, rows, cols);
		for (int64_t c = 0; c < cols; c++)
			x[c] = gauss();
		st_q8k_quantize_row(x, xq, cols / 256);
		float got[16], want[16];
		for (int64_t r = 0; r < rows; r++) {
			const uint8_t *wr = w + (size_t)r * (size_t)(cols / 256) * tr->type_size;
			tr->to_float(wr, wf, cols);
			double s = 0;
			for (int64_t c = 0; c < cols; c++)
				s += (double)wf[c] * x[c];
			want[r] = (float)s;
			got[r] = st_kq_dot_ref(type, wr, xq, cols / 256);
		}
		double e = nmse(want, got, (size_t)rows);
		ok(e < 1e-3, "%s Q8_K dot vs dequantized float dot: NMSE %.3g", tr->name, e);
		/* the Q8_K blocks themselves: bsums are the sums of 16, |q| <= 127 */
		int bad = 0;
		for (int b = 0; b < 4; b++)
			for (int g = 0; g < 16; g++) {
				int s = 0;
				for (int i = 0; i < 16; i++)
					s += xq[b].qs[16 * g + i];
				bad += s != xq[b].bsums[g];
			}
		ok(bad == 0, "%s Q8_K bsums are the sums of their 16 quants", tr->name);
		free(w);
		free(x);
		free(wf);
	}
}

static void test_paths(void)
{
	const enum st_isa isas[] = { ST_ISA_AVX2, ST_ISA_AVX512, ST_ISA_AVX512_VNNI, ST_ISA_NEON, ST_ISA_NEON_DOTPROD };
	/* rows, cols, tokens: every token count 1..9 and 33 (the 4-token
	 * prefill kernels and their remainders) */
	const int64_t shapes[][3] = { { 1, 256, 1 }, { 3, 512, 2 }, { 7, 2304, 5 }, { 17, 1024, 4 }, { 2, 256 * 33, 3 },
				      { 3, 512, 6 }, { 2, 768, 7 }, { 5, 256, 8 }, { 1, 512, 9 }, { 4, 1280, 33 } };
	for (size_t i = 0; i < ST_ARRAY_SIZE(isas); i++) {
		if (!st_cpu_isa_supported(isas[i])) {
			tap_skip("%s not supported on this CPU/build", st_cpu_isa_name(isas[i]));
			continue;
		}
		for (int k = 0; k < 3; k++) {
			const uint32_t type = ktypes[k];
			st_mm_fn fn = st_kq_mm_kernel(isas[i], type), ref = st_kq_mm_kernel(ST_ISA_SCALAR, type);
			st_kq_isum_fn isf = st_kq_isum_kernel(isas[i], type);
			if (!fn || !isf) {
				tap_skip("%s has no %s kernel (scalar integer sums used)", st_cpu_isa_name(isas[i]),
					 st_type_name(type));
				continue;
			}
			int bad_isum = 0, bad_y = 0;
			for (size_t s = 0; s < ST_ARRAY_SIZE(shapes); s++) {
				const int64_t rows = shapes[s][0], cols = shapes[s][1], nt = shapes[s][2], nb = cols / 256;
				const size_t rb = (size_t)nb * st_type_traits(type)->type_size;
				uint8_t *w = malloc(rows * rb);
				float *x = malloc((size_t)(cols * nt) * 4), *y0 = calloc((size_t)(rows * nt), 4),
				      *y1 = calloc((size_t)(rows * nt), 4);
				size_t need;
				st_q8k_act_bytes(cols, nt, &need);
				void *mem = malloc(need);
				struct st_q8k_act qa;
				make_weights(type, w, rows, cols);
				for (int64_t j = 0; j < cols * nt; j++)
					x[j] = gauss() * (j % 97 == 0 ? 30.0f : 1.0f);
				st_q8k_act_init(&qa, mem, cols, nt);
				for (int64_t t = 0; t < nt; t++)
					st_q8k_act_quantize(&qa, t, x + t * cols);
				/* extreme activations in token 0, block 0: every q = -127 */
				for (int j = 0; j < 256; j++)
					qa.b[0].qs[j] = -127;
				for (int g = 0; g < 16; g++)
					qa.b[0].bsums[g] = -127 * 16;
				int32_t *is0 = malloc((size_t)nb * 4), *im0 = calloc((size_t)nb, 4);
				int32_t *is1 = malloc((size_t)nb * 4), *im1 = calloc((size_t)nb, 4);
				for (int64_t r = 0; r < rows; r++)
					for (int64_t t = 0; t < nt; t++) {
						st_kq_isum_ref(type, w + r * rb, qa.b + t * nb, nb, is0, im0);
						isf(w + r * rb, qa.b + t * nb, nb, is1, im1);
						bad_isum += memcmp(is0, is1, (size_t)nb * 4) != 0 ||
							    (type != ST_TYPE_Q6_K && memcmp(im0, im1, (size_t)nb * 4));
					}
				struct st_mm_act act = { .qk = &qa };
				ref(w, rb, cols, rows, &act, 0, nt, y0, (size_t)rows);
				/* split rows and tokens oddly: must not change any bit */
				fn(w, rb, cols, 1, &act, 0, nt, y1, (size_t)rows);
				if (rows > 1)
					fn(w + rb, rb, cols, rows - 1, &act, 0, 1, y1 + 1, (size_t)rows);
				if (rows > 1 && nt > 1)
					fn(w + rb, rb, cols, rows - 1, &act, 1, nt - 1, y1 + rows + 1, (size_t)rows);
				bad_y += memcmp(y0, y1, (size_t)(rows * nt) * 4) != 0;
				free(w), free(x), free(y0), free(y1), free(mem), free(is0), free(im0), free(is1), free(im1);
			}
			ok(bad_isum == 0 && bad_y == 0,
			   "%s %s: integer sums and matmul equal the scalar reference bit for bit on %zu shapes "
			   "(%d isum, %d output mismatches; 4-token prefill kernel %s)", st_cpu_isa_name(isas[i]),
			   st_type_name(type), ST_ARRAY_SIZE(shapes), bad_isum, bad_y,
			   st_kq_row4_kernel(isas[i], type) ? "used" : "none");
		}
	}
}

static void test_driver(void)
{
	/* st_matmul (Q8_K quantization + row split) with 1, 2, 3 threads on the
	 * best path: same bits, and equal to the scalar reference dot. */
	const int64_t rows = 37, cols = 768, nt = 6;
	for (int k = 0; k < 3; k++) {
		const uint32_t type = ktypes[k];
		const size_t rb = (size_t)cols / 256 * st_type_traits(type)->type_size;
		uint8_t *w = malloc(rows * rb);
		float *x = malloc((size_t)(cols * nt) * 4), *y[3];
		make_weights(type, w, rows, cols);
		for (int64_t j = 0; j < cols * nt; j++)
			x[j] = gauss();
		int rc = 0;
		for (int th = 1; th <= 3; th++) {
			struct st_matmul_ctx *ctx;
			y[th - 1] = calloc((size_t)(rows * nt), 4);
			rc |= st_matmul_ctx_create(th, ST_ISA_AUTO, &ctx);
			if (!rc) {
				rc |= st_matmul(ctx, type, w, rb, rows, cols, x, (size_t)cols, nt, y[th - 1], (size_t)rows);
				st_matmul_ctx_destroy(ctx);
			}
		}
		st_block_q8_K xq[3];
		int bad = 0;
		for (int64_t t = 0; t < nt; t++) {
			st_q8k_quantize_row(x + t * cols, xq, cols / 256);
			for (int64_t r = 0; r < rows; r++)
				bad += st_kq_dot_ref(type, w + r * rb, xq, cols / 256) != y[0][t * rows + r];
		}
		ok(rc == 0 && bad == 0 && !memcmp(y[0], y[1], (size_t)(rows * nt) * 4) &&
		   !memcmp(y[0], y[2], (size_t)(rows * nt) * 4),
		   "%s st_matmul: 1/2/3 threads identical and equal to the reference dot (%d differ, rc %d)",
		   st_type_name(type), bad, rc);
		struct st_matmul_ctx *ctx;
		if (!st_matmul_ctx_create(1, ST_ISA_AUTO, &ctx)) {
			ok(st_matmul(ctx, type, w, rb, 1, 300, x, 300, 1, y[0], 1) == -EINVAL,
			   "%s st_matmul rejects cols 300 (not a multiple of 256)", st_type_name(type));
			st_matmul_ctx_destroy(ctx);
		}
		free(w), free(x), free(y[0]), free(y[1]), free(y[2]);
	}
}

#ifndef ST_KQ_KERNELS_ONLY
/* mkmodel's K-quant types and llama.cpp's _M mix rule, from the tensor list. */
static void test_mkmodel_mix(void)
{
	struct st_mkmodel_params p;
	struct st_mkmodel_tensor *t;
	st_mkmodel_preset("tinyllama-1.1b", &p);
	ok(st_mkmodel_parse_type("Q4_K_M", &p) == 0 && p.type == ST_TYPE_Q4_K && p.mix == ST_MKMODEL_MIX_Q4_K_M,
	   "q4_k_m parses to base q4_K with the Q4_K_M mix");
	int n = st_mkmodel_tensors(&p, &t);
	int q6 = 0, q4 = 0, other = 0, bad = 0;
	for (int i = 0; i < n; i++) {
		if (t[i].type == ST_TYPE_Q6_K) {
			q6++;
			unsigned l;
			/* layers 0-1, 19-21 and (l - 2) % 3 == 2 for 22 layers */
			if (sscanf(t[i].name, "blk.%u.", &l) == 1) {
				const bool more = l < 2 || l >= 19 || (l - 2) % 3 == 2;
				bad += !more || (!strstr(t[i].name, "attn_v") && !strstr(t[i].name, "ffn_down"));
			} else {
				bad += strcmp(t[i].name, "output.weight") != 0;
			}
		} else if (t[i].type == ST_TYPE_Q4_K) {
			q4++;
		} else {
			other += t[i].type != ST_TYPE_F32;
		}
	}
	ok(n == 201 && q6 == 21 && q4 == 135 && other == 0 && bad == 0,
	   "tinyllama q4_K_M: 21 q6_K (output, attn_v/ffn_down of layers 0,1,4,7,10,13,16,19,20,21), 135 q4_K, as "
	   "llama.cpp's file (got %d q6_K, %d q4_K, %d misplaced)", q6, q4, bad);
	free(t);
	/* stories260k-like rows (64, 172): no whole 256-blocks -> q8_0 where 32 divides, else f32 */
	st_mkmodel_preset("stories260k", &p);
	st_mkmodel_parse_type("q6_k", &p);
	n = st_mkmodel_tensors(&p, &t);
	int q8 = 0, f32m = 0, k = 0;
	for (int i = 0; i < n; i++) {
		q8 += t[i].type == ST_TYPE_Q8_0;
		f32m += t[i].type == ST_TYPE_F32 && t[i].ne[1] > 1 && strstr(t[i].name, "ffn_down");
		k += st_kq_type(t[i].type);
	}
	ok(k == 0 && q8 > 0 && f32m == 5, "q6_K on rows of 64/172: %d tensors fall back to q8_0, the 5 ffn_down (rows of "
	   "172) to f32, none stay K", q8);
	free(t);
}
#endif

int main(void)
{
	for (int k = 0; k < 3; k++) {
		const struct st_type_traits *tr = st_type_traits(ktypes[k]);
		ok(tr && tr->supported && tr->block_size == 256 && tr->to_float && tr->from_float,
		   "%s is supported, blocks of 256, %u bytes", tr->name, tr->type_size);
	}
	test_hand_blocks();
	test_roundtrip();
	test_dot_rule();
	test_paths();
	test_driver();
#ifndef ST_KQ_KERNELS_ONLY
	test_mkmodel_mix();
#endif
	return tap_done();
}
