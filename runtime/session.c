/* session.c: the public session API (strata.h "model and session"): a
 * pipeline of stages (or the scalar reference pass) with its KV cache and
 * the logits of the last eval. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "cpu_kernels.h"
#include "cpu_kernels.h"
#include "forward_ref.h"
#include "model.h"
#include "stage.h"
#include "types.h"
#include "util.h"

#define MAX_STAGES 64

struct st_session {
	struct st_model *m;
	struct st_session_params p;
	uint32_t n_ctx, n_batch, pos;
	struct st_ref_state *ref;
	int n_stages;
	struct st_stage *stages[MAX_STAGES];
	struct st_stage_stats stats[MAX_STAGES];
	double t_embed, t_head;
	float *hidden;                 /* [n_batch][n_embd] */
	float *logits;                 /* [cap_rows][n_vocab] */
	size_t logits_cap;             /* rows */
	int n_logits;
	double *layer_times;           /* [n_layer], last eval */
};

void st_session_params_default(struct st_session_params *p)
{
	memset(p, 0, sizeof(*p));
	p->kv_type = ST_KV_F32;
}

/* One stage of "name[index]:first-last". */
struct stage_spec {
	const struct st_backend_ops *ops;
	int device;
	uint32_t first, last;
};

static int parse_stages(const char *spec, uint32_t n_layer, struct stage_spec *out, int *n_out)
{
	const char *p = spec;
	int n = 0;
	uint32_t next = 0;
	while (*p) {
		char name[32];
		size_t len = 0;
		unsigned long dev = 0, first, last;
		char *end;
		if (n >= MAX_STAGES)
			return st_error(-EINVAL, "stages '%s': more than %d stages", spec, MAX_STAGES);
		while (isalpha((unsigned char)p[len]) && len < sizeof(name) - 1)
			len++;
		memcpy(name, p, len);
		name[len] = 0;
		p += len;
		if (isdigit((unsigned char)*p)) {
			dev = strtoul(p, &end, 10);
			p = end;
		}
		if (!len || *p != ':' || !isdigit((unsigned char)p[1]))
			return st_error(-EINVAL, "stages '%s': expected BACKEND[INDEX]:FIRST-LAST at '%s'", spec, p);
		first = strtoul(p + 1, &end, 10);
		p = end;
		last = first;
		if (*p == '-') {
			if (!isdigit((unsigned char)p[1]))
				return st_error(-EINVAL, "stages '%s': bad layer range at '%s'", spec, p);
			last = strtoul(p + 1, &end, 10);
			p = end;
		}
		if (*p == ',' && p[1])
			p++;
		else if (*p)
			return st_error(-EINVAL, "stages '%s': unexpected '%c'", spec, *p);
		out[n].ops = st_backend_find(name);
		if (!out[n].ops)
			return st_error(-ENODEV, "stages '%s': no backend named '%s' in this build", spec, name);
		if (dev > 1024 || first != next || last < first || last >= n_layer)
			return st_error(-EINVAL, "stages '%s': stage %d covers layers %lu-%lu; stages must cover 0-%u in order",
					spec, n + 1, first, last, n_layer - 1);
		out[n].device = (int)dev;
		out[n].first = (uint32_t)first;
		out[n].last = (uint32_t)last;
		next = (uint32_t)last + 1;
		n++;
	}
	if (next != n_layer)
		return st_error(-EINVAL, "stages '%s' cover layers 0-%d of 0-%u", spec, (int)next - 1, n_layer - 1);
	*n_out = n;
	return 0;
}

void st_session_destroy(struct st_session *s)
{
	if (!s)
		return;
	st_ref_destroy(s->ref);
	for (int i = 0; i < s->n_stages; i++)
		st_stage_destroy(s->stages[i]);
	free(s->hidden);
	free(s->logits);
	free(s->layer_times);
	free(s);
}

