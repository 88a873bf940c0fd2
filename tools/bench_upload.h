/* bench_upload.h: `strata bench-load --device D` (bench_upload.c): a
 * stage's tensors into a device-local buffer, overlapped or not. */
#ifndef ST_BENCH_UPLOAD_H
#define ST_BENCH_UPLOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "loader.h"

struct bench_upload {
	const char *device;        /* "vulkan0", "opencl0"; NULL: host memory (no upload) */
	const char *mode;          /* overlap (default), serial, read-all */
	uint32_t slot_size, n_slots;   /* 0: defaults */
};

/* Option parsing: --device D, --upload MODE, --slots N, --slot-size BYTES.
 * 1 if argv[*i] was one (value consumed), 0 if not, -1 after a usage error. */
int bench_upload_take(int argc, char **argv, int *i, struct bench_upload *b);
/* The runs: spans (dst pointing into host memory of buf_size bytes laid
 * out by dst_off, used by read-all) into a device buffer of buf_size. */
int bench_upload_run(const struct bench_upload *b, const char *model, const struct st_load_span *spans,
		     const uint64_t *dst_off, size_t n, uint64_t buf_size, const struct st_load_opts *o,
		     int64_t repeat, bool cold, bool json, void (*drop)(const char *path, bool *all));

#endif
