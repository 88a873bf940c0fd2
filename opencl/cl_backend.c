/* cl_backend.c: the OpenCL backend's ops table: open a device (context,
 * queue, the embedded program built once per device and cached), buffers. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cl_internal.h"
#include "util.h"
#include "kernels_cl.h"      /* generated: st_cl_kernels_src */

/* One context and built program per device, shared by every open backend on
 * it (building the program takes about a second on PoCL). */
static struct {
	cl_context ctx;
	cl_program prog;
	int refs;
} st_cl_cache[ST_CL_MAX_DEVICES];
static pthread_mutex_t st_cl_cache_lock = PTHREAD_MUTEX_INITIALIZER;

static int clb_device_count(void)
{
	cl_device_id *d;
	return st_cl_devices(&d);
}

static int clb_device_info(int index, struct st_device_info *info)
{
	cl_device_id *d;
	if (index < 0 || index >= st_cl_devices(&d))
		return st_error(-ENODEV, "opencl: no device %d", index);
	return st_cl_device_info(d[index], info);
}

static int clb_build(int index, cl_device_id dev)
{
	cl_int err;
	const char *src = (const char *)st_cl_kernels_src;
	char opts[64];

	st_cl_cache[index].ctx = clCreateContext(NULL, 1, &dev, NULL, NULL, &err);
	if (!st_cl_cache[index].ctx)
		return st_cl_fail(err, "clCreateContext");
	cl_program prog = clCreateProgramWithSource(st_cl_cache[index].ctx, 1, &src, NULL, &err);
	if (!prog) {
		clReleaseContext(st_cl_cache[index].ctx);
		return st_cl_fail(err, "clCreateProgramWithSource");
	}
	snprintf(opts, sizeof opts, "-cl-std=CL1.2 -DLS=%d", ST_CL_LS);
	double t0 = st_time_now();
	err = clBuildProgram(prog, 1, &dev, opts, NULL, NULL);
	if (err != CL_SUCCESS) {
		char log[400] = "";
		clGetProgramBuildInfo(prog, dev, CL_PROGRAM_BUILD_LOG, sizeof log - 1, log, NULL);
		clReleaseProgram(prog);
		clReleaseContext(st_cl_cache[index].ctx);
		return st_error(-EIO, "opencl: building the kernels failed: %s (%d): %s",
				st_cl_strerror(err), (int)err, log);
	}
	st_cl_cache[index].prog = prog;
	st_log(ST_LOG_INFO, "opencl%d: built the embedded kernels in %.2f s (once per device and process)", index,
	       st_time_now() - t0);
	return 0;
}

static int clb_open(int index, struct st_backend **out)
{
	cl_device_id *devs;
	cl_int err;
	int rc;

	if (index < 0 || index >= st_cl_devices(&devs))
		return st_error(-ENODEV, "opencl: no device %d", index);
	struct st_cl_backend *be = calloc(1, sizeof *be);
	if (!be)
		return -ENOMEM;
	pthread_mutex_lock(&st_cl_cache_lock);
	if (!st_cl_cache[index].refs && (rc = clb_build(index, devs[index])) < 0) {
		pthread_mutex_unlock(&st_cl_cache_lock);
		free(be);
		return rc;
	}
	st_cl_cache[index].refs++;
	pthread_mutex_unlock(&st_cl_cache_lock);

	be->dev = devs[index];
	be->ctx = st_cl_cache[index].ctx;
	be->prog = st_cl_cache[index].prog;
	be->queue = clCreateCommandQueue(be->ctx, be->dev, CL_QUEUE_PROFILING_ENABLE, &err);
	if (!be->queue) {
		rc = st_cl_fail(err, "clCreateCommandQueue");
		goto err;
	}
	cl_ulong lm = 0;
	clGetDeviceInfo(be->dev, CL_DEVICE_LOCAL_MEM_SIZE, sizeof lm, &lm, NULL);
	be->local_mem = (size_t)lm;
	st_cl_device_info(be->dev, &be->base.info);
	/* On CPU drivers a barrier-free work-item per row is several times
	 * faster than a work-group reduction per row; ST_OPENCL_MATMUL=rows|wg
	 * overrides the choice. */
	const char *mm = getenv("ST_OPENCL_MATMUL");
	cl_device_type dtype = 0;
	clGetDeviceInfo(be->dev, CL_DEVICE_TYPE, sizeof dtype, &dtype, NULL);
	be->matmul_rows = mm ? !strcmp(mm, "rows") : (dtype & CL_DEVICE_TYPE_CPU) != 0;
	be->unified = be->base.info.unified_memory && !getenv("ST_OPENCL_NO_WRAP");
	be->base.ops = &st_backend_opencl;
	be->base.device_index = index;
	st_log(ST_LOG_INFO, "opencl%d: %s (%s), %s memory%s, %zu KiB local memory, matmul: %s", index,
	       be->base.info.name, be->base.info.driver,
	       be->base.info.unified_memory ? "host-unified" : "device",
	       be->unified ? " (mapped model files wrapped in place)" : "", be->local_mem / 1024,
	       be->matmul_rows ? "one work-item per row, 4 tokens per work-item for batches" :
				 "one work-group per row with a local-memory reduction");
	*out = &be->base;
	return 0;
err:
	pthread_mutex_lock(&st_cl_cache_lock);
	st_cl_cache[index].refs--;
	pthread_mutex_unlock(&st_cl_cache_lock);
	free(be);
	return rc;
}

