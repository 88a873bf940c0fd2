/* loader.c: the span loader: probing, validation, the read plan, and the
 * pread and mmap paths.  The io_uring engine is in loader_uring.c. */
#include "loader_impl.h"

#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"

#define LD_MAX_RETRIES 64

static const char *const mode_names[] = { "auto", "uring", "pread", "mmap" };

const char *st_io_mode_name(enum st_io_mode mode)
{
	return (unsigned)mode < ST_ARRAY_SIZE(mode_names) ? mode_names[mode] : "?";
}

int st_io_mode_parse(const char *s, enum st_io_mode *out)
{
	for (size_t i = 0; i < ST_ARRAY_SIZE(mode_names); i++)
		if (s && !strcmp(s, mode_names[i])) {
			*out = (enum st_io_mode)i;
			return 0;
		}
	return st_error(-EINVAL, "io mode '%s': expected auto, uring, pread or mmap", s ? s : "(null)");
}

static bool env_set(const char *name)
{
	const char *v = getenv(name);
	return v && *v && strcmp(v, "0") != 0;
}

/* Each fallback is announced once per process. */
static atomic_flag announced_no_uring = ATOMIC_FLAG_INIT;
static atomic_flag announced_no_direct = ATOMIC_FLAG_INIT;

static const char *span_name(const struct st_load_span *s)
{
	return s->name ? s->name : "unnamed";
}

/* ---- probing ------------------------------------------------------------ */

/* Try O_DIRECT: open with it and read one aligned block.  Returns the fd or
 * a negative errno; *why says what refused it. */
static int probe_direct(const char *path, unsigned flags, const char **why)
{
	void *buf = NULL;
	int fd;
	ssize_t r;

	if (flags & ST_LOAD_FAIL_DIRECT || env_set("ST_IO_NO_DIRECT")) {
		*why = "forced by ST_LOAD_FAIL_DIRECT / ST_IO_NO_DIRECT";
		return -EINVAL;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC | O_DIRECT);
	if (fd < 0) {
		*why = errno == EINVAL ? "open(O_DIRECT) refused (EINVAL)" : "open(O_DIRECT) failed";
		return -errno;
	}
	if (posix_memalign(&buf, ST_LOAD_ALIGN, ST_LOAD_ALIGN)) {
		close(fd);
		*why = "out of memory";
		return -ENOMEM;
	}
	do
		r = pread(fd, buf, ST_LOAD_ALIGN, 0);
	while (r < 0 && errno == EINTR);
	free(buf);
	if (r < 0) {
		int e = errno;
		close(fd);
		*why = e == EINVAL ? "an aligned O_DIRECT read was refused (EINVAL)" : "an aligned O_DIRECT read failed";
		return -e;
	}
	return fd;
}

static bool uring_disabled_by_sysctl(void)
{
	FILE *f = fopen("/proc/sys/kernel/io_uring_disabled", "r");
	int v = 0;
	if (!f)
		return false;
	if (fscanf(f, "%d", &v) != 1)
		v = 0;
	fclose(f);
	/* 1: only processes in kernel.io_uring_group; the ring setup tells. */
	return v == 2;
}

