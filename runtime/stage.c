/* stage.c: the stage executor: places a layer range's weights in a
 * backend's memory, allocates its KV cache and activations, builds the op
 * graph of its layers once, and runs it (see stage.h). */
#include "stage.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "types.h"
#include "util.h"

#define ALIGN 256
#define HEAD_ROWS 32
/* O_DIRECT's block: a CPU weight buffer filled by a loader keeps each
 * tensor at its file offset's phase modulo this (in a page-aligned
 * buffer), so direct reads land in place instead of going through staging. */
#define LOAD_PHASE 4096u

/* A background weight load (strata.h st_weight_load_async_fn). */
struct st_weight_ready {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	pthread_t thread;
	uint64_t mark;                   /* every span byte below this file offset is in */
	atomic_bool all_in;              /* the load finished and succeeded */
	bool done, cancel;
	bool advisory;                   /* read-ahead of the mapped file: nothing waits */
	int rc;
	char msg[512];                   /* the loader's error */
	st_weight_load_async_fn fn;
	void *user;
	struct st_weight_span *ws;
	int n;
};

struct st_stage {
	const struct st_model *m;
	struct st_stage_params p;
	struct st_backend *be;
	/* weights: the wrapped file mapping, or a buffer the spans are copied to */
	struct st_buffer *wbuf;
	bool wrapped;
	struct st_tensor_span *spans;
	uint64_t *span_off;              /* offset of each span in wbuf */
	int n_spans;
	/* loading in the background: what each part needs in (file offsets) */
	struct st_weight_ready *ld;
	uint64_t *layer_need, embed_need, head_need;
	uint64_t weight_bytes, kv_bytes;
	/* activations and cache */
	struct st_buffer *act, *kv;
	struct st_tensor x, xb, q, k, v, att, hb, hb2, ids, head_in, logits;
	struct st_tensor *kc, *vc;       /* per layer of the stage */
	/* graphs */
	struct st_graph *g_layers, *g_embed, *g_head;
	int n_layer_ops;
	double *op_times;
};

static struct st_tensor mk(struct st_buffer *b, uint64_t off, uint32_t type, int64_t ne0, int64_t ne1)
{
	uint64_t rb = 0;
	st_type_row_size(type, (uint64_t)ne0, &rb);
	return (struct st_tensor){ .buf = b, .offset = (size_t)off, .type = type, .ne0 = ne0, .ne1 = ne1,
				   .nb1 = (size_t)rb };
}

/* Reserve a region of rows x row bytes; returns its offset (checked). */
static int reserve(uint64_t *cursor, uint32_t type, int64_t ne0, int64_t ne1, uint64_t *off)
{
	uint64_t rb, bytes;
	if (st_type_row_size(type, (uint64_t)ne0, &rb) || st_mul_overflow_u64(rb, (uint64_t)ne1, &bytes) ||
	    st_align_up_u64(*cursor, ALIGN, off) || st_add_overflow_u64(*off, bytes, cursor))
		return st_error(-EOVERFLOW, "stage: buffer of %lld x %lld elements overflows", (long long)ne0,
				(long long)ne1);
	return 0;
}

/* The stage's tensor view of a model weight. */
static struct st_tensor wt(const struct st_stage *s, const struct st_weight *w)
{
	uint64_t off = w->file_offset;
	if (!s->wrapped)
		for (int i = 0; i < s->n_spans; i++)
			if (s->spans[i].file_offset == w->file_offset) {
				off = s->span_off[i];
				break;
			}
	struct st_tensor t = mk(s->wbuf, off, w->type, w->ne0, w->ne1);
	t.nb1 = w->nb1;
	return t;
}

static uint64_t weight_end(const struct st_weight *w)
{
	return w->file_offset + w->nbytes;       /* checked when the model was opened */
}

