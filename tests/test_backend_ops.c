/* test_backend_ops: every op of backend.h on every registered backend and
 * device, against the scalar reference kernels (ops_ref.c), on shapes that
 * include 1 row, 1 token, odd sizes, several tokens and pos0 > 0; matmul and
 * get_rows for every supported weight type.  Results are compared by NMSE
 * (1e-7 elementwise, 5e-4 matmul/attention), NaN is always a failure, and
 * guard bytes around every tensor plus the rows outside the live region
 * must come back untouched.  A small attention block prepared once is
 * replayed with changing n_tokens/pos0, as stages do.  The reference
 * kernels themselves are checked first against formulas computed here. */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "ops_ref.h"
#include "tap.h"
#include "types.h"
#include "util.h"

#define GUARD 64
#define GUARD_BYTE 0xA5

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

static float frand(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return (float)((double)(rng_state >> 11) / (double)(1ull << 53) * 2.0 - 1.0);
}

/* A host image of one tensor: GUARD bytes, the tensor, GUARD bytes. */
struct img {
	uint8_t *data;
	size_t size;            /* whole image */
	struct st_tensor t;     /* offset = GUARD; buf set per backend */
};

static size_t row_bytes(uint32_t type, int64_t ne0)
{
	uint64_t b = 0;
	st_type_row_size(type, (uint64_t)ne0, &b);
	return (size_t)b;
}

/* ne1 rows of ne0 elements, row stride = row size + pad bytes; F32/F16/BF16
 * filled with random values (scaled), quantized types quantized from
 * random floats, I32 left zero; padding and guards get GUARD_BYTE. */
static void img_init(struct img *im, uint32_t type, int64_t ne0, int64_t ne1, size_t pad, float scale)
{
	const size_t rb = row_bytes(type, ne0);
	const struct st_type_traits *tr = st_type_traits(type);
	im->t = (struct st_tensor){ .offset = GUARD, .type = type, .ne0 = ne0, .ne1 = ne1, .nb1 = rb + pad };
	im->size = 2 * GUARD + (size_t)(ne1 - 1) * im->t.nb1 + rb;
	im->data = malloc(im->size);
	memset(im->data, GUARD_BYTE, im->size);
	float *tmp = malloc((size_t)ne0 * sizeof(float));
	for (int64_t r = 0; r < ne1; r++) {
		uint8_t *row = im->data + GUARD + (size_t)r * im->t.nb1;
		if (type == ST_TYPE_I32) {
			memset(row, 0, rb);
			continue;
		}
		for (int64_t i = 0; i < ne0; i++)
			tmp[i] = frand() * scale;
		tr->from_float(tmp, row, ne0);
	}
	free(tmp);
}

static void img_free(struct img *im)
{
	free(im->data);
	im->data = NULL;
}

static float img_get(const struct img *im, const uint8_t *data, int64_t r, int64_t i)
{
	const uint8_t *row = data + GUARD + (size_t)r * im->t.nb1;
	if (im->t.type == ST_TYPE_F16)
		return st_fp16_to_fp32(((const uint16_t *)row)[i]);
	return ((const float *)row)[i];
}

struct ctx {
	struct st_backend *be;
	const char *be_name;
	int n_fail_total;
};

/* Run op (tensor images: [0] = dst, [1..3] = src; inplace: dst is src0)
 * on the backend and on the reference; compare rows [r0, r0+nr) of dst. */
