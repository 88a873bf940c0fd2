/* matmul.c: the CPU matmul driver (activation quantization, row split over
 * threads, token tiles) and attention parallel over heads. */
#include "matmul.h"

#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "attn_f16.h"
#include "gemm.h"
#include "kquant.h"
#include "quant_dot.h"
#include "util.h"

/* Tokens per tile: the tile's activations stay in L2 while each row of
 * weights (a few KiB) is reused from L1 across all of them. */
#define TOK_TILE_QUANT 32
#define TOK_TILE_FLOAT 16
/* Below this many multiply-adds a matmul runs on the calling thread: waking
 * the pool costs more than it saves (the result is the same either way). */
#define MT_MIN_WORK (1 << 16)
/* Rows are split between threads in multiples of this. */
#define ROW_ALIGN 4

struct st_matmul_ctx {
	struct st_threadpool *pool;
	enum st_isa isa;
	void *scratch;
	size_t scratch_size;
	float *att;          /* per-thread attention scores */
	size_t att_per_thread;
};

int st_matmul_ctx_create(int n_threads, enum st_isa isa, struct st_matmul_ctx **out)
{
	*out = NULL;
	if (isa == ST_ISA_AUTO)
		isa = st_cpu_isa_best();
	else if (isa < 0 || isa >= ST_ISA_COUNT || !st_cpu_isa_supported(isa))
		return st_error(-ENOTSUP, "matmul: kernel path '%s' is not supported on this CPU/build",
				st_cpu_isa_name(isa));
	struct st_matmul_ctx *ctx = calloc(1, sizeof(*ctx));
	if (!ctx)
		return st_error(-ENOMEM, "matmul: out of memory");
	ctx->isa = isa;
	int rc = st_threadpool_create(n_threads, &ctx->pool);
	if (rc) {
		free(ctx);
		return rc;
	}
	*out = ctx;
	return 0;
}

void st_matmul_ctx_destroy(struct st_matmul_ctx *ctx)
{
	if (!ctx)
		return;
	st_threadpool_destroy(ctx->pool);
	free(ctx->scratch);
	free(ctx->att);
	free(ctx);
}

struct st_threadpool *st_matmul_ctx_pool(struct st_matmul_ctx *ctx) { return ctx->pool; }
enum st_isa st_matmul_ctx_isa(const struct st_matmul_ctx *ctx) { return ctx->isa; }

void *st_matmul_ctx_scratch(struct st_matmul_ctx *ctx, size_t need)
{
	if (need > ctx->scratch_size) {
		void *s = realloc(ctx->scratch, need);
		if (!s)
			return NULL;
		ctx->scratch = s;
		ctx->scratch_size = need;
	}
	return ctx->scratch;
}

struct mm_task {
	st_mm_fn fn;
	st_q8_quantize_fn quantize;
	const uint8_t *w;
	size_t w_stride;
	int64_t rows, cols, n_tokens, tok_tile;
	struct st_mm_act act;
	struct st_q8_act q8;
	struct st_tp_chunks chunks;  /* chunks of chunk_rows rows (threadpool.h) */
	int64_t chunk_rows;
	struct st_q8k_act q8k;   /* K-quant weights */
	struct st_gemm_act ga;   /* packed for the prompt GEMM (gemm.h), when m.act.g */
	const float *x;
	size_t x_stride;
	float *y;
	size_t y_stride;
};