int st_loader_open(const char *path, const struct st_load_opts *opts, struct st_loader **out)
{
	struct st_loader *ld;
	struct stat sb;
	const char *why = NULL;
	int ret;

	*out = NULL;
	if (!path)
		return st_error(-EINVAL, "loader: no path");
	ld = calloc(1, sizeof *ld);
	if (!ld)
		return st_error(-ENOMEM, "loader: out of memory");
	ld->fd = -1;
	if (opts)
		ld->opts = *opts;
	ld->qd = ld->opts.queue_depth ? ld->opts.queue_depth : ST_LOAD_DEFAULT_QD;
	ld->chunk = ld->opts.chunk_size ? ld->opts.chunk_size : ST_LOAD_DEFAULT_CHUNK;
	if (ld->qd > ST_LOAD_MAX_QD) {
		ret = st_error(-EINVAL, "loader: queue depth %u exceeds %u", ld->qd, ST_LOAD_MAX_QD);
		goto err;
	}
	if (!st_is_pow2_u64(ld->chunk) || ld->chunk < ST_LOAD_ALIGN || ld->chunk > ST_LOAD_MAX_CHUNK) {
		ret = st_error(-EINVAL, "loader: chunk size %u must be a power of two in [%u, %u]",
			       ld->chunk, ST_LOAD_ALIGN, ST_LOAD_MAX_CHUNK);
		goto err;
	}
	if ((unsigned)ld->opts.mode > ST_IO_MMAP) {
		ret = st_error(-EINVAL, "loader: io mode %d unknown", (int)ld->opts.mode);
		goto err;
	}
	ld->path = strdup(path);
	if (!ld->path) {
		ret = st_error(-ENOMEM, "loader: out of memory");
		goto err;
	}

	/* Which path: io_uring unless it is unavailable or not asked for. */
	ld->mode = ld->opts.mode == ST_IO_AUTO ? ST_IO_URING : ld->opts.mode;
	if (ld->mode == ST_IO_URING) {
		const char *no_uring = NULL;
#if !ST_HAVE_LIBURING
		no_uring = "built without liburing";
#endif
		if (!no_uring && (ld->opts.flags & ST_LOAD_FAIL_URING || env_set("ST_IO_URING_DISABLE")))
			no_uring = "forced by ST_LOAD_FAIL_URING / ST_IO_URING_DISABLE";
		if (!no_uring && uring_disabled_by_sysctl())
			no_uring = "disabled by /proc/sys/kernel/io_uring_disabled";
		if (no_uring) {
			if (!atomic_flag_test_and_set(&announced_no_uring))
				st_log(ST_LOG_INFO, "io_uring unavailable (%s): loading with pread", no_uring);
			ld->mode = ST_IO_PREAD;
		}
	}

	/* O_DIRECT for io_uring (and pread when asked), probed by trying. */
	if ((ld->mode == ST_IO_URING && !(ld->opts.flags & ST_LOAD_NO_DIRECT)) ||
	    (ld->mode == ST_IO_PREAD && ld->opts.flags & ST_LOAD_PREAD_DIRECT)) {
		int fd = probe_direct(path, ld->opts.flags, &why);
		if (fd >= 0) {
			ld->fd = fd;
			ld->direct = true;
		} else if (fd == -ENOENT || fd == -EACCES || fd == -EPERM || fd == -EISDIR) {
			ret = st_error(fd, "loader: cannot open %s: %s", path, strerror(-fd));
			goto err;
		} else if (!atomic_flag_test_and_set(&announced_no_direct)) {
			st_log(ST_LOG_INFO, "O_DIRECT unavailable for %s (%s: %s): using buffered reads",
			       path, why, strerror(-fd));
		}
	}
	if (ld->fd < 0) {
		ld->fd = open(path, O_RDONLY | O_CLOEXEC);
		if (ld->fd < 0) {
			ret = st_error(-errno, "loader: cannot open %s: %s", path, strerror(errno));
			goto err;
		}
		(void)posix_fadvise(ld->fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	}
	if (fstat(ld->fd, &sb) != 0) {
		ret = st_error(-errno, "loader: fstat %s: %s", path, strerror(errno));
		goto err;
	}
	if (!S_ISREG(sb.st_mode)) {
		ret = st_error(-EINVAL, "loader: %s is not a regular file", path);
		goto err;
	}
	ld->file_size = (uint64_t)sb.st_size;
	ld->align = ld->direct ? ST_LOAD_ALIGN : 1;

#if ST_HAVE_LIBURING
	if (ld->mode == ST_IO_URING) {
		ret = ld_uring_setup(ld, &why);
		if (ret < 0) {
			if (ret == -ENOMEM) {
				st_error(ret, "loader: io_uring setup: out of memory");
				goto err;
			}
			if (!atomic_flag_test_and_set(&announced_no_uring))
				st_log(ST_LOG_INFO, "io_uring unavailable (%s: %s): loading with pread",
				       why, strerror(-ret));
			ld->mode = ST_IO_PREAD;
			if (ld->direct && !(ld->opts.flags & ST_LOAD_PREAD_DIRECT)) {
				/* plain buffered pread, as documented */
				int fd = open(path, O_RDONLY | O_CLOEXEC);
				if (fd < 0) {
					ret = st_error(-errno, "loader: cannot open %s: %s", path, strerror(errno));
					goto err;
				}
				close(ld->fd);
				ld->fd = fd;
				ld->direct = false;
				ld->align = 1;
			}
		}
	}
#endif
	if (ld->mode == ST_IO_PREAD && ld->direct) {
		if (posix_memalign((void **)&ld->staging, ST_LOAD_ALIGN, ld->chunk)) {
			ld->staging = NULL;
			ret = st_error(-ENOMEM, "loader: staging chunk of %u bytes: out of memory", ld->chunk);
			goto err;
		}
	}
	*out = ld;
	return 0;
err:
	st_loader_close(ld);
	return ret;
}

void st_loader_close(struct st_loader *ld)
{
	if (!ld)
		return;
#if ST_HAVE_LIBURING
	ld_uring_teardown(ld);
#endif
	if (!ld->staging_leaked)
		free(ld->staging);
	if (ld->fd >= 0)
		close(ld->fd);
	free(ld->path);
	free(ld);
}

enum st_io_mode st_loader_mode(const struct st_loader *ld) { return ld->mode; }
bool st_loader_direct(const struct st_loader *ld) { return ld->direct; }
uint64_t st_loader_file_size(const struct st_loader *ld) { return ld->file_size; }

/* ---- the plan ------------------------------------------------------------ */

static int plan_push_piece(struct ld_plan *p, uint64_t off, uint64_t len, uint64_t need,
			   unsigned char *dst, size_t span)
{
	if (p->n_pieces == p->cap_pieces) {
		size_t cap = p->cap_pieces ? p->cap_pieces * 2 : 64;
		struct ld_piece *np = realloc(p->pieces, cap * sizeof *np);
		if (!np)
			return -ENOMEM;
		p->pieces = np;
		p->cap_pieces = cap;
	}
	p->pieces[p->n_pieces++] = (struct ld_piece){ .off = off, .len = (uint32_t)len,
		.need = (uint32_t)need, .dst = dst, .span = span };
	return 0;
}

static int plan_push_need(struct ld_plan *p, uint64_t x, uint64_t y, size_t span)
{
	if (p->n_needs == p->cap_needs) {
		size_t cap = p->cap_needs ? p->cap_needs * 2 : 64;
		struct ld_need *nn = realloc(p->needs, cap * sizeof *nn);
		if (!nn)
			return -ENOMEM;
		p->needs = nn;
		p->cap_needs = cap;
	}
	p->needs[p->n_needs++] = (struct ld_need){ .x = x, .y = y, .span = span };
	return 0;
}

struct off_idx {
	uint64_t off;
	size_t idx;
};

static int cmp_off_idx(const void *a, const void *b)
{
	const struct off_idx *x = a, *y = b;
	if (x->off != y->off)
		return x->off < y->off ? -1 : 1;
	return x->idx < y->idx ? -1 : x->idx > y->idx;
}

static int cmp_need(const void *a, const void *b)
{
	const struct ld_need *x = a, *y = b;
	if (x->x != y->x)
		return x->x < y->x ? -1 : 1;
	return x->y < y->y ? -1 : x->y > y->y;
}

static int cmp_piece(const void *a, const void *b)
{
	const struct ld_piece *x = a, *y = b;
	return x->off < y->off ? -1 : x->off > y->off;
}

/* First need that may intersect [a, ...): the first index whose prefix
 * maximum of y exceeds a. */
static size_t need_lower(const struct ld_plan *p, uint64_t a)
{
	size_t lo = 0, hi = p->n_needs;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (p->needs_maxy[mid] > a)
			hi = mid;
		else
			lo = mid + 1;
	}
	return lo;
}

