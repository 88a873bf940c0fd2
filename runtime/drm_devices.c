/* drm_devices.c: enumerate DRM render nodes with libdrm (drmGetDevices2). */
#include "drm_devices.h"

#include <stdio.h>
#include <string.h>

#include "st_config.h"
#include "util.h"

#if ST_HAVE_LIBDRM
#include <xf86drm.h>

int st_drm_devices(struct st_drm_device *out, int max)
{
	drmDevicePtr devs[64];
	int n = drmGetDevices2(0, devs, 64);
	int k = 0;

	if (n == -ENOENT || n == -ENODEV || n == 0)
		return 0;               /* no /dev/dri: nothing to report */
	if (n < 0)
		return st_error(n, "drm: drmGetDevices2 failed (%d)", n);
	for (int i = 0; i < n && i < 64; i++) {
		drmDevicePtr d = devs[i];
		if (!(d->available_nodes & (1 << DRM_NODE_RENDER)))
			continue;
		if (k < max) {
			struct st_drm_device *o = &out[k];
			memset(o, 0, sizeof *o);
			snprintf(o->node, sizeof o->node, "%s", d->nodes[DRM_NODE_RENDER]);
			if (d->bustype == DRM_BUS_PCI && d->businfo.pci && d->deviceinfo.pci) {
				snprintf(o->pci_bus_id, sizeof o->pci_bus_id, "%04x:%02x:%02x.%x",
					 d->businfo.pci->domain, d->businfo.pci->bus, d->businfo.pci->dev,
					 d->businfo.pci->func);
				o->vendor_id = d->deviceinfo.pci->vendor_id;
				o->device_id = d->deviceinfo.pci->device_id;
			}
		}
		k++;
	}
	drmFreeDevices(devs, ST_MIN(n, 64));
	return k;
}
#else
int st_drm_devices(struct st_drm_device *out, int max)
{
	(void)out;
	(void)max;
	return 0;
}
#endif