static void quantize_task(void *p, int ith, int nth)
{
	struct mm_task *m = p;
	int64_t t0, t1;
	if (m->act.g) {   /* whole groups per thread: quantize, then pack */
		int64_t g0, g1;
		st_threadpool_split(m->ga.n_groups, 1, ith, nth, &g0, &g1);
		for (int64_t g = g0; g < g1; g++) {
			for (int64_t t = g * ST_GEMM_TG; t < ST_MIN(m->n_tokens, (g + 1) * ST_GEMM_TG); t++) {
				if (m->act.qk)
					st_q8k_act_quantize(&m->q8k, t, m->x + (size_t)t * m->x_stride);
				else
					m->quantize(&m->q8, t, m->x + (size_t)t * m->x_stride);
			}
			if (m->act.qk)
				st_gemm_act_pack_k(&m->ga, &m->q8k, g);
			else
				st_gemm_act_pack(&m->ga, &m->q8, g);
		}
		return;
	}
	st_threadpool_split(m->n_tokens, 1, ith, nth, &t0, &t1);
	for (int64_t t = t0; t < t1; t++) {
		if (m->act.qk)
			st_q8k_act_quantize(&m->q8k, t, m->x + (size_t)t * m->x_stride);
		else
			m->quantize(&m->q8, t, m->x + (size_t)t * m->x_stride);
	}
}

/* Rows are handed out in chunks (st_tp_chunks: each thread's own share
 * first, then the others'), so a thread the OS preempts does not hold the
 * others up (on a busy machine a static split waits for the slowest thread
 * at every matmul).  Which thread computes a row does not change its bits:
 * the kernels' per-output arithmetic does not depend on the grouping. */
static void mm_task_run(void *p, int ith, int nth)
{
	struct mm_task *m = p;
	(void)nth;
	for (int64_t c; (c = st_tp_chunks_next(&m->chunks, ith)) >= 0;) {
		const int64_t r0 = c * m->chunk_rows;
		const int64_t r1 = ST_MIN(m->rows, r0 + m->chunk_rows);
		for (int64_t t = 0; t < m->n_tokens; t += m->tok_tile) {
			int64_t nt = ST_MIN(m->tok_tile, m->n_tokens - t);
			m->fn(m->w + (size_t)r0 * m->w_stride, m->w_stride, m->cols, r1 - r0, &m->act, t, nt,
			      m->y + (size_t)t * m->y_stride + (size_t)r0, m->y_stride);
		}
	}
}

