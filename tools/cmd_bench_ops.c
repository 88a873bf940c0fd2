/* cmd_bench_ops.c: `strata bench-ops` measures one device's kernels through
 * the backend interface: per op and shape, time per run (wall, and kernel
 * time where the backend reports per-op times), GB/s and GFLOP/s; then a
 * stage of N llama layers (17 ops each) decoding one token at a time: time
 * per token, kernel time, and the dispatch overhead (wall - kernels) that
 * recording the graph once and replaying it is meant to keep small; with
 * --head the output norm and head are added so that --layers n_layer gives
 * the time of a whole model's token.  Weights are synthetic (a quantized
 * random block pattern), so no model file is needed. */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend.h"
#include "cli.h"
#include "ops_ref.h"
#include "strata.h"
#include "types.h"
#include "util.h"

#define CMD "bench-ops"

struct shape {
	const char *name;
	int64_t dim, ff, n_head, n_kv, vocab;
};

static const struct shape shapes[] = {
	{ "tinyllama-1.1b", 2048, 5632, 32, 4, 32000 },
	{ "llama2-7b", 4096, 11008, 32, 32, 32000 },
	{ "stories260k", 64, 172, 8, 4, 512 },
};

struct bench {
	struct st_backend *be;
	int reps;
	FILE *json;
	bool first_json;
};

static uint64_t rng = 0x243F6A8885A308D3ull;
static float frand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (float)((rng >> 11) * (1.0 / 9007199254740992.0)) * 2.0f - 1.0f;
}

/* A tensor of `type` in a fresh buffer, filled by tiling 64 KiB of
 * quantized noise (values of the right kind, cheap to make). */
static int make(struct bench *b, struct st_tensor *t, struct st_buffer **bufs, int *nb, uint32_t type, int64_t ne0,
		int64_t ne1, float amp)
{
	uint64_t rb;
	if (st_type_row_size(type, (uint64_t)ne0, &rb))
		return st_error(-EINVAL, "bench-ops: %lld elements of %s", (long long)ne0, st_type_name(type));
	size_t size = (size_t)rb * (size_t)ne1;
	int rc = st_buffer_alloc(b->be, size, type == ST_TYPE_F32 ? 0 : ST_BUF_WEIGHTS, &bufs[*nb]);
	if (rc)
		return rc;
	*t = (struct st_tensor){ .buf = bufs[*nb], .offset = 0, .type = type, .ne0 = ne0, .ne1 = ne1, .nb1 = (size_t)rb };
	(*nb)++;
	enum { CHUNK = 1 << 16 };
	float f[CHUNK / 2];
	unsigned char *tile = malloc(CHUNK * 2);
	if (!tile)
		return -ENOMEM;
	const struct st_type_traits *tr = st_type_traits(type);
	int64_t nf = (CHUNK / 2) / tr->block_size * tr->block_size;
	for (int64_t i = 0; i < nf; i++)
		f[i] = frand() * amp;
	if (type == ST_TYPE_I32)
		memset(tile, 0, CHUNK);
	else
		tr->from_float(f, tile, nf);
	size_t tb = (size_t)(nf / tr->block_size) * tr->type_size;
	for (size_t off = 0; off < size && !rc; off += tb)
		rc = st_buffer_write(b->be, t->buf, off, tile, ST_MIN(tb, size - off));
	free(tile);
	return rc;
}

/* Run a graph reps times after one warm-up; wall seconds per run and the
 * summed per-op kernel seconds of the last run (negative: not reported). */
static double cpu_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* CPU seconds (all threads of the process, driver threads included) per
 * run of the last time_graph: on a shared machine the honest cost. */
static double last_cpu;

