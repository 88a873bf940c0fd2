/* loader_uring.c: the io_uring engine of the span loader.
 *
 * One ring of queue_depth entries.  Reads go straight into the
 * destinations where the plan allows it; the others use staging chunks,
 * allocated on demand (as many as the plan has staged reads, at most
 * queue_depth).  They are registered with the ring as fixed buffers when
 * the kernel lets us (READ_FIXED: no page pinning per read), and with
 * ST_LOAD_FIXED_DEST the destinations too: a sparse table per load, the
 * staging chunks first, then the destinations in windows of a few MiB,
 * each registered when the first read into it is submitted, so pinning
 * (and first-touch faulting) of destination memory goes on while earlier
 * reads are in flight instead of all up front.  (Not the default: here
 * long-term pinning of fresh anonymous memory made loads 1.7-4x slower
 * than pinning per read.)  A
 * refused registration (RLIMIT_MEMLOCK, memory the kernel cannot pin,
 * ST_IO_NO_FIXED=1 / ST_LOAD_FAIL_FIXED) means plain reads, announced once.
 * Caller memory that many loads read into (the upload slots) can instead
 * hold the table for the loader's lifetime (st_loader_register_buffers);
 * then reads into it are READ_FIXED and the staging chunks are plain.
 * The engine keeps queue_depth reads in flight, submits in batches and
 * sleeps in io_uring_wait_cqe until a completion arrives; short reads,
 * -EAGAIN and -EINTR resubmit the rest from the same slot.  On an error it
 * stops issuing and drains what is in flight before returning, so no read
 * can land in freed memory. */
#include "loader_impl.h"

#if ST_HAVE_LIBURING

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include "util.h"

int ld_uring_setup(struct st_loader *ld, const char **why)
{
	int ret = io_uring_queue_init(ld->qd, &ld->ring, 0);
	if (ret < 0) {
		*why = "io_uring_queue_init failed";
		return ret;
	}
	ld->ring_ok = true;
	return 0;
}

void ld_uring_staging_release(struct st_loader *ld)
{
	if (ld->fixed)
		io_uring_unregister_buffers(&ld->ring);
	ld->fixed = false;
	if (!ld->staging_leaked)
		free(ld->staging);
	ld->staging = NULL;
	ld->n_staging = 0;
}

/* At least `want` staging chunks. */
static int staging_reserve(struct st_loader *ld, uint32_t want)
{
	size_t bytes;

	if (want <= ld->n_staging)
		return 0;
	ld_uring_staging_release(ld);
	if (st_mul_overflow_size(want, ld->chunk, &bytes) ||
	    posix_memalign((void **)&ld->staging, ST_LOAD_ALIGN, bytes)) {
		ld->staging = NULL;
		return st_error(-ENOMEM, "loader: %u staging chunks of %u bytes: out of memory", want, ld->chunk);
	}
	ld->n_staging = want;
	return 0;
}

void ld_uring_teardown(struct st_loader *ld)
{
	if (!ld->ring_ok)
		return;
	ld_uring_unregister_user(ld);
	ld_uring_staging_release(ld);
	io_uring_queue_exit(&ld->ring);
	ld->ring_ok = false;
}

struct slot {
	size_t piece;
	uint64_t got;
	unsigned retries;
	int stg;                    /* staging chunk, or -1 */
	int fixed;                  /* registered buffer index, or -1 */
};

/* Destination memory registered with the ring: windows of whole pieces,
 * each one table entry (after the staging chunks). */
struct dwin {
	unsigned char *base;
	size_t len;
	bool reg;
};

#define LD_WIN_GAP ((size_t)64 << 10)        /* bytes between pieces a window may span */
#define LD_WIN_MIN ((size_t)8 << 20)
#define LD_MAX_REG 16384u                   /* the kernel's table limit */
#define LD_REG_MAX_LEN ((size_t)1 << 30)     /* and per-buffer limit */

struct fixed_state {
	uint32_t n_stg;             /* staging chunks registered at 0..n_stg-1 */
	uint32_t stg_slots;         /* table entries before the windows */
	struct dwin *win;
	uint32_t n_win;
	uint32_t *piece_win;        /* per piece: its window, or UINT32_MAX */
	bool table;                 /* a (sparse) table is registered */
	bool dest_ok;               /* keep registering destination windows */
};

static atomic_flag announced_no_fixed = ATOMIC_FLAG_INIT;

static void announce_no_fixed(const struct st_loader *ld, const char *what, int err)
{
	if (!atomic_flag_test_and_set(&announced_no_fixed))
		st_log(ST_LOG_INFO, "loader: registering %s with the ring failed (%s): plain reads into it (%s)",
		       what, strerror(-err), ld->path);
}