static void run_case(struct ctx *c, const char *label, struct st_op op, struct img *im, int n_src,
		     bool inplace, const struct st_graph_run *run, int64_t r0, double thresh)
{
	struct st_buffer *bufs[4] = { 0 };
	struct img *dst = inplace ? &im[1] : &im[0];
	uint8_t *ref = NULL, *got = NULL;
	struct st_graph *g = NULL;
	char why[256] = "";
	int rc;
	double err = 0, sum = 0;
	bool nan = false, guard_ok = true;

	/* reference on host copies */
	uint8_t *hc[4] = { 0 };
	for (int i = inplace ? 1 : 0; i <= n_src; i++) {
		hc[i] = malloc(im[i].size);
		memcpy(hc[i], im[i].data, im[i].size);
	}
	const void *hsrc[3] = { 0 };
	for (int i = 0; i < n_src; i++)
		hsrc[i] = hc[i + 1] + GUARD;
	struct st_op rop = op;
	rop.dst = dst->t;
	for (int i = 0; i < n_src; i++)
		rop.src[i] = im[i + 1].t;
	/* a host-only dummy buffer pointer so the in-place check sees dst == src0 */
	rop.dst.buf = rop.src[0].buf = NULL;
	rc = st_ref_op_run(&rop, run, (inplace ? hc[1] : hc[0]) + GUARD, hsrc);
	ref = inplace ? hc[1] : hc[0];
	if (rc) {
		snprintf(why, sizeof(why), "reference failed: %s", st_last_error());
		goto out;
	}

	/* backend */
	for (int i = inplace ? 1 : 0; i <= n_src; i++) {
		rc = st_buffer_alloc(c->be, im[i].size, ST_BUF_HOST_VISIBLE, &bufs[i]);
		if (!rc)
			rc = st_buffer_write(c->be, bufs[i], 0, im[i].data, im[i].size);
		if (rc) {
			snprintf(why, sizeof(why), "buffer: %s", st_last_error());
			goto out;
		}
		im[i].t.buf = bufs[i];
	}
	op.dst = dst->t;
	for (int i = 0; i < n_src; i++)
		op.src[i] = im[i + 1].t;
	rc = st_graph_prepare(c->be, &op, 1, &g);
	if (rc == -ENOTSUP) {
		/* declared unsupported (a clear error for users), not a wrong result */
		tap_skip("%s %s: not supported by this backend: %s", c->be_name, label, st_last_error());
		goto cleanup;
	}
	if (!rc)
		rc = st_graph_run(c->be, g, run);
	if (!rc)
		rc = st_backend_synchronize(c->be);
	if (rc) {
		snprintf(why, sizeof(why), "backend failed: %s", st_last_error());
		goto out;
	}
	got = malloc(dst->size);
	rc = st_buffer_read(c->be, inplace ? bufs[1] : bufs[0], 0, got, dst->size);
	if (rc) {
		snprintf(why, sizeof(why), "read back: %s", st_last_error());
		goto out;
	}

	/* compare: live rows by NMSE, every other byte exactly */
	const int64_t nr = op.kind == ST_OP_KV_STORE ? run->n_tokens : run->n_tokens;
	const size_t rb = row_bytes(dst->t.type, dst->t.ne0);
	for (size_t b = 0; b < dst->size; b++) {
		bool live = false;
		if (b >= GUARD) {
			size_t o = b - GUARD, r = o / dst->t.nb1, in = o % dst->t.nb1;
			live = (int64_t)r >= r0 && (int64_t)r < r0 + nr && in < rb;
		}
		if (!live && got[b] != ref[b]) {
			guard_ok = false;
			snprintf(why, sizeof(why), "byte %zu outside the live rows changed (0x%02x, expected 0x%02x)", b,
				 got[b], ref[b]);
			break;
		}
	}
	for (int64_t r = r0; r < r0 + nr; r++)
		for (int64_t i = 0; i < dst->t.ne0; i++) {
			const double a = img_get(dst, ref, r, i), bb = img_get(dst, got, r, i);
			if (isnan(bb) || isnan(a))
				nan = true;
			err += (a - bb) * (a - bb);
			sum += a * a;
		}
out:;
	const double nmse = sum > 0 ? err / sum : err;
	const bool pass = !why[0] && !nan && guard_ok && nmse <= thresh;
	if (!ok(pass, "%s %s: nmse %.3g (max %.0e)%s%s%s", c->be_name, label, nmse, thresh, nan ? " NaN" : "",
		why[0] ? " - " : "", why))
		c->n_fail_total++;
cleanup:
	st_graph_free(c->be, g);
	for (int i = 0; i < 4; i++) {
		st_buffer_free(c->be, bufs[i]);
		free(hc[i]);
		if (i <= n_src)
			im[i].t.buf = NULL;
	}
	free(got);
}

static void free_imgs(struct img *im, int n)
{
	for (int i = 0; i < n; i++)
		img_free(&im[i]);
}

/* K-quant cases (blocks of 256) draw from their own stream, rng_state ^
 * KQ_STREAM, restored afterwards, so every other case keeps the numbers it
 * had before they were added. */
#define KQ_STREAM 0x5bd1e9955bd1e995ull
/* The same for Q4_1, Q5_0, Q5_1 (added after the K-quants), one per type. */
#define QL_STREAM 0x2545f4914f6cdd1dull

/* The stream a weight type's cases draw from (xor-ed into rng_state), 0 for
 * the original types. */
static uint64_t own_stream(uint32_t t)
{
	if (st_type_traits(t)->block_size == 256)
		return KQ_STREAM;
	return t == ST_TYPE_Q4_1 || t == ST_TYPE_Q5_0 || t == ST_TYPE_Q5_1 ? QL_STREAM ^ t : 0;
}

static const uint32_t wtypes[] = { ST_TYPE_F32, ST_TYPE_F16, ST_TYPE_BF16, ST_TYPE_Q8_0, ST_TYPE_Q4_0,
				   ST_TYPE_Q4_K, ST_TYPE_Q5_K, ST_TYPE_Q6_K, ST_TYPE_Q4_1, ST_TYPE_Q5_0, ST_TYPE_Q5_1 };

/* Activations rounded to the Q8 grid of 32-blocks (types.c's q8_0 rule),
 * so a CPU path that quantizes them on the fly sees exactly these values:
 * for Q4_1/Q5_0/Q5_1 the comparison then measures the weights' kernels, not
 * the activation rounding (which a single cancelling dot of 32 products can
 * blow up past any fixed NMSE threshold). */
static void round_to_q8(struct img *x)
{
	const struct st_type_traits *q8 = st_type_traits(ST_TYPE_Q8_0);
	st_block_q8_0 blk[64];
	if (x->t.ne0 % 32 || x->t.ne0 > 32 * 64)
		return;
	for (int64_t r = 0; r < x->t.ne1; r++) {
		float *row = (float *)(x->data + GUARD + (size_t)r * x->t.nb1);
		q8->from_float(row, blk, x->t.ne0);
		q8->to_float(blk, row, x->t.ne0);
	}
}

