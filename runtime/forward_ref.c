/* forward_ref.c: the llama forward pass in plain scalar C, straight from
 * the maths (see /work/shared/models/README.md "Maths"):
 *
 *   x = token_embd[token]
 *   for each layer:
 *     xb = rmsnorm(x) * attn_norm
 *     q = Wq xb, k = Wk xb, v = Wv xb           RoPE on q and k
 *     cache k, v at this position
 *     per query head h (KV head h / (n_head / n_head_kv)):
 *       att = softmax(q_h . k_h[0..pos] / sqrt(head_dim)); out_h = att . v_h
 *     x += Wo out
 *     xb = rmsnorm(x) * ffn_norm
 *     x += W2 (silu(W1 xb) * W3 xb)
 *   logits = Woutput (rmsnorm(x) * output_norm)
 *
 * Weights are used in place (pointers into the mapped file); each weight
 * row is dequantized with st_type_traits()->to_float as it is used.  All
 * sums are accumulated in double.  Nothing here is fast on purpose. */
#include "forward_ref.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "types.h"
#include "util.h"

struct st_ref_state {
	const struct st_model *m;
	uint32_t n_ctx, max_tokens;
	bool kv_f16;
	/* activations, max_tokens rows each */
	float *x;        /* [T][dim]   residual stream */
	float *xb;       /* [T][dim]   normed input of a sub-block */
	float *q;        /* [T][n_head*hd] */
	float *k, *v;    /* [T][n_kv*hd] */
	float *out;      /* [T][n_head*hd] attention output */
	float *xb2;      /* [T][dim]   output of Wo / W2 */
	float *hb, *hb2; /* [T][ff]    FFN hidden */
	/* scratch */
	float *row;      /* one dequantized weight row (max of all ne0) */
	float *nw;       /* one dequantized norm weight [dim] */
	double *att;     /* [n_ctx] attention scores */
	/* KV cache [layer][pos][n_kv*hd] */
	float *key_cache, *value_cache;
};

static void *alloc_floats(uint64_t n, size_t elem, int *rc)
{
	uint64_t bytes;
	void *p;
	if (*rc)
		return NULL;
	if (st_mul_overflow_u64(n ? n : 1, elem, &bytes) || bytes > SIZE_MAX) {
		*rc = st_error(-EOVERFLOW, "forward_ref: scratch of %llu elements overflows", (unsigned long long)n);
		return NULL;
	}
	p = calloc(1, (size_t)bytes);
	if (!p)
		*rc = st_error(-ENOMEM, "forward_ref: cannot allocate %llu bytes", (unsigned long long)bytes);
	return p;
}

void st_ref_destroy(struct st_ref_state *s)
{
	if (!s)
		return;
	free(s->x); free(s->xb); free(s->q); free(s->k); free(s->v); free(s->out); free(s->xb2);
	free(s->hb); free(s->hb2); free(s->row); free(s->nw); free(s->att);
	free(s->key_cache); free(s->value_cache);
	free(s);
}

int st_ref_create(const struct st_model *m, uint32_t n_ctx, uint32_t max_tokens, bool kv_f16,
		  struct st_ref_state **out)
{
	const struct st_model_desc *d = &m->desc;
	const uint64_t T = max_tokens, dim = d->n_embd, qd = (uint64_t)d->n_head * d->head_dim,
		       kvd = (uint64_t)d->n_head_kv * d->head_dim, ff = d->n_ff;
	uint64_t maxrow = ST_MAX(ST_MAX(dim, qd), ff), cache = 0;
	struct st_ref_state *s;
	int rc = 0;

