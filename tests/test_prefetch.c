/* test_prefetch.c: io_uring readahead of a stage's spans into the page
 * cache (ioring/prefetch.h) and the session's read-ahead of the mapped
 * file (st_session_params.prefetch_weights).
 *
 * Residency is checked independently with mincore (st_load_cached_fraction)
 * on a file whose pages were dropped first: after prefetching, every page
 * of the spans is in the page cache and the pages between and after them
 * are not (only the stage's bytes are read), through io_uring and through
 * the posix_fadvise fallback, including requests bigger than the kernel
 * reads for one piece of advice.  The request counts and byte totals are
 * recomputed here from the span list.  A budget stops early, a cancel
 * stops early, bad spans fail with a clear error.  Sessions with
 * read-ahead give logits bit-identical to plain mapped sessions on
 * stories260K, each stage asks for exactly its own spans, CPU stages use
 * the mapping even with a loader set, and a session destroyed at once
 * stops its read-ahead (no hang; ASan for leaks). */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "loader.h"
#include "model.h"
#include "prefetch.h"
#include "strata.h"
#include "tap.h"
#include "util.h"
#include "weights.h"

#define MiB (1024u * 1024u)
#define FILE_SIZE (48u * MiB + 1234u)   /* not a page multiple */
#define PAGE 4096u
/* bytes fetched from storage beyond the expected: the test's own page
 * faults (its code paged out by the VM's reclaim) */
#define SLACK (2u * MiB)

static char path[1200];
static bool can_drop;

static double cached(uint64_t off, uint64_t len)
{
	double f = -1;
	if (st_load_cached_fraction(path, off, len, &f) < 0)
		return -1;
	return f;
}

/* Pages of the file in the page cache, counting those whose read is still
 * in flight (cachestat(2), Linux 6.5; mincore counts only pages already
 * read, so an earlier check's read-ahead could land after a "drop");
 * -1 without cachestat. */
static long long cache_pages(void)
{
#if defined(__x86_64__) || defined(__aarch64__)
	struct {
		uint64_t off, len;
	} range = { 0, 0 };       /* len 0: to the end */
	struct {
		uint64_t nr_cache, nr_dirty, nr_writeback, nr_evicted, nr_recently_evicted;
	} cs;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	long rc = fd < 0 ? -1 : syscall(451, fd, &range, &cs, 0);
	if (fd >= 0)
		close(fd);
	if (rc == 0)
		return (long long)cs.nr_cache;
#endif
	return -1;
}

/* Drop the file's pages; true once none are left.  Pages whose read is
 * still in flight stay (DONTNEED skips them, and mincore does not count
 * them), so without cachestat the file is first read through, which waits
 * for them; it tries for up to 5 s. */
static bool drop(void)
{
	for (int i = 0; i < 500; i++) {
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		long long pages;
		if (fd < 0)
			return false;
		if (cache_pages() < 0) {
			static char buf[1 << 16];
			(void)posix_fadvise(fd, 0, 0, POSIX_FADV_RANDOM);     /* no read-ahead of its own */
			while (read(fd, buf, sizeof buf) > 0)
				;
		}
		(void)posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
		close(fd);
		pages = cache_pages();
		if (pages == 0 || (pages < 0 && cached(0, 0) < 0.01))
			return true;
		nanosleep(&(struct timespec){ 0, 10 * 1000 * 1000 }, NULL);
	}
	return false;
}

/* Bytes this process made the kernel fetch from storage (/proc/self/io
 * read_bytes), UINT64_MAX if unknown. */
static uint64_t storage_read(void)
{
	uint64_t v;
	return st_proc_field_u64("/proc/self/io", "read_bytes", &v) == 0 ? v : UINT64_MAX;
}

/* What was fetched since io0, once it reaches want or 10 s pass. */
static uint64_t read_since(uint64_t io0, uint64_t want)
{
	uint64_t d = 0;
	for (int i = 0; io0 != UINT64_MAX && i < 1000; i++) {
		d = storage_read() - io0;
		if (d >= want)
			break;
		nanosleep(&(struct timespec){ 0, 10 * 1000 * 1000 }, NULL);
	}
	return d;
}