/* What each part of the stage waits for while its weights load. */
static int loading_needs(struct st_stage *s)
{
	const struct st_model *m = s->m;
	const uint32_t nl = s->p.last_layer - s->p.first_layer + 1;
	s->layer_need = calloc(nl, sizeof(*s->layer_need));
	if (!s->layer_need)
		return st_error(-ENOMEM, "stage: out of memory");
	for (uint32_t l = 0; l < nl; l++)
		for (int i = 0; i < ST_LAYER_N_WEIGHTS; i++)
			s->layer_need[l] = ST_MAX(s->layer_need[l],
						  weight_end(st_layer_weight(&m->layers[s->p.first_layer + l], i)));
	s->embed_need = weight_end(&m->tok_embd);
	s->head_need = ST_MAX(weight_end(&m->output_norm), weight_end(&m->output));
	return 0;
}

int st_weight_ready_publish(struct st_weight_ready *r, uint64_t file_offset)
{
	int rc = 0;
	if (!r)
		return 0;
	pthread_mutex_lock(&r->mu);
	if (r->cancel) {
		rc = -ECANCELED;
	} else if (file_offset > r->mark) {
		r->mark = file_offset;
		pthread_cond_broadcast(&r->cv);
	}
	pthread_mutex_unlock(&r->mu);
	return rc;
}

static void *load_thread(void *arg)
{
	struct st_weight_ready *r = arg;
	int rc = r->fn(r->user, r->ws, r->n, r);
	if (r->advisory) {
		if (rc && rc != -ECANCELED)
			st_log(ST_LOG_WARN, "prefetching weights failed (they are read on demand): %s",
			       rc > 0 ? "the prefetch function returned a positive code" : st_last_error());
		pthread_mutex_lock(&r->mu);
		r->done = true;
		pthread_mutex_unlock(&r->mu);
		return NULL;
	}
	pthread_mutex_lock(&r->mu);
	r->rc = rc > 0 ? -EIO : rc;
	if (rc)
		snprintf(r->msg, sizeof(r->msg), "%s", rc > 0 ? "the weight loader returned a positive code"
							      : st_last_error());
	else
		r->mark = UINT64_MAX;
	r->done = true;
	atomic_store_explicit(&r->all_in, rc == 0, memory_order_release);
	pthread_cond_broadcast(&r->cv);
	pthread_mutex_unlock(&r->mu);
	return NULL;
}

/* Wait until every weight byte below file offset `need` is in (no-op once
 * the background load is done); the loader's error if it failed first. */
static int stage_wait(struct st_stage *s, uint64_t need)
{
	struct st_weight_ready *r = s->ld;
	int rc = 0;
	if (!r || atomic_load_explicit(&r->all_in, memory_order_acquire))
		return 0;
	pthread_mutex_lock(&r->mu);
	while (r->mark < need && !r->done)
		pthread_cond_wait(&r->cv, &r->mu);
	if (r->mark < need)
		rc = st_error(r->rc < 0 ? r->rc : -EIO, "stage %u-%u: loading its weights failed: %s",
			      s->p.first_layer, s->p.last_layer, r->msg);
	pthread_mutex_unlock(&r->mu);
	return rc;
}

static int wait_layer_op(void *user, int op)
{
	struct st_stage *s = user;
	if (op % ST_STAGE_OPS_PER_LAYER)
		return 0;
	return stage_wait(s, s->layer_need[op / ST_STAGE_OPS_PER_LAYER]);
}

static void loading_stop(struct st_stage *s)
{
	struct st_weight_ready *r = s->ld;
	if (!r)
		return;
	pthread_mutex_lock(&r->mu);
	r->cancel = true;
	pthread_mutex_unlock(&r->mu);
	pthread_join(r->thread, NULL);
	pthread_cond_destroy(&r->cv);
	pthread_mutex_destroy(&r->mu);
	free(r->ws);
	free(r);
	s->ld = NULL;
}

/* Start fn (the background loader, or with advisory the read-ahead of
 * the mapped file) on its own thread; ws (n spans) is handed over on
 * success. */
