/* mkmodel.c: synthetic llama GGUF models with deterministic random weights. */
#include "mkmodel.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "gguf.h"
#include "sampler.h"
#include "types.h"
#include "util.h"

enum { K_EMBD, K_NORM, K_MATRIX };

#define ST_MKMODEL_MIN_VOCAB 259u

/* The synthetic SentencePiece vocabulary (the tokenizer's generator). */
struct vocab {
	uint32_t n;
	char **tokens;
	float *scores;
	int32_t *types;
};

struct preset {
	const char *name;
	uint32_t n_layer, n_embd, n_ff, n_head, n_head_kv, n_vocab, n_ctx;
	float rope_theta;
};

static const struct preset presets[] = {
	/* milliseconds per token; every row a multiple of 32 */
	{ "tiny", 2, 64, 128, 4, 2, 512, 256, 10000.0f },
	{ "stories260k", 5, 64, 172, 8, 4, 512, 512, 10000.0f },
	{ "tinyllama-1.1b", 22, 2048, 5632, 32, 4, 32000, 2048, 10000.0f },
	{ "llama2-7b", 32, 4096, 11008, 32, 32, 32000, 4096, 10000.0f },
	{ "llama3-8b", 32, 4096, 14336, 32, 8, 128256, 8192, 500000.0f },
	{ "custom", 2, 64, 128, 4, 2, 512, 256, 10000.0f },
};

int st_mkmodel_preset(const char *shape, struct st_mkmodel_params *p)
{
	for (size_t i = 0; i < ST_ARRAY_SIZE(presets); i++) {
		const struct preset *s = &presets[i];
		if (strcmp(shape, s->name))
			continue;
		memset(p, 0, sizeof(*p));
		snprintf(p->shape, sizeof(p->shape), "%s", s->name);
		p->n_layer = s->n_layer;
		p->n_embd = s->n_embd;
		p->n_ff = s->n_ff;
		p->n_head = s->n_head;
		p->n_head_kv = s->n_head_kv;
		p->n_vocab = s->n_vocab;
		p->n_ctx = s->n_ctx;
		p->rope_theta = s->rope_theta;
		p->rms_eps = 1e-5f;
		p->type = ST_TYPE_F32;
		return 0;
	}
	return st_error(-EINVAL, "mkmodel: unknown shape '%s' (tiny, stories260k, tinyllama-1.1b, "
			"llama2-7b, llama3-8b, custom)", shape);
}

int st_mkmodel_validate(const struct st_mkmodel_params *p)
{
	const uint32_t lim = 1u << 20;
	if (!p->n_layer || !p->n_embd || !p->n_ff || !p->n_head || !p->n_head_kv || !p->n_ctx)
		return st_error(-EINVAL, "mkmodel: layers %u, dim %u, ff %u, heads %u, kv heads %u and "
				"ctx %u must all be positive", p->n_layer, p->n_embd, p->n_ff, p->n_head,
				p->n_head_kv, p->n_ctx);
	if (p->n_layer > 4096 || p->n_embd > lim || p->n_ff > lim || p->n_head > 4096 ||
	    p->n_ctx > lim || p->n_vocab > (1u << 24))
		return st_error(-EINVAL, "mkmodel: a dimension is too large (layers %u, dim %u, ff %u, "
				"heads %u, ctx %u, vocab %u)", p->n_layer, p->n_embd, p->n_ff, p->n_head,
				p->n_ctx, p->n_vocab);
	if (p->n_embd % p->n_head)
		return st_error(-EINVAL, "mkmodel: dim %u is not a multiple of heads %u", p->n_embd, p->n_head);
	if ((p->n_embd / p->n_head) % 2)
		return st_error(-EINVAL, "mkmodel: head dim %u (dim %u / heads %u) must be even for RoPE",
				p->n_embd / p->n_head, p->n_embd, p->n_head);
	if (p->n_head_kv > p->n_head || p->n_head % p->n_head_kv)
		return st_error(-EINVAL, "mkmodel: kv heads %u must divide heads %u", p->n_head_kv, p->n_head);
	if (p->n_vocab < ST_MKMODEL_MIN_VOCAB)
		return st_error(-EINVAL, "mkmodel: vocab %u is below %u (unk, bos, eos and 256 byte tokens)",
				p->n_vocab, (unsigned)ST_MKMODEL_MIN_VOCAB);
	if (p->type != ST_TYPE_F32 && p->type != ST_TYPE_F16 && p->type != ST_TYPE_BF16 &&
	    p->type != ST_TYPE_Q8_0 && p->type != ST_TYPE_Q4_0 && p->type != ST_TYPE_Q4_K &&
	    p->type != ST_TYPE_Q5_K && p->type != ST_TYPE_Q6_K && p->type != ST_TYPE_Q4_1 &&
	    p->type != ST_TYPE_Q5_0 && p->type != ST_TYPE_Q5_1)
		return st_error(-EINVAL, "mkmodel: type %s is not one of f32, f16, bf16, q8_0, q4_0, q4_1, "
				"q5_0, q5_1, q4_K, q5_K, q6_K", st_type_name(p->type));
	if ((p->mix == ST_MKMODEL_MIX_Q4_K_M && p->type != ST_TYPE_Q4_K) ||
	    (p->mix == ST_MKMODEL_MIX_Q5_K_M && p->type != ST_TYPE_Q5_K) || p->mix > ST_MKMODEL_MIX_Q5_K_M)
		return st_error(-EINVAL, "mkmodel: mix %u does not go with type %s (q4_k_m: q4_K, q5_k_m: q5_K)",
				p->mix, st_type_name(p->type));
	if (!(p->rope_theta > 0) || !(p->rms_eps > 0))
		return st_error(-EINVAL, "mkmodel: rope theta %g and rms eps %g must be positive",
				(double)p->rope_theta, (double)p->rms_eps);
	return 0;
}

