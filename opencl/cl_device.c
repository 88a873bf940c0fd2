/* cl_device.c: enumerate OpenCL devices and describe them. */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "cl_internal.h"
#include "util.h"

#ifndef CL_DEVICE_PCI_BUS_INFO_KHR
#define CL_DEVICE_PCI_BUS_INFO_KHR 0x410F
typedef struct {
	cl_uint pci_domain, pci_bus, pci_device, pci_function;
} cl_device_pci_bus_info_khr;
#endif

static cl_device_id st_cl_devs[ST_CL_MAX_DEVICES];
static int st_cl_ndevs;
static pthread_once_t st_cl_once = PTHREAD_ONCE_INIT;

static void st_cl_enumerate(void)
{
	cl_platform_id plats[8];
	cl_uint np = 0;
	if (clGetPlatformIDs(8, plats, &np) != CL_SUCCESS)
		return;         /* no ICD / no platform: zero devices, not an error */
	for (cl_uint p = 0; p < np && p < 8; p++) {
		cl_uint nd = 0;
		if (clGetDeviceIDs(plats[p], CL_DEVICE_TYPE_ALL, 0, NULL, &nd) != CL_SUCCESS || !nd)
			continue;
		cl_device_id d[ST_CL_MAX_DEVICES];
		if (nd > ST_CL_MAX_DEVICES)
			nd = ST_CL_MAX_DEVICES;
		if (clGetDeviceIDs(plats[p], CL_DEVICE_TYPE_ALL, nd, d, NULL) != CL_SUCCESS)
			continue;
		for (cl_uint i = 0; i < nd && st_cl_ndevs < ST_CL_MAX_DEVICES; i++)
			st_cl_devs[st_cl_ndevs++] = d[i];
	}
}

int st_cl_devices(cl_device_id **devs)
{
	pthread_once(&st_cl_once, st_cl_enumerate);
	*devs = st_cl_devs;
	return st_cl_ndevs;
}

static bool st_cl_has_ext(cl_device_id dev, const char *ext)
{
	char buf[8192];
	size_t n = 0;
	if (clGetDeviceInfo(dev, CL_DEVICE_EXTENSIONS, sizeof buf - 1, buf, &n) != CL_SUCCESS)
		return false;
	buf[n < sizeof buf ? n : sizeof buf - 1] = 0;
	return strstr(buf, ext) != NULL;
}

int st_cl_device_info(cl_device_id dev, struct st_device_info *info)
{
	cl_device_type type = 0;
	cl_ulong mem = 0;
	cl_uint cu = 0;
	cl_bool unified = CL_FALSE;
	char ver[96] = "", drv[96] = "";

	memset(info, 0, sizeof *info);
	clGetDeviceInfo(dev, CL_DEVICE_NAME, sizeof info->name - 1, info->name, NULL);
	clGetDeviceInfo(dev, CL_DEVICE_VERSION, sizeof ver - 1, ver, NULL);
	clGetDeviceInfo(dev, CL_DRIVER_VERSION, sizeof drv - 1, drv, NULL);
	snprintf(info->driver, sizeof info->driver, "%s, driver %s", ver, drv);
	clGetDeviceInfo(dev, CL_DEVICE_TYPE, sizeof type, &type, NULL);
	clGetDeviceInfo(dev, CL_DEVICE_HOST_UNIFIED_MEMORY, sizeof unified, &unified, NULL);
	clGetDeviceInfo(dev, CL_DEVICE_GLOBAL_MEM_SIZE, sizeof mem, &mem, NULL);
	clGetDeviceInfo(dev, CL_DEVICE_MAX_COMPUTE_UNITS, sizeof cu, &cu, NULL);
	info->type = (type & CL_DEVICE_TYPE_CPU) ? ST_DEVICE_CPU :
		     (type & CL_DEVICE_TYPE_GPU) ? (unified ? ST_DEVICE_INTEGRATED : ST_DEVICE_DISCRETE) :
		     ST_DEVICE_OTHER;
	info->unified_memory = unified == CL_TRUE;
	info->mem_total = mem;
	info->mem_free = mem;   /* OpenCL 1.2 has no free-memory query */
	info->compute_units = cu;
	if (st_cl_has_ext(dev, "cl_khr_pci_bus_info")) {
		cl_device_pci_bus_info_khr pci;
		if (clGetDeviceInfo(dev, CL_DEVICE_PCI_BUS_INFO_KHR, sizeof pci, &pci, NULL) == CL_SUCCESS)
			snprintf(info->pci_bus_id, sizeof info->pci_bus_id, "%04x:%02x:%02x.%x",
				 pci.pci_domain, pci.pci_bus, pci.pci_device, pci.pci_function);
	}
	return 0;
}

const char *st_cl_strerror(cl_int err)
{
	switch (err) {
#define E(x) case x: return #x
	E(CL_DEVICE_NOT_FOUND); E(CL_DEVICE_NOT_AVAILABLE); E(CL_COMPILER_NOT_AVAILABLE);
	E(CL_MEM_OBJECT_ALLOCATION_FAILURE); E(CL_OUT_OF_RESOURCES); E(CL_OUT_OF_HOST_MEMORY);
	E(CL_BUILD_PROGRAM_FAILURE); E(CL_INVALID_VALUE); E(CL_INVALID_DEVICE); E(CL_INVALID_CONTEXT);
	E(CL_INVALID_COMMAND_QUEUE); E(CL_INVALID_MEM_OBJECT); E(CL_INVALID_PROGRAM);
	E(CL_INVALID_KERNEL_NAME); E(CL_INVALID_KERNEL); E(CL_INVALID_ARG_INDEX); E(CL_INVALID_ARG_VALUE);
	E(CL_INVALID_ARG_SIZE); E(CL_INVALID_KERNEL_ARGS); E(CL_INVALID_WORK_DIMENSION);
	E(CL_INVALID_WORK_GROUP_SIZE); E(CL_INVALID_WORK_ITEM_SIZE); E(CL_INVALID_GLOBAL_OFFSET);
	E(CL_INVALID_BUFFER_SIZE); E(CL_INVALID_OPERATION); E(CL_INVALID_GLOBAL_WORK_SIZE);
#undef E
	default: return "CL error";
	}
}

int st_cl_fail(cl_int err, const char *what)
{
	return st_error(err == CL_OUT_OF_HOST_MEMORY || err == CL_MEM_OBJECT_ALLOCATION_FAILURE ? -ENOMEM : -EIO,
			"opencl: %s: %s (%d)", what, st_cl_strerror(err), (int)err);
}