static void test_matmul(struct ctx *c)
{
	static const int64_t shapes[][4] = { /* rows, cols, cap, n_tokens */
		{ 1, 32, 1, 1 }, { 7, 64, 1, 1 }, { 33, 96, 5, 3 }, { 64, 256, 8, 8 },
		{ 17, 320, 4, 2 }, { 5, 7, 3, 3 }, { 1, 1, 1, 1 }, { 100, 544, 2, 1 },
		{ 9, 768, 3, 3 }, /* K-quants only: 3 blocks of 256 */
	};
	for (size_t ti = 0; ti < ST_ARRAY_SIZE(wtypes); ti++)
		for (size_t si = 0; si < ST_ARRAY_SIZE(shapes); si++) {
			const int64_t rows = shapes[si][0], cols = shapes[si][1], cap = shapes[si][2], n = shapes[si][3];
			const uint32_t wt = wtypes[ti];
			const bool kq = st_type_traits(wt)->block_size == 256;
			if (cols % st_type_traits(wt)->block_size || (si == ST_ARRAY_SIZE(shapes) - 1 && !kq))
				continue;
			const uint64_t saved = rng_state, os = own_stream(wt);
			rng_state ^= os;
			for (int strided = 0; strided < 2; strided++) {
				struct img im[3];
				char label[128];
				img_init(&im[0], ST_TYPE_F32, rows, cap, strided ? 16 : 0, 1.0f);
				img_init(&im[1], wt, cols, rows, 0, 1.0f);
				img_init(&im[2], ST_TYPE_F32, cols, cap, strided ? 12 : 0, 1.0f);
				if (os && os != KQ_STREAM)   /* Q4_1, Q5_0, Q5_1 */
					round_to_q8(&im[2]);
				snprintf(label, sizeof(label), "matmul %s W[%lld x %lld] x %lld tok (cap %lld)%s",
					 st_type_name(wt), (long long)rows, (long long)cols, (long long)n, (long long)cap,
					 strided ? " strided" : "");
				struct st_op op = { .kind = ST_OP_MATMUL };
				struct st_graph_run run = { .n_tokens = n, .pos0 = 0 };
				run_case(c, label, op, im, 2, false, &run, 0, 5e-4);
				free_imgs(im, 3);
				if (cols % 32 && !strided)
					break;
			}
			if (os)
				rng_state = saved;
		}
}

static void test_get_rows(struct ctx *c)
{
	for (size_t ti = 0; ti < ST_ARRAY_SIZE(wtypes); ti++)
		for (int s = 0; s < 2; s++) {
			const int64_t bs = st_type_traits(wtypes[ti])->block_size;
			const int64_t ne0 = bs > 32 ? bs * (s ? 2 : 1) : s ? 64 : 32;
			const int64_t vocab = s ? 11 : 1, n = s ? 4 : 1, cap = s ? 6 : 1;
			const uint64_t saved = rng_state, os = own_stream(wtypes[ti]);
			rng_state ^= os;
			struct img im[3];
			char label[128];
			img_init(&im[0], ST_TYPE_F32, ne0, cap, 0, 1.0f);
			img_init(&im[1], wtypes[ti], ne0, vocab, 0, 1.0f);
			img_init(&im[2], ST_TYPE_I32, 1, cap, 0, 1.0f);
			for (int64_t t = 0; t < n; t++) {
				int32_t id = (int32_t)(t == 0 ? vocab - 1 : (t * 7) % vocab);
				memcpy(im[2].data + GUARD + (size_t)t * im[2].t.nb1, &id, 4);
			}
			snprintf(label, sizeof(label), "get_rows %s [%lld] of %lld rows, %lld ids", st_type_name(wtypes[ti]),
				 (long long)ne0, (long long)vocab, (long long)n);
			struct st_op op = { .kind = ST_OP_GET_ROWS };
			struct st_graph_run run = { .n_tokens = n };
			run_case(c, label, op, im, 2, false, &run, 0, 1e-7);
			free_imgs(im, 3);
			if (os)
				rng_state = saved;
		}
}

static void test_rmsnorm(struct ctx *c)
{
	static const int64_t shapes[][3] = { { 1, 1, 1 }, { 7, 3, 2 }, { 64, 5, 5 }, { 300, 2, 1 } };
	static const uint32_t nt[] = { ST_TYPE_F32, ST_TYPE_F16, ST_TYPE_BF16 };
	for (size_t ti = 0; ti < ST_ARRAY_SIZE(nt); ti++)
		for (size_t si = 0; si < ST_ARRAY_SIZE(shapes); si++) {
			struct img im[3];
			char label[128];
			const int64_t ne0 = shapes[si][0], cap = shapes[si][1], n = shapes[si][2];
			img_init(&im[0], ST_TYPE_F32, ne0, cap, 0, 1.0f);
			img_init(&im[1], ST_TYPE_F32, ne0, cap, si == 2 ? 8 : 0, 3.0f);
			img_init(&im[2], nt[ti], ne0, 1, 0, 1.0f);
			snprintf(label, sizeof(label), "rmsnorm [%lld] x %lld tok, weight %s", (long long)ne0, (long long)n,
				 st_type_name(nt[ti]));
			struct st_op op = { .kind = ST_OP_RMSNORM, .p.norm.eps = 1e-5f };
			struct st_graph_run run = { .n_tokens = n };
			run_case(c, label, op, im, 2, false, &run, 0, 1e-7);
			free_imgs(im, 3);
		}
}