static int plan_flush_extent(struct ld_plan *p, uint64_t ea, uint64_t eb, uint32_t chunk)
{
	for (uint64_t a = ea; a < eb; a += chunk) {
		uint64_t b = ST_MIN(eb, a + chunk), need_end = a;
		for (size_t i = need_lower(p, a); i < p->n_needs && p->needs[i].x < b; i++)
			if (p->needs[i].y > a)
				need_end = ST_MAX(need_end, ST_MIN(p->needs[i].y, b));
		if (need_end > a && plan_push_piece(p, a, b - a, need_end - a, NULL, 0))
			return -ENOMEM;
	}
	return 0;
}

static void plan_free(struct ld_plan *p)
{
	free(p->pieces);
	free(p->needs);
	free(p->needs_maxy);
	memset(p, 0, sizeof *p);
}

/* Split the spans into direct reads and staged reads (see loader.h). */
static int plan_build(struct st_loader *ld, const struct st_load_span *spans, size_t n,
		      struct ld_plan *p)
{
	const uint64_t A = ld->align, chunk = ld->chunk;
	struct off_idx *order = NULL;
	int ret = -ENOMEM;

	memset(p, 0, sizeof *p);
	order = malloc((n ? n : 1) * sizeof *order);
	if (!order)
		goto fail;
	for (size_t i = 0; i < n; i++)
		order[i] = (struct off_idx){ spans[i].file_offset, i };
	qsort(order, n, sizeof *order, cmp_off_idx);

