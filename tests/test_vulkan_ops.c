/* test_vulkan_ops: every op x every weight/cache type of the Vulkan backend
 * against the scalar reference (runtime/ops_ref.c), on odd shapes, by
 * normalized mean squared error (1e-7 elementwise, 5e-4 matmul/attention),
 * NaN a failure, guard bytes around and between the live rows of every
 * output, non-16-byte-aligned tensor offsets, padded row strides; then a
 * small multi-op layer replayed for prefill and several decode steps from
 * one recorded command buffer.  Runs three device configurations (subgroup
 * reductions + unified memory, shared-memory reductions, forced staging
 * copies) under the Khronos validation layer, and fails on any error
 * message it reports. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "ops_ref.h"
#include "strata.h"
#include "tap.h"
#include "types.h"
#include "util.h"
#include "vk_backend.h"

#define GUARD 68           /* tensor offset inside its buffer: not 16-aligned */
#define PAD 16             /* row stride padding of activations */
#define CANARY 0xA5

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static float frand(void)   /* uniform in [-1, 1) */
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (float)((rng >> 11) * (1.0 / 9007199254740992.0)) * 2.0f - 1.0f;
}

struct tt {
	struct st_tensor t;
	struct st_buffer *buf;
	unsigned char *host;       /* reference copy of the whole buffer */
	size_t size;
};

static struct st_backend *be;
static size_t guard_override;   /* nonzero: this tensor offset instead of GUARD */

static size_t row_bytes(uint32_t type, int64_t ne0)
{
	uint64_t r = 0;
	st_type_row_size(type, (uint64_t)ne0, &r);
	return (size_t)r;
}

/* A tensor of ne1 rows in its own buffer, `GUARD` bytes in, filled with
 * canaries then random values of its type in every row. */
static int tt_make(struct tt *x, uint32_t type, int64_t ne0, int64_t ne1, size_t pad, float amp)
{
	size_t rb = row_bytes(type, ne0);
	size_t guard = guard_override ? guard_override : type == ST_TYPE_F32 || type == ST_TYPE_I32 ? GUARD : GUARD - 2;
	memset(x, 0, sizeof(*x));
	x->t.type = type;
	x->t.ne0 = ne0;
	x->t.ne1 = ne1;
	x->t.nb1 = rb + pad;
	x->t.offset = guard;
	x->size = guard + (size_t)ne1 * x->t.nb1 + GUARD;
	x->host = malloc(x->size);
	if (!x->host)
		return -ENOMEM;
	memset(x->host, CANARY, x->size);
	float *tmp = malloc((size_t)ne0 * sizeof(float));
	for (int64_t r = 0; r < ne1; r++) {
		unsigned char *row = x->host + guard + (size_t)r * x->t.nb1;
		for (int64_t i = 0; i < ne0; i++)
			tmp[i] = frand() * amp;
		if (type == ST_TYPE_I32)
			((int32_t *)row)[0] = 0;
		else
			st_type_traits(type)->from_float(tmp, row, ne0);
	}
	free(tmp);
	int rc = st_buffer_alloc(be, x->size, type == ST_TYPE_F32 ? 0 : ST_BUF_WEIGHTS, &x->buf);
	if (rc)
		return rc;
	x->t.buf = x->buf;
	return 0;
}

static int tt_upload(struct tt *x)
{
	return st_buffer_write(be, x->buf, 0, x->host, x->size);
}

static void tt_free(struct tt *x)
{
	if (x->buf)
		st_buffer_free(be, x->buf);
	free(x->host);
	memset(x, 0, sizeof(*x));
}

static float elem(uint32_t type, const unsigned char *row, int64_t i)
{
	if (type == ST_TYPE_F16)
		return st_fp16_to_fp32(((const uint16_t *)row)[i]);
	return ((const float *)row)[i];
}

/* Compare device result `dev` with the reference x->host: rows [r0, r1)
 * by NMSE and NaN; every other byte (guards, padding, dead rows) exactly. */
