/* loader.h: read a list of file spans straight into caller-supplied memory.
 *
 * A span is (file offset, length, destination): the tensors of one stage.
 * The loader reads them with io_uring where it can: O_DIRECT when the file
 * system allows it (probed by trying), aligned staging chunks (allocated on
 * demand, as many as a load has staged reads, at most queue_depth)
 * registered with the ring as fixed buffers, and with ST_LOAD_FIXED_DEST
 * the destinations too (READ_FIXED; in windows of >= 8 MiB registered as
 * the reads reach them); a refused registration, e.g. RLIMIT_MEMLOCK,
 * means plain reads, announced once; many reads in flight (spans adjacent in the file and in
 * memory coalesce), completions reaped with io_uring_wait_cqe (no
 * spinning).  Buffered io_uring reads are flagged
 * IOSQE_ASYNC so io-wq workers copy cached pages in parallel.  O_DIRECT needs
 * 4 KiB-aligned offsets, lengths and memory; GGUF tensors are only 32-byte
 * aligned, so each span is read in up to three parts: the 4 KiB-aligned
 * middle straight into the destination when the destination has the same
 * phase modulo 4 KiB as the file offset (st_load_layout() arranges that),
 * and the unaligned head and tail (or the whole span when the phases
 * differ) through the staging chunks, copied into place.  Adjacent spans
 * share their staging reads.
 *
 * Fallbacks are chosen by probing and each is announced once at
 * ST_LOG_INFO: buffered io_uring reads when O_DIRECT is refused (tmpfs);
 * plain pread when io_uring is unavailable (ENOSYS, EPERM from seccomp,
 * /proc/sys/kernel/io_uring_disabled, or built without liburing).  mmap
 * (map, copy, unmap) exists for comparison.  The environment can force the
 * fallbacks: ST_IO_URING_DISABLE=1 makes the io_uring probe fail,
 * ST_IO_NO_DIRECT=1 makes the O_DIRECT probe fail, ST_IO_NO_FIXED=1 makes
 * buffer registration fail.
 *
 * If O_DIRECT reads into the destinations fail with EFAULT (memory the
 * kernel cannot pin, e.g. some mapped device memory) the load restarts once
 * with every read going through staging (announced once), from the
 * watermark published so far (on_ready; from the start without it): no
 * byte below a published mark is ever written again, since a consumer may
 * be reading it on another thread.  Chunk callbacks may report a range
 * above the mark a second time.
 *
 * Errors name the span, its offsets and the numbers: a span past the end of
 * the file (truncated file), the file ending while loading (it shrank), a
 * destination smaller than its span.  A failed load leaves the destinations
 * partly written.  A loader is used by one thread at a time; the library
 * never prints (progress goes to a callback). */
#ifndef ST_IORING_LOADER_H
#define ST_IORING_LOADER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* O_DIRECT alignment of file offsets, lengths and memory. */
#define ST_LOAD_ALIGN 4096u

enum st_io_mode {
	ST_IO_AUTO = 0,   /* io_uring if it works, else pread; reads through the page
			   * cache instead of O_DIRECT when it holds >= 90% of the bytes
			   * (mincore; the kernel reports residency only for files the
			   * caller owns or may write, else this stays O_DIRECT) */
	ST_IO_URING,      /* io_uring (falls back to pread if unavailable, announced) */
	ST_IO_PREAD,      /* buffered pread, one read at a time */
	ST_IO_MMAP,       /* map each span, copy, unmap */
};

const char *st_io_mode_name(enum st_io_mode mode);
/* "auto", "uring", "pread", "mmap"; -EINVAL with a message otherwise. */
int st_io_mode_parse(const char *s, enum st_io_mode *out);

struct st_load_span {
	uint64_t file_offset;
	uint64_t nbytes;
	void *dst;              /* where the bytes go */
	uint64_t dst_size;      /* bytes available at dst (>= nbytes) */
	uint64_t hash;          /* st_hash64 of the bytes, for ST_LOAD_VERIFY */
	const char *name;       /* optional, for messages (not copied) */
};