static int time_graph(struct bench *b, const struct st_op *ops, int n_ops, const struct st_graph_run *run,
		      double *wall, double *kernel, double *per_op)
{
	struct st_graph *g = NULL;
	double *sec = malloc((size_t)n_ops * sizeof(double)), ksum = 0;
	int rc = sec ? st_graph_prepare(b->be, ops, n_ops, &g) : -ENOMEM;
	if (rc) {
		free(sec);
		return rc;
	}
	/* 1. plain runs: wall and CPU time */
	rc = st_graph_run(b->be, g, run);
	double t0 = st_time_now(), c0 = cpu_now();
	for (int r = 0; r < b->reps && !rc; r++)
		rc = st_graph_run(b->be, g, run);
	*wall = (st_time_now() - t0) / b->reps;
	last_cpu = (cpu_now() - c0) / b->reps;
	/* 2. timed runs: per-op kernel time (backends that time on request,
	 * as Vulkan does, start with the run after the first request) */
	if (!rc)
		(void)st_graph_op_times(b->be, g, sec, n_ops);
	for (int r = 0; r < b->reps && !rc && ksum >= 0; r++) {
		rc = st_graph_run(b->be, g, run);
		if (!rc && st_graph_op_times(b->be, g, sec, n_ops) == n_ops) {
			for (int i = 0; i < n_ops; i++) {
				ksum += sec[i];
				if (per_op)
					per_op[i] += sec[i] / b->reps;
			}
		} else {
			ksum = -1;
		}
	}
	*kernel = ksum < 0 ? -1 : ksum / b->reps;
	free(sec);
	st_graph_free(b->be, g);
	return rc;
}

static void report(struct bench *b, const char *op, const char *shape, int64_t n_tokens, double wall, double kernel,
		   double bytes, double flops)
{
	double t = kernel > 0 ? kernel : wall;
	printf("  %-10s %-34s %4lld tok %9.3f ms", op, shape, (long long)n_tokens, wall * 1e3);
	if (kernel > 0)
		printf("  kernel %9.3f ms", kernel * 1e3);
	else
		printf("  %-19s", "");
	printf("  %7.2f GB/s  %8.2f GFLOP/s\n", bytes / t * 1e-9, flops / t * 1e-9);
	if (b->json) {
		fprintf(b->json, "%s\n  {\"op\": \"%s\", \"shape\": \"%s\", \"n_tokens\": %lld, \"wall_ms\": %.6f, "
				 "\"kernel_ms\": %.6f, \"gbps\": %.4f, \"gflops\": %.4f}",
			b->first_json ? "" : ",", op, shape, (long long)n_tokens, wall * 1e3, kernel > 0 ? kernel * 1e3 : -1,
			bytes / t * 1e-9, flops / t * 1e-9);
		b->first_json = false;
	}
}

static void free_bufs(struct bench *b, struct st_buffer **bufs, int *nb)
{
	for (int i = 0; i < *nb; i++)
		st_buffer_free(b->be, bufs[i]);
	*nb = 0;
}

static int bench_matmul(struct bench *b, uint32_t type, int64_t rows, int64_t k, int64_t n_tokens)
{
	struct st_buffer *bufs[4];
	int nb = 0, rc;
	struct st_op op = { .kind = ST_OP_MATMUL };
	double wall, kern;
	if ((rc = make(b, &op.src[0], bufs, &nb, type, k, rows, 1.0f)) || (rc = make(b, &op.src[1], bufs, &nb, ST_TYPE_F32, k, n_tokens, 1.0f)) ||
	    (rc = make(b, &op.dst, bufs, &nb, ST_TYPE_F32, rows, n_tokens, 0)))
		goto out;
	struct st_graph_run run = { .n_tokens = n_tokens, .pos0 = 0 };
	if ((rc = time_graph(b, &op, 1, &run, &wall, &kern, NULL)) == 0) {
		char s[64];
		snprintf(s, sizeof s, "%s [%lld x %lld]", st_type_name(type), (long long)rows, (long long)k);
		double wbytes = (double)op.src[0].nb1 * rows;
		report(b, "matmul", s, n_tokens, wall, kern, wbytes + 4.0 * (k + rows) * n_tokens,
		       2.0 * rows * k * n_tokens);
	}
out:
	free_bufs(b, bufs, &nb);
	return rc;
}

