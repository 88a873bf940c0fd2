/* prefetch.c: page-cache readahead of a stage's spans with io_uring
 * (prefetch.h). */
#include "prefetch.h"
#include "loader_impl.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "util.h"

static atomic_flag announced_fallback = ATOMIC_FLAG_INIT;

static bool read_u64_file(const char *path, uint64_t *v)
{
	FILE *f = fopen(path, "r");
	unsigned long long x;
	bool got;
	if (!f)
		return false;
	got = fscanf(f, "%llu", &x) == 1;       /* "max" (no limit) reads as nothing */
	fclose(f);
	if (got)
		*v = (uint64_t)x;
	return got;
}

static uint64_t sysfs_kb(unsigned maj, unsigned min, const char *what)
{
	char path[128];
	uint64_t kb = 0;
	/* a partition's queue/ is its disk's: one directory up */
	for (int up = 0; up < 2; up++) {
		snprintf(path, sizeof path, "/sys/dev/block/%u:%u/%squeue/%s", maj, min, up ? "../" : "", what);
		if (read_u64_file(path, &kb))
			break;
	}
	return kb * 1024u;
}

struct run {
	uint64_t x, y;          /* page-rounded file range */
};

struct slot {
	uint64_t off, len;
};

struct pf {
	int fd;
	bool cachestat;         /* the kernel answers cachestat(2) for this file */
	const struct st_prefetch_opts *o;
	struct st_prefetch_stats *st;
	uint64_t request;
	uint32_t depth;
#if ST_HAVE_LIBURING
	struct io_uring ring;
	bool ring_ok;
	struct slot *slots;     /* depth of them: the request of each entry in flight */
	uint32_t *free_slots, n_free;
#endif
};

/* The most one readahead request reads: the kernel trims WILLNEED advice
 * to max(the device's read-ahead window, its largest I/O)
 * (mm/readahead.c force_page_cache_ra), so bigger requests would leave
 * most of their bytes unread.  128 KiB (the kernel's default window) when
 * the file's device does not say. */
static uint64_t readahead_cap(int fd)
{
	struct stat sb;
	uint64_t ra, io;
	if (fstat(fd, &sb) < 0)
		return 128u << 10;
	ra = sysfs_kb(major(sb.st_dev), minor(sb.st_dev), "read_ahead_kb");
	io = sysfs_kb(major(sb.st_dev), minor(sb.st_dev), "max_sectors_kb");
	ra = ST_MAX(ra, io);
	return ra >= 4096 ? ra & ~(uint64_t)4095 : 128u << 10;
}


/* Bytes this process's memory cgroup still allows; UINT64_MAX if unknown
 * or unlimited. */
static uint64_t cgroup_room(void)
{
	static const char *const pairs[][2] = {
		{ "/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current" },
		{ "/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory/memory.usage_in_bytes" },
	};
	for (size_t i = 0; i < ST_ARRAY_SIZE(pairs); i++) {
		uint64_t lim, use;
		if (read_u64_file(pairs[i][0], &lim) && read_u64_file(pairs[i][1], &use))
			return lim > use ? lim - use : 0;
	}
	return UINT64_MAX;
}

uint64_t st_prefetch_default_budget(void)
{
	uint64_t kb = 0, room = cgroup_room();
	if (st_proc_field_u64("/proc/meminfo", "MemAvailable", &kb) == 0)
		room = ST_MIN(room, kb * 1024u);
	return room == UINT64_MAX ? room : room / 4 * 3;
}

static void fallback(struct pf *p, const char *why)
{
	if (!atomic_flag_test_and_set(&announced_fallback))
		st_log(ST_LOG_INFO, "io_uring readahead unavailable (%s): prefetching with posix_fadvise", why);
	p->st->uring = false;
}

static int advise_sync(struct pf *p, uint64_t off, uint64_t len)
{
	int r = posix_fadvise(p->fd, (off_t)off, (off_t)len, POSIX_FADV_WILLNEED);
	if (r)
		return st_error(-r, "prefetch: posix_fadvise(WILLNEED) of [%llu, %llu): %s", (unsigned long long)off,
				(unsigned long long)(off + len), strerror(r));
	return 0;
}

#if ST_HAVE_LIBURING
/* Wait for one completion and free its slot.  -EINVAL/-EOPNOTSUPP (a
 * kernel without IORING_OP_FADVISE) switch the rest to posix_fadvise,
 * starting with this request. */
static int reap_one(struct pf *p)
{
	struct io_uring_cqe *cqe;
	uint32_t slot;
	int r;
	do
		r = io_uring_wait_cqe(&p->ring, &cqe);
	while (r == -EINTR);
	if (r < 0)
		return st_error(r, "prefetch: io_uring_wait_cqe: %s", strerror(-r));
	r = p->o->flags & ST_PREFETCH_FAULT_EINVAL ? -EINVAL : cqe->res;
	slot = (uint32_t)cqe->user_data;
	io_uring_cqe_seen(&p->ring, cqe);
	p->free_slots[p->n_free++] = slot;
	if (r == -EINVAL || r == -EOPNOTSUPP) {
		if (p->st->uring)
			fallback(p, "the kernel refused IORING_OP_FADVISE");
		return advise_sync(p, p->slots[slot].off, p->slots[slot].len);
	}
	if (r < 0)
		return st_error(r, "prefetch: readahead of [%llu, +%llu) failed: %s",
				(unsigned long long)p->slots[slot].off, (unsigned long long)p->slots[slot].len,
				strerror(-r));
	return 0;
}

