/* threadpool.h: persistent worker threads for the CPU kernels.
 *
 * A pool of n threads counts the caller as thread 0; n-1 workers are
 * created once and live until the pool is destroyed.  st_threadpool_run()
 * hands the same task to every thread (fn(arg, ith, nth)), runs share 0 on
 * the caller and returns when all shares are done.  Work is split by the
 * task itself (st_threadpool_split: contiguous ranges by row), so which
 * thread computes an output depends only on (ith, nth) and results are
 * bit-identical for any thread count when each output is computed by one
 * thread.
 *
 * st_threadpool_run_dynamic() is for tasks that claim their work in chunks
 * (st_tp_chunks): the caller runs fn, and so does every worker that picks
 * the run up before the caller has finished its own call; workers that
 * come later skip it.  A worker the OS has descheduled (other jobs on a
 * shared machine) then never holds a step up: the others take its chunks.
 *
 * Idle workers spin for a bounded time (a decode step issues many small
 * tasks back to back: sleeping between them would cost a futex wake-up each),
 * yielding the core after the first microseconds so a descheduled thread
 * can run, and then sleep on a futex: an idle pool burns no CPU. */
#ifndef ST_THREADPOOL_H
#define ST_THREADPOOL_H

#include <stdatomic.h>
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
/* Run fn on the caller (ith 0) and on the workers that join in time (see
 * above), each at most once, and wait for those that joined.  fn must take
 * its work from a shared distributor until none is left. */
void st_threadpool_run_dynamic(struct st_threadpool *tp, st_task_fn fn, void *arg);
/* Share ith of [0, n) in units of `align` items: [*begin, *end). */
void st_threadpool_split(int64_t n, int64_t align, int ith, int nth, int64_t *begin, int64_t *end);

/* Work distributor for dynamic runs: chunks 0..n-1 are cut into one
 * contiguous share per thread (at most ST_TP_PARTS shares; thread ith owns
 * share ith % n_parts).  A thread takes its own share's chunks front to
 * back with an uncontended atomic, then takes the remaining chunks of the
 * other shares.  Every chunk is handed out exactly once. */
#define ST_TP_PARTS 8
struct st_tp_chunks {
	struct {
		_Alignas(64) _Atomic int64_t next;
		int64_t end;
	} part[ST_TP_PARTS];
	int n_parts;
};
void st_tp_chunks_init(struct st_tp_chunks *c, int64_t n_chunks, int nth);
/* The next chunk for thread ith, or -1 when every chunk is handed out. */
int64_t st_tp_chunks_next(struct st_tp_chunks *c, int ith);

#endif