int st_matmul(struct st_matmul_ctx *ctx, uint32_t type, const void *w, size_t w_stride,
	      int64_t rows, int64_t cols, const float *x, size_t x_stride, int64_t n_tokens,
	      float *y, size_t y_stride)
{
	if (!st_mm_type_supported(type))
		return st_error(-ENOTSUP, "matmul: weight type %s has no CPU kernel", st_type_name(type));
	if (rows < 0 || cols <= 0 || n_tokens < 0 || x_stride < (size_t)cols || y_stride < (size_t)rows)
		return st_error(-EINVAL, "matmul: bad shape rows=%lld cols=%lld n_tokens=%lld x_stride=%zu y_stride=%zu",
				(long long)rows, (long long)cols, (long long)n_tokens, x_stride, y_stride);
	const bool kq = st_kq_type(type);
	const bool quant = st_mm_type_is_quant(type) || kq;
	if (quant && cols % (kq ? ST_QK_K : 32))
		return st_error(-EINVAL, "matmul: %s weights need cols %% %d == 0, got %lld", st_type_name(type),
				kq ? ST_QK_K : 32, (long long)cols);
	if (rows == 0 || n_tokens == 0)
		return 0;
	struct mm_task m = {
		.fn = st_mm_kernel(ctx->isa, type),
		.quantize = st_q8_quantizer(ctx->isa),
		.w = w, .w_stride = w_stride, .rows = rows, .cols = cols, .n_tokens = n_tokens,
		.tok_tile = quant ? TOK_TILE_QUANT : TOK_TILE_FLOAT,
		.x = x, .x_stride = x_stride, .y = y, .y_stride = y_stride,
	};
	if (!m.fn)
		m.fn = st_mm_kernel(ST_ISA_SCALAR, type);
	m.act.f = x;
	m.act.f_stride = x_stride;
	/* prompts: the register-blocked GEMM where the path has one */
	st_mm_fn gemm = quant && n_tokens >= ST_GEMM_MIN_TOKENS ? st_gemm_kernel(ctx->isa, type) : NULL;
	if (quant) {
		size_t need, gneed = 0;
		int rc = kq ? st_q8k_act_bytes(cols, n_tokens, &need) : st_q8_act_bytes(cols, n_tokens, &need);
		if (!rc && gemm && !(rc = st_gemm_act_bytes(cols, n_tokens, kq ? ST_QK_K : 32, &gneed)) &&
		    st_add_overflow_size(need, gneed, &need))
			rc = -EOVERFLOW;
		if (rc)
			return st_error(rc, "matmul: activation scratch for %lld x %lld overflows",
					(long long)cols, (long long)n_tokens);
		if (need > ctx->scratch_size) {
			void *s = realloc(ctx->scratch, need);
			if (!s)
				return st_error(-ENOMEM, "matmul: out of memory for %zu bytes of scratch", need);
			ctx->scratch = s;
			ctx->scratch_size = need;
		}
		if (kq) {
			st_q8k_act_init(&m.q8k, ctx->scratch, cols, n_tokens);
			m.act.qk = &m.q8k;
		} else {
			st_q8_act_init(&m.q8, ctx->scratch, cols, n_tokens);
		}
		if (gemm) {
			st_gemm_act_init(&m.ga, (uint8_t *)ctx->scratch + (need - gneed), cols, n_tokens, kq ? ST_QK_K : 32);
			m.act.g = &m.ga;
			m.fn = gemm;
			m.tok_tile = st_gemm_tok_tile(cols);
		}
		if (n_tokens > 1)
			st_threadpool_run(ctx->pool, quantize_task, &m);
		else
			quantize_task(&m, 0, 1);
		m.act.q = &m.q8;
	}
	/* about 16 chunks per thread, a multiple of ROW_ALIGN rows each */
	const int64_t nth = st_threadpool_n_threads(ctx->pool);
	m.chunk_rows = (rows + nth * 16 - 1) / (nth * 16);
	m.chunk_rows = (m.chunk_rows + ROW_ALIGN - 1) / ROW_ALIGN * ROW_ALIGN;
	st_tp_chunks_init(&m.chunks, (rows + m.chunk_rows - 1) / m.chunk_rows, (int)nth);
	if ((double)rows * (double)cols * (double)n_tokens < MT_MIN_WORK)
		mm_task_run(&m, 0, 1);
	else
		st_threadpool_run_dynamic(ctx->pool, mm_task_run, &m);
	return 0;
}

/* ---- attention ------------------------------------------------------ */

struct att_task {
	const float *q;
	const void *k, *v;       /* f32 or (f16) uint16_t rows */
	bool f16;
	size_t q_stride, kv_stride, out_stride;
	int64_t n_tokens, pos0;
	int n_head, n_head_kv, head_dim;
	float scale;
	float *out, *scores;
	size_t per_thread;
	st_vec_dots_fn dots;
	st_vec_wsum_fn wsum;
	st_vec_dots_f16_fn dots16;
	st_vec_wsum_f16_fn wsum16;
	struct st_tp_chunks heads;
};

static void att_task_run(void *p, int ith, int nth)
{
	struct att_task *a = p;
	float *sc = a->scores + (size_t)ith * a->per_thread;
	const int group = a->n_head / a->n_head_kv;
	(void)nth;
	/* heads handed out one at a time (see mm_task_run) */
	for (int64_t h; (h = st_tp_chunks_next(&a->heads, ith)) >= 0;) {
		const int64_t kvh = h / group;
		for (int64_t t = 0; t < a->n_tokens; t++) {
			const float *qh = a->q + (size_t)t * a->q_stride + (size_t)h * a->head_dim;
			const int64_t n_ctx = a->pos0 + t + 1;
			const size_t kvo = (size_t)kvh * a->head_dim;
			if (a->f16)
				a->dots16(qh, (const uint16_t *)a->k + kvo, a->kv_stride, (int)n_ctx, a->head_dim,
					  a->scale, sc);
			else
				a->dots(qh, (const float *)a->k + kvo, a->kv_stride, (int)n_ctx, a->head_dim, a->scale,
					sc);
			float mx = -INFINITY;
			for (int64_t j = 0; j < n_ctx; j++)
				mx = sc[j] > mx ? sc[j] : mx;
			float sum = 0.0f;
			for (int64_t j = 0; j < n_ctx; j++) {
				sc[j] = expf(sc[j] - mx);
				sum += sc[j];
			}
			const float inv = 1.0f / sum;
			for (int64_t j = 0; j < n_ctx; j++)
				sc[j] *= inv;
			float *o = a->out + (size_t)t * a->out_stride + (size_t)h * a->head_dim;
			if (a->f16)
				a->wsum16(sc, (const uint16_t *)a->v + kvo, a->kv_stride, (int)n_ctx, a->head_dim, o);
			else
				a->wsum(sc, (const float *)a->v + kvo, a->kv_stride, (int)n_ctx, a->head_dim, o);
		}
	}
}