static uint64_t pdown(uint64_t x)
{
	return x & ~(uint64_t)(PAGE - 1);
}

static uint64_t pup(uint64_t x)
{
	return (x + PAGE - 1) & ~(uint64_t)(PAGE - 1);
}

/* Two runs: A (one span) and B+C (adjacent spans, one run), given C first
 * to check that the order given is kept and adjacency still merges. */
static struct st_load_span spans[3];

static void setup_spans(void)
{
	spans[0] = (struct st_load_span){ .file_offset = 1 * MiB + 100, .nbytes = 3 * MiB, .name = "A" };
	spans[1] = (struct st_load_span){ .file_offset = 20 * MiB + 7, .nbytes = 12 * MiB + 3, .name = "B" };
	spans[2] = (struct st_load_span){ .file_offset = 32 * MiB + 10, .nbytes = 6 * MiB, .name = "C" };
}

static uint64_t ceil_div(uint64_t a, uint64_t b)
{
	return (a + b - 1) / b;
}

static void check_residency(const char *what, const struct st_prefetch_opts *o)
{
	struct st_prefetch_stats st;
	const uint64_t ax = pdown(spans[0].file_offset), ay = pup(spans[0].file_offset + spans[0].nbytes);
	const uint64_t bx = pdown(spans[1].file_offset), by = pup(spans[2].file_offset + spans[2].nbytes);
	int r;
	bool dropped = drop() && can_drop;
	const uint64_t io0 = storage_read();
	r = st_prefetch_spans(path, spans, 3, o, &st);
	ok(r == 0, "%s: prefetch returns 0 (%s)", what, r ? st_last_error() : "ok");
	ok(st.bytes_spans == spans[0].nbytes + spans[1].nbytes + spans[2].nbytes, "%s: bytes_spans %llu", what,
	   (unsigned long long)st.bytes_spans);
	if (!dropped) {
		for (int i = 0; i < 4; i++)
			tap_skip("the page cache of %s cannot be dropped here", path);
		return;
	}
	ok(!st.cached && st.bytes_advised == (ay - ax) + (by - bx),
	   "%s: advised the page-rounded runs only: %llu == %llu", what, (unsigned long long)st.bytes_advised,
	   (unsigned long long)((ay - ax) + (by - bx)));
	ok(st.request > 0 && st.request <= st.request_cap && st.request % PAGE == 0 &&
		   st.n_requests == ceil_div(ay - ax, st.request) + ceil_div(by - bx, st.request),
	   "%s: %llu requests of %llu bytes (kernel cap %llu)", what, (unsigned long long)st.n_requests,
	   (unsigned long long)st.request, (unsigned long long)st.request_cap);
	{
		/* the bytes fetched from storage meanwhile (/proc/self/io; io_uring's
		 * workers are this process's threads): mincore alone cannot tell,
		 * as the VM's reclaim (DAMON) may page out fresh cache pages */
		const uint64_t want = (ay - ax) + (by - bx), got = read_since(io0, want);
		const double o1 = cached(0, ax), o2 = cached(ay, bx - ay), o3 = cached(by, FILE_SIZE - by);
		if (io0 == UINT64_MAX)
			tap_skip("no /proc/self/io read_bytes");
		else
			ok(got >= want && got <= want + SLACK,
			   "%s: the spans' pages were read from storage: %llu bytes (runs %llu; cached now %.3f, %.3f)", what,
			   (unsigned long long)got, (unsigned long long)want, cached(ax, ay - ax), cached(bx, by - bx));
		ok(o1 < 0.02 && o2 < 0.02 && o3 < 0.02, "%s: no page outside them is cached (%.3f, %.3f, %.3f)", what,
		   o1, o2, o3);
	}
}

static int cancel_after;
static int check_cancel(void *user)
{
	int *calls = user;
	return ++*calls > cancel_after ? -ECANCELED : 0;
}