static int loading_start(struct st_stage *s, st_weight_load_async_fn fn, bool advisory,
			 struct st_weight_span *ws, int n)
{
	struct st_weight_ready *r = calloc(1, sizeof(*r));
	int rc;
	if (!r)
		return st_error(-ENOMEM, "stage: out of memory");
	rc = advisory ? 0 : loading_needs(s);
	if (rc) {
		free(r);
		return rc;
	}
	pthread_mutex_init(&r->mu, NULL);
	pthread_cond_init(&r->cv, NULL);
	r->fn = fn;
	r->advisory = advisory;
	atomic_store_explicit(&r->all_in, advisory, memory_order_release);
	r->user = s->p.load_user;
	r->ws = ws;
	r->n = n;
	rc = pthread_create(&r->thread, NULL, load_thread, r);
	if (rc) {
		pthread_cond_destroy(&r->cv);
		pthread_mutex_destroy(&r->mu);
		free(r);
		return st_error(-rc, "stage: cannot start the weight loading thread: %s", strerror(rc));
	}
	s->ld = r;
	return 0;
}

/* The caller's loader reads every span into the weight buffer (mapped), or
 * into a host staging copy that is then written to the buffer.  With
 * load_async on the CPU backend the reads go on in the background. */
static int load_weights(struct st_stage *s, uint64_t total)
{
	struct st_weight_span *ws = calloc((size_t)s->n_spans, sizeof(*ws));
	char *dst, *staging = NULL;
	int rc;
	if (!ws)
		return st_error(-ENOMEM, "stage: out of memory");
	/* load_device: device-local where the backend has such memory, and
	 * the loader writes it through the backend (dst NULL) */
	rc = st_buffer_alloc(s->be, (size_t)total, ST_BUF_WEIGHTS | (s->p.load_device ? 0 : ST_BUF_HOST_VISIBLE),
			     &s->wbuf);
	if (rc)
		goto out;
	dst = st_buffer_map(s->be, s->wbuf);
	if (!dst && !s->p.load_device) {
		dst = staging = malloc(total ? (size_t)total : 1);
		if (!staging) {
			rc = st_error(-ENOMEM, "stage: no memory to stage %llu bytes of weights", (unsigned long long)total);
			goto out;
		}
	}
	for (int i = 0; i < s->n_spans; i++)
		ws[i] = (struct st_weight_span){ s->spans[i].file_offset, s->spans[i].nbytes,
						 dst ? dst + s->span_off[i] : NULL, s->spans[i].w->name,
						 s->be, s->wbuf, s->span_off[i] };
	if (s->p.load_async && !staging && s->be->ops == &st_backend_cpu) {
		rc = loading_start(s, s->p.load_async, false, ws, s->n_spans);
		if (rc == 0)
			return 0;
		goto out;
	}
	rc = s->p.load ? s->p.load(s->p.load_user, ws, s->n_spans) : s->p.load_async(s->p.load_user, ws, s->n_spans, NULL);
	if (rc > 0)
		rc = st_error(-EIO, "stage: weight loader returned %d", rc);
	if (!rc && staging)
		rc = st_buffer_write(s->be, s->wbuf, 0, staging, (size_t)total);
out:
	free(staging);
	free(ws);
	return rc;
}

struct off_idx {
	uint64_t off;
	int idx;
};

static int cmp_off_idx(const void *a, const void *b)
{
	const struct off_idx *x = a, *y = b;
	return x->off < y->off ? -1 : x->off > y->off;
}

/* Offsets of the spans in a CPU weight buffer that a loader fills: each at
 * its file offset's phase modulo LOAD_PHASE, in file order, so file-adjacent
 * tensors stay adjacent (one read) and O_DIRECT lands in place.  Tensor
 * alignment is then the file's, as when the mapped file is used in place. */
static int layout_by_phase(struct st_stage *s, uint64_t *total)
{
	struct off_idx *o = malloc((size_t)(s->n_spans ? s->n_spans : 1) * sizeof(*o));
	uint64_t cur = 0;
	int rc = 0;
	if (!o)
		return st_error(-ENOMEM, "stage: out of memory");
	for (int i = 0; i < s->n_spans; i++)
		o[i] = (struct off_idx){ s->spans[i].file_offset, i };
	qsort(o, (size_t)s->n_spans, sizeof(*o), cmp_off_idx);
	for (int k = 0; k < s->n_spans && !rc; k++) {
		const int i = o[k].idx;
		s->span_off[i] = cur + ((s->spans[i].file_offset - cur) & (LOAD_PHASE - 1));
		if (st_add_overflow_u64(s->span_off[i], s->spans[i].nbytes, &cur))
			rc = st_error(-EOVERFLOW, "stage: weights overflow");
	}
	free(o);
	*total = cur;
	return rc;
}