static int bench_simple(struct bench *b, enum st_op_kind kind, int64_t ne0, int64_t n_tokens)
{
	struct st_buffer *bufs[4];
	int nb = 0, rc;
	struct st_op op = { .kind = kind };
	double wall, kern;
	if ((rc = make(b, &op.src[0], bufs, &nb, ST_TYPE_F32, ne0, n_tokens, 1.0f)) ||
	    (rc = make(b, &op.dst, bufs, &nb, ST_TYPE_F32, ne0, n_tokens, 0)))
		goto out;
	if (kind == ST_OP_RMSNORM) {
		op.p.norm.eps = 1e-5f;
		rc = make(b, &op.src[1], bufs, &nb, ST_TYPE_F32, ne0, 1, 1.0f);
	} else if (kind != ST_OP_SOFTMAX) {
		rc = make(b, &op.src[1], bufs, &nb, ST_TYPE_F32, ne0, n_tokens, 1.0f);
	}
	if (rc)
		goto out;
	struct st_graph_run run = { .n_tokens = n_tokens, .pos0 = 0 };
	if ((rc = time_graph(b, &op, 1, &run, &wall, &kern, NULL)) == 0) {
		char s[64];
		snprintf(s, sizeof s, "[%lld]", (long long)ne0);
		int nin = kind == ST_OP_SOFTMAX ? 1 : 2;
		report(b, st_op_name(kind), s, n_tokens, wall, kern, 4.0 * ne0 * n_tokens * (nin + 1),
		       (kind == ST_OP_SWIGLU ? 6.0 : 3.0) * ne0 * n_tokens);
	}
out:
	free_bufs(b, bufs, &nb);
	return rc;
}

/* Upper bound of the dispatch cost of an n-op graph: the wall time of a
 * graph of n one-element ADDs (kernels that do nothing measurable), which
 * is robust where "wall minus timestamped kernel time" drowns in the noise
 * of a shared machine.  Sets *seconds to the time per run. */
static int dispatch_bound(struct bench *b, int n, double *seconds)
{
	struct st_buffer *bufs[3];
	int nb = 0, rc;
	struct st_op *ops = calloc((size_t)n, sizeof *ops), op = { .kind = ST_OP_ADD };
	double kern;
	if (!ops)
		return -ENOMEM;
	if (!(rc = make(b, &op.src[0], bufs, &nb, ST_TYPE_F32, 1, 1, 1.0f)) &&
	    !(rc = make(b, &op.src[1], bufs, &nb, ST_TYPE_F32, 1, 1, 1.0f)) &&
	    !(rc = make(b, &op.dst, bufs, &nb, ST_TYPE_F32, 1, 1, 0))) {
		for (int i = 0; i < n; i++)
			ops[i] = op;
		struct st_graph_run run = { .n_tokens = 1, .pos0 = 0 };
		rc = time_graph(b, ops, n, &run, seconds, &kern, NULL);
	}
	free_bufs(b, bufs, &nb);
	free(ops);
	return rc;
}

static int bench_attn(struct bench *b, const struct shape *sh, uint32_t kv_type, int64_t n_tokens, int64_t pos0)
{
	struct st_buffer *bufs[4];
	int nb = 0, rc;
	const int64_t hd = sh->dim / sh->n_head, ctx = pos0 + n_tokens;
	struct st_op op = { .kind = ST_OP_ATTN,
			    .p.attn = { (uint32_t)sh->n_head, (uint32_t)sh->n_kv, (uint32_t)hd, 1.0f / sqrtf((float)hd) } };
	double wall, kern;
	if ((rc = make(b, &op.src[0], bufs, &nb, ST_TYPE_F32, sh->dim, n_tokens, 1.0f)) ||
	    (rc = make(b, &op.src[1], bufs, &nb, kv_type, sh->n_kv * hd, ctx, 1.0f)) ||
	    (rc = make(b, &op.src[2], bufs, &nb, kv_type, sh->n_kv * hd, ctx, 1.0f)) ||
	    (rc = make(b, &op.dst, bufs, &nb, ST_TYPE_F32, sh->dim, n_tokens, 0)))
		goto out;
	struct st_graph_run run = { .n_tokens = n_tokens, .pos0 = pos0 };
	if ((rc = time_graph(b, &op, 1, &run, &wall, &kern, NULL)) == 0) {
		char s[64];
		snprintf(s, sizeof s, "%s kv, %lld heads/%lld kv, ctx %lld", st_type_name(kv_type), (long long)sh->n_head,
			 (long long)sh->n_kv, (long long)ctx);
		double kvb = 2.0 * (double)op.src[1].nb1 * ctx;
		report(b, "attn", s, n_tokens, wall, kern, kvb, 4.0 * sh->n_head * hd * (double)ctx * n_tokens);
	}
out:
	free_bufs(b, bufs, &nb);
	return rc;
}

