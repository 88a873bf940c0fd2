/* loader_impl.h: what loader.c (planning, pread, mmap) and uring.c (the
 * io_uring engine) share.  Private to ioring/. */
#ifndef ST_IORING_LOADER_IMPL_H
#define ST_IORING_LOADER_IMPL_H

#include "loader.h"
#include "st_config.h"

#if ST_HAVE_LIBURING
#include <liburing.h>
#endif

/* A byte range [x, y) of the file that reaches span `span` through the
 * staging buffers (heads, tails, and spans whose destination phase does not
 * match their file offset). */
struct ld_need {
	uint64_t x, y;
	size_t span;
};

/* One read: file [off, off + len).  dst != NULL: straight into the
 * destination; the piece lies in the run of spans order[span..span_end)
 * and span is the first of them it touches.  dst == NULL: into staging,
 * then copied to every need it covers.  Only the first `need` bytes must
 * arrive (a staged read may run past the end of the file). */
struct ld_piece {
	uint64_t off;
	uint32_t len;
	uint32_t need;
	unsigned char *dst;
	size_t span, span_end;
};

struct ld_plan {
	const struct st_load_span *spans;
	size_t *order;              /* non-empty spans by file offset */
	size_t n_order;
	size_t n_staged;            /* pieces with dst == NULL */
	struct ld_piece *pieces;
	size_t n_pieces, cap_pieces;
	struct ld_need *needs;
	size_t n_needs, cap_needs;
	uint64_t *needs_maxy;       /* prefix maximum of needs[].y */
	unsigned char *done;        /* per piece, for the watermark (on_ready) */
	uint64_t total;             /* sum of span lengths */
	uint64_t from;              /* staged_only: span bytes below it are not read */
};

struct st_loader {
	char *path;
	int fd;
	int fd_buf;                 /* buffered, for warm-cache reads in ST_IO_AUTO */
	uint64_t file_size;
	struct st_load_opts opts;
	enum st_io_mode mode;
	bool direct;
	uint32_t align;             /* ST_LOAD_ALIGN with O_DIRECT, else 1 */
	uint32_t qd, chunk;
	unsigned char *staging;     /* n_staging chunks, allocated on demand */
	uint32_t n_staging;
	bool staging_leaked;        /* the ring could not be drained */
#if ST_HAVE_LIBURING
	struct io_uring ring;
	bool ring_ok;
	bool fixed;
	bool async_buffered;        /* buffered reads go to io-wq workers (parallel copies) */
	/* caller buffers registered for the loader's lifetime
	 * (st_loader_register_buffers): table entries 0..n_user-1 */
	unsigned char *user_buf[ST_LOAD_MAX_BUFFERS];
	size_t user_len;
	uint32_t n_user;
#endif
	/* the read in progress */
	const struct st_load_span *spans;
	size_t n_spans;
	struct st_load_stats *st;
	uint64_t done;
	double t0, last_progress;
	uint64_t ready_mark;        /* last watermark reported (never lowered) */
	uint64_t raw_mark;          /* ST_LOAD_VERIFY: bytes in place (ready_mark: verified) */
	size_t ready_prefix;        /* pieces of the plan finished in order */
	size_t verified;            /* ST_LOAD_VERIFY + on_ready: spans order[0..verified) checked */
	uint64_t n_results;
};

/* loader_plan.c */
/* staged_only: no read straight into a destination (memory that O_DIRECT
 * cannot target, e.g. some mapped device memory); then only the span bytes
 * at file offsets >= from are planned (the EFAULT restart: the bytes below
 * the published watermark are in place and may be read by a consumer
 * already, so they are not written again).  p->total stays the sum of all
 * span lengths. */
int ld_plan_build(const struct st_load_span *spans, size_t n, uint32_t align, uint32_t chunk,
		  bool staged_only, uint64_t from, struct ld_plan *p);
void ld_plan_free(struct ld_plan *p);
/* First need that may intersect [a, ...). */
size_t ld_need_lower(const struct ld_plan *p, uint64_t a);

/* Result of one read (res bytes or -errno) for piece pc whose buffer has
 * *got bytes so far: 1 the piece is complete, 0 read the rest again
 * (*got updated), negative: the load failed (message recorded). */
int ld_on_result(struct st_loader *ld, const struct ld_plan *p, const struct ld_piece *pc,
		 int64_t res, uint64_t *got, unsigned *retries);
/* Place a completed piece (buf: its staging buffer, or NULL when direct),
 * report progress and chunk callbacks. */
int ld_piece_done(struct st_loader *ld, const struct ld_plan *p, const struct ld_piece *pc,
		  const unsigned char *buf, uint64_t got);

#if ST_HAVE_LIBURING
/* loader_uring.c */
int ld_uring_setup(struct st_loader *ld, const char **why);
void ld_uring_teardown(struct st_loader *ld);
int ld_uring_read(struct st_loader *ld, const struct ld_plan *p);
/* n (registered) or 0 (refused, announced once) */
int ld_uring_register_user(struct st_loader *ld, void *const *bufs, uint32_t n, size_t len, const char *what);
void ld_uring_unregister_user(struct st_loader *ld);
void ld_uring_staging_release(struct st_loader *ld);
#endif

/* loader.c, shared with prefetch.c: whether the environment variable is
 * set to something other than "" or "0"; why io_uring cannot be used (NULL:
 * it can): forced (a test flag), ST_IO_URING_DISABLE, the sysctl, or a
 * build without liburing. */
bool ld_env_set(const char *name);
const char *ld_uring_unavailable(bool forced);

#endif