int st_session_create(struct st_model *m, const struct st_session_params *params, struct st_session **out)
{
	const struct st_model_desc *d = &m->desc;
	struct st_session_params dp;
	struct st_session *s;
	int rc = 0;

	*out = NULL;
	if (!params) {
		st_session_params_default(&dp);
		params = &dp;
	}
	if (params->kv_type != ST_KV_F32 && params->kv_type != ST_KV_F16)
		return st_error(-EINVAL, "session: kv_type %u (0 = f32, 1 = f16)", params->kv_type);
	if (params->n_ctx > d->n_ctx_train)
		return st_error(-EINVAL, "session: n_ctx %u exceeds the model's context length %u", params->n_ctx,
				d->n_ctx_train);
	/* CPU kernels' thread pool (process-wide): 0 = one thread per core. */
	rc = st_cpu_kernels_set_threads((int)ST_MIN(params->n_threads, 1024u));
	if (rc)
		return rc;
	if (params->n_threads > 512)
		return st_error(-EINVAL, "session: n_threads %u (0 = all cores, at most 512)", params->n_threads);
	if (params->n_threads && (rc = st_cpu_kernels_set_threads((int)params->n_threads)) != 0)
		return rc;
	s = calloc(1, sizeof(*s));
	if (!s)
		return st_error(-ENOMEM, "session: out of memory");
	s->m = m;
	s->p = *params;
	s->p.stages = NULL;                 /* not kept: the caller owns the string */
	s->n_ctx = params->n_ctx ? params->n_ctx : ST_MIN(d->n_ctx_train, 2048u);
	s->n_batch = params->n_batch ? ST_MIN(params->n_batch, 4096u) : 256;
	s->n_batch = ST_MIN(s->n_batch, s->n_ctx);
	s->hidden = calloc((size_t)s->n_batch * d->n_embd, sizeof(float));
	s->layer_times = calloc(d->n_layer, sizeof(double));
	if (!s->hidden || !s->layer_times) {
		st_session_destroy(s);
		return st_error(-ENOMEM, "session: out of memory");
	}

	if (params->reference) {
		rc = st_ref_create(m, s->n_ctx, s->n_batch, params->kv_type == ST_KV_F16, &s->ref);
		if (!rc) {
			s->n_stages = 1;
			snprintf(s->stats[0].backend, sizeof(s->stats[0].backend), "ref");
			snprintf(s->stats[0].device, sizeof(s->stats[0].device), "scalar reference (forward_ref.c)");
			s->stats[0].last_layer = d->n_layer - 1;
			s->stats[0].weight_bytes = d->weight_bytes;
		}
	} else {
		struct stage_spec specs[MAX_STAGES];
		int n = 1;
		if (params->stages && *params->stages)
			rc = parse_stages(params->stages, d->n_layer, specs, &n);
		else
			specs[0] = (struct stage_spec){ &st_backend_cpu, 0, 0, d->n_layer - 1 };
		for (int i = 0; i < n && !rc; i++) {
			struct st_stage_params sp = {
				.backend = specs[i].ops, .device = specs[i].device,
				.first_layer = specs[i].first, .last_layer = specs[i].last,
				.embed = i == 0, .head = i == n - 1,
				.n_ctx = s->n_ctx, .max_tokens = s->n_batch,
				.kv_type = params->kv_type == ST_KV_F16 ? ST_TYPE_F16 : ST_TYPE_F32,
				.load = params->load_weights, .load_async = params->load_weights_async,
				.load_user = params->load_user, .load_device = params->load_device,
				.prefetch = params->prefetch_weights,
			};
			rc = st_stage_create(m, &sp, &s->stages[i]);
			if (rc)
				break;
			s->n_stages = i + 1;
			struct st_stage_stats *st = &s->stats[i];
			struct st_backend *be = st_stage_backend(s->stages[i]);
			snprintf(st->backend, sizeof(st->backend), "%s", be->ops->name);
			snprintf(st->device, sizeof(st->device), "%s", be->info.name);
			st->device_index = specs[i].device;
			st->first_layer = specs[i].first;
			st->last_layer = specs[i].last;
			st->weight_bytes = st_stage_weight_bytes(s->stages[i]);
			st->kv_bytes = st_stage_kv_bytes(s->stages[i]);
		}
	}
	if (rc) {
		st_session_destroy(s);
		return rc;
	}
	*out = s;
	return 0;
}

static int ensure_logits(struct st_session *s, size_t rows)
{
	const size_t vocab = s->m->desc.n_vocab;
	uint64_t bytes;
	float *p;
	if (rows <= s->logits_cap)
		return 0;
	if (st_mul_overflow_u64(rows, vocab * sizeof(float), &bytes) || bytes > SIZE_MAX)
		return st_error(-EOVERFLOW, "session: logits for %zu rows overflow", rows);
	p = realloc(s->logits, (size_t)bytes);
	if (!p)
		return st_error(-ENOMEM, "session: no memory for %zu rows of logits", rows);
	s->logits = p;
	s->logits_cap = rows;
	return 0;
}

/* One chunk of at most n_batch tokens through the stages. */
static int eval_stages(struct st_session *s, const int32_t *tokens, int n, float *logits, bool logits_all)
{
	const uint32_t dim = s->m->desc.n_embd;
	double t0 = st_time_now();
	int rc = st_stage_embed(s->stages[0], tokens, n, s->hidden);
	s->t_embed += st_time_now() - t0;
	for (int i = 0; i < s->n_stages && !rc; i++) {
		struct st_stage_stats *st = &s->stats[i];
		t0 = st_time_now();
		rc = st_stage_forward(s->stages[i], s->hidden, n, s->pos, s->hidden);
		st->seconds_last = st_time_now() - t0;
		st->seconds += st->seconds_last;
		st->n_runs++;
		st->n_tokens += (uint64_t)n;
		if (!rc && s->p.profile) {
			const struct st_stage_params *sp = st_stage_params(s->stages[i]);
			/* best effort: backends that do not time ops leave zeros */
			st_stage_layer_times(s->stages[i], s->layer_times + sp->first_layer,
					     (int)(sp->last_layer - sp->first_layer + 1));
		}
	}
	if (rc || !logits)
		return rc;
	t0 = st_time_now();
	if (logits_all)
		rc = st_stage_head(s->stages[s->n_stages - 1], s->hidden, n, logits);
	else
		rc = st_stage_head(s->stages[s->n_stages - 1], s->hidden + (size_t)(n - 1) * dim, 1, logits);
	s->t_head += st_time_now() - t0;
	return rc;
}