	for (size_t k = 0; k < n; k++) {
		const struct st_load_span *s = &spans[order[k].idx];
		size_t si = order[k].idx;
		uint64_t off = s->file_offset, end = off + s->nbytes, m0 = off, m1 = end;
		unsigned char *dst = s->dst;

		if (!s->nbytes)
			continue;
		p->total += s->nbytes;
		if (A > 1) {
			bool phase = (((uintptr_t)dst - (uintptr_t)off) & (A - 1)) == 0;
			m0 = (off + A - 1) & ~(A - 1);
			m1 = end & ~(A - 1);
			if (!phase || m1 <= m0)
				m0 = m1 = end;          /* everything staged */
		}
		if (m0 > off && plan_push_need(p, off, m0 < end ? m0 : end, si))
			goto fail;
		for (uint64_t a = m0; a < m1; a += chunk) {
			uint64_t len = ST_MIN(chunk, m1 - a);
			if (plan_push_piece(p, a, len, len, dst + (a - off), si))
				goto fail;
		}
		if (m1 < end && m0 < m1 && plan_push_need(p, m1, end, si))
			goto fail;
	}

	/* Staged reads: the 4 KiB-aligned cover of the needs, merged where
	 * the covers touch, cut into chunks. */
	if (p->n_needs) {
		uint64_t ea, eb;
		qsort(p->needs, p->n_needs, sizeof *p->needs, cmp_need);
		p->needs_maxy = malloc(p->n_needs * sizeof *p->needs_maxy);
		if (!p->needs_maxy)
			goto fail;
		for (size_t i = 0; i < p->n_needs; i++)
			p->needs_maxy[i] = ST_MAX(p->needs[i].y, i ? p->needs_maxy[i - 1] : 0);
		ea = p->needs[0].x & ~(A - 1);
		eb = (p->needs[0].y + A - 1) & ~(A - 1);
		for (size_t i = 1; i < p->n_needs; i++) {
			uint64_t na = p->needs[i].x & ~(A - 1), nb = (p->needs[i].y + A - 1) & ~(A - 1);
			if (na <= eb) {
				eb = ST_MAX(eb, nb);
				continue;
			}
			if (plan_flush_extent(p, ea, eb, ld->chunk))
				goto fail;
			ea = na;
			eb = nb;
		}
		if (plan_flush_extent(p, ea, eb, ld->chunk))
			goto fail;
	}
	qsort(p->pieces, p->n_pieces, sizeof *p->pieces, cmp_piece);
	free(order);
	return 0;
fail:
	free(order);
	plan_free(p);
	return st_error(ret, "loader: out of memory planning %zu spans", n);
}

/* ---- validation ---------------------------------------------------------- */

static int validate_spans(const struct st_loader *ld, const struct st_load_span *spans, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const struct st_load_span *s = &spans[i];
		uint64_t end;
		if (st_add_overflow_u64(s->file_offset, s->nbytes, &end))
			return st_error(-EINVAL, "loader: span %zu (%s): offset %llu + length %llu overflows",
					i, span_name(s), (unsigned long long)s->file_offset,
					(unsigned long long)s->nbytes);
		if (s->nbytes > SIZE_MAX || s->nbytes > UINTPTR_MAX - (uintptr_t)s->dst)
			return st_error(-EINVAL, "loader: span %zu (%s): length %llu does not fit in memory",
					i, span_name(s), (unsigned long long)s->nbytes);
		if (s->nbytes && !s->dst)
			return st_error(-EINVAL, "loader: span %zu (%s): no destination for %llu bytes",
					i, span_name(s), (unsigned long long)s->nbytes);
		if (s->dst_size < s->nbytes)
			return st_error(-EINVAL,
					"loader: span %zu (%s): destination holds %llu bytes but the span is %llu bytes (file offset %llu)",
					i, span_name(s), (unsigned long long)s->dst_size,
					(unsigned long long)s->nbytes, (unsigned long long)s->file_offset);
		if (end > ld->file_size)
			return st_error(-EIO,
					"loader: span %zu (%s): bytes [%llu, %llu) lie past the end of %s (%llu bytes): the file is truncated",
					i, span_name(s), (unsigned long long)s->file_offset,
					(unsigned long long)end, ld->path, (unsigned long long)ld->file_size);
	}
	return 0;
}

