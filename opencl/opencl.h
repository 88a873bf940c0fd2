/* opencl.h: the OpenCL backend, for the backend registry. */
#ifndef ST_OPENCL_H
#define ST_OPENCL_H

#include "backend.h"

/* Devices of every OpenCL platform (through the ICD loader); no platform or
 * no device is a normal case: device_count() returns 0.
 *
 * Weights: on host-memory devices (CPU drivers such as PoCL, integrated
 * GPUs) the mapped model file is wrapped in place (CL_MEM_USE_HOST_PTR).
 * Elsewhere weight buffers are device memory, filled by buffer_write or,
 * for the session's loader (load_device), by streamed uploads (upload_*
 * ops, cl_upload.c, ioring/upload.h).  ST_OPENCL_NO_WRAP=1 takes the
 * device-memory path on any device. */
extern const struct st_backend_ops st_backend_opencl;

#endif
