/* weights.h: the span loader as a session's weight loader: each stage's
 * tensors are read from the model file with io_uring (or the configured
 * path) straight into the stage's weight buffer.
 *
 *   st_session_params.load_weights = st_ioring_load_weights: every stage
 *     loads before st_session_create returns.
 *   st_session_params.load_weights_async = st_ioring_load_weights_async:
 *     CPU stages load in the background and their first evaluation runs
 *     each layer as soon as its bytes are in (strata.h
 *     st_weight_load_async_fn); the loader's watermark (loader.h on_ready)
 *     is what the stage waits on.  With ST_LOAD_VERIFY there is no
 *     watermark: the stage waits for the whole checked load.
 *
 * CPU stages lay their weight buffer out with each tensor at its file
 * offset's phase modulo 4 KiB in page-aligned memory, so O_DIRECT reads
 * land in place (stats.bytes_copied counts what still went through
 * staging: the unaligned head and tail of each contiguous run). */
#ifndef ST_IORING_WEIGHTS_H
#define ST_IORING_WEIGHTS_H

#include "loader.h"
#include "prefetch.h"
#include "upload.h"
#include "strata.h"

struct st_ioring_weights {
	const char *path;               /* the model file */
	struct st_load_opts opts;       /* io mode, queue depth, callbacks (on_ready
					 * and ready_user are the async hook's own) */
	/* filled in: totals over every stage loaded (stages loading in the
	 * background add theirs when they finish; read after the first eval) */
	struct st_load_stats stats;
	int n_loads;
	/* stages with device-local weights (st_session_params.load_device):
	 * streamed uploads, upload.h; totals over those stages */
	struct st_upload_opts upload;
	struct st_upload_stats upload_stats;
	/* read-ahead of the mapped file (st_ioring_prefetch_weights): options
	 * (check/check_user are its own; budget 0 = st_prefetch_default_budget(),
	 * taken once and shared by the stages, each reserving what its spans
	 * need) and totals over the stages, added as each stage's requests are
	 * all issued (uring: any stage used io_uring; n_cached: stages whose
	 * pages were all cached already) */
	struct st_prefetch_opts prefetch;
	struct st_prefetch_stats prefetch_stats;
	int n_prefetches, n_cached;
	uint64_t prefetch_budget_left;
	bool prefetch_budget_set;
};

/* st_weight_load_fn: user = struct st_ioring_weights *. */
int st_ioring_load_weights(void *user, const struct st_weight_span *spans, int n);
/* st_weight_load_async_fn: the same, publishing the watermark to ready. */
int st_ioring_load_weights_async(void *user, const struct st_weight_span *spans, int n,
				 struct st_weight_ready *ready);

/* st_session_params.prefetch_weights (st_weight_load_async_fn): the
 * stage's spans of the mapped file are requested into the page cache with
 * io_uring readahead (prefetch.h), in the order given; stops when the
 * session cancels it.  user = struct st_ioring_weights *. */
int st_ioring_prefetch_weights(void *user, const struct st_weight_span *spans, int n,
			       struct st_weight_ready *ready);

/* upload.c: the spans with dst NULL (device buffers) of a load, streamed
 * with st_ioring_upload (the others are left to the caller). */
int st_ioring_upload_weights(struct st_ioring_weights *w, const struct st_weight_span *spans, int n);

#endif
