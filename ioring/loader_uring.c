/* loader_uring.c: the io_uring engine of the span loader.
 *
 * One ring of queue_depth entries; one slot per entry, each with its own
 * staging chunk (registered with the ring as a fixed buffer when the kernel
 * lets us).  The engine keeps every slot busy, submits in batches and
 * sleeps in io_uring_wait_cqe until a completion arrives; short reads,
 * -EAGAIN and -EINTR resubmit the rest from the same slot.  On an error it
 * stops issuing and drains what is in flight before returning, so no read
 * can land in freed memory. */
#include "loader_impl.h"

#if ST_HAVE_LIBURING

#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include "util.h"

int ld_uring_setup(struct st_loader *ld, const char **why)
{
	struct iovec *iov;
	size_t bytes;
	int ret;

	ret = io_uring_queue_init(ld->qd, &ld->ring, 0);
	if (ret < 0) {
		*why = "io_uring_queue_init failed";
		return ret;
	}
	ld->ring_ok = true;
	if (!ld->direct)
		return 0;       /* buffered: reads go straight into the destinations */

	if (st_mul_overflow_size(ld->qd, ld->chunk, &bytes) ||
	    posix_memalign((void **)&ld->staging, ST_LOAD_ALIGN, bytes)) {
		ld->staging = NULL;
		return -ENOMEM;
	}
	if (ld->opts.flags & ST_LOAD_NO_FIXED)
		return 0;
	iov = calloc(ld->qd, sizeof *iov);
	if (!iov)
		return -ENOMEM;
	for (uint32_t i = 0; i < ld->qd; i++)
		iov[i] = (struct iovec){ ld->staging + (size_t)i * ld->chunk, ld->chunk };
	ret = io_uring_register_buffers(&ld->ring, iov, ld->qd);
	free(iov);
	if (ret == 0)
		ld->fixed = true;
	else
		st_log(ST_LOG_DEBUG, "loader: registering %u staging buffers failed (%s): plain reads",
		       ld->qd, strerror(-ret));
	return 0;
}

void ld_uring_teardown(struct st_loader *ld)
{
	if (!ld->ring_ok)
		return;
	if (ld->fixed)
		io_uring_unregister_buffers(&ld->ring);
	io_uring_queue_exit(&ld->ring);
	ld->ring_ok = false;
	ld->fixed = false;
}

struct slot {
	size_t piece;
	uint64_t got;
	unsigned retries;
};

static int slot_submit(struct st_loader *ld, const struct ld_plan *p, struct slot *slots, uint32_t si)
{
	const struct ld_piece *pc = &p->pieces[slots[si].piece];
	struct io_uring_sqe *sqe = io_uring_get_sqe(&ld->ring);
	uint64_t got = slots[si].got;
	unsigned char *buf;

	if (!sqe) {
		int r = io_uring_submit(&ld->ring);
		if (r < 0)
			return st_error(r, "loader: io_uring_submit: %s", strerror(-r));
		sqe = io_uring_get_sqe(&ld->ring);
		if (!sqe)
			return st_error(-EBUSY, "loader: no free submission entry");
	}
	if (pc->dst) {
		io_uring_prep_read(sqe, ld->fd, pc->dst + got, pc->len - (unsigned)got, pc->off + got);
	} else {
		buf = ld->staging + (size_t)si * ld->chunk;
		if (ld->fixed)
			io_uring_prep_read_fixed(sqe, ld->fd, buf + got, pc->len - (unsigned)got,
						 pc->off + got, (int)si);
		else
			io_uring_prep_read(sqe, ld->fd, buf + got, pc->len - (unsigned)got, pc->off + got);
	}
	io_uring_sqe_set_data64(sqe, si);
	ld->st->n_reads++;
	return 0;
}

int ld_uring_read(struct st_loader *ld, const struct ld_plan *p)
{
	struct slot *slots = calloc(ld->qd, sizeof *slots);
	uint32_t *free_slots = calloc(ld->qd, sizeof *free_slots);
	uint32_t n_free = 0, inflight = 0;
	size_t next = 0;
	int err = 0;

	if (!slots || !free_slots) {
		free(slots);
		free(free_slots);
		return st_error(-ENOMEM, "loader: out of memory");
	}
	for (uint32_t i = ld->qd; i-- > 0;)
		free_slots[n_free++] = i;

	for (;;) {
		struct io_uring_cqe *cqe;
		int r;

		while (!err && n_free && next < p->n_pieces) {
			uint32_t si = free_slots[--n_free];
			slots[si] = (struct slot){ .piece = next++ };
			r = slot_submit(ld, p, slots, si);
			if (r < 0) {
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
			if (err) {
				free_slots[n_free++] = si;
				continue;
			}
			r = ld_on_result(ld, p, pc, res, &s->got, &s->retries);
			if (r == 0) {
				r = slot_submit(ld, p, slots, si);
				if (r == 0) {
					inflight++;
					continue;
				}
			} else if (r == 1) {
				r = ld_piece_done(ld, p, pc, pc->dst ? NULL : ld->staging + (size_t)si * ld->chunk,
						  s->got);
			}
			if (r < 0)
				err = r;
			free_slots[n_free++] = si;
		} while (io_uring_peek_cqe(&ld->ring, &cqe) == 0);
	}
	free(slots);
	free(free_slots);
	return err;
}

#endif