/* Read-ahead of the mapped file for a stage that uses it (strata.h
 * st_session_params.prefetch_weights).  For a stage computing from the
 * mapping, the spans go in the order its first evaluation needs their bulk:
 * the layers, then the head, then the embedding table, of which one row per
 * token is read (its pages fault in on demand meanwhile); for a stage
 * copying from the mapping, in the copy's order.  A read-ahead that cannot
 * start is a warning: the pages are then read on demand. */
static void prefetch_start(struct st_stage *s, bool copy_order)
{
	const char *map = s->m->map;
	struct st_weight_span *ws;
	int k = 0;
	if (!s->p.prefetch || !s->n_spans)
		return;
	ws = calloc((size_t)s->n_spans, sizeof(*ws));
	for (int pass = 0; ws && pass < 2; pass++)
		for (int i = 0; i < s->n_spans; i++)
			if (copy_order ? pass == 0 : (s->spans[i].layer == -1) == (pass == 1))
				ws[k++] = (struct st_weight_span){ s->spans[i].file_offset, s->spans[i].nbytes,
								   (void *)(map + s->spans[i].file_offset),
								   s->spans[i].w->name, s->be, NULL, 0 };
	if (!ws || loading_start(s, s->p.prefetch, true, ws, k) != 0) {
		st_log(ST_LOG_WARN, "stage %u-%u: cannot start reading its weights ahead (%s): they are read on demand",
		       s->p.first_layer, s->p.last_layer, ws ? st_last_error() : "out of memory");
		free(ws);
	}
}

static int place_weights(struct st_stage *s)
{
	const struct st_model *m = s->m;
	/* with read-ahead, a backend that can use the mapped file in place does
	 * so even when a loader is set; the loader fills the buffers of those
	 * that cannot (strata.h st_session_params.prefetch_weights) */
	const bool loader = s->p.load || s->p.load_async;
	const bool try_map = !loader || s->p.prefetch;
	int n = st_model_spans(m, (int)s->p.first_layer, (int)s->p.last_layer, s->p.embed, s->p.head, NULL, 0);
	uint64_t total = 0;
	int rc;
	if (n < 0)
		return n;
	s->spans = calloc((size_t)n, sizeof(*s->spans));
	s->span_off = calloc((size_t)n, sizeof(*s->span_off));
	if (!s->spans || !s->span_off)
		return st_error(-ENOMEM, "stage: out of memory");
	s->n_spans = st_model_spans(m, (int)s->p.first_layer, (int)s->p.last_layer, s->p.embed, s->p.head, s->spans, n);
	if (loader && !try_map && s->be->ops == &st_backend_cpu) {
		rc = layout_by_phase(s, &total);
		if (rc)
			return rc;
	} else {
		for (int i = 0; i < n; i++) {
			if (st_align_up_u64(total, ALIGN, &s->span_off[i]) ||
			    st_add_overflow_u64(s->span_off[i], s->spans[i].nbytes, &total))
				return st_error(-EOVERFLOW, "stage: weights overflow");
		}
	}
	s->weight_bytes = total;
	if (try_map) {
		/* CPU-like backends (and unified-memory devices) use the mapped file in place */
		rc = st_buffer_wrap(s->be, m->map, m->map_size, &s->wbuf);
		if (rc == 0) {
			s->wrapped = true;
			prefetch_start(s, false);
			return 0;
		}
		if (rc != -ENOTSUP) {
			if (!loader)
				return rc;
			/* e.g. a file bigger than the device's largest buffer */
			st_log(ST_LOG_INFO, "stage %u-%u: the mapped file cannot be used in place (%s): loading it",
			       s->p.first_layer, s->p.last_layer, st_last_error());
		}
	}
	if (loader)
		return load_weights(s, total);
	rc = st_buffer_alloc(s->be, (size_t)total, ST_BUF_WEIGHTS, &s->wbuf);
	if (rc)
		return rc;
	/* the copy reads the mapping: read ahead of it, stop when it is done */
	prefetch_start(s, true);
	for (int i = 0; i < n && !rc; i++)
		rc = st_buffer_write(s->be, s->wbuf, (size_t)s->span_off[i],
				     (const char *)m->map + s->spans[i].file_offset, (size_t)s->spans[i].nbytes);
	loading_stop(s);
	return rc;
}