static void add(struct st_mkmodel_tensor *t, uint32_t *n, const char *name, int kind, uint32_t type,
		uint64_t ne0, uint64_t ne1)
{
	struct st_mkmodel_tensor *x = &t[(*n)++];
	const struct st_type_traits *tr;
	snprintf(x->name, sizeof(x->name), "%s", name);
	x->kind = kind;
	x->ne[0] = ne0;
	x->ne[1] = ne1;
	x->n_dims = ne1 > 1 || kind != K_NORM ? 2 : 1;
	tr = st_type_traits(type);
	if (ne0 % tr->block_size && tr->block_size == 256 && ne0 % 32 == 0)   /* llama.cpp's fallback */
		type = type == ST_TYPE_Q4_K ? ST_TYPE_Q5_0 : type == ST_TYPE_Q5_K ? ST_TYPE_Q5_1 : ST_TYPE_Q8_0;
	tr = st_type_traits(type);
	if (kind == K_NORM || ne0 % tr->block_size)
		type = ST_TYPE_F32;       /* norms, and rows that are not whole blocks */
	x->type = type;
	tr = st_type_traits(type);
	/* sizes were bounded by validate(): no overflow below 2^63 */
	x->nbytes = ne0 / tr->block_size * tr->type_size * ne1;
}

int st_mkmodel_parse_type(const char *name, struct st_mkmodel_params *p)
{
	if (!strcasecmp(name, "q4_k_m") || !strcasecmp(name, "q5_k_m")) {
		const bool four = name[1] == '4';
		p->type = four ? ST_TYPE_Q4_K : ST_TYPE_Q5_K;
		p->mix = four ? ST_MKMODEL_MIX_Q4_K_M : ST_MKMODEL_MIX_Q5_K_M;
		return 0;
	}
	int t = st_type_from_name(name);
	if (t < 0)
		return st_error(-EINVAL, "mkmodel: unknown type '%s'", name);
	p->type = (uint32_t)t;
	p->mix = ST_MKMODEL_MIX_NONE;
	return 0;
}

/* llama.cpp's rule for the layers that get more bits in _M mixes. */
static bool use_more_bits(uint32_t i, uint32_t n)
{
	return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2;
}

/* Type of a matrix under the params' mix; what: "attn_v", "ffn_down", "output", ... */
static uint32_t mix_type(const struct st_mkmodel_params *p, const char *what, uint32_t layer)
{
	if (p->mix == ST_MKMODEL_MIX_NONE)
		return p->type;
	if (!strcmp(what, "output.weight"))
		return ST_TYPE_Q6_K;
	if ((!strcmp(what, "attn_v.weight") || !strcmp(what, "ffn_down.weight")) && use_more_bits(layer, p->n_layer))
		return ST_TYPE_Q6_K;
	return p->type;
}

