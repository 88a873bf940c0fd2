/* prefetch.h: read a stage's spans of the model file into the page cache
 * with io_uring, ahead of an evaluation that computes from the mapped file.
 *
 * The CPU backend computes from the mapped model file in place (no copy,
 * memory shared with the page cache).  Left alone, its first evaluation
 * faults the pages in as it reaches them and the kernel reads ahead a
 * window at a time.  Prefetching instead asks for every byte of the
 * stage's spans at once, in the order the evaluation needs them, with
 * io_uring readahead requests (IORING_OP_FADVISE, POSIX_FADV_WILLNEED: the
 * kernel allocates page-cache pages and queues the disk reads without
 * waiting for them), so the disk has the whole stage queued while the
 * evaluation runs.  Nothing has to be signalled: a thread touching a page
 * whose read is still in flight waits for it in the kernel.
 *
 * Why not O_DIRECT into private memory (loader.h) for CPU stages: it needs
 * fresh anonymous memory for the whole stage, and first-touch faults of
 * that memory cost more than the reads on the VM this was measured on; the
 * page cache's pages are filled by the disk without them, and a cached
 * file needs no read and no second copy (BENCHMARKS.md "Weight loading").
 *
 * Only the spans' bytes are requested (rounded out to whole pages).  At
 * most `budget` bytes are requested (default: 3/4 of MemAvailable), so a
 * stage larger than memory does not evict its own first layers; the rest
 * is read on demand.  When io_uring is unavailable (the same probes and
 * ST_IO_URING_DISABLE as the loader) the requests are posix_fadvise calls
 * on the calling thread, announced once.  Prefetching is advice: the
 * evaluation is correct whether or not it ran.  Pieces the page cache
 * already holds are not requested (cachestat(2), Linux 6.5; older kernels:
 * nothing is requested when every page of the spans is cached, by mincore). */
#ifndef ST_IORING_PREFETCH_H
#define ST_IORING_PREFETCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "loader.h"

enum st_prefetch_flags {
	ST_PREFETCH_FAIL_URING = 1u << 0,  /* tests: the io_uring probe fails */
	ST_PREFETCH_EVEN_CACHED = 1u << 1, /* request even what is cached (tests) */
	ST_PREFETCH_FAULT_EINVAL = 1u << 2,/* tests: the ring's completions say -EINVAL
					    * (a kernel without IORING_OP_FADVISE) */
};

struct st_prefetch_opts {
	uint64_t request;       /* bytes per readahead request; 0: ST_PREFETCH_DEFAULT_REQUEST;
				 * at most what the kernel reads for one request (stats) */
	uint32_t depth;         /* requests in flight; 0: ST_PREFETCH_DEFAULT_DEPTH */
	uint64_t budget;        /* at most this many bytes; 0: st_prefetch_default_budget() */
	unsigned flags;         /* enum st_prefetch_flags */
	/* Checked between requests: a non-zero return stops prefetching and
	 * is returned (use -ECANCELED).  NULL: never stops early. */
	int (*check)(void *user);
	void *check_user;
};

/* Defaults (chosen by measurement; BENCHMARKS.md "Weight loading"). */
#define ST_PREFETCH_DEFAULT_REQUEST (8u << 20)
#define ST_PREFETCH_DEFAULT_DEPTH   4u
#define ST_PREFETCH_MAX_DEPTH       256u

struct st_prefetch_stats {
	bool uring;             /* requests went through io_uring (else posix_fadvise) */
	bool cached;            /* every page was cached already: nothing requested */
	uint64_t bytes_spans;   /* sum of the span lengths */
	uint64_t bytes_advised; /* bytes requested (page-rounded, merged runs) */
	uint64_t bytes_skipped; /* span bytes left to demand paging (budget) */
	uint64_t bytes_cached;  /* request-sized pieces skipped: already cached */
	uint64_t n_requests;
	uint64_t request;       /* bytes per request used */
	uint64_t request_cap;   /* the kernel's limit for this file: max(read_ahead_kb,
				 * max_sectors_kb) of its device, else 128 KiB */
	double seconds;         /* to issue every request (the reads go on after) */
};

/* 3/4 of the memory a read-ahead may fill without evicting what it read:
 * MemAvailable, or less when this process's memory cgroup (v2 memory.max -
 * memory.current, v1 memory.limit_in_bytes - memory.usage_in_bytes) leaves
 * less; UINT64_MAX when neither is known.  Sessions share one budget
 * across their stages (ioring/weights.h). */
uint64_t st_prefetch_default_budget(void);

/* Request spans [file_offset, file_offset + nbytes) of path, in the order
 * given (spans.dst is not used; runs adjacent in the file merge).  Returns
 * 0, opts->check's code, or a negative errno with st_error (a span past the
 * end of the file, an unreadable file).  stats may be NULL. */
int st_prefetch_spans(const char *path, const struct st_load_span *spans, size_t n,
		      const struct st_prefetch_opts *opts, struct st_prefetch_stats *stats);

#endif