static void test_file(void)
{
	struct st_prefetch_opts o = { 0 };
	struct st_prefetch_stats st;
	struct st_load_span bad;
	int calls = 0, r;

	check_residency("io_uring, defaults", &o);
	o.request = 64 * MiB;      /* more than the kernel reads for one request */
	check_residency("io_uring, 64 MiB requests asked", &o);
	o = (struct st_prefetch_opts){ .request = 256 * 1024, .depth = 1 };
	check_residency("io_uring, 256 KiB x 1", &o);
	/* EVEN_CACHED from here on: these checks need requests even where the
	 * page cache cannot be dropped (tmpfs) */
	o = (struct st_prefetch_opts){ .flags = ST_PREFETCH_FAIL_URING | ST_PREFETCH_EVEN_CACHED };
	check_residency("posix_fadvise fallback", &o);
	{
		int seen = 0;
		for (const char *q = tap_logbuf; (q = strstr(q, "prefetching with posix_fadvise")) != NULL; q++)
			seen++;
		ok(seen == 1, "the fallback is announced once: %s", tap_logbuf);
	}
	r = st_prefetch_spans(path, spans, 3, &o, &st);
	ok(r == 0 && !st.uring, "the fallback says it did not use io_uring");
	/* a kernel whose ring refuses IORING_OP_FADVISE: every request redone
	 * with posix_fadvise, the rest of them too */
	o = (struct st_prefetch_opts){ .request = 1 * MiB, .flags = ST_PREFETCH_FAULT_EINVAL | ST_PREFETCH_EVEN_CACHED };
	check_residency("completions refused (EINVAL)", &o);
	r = st_prefetch_spans(path, spans, 3, &o, &st);
	ok(r == 0 && !st.uring &&
		   st.n_requests == ceil_div(pup(spans[0].file_offset + spans[0].nbytes) - pdown(spans[0].file_offset), MiB) +
					    ceil_div(pup(spans[2].file_offset + spans[2].nbytes) - pdown(spans[1].file_offset), MiB),
	   "refused completions: switched to posix_fadvise, %llu requests, no error", (unsigned long long)st.n_requests);

	/* everything cached already: no request (the file read through first,
	 * so no read of an earlier check is still in flight: mincore, the
	 * check without cachestat, counts only finished pages) */
	{
		static char buf[1 << 16];
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		while (fd >= 0 && read(fd, buf, sizeof buf) > 0)
			;
		if (fd >= 0)
			close(fd);
	}
	r = st_prefetch_spans(path, spans, 3, NULL, &st);
	ok(r == 0 && (!can_drop || (st.cached && st.n_requests == 0 && st.bytes_advised == 0)),
	   "the spans' pages all cached: nothing requested (cached %d, %llu requests)", st.cached,
	   (unsigned long long)st.n_requests);

	/* partly cached: only the pieces with pages missing are requested
	 * (cachestat, Linux 6.5; older kernels request them all) */
	if (can_drop && drop()) {
		const uint64_t ax = pdown(spans[0].file_offset), ay = pup(spans[0].file_offset + spans[0].nbytes);
		const uint64_t bx = pdown(spans[1].file_offset), by = pup(spans[2].file_offset + spans[2].nbytes);
		char *tmp = malloc(ay - ax);
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		bool read_a;
		if (fd >= 0)     /* no read-ahead past A (into B) on devices with a big window */
			(void)posix_fadvise(fd, 0, 0, POSIX_FADV_RANDOM);
		read_a = tmp && fd >= 0 && pread(fd, tmp, ay - ax, (off_t)ax) == (ssize_t)(ay - ax);
		free(tmp);
		if (fd >= 0)
			close(fd);
		uint64_t io0 = storage_read(), got;
		o = (struct st_prefetch_opts){ .request = 1 * MiB };
		r = st_prefetch_spans(path, spans, 3, &o, &st);
		got = read_since(io0, by - bx);
		if (st.bytes_cached == 0 && st.n_requests == ceil_div(ay - ax, MiB) + ceil_div(by - bx, MiB))
			tap_skip("no cachestat(2) on this kernel: every piece requested");
		else
			ok(r == 0 && read_a && st.bytes_cached == ay - ax && st.n_requests == ceil_div(by - bx, MiB) &&
				   !st.cached && (io0 == UINT64_MAX || (got >= by - bx && got <= by - bx + SLACK)),
			   "run A cached, B+C not: %llu bytes skipped as cached, %llu requests (B+C's), %llu bytes read",
			   (unsigned long long)st.bytes_cached, (unsigned long long)st.n_requests, (unsigned long long)got);
	} else {
		tap_skip("page cache cannot be dropped");
	}

	/* a budget: the first run only, whole pages */
	drop();
	{
	const uint64_t io0 = storage_read();
	o = (struct st_prefetch_opts){ .budget = 2 * MiB, .flags = ST_PREFETCH_EVEN_CACHED };
	r = st_prefetch_spans(path, spans, 3, &o, &st);
	ok(r == 0 && st.bytes_advised == 2 * MiB && st.bytes_skipped == st.bytes_spans - 2 * MiB + (spans[0].file_offset % PAGE),
	   "a 2 MiB budget: %llu bytes advised, %llu skipped", (unsigned long long)st.bytes_advised,
	   (unsigned long long)st.bytes_skipped);
	if (can_drop && io0 != UINT64_MAX) {
		const uint64_t got = read_since(io0, 2 * MiB);
		ok(got >= 2 * MiB && got <= 2 * MiB + SLACK && cached(pdown(spans[1].file_offset), 18 * MiB) < 0.02,
		   "the budget's bytes are the first span's (%llu read); the later run is left alone",
		   (unsigned long long)got);
	} else {
		tap_skip("page cache cannot be dropped, or no /proc/self/io");
	}
	}

	/* cancel after two requests */
	o = (struct st_prefetch_opts){ .request = 1 * MiB, .check = check_cancel, .check_user = &calls,
				       .flags = ST_PREFETCH_EVEN_CACHED };
	cancel_after = 2;
	r = st_prefetch_spans(path, spans, 3, &o, &st);
	ok(r == -ECANCELED && st.n_requests == 2 && calls == 3, "cancelled after 2 requests: %d, %llu requests",
	   r, (unsigned long long)st.n_requests);

	/* bad input */
	bad = (struct st_load_span){ .file_offset = FILE_SIZE - 10, .nbytes = 11, .name = "past-eof" };
	r = st_prefetch_spans(path, &bad, 1, NULL, &st);
	ok(r == -EINVAL && strstr(st_last_error(), "past the end") && strstr(st_last_error(), "past-eof"),
	   "a span past the end of the file: %s", st_last_error());
	bad = (struct st_load_span){ .file_offset = UINT64_MAX - 5, .nbytes = 100, .name = "wraps" };
	r = st_prefetch_spans(path, &bad, 1, NULL, &st);
	ok(r == -EINVAL, "a span whose end overflows: %s", st_last_error());
	o = (struct st_prefetch_opts){ .request = 1000 };
	r = st_prefetch_spans(path, spans, 3, &o, &st);
	ok(r == -EINVAL, "a request size that is not whole pages: %s", st_last_error());
	o = (struct st_prefetch_opts){ .depth = ST_PREFETCH_MAX_DEPTH + 1 };
	r = st_prefetch_spans(path, spans, 3, &o, &st);
	ok(r == -EINVAL, "too deep: %s", st_last_error());
	r = st_prefetch_spans("/nonexistent/strata-prefetch", spans, 3, NULL, &st);
	ok(r < 0 && strstr(st_last_error(), "cannot open"), "a missing file: %s", st_last_error());
	r = st_prefetch_spans(path, NULL, 0, NULL, &st);
	ok(r == 0 && st.n_requests == 0, "no spans: nothing to do");
}