static int compare(const char *what, const struct tt *x, const unsigned char *dev, int64_t r0, int64_t r1,
		   double thresh)
{
	double num = 0, den = 0;
	long nan = 0, stray = 0;
	size_t rb = row_bytes(x->t.type, x->t.ne0);
	unsigned char *live = calloc(x->size, 1);
	for (int64_t r = r0; r < r1; r++) {
		size_t o = x->t.offset + (size_t)r * x->t.nb1;
		memset(live + o, 1, rb);
		for (int64_t i = 0; i < x->t.ne0; i++) {
			double a = elem(x->t.type, x->host + o, i), b = elem(x->t.type, dev + o, i);
			if (isnan(b) || isnan(a))
				nan++;
			num += (a - b) * (a - b);
			den += a * a;
		}
	}
	for (size_t i = 0; i < x->size; i++)
		if (!live[i] && dev[i] != x->host[i])
			stray++;
	free(live);
	double nmse = den > 0 ? num / den : num;
	return ok(nmse <= thresh && !nan && !stray && den > 0, "%s: nmse %.3g (max %.0e), %ld NaN, %ld stray bytes",
		  what, nmse, thresh, nan, stray);
}

/* Run one op on the device and with the reference; compare dst. */
static void check_op(const char *what, struct st_op *op, struct tt *dst, struct tt *src[3], int n_src,
		     const struct st_graph_run *run, int64_t r0, int64_t r1, double thresh)
{
	struct st_graph *g = NULL;
	const void *hs[3] = { NULL, NULL, NULL };
	int rc;

	for (int i = 0; i < n_src; i++)
		if (src[i] && src[i] != dst && tt_upload(src[i]))
			diag("upload failed");
	if (tt_upload(dst))
		diag("upload failed");
	op->dst = dst->t;
	for (int i = 0; i < n_src; i++)
		if (src[i]) {
			op->src[i] = src[i]->t;
			hs[i] = src[i]->host + src[i]->t.offset;
		}
	rc = st_graph_prepare(be, op, 1, &g);
	if (!ok(rc == 0, "%s: prepare (%s)", what, rc ? st_last_error() : "ok"))
		return;
	rc = st_graph_run(be, g, run);
	ok(rc == 0, "%s: run (%s)", what, rc ? st_last_error() : "ok");
	unsigned char *dev = malloc(dst->size);
	st_buffer_read(be, dst->buf, 0, dev, dst->size);
	rc = st_ref_op_run(op, run, dst->host + dst->t.offset, hs);
	if (rc)
		diag("reference failed: %s", st_last_error());
	compare(what, dst, dev, r0, r1, thresh);
	free(dev);
	st_graph_free(be, g);
}

static const uint32_t wtypes[] = { ST_TYPE_F32, ST_TYPE_F16, ST_TYPE_BF16, ST_TYPE_Q8_0, ST_TYPE_Q4_0 };

static void test_get_rows(void)
{
	for (size_t w = 0; w < ST_ARRAY_SIZE(wtypes); w++) {
		int64_t ne0 = st_type_traits(wtypes[w])->block_size == 1 ? 67 : 96;
		struct tt tab, ids, dst;
		struct st_graph_run run = { .n_tokens = 5, .pos0 = 0 };
		tt_make(&tab, wtypes[w], ne0, 300, 0, 1.0f);   /* 300 rows: split under a 16 KiB binding cap */
		tt_make(&ids, ST_TYPE_I32, 1, 8, 4, 0);
		for (int t = 0; t < 8; t++)
			*(int32_t *)(ids.host + ids.t.offset + (size_t)t * ids.t.nb1) = (t * 67 + 3) % 300;
		tt_make(&dst, ST_TYPE_F32, ne0, 8, PAD, 1.0f);
		struct st_op op = { .kind = ST_OP_GET_ROWS };
		struct tt *src[3] = { &tab, &ids, NULL };
		char what[64];
		snprintf(what, sizeof what, "get_rows %s [%lld]", st_type_name(wtypes[w]), (long long)ne0);
		check_op(what, &op, &dst, src, 2, &run, 0, run.n_tokens, 1e-7);
		tt_free(&tab), tt_free(&ids), tt_free(&dst);
	}
}