static bool fixed_refused(const struct st_loader *ld)
{
	const char *v = getenv("ST_IO_NO_FIXED");
	return ld->opts.flags & ST_LOAD_FAIL_FIXED || (v && *v && strcmp(v, "0") != 0);
}

static atomic_flag announced_no_fixed_user = ATOMIC_FLAG_INIT;

static void announce_no_fixed_user(const struct st_loader *ld, const char *what, uint32_t n, int err)
{
	if (!atomic_flag_test_and_set(&announced_no_fixed_user))
		st_log(ST_LOG_INFO, "loader: registering %u %s with the ring failed (%s): plain reads into them (%s)",
		       n, what, strerror(-err), ld->path);
}

int ld_uring_register_user(struct st_loader *ld, void *const *bufs, uint32_t n, size_t len, const char *what)
{
	struct iovec iov[ST_LOAD_MAX_BUFFERS];
	int ret;

	if (ld->opts.flags & ST_LOAD_NO_FIXED)
		return 0;
	if (fixed_refused(ld)) {
		announce_no_fixed_user(ld, what, n, -ENOMEM);
		return 0;
	}
	if (ld->staging_leaked)
		return 0;               /* an earlier load's table may still be in use */
	for (uint32_t i = 0; i < n; i++)
		iov[i] = (struct iovec){ bufs[i], len };
	ret = io_uring_register_buffers(&ld->ring, iov, n);
	if (ret < 0) {
		announce_no_fixed_user(ld, what, n, ret);
		return 0;
	}
	for (uint32_t i = 0; i < n; i++)
		ld->user_buf[i] = bufs[i];
	ld->user_len = len;
	ld->n_user = n;
	return (int)n;
}

void ld_uring_unregister_user(struct st_loader *ld)
{
	if (!ld->n_user)
		return;
	if (!ld->staging_leaked)
		io_uring_unregister_buffers(&ld->ring);
	ld->n_user = 0;
}

/* The table entry of the caller buffer holding [dst, dst + len), or -1. */
static int user_index(const struct st_loader *ld, const unsigned char *dst, size_t len)
{
	for (uint32_t i = 0; i < ld->n_user; i++)
		if (dst >= ld->user_buf[i] && len <= ld->user_len &&
		    (size_t)(dst - ld->user_buf[i]) <= ld->user_len - len)
			return (int)i;
	return -1;
}

/* Windows over the direct pieces' destinations (contiguous or nearly so,
 * at least LD_WIN_MIN bytes each, at most 1 GiB). */
static int windows_plan(const struct ld_plan *p, uint32_t room, struct fixed_state *fs)
{
	size_t direct = 0, wmin;
	for (size_t i = 0; i < p->n_pieces; i++)
		if (p->pieces[i].dst)
			direct += p->pieces[i].len;
	if (!direct || !room)
		return 0;
	wmin = ST_MAX(LD_WIN_MIN, direct / room + 1);
	fs->piece_win = malloc(p->n_pieces * sizeof *fs->piece_win);
	fs->win = calloc(p->n_pieces, sizeof *fs->win);
	if (!fs->piece_win || !fs->win)
		return -ENOMEM;
	for (size_t i = 0; i < p->n_pieces; i++) {
		const struct ld_piece *pc = &p->pieces[i];
		struct dwin *w = fs->n_win ? &fs->win[fs->n_win - 1] : NULL;
		fs->piece_win[i] = UINT32_MAX;
		if (!pc->dst)
			continue;
		if (w && w->len < wmin && pc->dst >= w->base + w->len && pc->dst <= w->base + w->len + LD_WIN_GAP &&
		    (size_t)(pc->dst - w->base) + pc->len <= LD_REG_MAX_LEN) {
			w->len = (size_t)(pc->dst - w->base) + pc->len;
		} else {
			if (fs->n_win == room)
				continue;       /* no table entry left: plain reads */
			w = &fs->win[fs->n_win++];
			*w = (struct dwin){ .base = pc->dst, .len = pc->len };
		}
		fs->piece_win[i] = fs->n_win - 1;
	}
	return 0;
}