int st_session_eval(struct st_session *s, const int32_t *tokens, int n, bool logits_all)
{
	const struct st_model_desc *d = &s->m->desc;
	const uint32_t pos_start = s->pos;
	int rc;

	if (n <= 0 || !tokens)
		return st_error(-EINVAL, "eval: %d tokens (need at least 1)", n);
	if ((uint64_t)s->pos + (uint64_t)n > s->n_ctx)
		return st_error(-ENOSPC, "eval: %d tokens at position %u exceed the context of %u", n, s->pos, s->n_ctx);
	for (int i = 0; i < n; i++)
		if (tokens[i] < 0 || (uint32_t)tokens[i] >= d->n_vocab)
			return st_error(-EINVAL, "eval: token %d (index %d) is outside the vocabulary 0..%u", tokens[i], i,
					d->n_vocab - 1);
	rc = ensure_logits(s, logits_all ? (size_t)n : 1);
	if (rc)
		return rc;
	s->n_logits = 0;
	for (int off = 0; off < n;) {
		const int cn = ST_MIN((int)s->n_batch, n - off);
		const bool last = off + cn == n;
		float *lg = logits_all ? s->logits + (size_t)off * d->n_vocab : (last ? s->logits : NULL);
		if (s->ref) {
			const double t0 = st_time_now();
			rc = st_ref_forward(s->ref, tokens + off, cn, s->pos, lg, logits_all);
			s->stats[0].seconds_last = st_time_now() - t0;
			s->stats[0].seconds += s->stats[0].seconds_last;
			s->stats[0].n_runs++;
			s->stats[0].n_tokens += (uint64_t)cn;
		} else {
			rc = eval_stages(s, tokens + off, cn, lg, logits_all);
		}
		if (rc) {
			s->pos = pos_start;      /* cached rows past pos are ignored */
			return rc;
		}
		s->pos += (uint32_t)cn;
		off += cn;
	}
	s->n_logits = logits_all ? n : 1;
	return s->n_logits;
}

const float *st_session_logits(const struct st_session *s, int i)
{
	if (i < 0)
		i += s->n_logits;
	if (i < 0 || i >= s->n_logits) {
		st_error(-EINVAL, "logits: row %d of %d", i, s->n_logits);
		return NULL;
	}
	return s->logits + (size_t)i * s->m->desc.n_vocab;
}

uint32_t st_session_pos(const struct st_session *s)
{
	return s->pos;
}

uint32_t st_session_n_ctx(const struct st_session *s)
{
	return s->n_ctx;
}

void st_session_reset(struct st_session *s)
{
	s->pos = 0;
	s->n_logits = 0;
}

int st_session_truncate(struct st_session *s, uint32_t pos)
{
	if (pos > s->pos)
		return st_error(-EINVAL, "truncate: position %u is past the current %u", pos, s->pos);
	s->pos = pos;
	return 0;
}

int st_session_n_stages(const struct st_session *s)
{
	return s->n_stages;
}

int st_session_stage_stats(const struct st_session *s, int stage, struct st_stage_stats *out)
{
	if (stage < 0 || stage >= s->n_stages)
		return st_error(-EINVAL, "stage_stats: stage %d of %d", stage, s->n_stages);
	*out = s->stats[stage];
	return 0;
}

int st_session_head_times(const struct st_session *s, double *embed_seconds, double *head_seconds)
{
	if (embed_seconds)
		*embed_seconds = s->t_embed;
	if (head_seconds)
		*head_seconds = s->t_head;
	return 0;
}

int st_session_layer_times(const struct st_session *s, double *seconds, int n_layer)
{
	const int nl = (int)s->m->desc.n_layer;
	if (!s->p.profile || s->ref)
		return st_error(-ENOTSUP, "layer_times: create the session with profile = true (and not reference)");
	if (n_layer < nl)
		return st_error(-EINVAL, "layer_times: room for %d of %d layers", n_layer, nl);
	memcpy(seconds, s->layer_times, (size_t)nl * sizeof(double));
	return nl;
}

void st_session_stats_reset(struct st_session *s)
{
	for (int i = 0; i < s->n_stages; i++) {
		s->stats[i].n_runs = s->stats[i].n_tokens = 0;
		s->stats[i].seconds = s->stats[i].seconds_last = 0;
	}
	s->t_embed = s->t_head = 0;
}
