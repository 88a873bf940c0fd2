/* weights.c: st_session_params.load_weights through the span loader. */
#include "weights.h"

#include <stdlib.h>
#include <string.h>

#include "util.h"

int st_ioring_load_weights(void *user, const struct st_weight_span *spans, int n)
{
	struct st_ioring_weights *w = user;
	struct st_load_span *ls;
	struct st_load_stats st;
	int ret;

	if (!w || !w->path)
		return st_error(-EINVAL, "ioring weights: no model path");
	if (n < 0 || (n > 0 && !spans))
		return st_error(-EINVAL, "ioring weights: %d spans", n);
	ls = calloc(n ? (size_t)n : 1, sizeof *ls);
	if (!ls)
		return st_error(-ENOMEM, "ioring weights: out of memory for %d spans", n);
	for (int i = 0; i < n; i++)
		ls[i] = (struct st_load_span){ .file_offset = spans[i].file_offset, .nbytes = spans[i].nbytes,
					       .dst = spans[i].dst, .dst_size = spans[i].nbytes,
					       .name = spans[i].name };
	ret = st_load_spans(w->path, ls, (size_t)n, &w->opts, &st);
	free(ls);
	if (ret < 0)
		return ret;
	w->stats.mode = st.mode;
	w->stats.direct = st.direct;
	w->stats.fixed_buffers = st.fixed_buffers;
	w->stats.bytes_spans += st.bytes_spans;
	w->stats.bytes_read += st.bytes_read;
	w->stats.bytes_direct += st.bytes_direct;
	w->stats.bytes_copied += st.bytes_copied;
	w->stats.n_reads += st.n_reads;
	w->stats.n_short += st.n_short;
	w->stats.n_retries += st.n_retries;
	w->stats.seconds += st.seconds;
	w->n_loads++;
	return 0;
}