/* One request through the ring, after waiting for a free entry. */
static int issue_uring(struct pf *p, uint64_t off, uint64_t len, uint32_t *inflight)
{
	struct io_uring_sqe *sqe;
	uint32_t slot;
	int r;
	while (!p->n_free) {
		r = reap_one(p);
		(*inflight)--;
		if (r < 0)
			return r;
	}
	sqe = io_uring_get_sqe(&p->ring);
	if (!sqe)
		return st_error(-EBUSY, "prefetch: the ring has no free entry");
	slot = p->free_slots[--p->n_free];
	p->slots[slot] = (struct slot){ off, len };
	io_uring_prep_fadvise(sqe, p->fd, off, (off_t)len, POSIX_FADV_WILLNEED);
	sqe->user_data = slot;
	r = io_uring_submit(&p->ring);
	if (r < 0)
		return st_error(r, "prefetch: io_uring_submit: %s", strerror(-r));
	(*inflight)++;
	return 0;
}
#endif

/* cachestat(2) (Linux 6.5): how many pages of a range the page cache
 * holds, in one call.  1: every page of [off, off+len) is cached, 0: not,
 * -1: the kernel cannot tell (then p->cachestat goes off). */
#if defined(__NR_cachestat)
#define ST_NR_CACHESTAT __NR_cachestat
#elif defined(__x86_64__) || defined(__aarch64__)
#define ST_NR_CACHESTAT 451
#endif
static int range_cached(struct pf *p, uint64_t off, uint64_t len)
{
#ifdef ST_NR_CACHESTAT
	struct {
		uint64_t off, len;
	} range = { off, len };
	struct {
		uint64_t nr_cache, nr_dirty, nr_writeback, nr_evicted, nr_recently_evicted;
	} cs;
	if (p->cachestat && syscall(ST_NR_CACHESTAT, p->fd, &range, &cs, 0) == 0) {
		const uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
		return cs.nr_cache >= (len + page - 1) / page;
	}
#endif
	p->cachestat = false;
	return -1;
}

/* Issue requests for [x, y) in pieces of p->request, skipping pieces the
 * page cache already holds (when cachestat says so). */
static int issue_run(struct pf *p, uint64_t x, uint64_t y, uint32_t *inflight)
{
	int r = 0;
	(void)inflight;
	for (uint64_t off = x; off < y && !r; off += p->request) {
		const uint64_t len = ST_MIN(p->request, y - off);
		if (p->o->check && (r = p->o->check(p->o->check_user)) != 0)
			return r;
		if (p->cachestat && range_cached(p, off, len) == 1) {
			p->st->bytes_cached += len;
			continue;
		}
#if ST_HAVE_LIBURING
		if (p->st->uring)
			r = issue_uring(p, off, len, inflight);
		else
#endif
			r = advise_sync(p, off, len);
		p->st->n_requests++;
		p->st->bytes_advised += len;
	}
	return r;
}

/* The spans as page-rounded runs, in the given order, adjacent ones merged;
 * at most budget bytes (the rest counted as skipped). */
static int plan_runs(const struct st_load_span *spans, size_t n, uint64_t file_size, uint64_t budget,
		     struct run *runs, size_t *n_runs, struct st_prefetch_stats *st)
{
	const uint64_t page = 4096;
	uint64_t total = 0;
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		const struct st_load_span *s = &spans[i];
		uint64_t end;
		if (st_add_overflow_u64(s->file_offset, s->nbytes, &end) || end > file_size)
			return st_error(-EINVAL,
					"prefetch: span %zu (%s) [%llu, +%llu) is past the end of the file (%llu bytes)", i,
					s->name ? s->name : "?", (unsigned long long)s->file_offset,
					(unsigned long long)s->nbytes, (unsigned long long)file_size);
		st->bytes_spans += s->nbytes;
		if (!s->nbytes)
			continue;
		uint64_t x = s->file_offset & ~(page - 1), y = ST_MIN((end + page - 1) & ~(page - 1), file_size);
		if (total >= budget) {
			st->bytes_skipped += s->nbytes;
			continue;
		}
		if (y - x > budget - total) {
			y = x + (budget - total);
			st->bytes_skipped += end > y ? end - ST_MAX(y, s->file_offset) : 0;
		}
		if (k && x >= runs[k - 1].x && x <= runs[k - 1].y) {
			if (y > runs[k - 1].y) {
				total += y - runs[k - 1].y;
				runs[k - 1].y = y;
			}
		} else {
			runs[k++] = (struct run){ x, y };
			total += y - x;
		}
	}
	*n_runs = k;
	return 0;
}

