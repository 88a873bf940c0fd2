/* test_cpu_fuse.c: the CPU backend's fused decode steps (cpu_fuse.h).
 *  - which op spans of a layer graph fuse (Q/K/V + RoPE + KV store; Wo +
 *    residual; gate/up + SwiGLU; down + residual), and that spans which
 *    would read what they write do not;
 *  - whole models (mkmodel 'custom', F32/F16/Q8_0/Q4_0/Q4_K weights, F32
 *    and F16 KV cache): logits of a prefill + forced decode steps are
 *    bit-identical with fusion on and off (ST_CPU_NO_FUSE=1), with 1, 2 and
 *    3 threads, and close to the scalar reference forward pass. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cpu_fuse.h"
#include "mkmodel.h"
#include "strata.h"
#include "tap.h"
#include "types.h"

#define N_STEPS 24
#define N_PROMPT 5

/* ---- spans on a hand-built layer graph (same shapes as stage.c) ---- */

static char g_act, g_w, g_kv;   /* stand-ins for three buffers */

static struct st_tensor tn(void *buf, size_t off, uint32_t type, int64_t ne0, int64_t ne1)
{
	uint64_t rb = 0;
	st_type_row_size(type, (uint64_t)ne0, &rb);
	return (struct st_tensor){ .buf = buf, .offset = off, .type = type, .ne0 = ne0, .ne1 = ne1, .nb1 = (size_t)rb };
}

static struct st_op op2(enum st_op_kind k, struct st_tensor d, struct st_tensor a, struct st_tensor b)
{
	struct st_op op = { .kind = k, .dst = d };
	op.src[0] = a;
	op.src[1] = b;
	return op;
}