enum st_load_flags {
	ST_LOAD_NO_DIRECT       = 1u << 0,  /* never O_DIRECT */
	ST_LOAD_NO_FIXED        = 1u << 1,  /* do not register buffers with the ring
					     * (staging chunks and destinations) */
	ST_LOAD_VERIFY          = 1u << 2,  /* check every span against span.hash */
	ST_LOAD_FAIL_URING      = 1u << 3,  /* tests: the io_uring probe fails */
	ST_LOAD_FAIL_DIRECT     = 1u << 4,  /* tests: the O_DIRECT probe fails */
	ST_LOAD_PREAD_DIRECT    = 1u << 5,  /* pread mode: use O_DIRECT too */
	ST_LOAD_INLINE_BUFFERED = 1u << 6,  /* buffered io_uring reads copy inline at
					     * submission (default: IOSQE_ASYNC, so
					     * io-wq workers copy in parallel) */
	ST_LOAD_FAIL_FIXED      = 1u << 7,  /* tests: registering buffers with the ring
					     * is refused (as ST_IO_NO_FIXED=1) */
	ST_LOAD_FIXED_DEST      = 1u << 8,  /* register the destinations too (READ_FIXED).
					     * Off by default: measured 1.7-4x slower on
					     * this VM (long-term pinning of fresh
					     * anonymous memory; BENCHMARKS.md) */
};

/* Simulated completion results, for tests of the retry paths: every
 * fault_every-th completion is turned into this. */
enum st_load_fault {
	ST_LOAD_FAULT_NONE = 0,
	ST_LOAD_FAULT_SHORT,    /* only part of the bytes arrived */
	ST_LOAD_FAULT_EAGAIN,
	ST_LOAD_FAULT_EINTR,
	ST_LOAD_FAULT_EFAULT_DIRECT,    /* every read straight into a destination
					 * fails with -EFAULT (memory O_DIRECT cannot
					 * target), from the fault_every-th completion
					 * on (0: from the first) */
};

/* Progress: bytes of the spans placed so far. */
typedef void (*st_load_progress_fn)(void *user, uint64_t done, uint64_t total, double elapsed_s);
/* Overlap hook: bytes [span_offset, span_offset + nbytes) of span
 * span_index are in place.  Called on the loading thread while later reads
 * are in flight, so a device upload of this chunk overlaps them.  A
 * non-zero return aborts the load with that code (use a negative errno). */
typedef int (*st_load_chunk_fn)(void *user, size_t span_index, uint64_t span_offset, uint64_t nbytes);
/* Watermark hook: every byte of the spans below file offset `mark` is in
 * place (reads finish out of order; this is the complete prefix).  Called
 * on the loading thread each time it rises, never lower; the load is
 * complete when st_loader_read returns 0.  Lets a consumer start on the
 * first tensors while later ones are read (the session's per-layer
 * overlap, ioring/weights.h).  A non-zero return aborts the load like
 * on_chunk's (a negative errno; a positive value becomes -ECANCELED), so
 * returning -ECANCELED cancels a background load.
 * With ST_LOAD_VERIFY the mark covers verified spans only: each span is
 * hashed as soon as all its bytes are in (in file order, on the loading
 * thread while later reads are in flight) and the mark stops at the first
 * span not verified yet; while it stays there (bytes arriving inside a big
 * span) the hook is called again with the mark unchanged, so a cancel is
 * noticed within a chunk or so, not only once the whole load is done.  A
 * span whose hash does not match fails the load with -EBADMSG naming it,
 * and no mark ever covers it. */
typedef int (*st_load_ready_fn)(void *user, uint64_t mark);

struct st_load_opts {
	enum st_io_mode mode;
	unsigned flags;             /* enum st_load_flags */
	uint32_t queue_depth;       /* reads in flight; 0: ST_LOAD_DEFAULT_QD */
	uint32_t chunk_size;        /* bytes per read, power of two >= 4096; 0: default */
	st_load_progress_fn progress;
	void *progress_user;
	double progress_interval_s; /* 0: 0.2 s; the final call always happens */
	st_load_chunk_fn on_chunk;
	void *chunk_user;
	uint32_t fault_every;       /* tests */
	enum st_load_fault fault;
	st_load_ready_fn on_ready;
	void *ready_user;
};

/* Defaults (chosen by measurement; BENCHMARKS.md "Weight loading"). */
#define ST_LOAD_DEFAULT_QD    32u
#define ST_LOAD_DEFAULT_CHUNK (1u << 20)
#define ST_LOAD_MAX_QD        1024u
#define ST_LOAD_MAX_CHUNK     (64u << 20)