static void test_rmsnorm(void)
{
	const uint32_t nt[] = { ST_TYPE_F32, ST_TYPE_F16, ST_TYPE_BF16 };
	const int64_t sizes[] = { 67, 1000 };
	for (size_t w = 0; w < 3; w++)
		for (size_t s = 0; s < 2; s++) {
			struct tt x, wt, dst;
			struct st_graph_run run = { .n_tokens = 3, .pos0 = 0 };
			tt_make(&x, ST_TYPE_F32, sizes[s], 4, PAD, 3.0f);
			tt_make(&wt, nt[w], sizes[s], 1, 0, 1.0f);
			tt_make(&dst, ST_TYPE_F32, sizes[s], 4, PAD, 1.0f);
			struct st_op op = { .kind = ST_OP_RMSNORM, .p.norm.eps = 1e-5f };
			struct tt *src[3] = { &x, &wt, NULL };
			char what[64];
			snprintf(what, sizeof what, "rmsnorm w=%s [%lld]", st_type_name(nt[w]), (long long)sizes[s]);
			check_op(what, &op, &dst, src, 2, &run, 0, run.n_tokens, 1e-7);
			tt_free(&x), tt_free(&wt), tt_free(&dst);
		}
}

static void test_matmul(void)
{
	const struct { int64_t rows, k; } shapes[] = { { 67, 64 }, { 130, 256 }, { 33, 96 }, { 5, 75 } };
	/* from the third on: x 16-byte aligned (the x-sharing vec4 kernels),
	 * from the fifth on weights 4-byte aligned too (f16/bf16 pairs) */
	const int64_t toks[] = { 1, 7, 7, 1, 8, 6 };
	for (size_t w = 0; w < ST_ARRAY_SIZE(wtypes); w++)
		for (size_t s = 0; s < ST_ARRAY_SIZE(shapes); s++)
			for (size_t n = 0; n < ST_ARRAY_SIZE(toks); n++) {
				if (shapes[s].k % st_type_traits(wtypes[w])->block_size)
					continue;
				struct tt W, x, dst;
				struct st_graph_run run = { .n_tokens = toks[n], .pos0 = 0 };
				guard_override = n >= 4 ? 64 : 0;   /* and 4-byte aligned weight rows */
				tt_make(&W, wtypes[w], shapes[s].k, shapes[s].rows, 0, 1.0f);
				guard_override = n >= 2 ? 64 : 0;
				tt_make(&x, ST_TYPE_F32, shapes[s].k, 8, PAD, 1.0f);
				guard_override = 0;
				tt_make(&dst, ST_TYPE_F32, shapes[s].rows, 8, PAD, 1.0f);
				struct st_op op = { .kind = ST_OP_MATMUL };
				struct tt *src[3] = { &W, &x, NULL };
				char what[80];
				snprintf(what, sizeof what, "matmul %s [%lld x %lld] x %lld tokens%s", st_type_name(wtypes[w]),
					 (long long)shapes[s].rows, (long long)shapes[s].k, (long long)toks[n],
					 n >= 2 ? ", aligned x" : "");
				check_op(what, &op, &dst, src, 2, &run, 0, run.n_tokens, 5e-4);
				tt_free(&W), tt_free(&x), tt_free(&dst);
			}
}

static void test_rope(void)
{
	const struct { uint32_t nh, hd, rd; int64_t pos0; } cases[] = {
		{ 3, 16, 16, 0 }, { 3, 16, 8, 100 }, { 2, 64, 64, 1000 },
	};
	for (size_t c = 0; c < ST_ARRAY_SIZE(cases); c++) {
		struct tt x;
		struct st_graph_run run = { .n_tokens = 5, .pos0 = cases[c].pos0 };
		tt_make(&x, ST_TYPE_F32, (int64_t)cases[c].nh * cases[c].hd, 6, PAD, 1.0f);
		struct st_op op = { .kind = ST_OP_ROPE,
				    .p.rope = { cases[c].nh, cases[c].hd, cases[c].rd, 10000.0f } };
		struct tt *src[3] = { &x, NULL, NULL };
		char what[80];
		snprintf(what, sizeof what, "rope n_head=%u head_dim=%u rope_dim=%u pos0=%lld", cases[c].nh,
			 cases[c].hd, cases[c].rd, (long long)cases[c].pos0);
		check_op(what, &op, &x, src, 1, &run, 0, run.n_tokens, 1e-7);
		tt_free(&x);
	}
}

