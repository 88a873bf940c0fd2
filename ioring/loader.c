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

bool ld_env_set(const char *name)
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

	if (flags & ST_LOAD_FAIL_DIRECT || ld_env_set("ST_IO_NO_DIRECT")) {
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

const char *ld_uring_unavailable(bool forced)
{
	FILE *f;
	int v = 0;
#if !ST_HAVE_LIBURING
	(void)forced;
	(void)f;
	(void)v;
	return "built without liburing";
#else
	if (forced || ld_env_set("ST_IO_URING_DISABLE"))
		return "forced by a test flag / ST_IO_URING_DISABLE";
	f = fopen("/proc/sys/kernel/io_uring_disabled", "r");
	if (f) {
		if (fscanf(f, "%d", &v) != 1)
			v = 0;
		fclose(f);
	}
	/* 1: only processes in kernel.io_uring_group; the ring setup tells. */
	return v == 2 ? "disabled by /proc/sys/kernel/io_uring_disabled" : NULL;
#endif
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
	ld->fd_buf = -1;
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
		const char *no_uring = ld_uring_unavailable(ld->opts.flags & ST_LOAD_FAIL_URING);
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
	if (ld->fd_buf >= 0)
		close(ld->fd_buf);
	free(ld->path);
	free(ld);
}

int st_loader_register_buffers(struct st_loader *ld, void *const *bufs, uint32_t n, size_t len, const char *what)
{
	if (!ld || (n && !bufs) || n > ST_LOAD_MAX_BUFFERS || len > ((size_t)1 << 30))
		return st_error(-EINVAL, "loader: registering %u buffers of %zu bytes: at most %u of at most 1 GiB",
				n, len, ST_LOAD_MAX_BUFFERS);
	for (uint32_t i = 0; i < n; i++)
		if (!bufs[i] || !len)
			return st_error(-EINVAL, "loader: registering buffer %u: no memory", i);
	st_loader_unregister_buffers(ld);
#if ST_HAVE_LIBURING
	if (ld->mode == ST_IO_URING && n)
		return ld_uring_register_user(ld, bufs, n, len, what ? what : "caller buffers");
#else
	(void)what;
#endif
	return 0;
}

void st_loader_unregister_buffers(struct st_loader *ld)
{
#if ST_HAVE_LIBURING
	if (ld)
		ld_uring_unregister_user(ld);
#else
	(void)ld;
#endif
}

enum st_io_mode st_loader_mode(const struct st_loader *ld) { return ld->mode; }
bool st_loader_direct(const struct st_loader *ld) { return ld->direct; }
uint64_t st_loader_file_size(const struct st_loader *ld) { return ld->file_size; }

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
	if (pc->dst) {
		for (size_t j = pc->span; j < pc->span_end; j++) {
			const struct st_load_span *s = &p->spans[p->order[j]];
			if (s->file_offset + s->nbytes > at)
				return p->order[j];
		}
		return p->order[pc->span];
	}
	for (size_t i = ld_need_lower(p, at); i < p->n_needs && p->needs[i].x <= at; i++)
		if (p->needs[i].y > at)
			return p->needs[i].span;
	for (size_t i = ld_need_lower(p, pc->off); i < p->n_needs && p->needs[i].x < pc->off + pc->need; i++)
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
	if (o->fault == ST_LOAD_FAULT_EFAULT_DIRECT) {
		/* from the fault_every-th completion on (0: from the first) */
		bool armed = !o->fault_every || ++ld->n_results >= o->fault_every;
		if (pc->dst && res >= 0 && armed)
			res = -EFAULT;
	} else if (o->fault && o->fault_every && ++ld->n_results % o->fault_every == 0) {
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

/* span.hash check of spans[i]; the message of st_load_verify. */
static int verify_span(const struct st_load_span *spans, size_t i)
{
	const struct st_load_span *s = &spans[i];
	uint64_t h = s->nbytes ? st_hash64(s->dst, (size_t)s->nbytes, 0) : st_hash64("", 0, 0);
	if (h != s->hash)
		return st_error(-EBADMSG,
				"verify: span %zu (%s) at file offset %llu, %llu bytes: hash %016llx, expected %016llx",
				i, span_name(s), (unsigned long long)s->file_offset, (unsigned long long)s->nbytes,
				(unsigned long long)h, (unsigned long long)s->hash);
	return 0;
}

/* ST_LOAD_VERIFY with on_ready: check the spans (in file order) that lie
 * wholly below raw, the complete prefix; *mark: where the verified bytes
 * end (the first span not checked yet starts there, or raw). */
static int verify_below(struct st_loader *ld, const struct ld_plan *p, uint64_t raw, uint64_t *mark)
{
	while (ld->verified < p->n_order) {
		size_t si = p->order[ld->verified];
		const struct st_load_span *s = &p->spans[si];
		int ret;
		if (s->file_offset + s->nbytes > raw)
			break;
		ret = verify_span(p->spans, si);
		if (ret < 0)
			return ret;
		ld->verified++;
	}
	*mark = ld->verified < p->n_order ? ST_MIN(raw, p->spans[p->order[ld->verified]].file_offset) : raw;
	return 0;
}

/* The complete prefix of the pieces (sorted by offset) moved: every span
 * byte below the first unfinished piece is in place.  With ST_LOAD_VERIFY
 * the consumer's mark stops at the first span not verified yet, and while
 * it stays there on_ready is called again with it unchanged, so a cancel
 * (its return value) is noticed while bytes arrive. */
static int advance_ready(struct st_loader *ld, const struct ld_plan *p, const struct ld_piece *pc)
{
	uint64_t mark;
	int ret;
	p->done[pc - p->pieces] = 1;
	while (ld->ready_prefix < p->n_pieces && p->done[ld->ready_prefix])
		ld->ready_prefix++;
	mark = ld->ready_prefix < p->n_pieces ? p->pieces[ld->ready_prefix].off : UINT64_MAX;
	if (ld->opts.flags & ST_LOAD_VERIFY) {
		if (mark <= ld->raw_mark)
			return 0;
		ld->raw_mark = mark;
		ret = verify_below(ld, p, mark, &mark);
		if (ret < 0)
			return ret;
		mark = ST_MAX(mark, ld->ready_mark);
	} else if (mark <= ld->ready_mark) {
		return 0;
	}
	ld->ready_mark = mark;
	ret = ld->opts.on_ready(ld->opts.ready_user, mark);
	if (ret)
		return st_error(ret < 0 ? ret : -ECANCELED, "loader: the ready callback stopped the load of %s at offset %llu",
				ld->path, (unsigned long long)mark);
	return 0;
}

int ld_piece_done(struct st_loader *ld, const struct ld_plan *p, const struct ld_piece *pc,
		  const unsigned char *buf, uint64_t got)
{
	const struct st_load_opts *o = &ld->opts;
	int ret;

	if (pc->dst) {
		uint64_t a = pc->off, b = pc->off + pc->len;
		ld->st->bytes_direct += pc->len;
		ld->done += pc->len;
		for (size_t j = pc->span; o->on_chunk && j < pc->span_end; j++) {
			const struct st_load_span *s = &p->spans[p->order[j]];
			uint64_t x = ST_MAX(a, s->file_offset), y = ST_MIN(b, s->file_offset + s->nbytes);
			if (s->file_offset >= b)
				break;
			if (y <= x)
				continue;
			ret = o->on_chunk(o->chunk_user, p->order[j], x - s->file_offset, y - x);
			if (ret)
				return st_error(ret < 0 ? ret : -ECANCELED,
						"loader: the chunk callback stopped the load at span %zu (%s)",
						p->order[j], span_name(s));
		}
	} else {
		uint64_t a = pc->off, b = pc->off + ST_MIN(got, pc->len);
		for (size_t i = ld_need_lower(p, a); i < p->n_needs && p->needs[i].x < b; i++) {
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
	return p->done ? advance_ready(ld, p, pc) : 0;
}

/* ---- pread ---------------------------------------------------------------- */

static int read_pread(struct st_loader *ld, const struct ld_plan *p)
{
	if (p->n_staged && !ld->staging) {
		if (posix_memalign((void **)&ld->staging, ST_LOAD_ALIGN, ld->chunk)) {
			ld->staging = NULL;
			return st_error(-ENOMEM, "loader: staging chunk of %u bytes: out of memory", ld->chunk);
		}
		ld->n_staging = 1;
	}
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

#define LD_MMAP_WINDOW (64u << 20)

/* Map a window of the file, copy the pieces inside it, move on (so the
 * mapping never holds more than a window of page cache in the RSS).  A
 * file that shrinks under a mapping raises SIGBUS, as with every mmap
 * loader; the size is checked before each chunk is copied. */
static int read_mmap(struct st_loader *ld, const struct ld_plan *p)
{
	const uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
	unsigned char *map = NULL;
	uint64_t wa = 0, wl = 0;
	int ret = 0;

	for (size_t i = 0; i < p->n_pieces && !ret; i++) {
		const struct ld_piece *pc = &p->pieces[i];
		uint64_t end = pc->off + pc->len;
		struct stat sb;

		if (fstat(ld->fd, &sb) != 0)
			sb.st_size = (off_t)ld->file_size;
		if ((uint64_t)sb.st_size < end) {
			ret = eof_error(ld, p, pc, (uint64_t)sb.st_size);
			break;
		}
		if (!map || pc->off < wa || end > wa + wl) {
			if (map)
				munmap(map, wl);
			wa = pc->off & ~(page - 1);
			wl = ST_MIN(ST_MAX((uint64_t)LD_MMAP_WINDOW, end - wa), (uint64_t)sb.st_size - wa);
			map = mmap(NULL, wl, PROT_READ, MAP_PRIVATE, ld->fd, (off_t)wa);
			if (map == MAP_FAILED) {
				map = NULL;
				ret = st_error(-errno, "loader: mmap of [%llu, %llu) of %s: %s",
					       (unsigned long long)wa, (unsigned long long)(wa + wl), ld->path,
					       strerror(errno));
				break;
			}
			(void)madvise(map, wl, MADV_SEQUENTIAL);
		}
		memcpy(pc->dst, map + (pc->off - wa), pc->len);
		ld->st->n_reads++;
		ld->st->bytes_read += pc->len;
		ld->st->bytes_copied += pc->len;
		ld->st->bytes_direct -= pc->len;    /* ld_piece_done counts it as direct */
		ret = ld_piece_done(ld, p, pc, NULL, pc->len);
	}
	if (map)
		munmap(map, wl);
	return ret;
}

static atomic_flag announced_efault = ATOMIC_FLAG_INIT;

static int plan_for(struct st_loader *ld, const struct st_load_span *spans, size_t n, bool staged_only,
		    struct ld_plan *p)
{
	int ret = ld_plan_build(spans, n, ld->align, ld->chunk, staged_only, ld->ready_mark, p);
	ld->ready_prefix = 0;
	if (ret < 0 || !ld->opts.on_ready)
		return ret;
	p->done = calloc(p->n_pieces ? p->n_pieces : 1, 1);
	if (!p->done) {
		ld_plan_free(p);
		return st_error(-ENOMEM, "loader: out of memory planning %zu spans", n);
	}
	return 0;
}

static int run_engine(struct st_loader *ld, const struct ld_plan *p)
{
	switch (ld->mode) {
#if ST_HAVE_LIBURING
	case ST_IO_URING:
		return ld_uring_read(ld, p);
#endif
	case ST_IO_MMAP:
		return read_mmap(ld, p);
	default:
		return read_pread(ld, p);
	}
}

/* ---- page-cache residency -------------------------------------------------- */

static atomic_flag announced_cached = ATOMIC_FLAG_INIT;

/* Fraction (0..1) of the pages of the spans' range that the page cache
 * holds (mincore on a mapping that is never touched), or -1 if unknown. */
static double cached_fraction(const struct st_loader *ld, const struct st_load_span *spans, size_t n)
{
	const uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
	uint64_t lo = UINT64_MAX, hi = 0, npages, resident = 0, total = 0;
	unsigned char *vec;
	void *map;

	for (size_t i = 0; i < n; i++)
		if (spans[i].nbytes) {
			lo = ST_MIN(lo, spans[i].file_offset);
			hi = ST_MAX(hi, spans[i].file_offset + spans[i].nbytes);
		}
	if (hi <= lo)
		return -1;
	lo &= ~(page - 1);
	npages = (hi - lo + page - 1) / page;
	if (npages > ((uint64_t)1 << 26))
		return -1;
	map = mmap(NULL, hi - lo, PROT_READ, MAP_SHARED, ld->fd, (off_t)lo);
	if (map == MAP_FAILED)
		return -1;
	vec = malloc(npages);
	if (vec && mincore(map, hi - lo, vec) == 0) {
		/* count only the pages the spans cover */
		for (size_t i = 0; i < n; i++) {
			uint64_t a, b;
			if (!spans[i].nbytes)
				continue;
			a = (spans[i].file_offset - lo) / page;
			b = (spans[i].file_offset + spans[i].nbytes - lo + page - 1) / page;
			for (uint64_t k = a; k < b; k++) {
				resident += vec[k] & 1;
				total++;
			}
		}
	}
	free(vec);
	munmap(map, hi - lo);
	return total ? (double)resident / (double)total : -1;
}

int st_load_cached_fraction(const char *path, uint64_t offset, uint64_t len, double *fraction)
{
	const uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
	struct stat sb;
	uint64_t lo, hi, np, res = 0;
	unsigned char *vec = NULL;
	void *map;
	int fd = open(path, O_RDONLY | O_CLOEXEC), ret = 0;
	*fraction = 0;
	if (fd < 0)
		return st_error(-errno, "cached fraction: cannot open %s: %s", path, strerror(errno));
	if (fstat(fd, &sb) != 0 || sb.st_size < 0) {
		ret = st_error(-EIO, "cached fraction: fstat %s failed", path);
		goto out;
	}
	lo = offset & ~(page - 1);
	hi = len ? ST_MIN(offset + len, (uint64_t)sb.st_size) : (uint64_t)sb.st_size;
	if (offset > (uint64_t)sb.st_size || hi <= lo)
		goto out;
	np = (hi - lo + page - 1) / page;
	map = mmap(NULL, hi - lo, PROT_READ, MAP_SHARED, fd, (off_t)lo);
	if (map == MAP_FAILED) {
		ret = st_error(-errno, "cached fraction: mmap %s: %s", path, strerror(errno));
		goto out;
	}
	vec = malloc(np);
	if (!vec || mincore(map, hi - lo, vec) != 0)
		ret = st_error(vec ? -errno : -ENOMEM, "cached fraction: mincore on %s failed", path);
	for (uint64_t i = 0; !ret && i < np; i++)
		res += vec[i] & 1;
	if (!ret)
		*fraction = (double)res / (double)np;
	free(vec);
	munmap(map, hi - lo);
out:
	close(fd);
	return ret;
}

/* ST_IO_AUTO with O_DIRECT: when the page cache already holds (nearly) all
 * the bytes, reading around it would go back to the disk; read through it. */
static int maybe_use_cache(struct st_loader *ld, const struct st_load_span *spans, size_t n, bool *switched)
{
	double f;
	*switched = false;
	if (ld->opts.mode != ST_IO_AUTO || ld->mode != ST_IO_URING || !ld->direct)
		return 0;
	f = cached_fraction(ld, spans, n);
	if (f < 0.9)
		return 0;
	if (ld->fd_buf < 0) {
		ld->fd_buf = open(ld->path, O_RDONLY | O_CLOEXEC);
		if (ld->fd_buf < 0)
			return 0;
	}
	if (!atomic_flag_test_and_set(&announced_cached))
		st_log(ST_LOG_INFO, "the page cache holds %.0f%% of the bytes to load from %s: reading through it",
		       100.0 * f, ld->path);
	*switched = true;
	return 0;
}

/* ---- the read ------------------------------------------------------------- */

int st_loader_read(struct st_loader *ld, const struct st_load_span *spans, size_t n,
		   struct st_load_stats *stats)
{
	struct st_load_stats local;
	struct ld_plan plan;
	struct stat sb;
	bool cached = false;
	int ret, saved_fd = -1;

	if (!stats)
		stats = &local;
	memset(stats, 0, sizeof *stats);
	stats->mode = ld->mode;
	stats->direct = ld->direct;
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
	maybe_use_cache(ld, spans, n, &cached);
	if (cached) {
		/* this read only: the buffered descriptor, no alignment */
		saved_fd = ld->fd;
		ld->fd = ld->fd_buf;
		ld->align = 1;
		ld->direct = false;
		stats->direct = false;
	}
#if ST_HAVE_LIBURING
	/* buffered reads of cached pages would copy inline, one at a time, in
	 * io_uring_submit; in io-wq workers the copies run in parallel */
	ld->async_buffered = !ld->direct && !(ld->opts.flags & ST_LOAD_INLINE_BUFFERED);
#endif
	ld->ready_mark = ld->raw_mark = 0;
	ld->verified = 0;
	ret = plan_for(ld, spans, n, false, &plan);
	if (ret < 0)
		goto restore;
	ld->spans = spans;
	ld->n_spans = n;
	ld->st = stats;
	ld->done = 0;
	ld->n_results = 0;
	stats->bytes_spans = plan.total;
	ld->t0 = ld->last_progress = st_time_now();

	ret = run_engine(ld, &plan);
	if (ret == -EFAULT && ld->direct && plan.n_staged < plan.n_pieces) {
		/* The destinations refuse O_DIRECT: once more through staging,
		 * from the published watermark on (0 without on_ready).  The
		 * bytes below it are in place and a consumer may be reading
		 * them on another thread: they are not written again. */
		uint64_t from = ld->ready_mark, direct_below = 0, left = 0;
		if (!atomic_flag_test_and_set(&announced_efault))
			st_log(ST_LOG_INFO, "O_DIRECT into the destination memory failed (EFAULT): "
			       "staging every read from %s", ld->path);
		for (size_t i = 0; i < plan.n_pieces && plan.pieces[i].off < from; i++)
			if (plan.pieces[i].dst)
				direct_below += plan.pieces[i].len;
		ld_plan_free(&plan);
		ret = plan_for(ld, spans, n, true, &plan);
		if (ret < 0)
			goto restore;
		for (size_t i = 0; i < plan.n_needs; i++)
			left += plan.needs[i].y - plan.needs[i].x;
		ld->done = plan.total - left;
		ld->raw_mark = from;
		/* spans checked by ST_LOAD_VERIFY that reach past `from` are read again */
		for (size_t k = 0; k < ld->verified; k++) {
			const struct st_load_span *s = &spans[plan.order[k]];
			if (s->file_offset + s->nbytes > from) {
				ld->verified = k;
				break;
			}
		}
		stats->bytes_direct = ST_MIN(direct_below, ld->done);
		stats->bytes_copied = ld->done - stats->bytes_direct;
		ret = run_engine(ld, &plan);
	}
	stats->seconds = st_time_now() - ld->t0;
	if (ret == 0)
		report_progress(ld, true);
	if (ret == 0 && ld->opts.flags & ST_LOAD_VERIFY) {
		/* with on_ready the non-empty spans were checked as they completed */
		bool checked = plan.done && ld->verified == plan.n_order;
		for (size_t i = 0; i < n && ret == 0; i++)
			if (!checked || !spans[i].nbytes)
				ret = verify_span(spans, i);
	}
	ld_plan_free(&plan);
	ld->spans = NULL;
	ld->st = NULL;
restore:
	if (cached) {
		ld->fd = saved_fd;
		ld->align = ST_LOAD_ALIGN;
		ld->direct = true;
	}
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
