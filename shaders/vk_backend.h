/* vk_backend.h: the Vulkan compute backend, for the backend registry.
 *
 * Every Vulkan physical device (API >= 1.1) is a device of this backend;
 * no loader, no driver or no device is a normal case: device_count()
 * returns 0.  The library must be linked whole (meson link_whole) so the
 * registry's weak reference to st_backend_vulkan resolves.
 *
 * Choices made per device (logged at INFO when a device opens, so
 * `strata run --verbose` shows them), and the environment variables that
 * override them (read when a device opens; for tests and measurements):
 *   memory   unified (integrated GPU, CPU driver, BAR covering VRAM): one
 *            host-visible device-local heap written in place, and mapped
 *            model files imported without a copy (VK_EXT_external_memory_host);
 *            else device-local buffers through a staging buffer, and weights
 *            loaded by the session's loader (load_device) streamed into
 *            them: upload_* ops, vk_upload.c, ioring/upload.h.
 *            ST_VULKAN_FORCE_STAGING=1 takes the staging path (device-local
 *            weights on any device), ST_VULKAN_NO_HOST_IMPORT=1 copies the
 *            weights.
 *   kernels  CPU drivers (lavapipe): a matmul row / attention head per
 *            invocation, no reductions; GPUs: a workgroup per row / head with
 *            subgroupAdd reductions (shared-memory fallback).
 *            ST_VULKAN_KERNELS=cpu|gpu, ST_VULKAN_NO_SUBGROUPS=1.
 *   bindings weights beyond maxStorageBufferRange are split into row ranges;
 *            ST_VULKAN_MAX_BINDING=bytes lowers the limit.
 *   timing   per-op timestamps in a second command buffer, used from the
 *            first graph_op_times() call on; ST_VULKAN_TIMESTAMPS=0 disables.
 *   checks   ST_VULKAN_VALIDATION=1: the Khronos validation layer and a
 *            messenger; a call the layer reports an error for fails -EPROTO. */
#ifndef ST_VK_BACKEND_H
#define ST_VK_BACKEND_H

#include <stdint.h>

#include "backend.h"

extern const struct st_backend_ops st_backend_vulkan;

/* Validation: with ST_VULKAN_VALIDATION=1 in the environment (or the layer
 * named in VK_INSTANCE_LAYERS) instances enable VK_LAYER_KHRONOS_validation
 * and a debug-utils messenger; this counts the error messages it reported
 * in this process (tests fail on any). */
uint64_t st_vk_validation_error_count(void);
/* Whether the validation layer was actually enabled on the last instance. */
int st_vk_validation_enabled(void);

#endif