static void test_kv_store(void)
{
	const uint32_t ct[] = { ST_TYPE_F32, ST_TYPE_F16 };
	for (size_t c = 0; c < 2; c++) {
		struct tt x, cache;
		struct st_graph_run run = { .n_tokens = 4, .pos0 = 3 };
		tt_make(&x, ST_TYPE_F32, 48, 6, PAD, 2.0f);
		tt_make(&cache, ct[c], 48, 16, 0, 1.0f);
		struct st_op op = { .kind = ST_OP_KV_STORE };
		struct tt *src[3] = { &x, NULL, NULL };
		char what[64];
		snprintf(what, sizeof what, "kv_store %s", st_type_name(ct[c]));
		check_op(what, &op, &cache, src, 1, &run, run.pos0, run.pos0 + run.n_tokens, 1e-7);
		tt_free(&x), tt_free(&cache);
	}
}

static void test_attn(void)
{
	const struct { uint32_t nh, nkv, hd; int64_t n, pos0; } cases[] = {
		{ 4, 2, 16, 6, 0 },      /* prefill from empty cache */
		{ 4, 2, 16, 1, 70 },     /* decode over more keys than a workgroup */
		{ 6, 6, 64, 3, 130 },    /* MHA, chunked prefill */
		{ 8, 1, 48, 2, 9 },      /* MQA, odd head count ratio */
	};
	const uint32_t ct[] = { ST_TYPE_F32, ST_TYPE_F16 };
	for (size_t c = 0; c < 4; c++)   /* f32, f16; then both with 16-byte aligned rows */
		for (size_t k = 0; k < ST_ARRAY_SIZE(cases); k++) {
			struct tt q, K, V, dst;
			guard_override = c >= 2 ? 64 : 0;
			struct st_graph_run run = { .n_tokens = cases[k].n, .pos0 = cases[k].pos0 };
			int64_t rows = cases[k].pos0 + cases[k].n + 3;
			tt_make(&q, ST_TYPE_F32, (int64_t)cases[k].nh * cases[k].hd, 8, PAD, 1.0f);
			tt_make(&K, ct[c % 2], (int64_t)cases[k].nkv * cases[k].hd, rows, 0, 1.0f);
			tt_make(&V, ct[c % 2], (int64_t)cases[k].nkv * cases[k].hd, rows, 0, 1.0f);
			tt_make(&dst, ST_TYPE_F32, (int64_t)cases[k].nh * cases[k].hd, 8, PAD, 1.0f);
			guard_override = 0;
			struct st_op op = { .kind = ST_OP_ATTN,
					    .p.attn = { cases[k].nh, cases[k].nkv, cases[k].hd,
							1.0f / sqrtf((float)cases[k].hd) } };
			struct tt *src[3] = { &q, &K, &V };
			char what[96];
			snprintf(what, sizeof what, "attn %s%s n_head=%u kv=%u hd=%u tokens=%lld pos0=%lld", c >= 2 ? "aligned " : "",
				 st_type_name(ct[c % 2]), cases[k].nh, cases[k].nkv, cases[k].hd, (long long)cases[k].n,
				 (long long)cases[k].pos0);
			check_op(what, &op, &dst, src, 3, &run, 0, run.n_tokens, 5e-4);
			tt_free(&q), tt_free(&K), tt_free(&V), tt_free(&dst);
		}
}

static void test_eltwise(void)
{
	const enum st_op_kind kinds[] = { ST_OP_ADD, ST_OP_SWIGLU, ST_OP_SOFTMAX };
	const int64_t sizes[] = { 67, 1000, 5003 };
	for (size_t k = 0; k < 3; k++)
		for (size_t s = 0; s < 3; s++) {
			struct tt a, b, dst;
			struct st_graph_run run = { .n_tokens = 3, .pos0 = 0 };
			tt_make(&a, ST_TYPE_F32, sizes[s], 4, PAD, 4.0f);
			tt_make(&b, ST_TYPE_F32, sizes[s], 4, PAD, 1.0f);
			tt_make(&dst, ST_TYPE_F32, sizes[s], 4, PAD, 1.0f);
			struct st_op op = { .kind = kinds[k] };
			struct tt *src[3] = { &a, kinds[k] == ST_OP_SOFTMAX ? NULL : &b, NULL };
			char what[64];
			snprintf(what, sizeof what, "%s [%lld]", st_op_name(kinds[k]), (long long)sizes[s]);
			check_op(what, &op, &dst, src, 2, &run, 0, run.n_tokens, 1e-7);
			tt_free(&a), tt_free(&b), tt_free(&dst);
		}
}