/* ---- sessions ------------------------------------------------------------ */

static const int32_t toks[] = { 1, 403, 407, 261, 378 };
#define NT ((int)(sizeof toks / sizeof toks[0]))

static int run_session(struct st_model *m, const struct st_session_params *sp, float *out, uint32_t n_vocab)
{
	(void)n_vocab;
	return tap_session_logits(m, sp, toks, NT, out);
}

static atomic_int n_started, n_cancelled;



/* A read-ahead that reads nothing and only waits (10 s at most) to be
 * cancelled, checking the way st_ioring_prefetch_weights does. */
static int waiting_prefetch(void *user, const struct st_weight_span *ws, int n, struct st_weight_ready *ready)
{
	(void)user;
	(void)ws;
	(void)n;
	atomic_fetch_add(&n_started, 1);
	for (int i = 0; i < 10000; i++) {
		if (st_weight_ready_publish(ready, 0) == -ECANCELED) {
			atomic_fetch_add(&n_cancelled, 1);
			return -ECANCELED;
		}
		nanosleep(&(struct timespec){ 0, 1000 * 1000 }, NULL);
	}
	return -ETIMEDOUT;
}

static uint64_t stage_bytes(struct st_model *m, int first, int last)
{
	struct st_tensor_span sp[512];
	const int nl = (int)st_model_desc(m)->n_layer;
	int n = st_model_spans(m, first, last, first == 0, last == nl - 1, sp, 512);
	uint64_t b = 0;
	for (int i = 0; i < n && n <= 512; i++)
		b += sp[i].nbytes;
	return b;
}