static int alloc_buffers(struct st_stage *s)
{
	const struct st_model_desc *d = &s->m->desc;
	const int64_t T = s->p.max_tokens, dim = d->n_embd, qd = (int64_t)d->n_head * d->head_dim,
		      kvd = (int64_t)d->n_head_kv * d->head_dim, ff = d->n_ff;
	const uint32_t nl = s->p.last_layer - s->p.first_layer + 1;
	/* the head works on at most HEAD_ROWS rows at a time: logits of a
	 * big vocabulary for a whole batch would be large (128k x 256 x 4) */
	const int64_t HT = ST_MIN(T, (int64_t)HEAD_ROWS);
	uint64_t cur = 0, o[11] = { 0 };
	int rc = 0;

	rc = rc ? rc : reserve(&cur, ST_TYPE_F32, dim, T, &o[0]);
	rc = rc ? rc : reserve(&cur, ST_TYPE_F32, dim, T, &o[1]);
	rc = rc ? rc : reserve(&cur, ST_TYPE_F32, qd, T, &o[2]);
	rc = rc ? rc : reserve(&cur, ST_TYPE_F32, kvd, T, &o[3]);
	rc = rc ? rc : reserve(&cur, ST_TYPE_F32, kvd, T, &o[4]);
	rc = rc ? rc : reserve(&cur, ST_TYPE_F32, qd, T, &o[5]);
	rc = rc ? rc : reserve(&cur, ST_TYPE_F32, ff, T, &o[6]);
	rc = rc ? rc : reserve(&cur, ST_TYPE_F32, ff, T, &o[7]);
	rc = rc ? rc : reserve(&cur, ST_TYPE_I32, 1, T, &o[8]);
	rc = rc ? rc : reserve(&cur, ST_TYPE_F32, dim, HT, &o[9]);
	if (s->p.head)
		rc = rc ? rc : reserve(&cur, ST_TYPE_F32, d->n_vocab, HT, &o[10]);
	if (rc)
		return rc;
	rc = st_buffer_alloc(s->be, (size_t)cur, ST_BUF_HOST_VISIBLE, &s->act);
	if (rc)
		return rc;
	s->x = mk(s->act, o[0], ST_TYPE_F32, dim, T);
	s->xb = mk(s->act, o[1], ST_TYPE_F32, dim, T);
	s->q = mk(s->act, o[2], ST_TYPE_F32, qd, T);
	s->k = mk(s->act, o[3], ST_TYPE_F32, kvd, T);
	s->v = mk(s->act, o[4], ST_TYPE_F32, kvd, T);
	s->att = mk(s->act, o[5], ST_TYPE_F32, qd, T);
	s->hb = mk(s->act, o[6], ST_TYPE_F32, ff, T);
	s->hb2 = mk(s->act, o[7], ST_TYPE_F32, ff, T);
	s->ids = mk(s->act, o[8], ST_TYPE_I32, 1, T);
	s->head_in = mk(s->act, o[9], ST_TYPE_F32, dim, HT);
	if (s->p.head)
		s->logits = mk(s->act, o[10], ST_TYPE_F32, d->n_vocab, HT);

	/* KV cache: K and V of every layer, n_ctx rows each */
	s->kc = calloc(nl, sizeof(*s->kc));
	s->vc = calloc(nl, sizeof(*s->vc));
	if (!s->kc || !s->vc)
		return st_error(-ENOMEM, "stage: out of memory");
	uint64_t *ko = calloc(2 * (size_t)nl, sizeof(uint64_t));
	if (!ko)
		return st_error(-ENOMEM, "stage: out of memory");
	cur = 0;
	for (uint32_t l = 0; l < nl && !rc; l++) {
		rc = reserve(&cur, s->p.kv_type, kvd, s->p.n_ctx, &ko[2 * l]);
		rc = rc ? rc : reserve(&cur, s->p.kv_type, kvd, s->p.n_ctx, &ko[2 * l + 1]);
	}
	if (!rc)
		rc = st_buffer_alloc(s->be, (size_t)cur, 0, &s->kv);
	for (uint32_t l = 0; l < nl && !rc; l++) {
		s->kc[l] = mk(s->kv, ko[2 * l], s->p.kv_type, kvd, s->p.n_ctx);
		s->vc[l] = mk(s->kv, ko[2 * l + 1], s->p.kv_type, kvd, s->p.n_ctx);
	}
	s->kv_bytes = cur;
	free(ko);
	return rc;
}

