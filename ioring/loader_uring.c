/* loader_uring.c: the io_uring engine of the span loader.
 *
 * One ring of queue_depth entries.  Reads go straight into the
 * destinations where the plan allows it; the others use staging chunks,
 * allocated on demand (as many as the plan has staged reads, at most
 * queue_depth) and registered with the ring as fixed buffers when the
 * kernel lets us.  The engine keeps queue_depth reads in flight, submits in
 * batches and sleeps in io_uring_wait_cqe until a completion arrives; short
 * reads, -EAGAIN and -EINTR resubmit the rest from the same slot.  On an
 * error it stops issuing and drains what is in flight before returning, so
 * no read can land in freed memory. */
#include "loader_impl.h"

#if ST_HAVE_LIBURING

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

/* At least `want` staging chunks, registered when possible. */
static int staging_reserve(struct st_loader *ld, uint32_t want)
{
	struct iovec *iov;
	size_t bytes;
	int ret;

	if (want <= ld->n_staging)
		return 0;
	ld_uring_staging_release(ld);
	if (st_mul_overflow_size(want, ld->chunk, &bytes) ||
	    posix_memalign((void **)&ld->staging, ST_LOAD_ALIGN, bytes)) {
		ld->staging = NULL;
		return st_error(-ENOMEM, "loader: %u staging chunks of %u bytes: out of memory", want, ld->chunk);
	}
	ld->n_staging = want;
	if (ld->opts.flags & ST_LOAD_NO_FIXED)
		return 0;
	iov = calloc(want, sizeof *iov);
	if (!iov)
		return 0;
	for (uint32_t i = 0; i < want; i++)
		iov[i] = (struct iovec){ ld->staging + (size_t)i * ld->chunk, ld->chunk };
	ret = io_uring_register_buffers(&ld->ring, iov, want);
	free(iov);
	if (ret == 0)
		ld->fixed = true;
	else
		st_log(ST_LOG_DEBUG, "loader: registering %u staging buffers failed (%s): plain reads",
		       want, strerror(-ret));
	return 0;
}

void ld_uring_teardown(struct st_loader *ld)
{
	if (!ld->ring_ok)
		return;
	ld_uring_staging_release(ld);
	io_uring_queue_exit(&ld->ring);
	ld->ring_ok = false;
}

struct slot {
	size_t piece;
	uint64_t got;
	unsigned retries;
	int stg;                    /* staging chunk, or -1 */
};

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
	if (!pc->dst && ld->fixed)
		io_uring_prep_read_fixed(sqe, ld->fd, buf, len, pc->off + s->got, s->stg);
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
	size_t next = 0;
	int err = 0;

	if (!slots || !free_slots || !free_stg) {
		err = st_error(-ENOMEM, "loader: out of memory");
		goto out;
	}
	err = staging_reserve(ld, n_stg_want);
	if (err)
		goto out;
	ld->st->fixed_buffers = ld->fixed && n_stg_want > 0;
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
			slots[si] = (struct slot){ .piece = next, .stg = -1 };
			if (!p->pieces[next].dst)
				slots[si].stg = free_stg[--n_free_stg];
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
out:
	free(slots);
	free(free_slots);
	free(free_stg);
	return err;
}

#endif