static void spans(void)
{
	const int64_t dim = 256, hd = 64, nh = 4, nkv = 2, kvd = nkv * hd, ff = 512, T = 8;
	size_t o = 0;
	struct st_tensor x = tn(&g_act, o, ST_TYPE_F32, dim, T); o += 4096 * 8;
	struct st_tensor xb = tn(&g_act, o, ST_TYPE_F32, dim, T); o += 4096 * 8;
	struct st_tensor q = tn(&g_act, o, ST_TYPE_F32, nh * hd, T); o += 4096 * 8;
	struct st_tensor k = tn(&g_act, o, ST_TYPE_F32, kvd, T); o += 4096 * 8;
	struct st_tensor v = tn(&g_act, o, ST_TYPE_F32, kvd, T); o += 4096 * 8;
	struct st_tensor att = tn(&g_act, o, ST_TYPE_F32, nh * hd, T); o += 4096 * 8;
	struct st_tensor hb = tn(&g_act, o, ST_TYPE_F32, ff, T); o += 4096 * 8;
	struct st_tensor hb2 = tn(&g_act, o, ST_TYPE_F32, ff, T);
	struct st_tensor kc = tn(&g_kv, 0, ST_TYPE_F16, kvd, 64), vc = tn(&g_kv, 1 << 16, ST_TYPE_F16, kvd, 64);
	struct st_tensor wq = tn(&g_w, 0, ST_TYPE_Q4_0, dim, nh * hd), wk = tn(&g_w, 1 << 20, ST_TYPE_Q4_0, dim, kvd);
	struct st_tensor wv = tn(&g_w, 2 << 20, ST_TYPE_Q8_0, dim, kvd), wo = tn(&g_w, 3 << 20, ST_TYPE_Q4_0, nh * hd, dim);
	struct st_tensor w1 = tn(&g_w, 4 << 20, ST_TYPE_Q4_K, dim, ff), w3 = tn(&g_w, 5 << 20, ST_TYPE_Q4_K, dim, ff);
	struct st_tensor w2 = tn(&g_w, 6 << 20, ST_TYPE_Q6_K, ff, dim), nw = tn(&g_w, 7 << 20, ST_TYPE_F32, dim, 1);
	struct st_op ops[17];
	int n = 0;
	ops[n++] = op2(ST_OP_RMSNORM, xb, x, nw);
	ops[n++] = op2(ST_OP_MATMUL, q, wq, xb);
	ops[n++] = op2(ST_OP_MATMUL, k, wk, xb);
	ops[n++] = op2(ST_OP_MATMUL, v, wv, xb);
	struct st_op r = { .kind = ST_OP_ROPE, .dst = q, .src = { q } };
	r.p.rope.n_head = (uint32_t)nh;
	r.p.rope.head_dim = r.p.rope.rope_dim = (uint32_t)hd;
	r.p.rope.theta = 10000.0f;
	ops[n++] = r;
	r.dst = r.src[0] = k;
	r.p.rope.n_head = (uint32_t)nkv;
	ops[n++] = r;
	ops[n++] = (struct st_op){ .kind = ST_OP_KV_STORE, .dst = kc, .src = { k } };
	ops[n++] = (struct st_op){ .kind = ST_OP_KV_STORE, .dst = vc, .src = { v } };
	ops[n++] = (struct st_op){ .kind = ST_OP_ATTN, .dst = att, .src = { q, kc, vc } };
	ops[n++] = op2(ST_OP_MATMUL, xb, wo, att);
	ops[n++] = op2(ST_OP_ADD, x, x, xb);
	ops[n++] = op2(ST_OP_RMSNORM, xb, x, nw);
	ops[n++] = op2(ST_OP_MATMUL, hb, w1, xb);
	ops[n++] = op2(ST_OP_MATMUL, hb2, w3, xb);
	ops[n++] = op2(ST_OP_SWIGLU, hb, hb, hb2);
	ops[n++] = op2(ST_OP_MATMUL, xb, w2, hb);
	ops[n++] = op2(ST_OP_ADD, x, x, xb);
	const int want[17] = { 1, 7, 2, 1, 1, 1, 1, 1, 1, 2, 1, 1, 3, 1, 1, 2, 1 };
	int bad = 0;
	for (int i = 0; i < n; i++) {
		int s = st_cpu_fuse_span(ops, n, i);
		if (s != want[i]) {
			diag("op %d (%d): span %d, want %d", i, ops[i].kind, s, want[i]);
			bad++;
		}
	}
	ok(bad == 0, "layer graph: spans QKV+RoPE+RoPE+store+store (7), Wo+add (2), gate+up+SwiGLU (3), down+add (2)");

	/* must not fuse: an add writing the matmul's own input (x = x + W x) */
	struct st_op a[2] = { op2(ST_OP_MATMUL, xb, wo, x), op2(ST_OP_ADD, x, x, xb) };
	ok(st_cpu_fuse_span(a, 2, 0) == 1, "add into the matmul's input is not fused");
	/* nor a KV store into the input, nor RoPE of a head size that does not tile the rows */
	struct st_op b[2] = { op2(ST_OP_MATMUL, k, wk, xb), { .kind = ST_OP_KV_STORE, .dst = xb, .src = { k } } };
	ok(st_cpu_fuse_span(b, 2, 0) == 1, "KV store over the matmul's input is not fused");
	struct st_op c[2] = { op2(ST_OP_MATMUL, q, wq, xb), r };
	c[1].dst = c[1].src[0] = q;
	c[1].p.rope.n_head = 3;   /* 3 x 64 != 256 rows */
	ok(st_cpu_fuse_span(c, 2, 0) == 1, "RoPE over part of the rows is not fused");
	/* SwiGLU of outputs with different row counts (no lockstep) */
	struct st_op d[3] = { op2(ST_OP_MATMUL, hb, w1, xb), op2(ST_OP_MATMUL, k, wk, xb), op2(ST_OP_SWIGLU, hb, hb, k) };
	ok(st_cpu_fuse_span(d, 3, 0) == 2, "SwiGLU of unequal outputs is not fused (the two matmuls are)");
	/* matmuls reading different inputs stay apart */
	struct st_op e[2] = { op2(ST_OP_MATMUL, q, wq, xb), op2(ST_OP_MATMUL, hb, w1, x) };
	ok(st_cpu_fuse_span(e, 2, 0) == 1, "matmuls with different inputs are not fused");
	/* two parts adding into the same tensor: their chunks run on different threads at once */
	struct st_op f[4] = { op2(ST_OP_MATMUL, q, wq, xb), op2(ST_OP_MATMUL, att, wq, xb), op2(ST_OP_ADD, x, x, q),
			      op2(ST_OP_ADD, x, x, att) };
	ok(st_cpu_fuse_span(f, 4, 0) == 3, "a second part's add into the same tensor is not fused (span %d, want 3)",
	   st_cpu_fuse_span(f, 4, 0));
}

/* ---- whole models ---------------------------------------------------- */

static uint64_t g_fused_before;

/* Prefill N_PROMPT tokens, then N_STEPS - 1 forced single-token steps;
 * the last logits row of each eval into lg (N_STEPS x n_vocab). */
