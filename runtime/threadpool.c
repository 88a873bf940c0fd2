/* threadpool.c: persistent workers woken by a generation counter; brief
 * spinning, then a futex sleep (Linux) so idle workers use no CPU. */
#include "threadpool.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>

#include "cpu_features.h"
#include "util.h"

#if defined(__linux__)
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

#if defined(__x86_64__) || defined(__i386__)
#define CPU_RELAX() __builtin_ia32_pause()
#elif defined(__aarch64__)
#define CPU_RELAX() __asm__ volatile("yield")
#else
#define CPU_RELAX() ((void)0)
#endif

/* Spin iterations before sleeping: roughly 50-100 microseconds (PAUSE is ~40-140 cycles), which covers
 * the gaps between the matmuls of one decode step. */
#define SPIN_ITERS 4000

struct worker {
	struct st_threadpool *tp;
	pthread_t thread;
	int ith;
};

struct st_threadpool {
	int n_threads;
	struct worker *workers;        /* n_threads - 1 */
	_Atomic uint32_t generation;   /* bumped once per run; futex word */
	_Atomic int32_t pending;       /* workers still running this run */
	_Atomic uint32_t done_gen;     /* futex word for the caller's wait */
	_Atomic int32_t sleepers;      /* workers asleep (or about to be) */
	_Atomic bool caller_sleeping;
	_Atomic bool stop;
	st_task_fn fn;
	void *arg;
};

#if defined(__linux__)
static void futex_wait(_Atomic uint32_t *addr, uint32_t val)
{
	syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAIT_PRIVATE, val, NULL, NULL, 0);
}
static void futex_wake_all(_Atomic uint32_t *addr)
{
	syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
}
#else
/* Portable fallback: sleep-poll (not used on Linux). */
#include <time.h>
static void futex_wait(_Atomic uint32_t *addr, uint32_t val)
{
	struct timespec ts = { 0, 100000 };
	if (atomic_load(addr) == val)
		nanosleep(&ts, NULL);
}
static void futex_wake_all(_Atomic uint32_t *addr) { (void)addr; }
#endif

void st_threadpool_split(int64_t n, int64_t align, int ith, int nth, int64_t *begin, int64_t *end)
{
	if (align < 1)
		align = 1;
	int64_t units = (n + align - 1) / align;
	int64_t per = units / nth, rem = units % nth;
	int64_t u0 = ith * per + (ith < rem ? ith : rem);
	int64_t u1 = u0 + per + (ith < rem ? 1 : 0);
	*begin = ST_MIN(n, u0 * align);
	*end = ST_MIN(n, u1 * align);
}

static void *worker_main(void *p)
{
	struct worker *w = p;
	struct st_threadpool *tp = w->tp;
	uint32_t seen = 0;
	for (;;) {
		uint32_t g;
		int spins = 0;
		while ((g = atomic_load_explicit(&tp->generation, memory_order_acquire)) == seen) {
			if (++spins < SPIN_ITERS) {
				CPU_RELAX();
				continue;
			}
			atomic_fetch_add(&tp->sleepers, 1);
			/* re-check after announcing ourselves, then sleep until the
			 * generation changes */
			if (atomic_load(&tp->generation) == seen)
				futex_wait(&tp->generation, seen);
			atomic_fetch_sub(&tp->sleepers, 1);
			spins = 0;
		}
		seen = g;
		if (atomic_load_explicit(&tp->stop, memory_order_acquire))
			return NULL;
		tp->fn(tp->arg, w->ith, tp->n_threads);
		if (atomic_fetch_sub_explicit(&tp->pending, 1, memory_order_acq_rel) == 1) {
			atomic_fetch_add(&tp->done_gen, 1);
			if (atomic_load(&tp->caller_sleeping))
				futex_wake_all(&tp->done_gen);
		}
	}
}

int st_threadpool_create(int n_threads, struct st_threadpool **out)
{
	*out = NULL;
	if (n_threads <= 0)
		n_threads = st_cpu_count();
	if (n_threads > 512)
		return st_error(-EINVAL, "threadpool: %d threads requested, at most 512", n_threads);
	struct st_threadpool *tp = calloc(1, sizeof(*tp));
	if (!tp)
		return st_error(-ENOMEM, "threadpool: out of memory");
	tp->n_threads = n_threads;
	if (n_threads > 1) {
		tp->workers = calloc((size_t)n_threads - 1, sizeof(*tp->workers));
		if (!tp->workers) {
			free(tp);
			return st_error(-ENOMEM, "threadpool: out of memory");
		}
	}
	for (int i = 0; i < n_threads - 1; i++) {
		tp->workers[i].tp = tp;
		tp->workers[i].ith = i + 1;
		int rc = pthread_create(&tp->workers[i].thread, NULL, worker_main, &tp->workers[i]);
		if (rc) {
			tp->n_threads = i + 1;   /* destroy joins the ones started */
			st_threadpool_destroy(tp);
			return st_error(-rc, "threadpool: pthread_create failed for worker %d of %d", i + 1, n_threads);
		}
	}
	*out = tp;
	return 0;
}

void st_threadpool_destroy(struct st_threadpool *tp)
{
	if (!tp)
		return;
	atomic_store(&tp->stop, true);
	atomic_fetch_add_explicit(&tp->generation, 1, memory_order_release);
	futex_wake_all(&tp->generation);
	for (int i = 0; i < tp->n_threads - 1; i++)
		pthread_join(tp->workers[i].thread, NULL);
	free(tp->workers);
	free(tp);
}

int st_threadpool_n_threads(const struct st_threadpool *tp)
{
	return tp ? tp->n_threads : 1;
}

void st_threadpool_run(struct st_threadpool *tp, st_task_fn fn, void *arg)
{
	if (!tp || tp->n_threads == 1) {
		fn(arg, 0, 1);
		return;
	}
	tp->fn = fn;
	tp->arg = arg;
	atomic_store_explicit(&tp->pending, tp->n_threads - 1, memory_order_relaxed);
	uint32_t done = atomic_load_explicit(&tp->done_gen, memory_order_relaxed);
	atomic_fetch_add(&tp->generation, 1);   /* seq_cst: pairs with sleepers */
	if (atomic_load(&tp->sleepers) > 0)
		futex_wake_all(&tp->generation);
	fn(arg, 0, tp->n_threads);
	int spins = 0;
	while (atomic_load_explicit(&tp->done_gen, memory_order_acquire) == done) {
		if (++spins < SPIN_ITERS) {
			CPU_RELAX();
			continue;
		}
		atomic_store(&tp->caller_sleeping, true);
		if (atomic_load(&tp->done_gen) == done)
			futex_wait(&tp->done_gen, done);
		atomic_store(&tp->caller_sleeping, false);
		spins = 0;
	}
}
