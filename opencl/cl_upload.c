/* cl_upload.c: streamed uploads into device buffers (backend.h upload_*).
 * The slots are pieces of one CL_MEM_ALLOC_HOST_PTR buffer mapped once
 * (pinned memory on GPU drivers: the fast source of a DMA); a submit
 * enqueues non-blocking clEnqueueWriteBuffer calls from the slot and keeps
 * the last one's event (the queue is in order, so it completes last); a
 * slot is handed back to the host only after that event completed. */
#include <stdlib.h>
#include <string.h>

#include "cl_internal.h"
#include "util.h"

struct st_upload {
	struct st_cl_backend *be;
	cl_mem staging;
	unsigned char *map;              /* the staging buffer, mapped for the upload's life */
	size_t map_size;
	size_t base;                     /* offset of slot 0 in map (page-aligned address) */
	size_t slot_size;
	int n_slots;
	cl_event ev[ST_UPLOAD_MAX_SLOTS];    /* the slot's last write, or NULL */
};

int st_cl_upload_open(struct st_backend *base, size_t slot_size, int n_slots, void **slots, struct st_upload **out)
{
	struct st_cl_backend *be = (struct st_cl_backend *)base;
	cl_int err;
	size_t bytes;

	*out = NULL;
	bytes = slot_size * (size_t)n_slots + ST_UPLOAD_ALIGN;   /* bounded by st_upload_open */
	struct st_upload *u = calloc(1, sizeof(*u));
	if (!u)
		return st_error(-ENOMEM, "opencl upload: out of memory");
	u->be = be;
	u->slot_size = slot_size;
	u->n_slots = n_slots;
	u->map_size = bytes;
	u->staging = clCreateBuffer(be->ctx, CL_MEM_READ_WRITE | CL_MEM_ALLOC_HOST_PTR, bytes, NULL, &err);
	if (!u->staging) {
		free(u);
		return st_cl_fail(err, "clCreateBuffer (upload staging)");
	}
	u->map = clEnqueueMapBuffer(be->queue, u->staging, CL_TRUE, CL_MAP_WRITE, 0, bytes, 0, NULL, NULL, &err);
	if (!u->map) {
		clReleaseMemObject(u->staging);
		free(u);
		return st_cl_fail(err, "clEnqueueMapBuffer (upload staging)");
	}
	u->base = (size_t)(-(uintptr_t)u->map & (ST_UPLOAD_ALIGN - 1));
	for (int i = 0; i < n_slots; i++)
		slots[i] = u->map + u->base + (size_t)i * slot_size;
	st_log(ST_LOG_DEBUG, "opencl upload: %d staging slots of %zu KiB", n_slots, slot_size >> 10);
	*out = u;
	return 0;
}

int st_cl_upload_wait(struct st_upload *u, int slot)
{
	cl_int err, status = CL_COMPLETE;
	if (slot < 0 || slot >= u->n_slots)
		return st_error(-EINVAL, "opencl upload: slot %d of %d", slot, u->n_slots);
	if (!u->ev[slot])
		return 0;
	err = clWaitForEvents(1, &u->ev[slot]);
	if (err == CL_SUCCESS)
		err = clGetEventInfo(u->ev[slot], CL_EVENT_COMMAND_EXECUTION_STATUS, sizeof status, &status, NULL);
	clReleaseEvent(u->ev[slot]);
	u->ev[slot] = NULL;
	if (err != CL_SUCCESS)
		return st_cl_fail(err, "clWaitForEvents (upload)");
	if (status < 0)
		return st_cl_fail(status, "clEnqueueWriteBuffer (upload)");
	return 0;
}

int st_cl_upload_submit(struct st_upload *u, int slot, struct st_buffer *buf, const struct st_upload_region *r, int n)
{
	struct st_cl_buffer *dst = (struct st_cl_buffer *)buf;
	int rc;

	if (slot < 0 || slot >= u->n_slots)
		return st_error(-EINVAL, "opencl upload: slot %d of %d", slot, u->n_slots);
	if (!dst || dst->be != u->be)
		return st_error(-EINVAL, "opencl upload: the destination is not a buffer of this device");
	if ((rc = st_upload_check_regions(r, n, u->slot_size, dst->size, "opencl")) != 0)
		return rc;
	if (n == 0)
		return 0;
	if ((rc = st_cl_upload_wait(u, slot)) != 0)
		return rc;
	if (dst->mapped && (rc = st_cl_unmap_all(u->be)) != 0)   /* no transfer to a mapped buffer */
		return rc;
	const unsigned char *src = u->map + u->base + (size_t)slot * u->slot_size;
	for (int i = 0; i < n; i++) {
		cl_int err = clEnqueueWriteBuffer(u->be->queue, dst->mem, CL_FALSE, r[i].dst_offset, r[i].size,
						  src + r[i].src_offset, 0, NULL, i == n - 1 ? &u->ev[slot] : NULL);
		if (err != CL_SUCCESS) {
			/* the earlier writes of this slot may be queued: wait for them */
			clFinish(u->be->queue);
			return st_cl_fail(err, "clEnqueueWriteBuffer (upload)");
		}
	}
	cl_int err = clFlush(u->be->queue);        /* start now, not at the next wait */
	return err == CL_SUCCESS ? 0 : st_cl_fail(err, "clFlush (upload)");
}

void st_cl_upload_close(struct st_upload *u)
{
	if (!u)
		return;
	for (int i = 0; i < u->n_slots; i++)
		st_cl_upload_wait(u, i);
	clFinish(u->be->queue);
	clEnqueueUnmapMemObject(u->be->queue, u->staging, u->map, 0, NULL, NULL);
	clFinish(u->be->queue);
	clReleaseMemObject(u->staging);
	free(u);
}
