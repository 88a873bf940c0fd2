/* opencl.h: the OpenCL backend, for the backend registry. */
#ifndef ST_OPENCL_H
#define ST_OPENCL_H

#include "backend.h"

/* Devices of every OpenCL platform (through the ICD loader); no platform or
 * no device is a normal case: device_count() returns 0. */
extern const struct st_backend_ops st_backend_opencl;

#endif
