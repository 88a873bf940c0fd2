/* weights.c: st_session_params.load_weights / load_weights_async through
 * the span loader. */
#include "weights.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

/* stages loading in the background add their totals from their threads */
static pthread_mutex_t stats_mu = PTHREAD_MUTEX_INITIALIZER;

static int publish(void *user, uint64_t mark)
{
	return st_weight_ready_publish(user, mark);
}

static int load(struct st_ioring_weights *w, const struct st_weight_span *spans, int n,
		struct st_weight_ready *ready)
{
	struct st_load_span *ls;
	struct st_load_stats st;
	struct st_load_opts o;
	int ret;

	if (!w || !w->path)
		return st_error(-EINVAL, "ioring weights: no model path");
	if (n < 0 || (n > 0 && !spans))
		return st_error(-EINVAL, "ioring weights: %d spans", n);
	ret = st_ioring_upload_weights(w, spans, n);     /* spans into device buffers (upload.c) */
	if (ret < 0)
		return ret;
	ls = calloc(n ? (size_t)n : 1, sizeof *ls);
	if (!ls)
		return st_error(-ENOMEM, "ioring weights: out of memory for %d spans", n);
	size_t m = 0;
	for (int i = 0; i < n; i++)
		if (spans[i].dst || !spans[i].buf)
			ls[m++] = (struct st_load_span){ .file_offset = spans[i].file_offset, .nbytes = spans[i].nbytes,
							 .dst = spans[i].dst, .dst_size = spans[i].nbytes,
							 .name = spans[i].name };
	if (m == 0 && n > 0) {
		free(ls);
		return 0;
	}
	o = w->opts;
	o.on_ready = ready ? publish : NULL;
	o.ready_user = ready;
	ret = st_load_spans(w->path, ls, m, &o, &st);
	free(ls);
	if (ret < 0)
		return ret;
	pthread_mutex_lock(&stats_mu);
	w->stats.mode = st.mode;
	w->stats.direct = st.direct;
	w->stats.fixed_buffers = st.fixed_buffers;
	w->stats.fixed_dest = st.fixed_dest;
	w->stats.bytes_spans += st.bytes_spans;
	w->stats.bytes_read += st.bytes_read;
	w->stats.bytes_direct += st.bytes_direct;
	w->stats.bytes_copied += st.bytes_copied;
	w->stats.bytes_fixed += st.bytes_fixed;
	w->stats.n_reads += st.n_reads;
	w->stats.n_short += st.n_short;
	w->stats.n_retries += st.n_retries;
	w->stats.seconds += st.seconds;
	w->n_loads++;
	pthread_mutex_unlock(&stats_mu);
	return 0;
}

int st_ioring_load_weights(void *user, const struct st_weight_span *spans, int n)
{
	return load(user, spans, n, NULL);
}

int st_ioring_load_weights_async(void *user, const struct st_weight_span *spans, int n,
				 struct st_weight_ready *ready)
{
	return load(user, spans, n, ready);
}

static int prefetch_check(void *ready)
{
	return st_weight_ready_publish(ready, 0);
}

int st_ioring_prefetch_weights(void *user, const struct st_weight_span *spans, int n,
			       struct st_weight_ready *ready)
{
	struct st_ioring_weights *w = user;
	struct st_prefetch_opts o;
	struct st_prefetch_stats st = { 0 };
	struct st_load_span *ls;
	uint64_t need = 0, grant;
	int ret = 0;

	if (!w || !w->path)
		return st_error(-EINVAL, "ioring prefetch: no model path");
	if (n < 0 || (n > 0 && !spans))
		return st_error(-EINVAL, "ioring prefetch: %d spans", n);
	ls = calloc(n ? (size_t)n : 1, sizeof *ls);
	if (!ls)
		return st_error(-ENOMEM, "ioring prefetch: out of memory for %d spans", n);
	for (int i = 0; i < n; i++) {
		ls[i] = (struct st_load_span){ .file_offset = spans[i].file_offset, .nbytes = spans[i].nbytes,
					       .name = spans[i].name };
		need += spans[i].nbytes + 2 * 4096;     /* page-rounded, at most */
	}
	/* one budget for the session's stages, which prefetch at the same time */
	pthread_mutex_lock(&stats_mu);
	if (!w->prefetch_budget_set) {
		w->prefetch_budget_left = w->prefetch.budget ? w->prefetch.budget : st_prefetch_default_budget();
		w->prefetch_budget_set = true;
	}
	grant = ST_MIN(need, w->prefetch_budget_left);
	w->prefetch_budget_left -= grant;
	pthread_mutex_unlock(&stats_mu);
	o = w->prefetch;
	o.budget = grant;
	o.check = ready ? prefetch_check : NULL;
	o.check_user = ready;
	if (grant)
		ret = st_prefetch_spans(w->path, ls, (size_t)n, &o, &st);
	else
		for (int i = 0; i < n; i++) {
			st.bytes_spans += spans[i].nbytes;
			st.bytes_skipped += spans[i].nbytes;
		}
	free(ls);
	pthread_mutex_lock(&stats_mu);
	w->prefetch_budget_left += grant - ST_MIN(grant, st.bytes_advised);
	w->prefetch_stats.uring |= st.uring;
	w->prefetch_stats.bytes_spans += st.bytes_spans;
	w->prefetch_stats.bytes_advised += st.bytes_advised;
	w->prefetch_stats.bytes_skipped += st.bytes_skipped;
	w->prefetch_stats.bytes_cached += st.bytes_cached;
	w->prefetch_stats.n_requests += st.n_requests;
	w->prefetch_stats.request = st.request;
	w->prefetch_stats.request_cap = st.request_cap;
	w->prefetch_stats.seconds += st.seconds;
	w->n_prefetches++;
	w->n_cached += st.cached;
	pthread_mutex_unlock(&stats_mu);
	return ret;
}
