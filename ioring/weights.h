/* weights.h: the span loader as a session's weight loader
 * (st_session_params.load_weights): each stage's tensors are read from the
 * model file with io_uring (or the configured path) straight into the
 * stage's weight buffer. */
#ifndef ST_IORING_WEIGHTS_H
#define ST_IORING_WEIGHTS_H

#include "loader.h"
#include "strata.h"

struct st_ioring_weights {
	const char *path;               /* the model file */
	struct st_load_opts opts;       /* io mode, queue depth, callbacks */
	/* filled in: totals over every stage loaded */
	struct st_load_stats stats;
	int n_loads;
};

/* st_weight_load_fn: user = struct st_ioring_weights *. */
int st_ioring_load_weights(void *user, const struct st_weight_span *spans, int n);

#endif