static void clb_close(struct st_backend *base)
{
	struct st_cl_backend *be = (struct st_cl_backend *)base;
	int index = base->device_index;
	if (!be)
		return;
	clFinish(be->queue);
	clReleaseCommandQueue(be->queue);
	pthread_mutex_lock(&st_cl_cache_lock);
	if (--st_cl_cache[index].refs == 0) {
		clReleaseProgram(st_cl_cache[index].prog);
		clReleaseContext(st_cl_cache[index].ctx);
		st_cl_cache[index].prog = NULL;
		st_cl_cache[index].ctx = NULL;
	}
	pthread_mutex_unlock(&st_cl_cache_lock);
	free(be);
}

static int clb_buffer_alloc(struct st_backend *base, size_t size, unsigned flags, struct st_buffer **out)
{
	struct st_cl_backend *be = (struct st_cl_backend *)base;
	cl_int err;
	if (!size)
		return st_error(-EINVAL, "opencl: zero-sized buffer");
	struct st_cl_buffer *b = calloc(1, sizeof *b);
	if (!b)
		return -ENOMEM;
	cl_mem_flags mf = (flags & ST_BUF_WEIGHTS) ? CL_MEM_READ_ONLY : CL_MEM_READ_WRITE;
	if (flags & ST_BUF_HOST_VISIBLE)
		mf |= CL_MEM_ALLOC_HOST_PTR;
	b->mem = clCreateBuffer(be->ctx, mf, size, NULL, &err);
	if (!b->mem) {
		free(b);
		return st_cl_fail(err, "clCreateBuffer");
	}
	b->be = be;
	b->size = size;
	/* weights that are not asked to be host-visible stay in device memory
	 * on devices with memory of their own (filled by buffer_write or a
	 * streamed upload); mapping them would copy them all at unmap */
	b->device_local = (flags & ST_BUF_WEIGHTS) && !(flags & ST_BUF_HOST_VISIBLE) && !be->unified;
	*out = (struct st_buffer *)b;
	return 0;
}

/* Wrap host memory (the mapped model file) without copying, where device
 * memory is host memory (CPU drivers such as PoCL, integrated GPUs):
 * CL_MEM_USE_HOST_PTR lets the driver compute from it in place.  Elsewhere
 * -ENOTSUP, and the caller copies the weights into a device buffer. */
static int clb_buffer_wrap(struct st_backend *base, void *ptr, size_t size, struct st_buffer **out)
{
	struct st_cl_backend *be = (struct st_cl_backend *)base;
	cl_int err;
	if (!be->unified || !ptr || !size)
		return -ENOTSUP;
	struct st_cl_buffer *b = calloc(1, sizeof *b);
	if (!b)
		return -ENOMEM;
	b->mem = clCreateBuffer(be->ctx, CL_MEM_READ_ONLY | CL_MEM_USE_HOST_PTR, size, ptr, &err);
	if (!b->mem) {
		free(b);
		st_log(ST_LOG_INFO, "opencl%d: cannot wrap %zu bytes of host memory (%s); copying instead",
		       base->device_index, size, st_cl_strerror(err));
		return -ENOTSUP;
	}
	b->be = be;
	b->size = size;
	st_log(ST_LOG_INFO, "opencl%d: wrapped %zu bytes of host memory (mapped weights used in place, no copy)",
	       base->device_index, size);
	*out = (struct st_buffer *)b;
	return 0;
}

static int clb_unmap(struct st_cl_buffer *b)
{
	struct st_cl_buffer **pp = &b->be->mapped;
	cl_int err = clEnqueueUnmapMemObject(b->be->queue, b->mem, b->mapped, 0, NULL, NULL);
	b->mapped = NULL;
	while (*pp && *pp != b)
		pp = &(*pp)->next_mapped;
	if (*pp)
		*pp = b->next_mapped;
	if (err == CL_SUCCESS)
		err = clFinish(b->be->queue);
	return err == CL_SUCCESS ? 0 : st_cl_fail(err, "clEnqueueUnmapMemObject");
}

