/* drm_devices.h: physical GPUs as the kernel sees them (DRM render nodes and their
 * PCI ids, through libdrm), so that one GPU driven through two APIs (a
 * Vulkan device and an OpenCL device with the same PCI bus id) is counted
 * once.  No libdrm, or no /dev/dri, is a normal case: zero devices. */
#ifndef ST_DRM_DEVICES_H
#define ST_DRM_DEVICES_H

#include <stdint.h>

struct st_drm_device {
	char node[64];          /* "/dev/dri/renderD128" */
	char pci_bus_id[32];    /* "0000:01:00.0" (same format as st_device_info) */
	uint16_t vendor_id, device_id;
};

/* Fill up to max entries; returns how many render nodes there are (may be
 * more than max), or a negative code when libdrm fails for another reason
 * than there being no DRM devices. */
int st_drm_devices(struct st_drm_device *out, int max);

#endif
