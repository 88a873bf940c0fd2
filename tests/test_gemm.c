/* test_gemm.c: the prompt GEMM (runtime/gemm*.c) for Q4_0, Q8_0, Q4_K and
 * Q5_K against the scalar reference dots (st_dot_q8_ref: quant_dot.h's
 * exact rule; st_kq_dot_ref: kquant.h's), bit for bit:
 *   - the activation packing against its definition (x + 128 in 16-token x
 *     4-value runs, lane-major block order, zero padding);
 *   - the kernel called directly on awkward shapes: 1..33 rows (not a
 *     multiple of the 4-row tile), 1..70 tokens (not a multiple of the
 *     16-token group), one block, blocks not a multiple of 8, lanes longer
 *     than one unpack pass, token offsets t0 > 0, an output stride wider
 *     than the rows (canaries must survive);
 *   - st_matmul with 1, 2 and 3 threads for 1..70 tokens (the GEMM from
 *     ST_GEMM_MIN_TOKENS on, the decode kernels below): identical to the
 *     reference and to each other.
 * Weights include extreme blocks (Q8_0 -128/127, every Q4_0 nibble, K-quant
 * blocks with every quant, scale and min at its maximum) and activations
 * zero blocks, huge blocks and rounding ties. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cpu_features.h"
#include "gemm.h"
#include "kquant.h"
#include "matmul.h"
#include "quant_dot.h"
#include "sampler.h"
#include "tap.h"
#include "types.h"
#include "util.h"

static struct st_rng rng;
static uint32_t rnd_u32(void) { return (uint32_t)(st_rng_next(&rng) >> 32); }
static float rnd_unif(void) { return (float)st_rng_uniform(&rng); }
static float rnd_gauss(void) { return (float)st_rng_normal(&rng); }

static void fill_x(float *x, int64_t n, int64_t tok)
{
	for (int64_t i = 0; i < n; i++)
		x[i] = rnd_gauss();
	const int64_t b = (tok % 5) * 32;   /* the special block moves with the token */
	if (n >= b + 32) {
		for (int j = 0; j < 32; j++) {
			switch (tok % 3) {
			case 0: x[b + j] = 0.0f; break;
			case 1: x[b + j] = (j & 1 ? -1e4f : 1e4f) * rnd_unif(); break;
			default: /* amax 127 -> d = 1: exact ties */
				x[b + j] = j == 0 ? 127.0f : (float)((int)(rnd_u32() % 200) - 100) + 0.5f;
			}
		}
	}
}

static size_t row_bytes(uint32_t type, int64_t cols)
{
	uint64_t b;
	st_type_row_size(type, (uint64_t)cols, &b);
	return (size_t)b;
}

/* Row r of the test weights: gaussian (every third row 100x larger),
 * quantized by types.c, then one extreme block whose position moves with r
 * (Q8_0 alternating -128/127, Q4_0 every nibble value). */
static void make_row(uint32_t type, int64_t r, int64_t cols, float *tmp, uint8_t *dst)
{
	const float scale = r % 3 == 2 ? 100.0f : 1.0f;
	for (int64_t c = 0; c < cols; c++)
		tmp[c] = scale * rnd_gauss();
	st_type_traits(type)->from_float(tmp, dst, cols);
	const int64_t b = r % (cols / 32);
	if (st_kq_type(type)) {   /* every quant, scale and min at its maximum */
		const size_t bsz = type == ST_TYPE_Q4_K ? sizeof(st_block_q4_K) : sizeof(st_block_q5_K);
		uint8_t *blk = dst + (size_t)(r % (cols / 256)) * bsz;
		memset(blk + 4, 0xFF, bsz - 4);   /* all but d, dmin */
	} else if (type == ST_TYPE_Q8_0) {
		st_block_q8_0 *blk = (st_block_q8_0 *)dst + b;
		for (int j = 0; j < 32; j++)
			blk->qs[j] = (int8_t)(j & 1 ? -128 : 127);
	} else {
		st_block_q4_0 *blk = (st_block_q4_0 *)dst + b;
		for (int j = 0; j < 16; j++)
			blk->qs[j] = (uint8_t)(j | ((15 - j) << 4));
	}
}

static void *make_w(uint32_t type, int64_t rows, int64_t cols, size_t stride)
{
	uint8_t *w = calloc((size_t)rows, stride);
	float *tmp = malloc((size_t)cols * sizeof(float));
	for (int64_t r = 0; r < rows; r++)
		make_row(type, r, cols, tmp, w + (size_t)r * stride);
	free(tmp);
	return w;
}

/* Quantized activations of nt tokens (the reference quantizers): Q8 blocks
 * for Q4_0/Q8_0 weights, Q8_K for the K-quants. */
struct acts {
	float *x;
	void *mem, *gmem;
	struct st_q8_act q;
	struct st_q8k_act qk;
	struct st_gemm_act g;
};