static void test_rope(struct ctx *c)
{
	static const struct { uint32_t nh, hd, rd; int64_t cap, n, pos0; float theta; } cs[] = {
		{ 4, 8, 8, 1, 1, 0, 10000.f }, { 4, 8, 8, 3, 3, 5, 10000.f }, { 8, 16, 8, 4, 2, 1000, 10000.f },
		{ 2, 64, 64, 2, 1, 77, 500000.f }, { 1, 2, 2, 5, 5, 0, 10000.f }, { 3, 6, 4, 2, 2, 3, 10000.f },
	};
	for (size_t i = 0; i < ST_ARRAY_SIZE(cs); i++) {
		struct img im[2];
		char label[128];
		img_init(&im[0], ST_TYPE_F32, 1, 1, 0, 1.0f);    /* unused: in place */
		img_init(&im[1], ST_TYPE_F32, (int64_t)cs[i].nh * cs[i].hd, cs[i].cap, 0, 1.0f);
		snprintf(label, sizeof(label), "rope %u heads x %u (rope_dim %u) x %lld tok at pos %lld theta %g",
			 cs[i].nh, cs[i].hd, cs[i].rd, (long long)cs[i].n, (long long)cs[i].pos0, (double)cs[i].theta);
		struct st_op op = { .kind = ST_OP_ROPE, .p.rope = { cs[i].nh, cs[i].hd, cs[i].rd, cs[i].theta } };
		struct st_graph_run run = { .n_tokens = cs[i].n, .pos0 = cs[i].pos0 };
		run_case(c, label, op, im, 1, true, &run, 0, 1e-7);
		free_imgs(im, 2);
	}
}

static void test_kv_store(struct ctx *c)
{
	static const struct { int64_t ne0, n_ctx, cap, n, pos0; } cs[] = {
		{ 16, 10, 4, 4, 3 }, { 32, 1, 1, 1, 0 }, { 7, 9, 2, 1, 8 }, { 64, 64, 16, 16, 0 },
	};
	static const uint32_t kt[] = { ST_TYPE_F32, ST_TYPE_F16 };
	for (size_t ti = 0; ti < 2; ti++)
		for (size_t i = 0; i < ST_ARRAY_SIZE(cs); i++) {
			struct img im[2];
			char label[128];
			img_init(&im[0], kt[ti], cs[i].ne0, cs[i].n_ctx, 0, 1.0f);
			img_init(&im[1], ST_TYPE_F32, cs[i].ne0, cs[i].cap, 0, 1.0f);
			snprintf(label, sizeof(label), "kv_store %s [%lld] x %lld tok at pos %lld of %lld",
				 st_type_name(kt[ti]), (long long)cs[i].ne0, (long long)cs[i].n, (long long)cs[i].pos0,
				 (long long)cs[i].n_ctx);
			struct st_op op = { .kind = ST_OP_KV_STORE };
			struct st_graph_run run = { .n_tokens = cs[i].n, .pos0 = cs[i].pos0 };
			run_case(c, label, op, im, 1, false, &run, cs[i].pos0, 1e-7);
			free_imgs(im, 2);
		}
}

static void test_attn(struct ctx *c)
{
	static const struct { uint32_t nh, nkv, hd; int64_t n_ctx, cap, n, pos0; } cs[] = {
		{ 8, 4, 8, 16, 5, 5, 0 }, { 8, 4, 8, 16, 1, 1, 6 }, { 4, 4, 16, 12, 4, 3, 3 },
		{ 2, 2, 3, 4, 1, 1, 0 }, { 4, 1, 32, 1200, 2, 2, 1100 }, { 6, 2, 64, 40, 8, 8, 20 },
	};
	static const uint32_t kt[] = { ST_TYPE_F32, ST_TYPE_F16 };
	for (size_t ti = 0; ti < 2; ti++)
		for (size_t i = 0; i < ST_ARRAY_SIZE(cs); i++) {
			struct img im[4];
			char label[160];
			const int64_t qd = (int64_t)cs[i].nh * cs[i].hd, kvd = (int64_t)cs[i].nkv * cs[i].hd;
			img_init(&im[0], ST_TYPE_F32, qd, cs[i].cap, 0, 1.0f);
			img_init(&im[1], ST_TYPE_F32, qd, cs[i].cap, 0, 2.0f);
			img_init(&im[2], kt[ti], kvd, cs[i].n_ctx, 0, 2.0f);
			img_init(&im[3], kt[ti], kvd, cs[i].n_ctx, 0, 1.0f);
			snprintf(label, sizeof(label), "attn %s %u/%u heads x %u, %lld tok at pos %lld, ctx %lld",
				 st_type_name(kt[ti]), cs[i].nh, cs[i].nkv, cs[i].hd, (long long)cs[i].n,
				 (long long)cs[i].pos0, (long long)cs[i].n_ctx);
			struct st_op op = { .kind = ST_OP_ATTN,
					    .p.attn = { cs[i].nh, cs[i].nkv, cs[i].hd, 1.0f / sqrtf((float)cs[i].hd) } };
			struct st_graph_run run = { .n_tokens = cs[i].n, .pos0 = cs[i].pos0 };
			run_case(c, label, op, im, 3, false, &run, 0, 5e-4);
			free_imgs(im, 4);
		}
}