/* A layer-like graph recorded once and replayed: x -> rmsnorm -> q = Wq h,
 * k = Wk h, v = Wv h -> rope q,k -> store k,v -> attn -> o = Wo a -> x + o.
 * Prefill 5 tokens, then 4 single-token decode steps; each run compared
 * with the reference ops run in order on host copies. */
static void test_replay(uint32_t wtype, uint32_t ctype)
{
	enum { D = 64, NH = 4, NKV = 2, HD = 16, CAP = 8, CTX = 16 };
	struct tt x, nw, h, Wq, Wk, Wv, Wo, q, k, v, Kc, Vc, a, o, y;
	tt_make(&x, ST_TYPE_F32, D, CAP, PAD, 1.0f);
	tt_make(&nw, ST_TYPE_F32, D, 1, 0, 1.0f);
	tt_make(&h, ST_TYPE_F32, D, CAP, PAD, 0);
	tt_make(&Wq, wtype, D, NH * HD, 0, 0.3f);
	tt_make(&Wk, wtype, D, NKV * HD, 0, 0.3f);
	tt_make(&Wv, wtype, D, NKV * HD, 0, 0.3f);
	tt_make(&Wo, wtype, NH * HD, D, 0, 0.3f);
	tt_make(&q, ST_TYPE_F32, NH * HD, CAP, 0, 0);
	tt_make(&k, ST_TYPE_F32, NKV * HD, CAP, 0, 0);
	tt_make(&v, ST_TYPE_F32, NKV * HD, CAP, 0, 0);
	tt_make(&Kc, ctype, NKV * HD, CTX, 0, 0);
	tt_make(&Vc, ctype, NKV * HD, CTX, 0, 0);
	tt_make(&a, ST_TYPE_F32, NH * HD, CAP, 0, 0);
	tt_make(&o, ST_TYPE_F32, D, CAP, 0, 0);
	tt_make(&y, ST_TYPE_F32, D, CAP, PAD, 0);
	struct tt *all[] = { &x, &nw, &h, &Wq, &Wk, &Wv, &Wo, &q, &k, &v, &Kc, &Vc, &a, &o, &y };
	struct op_def { enum st_op_kind kind; struct tt *d, *s0, *s1, *s2; } defs[] = {
		{ ST_OP_RMSNORM, &h, &x, &nw, NULL },
		{ ST_OP_MATMUL, &q, &Wq, &h, NULL },
		{ ST_OP_MATMUL, &k, &Wk, &h, NULL },
		{ ST_OP_MATMUL, &v, &Wv, &h, NULL },
		{ ST_OP_ROPE, &q, &q, NULL, NULL },
		{ ST_OP_ROPE, &k, &k, NULL, NULL },
		{ ST_OP_KV_STORE, &Kc, &k, NULL, NULL },
		{ ST_OP_KV_STORE, &Vc, &v, NULL, NULL },
		{ ST_OP_ATTN, &a, &q, &Kc, &Vc },
		{ ST_OP_MATMUL, &o, &Wo, &a, NULL },
		{ ST_OP_ADD, &y, &x, &o, NULL },
	};
	enum { NOPS = ST_ARRAY_SIZE(defs) };
	struct st_op ops[NOPS];
	memset(ops, 0, sizeof ops);
	for (int i = 0; i < NOPS; i++) {
		ops[i].kind = defs[i].kind;
		ops[i].dst = defs[i].d->t;
		ops[i].src[0] = defs[i].s0->t;
		if (defs[i].s1)
			ops[i].src[1] = defs[i].s1->t;
		if (defs[i].s2)
			ops[i].src[2] = defs[i].s2->t;
		if (defs[i].kind == ST_OP_RMSNORM)
			ops[i].p.norm.eps = 1e-5f;
		if (defs[i].kind == ST_OP_ROPE) {
			ops[i].p.rope.n_head = defs[i].d == &q ? NH : NKV;
			ops[i].p.rope.head_dim = ops[i].p.rope.rope_dim = HD;
			ops[i].p.rope.theta = 10000.0f;
		}
		if (defs[i].kind == ST_OP_ATTN) {
			ops[i].p.attn.n_head = NH;
			ops[i].p.attn.n_head_kv = NKV;
			ops[i].p.attn.head_dim = HD;
			ops[i].p.attn.scale = 0.25f;
		}
	}
	for (size_t i = 0; i < ST_ARRAY_SIZE(all); i++)
		tt_upload(all[i]);
	struct st_graph *g = NULL;
	int rc = st_graph_prepare(be, ops, NOPS, &g);
	if (!ok(rc == 0, "replay %s/%s: prepare %d ops (%s)", st_type_name(wtype), st_type_name(ctype), NOPS,
		rc ? st_last_error() : "ok"))
		goto out;
	int64_t pos = 0;
	for (int step = 0; step < 5; step++) {
		struct st_graph_run run = { .n_tokens = step == 0 ? 5 : 1, .pos0 = pos };
		/* fresh input rows on host and device */
		for (int64_t t = 0; t < run.n_tokens; t++)
			for (int i = 0; i < D; i++)
				((float *)(x.host + x.t.offset + (size_t)t * x.t.nb1))[i] = frand();
		tt_upload(&x);
		rc = st_graph_run(be, g, &run);
		for (int i = 0; i < NOPS && !rc; i++) {
			const void *hs[3] = { defs[i].s0->host + defs[i].s0->t.offset,
					      defs[i].s1 ? defs[i].s1->host + defs[i].s1->t.offset : NULL,
					      defs[i].s2 ? defs[i].s2->host + defs[i].s2->t.offset : NULL };
			rc = st_ref_op_run(&ops[i], &run, defs[i].d->host + defs[i].d->t.offset, hs);
		}
		unsigned char *dev = malloc(y.size);
		st_buffer_read(be, y.buf, 0, dev, y.size);
		char what[96];
		snprintf(what, sizeof what, "replay %s/%s step %d (n_tokens %lld, pos0 %lld): y", st_type_name(wtype),
			 st_type_name(ctype), step, (long long)run.n_tokens, (long long)run.pos0);
		if (rc)
			diag("run: %s", st_last_error());
		compare(what, &y, dev, 0, run.n_tokens, 5e-4);
		memcpy(y.host, dev, y.size);   /* rows of this step are stale next step */
		free(dev);
		pos += run.n_tokens;
	}
	/* a run beyond the activations' capacity is refused, not executed */
	struct st_graph_run big = { .n_tokens = CAP + 1, .pos0 = 0 };
	ok(st_graph_run(be, g, &big) == -EINVAL, "run with %d tokens > capacity %d is refused: %s", CAP + 1, CAP,
	   st_last_error());
	struct st_graph_run late = { .n_tokens = 2, .pos0 = CTX - 1 };
	ok(st_graph_run(be, g, &late) == -EINVAL, "run past the end of the KV cache is refused");
	double secs[NOPS];
	rc = st_graph_op_times(be, g, secs, NOPS);   /* asks for timing: next runs are timed */
	if (rc != -ENOTSUP) {
		ok(rc == -EAGAIN, "per-op times are recorded from the first request on");
		struct st_graph_run again = { .n_tokens = 1, .pos0 = 3 };
		rc = st_graph_run(be, g, &again);
		if (rc == 0)
			rc = st_graph_op_times(be, g, secs, NOPS);
		double sum = 0;
		for (int i = 0; i < NOPS && rc == NOPS; i++)
			sum += secs[i];
		ok(rc == NOPS && sum > 0, "per-op times: %d ops, %.3f ms total", rc, sum * 1e3);
	}
	st_graph_free(be, g);
out:
	for (size_t i = 0; i < ST_ARRAY_SIZE(all); i++)
		tt_free(all[i]);
}

