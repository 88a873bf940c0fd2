/* threadpool.c: persistent workers woken by a generation counter; a bounded
 * spin (PAUSE, then sched_yield), then a futex sleep (Linux), so idle
 * workers use no CPU. */
#include "threadpool.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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

/* Waiting: PAUSE for the first SPIN_PAUSE_NS (the gaps between the tasks of
 * one decode step are a few microseconds: a norm, an activation
 * quantization), then sched_yield until SPIN_NS (the gap between two
 * tokens: output head, sampling; yielding lets another runnable thread,
 * ours or not, have the core meanwhile), then sleep on the futex. */
#define SPIN_PAUSE_NS 50000
#define SPIN_NS 2000000

/* run word of a run: generation << 32 | flags | number of joined workers */
#define RUN_DYNAMIC (1ull << 31)
#define RUN_CLOSED (1ull << 30)
#define RUN_COUNT ((1ull << 30) - 1)

struct worker {
	struct st_threadpool *tp;
	pthread_t thread;
	int ith;
};

struct st_threadpool {
	int n_threads;
	struct worker *workers;        /* n_threads - 1 */
	/* written by the caller once per run, read by the workers */
	_Alignas(64) _Atomic uint32_t generation;   /* bumped once per run; futex word */
	_Atomic uint64_t run;          /* see RUN_* */
	st_task_fn fn;
	void *arg;
	_Atomic bool stop;
	/* written by the workers */
	_Alignas(64) _Atomic int32_t pending;       /* static runs: workers still running */
	_Atomic uint32_t done_gen;     /* futex word for the caller's wait */
	_Atomic int32_t sleepers;      /* workers asleep (or about to be) */
	_Atomic bool caller_sleeping;
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
static void futex_wait(_Atomic uint32_t *addr, uint32_t val)
{
	struct timespec ts = { 0, 100000 };
	if (atomic_load(addr) == val)
		nanosleep(&ts, NULL);
}
static void futex_wake_all(_Atomic uint32_t *addr) { (void)addr; }
#endif

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* One waiting episode: call spin_step() while the condition does not hold;
 * it returns false when the caller should go to sleep. */
struct spin {
	int n;
	bool yield;
	int64_t t0;
};

static bool spin_step(struct spin *s)
{
	if (++s->n < 256) {            /* the common case: a few microseconds */
		CPU_RELAX();
		return true;
	}
	if (s->n == 256)
		s->t0 = now_ns();
	else if ((s->n & 31) == 0 || s->yield) {
		int64_t dt = now_ns() - s->t0;
		if (dt > SPIN_NS)
			return false;
		s->yield = dt > SPIN_PAUSE_NS;
	}
	if (s->yield)
		sched_yield();
	else
		CPU_RELAX();
	return true;
}

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

void st_tp_chunks_init(struct st_tp_chunks *c, int64_t n_chunks, int nth)
{
	c->n_parts = nth < 1 ? 1 : nth > ST_TP_PARTS ? ST_TP_PARTS : nth;
	for (int p = 0; p < c->n_parts; p++) {
		int64_t b, e;
		st_threadpool_split(n_chunks, 1, p, c->n_parts, &b, &e);
		atomic_init(&c->part[p].next, b);
		c->part[p].end = e;
	}
}

int64_t st_tp_chunks_next(struct st_tp_chunks *c, int ith)
{
	const int np = c->n_parts, own = ith % np;
	for (int k = 0; k < np; k++) {
		const int p = (own + k) % np;
		if (atomic_load_explicit(&c->part[p].next, memory_order_relaxed) >= c->part[p].end)
			continue;
		const int64_t i = atomic_fetch_add_explicit(&c->part[p].next, 1, memory_order_relaxed);
		if (i < c->part[p].end)
			return i;
	}
	return -1;
}

/* A worker finished its part of a run: the last one tells the caller. */
static void notify_caller(struct st_threadpool *tp)
{
	atomic_fetch_add(&tp->done_gen, 1);
	if (atomic_load(&tp->caller_sleeping))
		futex_wake_all(&tp->done_gen);
}

static void worker_run(struct st_threadpool *tp, struct worker *w, uint32_t g)
{
	uint64_t s = atomic_load(&tp->run);
	if ((uint32_t)(s >> 32) != g)
		return;                /* a dynamic run that ended before we looked */
	if (!(s & RUN_DYNAMIC)) {
		tp->fn(tp->arg, w->ith, tp->n_threads);
		if (atomic_fetch_sub_explicit(&tp->pending, 1, memory_order_acq_rel) == 1)
			notify_caller(tp);
		return;
	}
	/* join unless the caller has closed the run (its work is all handed out) */
	do {
		if ((uint32_t)(s >> 32) != g || (s & RUN_CLOSED))
			return;
	} while (!atomic_compare_exchange_weak(&tp->run, &s, s + 1));
	tp->fn(tp->arg, w->ith, tp->n_threads);
	s = atomic_fetch_sub(&tp->run, 1) - 1;
	if ((s & RUN_CLOSED) && (s & RUN_COUNT) == 0)
		notify_caller(tp);
}

static void *worker_main(void *p)
{
	struct worker *w = p;
	struct st_threadpool *tp = w->tp;
	uint32_t seen = 0;
	for (;;) {
		uint32_t g;
		struct spin sp = { 0 };
		while ((g = atomic_load_explicit(&tp->generation, memory_order_acquire)) == seen) {
			if (spin_step(&sp))
				continue;
			atomic_fetch_add(&tp->sleepers, 1);
			/* re-check after announcing ourselves, then sleep until the
			 * generation changes */
			if (atomic_load(&tp->generation) == seen)
				futex_wait(&tp->generation, seen);
			atomic_fetch_sub(&tp->sleepers, 1);
			sp = (struct spin){ 0 };
		}
		seen = g;
		if (atomic_load_explicit(&tp->stop, memory_order_acquire))
			return NULL;
		worker_run(tp, w, g);
	}
}

int st_threadpool_create(int n_threads, struct st_threadpool **out)
{
	*out = NULL;
	if (n_threads <= 0)
		n_threads = st_cpu_count();
	if (n_threads > 512)
		return st_error(-EINVAL, "threadpool: %d threads requested, at most 512", n_threads);
	struct st_threadpool *tp = aligned_alloc(64, (sizeof(*tp) + 63) & ~(size_t)63);
	if (!tp)
		return st_error(-ENOMEM, "threadpool: out of memory");
	memset(tp, 0, sizeof(*tp));
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

/* Publish a run and wake sleeping workers. */
static void start_run(struct st_threadpool *tp, st_task_fn fn, void *arg, bool dynamic)
{
	tp->fn = fn;
	tp->arg = arg;
	uint32_t g = atomic_load_explicit(&tp->generation, memory_order_relaxed) + 1;
	atomic_store(&tp->run, (uint64_t)g << 32 | (dynamic ? RUN_DYNAMIC : 0));
	atomic_store(&tp->generation, g);   /* seq_cst: pairs with sleepers */
	if (atomic_load(&tp->sleepers) > 0)
		futex_wake_all(&tp->generation);
}

/* Wait until done() holds; the workers bump done_gen when it may. */
static void wait_done(struct st_threadpool *tp, bool (*done)(struct st_threadpool *))
{
	struct spin sp = { 0 };
	while (!done(tp)) {
		if (spin_step(&sp))
			continue;
		atomic_store(&tp->caller_sleeping, true);
		uint32_t d = atomic_load(&tp->done_gen);
		if (!done(tp))
			futex_wait(&tp->done_gen, d);
		atomic_store(&tp->caller_sleeping, false);
		sp = (struct spin){ 0 };
	}
}

static bool static_done(struct st_threadpool *tp)
{
	return atomic_load_explicit(&tp->pending, memory_order_acquire) == 0;
}

static bool dynamic_done(struct st_threadpool *tp)
{
	return (atomic_load_explicit(&tp->run, memory_order_acquire) & RUN_COUNT) == 0;
}

void st_threadpool_run(struct st_threadpool *tp, st_task_fn fn, void *arg)
{
	if (!tp || tp->n_threads == 1) {
		fn(arg, 0, 1);
		return;
	}
	atomic_store_explicit(&tp->pending, tp->n_threads - 1, memory_order_relaxed);
	start_run(tp, fn, arg, false);
	fn(arg, 0, tp->n_threads);
	wait_done(tp, static_done);
}

void st_threadpool_run_dynamic(struct st_threadpool *tp, st_task_fn fn, void *arg)
{
	if (!tp || tp->n_threads == 1) {
		fn(arg, 0, 1);
		return;
	}
	start_run(tp, fn, arg, true);
	fn(arg, 0, tp->n_threads);
	/* every chunk is handed out: no worker may join from now on */
	if ((atomic_fetch_or(&tp->run, RUN_CLOSED) & RUN_COUNT) != 0)
		wait_done(tp, dynamic_done);
}