static void test_eltwise(struct ctx *c)
{
	static const int64_t shapes[][3] = { { 1, 1, 1 }, { 13, 4, 4 }, { 172, 6, 2 }, { 512, 1, 1 } };
	static const enum st_op_kind kinds[] = { ST_OP_SWIGLU, ST_OP_ADD, ST_OP_SOFTMAX };
	for (size_t k = 0; k < ST_ARRAY_SIZE(kinds); k++)
		for (size_t si = 0; si < ST_ARRAY_SIZE(shapes); si++) {
			struct img im[3];
			char label[128];
			const int64_t ne0 = shapes[si][0], cap = shapes[si][1], n = shapes[si][2];
			const int ns = kinds[k] == ST_OP_SOFTMAX ? 1 : 2;
			img_init(&im[0], ST_TYPE_F32, ne0, cap, si == 2 ? 4 : 0, 1.0f);
			img_init(&im[1], ST_TYPE_F32, ne0, cap, 0, 4.0f);
			img_init(&im[2], ST_TYPE_F32, ne0, cap, si == 1 ? 20 : 0, 2.0f);
			snprintf(label, sizeof(label), "%s [%lld] x %lld tok", st_op_name(kinds[k]), (long long)ne0,
				 (long long)n);
			struct st_op op = { .kind = kinds[k] };
			struct st_graph_run run = { .n_tokens = n };
			run_case(c, label, op, im, ns, false, &run, 0, 1e-7);
			free_imgs(im, 3);
		}
}

/* ---- the reference kernels against formulas computed here ---------------- */

static void test_reference(void)
{
	/* matmul: every type vs dequantize-then-dot in double */
	for (size_t ti = 0; ti < ST_ARRAY_SIZE(wtypes); ti++) {
		enum { R = 5, CMAX = 256, N = 3 };
		float w[R * CMAX], x[N * CMAX], y[N * R], wd[R * CMAX];
		uint8_t wq[R * CMAX * 4];
		const struct st_type_traits *tr = st_type_traits(wtypes[ti]);
		const int C = tr->block_size == 256 ? 256 : 64;   /* whole blocks (K-quants: 256) */
		const uint64_t saved = rng_state, os = own_stream(wtypes[ti]);   /* own streams (KQ_STREAM) */
		rng_state ^= os;
		const size_t rb = row_bytes(wtypes[ti], C);
		double err = 0, sum = 0;
		for (int i = 0; i < R * C; i++)
			w[i] = frand();
		for (int i = 0; i < N * C; i++)
			x[i] = frand();
		for (int r = 0; r < R; r++) {
			tr->from_float(w + r * C, wq + r * rb, C);
			tr->to_float(wq + r * rb, wd + r * C, C);
		}
		st_ref_matmul(wtypes[ti], wq, R, C, rb, x, C, N, y, R);
		for (int t = 0; t < N; t++)
			for (int r = 0; r < R; r++) {
				double s = 0;
				for (int i = 0; i < C; i++)
					s += (double)wd[r * C + i] * x[t * C + i];
				err += (s - y[t * R + r]) * (s - y[t * R + r]);
				sum += s * s;
			}
		ok(err / sum < 1e-12, "reference matmul %s = dequantize + dot (nmse %.2g)", tr->name, err / sum);
		if (os)
			rng_state = saved;
	}
	/* rope: identity at position 0; at position p pair i turns by p*theta^(-2i/d) */
	{
		float v[8] = { 1, 0, 0, 1, 3, 4, -1, 2 }, v0[8];
		memcpy(v0, v, sizeof(v));
		st_ref_rope(v, 8, 1, 0, 1, 8, 8, 10000.f);
		ok(!memcmp(v, v0, sizeof(v)), "reference rope is the identity at position 0");
		st_ref_rope(v, 8, 1, 3, 1, 8, 8, 10000.f);
		double a1 = 3 * pow(10000.0, -2.0 * 2 / 8);   /* pair i = 2: elements 4, 5 */
		double e2 = 3 * cos(a1) - 4 * sin(a1), e3 = 3 * sin(a1) + 4 * cos(a1);
		ok(fabs(v[0] - cos(3.0)) < 1e-6 && fabs(v[1] - sin(3.0)) < 1e-6 && fabs(v[4] - e2) < 1e-5 &&
		   fabs(v[5] - e3) < 1e-5, "reference rope rotates adjacent pairs by pos*theta^(-2i/d)");
	}
	/* attention: one query, equal keys -> mean of the values; one position -> that value */
	{
		float q[4] = { 1, 2, 3, 4 }, k[3 * 4], v[3 * 4], o[4];
		for (int j = 0; j < 3; j++)
			for (int i = 0; i < 4; i++) {
				k[j * 4 + i] = 0.5f;
				v[j * 4 + i] = (float)(j * 10 + i);
			}
		st_ref_attn(q, 4, k, v, ST_TYPE_F32, 16, o, 4, 1, 2, 1, 1, 4, 0.5f);
		ok(fabs(o[0] - 10) < 1e-5 && fabs(o[3] - 13) < 1e-5, "reference attn with equal keys averages V (%g %g)",
		   (double)o[0], (double)o[3]);
		st_ref_attn(q, 4, k, v, ST_TYPE_F32, 16, o, 4, 1, 0, 1, 1, 4, 0.5f);
		ok(o[0] == 0 && o[3] == 3, "reference attn at position 0 returns V[0]");
	}
	/* rmsnorm of a constant row is the weight; softmax sums to 1 */
	{
		float x[6] = { 2, 2, 2, 2, 2, 2 }, w[6] = { 1, 2, 3, 4, 5, 6 }, y[6];
		struct st_buffer *fake = (struct st_buffer *)1;
		struct st_op op = { .kind = ST_OP_RMSNORM, .p.norm.eps = 0 };
		op.dst = (struct st_tensor){ fake, 0, ST_TYPE_F32, 6, 1, 24 };
		op.src[0] = op.dst;
		op.src[1] = op.dst;
		struct st_graph_run run = { .n_tokens = 1, .pos0 = 0 };
		const void *src[3] = { x, w, NULL };
		int rc = st_ref_op_run(&op, &run, y, src);
		ok(rc == 0 && fabs(y[0] - 1) < 1e-6 && fabs(y[5] - 6) < 1e-6, "reference rmsnorm of a constant row = weight");
		op.kind = ST_OP_SOFTMAX;
		src[0] = w;
		rc = st_ref_op_run(&op, &run, y, src);
		double s = 0;
		for (int i = 0; i < 6; i++)
			s += y[i];
		ok(rc == 0 && fabs(s - 1) < 1e-6 && y[5] > y[4], "reference softmax sums to 1 (%g)", s);
	}
}