int st_cl_unmap_all(struct st_cl_backend *be)
{
	int rc = 0;
	while (be->mapped) {
		int r = clb_unmap(be->mapped);
		if (r && !rc)
			rc = r;
	}
	return rc;
}

/* Map a whole buffer for the host to fill (weights read straight into it by
 * the io_uring loader).  The mapping lasts until the buffer is next used by
 * a kernel, a write or a read, which unmap it first: on host-memory devices
 * that is free, elsewhere the unmap is the upload.  NULL on failure, and
 * for device-local weights (the caller then stages through host memory or
 * streams them with upload_submit). */
static void *clb_buffer_map(struct st_buffer *buf)
{
	struct st_cl_buffer *b = (struct st_cl_buffer *)buf;
	cl_int err;
	if (b->mapped)
		return b->mapped;
	if (b->device_local)
		return NULL;
	b->mapped = clEnqueueMapBuffer(b->be->queue, b->mem, CL_TRUE, CL_MAP_WRITE, 0, b->size, 0, NULL, NULL, &err);
	if (!b->mapped) {
		st_log(ST_LOG_INFO, "opencl: cannot map a %zu-byte buffer (%s)", b->size, st_cl_strerror(err));
		return NULL;
	}
	b->next_mapped = b->be->mapped;
	b->be->mapped = b;
	return b->mapped;
}

static void clb_buffer_free(struct st_buffer *buf)
{
	struct st_cl_buffer *b = (struct st_cl_buffer *)buf;
	if (!b)
		return;
	if (b->mapped)
		clb_unmap(b);
	clReleaseMemObject(b->mem);
	free(b);
}

static int clb_check_range(const struct st_cl_buffer *b, size_t off, size_t n)
{
	size_t end;
	if (st_add_overflow_size(off, n, &end) || end > b->size)
		return st_error(-EINVAL, "opencl: access of %zu bytes at offset %zu is outside the %zu-byte buffer",
				n, off, b->size);
	return 0;
}

static int clb_buffer_write(struct st_buffer *buf, size_t off, const void *src, size_t n)
{
	struct st_cl_buffer *b = (struct st_cl_buffer *)buf;
	int rc = clb_check_range(b, off, n);
	if (rc < 0 || !n)
		return rc;
	if (b->mapped && (rc = clb_unmap(b)) < 0)
		return rc;
	cl_int err = clEnqueueWriteBuffer(b->be->queue, b->mem, CL_TRUE, off, n, src, 0, NULL, NULL);
	return err == CL_SUCCESS ? 0 : st_cl_fail(err, "clEnqueueWriteBuffer");
}

static int clb_buffer_read(struct st_buffer *buf, size_t off, void *dst, size_t n)
{
	struct st_cl_buffer *b = (struct st_cl_buffer *)buf;
	int rc = clb_check_range(b, off, n);
	if (rc < 0 || !n)
		return rc;
	if (b->mapped && (rc = clb_unmap(b)) < 0)
		return rc;
	cl_int err = clEnqueueReadBuffer(b->be->queue, b->mem, CL_TRUE, off, n, dst, 0, NULL, NULL);
	return err == CL_SUCCESS ? 0 : st_cl_fail(err, "clEnqueueReadBuffer");
}

static int clb_synchronize(struct st_backend *base)
{
	cl_int err = clFinish(((struct st_cl_backend *)base)->queue);
	return err == CL_SUCCESS ? 0 : st_cl_fail(err, "clFinish");
}

const struct st_backend_ops st_backend_opencl = {
	.name = "opencl",
	.device_count = clb_device_count,
	.device_info = clb_device_info,
	.open = clb_open,
	.close = clb_close,
	.buffer_alloc = clb_buffer_alloc,
	.buffer_wrap = clb_buffer_wrap,
	.buffer_map = clb_buffer_map,
	.buffer_free = clb_buffer_free,
	.buffer_write = clb_buffer_write,
	.buffer_read = clb_buffer_read,
	.graph_prepare = st_cl_graph_prepare,
	.graph_run = st_cl_graph_run,
	.graph_free = st_cl_graph_free,
	.synchronize = clb_synchronize,
	.graph_op_times = st_cl_graph_op_times,
	.upload_open = st_cl_upload_open,
	.upload_submit = st_cl_upload_submit,
	.upload_wait = st_cl_upload_wait,
	.upload_close = st_cl_upload_close,
};
