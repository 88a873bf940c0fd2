/* threadpool.h: persistent worker threads for the CPU kernels.
 *
 * A pool of n threads counts the caller as thread 0; n-1 workers are
 * created once and live until the pool is destroyed.  st_threadpool_run()
 * hands the same task to every thread (fn(arg, ith, nth)), runs share 0 on
 * the caller and returns when all shares are done.  Work is split by the
 * task itself (st_threadpool_split: contiguous ranges by row), so which
 * thread computes an output depends only on (ith, nth) and results are
 * bit-identical for any thread count when each output is computed by one
 * thread.  Idle workers spin briefly (a decode step issues many small tasks
 * back to back) and then sleep on a futex: an idle pool burns no CPU. */
#ifndef ST_THREADPOOL_H
#define ST_THREADPOOL_H

#include <stdint.h>

struct st_threadpool;

typedef void (*st_task_fn)(void *arg, int ith, int nth);

/* n_threads <= 0 means one per online core.  Returns 0 or -errno. */
int st_threadpool_create(int n_threads, struct st_threadpool **out);
void st_threadpool_destroy(struct st_threadpool *tp);
int st_threadpool_n_threads(const struct st_threadpool *tp);
/* Run fn on every thread and wait.  tp may be NULL (runs fn(arg, 0, 1)).
 * Not reentrant: one run at a time per pool. */
void st_threadpool_run(struct st_threadpool *tp, st_task_fn fn, void *arg);
/* Share ith of [0, n) in units of `align` items: [*begin, *end). */
void st_threadpool_split(int64_t n, int64_t align, int ith, int nth, int64_t *begin, int64_t *end);

#endif
