/* upload.h: weights into device-local buffers, streamed: the loader reads
 * chunk k+1 of the file (io_uring, O_DIRECT) into a staging slot while the
 * device copies chunk k from another slot (backend upload ops: Vulkan
 * vkCmdCopyBuffer + a fence per slot, OpenCL non-blocking writes + events).
 * A slot is refilled only after its copy completed.
 *
 * A chunk is one contiguous, 4 KiB-aligned file range of at most slot_size
 * bytes: tensors that are (nearly) adjacent in the file share a chunk, and a
 * tensor larger than a slot is split over several.  The slots are
 * page-aligned, so O_DIRECT reads land in them without a copy, and they
 * are registered with the loader's ring for the whole upload
 * (st_loader_register_buffers: READ_FIXED, no page pinning per read; a
 * refusal, e.g. RLIMIT_MEMLOCK or ST_IO_NO_FIXED=1, is announced once and
 * the reads stay plain).  Backends
 * without upload ops get the same chunking with plain host slots and
 * st_buffer_write (no overlap).  Errors name the tensor and the numbers
 * (a tensor past the end of the file, the file shrinking while loading);
 * on an error every copy in flight is waited for before returning, so
 * nothing is left running or allocated. */
#ifndef ST_IORING_UPLOAD_H
#define ST_IORING_UPLOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "backend.h"
#include "loader.h"

struct st_upload_span {
	uint64_t file_offset;
	uint64_t nbytes;
	uint64_t dst_offset;        /* in the destination buffer */
	const char *name;           /* optional, for messages (not copied) */
};

struct st_upload_opts {
	uint32_t slot_size;         /* bytes per staging slot, multiple of 4096; 0: default */
	uint32_t n_slots;           /* 1..ST_UPLOAD_MAX_SLOTS; 0: default */
	bool serial;                /* wait for each copy before the next read (no
				     * overlap: the baseline the overlap is measured against) */
};

/* Defaults (BENCHMARKS.md "Weight loading", upload overlap). */
#define ST_UPLOAD_DEFAULT_SLOT  (8u << 20)
#define ST_UPLOAD_DEFAULT_SLOTS 3u

struct st_upload_stats {
	bool streamed;              /* the backend's upload ops (else buffer_write) */
	bool fixed;                 /* the slots were registered with the ring */
	uint64_t bytes_fixed;       /* read into them with READ_FIXED */
	uint64_t bytes;             /* span bytes placed */
	uint64_t bytes_read;        /* file bytes read (alignment and small gaps included) */
	uint64_t n_chunks;
	double seconds;             /* the whole upload */
	double read_s;              /* reading chunks (the loader) */
	double wait_s;              /* waiting for a slot's copy to finish */
};

/* Read spans of ld's file and place them at dst_offset in dst, a buffer of
 * backend be.  opts and stats may be NULL. */
int st_ioring_upload(struct st_loader *ld, struct st_backend *be, struct st_buffer *dst,
		     const struct st_upload_span *spans, size_t n, const struct st_upload_opts *opts,
		     struct st_upload_stats *stats);

#endif