int st_prefetch_spans(const char *path, const struct st_load_span *spans, size_t n,
		      const struct st_prefetch_opts *opts, struct st_prefetch_stats *stats)
{
	static const struct st_prefetch_opts defaults = { 0 };
	struct st_prefetch_stats dummy;
	struct pf p = { .fd = -1 };
	struct run *runs = NULL;
	struct stat sb;
	size_t n_runs = 0;
	uint32_t inflight = 0;
	uint64_t budget;
	const char *why;
	double t0 = st_time_now();
	int r;

	p.o = opts ? opts : &defaults;
	p.st = stats ? stats : &dummy;
	memset(p.st, 0, sizeof *p.st);
	p.request = p.o->request ? p.o->request : ST_PREFETCH_DEFAULT_REQUEST;
	p.depth = p.o->depth ? p.o->depth : ST_PREFETCH_DEFAULT_DEPTH;
	if (!path || (n && !spans))
		return st_error(-EINVAL, "prefetch: no file or no spans");
	if (p.request < 4096 || p.request % 4096)
		return st_error(-EINVAL, "prefetch: request size %llu is not a positive multiple of 4096",
				(unsigned long long)p.request);
	if (p.depth > ST_PREFETCH_MAX_DEPTH)
		return st_error(-EINVAL, "prefetch: depth %u exceeds %u", p.depth, ST_PREFETCH_MAX_DEPTH);
	budget = p.o->budget ? p.o->budget : st_prefetch_default_budget();
	p.fd = open(path, O_RDONLY | O_CLOEXEC);
	if (p.fd < 0)
		return st_error(-errno, "prefetch: cannot open %s: %s", path, strerror(errno));
	if (fstat(p.fd, &sb) < 0) {
		r = st_error(-errno, "prefetch: cannot stat %s: %s", path, strerror(errno));
		goto out;
	}
	runs = malloc((n ? n : 1) * sizeof *runs);
	if (!runs) {
		r = st_error(-ENOMEM, "prefetch: out of memory for %zu spans", n);
		goto out;
	}
	p.st->request_cap = readahead_cap(p.fd);
	if (p.request > p.st->request_cap)
		p.request = p.st->request_cap;
	p.st->request = p.request;
	r = plan_runs(spans, n, (uint64_t)sb.st_size, budget, runs, &n_runs, p.st);
	if (r < 0)
		goto out;

	/* pieces already cached are skipped (cachestat, per request); without
	 * cachestat, a stage whose pages are all cached needs no request at
	 * all (mincore over each run: cheaper than walking the cache with
	 * advice) */
	p.cachestat = !(p.o->flags & ST_PREFETCH_EVEN_CACHED) && n_runs;
	if (p.cachestat && range_cached(&p, runs[0].x, ST_MIN(runs[0].y - runs[0].x, 4096)) < 0) {
		/* no cachestat: the all-or-nothing check */
		bool all = true;
		for (size_t i = 0; i < n_runs && all; i++) {
			double f = 0;
			all = st_load_cached_fraction(path, runs[i].x, runs[i].y - runs[i].x, &f) == 0 && f >= 1.0;
		}
		if (all) {
			p.st->cached = true;
			for (size_t i = 0; i < n_runs; i++)
				p.st->bytes_cached += runs[i].y - runs[i].x;
			p.st->seconds = st_time_now() - t0;
			goto out;
		}
	}

	why = ld_uring_unavailable(p.o->flags & ST_PREFETCH_FAIL_URING);
	p.st->uring = !why;
#if ST_HAVE_LIBURING
	if (p.st->uring) {
		r = io_uring_queue_init(p.depth, &p.ring, 0);
		if (r < 0) {
			why = r == -EPERM ? "io_uring_setup refused (EPERM)"
					  : r == -ENOSYS ? "no io_uring in this kernel (ENOSYS)" : "io_uring_queue_init failed";
			r = 0;
		} else {
			p.ring_ok = true;
			p.slots = calloc(p.depth, sizeof *p.slots);
			p.free_slots = calloc(p.depth, sizeof *p.free_slots);
			if (!p.slots || !p.free_slots) {
				r = st_error(-ENOMEM, "prefetch: out of memory");
				goto out;
			}
			for (uint32_t i = 0; i < p.depth; i++)
				p.free_slots[p.n_free++] = p.depth - 1 - i;
		}
	}
	if (!p.ring_ok)
#endif
		fallback(&p, why ? why : "the ring could not be set up");

	for (size_t i = 0; i < n_runs && !r; i++)
		r = issue_run(&p, runs[i].x, runs[i].y, &inflight);
#if ST_HAVE_LIBURING
	/* drain: nothing may refer to the file or the ring after we return */
	while (p.ring_ok && inflight) {
		int d = reap_one(&p);
		inflight--;
		if (d < 0 && !r)
			r = d;
	}
#endif
	p.st->cached = !r && p.st->bytes_cached && !p.st->n_requests;
	p.st->seconds = st_time_now() - t0;
out:
#if ST_HAVE_LIBURING
	if (p.ring_ok)
		io_uring_queue_exit(&p.ring);
	free(p.slots);
	free(p.free_slots);
#endif
	free(runs);
	close(p.fd);
	return r;
}