/* The load's buffer table: staging chunks now, destination windows later. */
static int fixed_setup(struct st_loader *ld, const struct ld_plan *p, uint32_t n_stg, struct fixed_state *fs)
{
	struct iovec *iov;
	int ret;

	memset(fs, 0, sizeof *fs);
	if (ld->opts.flags & ST_LOAD_NO_FIXED)
		return 0;
	if (fixed_refused(ld)) {
		if (n_stg || (ld->opts.flags & ST_LOAD_FIXED_DEST && p->n_staged < p->n_pieces))
			announce_no_fixed(ld, "staging and destination memory", -ENOMEM);
		return 0;
	}
	if (ld->opts.flags & ST_LOAD_FIXED_DEST && windows_plan(p, LD_MAX_REG - n_stg, fs) < 0)
		return st_error(-ENOMEM, "loader: out of memory");
	if (!n_stg && !fs->n_win)
		return 0;
	ret = io_uring_register_buffers_sparse(&ld->ring, n_stg + fs->n_win);
	if (ret < 0) {
		/* older kernels: one table of the staging chunks only */
		if (fs->n_win)
			announce_no_fixed(ld, "destination memory (sparse buffer table)", ret);
		fs->n_win = 0;
		if (!n_stg)
			return 0;
		iov = calloc(n_stg, sizeof *iov);
		if (!iov)
			return 0;
		for (uint32_t i = 0; i < n_stg; i++)
			iov[i] = (struct iovec){ ld->staging + (size_t)i * ld->chunk, ld->chunk };
		ret = io_uring_register_buffers(&ld->ring, iov, n_stg);
		free(iov);
		if (ret == 0) {
			fs->table = true;
			fs->n_stg = n_stg;
		}
		return 0;
	}
	fs->table = true;
	fs->dest_ok = fs->n_win > 0;
	fs->stg_slots = n_stg;
	if (n_stg) {
		iov = calloc(n_stg, sizeof *iov);
		if (!iov)
			return 0;
		for (uint32_t i = 0; i < n_stg; i++)
			iov[i] = (struct iovec){ ld->staging + (size_t)i * ld->chunk, ld->chunk };
		ret = io_uring_register_buffers_update_tag(&ld->ring, 0, iov, NULL, n_stg);
		free(iov);
		if (ret == (int)n_stg)
			fs->n_stg = n_stg;
		else
			st_log(ST_LOG_DEBUG, "loader: registering %u staging buffers failed (%s): plain reads",
			       n_stg, strerror(ret < 0 ? -ret : EIO));
	}
	return 0;
}

static void fixed_teardown(struct st_loader *ld, struct fixed_state *fs)
{
	if (fs->table)
		io_uring_unregister_buffers(&ld->ring);
	free(fs->win);
	free(fs->piece_win);
	memset(fs, 0, sizeof *fs);
}

/* The table entry for a read into piece i's destination: its window,
 * registered now if this is the first read into it; -1: a plain read. */
static int fixed_dest_index(struct st_loader *ld, struct fixed_state *fs, size_t i)
{
	uint32_t w = fs->piece_win ? fs->piece_win[i] : UINT32_MAX;
	struct iovec iov;
	int ret;
	if (w == UINT32_MAX)
		return -1;
	if (!fs->win[w].reg) {
		if (!fs->dest_ok)
			return -1;
		iov = (struct iovec){ fs->win[w].base, fs->win[w].len };
		ret = io_uring_register_buffers_update_tag(&ld->ring, fs->stg_slots + w, &iov, NULL, 1);
		if (ret != 1) {
			announce_no_fixed(ld, "destination memory", ret < 0 ? ret : -EIO);
			fs->dest_ok = false;
			return -1;
		}
		fs->win[w].reg = true;
	}
	return (int)(fs->stg_slots + w);
}

static unsigned char *slot_buf(const struct st_loader *ld, const struct ld_plan *p, const struct slot *s)
{
	const struct ld_piece *pc = &p->pieces[s->piece];
	return pc->dst ? pc->dst : ld->staging + (size_t)s->stg * ld->chunk;
}

static int slot_submit(struct st_loader *ld, const struct ld_plan *p, struct slot *slots, uint32_t si)
{
	const struct slot *s = &slots[si];
	const struct ld_piece *pc = &p->pieces[s->piece];
	struct io_uring_sqe *sqe = io_uring_get_sqe(&ld->ring);
	unsigned char *buf = slot_buf(ld, p, s) + s->got;
	unsigned len = pc->len - (unsigned)s->got;

	if (!sqe) {
		int r = io_uring_submit(&ld->ring);
		if (r < 0)
			return st_error(r, "loader: io_uring_submit: %s", strerror(-r));
		sqe = io_uring_get_sqe(&ld->ring);
		if (!sqe)
			return st_error(-EBUSY, "loader: no free submission entry");
	}
	if (s->fixed >= 0)
		io_uring_prep_read_fixed(sqe, ld->fd, buf, len, pc->off + s->got, s->fixed);
	else
		io_uring_prep_read(sqe, ld->fd, buf, len, pc->off + s->got);
	if (ld->async_buffered)
		io_uring_sqe_set_flags(sqe, IOSQE_ASYNC);
	io_uring_sqe_set_data64(sqe, si);
	ld->st->n_reads++;
	return 0;
}

