/* vk_backend.h: the Vulkan compute backend, for the backend registry.
 *
 * Every Vulkan physical device (API >= 1.1) is a device of this backend;
 * no loader, no driver or no device is a normal case: device_count()
 * returns 0.  The library must be linked whole (meson link_whole) so the
 * registry's weak reference to st_backend_vulkan resolves. */
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