/* ---- a prepared graph replayed with changing n_tokens / pos0 ----------------
 * How stages use graphs: prepared once, run for a prefill and then for
 * decode steps.  A small attention block (norm, q/k/v matmuls in q8_0, f16,
 * q4_0, rope, f16 KV stores, attention, add) runs 4 steps; each step's
 * output and finally the whole K cache must match the reference run of
 * the same ops on host copies. */

enum { RP_DIM = 64, RP_KVD = 32, RP_CAP = 8, RP_CTX = 16, RP_NT = 11 };

struct rp_tensor {
	struct st_tensor t;    /* buf = backend buffer */
	uint8_t *host;         /* reference copy (the tensor bytes only) */
	size_t size;
};

static void rp_init(struct ctx *c, struct rp_tensor *rt, uint32_t type, int64_t ne0, int64_t ne1, bool random)
{
	struct img im;
	img_init(&im, type, ne0, ne1, 0, random ? 0.5f : 0.0f);
	rt->size = im.size - 2 * GUARD;
	rt->host = malloc(rt->size);
	memcpy(rt->host, im.data + GUARD, rt->size);
	rt->t = im.t;
	rt->t.offset = 0;
	rt->t.buf = NULL;
	if (st_buffer_alloc(c->be, rt->size, ST_BUF_HOST_VISIBLE, &rt->t.buf) == 0)
		st_buffer_write(c->be, rt->t.buf, 0, rt->host, rt->size);
	img_free(&im);
}

static void *rp_host(struct rp_tensor *rts, int n, const struct st_tensor *t)
{
	for (int i = 0; i < n; i++)
		if (rts[i].t.buf == t->buf)
			return rts[i].host;
	return NULL;
}

