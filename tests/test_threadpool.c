/* test_threadpool.c: the persistent thread pool: every share runs exactly
 * once per run, splits cover the range without overlap, many back-to-back
 * runs complete, and an idle pool sleeps (uses ~0 CPU over 200 ms).
 * Dynamic runs: every chunk of a st_tp_chunks is handed out exactly once
 * whichever threads join, a thread runs a task at most once per run, and
 * static and dynamic runs interleave. */
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "tap.h"
#include "threadpool.h"

struct count_task {
	_Atomic int calls[8];
	_Atomic int nth_seen;
	int64_t n;
	_Atomic int *cover;
};

static void count_fn(void *p, int ith, int nth)
{
	struct count_task *c = p;
	atomic_fetch_add(&c->calls[ith], 1);
	atomic_store(&c->nth_seen, nth);
	int64_t b, e;
	st_threadpool_split(c->n, 4, ith, nth, &b, &e);
	for (int64_t i = b; i < e; i++)
		atomic_fetch_add(&c->cover[i], 1);
}

static double cpu_seconds(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1e-6;
}

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts))
		;
}

/* CPU seconds this process uses over 200 ms of idling (after 50 ms for
 * the workers' spin window to run out). */
static double idle_cpu(void)
{
	sleep_ms(50);
	double c0 = cpu_seconds();
	sleep_ms(200);
	return cpu_seconds() - c0;
}

struct dyn_task {
	struct st_tp_chunks ch;
	_Atomic int *cover;
	_Atomic int calls[8];
	_Atomic int twice;       /* a thread called twice in one run */
	int seen[8];             /* run index each thread last ran */
	int run;
	int slow_ith;            /* this thread dawdles on its first chunk */
};

static void sleep_us(long us)
{
	struct timespec ts = { 0, us * 1000 };
	while (nanosleep(&ts, &ts))
		;
}

static void dyn_fn(void *p, int ith, int nth)
{
	struct dyn_task *d = p;
	(void)nth;
	if (d->seen[ith] == d->run)
		atomic_fetch_add(&d->twice, 1);
	d->seen[ith] = d->run;
	atomic_fetch_add(&d->calls[ith], 1);
	bool first = true;
	for (int64_t c; (c = st_tp_chunks_next(&d->ch, ith)) >= 0;) {
		if (first && ith == d->slow_ith)
			sleep_us(200);
		first = false;
		atomic_fetch_add(&d->cover[c], 1);
	}
}

static void dynamic_runs(int n)
{
	struct st_threadpool *tp;
	if (st_threadpool_create(n, &tp)) {
		ok(0, "create %d threads", n);
		return;
	}
	struct dyn_task *d = calloc(1, sizeof(*d));
	struct count_task c;
	memset(&c, 0, sizeof(c));
	c.n = 97;
	c.cover = calloc((size_t)c.n, sizeof(*c.cover));
	const int64_t sizes[] = { 0, 1, 2, 3, 7, 64, 1000 };
	const int runs = 300;
	int bad = 0, bad_static = 0;
	d->cover = calloc(1000, sizeof(*d->cover));
	for (int i = 0; i < 8; i++)
		d->seen[i] = -1;
	for (int r = 0; r < runs; r++) {
		const int64_t nc = sizes[r % 7];
		memset((void *)d->cover, 0, 1000 * sizeof(*d->cover));
		st_tp_chunks_init(&d->ch, nc, n);
		d->run = r;
		d->slow_ith = r % 10 == 0 ? r / 10 % n : -1;
		st_threadpool_run_dynamic(tp, dyn_fn, d);
		for (int64_t i = 0; i < nc; i++)
			bad += d->cover[i] != 1;
		bad += d->seen[0] != r;   /* the caller always runs */
		if (r % 3 == 0) {        /* a static run in between */
			int before = c.calls[0];
			st_threadpool_run(tp, count_fn, &c);
			bad_static += c.calls[0] != before + 1;
		}
	}
	int joined = 0;
	for (int i = 1; i < n; i++)
		joined += d->calls[i];
	ok(bad == 0 && d->twice == 0 && d->calls[0] == runs,
	   "%d threads: %d dynamic runs of 0-1000 chunks: each chunk once, each thread at most once per run (workers joined %d times)",
	   n, runs, joined);
	ok(bad_static == 0 && c.nth_seen == n, "%d threads: static runs interleaved with dynamic ones", n);
	if (n == 3) {
		double used = idle_cpu();
		ok(used < 0.02, "idle pool of 3 threads after dynamic runs used %.4f s CPU over 200 ms (< 0.02)", used);
	}
	free((void *)d->cover);
	free(d);
	free(c.cover);
	st_threadpool_destroy(tp);
}

int main(void)
{
	for (int n = 1; n <= 4; n++) {
		struct st_threadpool *tp;
		if (st_threadpool_create(n, &tp)) {
			ok(0, "create %d threads", n);
			continue;
		}
		struct count_task c;
		memset(&c, 0, sizeof(c));
		c.n = 1003;
		c.cover = calloc((size_t)c.n, sizeof(*c.cover));
		const int runs = 500;
		for (int r = 0; r < runs; r++)
			st_threadpool_run(tp, count_fn, &c);
		int bad = 0;
		for (int i = 0; i < n; i++)
			bad += c.calls[i] != runs;
		for (int64_t i = 0; i < c.n; i++)
			bad += c.cover[i] != runs;
		ok(bad == 0 && c.nth_seen == n && st_threadpool_n_threads(tp) == n,
		   "%d threads: %d runs, each share once per run, split covers 0..%lld exactly once", n, runs,
		   (long long)c.n);
		if (n == 3) {
			/* idle: workers must be asleep, not spinning */
			double used = idle_cpu();
			ok(used < 0.02, "idle pool of 3 threads used %.4f s CPU over 200 ms (< 0.02)", used);
			/* and still works after sleeping */
			st_threadpool_run(tp, count_fn, &c);
			ok(c.calls[0] == runs + 1 && c.calls[2] == runs + 1, "runs again after sleeping");
		}
		free(c.cover);
		st_threadpool_destroy(tp);
	}
	for (int n = 1; n <= 4; n++)
		dynamic_runs(n);
	/* chunk distributor on one thread: everything in order */
	struct st_tp_chunks ch;
	st_tp_chunks_init(&ch, 10, 3);
	int64_t seq[12], got = 0;
	for (int64_t i; got < 12 && (i = st_tp_chunks_next(&ch, 1)) >= 0;)
		seq[got++] = i;
	ok(got == 10 && seq[0] == 4 && seq[2] == 6 && seq[3] == 7 && seq[6] == 0 && seq[9] == 3,
	   "chunks 0..9 over 3 shares, taken by thread 1: its own share 4-6 first, then 7-9, then 0-3");
	st_tp_chunks_init(&ch, 5, 100);
	ok(ch.n_parts == ST_TP_PARTS, "more threads than shares: %d shares", ch.n_parts);
	/* split edge cases */
	int64_t b, e;
	st_threadpool_split(3, 4, 1, 2, &b, &e);
	ok(b == 3 && e == 3, "split of 3 items in units of 4: second thread gets nothing");
	st_threadpool_split(0, 1, 0, 3, &b, &e);
	ok(b == 0 && e == 0, "split of nothing");
	ok(st_threadpool_n_threads(NULL) == 1, "NULL pool runs inline");
	return tap_done();
}