static void acts_make(struct acts *a, uint32_t type, int64_t cols, int64_t nt)
{
	const bool kq = st_kq_type(type);
	size_t b1, b2;
	a->x = malloc((size_t)(cols * nt) * sizeof(float));
	for (int64_t t = 0; t < nt; t++)
		fill_x(a->x + t * cols, cols, t);
	if (kq)
		st_q8k_act_bytes(cols, nt, &b1);
	else
		st_q8_act_bytes(cols, nt, &b1);
	st_gemm_act_bytes(cols, nt, kq ? 256 : 32, &b2);
	a->mem = malloc(b1);
	a->gmem = malloc(b2);
	st_gemm_act_init(&a->g, a->gmem, cols, nt, kq ? 256 : 32);
	if (kq) {
		st_q8k_act_init(&a->qk, a->mem, cols, nt);
		for (int64_t t = 0; t < nt; t++)
			st_q8k_act_quantize(&a->qk, t, a->x + t * cols);
		for (int64_t g = 0; g < a->g.n_groups; g++)
			st_gemm_act_pack_k(&a->g, &a->qk, g);
	} else {
		st_q8_act_init(&a->q, a->mem, cols, nt);
		for (int64_t t = 0; t < nt; t++)
			st_q8_act_quantize(&a->q, t, a->x + t * cols);
		for (int64_t g = 0; g < a->g.n_groups; g++)
			st_gemm_act_pack(&a->g, &a->q, g);
	}
}

static void acts_free(struct acts *a)
{
	free(a->x);
	free(a->mem);
	free(a->gmem);
}

/* The scalar reference dot of weight row w with token t. */
static float ref_dot(uint32_t type, const void *w, const struct acts *a, int64_t t)
{
	if (st_kq_type(type))
		return st_kq_dot_ref(type, w, a->qk.b + t * a->qk.nb, a->qk.nb);
	return st_dot_q8_ref(type, w, &a->q, t);
}

/* The packed layout, checked element by element against gemm.h. */
static void test_pack(void)
{
	const int64_t cols = 32 * 19, nt = 37, nb = cols / 32;
	struct acts a;
	acts_make(&a, ST_TYPE_Q4_0, cols, nt);
	int bad = 0;
	int64_t p = 0;
	for (int j = 0; j < 8; j++) {
		bad += st_gemm_lane_start(nb, j) != p;
		for (int64_t b = j; b < nb; b += 8, p++)
			for (int64_t g = 0; g < a.g.n_groups; g++)
				for (int t = 0; t < ST_GEMM_TG; t++) {
					const int64_t tok = g * ST_GEMM_TG + t;
					const float d = a.g.d[(g * nb + p) * ST_GEMM_TG + t];
					bad += d != (tok < nt ? a.q.d[tok * nb + b] : 0.0f);
					for (int k = 0; k < 32; k++) {
						const uint8_t got = a.g.qs[((g * nb + p) * 8 + k / 4) * 4 * ST_GEMM_TG + t * 4 + k % 4];
						const int want = tok < nt ? a.q.qs[(tok * nb + b) * 32 + k] + 128 : 128;
						bad += got != want;
					}
				}
	}
	bad += st_gemm_lane_start(nb, 8) != nb;
	ok(bad == 0 && a.g.n_groups == 3, "packing: %lld tokens x %lld blocks in %lld groups, x + 128 runs, lane-major, zero padding (%d differ)",
	   (long long)nt, (long long)nb, (long long)a.g.n_groups, bad);
	acts_free(&a);
}

/* Kernel call on rows x [t0, t0 + nt) with output stride ldy > rows;
 * returns the number of outputs differing from the reference, canaries
 * included. */
static int check_kernel(st_mm_fn fn, uint32_t type, int64_t rows, int64_t cols, int64_t t0, int64_t nt)
{
	const size_t ws = row_bytes(type, cols) + (rows & 1 ? 6 : 0);
	void *w = make_w(type, rows, cols, ws);
	struct acts a;
	acts_make(&a, type, cols, t0 + nt);
	const size_t ldy = (size_t)rows + 3;
	float *y = malloc((size_t)nt * ldy * sizeof(float));
	for (size_t i = 0; i < (size_t)nt * ldy; i++)
		y[i] = -12345.0f;
	struct st_mm_act act = { .q = &a.q, .qk = &a.qk, .g = &a.g };
	fn(w, ws, cols, rows, &act, t0, nt, y, ldy);
	int bad = 0;
	for (int64_t t = 0; t < nt; t++) {
		for (int64_t r = 0; r < rows; r++) {
			const float want = ref_dot(type, (const uint8_t *)w + (size_t)r * ws, &a, t0 + t);
			if (memcmp(&want, &y[(size_t)t * ldy + (size_t)r], 4)) {
				if (!bad)
					diag("  %s rows=%lld cols=%lld t0=%lld nt=%lld: first difference t=%lld r=%lld ref %.9g got %.9g",
					     st_type_name(type), (long long)rows, (long long)cols, (long long)t0, (long long)nt,
					     (long long)t, (long long)r, want, y[(size_t)t * ldy + (size_t)r]);
				bad++;
			}
		}
		for (size_t r = (size_t)rows; r < ldy; r++)
			bad += y[(size_t)t * ldy + r] != -12345.0f;
	}
	free(w);
	free(y);
	acts_free(&a);
	return bad;
}