static struct st_op op2(enum st_op_kind k, struct st_tensor dst, struct st_tensor a, struct st_tensor b)
{
	struct st_op op = { .kind = k, .dst = dst };
	op.src[0] = a;
	op.src[1] = b;
	return op;
}

/* The 17 ops of one layer, appended to ops. */
static int layer_ops(const struct st_stage *s, uint32_t layer, struct st_op *ops)
{
	const struct st_model_desc *d = &s->m->desc;
	const struct st_layer_weights *L = &s->m->layers[layer];
	const uint32_t li = layer - s->p.first_layer;
	int n = 0;
	struct st_op op;

	ops[n++] = (struct st_op){ .kind = ST_OP_RMSNORM, .dst = s->xb, .src = { s->x, wt(s, &L->attn_norm) },
				   .p.norm.eps = d->rms_eps };
	ops[n++] = op2(ST_OP_MATMUL, s->q, wt(s, &L->wq), s->xb);
	ops[n++] = op2(ST_OP_MATMUL, s->k, wt(s, &L->wk), s->xb);
	ops[n++] = op2(ST_OP_MATMUL, s->v, wt(s, &L->wv), s->xb);
	op = (struct st_op){ .kind = ST_OP_ROPE, .dst = s->q, .src = { s->q } };
	op.p.rope.n_head = d->n_head;
	op.p.rope.head_dim = d->head_dim;
	op.p.rope.rope_dim = d->rope_dim;
	op.p.rope.theta = d->rope_theta;
	ops[n++] = op;
	op.dst = op.src[0] = s->k;
	op.p.rope.n_head = d->n_head_kv;
	ops[n++] = op;
	ops[n++] = (struct st_op){ .kind = ST_OP_KV_STORE, .dst = s->kc[li], .src = { s->k } };
	ops[n++] = (struct st_op){ .kind = ST_OP_KV_STORE, .dst = s->vc[li], .src = { s->v } };
	op = (struct st_op){ .kind = ST_OP_ATTN, .dst = s->att, .src = { s->q, s->kc[li], s->vc[li] } };
	op.p.attn.n_head = d->n_head;
	op.p.attn.n_head_kv = d->n_head_kv;
	op.p.attn.head_dim = d->head_dim;
	op.p.attn.scale = (float)(1.0 / sqrt((double)d->head_dim));
	ops[n++] = op;
	ops[n++] = op2(ST_OP_MATMUL, s->xb, wt(s, &L->wo), s->att);
	ops[n++] = op2(ST_OP_ADD, s->x, s->x, s->xb);
	ops[n++] = (struct st_op){ .kind = ST_OP_RMSNORM, .dst = s->xb, .src = { s->x, wt(s, &L->ffn_norm) },
				   .p.norm.eps = d->rms_eps };
	ops[n++] = op2(ST_OP_MATMUL, s->hb, wt(s, &L->w1), s->xb);
	ops[n++] = op2(ST_OP_MATMUL, s->hb2, wt(s, &L->w3), s->xb);
	ops[n++] = op2(ST_OP_SWIGLU, s->hb, s->hb, s->hb2);
	ops[n++] = op2(ST_OP_MATMUL, s->xb, wt(s, &L->w2), s->hb);
	ops[n++] = op2(ST_OP_ADD, s->x, s->x, s->xb);
	return n;
}