static void test_errors(void)
{
	struct tt W, x, dst;
	struct st_graph *g = NULL;
	tt_make(&W, ST_TYPE_F32, 64, 8, 0, 1.0f);
	tt_make(&x, ST_TYPE_F32, 64, 2, 0, 1.0f);
	tt_make(&dst, ST_TYPE_F32, 9, 2, 0, 1.0f);   /* wrong: W has 8 rows */
	struct st_op op = { .kind = ST_OP_MATMUL, .dst = dst.t, .src = { W.t, x.t } };
	ok(st_graph_prepare(be, &op, 1, &g) == -EINVAL && !g, "mismatched matmul is refused: %s", st_last_error());
	op.dst.ne0 = 8;
	op.src[0].type = ST_TYPE_IQ4_NL;
	op.src[0].nb1 = 18 * 2;
	ok(st_graph_prepare(be, &op, 1, &g) < 0 && !g, "unsupported weight type is refused: %s", st_last_error());
	op.src[0] = W.t;
	op.src[0].offset = 1;
	ok(st_graph_prepare(be, &op, 1, &g) < 0 && !g, "misaligned f32 tensor is refused: %s", st_last_error());
	unsigned char b[8];
	ok(st_buffer_read(be, W.buf, W.size - 4, b, 8) == -EINVAL, "read past a buffer's end is refused");
	tt_free(&W), tt_free(&x), tt_free(&dst);
}