static void test_kernel(uint32_t type, st_mm_fn fn)
{
	const int64_t bv = st_kq_type(type) ? 256 : 32;   /* values per block */
	const int64_t rows[] = { 1, 3, 4, 5, 17, 33 };
	const int64_t nblk[] = { 1, 3, 8, 17, 64 };
	int n = 0, fails = 0;
	for (size_t ci = 0; ci < ST_ARRAY_SIZE(nblk); ci++)
		for (size_t ri = 0; ri < ST_ARRAY_SIZE(rows); ri++)
			for (int64_t nt = 1; nt <= 70; nt += (ci == 1 && ri == 4) ? 1 : 13) {
				const int64_t t0 = (nt % 3) * ST_GEMM_TG;
				if (bv == 256 && (nblk[ci] > 8 ? ri > 2 : nt % 2 == 0))
					continue;   /* keep the K-quant cases fast (the reference is scalar) */
				n++;
				fails += check_kernel(fn, type, rows[ri], nblk[ci] * bv, t0, nt) != 0;
			}
	ok(fails == 0, "%s GEMM kernel: %d shapes (1..33 rows, 1..70 tokens, 1..64 blocks of %lld, t0 0/16/32, ldy > rows) bit-exact vs scalar (%d differ)",
	   st_type_name(type), n, (long long)bv, fails);
	/* a lane longer than one unpack pass (64 blocks of 32, 8 of 256) */
	const int64_t nlong = bv == 256 ? 67 : 521;
	ok(check_kernel(fn, type, 6, bv * nlong, 0, 19) == 0, "%s GEMM kernel: %lld blocks (lanes longer than one unpack pass) bit-exact",
	   st_type_name(type), (long long)nlong);
	/* more tokens than one internal pass (128) */
	ok(check_kernel(fn, type, 5, bv * 9, 16, 150) == 0, "%s GEMM kernel: 150 tokens from t0 = 16 bit-exact",
	   st_type_name(type));
}

/* st_matmul with 1, 2 and 3 threads on the best path against the reference. */
static void test_matmul(uint32_t type)
{
	struct st_matmul_ctx *c[3];
	for (int i = 0; i < 3; i++)
		if (st_matmul_ctx_create(i + 1, ST_ISA_AUTO, &c[i])) {
			ok(0, "matmul context with %d threads", i + 1);
			return;
		}
	const int64_t rows = 67, cols = st_kq_type(type) ? 256 * 3 : 32 * 11;
	const size_t ws = row_bytes(type, cols);
	void *w = make_w(type, rows, cols, ws);
	int fails = 0, differ = 0;
	for (int64_t nt = 1; nt <= 70; nt += st_kq_type(type) && nt >= 20 ? 3 : 1) {
		struct acts a;
		acts_make(&a, type, cols, nt);
		float *y[3];
		for (int i = 0; i < 3; i++) {
			y[i] = malloc((size_t)(nt * rows) * sizeof(float));
			fails += st_matmul(c[i], type, w, ws, rows, cols, a.x, (size_t)cols, nt, y[i], (size_t)rows) != 0;
		}
		for (int64_t t = 0; t < nt; t++)
			for (int64_t r = 0; r < rows; r++) {
				const float want = ref_dot(type, (const uint8_t *)w + (size_t)r * ws, &a, t);
				fails += memcmp(&want, &y[0][t * rows + r], 4) != 0;
			}
		differ += memcmp(y[0], y[1], (size_t)(nt * rows) * 4) || memcmp(y[0], y[2], (size_t)(nt * rows) * 4);
		for (int i = 0; i < 3; i++)
			free(y[i]);
		acts_free(&a);
	}
	ok(fails == 0 && differ == 0,
	   "%s st_matmul (%s, 67 x %lld) for 1..70 tokens: equal to the scalar reference (%d differ) and identical for 1, 2 and 3 threads (%d token counts differ)",
	   st_type_name(type), st_cpu_isa_name(st_matmul_ctx_isa(c[0])), (long long)cols, fails, differ);
	free(w);
	for (int i = 0; i < 3; i++)
		st_matmul_ctx_destroy(c[i]);
}

int main(void)
{
	const uint32_t types[] = { ST_TYPE_Q4_0, ST_TYPE_Q8_0, ST_TYPE_Q4_K, ST_TYPE_Q5_K };
	st_rng_seed(&rng, 20261121);
	test_pack();
	for (size_t i = 0; i < ST_ARRAY_SIZE(types); i++) {
		st_mm_fn fn = st_gemm_kernel(st_cpu_isa_best(), types[i]);
		if (fn)
			test_kernel(types[i], fn);
		else
			tap_skip("%s GEMM kernel: none on the %s path of this CPU/build (AVX-512 VNNI only)",
				 st_type_name(types[i]), st_cpu_isa_name(st_cpu_isa_best()));
		test_matmul(types[i]);
	}
	return tap_done();
}