int st_mkmodel_tensors(const struct st_mkmodel_params *p, struct st_mkmodel_tensor **out)
{
	struct st_mkmodel_tensor *t;
	uint32_t n = 0, cap;
	uint64_t dim = p->n_embd, kv = (uint64_t)p->n_embd / p->n_head * p->n_head_kv, ff = p->n_ff;
	char nm[ST_MKMODEL_MAX_NAME];
	int rc = st_mkmodel_validate(p);
	*out = NULL;
	if (rc < 0)
		return rc;
	cap = 3 + 9 * p->n_layer;
	t = calloc(cap, sizeof(*t));
	if (!t)
		return st_error(-ENOMEM, "mkmodel: out of memory for %u tensors", cap);
	add(t, &n, "token_embd.weight", K_EMBD, p->type, dim, p->n_vocab);
	for (uint32_t l = 0; l < p->n_layer; l++) {
#define BLK(suffix, kind, ne0, ne1) \
	(snprintf(nm, sizeof(nm), "blk.%u." suffix, l), add(t, &n, nm, kind, mix_type(p, suffix, l), ne0, ne1))
		BLK("attn_norm.weight", K_NORM, dim, 1);
		BLK("attn_q.weight", K_MATRIX, dim, dim);
		BLK("attn_k.weight", K_MATRIX, dim, kv);
		BLK("attn_v.weight", K_MATRIX, dim, kv);
		BLK("attn_output.weight", K_MATRIX, dim, dim);
		BLK("ffn_norm.weight", K_NORM, dim, 1);
		BLK("ffn_gate.weight", K_MATRIX, dim, ff);
		BLK("ffn_down.weight", K_MATRIX, ff, dim);
		BLK("ffn_up.weight", K_MATRIX, dim, ff);
#undef BLK
	}
	add(t, &n, "output_norm.weight", K_NORM, p->type, dim, 1);
	add(t, &n, "output.weight", K_MATRIX, mix_type(p, "output.weight", 0), dim, p->n_vocab);
	*out = t;
	return (int)n;
}

/* Irwin-Hall: the sum of four 16-bit uniforms, centred and scaled to unit
 * variance (each uniform has variance 1/12).  Exact float arithmetic: the
 * same bits everywhere. */
static inline float normalish(struct st_rng *r)
{
	uint64_t v = st_rng_next(r);
	uint32_t s = (uint32_t)(v & 0xffff) + (uint32_t)((v >> 16) & 0xffff) +
		     (uint32_t)((v >> 32) & 0xffff) + (uint32_t)(v >> 48);
	/* s / 65536 - 2, times sqrt(3) */
	return ((float)s * (1.0f / 65536.0f) - 2.0f) * 1.7320508f;
}

void st_mkmodel_rows(const struct st_mkmodel_params *p, const struct st_mkmodel_tensor *t,
		     uint32_t idx, uint64_t row0, uint64_t nrows, float *out)
{
	float scale = t->kind == K_EMBD ? 1.0f :
		      t->kind == K_NORM ? 0.05f : (float)(1.0 / sqrt((double)t->ne[0]));
	for (uint64_t r = 0; r < nrows; r++) {
		struct st_rng rng;
		float *o = out + r * t->ne[0];
		/* one stream per (seed, tensor, row) */
		st_rng_seed(&rng, p->seed ^ (((uint64_t)idx << 40) + row0 + r) * UINT64_C(0xd1342543de82ef95));
		for (uint64_t i = 0; i < t->ne[0]; i++)
			o[i] = normalish(&rng) * scale + (t->kind == K_NORM ? 1.0f : 0.0f);
	}
}

static uint32_t file_type(uint32_t type, uint32_t mix)
{
	if (mix == ST_MKMODEL_MIX_Q4_K_M)
		return 15;
	if (mix == ST_MKMODEL_MIX_Q5_K_M)
		return 17;
	switch (type) {     /* llama.cpp's LLAMA_FTYPE numbering (all-K files: the _S ftype) */
	case ST_TYPE_Q4_K: return 14;
	case ST_TYPE_Q5_K: return 16;
	case ST_TYPE_Q6_K: return 18;
	case ST_TYPE_F16: return 1;
	case ST_TYPE_Q4_0: return 2;
	case ST_TYPE_Q4_1: return 3;
	case ST_TYPE_Q5_0: return 8;
	case ST_TYPE_Q5_1: return 9;
	case ST_TYPE_Q8_0: return 7;
	case ST_TYPE_BF16: return 32;
	default: return 0;
	}
}