/* n_layer llama layers as stage.c builds them (17 ops each), optionally
 * followed by the output norm + head; decode of one token at pos0. */
static int bench_stage(struct bench *b, const struct shape *sh, uint32_t wtype, uint32_t kv_type, int n_layer,
		       bool head, int64_t pos0, double *tok_s)
{
	const int64_t D = sh->dim, FF = sh->ff, NH = sh->n_head, NKV = sh->n_kv, HD = D / NH, CTX = pos0 + 1;
	int max_bufs = 16 + 11 * n_layer, nb = 0, n = 0, rc = 0;
	struct st_buffer **bufs = calloc((size_t)max_bufs, sizeof(*bufs));
	struct st_op *ops = calloc((size_t)(17 * n_layer + 2), sizeof(*ops));
	struct st_tensor x, xb, q, k, v, att, hb, hb2, logits;
	double wall, kern;
	if (!bufs || !ops) {
		rc = -ENOMEM;
		goto out;
	}
	if ((rc = make(b, &x, bufs, &nb, ST_TYPE_F32, D, 1, 1.0f)) || (rc = make(b, &xb, bufs, &nb, ST_TYPE_F32, D, 1, 0)) ||
	    (rc = make(b, &q, bufs, &nb, ST_TYPE_F32, D, 1, 0)) || (rc = make(b, &k, bufs, &nb, ST_TYPE_F32, NKV * HD, 1, 0)) ||
	    (rc = make(b, &v, bufs, &nb, ST_TYPE_F32, NKV * HD, 1, 0)) || (rc = make(b, &att, bufs, &nb, ST_TYPE_F32, D, 1, 0)) ||
	    (rc = make(b, &hb, bufs, &nb, ST_TYPE_F32, FF, 1, 0)) || (rc = make(b, &hb2, bufs, &nb, ST_TYPE_F32, FF, 1, 0)))
		goto out;
	for (int l = 0; l < n_layer && !rc; l++) {
		struct st_tensor an, fn, wq, wk, wv, wo, w1, w2, w3, kc, vc;
		if ((rc = make(b, &an, bufs, &nb, ST_TYPE_F32, D, 1, 1.0f)) || (rc = make(b, &fn, bufs, &nb, ST_TYPE_F32, D, 1, 1.0f)) ||
		    (rc = make(b, &wq, bufs, &nb, wtype, D, D, 0.05f)) || (rc = make(b, &wk, bufs, &nb, wtype, D, NKV * HD, 0.05f)) ||
		    (rc = make(b, &wv, bufs, &nb, wtype, D, NKV * HD, 0.05f)) || (rc = make(b, &wo, bufs, &nb, wtype, D, D, 0.05f)) ||
		    (rc = make(b, &w1, bufs, &nb, wtype, D, FF, 0.05f)) || (rc = make(b, &w3, bufs, &nb, wtype, D, FF, 0.05f)) ||
		    (rc = make(b, &w2, bufs, &nb, wtype, FF, D, 0.05f)) || (rc = make(b, &kc, bufs, &nb, kv_type, NKV * HD, CTX, 1.0f)) ||
		    (rc = make(b, &vc, bufs, &nb, kv_type, NKV * HD, CTX, 1.0f)))
			break;
		ops[n++] = (struct st_op){ .kind = ST_OP_RMSNORM, .dst = xb, .src = { x, an }, .p.norm.eps = 1e-5f };
		ops[n++] = (struct st_op){ .kind = ST_OP_MATMUL, .dst = q, .src = { wq, xb } };
		ops[n++] = (struct st_op){ .kind = ST_OP_MATMUL, .dst = k, .src = { wk, xb } };
		ops[n++] = (struct st_op){ .kind = ST_OP_MATMUL, .dst = v, .src = { wv, xb } };
		ops[n++] = (struct st_op){ .kind = ST_OP_ROPE, .dst = q, .src = { q },
					   .p.rope = { (uint32_t)NH, (uint32_t)HD, (uint32_t)HD, 10000.0f } };
		ops[n++] = (struct st_op){ .kind = ST_OP_ROPE, .dst = k, .src = { k },
					   .p.rope = { (uint32_t)NKV, (uint32_t)HD, (uint32_t)HD, 10000.0f } };
		ops[n++] = (struct st_op){ .kind = ST_OP_KV_STORE, .dst = kc, .src = { k } };
		ops[n++] = (struct st_op){ .kind = ST_OP_KV_STORE, .dst = vc, .src = { v } };
		ops[n++] = (struct st_op){ .kind = ST_OP_ATTN, .dst = att, .src = { q, kc, vc },
					   .p.attn = { (uint32_t)NH, (uint32_t)NKV, (uint32_t)HD, 1.0f / sqrtf((float)HD) } };
		ops[n++] = (struct st_op){ .kind = ST_OP_MATMUL, .dst = xb, .src = { wo, att } };
		ops[n++] = (struct st_op){ .kind = ST_OP_ADD, .dst = x, .src = { x, xb } };
		ops[n++] = (struct st_op){ .kind = ST_OP_RMSNORM, .dst = xb, .src = { x, fn }, .p.norm.eps = 1e-5f };
		ops[n++] = (struct st_op){ .kind = ST_OP_MATMUL, .dst = hb, .src = { w1, xb } };
		ops[n++] = (struct st_op){ .kind = ST_OP_MATMUL, .dst = hb2, .src = { w3, xb } };
		ops[n++] = (struct st_op){ .kind = ST_OP_SWIGLU, .dst = hb, .src = { hb, hb2 } };
		ops[n++] = (struct st_op){ .kind = ST_OP_MATMUL, .dst = xb, .src = { w2, hb } };
		ops[n++] = (struct st_op){ .kind = ST_OP_ADD, .dst = x, .src = { x, xb } };
	}
	if (!rc && head) {
		struct st_tensor on, wout;
		if ((rc = make(b, &on, bufs, &nb, ST_TYPE_F32, D, 1, 1.0f)) || (rc = make(b, &wout, bufs, &nb, wtype, D, sh->vocab, 0.05f)) ||
		    (rc = make(b, &logits, bufs, &nb, ST_TYPE_F32, sh->vocab, 1, 0)))
			goto out;
		ops[n++] = (struct st_op){ .kind = ST_OP_RMSNORM, .dst = xb, .src = { x, on }, .p.norm.eps = 1e-5f };
		ops[n++] = (struct st_op){ .kind = ST_OP_MATMUL, .dst = logits, .src = { wout, xb } };
	}
	if (rc)
		goto out;
	struct st_graph_run run = { .n_tokens = 1, .pos0 = pos0 };
	double *per_op = calloc((size_t)n, sizeof(double));
	if (!per_op) {
		rc = -ENOMEM;
		goto out;
	}
	rc = time_graph(b, ops, n, &run, &wall, &kern, per_op);
	if (rc == 0 && kern > 0) {   /* kernel time by op kind */
		double by_kind[ST_OP_COUNT] = { 0 };
		for (int i = 0; i < n; i++)
			by_kind[ops[i].kind] += per_op[i];
		printf("  stage kernels by op:");
		for (int kind = 0; kind < ST_OP_COUNT; kind++)
			if (by_kind[kind] > 0)
				printf(" %s %.2f ms (%.0f%%)", st_op_name((enum st_op_kind)kind), by_kind[kind] * 1e3,
				       by_kind[kind] / kern * 100);
		printf("\n");
	}
	free(per_op);
	if (rc == 0) {
		char s[96];
		snprintf(s, sizeof s, "%s %d layers%s, %s, pos %lld", sh->name, n_layer, head ? " + head" : "",
			 st_type_name(wtype), (long long)pos0);
		printf("  stage      %-40s %9.3f ms/token (%.2f tokens/s), process CPU time %.3f ms/token\n", s,
		       wall * 1e3, 1.0 / wall, last_cpu * 1e3);
		if (kern > 0)
			printf("             %d ops: kernels %.3f ms (timed runs), dispatch overhead %.3f ms = %.2f%% of the token\n",
			       n, kern * 1e3, (wall - kern) * 1e3, (wall - kern) / wall * 100);
		double disp;
		if (dispatch_bound(b, n, &disp) == 0)
			printf("             dispatch bound: %d trivial ops take %.3f ms (%.1f us each) = %.2f%% of the token\n",
			       n, disp * 1e3, disp / n * 1e6, disp / wall * 100);
		if (b->json) {
			fprintf(b->json, "%s\n  {\"op\": \"stage\", \"shape\": \"%s\", \"n_ops\": %d, \"wall_ms\": %.6f, "
					 "\"kernel_ms\": %.6f, \"cpu_ms\": %.6f, \"overhead_pct\": %.4f, \"tokens_per_s\": %.4f}",
				b->first_json ? "" : ",", s, n, wall * 1e3, kern > 0 ? kern * 1e3 : -1, last_cpu * 1e3,
				kern > 0 ? (wall - kern) / wall * 100 : -1, 1.0 / wall);
			b->first_json = false;
		}
		*tok_s = 1.0 / wall;
	}
out:
	if (bufs)
		free_bufs(b, bufs, &nb);
	free(bufs);
	free(ops);
	return rc;
}