int ld_uring_read(struct st_loader *ld, const struct ld_plan *p)
{
	uint32_t n_stg_want = (uint32_t)ST_MIN((size_t)ld->qd, p->n_staged);
	struct slot *slots = calloc(ld->qd, sizeof *slots);
	uint32_t *free_slots = calloc(ld->qd, sizeof *free_slots);
	int *free_stg = calloc(ld->qd, sizeof *free_stg);
	uint32_t n_free = 0, n_free_stg = 0, inflight = 0;
	struct fixed_state fs = { 0 };
	size_t next = 0;
	int err = 0;

	if (!slots || !free_slots || !free_stg) {
		err = st_error(-ENOMEM, "loader: out of memory");
		goto out;
	}
	err = staging_reserve(ld, n_stg_want);
	if (!err && !ld->n_user)        /* else the caller's buffers hold the table */
		err = fixed_setup(ld, p, n_stg_want, &fs);
	if (err)
		goto out;
	ld->fixed = fs.table;
	ld->st->fixed_buffers = fs.n_stg > 0;
	for (uint32_t i = ld->qd; i-- > 0;)
		free_slots[n_free++] = i;
	for (uint32_t i = n_stg_want; i-- > 0;)
		free_stg[n_free_stg++] = (int)i;

	for (;;) {
		struct io_uring_cqe *cqe;
		int r;

		/* keep the ring full, in file order; a staged read waits for a chunk */
		while (!err && n_free && next < p->n_pieces && (p->pieces[next].dst || n_free_stg)) {
			uint32_t si = free_slots[--n_free];
			slots[si] = (struct slot){ .piece = next, .stg = -1, .fixed = -1 };
			if (!p->pieces[next].dst) {
				slots[si].stg = free_stg[--n_free_stg];
				if ((uint32_t)slots[si].stg < fs.n_stg)
					slots[si].fixed = slots[si].stg;
			} else if (ld->n_user) {
				slots[si].fixed = user_index(ld, p->pieces[next].dst, p->pieces[next].len);
			} else {
				slots[si].fixed = fixed_dest_index(ld, &fs, next);
			}
			next++;
			r = slot_submit(ld, p, slots, si);
			if (r < 0) {
				if (slots[si].stg >= 0)
					free_stg[n_free_stg++] = slots[si].stg;
				free_slots[n_free++] = si;
				err = r;
				break;
			}
			inflight++;
		}
		if (!inflight)
			break;
		r = io_uring_submit(&ld->ring);
		if (r < 0 && r != -EINTR && r != -EAGAIN && r != -EBUSY) {
			/* the queued reads may never complete: do not wait for them */
			ld->staging_leaked = true;
			if (!err)
				err = st_error(r, "loader: io_uring_submit: %s", strerror(-r));
			break;
		}
		r = io_uring_wait_cqe(&ld->ring, &cqe);
		if (r == -EINTR || r == -EAGAIN)
			continue;
		if (r < 0) {
			/* cannot reap: reads may still land in the staging chunks */
			ld->staging_leaked = true;
			if (!err)
				err = st_error(r, "loader: io_uring_wait_cqe: %s", strerror(-r));
			break;
		}
		do {
			uint32_t si = (uint32_t)io_uring_cqe_get_data64(cqe);
			int32_t res = cqe->res;
			struct slot *s = &slots[si];
			const struct ld_piece *pc = &p->pieces[s->piece];

			io_uring_cqe_seen(&ld->ring, cqe);
			inflight--;
			r = err;
			if (!err) {
				r = ld_on_result(ld, p, pc, res, &s->got, &s->retries);
				if (r == 0) {
					r = slot_submit(ld, p, slots, si);
					if (r == 0) {
						inflight++;
						continue;
					}
				} else if (r == 1) {
					if (pc->dst && s->fixed >= 0)
						ld->st->bytes_fixed += pc->len;
					r = ld_piece_done(ld, p, pc, slot_buf(ld, p, s), s->got);
				}
				if (r < 0)
					err = r;
			}
			if (s->stg >= 0)
				free_stg[n_free_stg++] = s->stg;
			free_slots[n_free++] = si;
		} while (io_uring_peek_cqe(&ld->ring, &cqe) == 0);
	}
	ld->st->fixed_dest = ld->st->bytes_fixed > 0;
out:
	if (!ld->staging_leaked)
		fixed_teardown(ld, &fs);     /* unpins; reads in flight would keep their pages */
	else {
		free(fs.win);
		free(fs.piece_win);
	}
	ld->fixed = false;
	free(slots);
	free(free_slots);
	free(free_stg);
	return err;
}

#endif