	*out = NULL;
	if (n_ctx == 0 || max_tokens == 0)
		return st_error(-EINVAL, "forward_ref: n_ctx %u, max_tokens %u", n_ctx, max_tokens);
	s = calloc(1, sizeof(*s));
	if (!s)
		return st_error(-ENOMEM, "forward_ref: out of memory");
	s->m = m;
	s->n_ctx = n_ctx;
	s->max_tokens = max_tokens;
	s->kv_f16 = kv_f16;
	s->x = alloc_floats(T * dim, sizeof(float), &rc);
	s->xb = alloc_floats(T * dim, sizeof(float), &rc);
	s->xb2 = alloc_floats(T * dim, sizeof(float), &rc);
	s->q = alloc_floats(T * qd, sizeof(float), &rc);
	s->out = alloc_floats(T * qd, sizeof(float), &rc);
	s->k = alloc_floats(T * kvd, sizeof(float), &rc);
	s->v = alloc_floats(T * kvd, sizeof(float), &rc);
	s->hb = alloc_floats(T * ff, sizeof(float), &rc);
	s->hb2 = alloc_floats(T * ff, sizeof(float), &rc);
	s->row = alloc_floats(maxrow, sizeof(float), &rc);
	s->nw = alloc_floats(dim, sizeof(float), &rc);
	s->att = alloc_floats(n_ctx, sizeof(double), &rc);
	if (!rc && st_mul_overflow_u64((uint64_t)d->n_layer * n_ctx, kvd, &cache))
		rc = st_error(-EOVERFLOW, "forward_ref: KV cache size overflows");
	s->key_cache = alloc_floats(cache, sizeof(float), &rc);
	s->value_cache = alloc_floats(cache, sizeof(float), &rc);
	if (rc) {
		st_ref_destroy(s);
		return rc;
	}
	*out = s;
	return 0;
}

/* y[r] = sum_c W[r][c] x[c]: each row dequantized, then a dot product. */
static void matmul(float *y, const float *x, const struct st_weight *w, float *row)
{
	const struct st_type_traits *tr = st_type_traits(w->type);
	for (int64_t r = 0; r < w->ne1; r++) {
		double s = 0.0;
		tr->to_float((const char *)w->data + (size_t)r * w->nb1, row, w->ne0);
		for (int64_t c = 0; c < w->ne0; c++)
			s += (double)row[c] * x[c];
		y[r] = (float)s;
	}
}

/* o = x / sqrt(mean(x^2) + eps) * weight */
static void rmsnorm(float *o, const float *x, const float *weight, int64_t n, float eps)
{
	double ss = 0.0;
	for (int64_t i = 0; i < n; i++)
		ss += (double)x[i] * x[i];
	const double scale = 1.0 / sqrt(ss / (double)n + eps);
	for (int64_t i = 0; i < n; i++)
		o[i] = (float)(x[i] * scale) * weight[i];
}

/* Rotate adjacent pairs (2i, 2i+1) of the first rope_dim dims of each head
 * by pos * theta^(-2i/rope_dim). */
static void rope(float *v, uint32_t n_head, uint32_t hd, uint32_t rope_dim, float theta, uint32_t pos)
{
	for (uint32_t h = 0; h < n_head; h++)
		for (uint32_t i = 0; i < rope_dim / 2; i++) {
			const double freq = pow((double)theta, -2.0 * i / rope_dim);
			const double a = (double)pos * freq, c = cos(a), s = sin(a);
			float *p = v + (size_t)h * hd + 2 * i;
			const double x0 = p[0], x1 = p[1];
			p[0] = (float)(x0 * c - x1 * s);
			p[1] = (float)(x0 * s + x1 * c);
		}
}

static float kv_round(const struct st_ref_state *s, float f)
{
	return s->kv_f16 ? st_fp16_to_fp32(st_fp32_to_fp16(f)) : f;
}