static void log_cb(enum st_log_level level, const char *msg, void *user)
{
	(void)user;
	if (level >= ST_LOG_WARN)
		diag("%s: %s", level >= ST_LOG_ERROR ? "error" : "warning", msg);
}

int main(void)
{
	st_set_log(log_cb, NULL, ST_LOG_WARN);
	const struct st_backend_ops *vk = st_backend_find("vulkan");
	/* each: up to two environment variables read by the backend at open */
	static const struct { const char *name, *env[2], *value[2]; } configs[] = {
		{ "default (the device's own choices)", { NULL }, { NULL } },
		{ "GPU kernels, subgroup reductions", { "ST_VULKAN_KERNELS" }, { "gpu" } },
		{ "GPU kernels, shared-memory reductions", { "ST_VULKAN_KERNELS", "ST_VULKAN_NO_SUBGROUPS" },
		  { "gpu", "1" } },
		{ "CPU-driver kernels without subgroup shuffles", { "ST_VULKAN_KERNELS", "ST_VULKAN_NO_SUBGROUPS" },
		  { "cpu", "1" } },
		{ "forced staging copies", { "ST_VULKAN_FORCE_STAGING" }, { "1" } },
		{ "bindings capped at 16 KiB: weights split by rows (matmul, get_rows)", { "ST_VULKAN_MAX_BINDING" },
		  { "16384" } },
	};

	if (!getenv("ST_VULKAN_VALIDATION"))
		setenv("ST_VULKAN_VALIDATION", "1", 1);
	if (!vk)
		tap_skip_all("the vulkan backend is not in the registry (built without Vulkan)");
	if (st_backend_device_count(vk) == 0)
		tap_skip_all("no Vulkan device (install mesa-vulkan-drivers for lavapipe)");
	for (size_t c = 0; c < ST_ARRAY_SIZE(configs); c++) {
		for (int e = 0; e < 2; e++)
			if (configs[c].env[e])
				setenv(configs[c].env[e], configs[c].value[e], 1);
		int rc = st_backend_open(vk, 0, &be);
		if (!ok(rc == 0, "open vulkan0 [%s]: %s", configs[c].name, rc ? st_last_error() : be->info.name))
			break;
		diag("config: %s; validation layer %s", configs[c].name, st_vk_validation_enabled() ? "on" : "OFF");
		if (configs[c].env[0] && !strcmp(configs[c].env[0], "ST_VULKAN_MAX_BINDING")) {
			test_matmul();
			test_get_rows();
			test_replay(ST_TYPE_Q4_0, ST_TYPE_F16);
			goto next;
		}
		test_get_rows();
		test_rmsnorm();
		test_matmul();
		test_rope();
		test_kv_store();
		test_attn();
		test_eltwise();
		test_replay(ST_TYPE_Q4_0, ST_TYPE_F16);
		test_replay(ST_TYPE_F16, ST_TYPE_F32);
		test_errors();
next:
		st_backend_close(be);
		be = NULL;
		for (int e = 0; e < 2; e++)
			if (configs[c].env[e])
				unsetenv(configs[c].env[e]);
	}
	ok(st_vk_validation_error_count() == 0, "validation layer: %llu errors",
	   (unsigned long long)st_vk_validation_error_count());
	return tap_done();
}
