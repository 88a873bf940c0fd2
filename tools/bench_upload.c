/* bench_upload.c: `strata bench-load --device D`: the stage's tensors into a
 * device-local buffer of an accelerator, read with the span loader and
 * uploaded three ways, for measuring the upload overlap (ioring/upload.h):
 *   overlap   chunk k+1 is read while the device copies chunk k (default)
 *   serial    the same chunks, each copy waited for before the next read
 *   read-all  every tensor read into host memory first, then written
 * Device-local weights are forced on host-memory drivers (lavapipe, PoCL),
 * where a copy is a copy between two host buffers, so the figures there
 * measure the overlap, not a PCIe bus. */
#include "bench_upload.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "cli.h"
#include "strata.h"
#include "upload.h"
#include "util.h"

static const char *const CMD = "bench-load";

int bench_upload_take(int argc, char **argv, int *i, struct bench_upload *b)
{
	const char *v = NULL;
	int64_t x;
	int r;

	if ((r = cli_take(CMD, argc, argv, i, "--device", &v)) != 0) {
		b->device = v;
		return r;
	}
	if ((r = cli_take(CMD, argc, argv, i, "--upload", &v)) != 0) {
		if (r > 0 && strcmp(v, "overlap") && strcmp(v, "serial") && strcmp(v, "read-all")) {
			cli_usage_error(CMD, "--upload: expected overlap, serial or read-all");
			return -1;
		}
		b->mode = v;
		return r;
	}
	if ((r = cli_take(CMD, argc, argv, i, "--slots", &v)) != 0) {
		if (r > 0 && !cli_parse_i64(v, 1, ST_UPLOAD_MAX_SLOTS, &x)) {
			cli_usage_error(CMD, "--slots needs a count in 1..%d", ST_UPLOAD_MAX_SLOTS);
			return -1;
		}
		b->n_slots = r > 0 ? (uint32_t)x : 0;
		return r;
	}
	if ((r = cli_take(CMD, argc, argv, i, "--slot-size", &v)) != 0) {
		if (r > 0 && (!cli_parse_i64(v, 4096, 1 << 30, &x) || x % 4096)) {
			cli_usage_error(CMD, "--slot-size needs a multiple of 4096 up to 1 GiB");
			return -1;
		}
		b->slot_size = r > 0 ? (uint32_t)x : 0;
		return r;
	}
	return 0;
}

/* "vulkan0" -> the vulkan backend, device 0. */
static int open_device(const char *name, struct st_backend **be)
{
	char kind[32];
	size_t k = strcspn(name, "0123456789");
	int64_t idx = 0;
	if (k == 0 || k >= sizeof kind || (name[k] && !cli_parse_i64(name + k, 0, 255, &idx)))
		return cli_usage_error(CMD, "--device: expected a backend and index such as vulkan0 or opencl0, got '%s'",
				       name);
	memcpy(kind, name, k);
	kind[k] = 0;
	const struct st_backend_ops *ops = st_backend_find(kind);
	if (!ops || idx >= st_backend_device_count(ops))
		return cli_fail(CMD, "no device %s (see strata devices)", name);
	if (st_backend_open(ops, (int)idx, be) < 0)
		return cli_fail(CMD, "%s: %s", name, st_last_error());
	return 0;
}

/* The read-all baseline: load into host memory, then write every tensor. */
static int read_all(struct st_backend *be, struct st_buffer *buf, const char *model, const struct st_load_span *spans,
		    const uint64_t *dst_off, size_t n, const struct st_load_opts *o, struct st_upload_stats *st)
{
	struct st_load_stats ls = { 0 };
	double t0 = st_time_now(), t1;
	int r = st_load_spans(model, spans, n, o, &ls);
	t1 = st_time_now();
	for (size_t i = 0; i < n && r == 0; i++)
		r = st_buffer_write(be, buf, (size_t)dst_off[i], spans[i].dst, (size_t)spans[i].nbytes);
	if (r == 0)
		r = st_backend_synchronize(be);
	*st = (struct st_upload_stats){ .bytes = ls.bytes_spans, .bytes_read = ls.bytes_read, .read_s = t1 - t0,
					.wait_s = st_time_now() - t1, .seconds = st_time_now() - t0 };
	return r;
}