static int build_graphs(struct st_stage *s)
{
	const struct st_model_desc *d = &s->m->desc;
	const uint32_t nl = s->p.last_layer - s->p.first_layer + 1;
	struct st_op *ops = calloc((size_t)nl * ST_STAGE_OPS_PER_LAYER, sizeof(*ops));
	int n = 0, rc;
	if (!ops)
		return st_error(-ENOMEM, "stage: out of memory");
	for (uint32_t l = s->p.first_layer; l <= s->p.last_layer; l++)
		n += layer_ops(s, l, ops + n);
	s->n_layer_ops = n;
	s->op_times = calloc((size_t)n, sizeof(double));
	rc = s->op_times ? st_graph_prepare(s->be, ops, n, &s->g_layers) : st_error(-ENOMEM, "stage: out of memory");
	free(ops);
	if (rc)
		return rc;
	if (s->p.embed) {
		struct st_op op = op2(ST_OP_GET_ROWS, s->x, wt(s, &s->m->tok_embd), s->ids);
		rc = st_graph_prepare(s->be, &op, 1, &s->g_embed);
		if (rc)
			return rc;
	}
	if (s->p.head) {
		struct st_op h[2] = {
			{ .kind = ST_OP_RMSNORM, .dst = s->xb, .src = { s->head_in, wt(s, &s->m->output_norm) },
			  .p.norm.eps = d->rms_eps },
			op2(ST_OP_MATMUL, s->logits, wt(s, &s->m->output), s->xb),
		};
		rc = st_graph_prepare(s->be, h, 2, &s->g_head);
	}
	return rc;
}

void st_stage_destroy(struct st_stage *s)
{
	if (!s)
		return;
	loading_stop(s);             /* before the buffer the loader writes goes */
	if (s->be) {
		st_graph_free(s->be, s->g_layers);
		st_graph_free(s->be, s->g_embed);
		st_graph_free(s->be, s->g_head);
		st_buffer_free(s->be, s->act);
		st_buffer_free(s->be, s->kv);
		st_buffer_free(s->be, s->wbuf);
		st_backend_close(s->be);
	}
	free(s->spans);
	free(s->span_off);
	free(s->layer_need);
	free(s->kc);
	free(s->vc);
	free(s->op_times);
	free(s);
}

int st_stage_create(const struct st_model *m, const struct st_stage_params *p, struct st_stage **out)
{
	struct st_stage *s;
	int rc;

	*out = NULL;
	if (p->first_layer > p->last_layer || p->last_layer >= m->desc.n_layer)
		return st_error(-EINVAL, "stage: layers %u-%u outside 0-%u", p->first_layer, p->last_layer,
				m->desc.n_layer - 1);
	if (p->n_ctx == 0 || p->max_tokens == 0 || p->max_tokens > (1u << 20))
		return st_error(-EINVAL, "stage: n_ctx %u, max_tokens %u", p->n_ctx, p->max_tokens);
	if (p->kv_type != ST_TYPE_F32 && p->kv_type != ST_TYPE_F16)
		return st_error(-EINVAL, "stage: KV cache type %s (f32 or f16)", st_type_name(p->kv_type));
	s = calloc(1, sizeof(*s));
	if (!s)
		return st_error(-ENOMEM, "stage: out of memory");
	s->m = m;
	s->p = *p;
	if (!s->p.backend)
		s->p.backend = &st_backend_cpu;
	rc = st_backend_open(s->p.backend, p->device, &s->be);
	if (!rc)
		rc = place_weights(s);
	if (!rc)
		rc = alloc_buffers(s);
	if (!rc)
		rc = build_graphs(s);
	if (rc) {
		st_stage_destroy(s);
		return rc;
	}
	*out = s;
	return 0;
}

static int check_n(const struct st_stage *s, int64_t n)
{
	if (n <= 0 || n > (int64_t)s->p.max_tokens)
		return st_error(-EINVAL, "stage: %lld tokens (1..%u per call)", (long long)n, s->p.max_tokens);
	return 0;
}