/* ---- completions (shared by the engines) ---------------------------------- */

/* The span holding file byte `at` among the piece's targets. */
static size_t span_at(const struct ld_plan *p, const struct ld_piece *pc, uint64_t at)
{
	if (pc->dst)
		return pc->span;
	for (size_t i = need_lower(p, at); i < p->n_needs && p->needs[i].x <= at; i++)
		if (p->needs[i].y > at)
			return p->needs[i].span;
	for (size_t i = need_lower(p, pc->off); i < p->n_needs && p->needs[i].x < pc->off + pc->need; i++)
		if (p->needs[i].y > pc->off)
			return p->needs[i].span;
	return 0;
}

static int eof_error(struct st_loader *ld, const struct ld_plan *p, const struct ld_piece *pc,
		     uint64_t at)
{
	size_t si = span_at(p, pc, at);
	const struct st_load_span *s = &ld->spans[si];
	struct stat sb;
	long long now = fstat(ld->fd, &sb) == 0 ? (long long)sb.st_size : -1;
	return st_error(-EIO,
			"loader: span %zu (%s) [%llu, %llu) of %s: the file ended at byte %llu while loading (size %llu at open, %lld now): it shrank or was truncated",
			si, span_name(s), (unsigned long long)s->file_offset,
			(unsigned long long)(s->file_offset + s->nbytes), ld->path,
			(unsigned long long)at, (unsigned long long)ld->file_size, now);
}

int ld_on_result(struct st_loader *ld, const struct ld_plan *p, const struct ld_piece *pc,
		 int64_t res, uint64_t *got, unsigned *retries)
{
	const struct st_load_opts *o = &ld->opts;

	/* tests: simulate what real devices do now and then */
	if (o->fault && o->fault_every && ++ld->n_results % o->fault_every == 0) {
		if (o->fault == ST_LOAD_FAULT_EAGAIN)
			res = -EAGAIN;
		else if (o->fault == ST_LOAD_FAULT_EINTR)
			res = -EINTR;
		else if (o->fault == ST_LOAD_FAULT_SHORT && res > 0) {
			uint64_t unit = ld->align > 1 ? ld->align : 1;
			uint64_t cut = ((uint64_t)res / 2) & ~(unit - 1);
			if (cut > 0)
				res = (int64_t)cut;
		}
	}
	if (res == -EAGAIN || res == -EINTR) {
		ld->st->n_retries++;
		if (++*retries > LD_MAX_RETRIES)
			return st_error(-EIO, "loader: read of %u bytes at offset %llu of %s: %s %u times in a row",
					pc->len, (unsigned long long)(pc->off + *got), ld->path,
					strerror((int)-res), LD_MAX_RETRIES);
		return 0;
	}
	if (res < 0)
		return st_error((int)res, "loader: read of %llu bytes at offset %llu of %s failed: %s",
				(unsigned long long)(pc->len - *got), (unsigned long long)(pc->off + *got),
				ld->path, strerror((int)-res));
	*retries = 0;
	ld->st->bytes_read += (uint64_t)res;
	*got += (uint64_t)res;
	if (*got >= pc->need)
		return 1;
	if (res == 0 || (ld->align > 1 && (uint64_t)res % ld->align))
		return eof_error(ld, p, pc, pc->off + *got);
	ld->st->n_short++;
	return 0;
}

static void report_progress(struct st_loader *ld, bool final)
{
	const struct st_load_opts *o = &ld->opts;
	double now, iv;
	if (!o->progress)
		return;
	now = st_time_now();
	iv = o->progress_interval_s > 0 ? o->progress_interval_s : 0.2;
	if (!final && now - ld->last_progress < iv)
		return;
	ld->last_progress = now;
	o->progress(o->progress_user, ld->done, ld->st->bytes_spans, now - ld->t0);
}