int bench_upload_run(const struct bench_upload *b, const char *model, const struct st_load_span *spans,
		     const uint64_t *dst_off, size_t n, uint64_t buf_size, const struct st_load_opts *o,
		     int64_t repeat, bool cold, bool json, void (*drop)(const char *path, bool *all))
{
	const char *mode = b->mode ? b->mode : "overlap";
	struct st_upload_opts uo = { .slot_size = b->slot_size, .n_slots = b->n_slots,
				     .serial = !strcmp(mode, "serial") };
	struct st_upload_span *us = calloc(n ? n : 1, sizeof(*us));
	struct st_backend *be = NULL;
	struct st_buffer *buf = NULL;
	int ret = 1;

	/* device-local weights even on host-memory drivers (read at open) */
	setenv("ST_VULKAN_FORCE_STAGING", "1", 0);
	setenv("ST_OPENCL_NO_WRAP", "1", 0);
	if (!us)
		return cli_fail(CMD, "out of memory");
	if (open_device(b->device, &be)) {
		free(us);
		return 1;
	}
	if (st_buffer_alloc(be, (size_t)buf_size, ST_BUF_WEIGHTS, &buf) < 0) {
		ret = cli_fail(CMD, "%s: %s", b->device, st_last_error());
		goto out;
	}
	const bool local = st_buffer_map(be, buf) == NULL;
	for (size_t i = 0; i < n; i++)
		us[i] = (struct st_upload_span){ spans[i].file_offset, spans[i].nbytes, dst_off[i], spans[i].name };
	for (int64_t run = 0; run < repeat; run++) {
		struct st_upload_stats st;
		struct st_loader *ld = NULL;
		bool dropped_all = false;
		int r;
		if (cold)
			drop(model, &dropped_all);
		if (!strcmp(mode, "read-all")) {
			r = read_all(be, buf, model, spans, dst_off, n, o, &st);
		} else {
			double t0 = st_time_now();
			r = st_loader_open(model, o, &ld);
			if (r == 0)
				r = st_ioring_upload(ld, be, buf, us, n, &uo, &st);
			st_loader_close(ld);
			st.seconds = st_time_now() - t0;
		}
		if (r < 0) {
			ret = cli_fail(CMD, "%s: %s", b->device, st_last_error());
			goto out;
		}
		double rate = st.seconds > 0 ? (double)st.bytes / st.seconds : 0;
		if (json)
			printf("{\"io\":\"%s\",\"device\":\"%s\",\"device_local\":%s,\"upload\":\"%s\",\"streamed\":%s,"
			       "\"slots\":%u,\"slot_size\":%u,\"bytes\":%" PRIu64 ",\"seconds\":%.6f,\"read_seconds\":%.6f,"
			       "\"wait_seconds\":%.6f,\"bytes_per_s\":%.0f,\"chunks\":%" PRIu64 ",\"cold\":%s}\n",
			       st_io_mode_name(o->mode), b->device, local ? "true" : "false", mode,
			       st.streamed ? "true" : "false", uo.n_slots ? uo.n_slots : ST_UPLOAD_DEFAULT_SLOTS,
			       uo.slot_size ? uo.slot_size : ST_UPLOAD_DEFAULT_SLOT, st.bytes, st.seconds, st.read_s,
			       st.wait_s, rate, st.n_chunks, cold ? "true" : "false");
		else
			printf("%s -> %s (%s), upload %s: %.1f MiB in %.3f s = %.1f MB/s (reading %.3f s, waiting for "
			       "copies %.3f s, %" PRIu64 " chunks)%s\n",
			       st_io_mode_name(o->mode), b->device, local ? "device-local" : "host-visible", mode,
			       (double)st.bytes / 1048576.0, st.seconds, rate / 1e6, st.read_s, st.wait_s, st.n_chunks,
			       cold ? ", cold" : "");
		fflush(stdout);
	}
	ret = 0;
out:
	st_buffer_free(be, buf);
	st_backend_close(be);
	free(us);
	return ret;
}