static void test_sessions(const char *mdir)
{
	char mp[1200];
	struct st_model *m = NULL;
	struct st_session_params sp;
	struct st_session *s = NULL;
	float *ref = NULL, *got = NULL, *aref = NULL;
	uint32_t nv;
	int r;

	snprintf(mp, sizeof mp, "%s/stories260K/stories260K.gguf", mdir);
	if (access(mp, R_OK) != 0 || st_model_open(mp, &m) < 0) {
		for (int i = 0; i < 12; i++)
			tap_skip("%s missing", mp);
		return;
	}
	nv = st_model_desc(m)->n_vocab;
	ref = malloc((size_t)NT * nv * sizeof *ref);
	got = malloc((size_t)NT * nv * sizeof *got);
	aref = malloc((size_t)NT * nv * sizeof *aref);
	st_session_params_default(&sp);
	sp.n_ctx = 64;
	r = ref && got && aref ? run_session(m, &sp, ref, nv) : -ENOMEM;
	ok(r == 0, "reference logits from the mapped file");

	for (int two = 0; two < 2; two++) {
		struct st_ioring_weights w = { .path = mp };
		const int nl = (int)st_model_desc(m)->n_layer;
		st_session_params_default(&sp);
		sp.n_ctx = 64;
		sp.prefetch_weights = st_ioring_prefetch_weights;
		sp.load_user = &w;
		sp.stages = two ? "cpu:0-1,cpu:2-4" : NULL;
		r = run_session(m, &sp, got, nv);
		ok(r == 0 && !memcmp(ref, got, (size_t)NT * nv * sizeof *ref) && w.n_prefetches == 1 + two &&
			   w.prefetch_stats.bytes_spans == stage_bytes(m, 0, nl - 1),
		   "%s with read-ahead: identical logits; %d prefetches of %llu bytes (the stages' %llu)",
		   two ? "two CPU stages" : "one CPU stage", w.n_prefetches,
		   (unsigned long long)w.prefetch_stats.bytes_spans, (unsigned long long)stage_bytes(m, 0, nl - 1));
	}

	{       /* one budget for the session: two stages' read-aheads (called as
		 * the stages call them, without a session whose destroy could
		 * cancel them midway) stay inside it together */
		const uint64_t budget = 600 * 1024;
		struct st_ioring_weights w = { .path = mp,
					       .prefetch = { .budget = budget, .flags = ST_PREFETCH_EVEN_CACHED } };
		struct st_tensor_span ts[256];
		struct st_weight_span ws[256];
		const int nl = (int)st_model_desc(m)->n_layer;
		int rr = 0;
		for (int part = 0; part < 2; part++) {
			const int first = part ? 2 : 0, last = part ? nl - 1 : 1;
			int k = st_model_spans(m, first, last, part == 0, part == 1, ts, 256);
			for (int i = 0; i < k && k <= 256; i++)
				ws[i] = (struct st_weight_span){ .file_offset = ts[i].file_offset, .nbytes = ts[i].nbytes };
			rr |= k > 256 ? -E2BIG : st_ioring_prefetch_weights(&w, ws, k, NULL);
		}
		ok(rr == 0 && w.n_prefetches == 2 && w.prefetch_stats.bytes_spans == stage_bytes(m, 0, nl - 1) &&
			   w.prefetch_stats.bytes_advised <= budget && w.prefetch_stats.bytes_advised + 2 * PAGE >= budget &&
			   w.prefetch_stats.bytes_skipped > 0 && w.prefetch_budget_left < 2 * PAGE,
		   "two stages share one %llu-byte budget: %llu of %llu bytes advised, %llu skipped, %llu left",
		   (unsigned long long)budget, (unsigned long long)w.prefetch_stats.bytes_advised,
		   (unsigned long long)w.prefetch_stats.bytes_spans, (unsigned long long)w.prefetch_stats.bytes_skipped,
		   (unsigned long long)w.prefetch_budget_left);
	}

	{       /* a loader too: CPU stages still use the mapping, the loader reads nothing */
		struct st_ioring_weights w = { .path = mp };
		st_session_params_default(&sp);
		sp.n_ctx = 64;
		sp.prefetch_weights = st_ioring_prefetch_weights;
		sp.load_weights = st_ioring_load_weights;
		sp.load_user = &w;
		r = run_session(m, &sp, got, nv);
		ok(r == 0 && !memcmp(ref, got, (size_t)NT * nv * sizeof *ref) && w.n_loads == 0 &&
			   w.n_prefetches == 1,
		   "read-ahead with a loader set: the CPU stage maps the file (%d loads, %d prefetches)", w.n_loads,
		   w.n_prefetches);
	}

	/* read-ahead with a loader set (strata run's default): unified-memory
	 * devices use the mapping in place and read ahead like the CPU; with
	 * device memory the host cannot map, the loader streams that stage's
	 * weights in and only the CPU stage reads ahead */
	for (int forced = 0; forced < 2; forced++)
		for (int dev = 0; dev < 2; dev++) {
			const char *stages = dev ? "cpu:0-1,opencl0:2-4" : "cpu:0-1,vulkan0:2-4";
			struct st_ioring_weights w = { .path = mp };
			if (forced) {
				setenv("ST_VULKAN_FORCE_STAGING", "1", 1);
				setenv("ST_OPENCL_NO_WRAP", "1", 1);
			}
			st_session_params_default(&sp);
			sp.n_ctx = 64;
			sp.stages = stages;
			if (run_session(m, &sp, aref, nv) < 0) {
				tap_skip("%s: %s", stages, st_last_error());
			} else {
				sp.prefetch_weights = st_ioring_prefetch_weights;
				sp.load_weights_async = st_ioring_load_weights_async;
				sp.load_device = true;
				sp.load_user = &w;
				r = run_session(m, &sp, got, nv);
				/* unforced, a device with memory of its own (a discrete GPU)
				 * is streamed like a forced one */
				const bool streamed = forced || w.upload_stats.bytes > 0;
				ok(r == 0 && !memcmp(aref, got, (size_t)NT * nv * sizeof *ref) &&
					   w.n_prefetches == (streamed ? 1 : 2) && w.n_loads == 0 &&
					   (streamed ? w.upload_stats.bytes > 0 : w.upload_stats.bytes == 0),
				   "%s%s, read-ahead and a loader: identical logits; %d prefetches, %llu bytes streamed in",
				   stages, forced ? " (device memory not mappable)" : "", w.n_prefetches,
				   (unsigned long long)w.upload_stats.bytes);
			}
			unsetenv("ST_VULKAN_FORCE_STAGING");
			unsetenv("ST_OPENCL_NO_WRAP");
		}

	/* accelerator stages copy from the mapping, read ahead while copying:
	 * the same logits as without read-ahead, every stage's bytes asked for */
	for (int dev = 0; dev < 2; dev++) {
		const char *stages = dev ? "cpu:0-1,opencl0:2-4" : "cpu:0-1,vulkan0:2-4";
		struct st_ioring_weights w = { .path = mp };
		st_session_params_default(&sp);
		sp.n_ctx = 64;
		sp.stages = stages;
		if (run_session(m, &sp, aref, nv) < 0) {
			tap_skip("%s: %s", stages, st_last_error());
			continue;
		}
		sp.prefetch_weights = st_ioring_prefetch_weights;
		sp.load_user = &w;
		r = run_session(m, &sp, got, nv);
		ok(r == 0 && !memcmp(aref, got, (size_t)NT * nv * sizeof *ref) && w.n_prefetches == 2 &&
			   w.prefetch_stats.bytes_spans == stage_bytes(m, 0, (int)st_model_desc(m)->n_layer - 1),
		   "%s with read-ahead: logits identical to it without; %d prefetches of %llu bytes", stages,
		   w.n_prefetches, (unsigned long long)w.prefetch_stats.bytes_spans);
	}

	{       /* a failing read-ahead is a warning, not an error */
		struct st_ioring_weights w = { .path = "/nonexistent/model.gguf" };
		st_session_params_default(&sp);
		sp.n_ctx = 64;
		sp.prefetch_weights = st_ioring_prefetch_weights;
		sp.load_user = &w;
		r = run_session(m, &sp, got, nv);
		ok(r == 0 && !memcmp(ref, got, (size_t)NT * nv * sizeof *ref),
		   "a read-ahead that fails (missing file) leaves the session working");
	}

	/* the stage wiring of cancel, with a read-ahead that only waits to be
	 * cancelled: evaluation never waits for it, a copying stage stops it
	 * once copied, destroy stops the rest */
	{
		double t0, t_destroy;
		st_session_params_default(&sp);
		sp.n_ctx = 64;
		sp.prefetch_weights = waiting_prefetch;
		atomic_store(&n_cancelled, 0);
		atomic_store(&n_started, 0);
		r = st_session_create(m, &sp, &s);
		if (r == 0)
			r = st_session_eval(s, toks, NT, false) > 0 ? 0 : -EIO;
		ok(r == 0 && atomic_load(&n_cancelled) == 0, "the evaluation does not wait for the read-ahead (%d)", r);
		t0 = st_time_now();
		st_session_destroy(s);
		s = NULL;
		t_destroy = st_time_now() - t0;
		ok(atomic_load(&n_started) == 1 && atomic_load(&n_cancelled) == 1 && t_destroy < 5.0,
		   "destroying the session cancels its read-ahead and joins it (%.3f s)", t_destroy);
	}
	/* device memory the host cannot map (as on discrete GPUs): the stage
	 * copies its weights from the mapping */
	setenv("ST_VULKAN_FORCE_STAGING", "1", 1);
	setenv("ST_OPENCL_NO_WRAP", "1", 1);
	for (int dev = 0; dev < 2; dev++) {
		const char *stages = dev ? "cpu:0-1,opencl0:2-4" : "cpu:0-1,vulkan0:2-4";
		st_session_params_default(&sp);
		sp.n_ctx = 64;
		sp.stages = stages;
		sp.prefetch_weights = waiting_prefetch;
		atomic_store(&n_cancelled, 0);
		atomic_store(&n_started, 0);
		r = st_session_create(m, &sp, &s);
		if (r < 0) {
			tap_skip("%s: %s", stages, st_last_error());
			tap_skip("%s: %s", stages, st_last_error());
			continue;
		}
		ok(atomic_load(&n_started) == 2 && atomic_load(&n_cancelled) == 1,
		   "%s: the copying stage stops its read-ahead when copied (%d started, %d cancelled)", stages,
		   atomic_load(&n_started), atomic_load(&n_cancelled));
		st_session_destroy(s);
		s = NULL;
		ok(atomic_load(&n_cancelled) == 2, "%s: destroy cancels the CPU stage's", stages);
	}
	unsetenv("ST_VULKAN_FORCE_STAGING");
	unsetenv("ST_OPENCL_NO_WRAP");
	free(ref);
	free(got);
	free(aref);
	st_model_close(m);
}

int main(void)
{
	const char *build = getenv("ST_BUILD_DIR"), *mdir = tap_models_dir();
	snprintf(path, sizeof path, "%s/prefetch-test-%d.bin", build ? build : ".", (int)getpid());
	tap_log_capture();
	if (tap_write_file(path, FILE_SIZE) != 0)
		tap_skip_all("cannot write %s", path);
	setup_spans();
	can_drop = drop();
	if (!can_drop)
		diag("the page cache of %s cannot be dropped (tmpfs?): residency checks are skipped", path);
	test_file();
	unlink(path);
	if (mdir)
		test_sessions(mdir);
	else
		for (int i = 0; i < 12; i++)
			tap_skip("no models dir (ST_MODELS_DIR)");
	return tap_done();
}