int ld_piece_done(struct st_loader *ld, const struct ld_plan *p, const struct ld_piece *pc,
		  const unsigned char *buf, uint64_t got)
{
	const struct st_load_opts *o = &ld->opts;
	int ret;

	if (pc->dst) {
		ld->st->bytes_direct += pc->len;
		ld->done += pc->len;
		if (o->on_chunk) {
			const struct st_load_span *s = &ld->spans[pc->span];
			ret = o->on_chunk(o->chunk_user, pc->span, pc->off - s->file_offset, pc->len);
			if (ret)
				return st_error(ret < 0 ? ret : -ECANCELED,
						"loader: the chunk callback stopped the load at span %zu (%s)",
						pc->span, span_name(s));
		}
	} else {
		uint64_t a = pc->off, b = pc->off + ST_MIN(got, pc->len);
		for (size_t i = need_lower(p, a); i < p->n_needs && p->needs[i].x < b; i++) {
			const struct ld_need *nd = &p->needs[i];
			const struct st_load_span *s = &ld->spans[nd->span];
			uint64_t x = ST_MAX(nd->x, a), y = ST_MIN(nd->y, b);
			if (y <= x)
				continue;
			memcpy((unsigned char *)s->dst + (x - s->file_offset), buf + (x - a), y - x);
			ld->st->bytes_copied += y - x;
			ld->done += y - x;
			if (o->on_chunk) {
				ret = o->on_chunk(o->chunk_user, nd->span, x - s->file_offset, y - x);
				if (ret)
					return st_error(ret < 0 ? ret : -ECANCELED,
							"loader: the chunk callback stopped the load at span %zu (%s)",
							nd->span, span_name(s));
			}
		}
	}
	report_progress(ld, false);
	return 0;
}

/* ---- pread ---------------------------------------------------------------- */

static int read_pread(struct st_loader *ld, const struct ld_plan *p)
{
	for (size_t i = 0; i < p->n_pieces; i++) {
		const struct ld_piece *pc = &p->pieces[i];
		unsigned char *buf = pc->dst ? pc->dst : ld->staging;
		uint64_t got = 0;
		unsigned retries = 0;
		int r;
		do {
			ssize_t n = pread(ld->fd, buf + got, pc->len - got, (off_t)(pc->off + got));
			ld->st->n_reads++;
			r = ld_on_result(ld, p, pc, n < 0 ? -(int64_t)errno : (int64_t)n, &got, &retries);
			if (r < 0)
				return r;
		} while (r == 0);
		r = ld_piece_done(ld, p, pc, buf, got);
		if (r < 0)
			return r;
	}
	return 0;
}

/* ---- mmap ----------------------------------------------------------------- */

/* Map each span (page-aligned), copy it chunk by chunk, unmap.  A file that
 * shrinks while mapped raises SIGBUS, as with every mmap loader; the size
 * is checked before each span. */
static int read_mmap(struct st_loader *ld, const struct ld_plan *p)
{
	const uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
	for (size_t i = 0; i < p->n_pieces;) {
		const struct ld_piece *first = &p->pieces[i];
		const struct st_load_span *s = &ld->spans[first->span];
		uint64_t pa = s->file_offset & ~(page - 1), end = s->file_offset + s->nbytes;
		struct stat sb;
		unsigned char *map;

		if (fstat(ld->fd, &sb) == 0 && (uint64_t)sb.st_size < end)
			return eof_error(ld, p, first, (uint64_t)sb.st_size);
		map = mmap(NULL, end - pa, PROT_READ, MAP_PRIVATE, ld->fd, (off_t)pa);
		if (map == MAP_FAILED)
			return st_error(-errno, "loader: mmap of span %zu (%s) [%llu, %llu) of %s: %s",
					first->span, span_name(s), (unsigned long long)s->file_offset,
					(unsigned long long)end, ld->path, strerror(errno));
		(void)madvise(map, end - pa, MADV_SEQUENTIAL);
		for (; i < p->n_pieces && p->pieces[i].span == first->span &&
		       p->pieces[i].dst && p->pieces[i].off < end; i++) {
			const struct ld_piece *pc = &p->pieces[i];
			int r;
			memcpy(pc->dst, map + (pc->off - pa), pc->len);
			ld->st->n_reads++;
			ld->st->bytes_read += pc->len;
			ld->st->bytes_copied += pc->len;
			ld->st->bytes_direct -= pc->len;    /* ld_piece_done counts it as direct */
			r = ld_piece_done(ld, p, pc, NULL, pc->len);
			if (r < 0) {
				munmap(map, end - pa);
				return r;
			}
		}
		munmap(map, end - pa);
	}
	return 0;
}