static int set_meta(struct st_gguf_writer *w, const struct st_mkmodel_params *p,
		    const struct vocab *v)
{
	char name[96];
	int rc = 0;
	snprintf(name, sizeof(name), "strata mkmodel %s %s seed %llu", p->shape,
		 p->mix == ST_MKMODEL_MIX_Q4_K_M ? "q4_K_M" : p->mix == ST_MKMODEL_MIX_Q5_K_M ? "q5_K_M" :
		 st_type_name(p->type), (unsigned long long)p->seed);
	rc = rc < 0 ? rc : st_gguf_writer_set_str(w, "general.architecture", "llama");
	rc = rc < 0 ? rc : st_gguf_writer_set_str(w, "general.name", name);
	rc = rc < 0 ? rc : st_gguf_writer_set_u32(w, "general.file_type", file_type(p->type, p->mix));
	rc = rc < 0 ? rc : st_gguf_writer_set_u32(w, "llama.vocab_size", p->n_vocab);
	rc = rc < 0 ? rc : st_gguf_writer_set_u32(w, "llama.context_length", p->n_ctx);
	rc = rc < 0 ? rc : st_gguf_writer_set_u32(w, "llama.embedding_length", p->n_embd);
	rc = rc < 0 ? rc : st_gguf_writer_set_u32(w, "llama.block_count", p->n_layer);
	rc = rc < 0 ? rc : st_gguf_writer_set_u32(w, "llama.feed_forward_length", p->n_ff);
	rc = rc < 0 ? rc : st_gguf_writer_set_u32(w, "llama.attention.head_count", p->n_head);
	rc = rc < 0 ? rc : st_gguf_writer_set_u32(w, "llama.attention.head_count_kv", p->n_head_kv);
	rc = rc < 0 ? rc : st_gguf_writer_set_u32(w, "llama.rope.dimension_count", p->n_embd / p->n_head);
	rc = rc < 0 ? rc : st_gguf_writer_set_f32(w, "llama.rope.freq_base", p->rope_theta);
	rc = rc < 0 ? rc : st_gguf_writer_set_f32(w, "llama.attention.layer_norm_rms_epsilon", p->rms_eps);
	rc = rc < 0 ? rc : st_gguf_writer_set_str(w, "tokenizer.ggml.model", "llama");
	rc = rc < 0 ? rc : st_gguf_writer_set_arr(w, "tokenizer.ggml.tokens", ST_GGUF_STRING,
						  (const void *)v->tokens, v->n);
	rc = rc < 0 ? rc : st_gguf_writer_set_arr(w, "tokenizer.ggml.scores", ST_GGUF_F32, v->scores, v->n);
	rc = rc < 0 ? rc : st_gguf_writer_set_arr(w, "tokenizer.ggml.token_type", ST_GGUF_I32,
						  v->types, v->n);
	rc = rc < 0 ? rc : st_gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", 1);
	rc = rc < 0 ? rc : st_gguf_writer_set_u32(w, "tokenizer.ggml.eos_token_id", 2);
	rc = rc < 0 ? rc : st_gguf_writer_set_u32(w, "tokenizer.ggml.unknown_token_id", 0);
	rc = rc < 0 ? rc : st_gguf_writer_set_bool(w, "tokenizer.ggml.add_bos_token", true);
	rc = rc < 0 ? rc : st_gguf_writer_set_bool(w, "tokenizer.ggml.add_eos_token", false);
	return rc;
}

/* Elements generated per chunk and thread (1 MiB of floats), and the most
 * threads: memory stays at a few MB whatever the model size. */
#define CHUNK_ELEMS (1u << 18)
#define MAX_THREADS 8

struct gen_job {
	const struct st_mkmodel_params *p;
	const struct st_mkmodel_tensor *t;
	uint32_t idx;
	uint64_t row0, nrows;
	float *fbuf;
	void *qbuf;
};

static void *gen_chunk(void *arg)
{
	struct gen_job *j = arg;
	st_mkmodel_rows(j->p, j->t, j->idx, j->row0, j->nrows, j->fbuf);
	st_type_traits(j->t->type)->from_float(j->fbuf, j->qbuf, (int64_t)(j->nrows * j->t->ne[0]));
	return NULL;
}

/* Generate a tensor in chunks, up to nth chunks at a time on threads (each
 * row depends only on (seed, tensor, row): the bytes are the same for any
 * thread count), and write them in order. */