int st_attention(struct st_matmul_ctx *ctx, const float *q, size_t q_stride, int64_t n_tokens,
		 int64_t pos0, const float *k, const float *v, size_t kv_stride,
		 int n_head, int n_head_kv, int head_dim, float scale, float *out, size_t out_stride)
{
	return st_attention_kv(ctx, ST_TYPE_F32, q, q_stride, n_tokens, pos0, k, v, kv_stride, n_head, n_head_kv,
			       head_dim, scale, out, out_stride);
}

int st_attention_kv(struct st_matmul_ctx *ctx, uint32_t kv_type, const float *q, size_t q_stride,
		    int64_t n_tokens, int64_t pos0, const void *k, const void *v, size_t kv_stride,
		    int n_head, int n_head_kv, int head_dim, float scale, float *out, size_t out_stride)
{
	if (kv_type != ST_TYPE_F32 && kv_type != ST_TYPE_F16)
		return st_error(-ENOTSUP, "attention: KV cache type %s has no CPU kernel (f32 and f16 do)",
				st_type_name(kv_type));
	if (n_head <= 0 || n_head_kv <= 0 || head_dim <= 0 || n_head % n_head_kv || n_tokens < 0 || pos0 < 0 ||
	    pos0 > INT32_MAX - n_tokens)
		return st_error(-EINVAL, "attention: bad shape n_head=%d n_head_kv=%d head_dim=%d n_tokens=%lld pos0=%lld",
				n_head, n_head_kv, head_dim, (long long)n_tokens, (long long)pos0);
	const int nth = st_threadpool_n_threads(ctx->pool);
	size_t per = (size_t)(pos0 + n_tokens);
	size_t need;
	if (st_mul_overflow_size(per, (size_t)nth, &need))
		return st_error(-EOVERFLOW, "attention: score buffer overflows");
	if (need > ctx->att_per_thread * (size_t)nth || per > ctx->att_per_thread) {
		float *s = realloc(ctx->att, need * sizeof(float));
		if (!s)
			return st_error(-ENOMEM, "attention: out of memory for %zu scores", need);
		ctx->att = s;
		ctx->att_per_thread = per;
	}
	struct att_task a = {
		.q = q, .k = k, .v = v, .q_stride = q_stride, .kv_stride = kv_stride, .out_stride = out_stride,
		.n_tokens = n_tokens, .pos0 = pos0, .n_head = n_head, .n_head_kv = n_head_kv,
		.head_dim = head_dim, .scale = scale, .out = out, .scores = ctx->att,
		.per_thread = ctx->att_per_thread, .f16 = kv_type == ST_TYPE_F16,
	};
	st_vec_ops_get(ctx->isa, &a.dots, &a.wsum);
	st_vec_ops_f16_get(ctx->isa, &a.dots16, &a.wsum16);
	st_tp_chunks_init(&a.heads, n_head, nth);
	if ((double)n_head * (double)head_dim * (double)n_tokens * (double)(pos0 + n_tokens) < MT_MIN_WORK)
		att_task_run(&a, 0, 1);
	else
		st_threadpool_run_dynamic(ctx->pool, att_task_run, &a);
	return 0;
}