int st_stage_embed(struct st_stage *s, const int32_t *tokens, int64_t n, float *hidden_out)
{
	struct st_graph_run run = { .n_tokens = n, .pos0 = 0 };
	int rc = check_n(s, n);
	if (rc)
		return rc;
	if (!s->g_embed)
		return st_error(-EINVAL, "stage %u-%u holds no embedding", s->p.first_layer, s->p.last_layer);
	rc = stage_wait(s, s->embed_need);
	if (!rc)
		rc = st_buffer_write(s->be, s->act, s->ids.offset, tokens, (size_t)n * sizeof(int32_t));
	if (!rc)
		rc = st_graph_run(s->be, s->g_embed, &run);
	if (!rc)
		rc = st_backend_synchronize(s->be);
	if (!rc)
		rc = st_buffer_read(s->be, s->act, s->x.offset, hidden_out, (size_t)n * s->x.nb1);
	return rc;
}

int st_stage_forward(struct st_stage *s, const float *hidden_in, int64_t n_tokens, int64_t pos0, float *hidden_out)
{
	struct st_graph_run run = { .n_tokens = n_tokens, .pos0 = pos0 };
	int rc = check_n(s, n_tokens);
	if (rc)
		return rc;
	if (pos0 < 0 || pos0 + n_tokens > (int64_t)s->p.n_ctx)
		return st_error(-ENOSPC, "stage: positions %lld..%lld exceed the context of %u", (long long)pos0,
				(long long)(pos0 + n_tokens - 1), s->p.n_ctx);
	if (s->ld && !atomic_load_explicit(&s->ld->all_in, memory_order_acquire)) {
		run.before_op = wait_layer_op;       /* each layer starts when its bytes are in */
		run.before_op_user = s;
	}
	rc = st_buffer_write(s->be, s->act, s->x.offset, hidden_in, (size_t)n_tokens * s->x.nb1);
	if (!rc)
		rc = st_graph_run(s->be, s->g_layers, &run);
	if (!rc)
		rc = st_backend_synchronize(s->be);
	if (!rc)
		rc = st_buffer_read(s->be, s->act, s->x.offset, hidden_out, (size_t)n_tokens * s->x.nb1);
	return rc;
}

int st_stage_head(struct st_stage *s, const float *hidden, int64_t n, float *logits)
{
	int rc = check_n(s, n);
	if (rc)
		return rc;
	if (!s->g_head)
		return st_error(-EINVAL, "stage %u-%u holds no output head", s->p.first_layer, s->p.last_layer);
	rc = stage_wait(s, s->head_need);
	for (int64_t r = 0; r < n && !rc; r += s->head_in.ne1) {
		struct st_graph_run run = { .n_tokens = ST_MIN(n - r, s->head_in.ne1), .pos0 = 0 };
		rc = st_buffer_write(s->be, s->act, s->head_in.offset, (const char *)hidden + (size_t)r * s->head_in.nb1,
				     (size_t)run.n_tokens * s->head_in.nb1);
		if (!rc)
			rc = st_graph_run(s->be, s->g_head, &run);
		if (!rc)
			rc = st_backend_synchronize(s->be);
		if (!rc)
			rc = st_buffer_read(s->be, s->act, s->logits.offset, (char *)logits + (size_t)r * s->logits.nb1,
					    (size_t)run.n_tokens * s->logits.nb1);
	}
	return rc;
}

struct st_backend *st_stage_backend(const struct st_stage *s)
{
	return s->be;
}

const struct st_stage_params *st_stage_params(const struct st_stage *s)
{
	return &s->p;
}

uint64_t st_stage_weight_bytes(const struct st_stage *s)
{
	return s->weight_bytes;
}

uint64_t st_stage_kv_bytes(const struct st_stage *s)
{
	return s->kv_bytes;
}

int st_stage_layer_times(const struct st_stage *s, double *seconds, int max)
{
	const int nl = (int)(s->p.last_layer - s->p.first_layer + 1);
	int rc = st_graph_op_times(s->be, s->g_layers, s->op_times, s->n_layer_ops);
	if (rc < 0)
		return rc;
	for (int l = 0; l < nl && l < max; l++) {
		seconds[l] = 0;
		for (int i = 0; i < ST_STAGE_OPS_PER_LAYER; i++)
			seconds[l] += s->op_times[l * ST_STAGE_OPS_PER_LAYER + i];
	}
	return ST_MIN(nl, max);
}