static int run(struct st_model *m, uint32_t n_threads, bool reference, uint32_t kv, bool fuse, float *lg)
{
	struct st_session_params p;
	struct st_session *s = NULL;
	const uint32_t nv = st_model_desc(m)->n_vocab;
	int32_t prompt[N_PROMPT] = { 1, 5, 9, 13, 17 };
	int rc;
	if (fuse)
		unsetenv("ST_CPU_NO_FUSE");
	else
		setenv("ST_CPU_NO_FUSE", "1", 1);
	st_session_params_default(&p);
	p.n_threads = n_threads;
	p.reference = reference;
	p.kv_type = kv;
	rc = st_session_create(m, &p, &s);
	unsetenv("ST_CPU_NO_FUSE");
	if (rc)
		return rc;
	for (int i = 0; i < N_STEPS && rc >= 0; i++) {
		int32_t tok = (int32_t)((i * 37 + 3) % (int)nv);
		rc = i == 0 ? st_session_eval(s, prompt, N_PROMPT, false) : st_session_eval(s, &tok, 1, false);
		if (rc >= 0)
			memcpy(lg + (size_t)i * nv, st_session_logits(s, -1), nv * sizeof(float));
	}
	st_session_destroy(s);
	return rc < 0 ? rc : 0;
}

static void model(uint32_t type, uint32_t kv)
{
	/* dim 256, ff 512, 4 heads of 64, 2 KV heads: big enough for the pool */
	struct st_mkmodel_params p;
	char path[] = "/tmp/strata_cpu_fuse_XXXXXX";
	struct st_model *m = NULL;
	int fd = mkstemp(path), rc = fd < 0 ? -1 : st_mkmodel_preset("custom", &p);
	if (fd >= 0)
		close(fd);
	if (!rc) {
		p.n_embd = 256, p.n_ff = 512, p.n_head = 4, p.n_head_kv = 2, p.type = type, p.seed = 11;
		rc = st_mkmodel_write(&p, path, NULL, NULL);
	}
	if (rc || st_model_open(path, &m)) {
		ok(0, "mkmodel custom %s: %s", st_type_name(type), st_last_error());
		unlink(path);
		return;
	}
	const char *kvn = kv == ST_KV_F16 ? "f16" : "f32";
	const uint32_t nv = st_model_desc(m)->n_vocab;
	const size_t n = (size_t)N_STEPS * nv;
	float *l0 = malloc(3 * n * sizeof(float)), *l = l0 + n, *lr = l + n;   /* unfused, fused, reference */
	g_fused_before = st_cpu_fuse_count();
	rc = run(m, 1, false, kv, false, l0);
	ok(rc == 0, "custom %s, %s KV: prefill %d + %d steps, ops one at a time", st_type_name(type), kvn, N_PROMPT,
	   N_STEPS - 1);
	int bad = 0;
	const uint64_t c0 = st_cpu_fuse_count();
	ok(c0 == g_fused_before, "no fused step ran with ST_CPU_NO_FUSE=1");
	for (uint32_t th = 1; th <= 3; th++) {
		memset(l, 0, n * 4);
		bad += run(m, th, false, kv, true, l) != 0;
		bad += memcmp(l, l0, n * 4) != 0;
	}
	/* 4 fused steps per layer and decode step */
	const uint64_t want = 3ull * 4 * st_model_desc(m)->n_layer * (N_STEPS - 1), got = st_cpu_fuse_count() - c0;
	ok(bad == 0 && got == want,
	   "custom %s, %s KV: fused decode (%llu fused steps, want %llu) logits bit-identical to unfused, 1, 2 and 3 threads",
	   st_type_name(type), kvn, (unsigned long long)got, (unsigned long long)want);
	g_fused_before = st_cpu_fuse_count();
	rc = run(m, 1, true, kv, true, lr);
	double worst = 0;
	for (int i = 0; i < N_STEPS; i++) {
		double e = tap_nmse(lr + (size_t)i * nv, l + (size_t)i * nv, nv);
		worst = e > worst ? e : worst;
	}
	ok(rc == 0 && worst < 2e-3, "custom %s, %s KV: every step vs the scalar reference forward pass: worst NMSE %.3g < 2e-3",
	   st_type_name(type), kvn, worst);
	st_model_close(m);
	unlink(path);
	free(l0);
}

int main(void)
{
	spans();
	model(ST_TYPE_F32, ST_KV_F32);
	model(ST_TYPE_F16, ST_KV_F16);
	model(ST_TYPE_Q8_0, ST_KV_F32);
	model(ST_TYPE_Q4_0, ST_KV_F16);
	model(ST_TYPE_Q4_K, ST_KV_F32);
	return tap_done();
}
