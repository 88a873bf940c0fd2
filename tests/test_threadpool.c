/* test_threadpool.c: the persistent thread pool: every share runs exactly
 * once per run, splits cover the range without overlap, many back-to-back
 * runs complete, and an idle pool sleeps (uses ~0 CPU over 200 ms). */
#include <stdatomic.h>
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
			sleep_ms(50);
			double c0 = cpu_seconds();
			sleep_ms(200);
			double used = cpu_seconds() - c0;
			ok(used < 0.02, "idle pool of 3 threads used %.4f s CPU over 200 ms (< 0.02)", used);
			/* and still works after sleeping */
			st_threadpool_run(tp, count_fn, &c);
			ok(c.calls[0] == runs + 1 && c.calls[2] == runs + 1, "runs again after sleeping");
		}
		free(c.cover);
		st_threadpool_destroy(tp);
	}
	/* split edge cases */
	int64_t b, e;
	st_threadpool_split(3, 4, 1, 2, &b, &e);
	ok(b == 3 && e == 3, "split of 3 items in units of 4: second thread gets nothing");
	st_threadpool_split(0, 1, 0, 3, &b, &e);
	ok(b == 0 && e == 0, "split of nothing");
	ok(st_threadpool_n_threads(NULL) == 1, "NULL pool runs inline");
	return tap_done();
}