int st_ref_forward(struct st_ref_state *s, const int32_t *tokens, int n, uint32_t pos0, float *logits,
		   bool logits_all)
{
	const struct st_model *m = s->m;
	const struct st_model_desc *d = &m->desc;
	const uint32_t dim = d->n_embd, hd = d->head_dim, nh = d->n_head, nkv = d->n_head_kv;
	const uint32_t qd = nh * hd, kvd = nkv * hd, ff = d->n_ff, group = nh / nkv;
	const struct st_type_traits *tr;

	if (n <= 0 || (uint32_t)n > s->max_tokens)
		return st_error(-EINVAL, "forward_ref: %d tokens (1..%u per call)", n, s->max_tokens);
	if ((uint64_t)pos0 + (uint64_t)n > s->n_ctx)
		return st_error(-ENOSPC, "forward_ref: positions %u..%u exceed the context of %u", pos0,
				pos0 + (uint32_t)n - 1, s->n_ctx);
	for (int t = 0; t < n; t++)
		if (tokens[t] < 0 || (uint32_t)tokens[t] >= d->n_vocab)
			return st_error(-EINVAL, "forward_ref: token %d at %d is outside the vocabulary 0..%u", tokens[t],
					t, d->n_vocab - 1);

	/* embedding: x[t] = token_embd[tokens[t]] */
	tr = st_type_traits(m->tok_embd.type);
	for (int t = 0; t < n; t++)
		tr->to_float((const char *)m->tok_embd.data + (size_t)tokens[t] * m->tok_embd.nb1, s->x + (size_t)t * dim,
			     dim);

	for (uint32_t l = 0; l < d->n_layer; l++) {
		const struct st_layer_weights *L = &m->layers[l];
		float *kc = s->key_cache + (size_t)l * s->n_ctx * kvd;
		float *vc = s->value_cache + (size_t)l * s->n_ctx * kvd;

		/* attention: q, k, v of every token of the batch; cache k, v */
		st_type_traits(L->attn_norm.type)->to_float(L->attn_norm.data, s->nw, dim);
		for (int t = 0; t < n; t++) {
			const uint32_t pos = pos0 + (uint32_t)t;
			float *q = s->q + (size_t)t * qd, *k = s->k + (size_t)t * kvd, *v = s->v + (size_t)t * kvd;
			rmsnorm(s->xb, s->x + (size_t)t * dim, s->nw, dim, d->rms_eps);
			matmul(q, s->xb, &L->wq, s->row);
			matmul(k, s->xb, &L->wk, s->row);
			matmul(v, s->xb, &L->wv, s->row);
			rope(q, nh, hd, d->rope_dim, d->rope_theta, pos);
			rope(k, nkv, hd, d->rope_dim, d->rope_theta, pos);
			for (uint32_t i = 0; i < kvd; i++) {
				kc[(size_t)pos * kvd + i] = kv_round(s, k[i]);
				vc[(size_t)pos * kvd + i] = kv_round(s, v[i]);
			}
		}
		/* causal attention of each token over positions 0..pos */
		for (int t = 0; t < n; t++) {
			const uint32_t pos = pos0 + (uint32_t)t;
			for (uint32_t h = 0; h < nh; h++) {
				const float *q = s->q + (size_t)t * qd + (size_t)h * hd;
				const size_t ko = (size_t)(h / group) * hd;
				float *o = s->out + (size_t)t * qd + (size_t)h * hd;
				double mx = -INFINITY, sum = 0.0;
				for (uint32_t j = 0; j <= pos; j++) {
					const float *k = kc + (size_t)j * kvd + ko;
					double dot = 0.0;
					for (uint32_t i = 0; i < hd; i++)
						dot += (double)q[i] * k[i];
					s->att[j] = dot / sqrt((double)hd);
					mx = s->att[j] > mx ? s->att[j] : mx;
				}
				for (uint32_t j = 0; j <= pos; j++) {
					s->att[j] = exp(s->att[j] - mx);
					sum += s->att[j];
				}
				for (uint32_t i = 0; i < hd; i++) {
					double acc = 0.0;
					for (uint32_t j = 0; j <= pos; j++)
						acc += s->att[j] * vc[(size_t)j * kvd + ko + i];
					o[i] = (float)(acc / sum);
				}
			}
		}
		/* x += Wo out; then the FFN: x += W2 (silu(W1 xb) * W3 xb) */
		st_type_traits(L->ffn_norm.type)->to_float(L->ffn_norm.data, s->nw, dim);
		for (int t = 0; t < n; t++) {
			float *x = s->x + (size_t)t * dim;
			float *hb = s->hb + (size_t)t * ff, *hb2 = s->hb2 + (size_t)t * ff;
			matmul(s->xb2, s->out + (size_t)t * qd, &L->wo, s->row);
			for (uint32_t i = 0; i < dim; i++)
				x[i] += s->xb2[i];
			rmsnorm(s->xb, x, s->nw, dim, d->rms_eps);
			matmul(hb, s->xb, &L->w1, s->row);
			matmul(hb2, s->xb, &L->w3, s->row);
			for (uint32_t i = 0; i < ff; i++) {
				const double g = hb[i];
				hb[i] = (float)(g / (1.0 + exp(-g))) * hb2[i];
			}
			matmul(s->xb2, hb, &L->w2, s->row);
			for (uint32_t i = 0; i < dim; i++)
				x[i] += s->xb2[i];
		}
	}

	/* head: logits = Woutput (rmsnorm(x) * output_norm) */
	if (logits) {
		st_type_traits(m->output_norm.type)->to_float(m->output_norm.data, s->nw, dim);
		for (int t = logits_all ? 0 : n - 1; t < n; t++) {
			float *dst = logits + (size_t)(logits_all ? t : 0) * d->n_vocab;
			rmsnorm(s->xb, s->x + (size_t)t * dim, s->nw, dim, d->rms_eps);
			matmul(dst, s->xb, &m->output, s->row);
		}
	}
	return 0;
}