static void test_replay(struct ctx *c)
{
	struct rp_tensor rt[RP_NT];
	enum { X, NW, WQ, WK, WV, XB, Q, K, V, KC, VC };
	struct st_graph *g = NULL;
	struct st_op ops[12];
	int n_ops = 0, rc;
	static const int64_t steps[][2] = { { 5, 0 }, { 1, 5 }, { 1, 6 }, { 3, 7 } };
	struct rp_tensor out, y;

	memset(rt, 0, sizeof(rt));
	rp_init(c, &rt[X], ST_TYPE_F32, RP_DIM, RP_CAP, true);
	rp_init(c, &rt[NW], ST_TYPE_F32, RP_DIM, 1, true);
	rp_init(c, &rt[WQ], ST_TYPE_Q8_0, RP_DIM, RP_DIM, true);
	rp_init(c, &rt[WK], ST_TYPE_F16, RP_DIM, RP_KVD, true);
	rp_init(c, &rt[WV], ST_TYPE_Q4_0, RP_DIM, RP_KVD, true);
	rp_init(c, &rt[XB], ST_TYPE_F32, RP_DIM, RP_CAP, false);
	rp_init(c, &rt[Q], ST_TYPE_F32, RP_DIM, RP_CAP, false);
	rp_init(c, &rt[K], ST_TYPE_F32, RP_KVD, RP_CAP, false);
	rp_init(c, &rt[V], ST_TYPE_F32, RP_KVD, RP_CAP, false);
	rp_init(c, &rt[KC], ST_TYPE_F16, RP_KVD, RP_CTX, false);
	rp_init(c, &rt[VC], ST_TYPE_F16, RP_KVD, RP_CTX, false);
	rp_init(c, &out, ST_TYPE_F32, RP_DIM, RP_CAP, false);
	rp_init(c, &y, ST_TYPE_F32, RP_DIM, RP_CAP, false);
	struct rp_tensor all[RP_NT + 2];
	memcpy(all, rt, sizeof(rt));
	all[RP_NT] = out;
	all[RP_NT + 1] = y;
	for (int i = 0; i < RP_NT + 2; i++)
		if (!all[i].t.buf) {
			ok(0, "%s graph replay: buffer allocation failed: %s", c->be_name, st_last_error());
			goto out;
		}

	ops[n_ops++] = (struct st_op){ .kind = ST_OP_RMSNORM, .dst = rt[XB].t, .src = { rt[X].t, rt[NW].t }, .p.norm.eps = 1e-5f };
	ops[n_ops++] = (struct st_op){ .kind = ST_OP_MATMUL, .dst = rt[Q].t, .src = { rt[WQ].t, rt[XB].t } };
	ops[n_ops++] = (struct st_op){ .kind = ST_OP_MATMUL, .dst = rt[K].t, .src = { rt[WK].t, rt[XB].t } };
	ops[n_ops++] = (struct st_op){ .kind = ST_OP_MATMUL, .dst = rt[V].t, .src = { rt[WV].t, rt[XB].t } };
	ops[n_ops++] = (struct st_op){ .kind = ST_OP_ROPE, .dst = rt[Q].t, .src = { rt[Q].t }, .p.rope = { 4, 16, 16, 10000.f } };
	ops[n_ops++] = (struct st_op){ .kind = ST_OP_ROPE, .dst = rt[K].t, .src = { rt[K].t }, .p.rope = { 2, 16, 16, 10000.f } };
	ops[n_ops++] = (struct st_op){ .kind = ST_OP_KV_STORE, .dst = rt[KC].t, .src = { rt[K].t } };
	ops[n_ops++] = (struct st_op){ .kind = ST_OP_KV_STORE, .dst = rt[VC].t, .src = { rt[V].t } };
	ops[n_ops++] = (struct st_op){ .kind = ST_OP_ATTN, .dst = out.t, .src = { rt[Q].t, rt[KC].t, rt[VC].t },
				       .p.attn = { 4, 2, 16, 0.25f } };
	ops[n_ops++] = (struct st_op){ .kind = ST_OP_ADD, .dst = y.t, .src = { out.t, rt[XB].t } };
	rc = st_graph_prepare(c->be, ops, n_ops, &g);
	if (rc == -ENOTSUP) {
		tap_skip("%s graph replay: not supported: %s", c->be_name, st_last_error());
		goto out;
	}
	if (!ok(rc == 0, "%s graph replay: a %d-op attention block prepares", c->be_name, n_ops)) {
		diag("%s", st_last_error());
		goto out;
	}
	for (size_t si = 0; si < ST_ARRAY_SIZE(steps); si++) {
		const struct st_graph_run run = { .n_tokens = steps[si][0], .pos0 = steps[si][1] };
		float got[RP_CAP * RP_DIM];
		/* fresh input rows on both sides */
		for (int64_t i = 0; i < run.n_tokens * RP_DIM; i++)
			((float *)all[X].host)[i] = frand();
		st_buffer_write(c->be, all[X].t.buf, 0, all[X].host, (size_t)run.n_tokens * RP_DIM * sizeof(float));
		rc = st_graph_run(c->be, g, &run);
		if (!rc)
			rc = st_backend_synchronize(c->be);
		if (!rc)
			rc = st_buffer_read(c->be, y.t.buf, 0, got, (size_t)run.n_tokens * RP_DIM * sizeof(float));
		for (int i = 0; i < n_ops && !rc; i++) {
			const void *src[3] = { 0 };
			for (int j = 0; j < 3; j++)
				if (ops[i].src[j].buf)
					src[j] = rp_host(all, RP_NT + 2, &ops[i].src[j]);
			rc = st_ref_op_run(&ops[i], &run, rp_host(all, RP_NT + 2, &ops[i].dst), src);
		}
		double e = 0, s = 0;
		bool nan = false;
		for (int64_t i = 0; i < run.n_tokens * RP_DIM && !rc; i++) {
			const double a = ((float *)all[RP_NT + 1].host)[i];
			nan |= isnan(got[i]);
			e += (a - got[i]) * (a - got[i]);
			s += a * a;
		}
		ok(!rc && !nan && e / s <= 5e-4, "%s graph replay step %zu (%lld tokens at pos %lld): nmse %.3g%s%s",
		   c->be_name, si + 1, (long long)run.n_tokens, (long long)run.pos0, s > 0 ? e / s : e,
		   rc ? " - " : "", rc ? st_last_error() : "");
	}
	{
		/* the K cache: rows 0..9 written, the rest untouched (zero) */
		uint16_t kc[RP_CTX * RP_KVD];
		double e = 0, s = 0;
		bool rest_same = true;
		rc = st_buffer_read(c->be, all[KC].t.buf, 0, kc, sizeof(kc));
		for (int i = 0; i < RP_CTX * RP_KVD && !rc; i++) {
			const double a = st_fp16_to_fp32(((uint16_t *)all[KC].host)[i]), b = st_fp16_to_fp32(kc[i]);
			if (i >= 10 * RP_KVD)   /* unwritten rows keep their initial bytes */
				rest_same &= kc[i] == ((uint16_t *)all[KC].host)[i];
			e += (a - b) * (a - b);
			s += a * a;
		}
		ok(!rc && e / s <= 5e-4 && rest_same, "%s graph replay: K cache rows 0-9 match (nmse %.3g), rows 10-15 untouched",
		   c->be_name, e / s);
	}
out:
	st_graph_free(c->be, g);
	for (int i = 0; i < RP_NT; i++) {
		st_buffer_free(c->be, rt[i].t.buf);
		free(rt[i].host);
	}
	st_buffer_free(c->be, out.t.buf);
	free(out.host);
	st_buffer_free(c->be, y.t.buf);
	free(y.host);
}