/* "vulkan0" -> backend "vulkan", index 0; "cpu" -> cpu 0. */
static int parse_device(const char *s, const struct st_backend_ops **ops, int *index)
{
	char name[32];
	size_t n = strlen(s), i = n;
	while (i > 0 && s[i - 1] >= '0' && s[i - 1] <= '9')
		i--;
	if (i == 0 || i >= sizeof name)
		return -EINVAL;
	memcpy(name, s, i);
	name[i] = 0;
	*index = i < n ? atoi(s + i) : 0;
	*ops = st_backend_find(name);
	return *ops ? 0 : -ENODEV;
}

int cmd_bench_ops(int argc, char **argv)
{
	const char *device = "cpu", *shape_name = "tinyllama-1.1b", *json_path = NULL, *type_name = "q4_0", *v;
	int64_t reps = 5, layers = 10, pos = 256;
	bool head = false, stage_only = false;
	struct bench b = { .first_json = true };
	int r;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			printf("usage: strata bench-ops [--device D] [--shape S] [--type T] [--reps N] [--layers L] [--head]\n"
			       "                        [--pos P] [--stage-only] [--json FILE]\n"
			       "Per-op time, GB/s and GFLOP/s of device D (cpu, vulkan0, opencl0, ...; see 'strata devices')\n"
			       "at the shapes of S (tinyllama-1.1b, llama2-7b, stories260k), then a stage of L layers\n"
			       "(default 10) of weight type T (default q4_0) decoding one token at position P (default 256):\n"
			       "time per token, kernel time and dispatch overhead.  --head adds the output norm and head.\n");
			return 0;
		}
		if ((r = cli_take(CMD, argc, argv, &i, "--device", &device)) < 0)
			return 2;
		if (r)
			continue;
		if ((r = cli_take(CMD, argc, argv, &i, "--shape", &shape_name)) < 0)
			return 2;
		if (r)
			continue;
		if ((r = cli_take(CMD, argc, argv, &i, "--type", &type_name)) < 0)
			return 2;
		if (r)
			continue;
		if ((r = cli_take(CMD, argc, argv, &i, "--json", &json_path)) < 0)
			return 2;
		if (r)
			continue;
		if ((r = cli_take(CMD, argc, argv, &i, "--reps", &v)) < 0)
			return 2;
		if (r) {
			if (!cli_parse_i64(v, 1, 100000, &reps))
				return cli_usage_error(CMD, "--reps '%s' is not in 1..100000", v);
			continue;
		}
		if ((r = cli_take(CMD, argc, argv, &i, "--layers", &v)) < 0)
			return 2;
		if (r) {
			if (!cli_parse_i64(v, 0, 1000, &layers))
				return cli_usage_error(CMD, "--layers '%s' is not in 0..1000", v);
			continue;
		}
		if ((r = cli_take(CMD, argc, argv, &i, "--pos", &v)) < 0)
			return 2;
		if (r) {
			if (!cli_parse_i64(v, 0, 1 << 20, &pos))
				return cli_usage_error(CMD, "--pos '%s' is not in 0..1048576", v);
			continue;
		}
		if (!strcmp(argv[i], "--head")) {
			head = true;
			continue;
		}
		if (!strcmp(argv[i], "--stage-only")) {
			stage_only = true;
			continue;
		}
		return cli_usage_error(CMD, "unknown option '%s'", argv[i]);
	}
	const struct shape *sh = NULL;
	for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
		if (!strcmp(shapes[i].name, shape_name))
			sh = &shapes[i];
	if (!sh)
		return cli_usage_error(CMD, "unknown --shape '%s' (tinyllama-1.1b, llama2-7b, stories260k)", shape_name);
	int wtype = st_type_from_name(type_name);
	if (wtype < 0 || !(wtype == ST_TYPE_F32 || wtype == ST_TYPE_F16 || wtype == ST_TYPE_BF16 || wtype == ST_TYPE_Q8_0 ||
			   wtype == ST_TYPE_Q4_0 || wtype == ST_TYPE_Q4_K || wtype == ST_TYPE_Q5_K || wtype == ST_TYPE_Q6_K ||
			   wtype == ST_TYPE_Q4_1 || wtype == ST_TYPE_Q5_0 || wtype == ST_TYPE_Q5_1))
		return cli_usage_error(CMD, "unknown --type '%s' (f32, f16, bf16, q8_0, q4_0, q4_1, q5_0, q5_1, q4_K, q5_K, "
				       "q6_K)", type_name);
	const struct st_backend_ops *ops;
	int index;
	if (parse_device(device, &ops, &index))
		return cli_usage_error(CMD, "unknown --device '%s' (see 'strata devices')", device);
	if (st_backend_open(ops, index, &b.be))
		return cli_fail(CMD, "cannot open %s: %s", device, st_last_error());
	b.reps = (int)reps;
	if (json_path && !(b.json = fopen(json_path, "w"))) {
		st_backend_close(b.be);
		return cli_fail(CMD, "cannot write %s: %s", json_path, strerror(errno));
	}
	if (b.json)
		fprintf(b.json, "{\"device\": \"%s\", \"name\": \"%s\", \"shape\": \"%s\", \"reps\": %d, \"results\": [", device,
			b.be->info.name, sh->name, b.reps);
	printf("strata bench-ops: %s (%s), shape %s, %d reps\n", device, b.be->info.name, sh->name, b.reps);
	int rc = 0;
	double tok_s = 0;
	if (!stage_only) {
		const int64_t HD = sh->dim / sh->n_head;
		const uint32_t wt[] = { ST_TYPE_Q4_0, ST_TYPE_Q8_0, ST_TYPE_F16, ST_TYPE_BF16, ST_TYPE_F32 };
		for (size_t t = 0; t < 5 && !rc; t++)
			rc = bench_matmul(&b, wt[t], sh->dim, sh->dim, 1);
		const int64_t mm[][2] = { { sh->ff, sh->dim }, { sh->dim, sh->ff }, { sh->n_kv * HD, sh->dim }, { sh->vocab, sh->dim } };
		for (size_t s = 0; s < 4 && !rc; s++)
			rc = bench_matmul(&b, (uint32_t)wtype, mm[s][0], mm[s][1], 1);
		if (!rc)
			rc = bench_matmul(&b, (uint32_t)wtype, sh->dim, sh->dim, 32);
		if (!rc)
			rc = bench_attn(&b, sh, ST_TYPE_F16, 1, pos);
		if (!rc)
			rc = bench_attn(&b, sh, ST_TYPE_F32, 1, pos);
		if (!rc)
			rc = bench_attn(&b, sh, ST_TYPE_F16, 32, 0);
		if (!rc)
			rc = bench_simple(&b, ST_OP_RMSNORM, sh->dim, 1);
		if (!rc)
			rc = bench_simple(&b, ST_OP_ADD, sh->dim, 1);
		if (!rc)
			rc = bench_simple(&b, ST_OP_SWIGLU, sh->ff, 1);
		if (!rc)
			rc = bench_simple(&b, ST_OP_SOFTMAX, sh->vocab, 1);
	}
	if (!rc && layers > 0)
		rc = bench_stage(&b, sh, (uint32_t)wtype, ST_TYPE_F16, (int)layers, head, pos, &tok_s);
	if (b.json) {
		fprintf(b.json, "\n]}\n");
		fclose(b.json);
	}
	st_backend_close(b.be);
	if (rc)
		return cli_fail(CMD, "%s", st_last_error());
	return 0;
}