struct st_load_stats {
	enum st_io_mode mode;       /* the path used (after fallbacks) */
	bool direct;                /* O_DIRECT */
	bool fixed_buffers;         /* staging registered with the ring */
	bool fixed_dest;            /* destinations registered too (ST_LOAD_FIXED_DEST) */
	uint64_t bytes_fixed;       /* read with READ_FIXED into registered destinations */
	uint64_t bytes_spans;       /* sum of the span lengths */
	uint64_t bytes_read;        /* bytes the file returned (incl. 4 KiB padding) */
	uint64_t bytes_direct;      /* landed in the destination without a copy */
	uint64_t bytes_copied;      /* copied from staging or the mapping */
	uint64_t n_reads;           /* reads issued (incl. resubmissions) */
	uint64_t n_short;           /* short reads resumed */
	uint64_t n_retries;         /* -EAGAIN / -EINTR resubmitted */
	double seconds;
};

struct st_loader;

/* Open path for loading: probes io_uring and O_DIRECT according to opts
 * (NULL: defaults), sets up the ring and the staging pool. */
int st_loader_open(const char *path, const struct st_load_opts *opts, struct st_loader **out);
void st_loader_close(struct st_loader *ld);
/* Read the spans (any order; the loader sorts by offset).  stats may be NULL. */
int st_loader_read(struct st_loader *ld, const struct st_load_span *spans, size_t n,
		   struct st_load_stats *stats);
/* Register caller memory that many loads read into (e.g. the upload
 * path's staging slots) with the ring as fixed buffers, until
 * st_loader_unregister_buffers or st_loader_close: n buffers of len bytes
 * each (n <= ST_LOAD_MAX_BUFFERS, len <= 1 GiB).  Reads straight into
 * them use READ_FIXED (no page pinning per read; counted in
 * st_load_stats.bytes_fixed).  While they are registered the loader's own
 * staging chunks are not (one buffer table per ring) and
 * ST_LOAD_FIXED_DEST is ignored.  Returns n when registered, 0 when not
 * (not io_uring, ST_LOAD_NO_FIXED, or refused: ST_IO_NO_FIXED=1 /
 * ST_LOAD_FAIL_FIXED, RLIMIT_MEMLOCK, memory the kernel cannot pin; a
 * refusal is announced once at ST_LOG_INFO, naming `what`): the reads are
 * then plain and give the same bytes.  A negative errno for bad arguments.
 * The memory must stay valid until unregistered. */
#define ST_LOAD_MAX_BUFFERS 64u
int st_loader_register_buffers(struct st_loader *ld, void *const *bufs, uint32_t n, size_t len, const char *what);
void st_loader_unregister_buffers(struct st_loader *ld);
enum st_io_mode st_loader_mode(const struct st_loader *ld);
bool st_loader_direct(const struct st_loader *ld);
uint64_t st_loader_file_size(const struct st_loader *ld);

/* open + read + close. */
int st_load_spans(const char *path, const struct st_load_span *spans, size_t n,
		  const struct st_load_opts *opts, struct st_load_stats *stats);

/* Lay spans out in one arena so that every destination has the same phase
 * modulo ST_LOAD_ALIGN as its file offset (so O_DIRECT reads land in place
 * and file-adjacent spans stay adjacent, coalescing into single reads).
 * Writes dst_offset[i] (offset into the arena, which must be
 * ST_LOAD_ALIGN-aligned) and the arena size; order of spans is free. */
int st_load_layout(const struct st_load_span *spans, size_t n, uint64_t *dst_offset,
		   uint64_t *arena_size);

/* Fraction (0..1) of the pages of bytes [offset, offset + len) of path (len
 * 0: to the end) that the page cache holds, by mincore on a mapping that
 * is never touched; a negative errno if it cannot tell. */
int st_load_cached_fraction(const char *path, uint64_t offset, uint64_t len, double *fraction);

/* ---- integrity ----------------------------------------------------------
 * st_hash64 is XXH64 (seed as given; the loader uses seed 0). */
uint64_t st_hash64(const void *data, size_t n, uint64_t seed);
/* span.hash = st_hash64(span.dst, span.nbytes, 0) for every span. */
void st_load_hash_spans(struct st_load_span *spans, size_t n);
/* -EBADMSG naming the first span whose bytes do not match span.hash. */
int st_load_verify(const struct st_load_span *spans, size_t n);

/* Hash files ("# strata tensor hashes v1", one "xxh64 file_offset nbytes
 * name" line per tensor), kept beside a plan or a cached shard so a worker
 * can trust it.  write: hashes the spans' bytes (dst) and writes them.
 * read: sets span.hash of every span from the line with its offset, size
 * and name; -EINVAL naming the file for a malformed line, -ENOENT when a
 * span has no line (a file for another model or stage). */
int st_load_hashes_write(const char *path, struct st_load_span *spans, size_t n);
int st_load_hashes_read(const char *path, struct st_load_span *spans, size_t n);

#endif