/* ---- the read ------------------------------------------------------------- */

int st_loader_read(struct st_loader *ld, const struct st_load_span *spans, size_t n,
		   struct st_load_stats *stats)
{
	struct st_load_stats local;
	struct ld_plan plan;
	struct stat sb;
	int ret;

	if (!stats)
		stats = &local;
	memset(stats, 0, sizeof *stats);
	stats->mode = ld->mode;
	stats->direct = ld->direct;
#if ST_HAVE_LIBURING
	stats->fixed_buffers = ld->mode == ST_IO_URING && ld->fixed;
#endif
	if (n && !spans)
		return st_error(-EINVAL, "loader: %zu spans but no span array", n);
	if (ld->staging_leaked)
		return st_error(-EIO, "loader: an earlier load of %s left reads in flight", ld->path);
	/* the size now, not at open: the file may have changed in between */
	if (fstat(ld->fd, &sb) == 0)
		ld->file_size = (uint64_t)sb.st_size;
	ret = validate_spans(ld, spans, n);
	if (ret < 0)
		return ret;
	ret = plan_build(ld, spans, n, &plan);
	if (ret < 0)
		return ret;
	ld->spans = spans;
	ld->n_spans = n;
	ld->st = stats;
	ld->done = 0;
	ld->n_results = 0;
	stats->bytes_spans = plan.total;
	ld->t0 = ld->last_progress = st_time_now();

	switch (ld->mode) {
#if ST_HAVE_LIBURING
	case ST_IO_URING:
		ret = ld_uring_read(ld, &plan);
		break;
#endif
	case ST_IO_MMAP:
		ret = read_mmap(ld, &plan);
		break;
	default:
		ret = read_pread(ld, &plan);
		break;
	}
	stats->seconds = st_time_now() - ld->t0;
	if (ret == 0)
		report_progress(ld, true);
	if (ret == 0 && ld->opts.flags & ST_LOAD_VERIFY)
		ret = st_load_verify(spans, n);
	plan_free(&plan);
	ld->spans = NULL;
	ld->st = NULL;
	return ret;
}

int st_load_spans(const char *path, const struct st_load_span *spans, size_t n,
		  const struct st_load_opts *opts, struct st_load_stats *stats)
{
	struct st_loader *ld;
	int ret = st_loader_open(path, opts, &ld);
	if (ret < 0)
		return ret;
	ret = st_loader_read(ld, spans, n, stats);
	st_loader_close(ld);
	return ret;
}

/* ---- layout ----------------------------------------------------------------- */

int st_load_layout(const struct st_load_span *spans, size_t n, uint64_t *dst_offset,
		   uint64_t *arena_size)
{
	struct off_idx *order = malloc((n ? n : 1) * sizeof *order);
	uint64_t cursor = 0;
	if (!order)
		return st_error(-ENOMEM, "loader: out of memory laying out %zu spans", n);
	for (size_t i = 0; i < n; i++)
		order[i] = (struct off_idx){ spans[i].file_offset, i };
	qsort(order, n, sizeof *order, cmp_off_idx);
	for (size_t k = 0; k < n; k++) {
		const struct st_load_span *s = &spans[order[k].idx];
		/* the next position with the file offset's phase */
		uint64_t pos = cursor + ((s->file_offset - cursor) & (ST_LOAD_ALIGN - 1));
		if (st_add_overflow_u64(pos, s->nbytes, &cursor)) {
			size_t idx = order[k].idx;
			free(order);
			return st_error(-EINVAL, "loader: layout of span %zu (%s) overflows", idx,
					span_name(&spans[idx]));
		}
		dst_offset[order[k].idx] = pos;
	}
	free(order);
	/* round up so the last O_DIRECT-free tail stays inside */
	if (st_align_up_u64(cursor, ST_LOAD_ALIGN, arena_size))
		return st_error(-EINVAL, "loader: layout size overflows");
	if (*arena_size == 0)
		*arena_size = ST_LOAD_ALIGN;
	return 0;
}