static int write_tensor(struct st_gguf_writer *w, const struct st_mkmodel_params *p,
			const struct st_mkmodel_tensor *t, uint32_t idx, float **fbuf, void **qbuf,
			int nth, uint64_t *done, uint64_t total, st_mkmodel_progress_fn progress,
			void *user)
{
	const struct st_type_traits *tr = st_type_traits(t->type);
	uint64_t row_bytes = t->ne[0] / tr->block_size * tr->type_size;
	uint64_t rows_per = CHUNK_ELEMS / t->ne[0];
	if (!rows_per)
		rows_per = 1;
	for (uint64_t r = 0; r < t->ne[1]; r += rows_per * (uint64_t)nth) {
		struct gen_job jobs[MAX_THREADS];
		pthread_t tid[MAX_THREADS];
		bool started[MAX_THREADS] = { false };
		int nj = 0;
		for (int k = 0; k < nth && r + rows_per * (uint64_t)k < t->ne[1]; k++, nj++) {
			uint64_t r0 = r + rows_per * (uint64_t)k;
			jobs[k] = (struct gen_job){ p, t, idx, r0, ST_MIN(rows_per, t->ne[1] - r0), fbuf[k], qbuf[k] };
		}
		for (int k = 1; k < nj; k++)
			started[k] = pthread_create(&tid[k], NULL, gen_chunk, &jobs[k]) == 0;
		gen_chunk(&jobs[0]);
		for (int k = 1; k < nj; k++) {
			if (started[k])
				pthread_join(tid[k], NULL);
			else
				gen_chunk(&jobs[k]);          /* no thread: do it here */
		}
		for (int k = 0; k < nj; k++) {
			int rc = st_gguf_writer_write_data(w, qbuf[k], jobs[k].nrows * row_bytes);
			if (rc < 0)
				return rc;
			*done += jobs[k].nrows * row_bytes;
			if (progress)
				progress(*done, total, user);
		}
	}
	return 0;
}

int st_mkmodel_write(const struct st_mkmodel_params *p, const char *path,
		     st_mkmodel_progress_fn progress, void *user)
{
	struct st_mkmodel_tensor *t = NULL;
	struct st_gguf_writer *w = NULL;
	struct vocab v = { 0, NULL, NULL, NULL };
	float *fbuf[MAX_THREADS] = { NULL };
	void *qbuf[MAX_THREADS] = { NULL };
	FILE *f = NULL;
	uint64_t total = 0, done = 0, max_row = 0;
	size_t buf_elems;
	int n, rc, nth = (int)p->n_threads;

	n = st_mkmodel_tensors(p, &t);
	if (n < 0)
		return n;
	for (int i = 0; i < n; i++) {
		total += t[i].nbytes;
		max_row = ST_MAX(max_row, t[i].ne[0]);
	}
	if (nth <= 0) {
		long nc = sysconf(_SC_NPROCESSORS_ONLN);
		nth = nc > 0 ? (int)nc : 1;
	}
	nth = ST_MIN(nth, MAX_THREADS);
	buf_elems = ST_MAX((size_t)CHUNK_ELEMS, (size_t)max_row);
	for (int k = 0; k < nth; k++) {
		fbuf[k] = malloc(buf_elems * sizeof(float));
		qbuf[k] = malloc(buf_elems * sizeof(float));   /* every type fits in 4 bytes/element */
		if (!fbuf[k] || !qbuf[k]) {
			rc = st_error(-ENOMEM, "mkmodel: out of memory for the %zu-element buffers", buf_elems);
			goto out;
		}
	}
	rc = st_tokenizer_synth_spm(p->n_vocab, &v.tokens, &v.scores, &v.types);
	if (rc < 0)
		goto out;
	v.n = p->n_vocab;
	rc = st_gguf_writer_create(&w, 3, 32);
	if (rc < 0)
		goto out;
	rc = set_meta(w, p, &v);
	for (int i = 0; i < n && rc >= 0; i++)
		rc = st_gguf_writer_add_tensor(w, t[i].name, t[i].type, t[i].n_dims, t[i].ne);
	if (rc < 0)
		goto out;
	f = fopen(path, "wb");
	if (!f) {
		rc = st_error(-errno, "mkmodel: cannot create %s: %s", path, strerror(errno));
		goto out;
	}
	rc = st_gguf_writer_begin(w, f);
	for (int i = 0; i < n && rc >= 0; i++)
		rc = write_tensor(w, p, &t[i], (uint32_t)i, fbuf, qbuf, nth, &done, total, progress, user);
	if (rc >= 0)
		rc = st_gguf_writer_finish(w);
	if (fclose(f) != 0 && rc >= 0)
		rc = st_error(-EIO, "mkmodel: writing %s failed: %s", path, strerror(errno));
	f = NULL;
	if (rc < 0)
		unlink(path);
out:
	if (f) {
		fclose(f);
		unlink(path);
	}
	st_gguf_writer_destroy(w);
	if (v.tokens)
		st_tokenizer_synth_free(v.n, v.tokens, v.scores, v.types);
	for (int k = 0; k < MAX_THREADS; k++) {
		free(fbuf[k]);
		free(qbuf[k]);
	}
	free(t);
	return rc < 0 ? rc : 0;
}
