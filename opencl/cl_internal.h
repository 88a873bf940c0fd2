/* cl_internal.h: shared by the OpenCL backend's files (device discovery,
 * buffers, graphs).  Uses the OpenCL 1.2 API through the ICD loader so any
 * vendor's driver works. */
#ifndef ST_CL_INTERNAL_H
#define ST_CL_INTERNAL_H

#define CL_TARGET_OPENCL_VERSION 120
#include <CL/cl.h>

#include "backend.h"
#include "opencl.h"

#define ST_CL_LS 64            /* work-group size of the reducing kernels */
#define ST_CL_MAX_DEVICES 16

struct st_cl_backend {
	struct st_backend base;
	cl_device_id dev;
	cl_context ctx;
	cl_command_queue queue;
	cl_program prog;
	size_t local_mem;
	bool matmul_rows;       /* one work-item per matmul row (CPU drivers) */
	bool unified;           /* device memory is host memory (wrap host pointers) */
	struct st_cl_buffer *mapped;   /* buffers mapped by buffer_map, unmapped before use */
};

struct st_cl_buffer {
	struct st_cl_backend *be;
	cl_mem mem;
	size_t size;
	void *mapped;                  /* host mapping from buffer_map, or NULL */
	bool device_local;             /* weights in device memory: buffer_map declines */
	struct st_cl_buffer *next_mapped;   /* the backend's list of mapped buffers */
};

/* cl_device.c */
int st_cl_devices(cl_device_id **devs);        /* all devices of all platforms */
int st_cl_device_info(cl_device_id dev, struct st_device_info *info);
const char *st_cl_strerror(cl_int err);
/* Turn a cl_int failure into st_error(-EIO, "opencl: WHAT: <name> (<code>)"). */
int st_cl_fail(cl_int err, const char *what);

/* cl_backend.c: unmap every buffer buffer_map mapped (OpenCL forbids
 * kernels and transfers on a mapped buffer). */
int st_cl_unmap_all(struct st_cl_backend *be);

/* cl_upload.c: streamed uploads (backend.h upload_*) */
int st_cl_upload_open(struct st_backend *be, size_t slot_size, int n_slots, void **slots, struct st_upload **out);
int st_cl_upload_submit(struct st_upload *u, int slot, struct st_buffer *dst, const struct st_upload_region *r, int n);
int st_cl_upload_wait(struct st_upload *u, int slot);
void st_cl_upload_close(struct st_upload *u);

/* cl_graph.c */
int st_cl_graph_prepare(struct st_backend *be, const struct st_op *ops, int n_ops, struct st_graph **out);
int st_cl_graph_run(struct st_graph *g, const struct st_graph_run *run);
void st_cl_graph_free(struct st_graph *g);
int st_cl_graph_op_times(struct st_graph *g, double *seconds, int n_ops);

#endif