/* ---- errors ------------------------------------------------------------ */

static void test_errors(struct st_backend *be)
{
	struct st_buffer *b = NULL;
	struct st_graph *g = NULL;
	int rc = st_buffer_alloc(be, 256, 0, &b);
	ok(rc == 0, "cpu: alloc 256 bytes");
	struct st_op op = { .kind = ST_OP_ADD };
	op.dst = (struct st_tensor){ b, 0, ST_TYPE_F32, 16, 4, 64 };
	op.src[0] = op.dst;
	op.src[1] = op.dst;
	op.src[1].offset = 64;      /* rows 1..4: the last overruns */
	rc = st_graph_prepare(be, &op, 1, &g);
	ok(rc < 0 && g == NULL, "tensor overrunning its buffer is rejected: %s", st_last_error());
	op.src[1] = op.dst;
	op.src[1].ne0 = 15;
	rc = st_graph_prepare(be, &op, 1, &g);
	ok(rc < 0, "add of mismatched rows is rejected: %s", st_last_error());
	op.src[1] = op.dst;
	rc = st_graph_prepare(be, &op, 1, &g);
	ok(rc == 0, "valid add prepares");
	struct st_graph_run run = { .n_tokens = 5, .pos0 = 0 };
	rc = st_graph_run(be, g, &run);
	ok(rc < 0, "run with more tokens than rows is rejected: %s", st_last_error());
	st_graph_free(be, g);
	g = NULL;
	/* get_rows with an id out of range */
	op = (struct st_op){ .kind = ST_OP_GET_ROWS };
	op.dst = (struct st_tensor){ b, 0, ST_TYPE_F32, 8, 2, 32 };
	op.src[0] = (struct st_tensor){ b, 64, ST_TYPE_F32, 8, 3, 32 };
	op.src[1] = (struct st_tensor){ b, 192, ST_TYPE_I32, 1, 2, 4 };
	int32_t ids[2] = { 1, 3 };
	st_buffer_write(be, b, 192, ids, sizeof(ids));
	rc = st_graph_prepare(be, &op, 1, &g);
	if (!rc) {
		run = (struct st_graph_run){ .n_tokens = 2, .pos0 = 0 };
		rc = st_graph_run(be, g, &run);
	}
	ok(rc < 0, "get_rows with id 3 of 3 rows fails: %s", st_last_error());
	st_graph_free(be, g);
	g = NULL;
	/* q4_0 with a row that is not whole blocks */
	op = (struct st_op){ .kind = ST_OP_MATMUL };
	op.dst = (struct st_tensor){ b, 0, ST_TYPE_F32, 1, 1, 4 };
	op.src[0] = (struct st_tensor){ b, 0, ST_TYPE_Q4_0, 20, 1, 18 };
	op.src[1] = (struct st_tensor){ b, 64, ST_TYPE_F32, 20, 1, 80 };
	rc = st_graph_prepare(be, &op, 1, &g);
	ok(rc < 0, "q4_0 row of 20 elements is rejected: %s", st_last_error());
	st_buffer_free(be, b);
}

int main(void)
{
	const struct st_backend_ops *const *list;
	int n_be = st_backend_registry(&list);
	int n_devices = 0;

	ok(n_be >= 1 && !strcmp(list[n_be - 1]->name, "cpu"), "registry lists %d backend(s), cpu last", n_be);
	test_reference();
	for (int b = 0; b < n_be; b++) {
		int nd = st_backend_device_count(list[b]);
		if (nd == 0) {
			diag("backend %s: no devices, skipped", list[b]->name);
			continue;
		}
		for (int d = 0; d < nd; d++) {
			struct ctx c = { .be_name = list[b]->name };
			char name[64];
			if (st_backend_open(list[b], d, &c.be) != 0) {
				ok(0, "open %s device %d: %s", list[b]->name, d, st_last_error());
				continue;
			}
			snprintf(name, sizeof(name), "%s%d", list[b]->name, d);
			c.be_name = name;
			diag("backend %s device %d: %s", list[b]->name, d, c.be->info.name);
			n_devices++;
			test_get_rows(&c);
			test_rmsnorm(&c);
			test_matmul(&c);
			test_rope(&c);
			test_kv_store(&c);
			test_attn(&c);
			test_eltwise(&c);
			test_replay(&c);
			if (!strcmp(list[b]->name, "cpu"))
				test_errors(c.be);
			diag("%s: %d failure(s)", name, c.n_fail_total);
			st_backend_close(c.be);
		}
	}
	ok(n_devices >= 1, "%d device(s) tested", n_devices);
	return tap_done();
}
