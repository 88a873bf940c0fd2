/* vk_device.c: Vulkan instance (shared, reference counted), validation
 * messenger, physical device enumeration and properties, logical device
 * open/close, and the backend's ops table. */
#include "vk_internal.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util.h"

/* ---- errors ---------------------------------------------------------------- */

static const char *vk_result_name(VkResult r)
{
	switch (r) {
	case VK_SUCCESS: return "VK_SUCCESS";
	case VK_TIMEOUT: return "VK_TIMEOUT";
	case VK_ERROR_OUT_OF_HOST_MEMORY: return "VK_ERROR_OUT_OF_HOST_MEMORY";
	case VK_ERROR_OUT_OF_DEVICE_MEMORY: return "VK_ERROR_OUT_OF_DEVICE_MEMORY";
	case VK_ERROR_INITIALIZATION_FAILED: return "VK_ERROR_INITIALIZATION_FAILED";
	case VK_ERROR_DEVICE_LOST: return "VK_ERROR_DEVICE_LOST";
	case VK_ERROR_MEMORY_MAP_FAILED: return "VK_ERROR_MEMORY_MAP_FAILED";
	case VK_ERROR_LAYER_NOT_PRESENT: return "VK_ERROR_LAYER_NOT_PRESENT";
	case VK_ERROR_EXTENSION_NOT_PRESENT: return "VK_ERROR_EXTENSION_NOT_PRESENT";
	case VK_ERROR_FEATURE_NOT_PRESENT: return "VK_ERROR_FEATURE_NOT_PRESENT";
	case VK_ERROR_INCOMPATIBLE_DRIVER: return "VK_ERROR_INCOMPATIBLE_DRIVER";
	case VK_ERROR_TOO_MANY_OBJECTS: return "VK_ERROR_TOO_MANY_OBJECTS";
	case VK_ERROR_OUT_OF_POOL_MEMORY: return "VK_ERROR_OUT_OF_POOL_MEMORY";
	default: return "VkResult";
	}
}

int st_vk_check(VkResult r, const char *what)
{
	int code;
	if (r == VK_SUCCESS)
		return 0;
	switch (r) {
	case VK_ERROR_OUT_OF_HOST_MEMORY:
	case VK_ERROR_OUT_OF_DEVICE_MEMORY:
	case VK_ERROR_OUT_OF_POOL_MEMORY: code = -ENOMEM; break;
	case VK_TIMEOUT: code = -ETIMEDOUT; break;
	case VK_ERROR_DEVICE_LOST: code = -EIO; break;
	case VK_ERROR_INCOMPATIBLE_DRIVER:
	case VK_ERROR_LAYER_NOT_PRESENT:
	case VK_ERROR_EXTENSION_NOT_PRESENT:
	case VK_ERROR_FEATURE_NOT_PRESENT: code = -ENOTSUP; break;
	default: code = -EIO; break;
	}
	return st_error(code, "vulkan: %s failed: %s (%d)", what, vk_result_name(r), (int)r);
}

/* ---- instance ---------------------------------------------------------------- */

static pthread_mutex_t inst_lock = PTHREAD_MUTEX_INITIALIZER;
static VkInstance inst;
static int inst_refs;
static int inst_failed_rc;               /* cached "no Vulkan here" */
static VkDebugUtilsMessengerEXT inst_messenger;
static atomic_uint_fast64_t validation_errors;
static atomic_int validation_on;

static pthread_mutex_t last_msg_lock = PTHREAD_MUTEX_INITIALIZER;
static char last_msg[256];

uint64_t st_vk_validation_error_count(void) { return atomic_load(&validation_errors); }

/* With the validation layer on, a call that made it report an error fails:
 * returns -EPROTO naming the call and the message, else 0. */
int st_vk_validation_check(uint64_t before, const char *what)
{
	uint64_t now = atomic_load(&validation_errors);
	char msg[256];
	if (now == before)
		return 0;
	pthread_mutex_lock(&last_msg_lock);
	memcpy(msg, last_msg, sizeof msg);
	pthread_mutex_unlock(&last_msg_lock);
	return st_error(-EPROTO, "vulkan %s: the validation layer reported %llu error(s); last: %s", what,
			(unsigned long long)(now - before), msg);
}
int st_vk_validation_enabled(void) { return atomic_load(&validation_on); }

static VKAPI_ATTR VkBool32 VKAPI_CALL vk_debug_cb(VkDebugUtilsMessageSeverityFlagBitsEXT sev,
						  VkDebugUtilsMessageTypeFlagsEXT type,
						  const VkDebugUtilsMessengerCallbackDataEXT *data, void *user)
{
	(void)user;
	/* validation errors count; the loader's own messages (GENERAL type,
	 * e.g. "Found no drivers") are reported but are not validation */
	if ((sev & VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT) && (type & VK_DEBUG_UTILS_MESSAGE_TYPE_VALIDATION_BIT_EXT)) {
		pthread_mutex_lock(&last_msg_lock);
		snprintf(last_msg, sizeof last_msg, "%s", data->pMessage ? data->pMessage : "?");
		pthread_mutex_unlock(&last_msg_lock);
		atomic_fetch_add(&validation_errors, 1);
		st_log(ST_LOG_ERROR, "vulkan validation: %s", data->pMessage);
	} else if (sev & (VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT | VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT)) {
		st_log(ST_LOG_WARN, "vulkan validation: %s", data->pMessage);
	}
	return VK_FALSE;
}

static bool has_layer(const char *name)
{
	uint32_t n = 0;
	bool found = false;
	if (vkEnumerateInstanceLayerProperties(&n, NULL) != VK_SUCCESS || n == 0)
		return false;
	VkLayerProperties *p = calloc(n, sizeof(*p));
	if (!p)
		return false;
	if (vkEnumerateInstanceLayerProperties(&n, p) == VK_SUCCESS)
		for (uint32_t i = 0; i < n; i++)
			found |= !strcmp(p[i].layerName, name);
	free(p);
	return found;
}

static bool has_instance_ext(const char *name)
{
	uint32_t n = 0;
	bool found = false;
	if (vkEnumerateInstanceExtensionProperties(NULL, &n, NULL) != VK_SUCCESS || n == 0)
		return false;
	VkExtensionProperties *p = calloc(n, sizeof(*p));
	if (!p)
		return false;
	if (vkEnumerateInstanceExtensionProperties(NULL, &n, p) == VK_SUCCESS)
		for (uint32_t i = 0; i < n; i++)
			found |= !strcmp(p[i].extensionName, name);
	free(p);
	return found;
}

static int instance_create(void)
{
	const char *layers[1], *exts[2];
	uint32_t n_layers = 0, n_exts = 0, api = 0;
	const char *val = getenv("ST_VULKAN_VALIDATION");
	const char *env_layers = getenv("VK_INSTANCE_LAYERS");
	bool want_val = val && *val && strcmp(val, "0") != 0;
	bool env_val = env_layers && strstr(env_layers, "VK_LAYER_KHRONOS_validation");

	if (vkEnumerateInstanceVersion(&api) != VK_SUCCESS || api < VK_API_VERSION_1_1)
		return st_error(-ENODEV, "vulkan: loader reports instance version %u.%u (need 1.1)",
				VK_API_VERSION_MAJOR(api), VK_API_VERSION_MINOR(api));
	if (want_val) {
		if (has_layer("VK_LAYER_KHRONOS_validation"))
			layers[n_layers++] = "VK_LAYER_KHRONOS_validation";
		else
			st_log(ST_LOG_WARN, "vulkan: ST_VULKAN_VALIDATION set but VK_LAYER_KHRONOS_validation is not installed");
	}
	bool messenger = (n_layers > 0 || env_val) && has_instance_ext(VK_EXT_DEBUG_UTILS_EXTENSION_NAME);
	if (messenger)
		exts[n_exts++] = VK_EXT_DEBUG_UTILS_EXTENSION_NAME;

	VkApplicationInfo app = {
		.sType = VK_STRUCTURE_TYPE_APPLICATION_INFO,
		.pApplicationName = "strata", .applicationVersion = 1,
		.pEngineName = "strata", .engineVersion = 1,
		.apiVersion = VK_API_VERSION_1_2,
	};
	VkDebugUtilsMessengerCreateInfoEXT mci = {
		.sType = VK_STRUCTURE_TYPE_DEBUG_UTILS_MESSENGER_CREATE_INFO_EXT,
		.messageSeverity = VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT |
				   VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT,
		.messageType = VK_DEBUG_UTILS_MESSAGE_TYPE_GENERAL_BIT_EXT |
			       VK_DEBUG_UTILS_MESSAGE_TYPE_VALIDATION_BIT_EXT |
			       VK_DEBUG_UTILS_MESSAGE_TYPE_PERFORMANCE_BIT_EXT,
		.pfnUserCallback = vk_debug_cb,
	};
	VkInstanceCreateInfo ci = {
		.sType = VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO,
		.pNext = messenger ? &mci : NULL,   /* also covers create/destroy */
		.pApplicationInfo = &app,
		.enabledLayerCount = n_layers, .ppEnabledLayerNames = layers,
		.enabledExtensionCount = n_exts, .ppEnabledExtensionNames = exts,
	};
	VkResult r = vkCreateInstance(&ci, NULL, &inst);
	if (r != VK_SUCCESS) {
		inst = VK_NULL_HANDLE;
		return st_vk_check(r, "vkCreateInstance");
	}
	atomic_store(&validation_on, n_layers > 0 || env_val);
	inst_messenger = VK_NULL_HANDLE;
	if (messenger) {
		PFN_vkCreateDebugUtilsMessengerEXT create =
			(PFN_vkCreateDebugUtilsMessengerEXT)vkGetInstanceProcAddr(inst, "vkCreateDebugUtilsMessengerEXT");
		if (create)
			(void)create(inst, &mci, NULL, &inst_messenger);
	}
	return 0;
}

/* The instance is created on first use and kept for the life of the
 * process: device queries (the registry, `strata devices`, every stage)
 * then cost nothing, and the loader never unloads the driver, whose JIT
 * (lavapipe's LLVM) keeps pointers to its allocations in its own globals;
 * unloading it turned those into leak reports under LeakSanitizer.
 * References are still counted, for the day a teardown is wanted. */
static int instance_get(VkInstance *out)
{
	int rc = 0;
	pthread_mutex_lock(&inst_lock);
	if (!inst) {
		if (inst_failed_rc)
			rc = inst_failed_rc;
		else if ((rc = instance_create()) != 0 && rc != -ENOMEM)
			inst_failed_rc = rc;        /* no loader/driver: do not retry every call */
	}
	if (rc == 0) {
		inst_refs++;
		*out = inst;
	}
	pthread_mutex_unlock(&inst_lock);
	return rc;
}

static void instance_put(void)
{
	pthread_mutex_lock(&inst_lock);
	if (inst_refs > 0)
		inst_refs--;
	pthread_mutex_unlock(&inst_lock);
}

/* Usable physical devices (API >= 1.1 and a compute queue), in the loader's
 * order.  Returns the count (<= max) or negative. */
static int enum_devices(VkInstance in, VkPhysicalDevice *out, int max)
{
	uint32_t n = 0;
	int k = 0;
	VkResult r = vkEnumeratePhysicalDevices(in, &n, NULL);
	if (r != VK_SUCCESS)
		return st_vk_check(r, "vkEnumeratePhysicalDevices");
	if (n == 0)
		return 0;
	VkPhysicalDevice *all = calloc(n, sizeof(*all));
	if (!all)
		return st_error(-ENOMEM, "vulkan: no memory for %u devices", n);
	r = vkEnumeratePhysicalDevices(in, &n, all);
	if (r != VK_SUCCESS && r != VK_INCOMPLETE) {
		free(all);
		return st_vk_check(r, "vkEnumeratePhysicalDevices");
	}
	for (uint32_t i = 0; i < n && k < max; i++) {
		VkPhysicalDeviceProperties p;
		uint32_t nq = 0;
		bool compute = false;
		vkGetPhysicalDeviceProperties(all[i], &p);
		if (p.apiVersion < VK_API_VERSION_1_1)
			continue;
		vkGetPhysicalDeviceQueueFamilyProperties(all[i], &nq, NULL);
		VkQueueFamilyProperties *q = calloc(nq ? nq : 1, sizeof(*q));
		if (!q)
			continue;
		vkGetPhysicalDeviceQueueFamilyProperties(all[i], &nq, q);
		for (uint32_t j = 0; j < nq; j++)
			compute |= (q[j].queueFlags & VK_QUEUE_COMPUTE_BIT) != 0;
		free(q);
		if (compute)
			out[k++] = all[i];
	}
	free(all);
	return k;
}

#define ST_VK_MAX_DEVICES 16

int st_vk_device_count(void)
{
	VkInstance in;
	VkPhysicalDevice devs[ST_VK_MAX_DEVICES];
	if (instance_get(&in) != 0)
		return 0;                   /* no loader, no driver: zero devices */
	int n = enum_devices(in, devs, ST_VK_MAX_DEVICES);
	instance_put();
	return n < 0 ? 0 : n;
}

static bool has_device_ext(VkPhysicalDevice pd, const char *name)
{
	uint32_t n = 0;
	bool found = false;
	if (vkEnumerateDeviceExtensionProperties(pd, NULL, &n, NULL) != VK_SUCCESS || n == 0)
		return false;
	VkExtensionProperties *p = calloc(n, sizeof(*p));
	if (!p)
		return false;
	if (vkEnumerateDeviceExtensionProperties(pd, NULL, &n, p) == VK_SUCCESS)
		for (uint32_t i = 0; i < n; i++)
			found |= !strcmp(p[i].extensionName, name);
	free(p);
	return found;
}

/* Host-visible device-local memory covering (nearly) all device memory. */
static bool memory_is_unified(const VkPhysicalDeviceMemoryProperties *mp, VkPhysicalDeviceType type)
{
	VkDeviceSize biggest = 0, mappable = 0;
	for (uint32_t h = 0; h < mp->memoryHeapCount; h++)
		if ((mp->memoryHeaps[h].flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT) && mp->memoryHeaps[h].size > biggest)
			biggest = mp->memoryHeaps[h].size;
	for (uint32_t i = 0; i < mp->memoryTypeCount; i++) {
		VkMemoryPropertyFlags f = mp->memoryTypes[i].propertyFlags;
		VkDeviceSize hs = mp->memoryHeaps[mp->memoryTypes[i].heapIndex].size;
		if ((f & VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT) && (f & VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT) &&
		    (f & VK_MEMORY_PROPERTY_HOST_COHERENT_BIT) && hs > mappable)
			mappable = hs;
	}
	if (!mappable)
		return false;
	if (type == VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU || type == VK_PHYSICAL_DEVICE_TYPE_CPU)
		return true;
	return mappable >= biggest / 10 * 9;   /* resizable BAR covering the VRAM */
}

static void fill_info(VkPhysicalDevice pd, struct st_device_info *info)
{
	VkPhysicalDeviceDriverProperties drv = { .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_DRIVER_PROPERTIES };
	VkPhysicalDeviceSubgroupProperties sg = { .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_PROPERTIES };
	VkPhysicalDevicePCIBusInfoPropertiesEXT pci = { .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PCI_BUS_INFO_PROPERTIES_EXT };
	VkPhysicalDeviceShaderCorePropertiesAMD amd = { .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_CORE_PROPERTIES_AMD };
	VkPhysicalDeviceShaderSMBuiltinsPropertiesNV nv = { .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_SM_BUILTINS_PROPERTIES_NV };
	VkPhysicalDeviceProperties2 p2 = { .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2, .pNext = &sg };
	VkPhysicalDeviceProperties p;
	bool has_pci = has_device_ext(pd, VK_EXT_PCI_BUS_INFO_EXTENSION_NAME);
	bool has_amd = has_device_ext(pd, VK_AMD_SHADER_CORE_PROPERTIES_EXTENSION_NAME);
	bool has_nv = has_device_ext(pd, VK_NV_SHADER_SM_BUILTINS_EXTENSION_NAME);
	bool has_budget = has_device_ext(pd, VK_EXT_MEMORY_BUDGET_EXTENSION_NAME);
	void **tail = &sg.pNext;

	vkGetPhysicalDeviceProperties(pd, &p);
	if (p.apiVersion >= VK_API_VERSION_1_2) {
		*tail = &drv;
		tail = &drv.pNext;
	}
	if (has_pci) {
		*tail = &pci;
		tail = &pci.pNext;
	}
	if (has_amd) {
		*tail = &amd;
		tail = &amd.pNext;
	}
	if (has_nv) {
		*tail = &nv;
		tail = &nv.pNext;
	}
	vkGetPhysicalDeviceProperties2(pd, &p2);

	memset(info, 0, sizeof(*info));
	snprintf(info->name, sizeof info->name, "%.127s", p.deviceName);
	if (p.apiVersion >= VK_API_VERSION_1_2 && drv.driverName[0])
		snprintf(info->driver, sizeof info->driver, "%.48s %.60s (Vulkan %u.%u)", drv.driverName, drv.driverInfo,
			 VK_API_VERSION_MAJOR(p.apiVersion), VK_API_VERSION_MINOR(p.apiVersion));
	else
		snprintf(info->driver, sizeof info->driver, "driver 0x%x (Vulkan %u.%u)", p.driverVersion,
			 VK_API_VERSION_MAJOR(p.apiVersion), VK_API_VERSION_MINOR(p.apiVersion));
	if (has_pci)
		snprintf(info->pci_bus_id, sizeof info->pci_bus_id, "%04x:%02x:%02x.%x", pci.pciDomain, pci.pciBus,
			 pci.pciDevice, pci.pciFunction);
	switch (p.deviceType) {
	case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU: info->type = ST_DEVICE_INTEGRATED; break;
	case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU: info->type = ST_DEVICE_DISCRETE; break;
	case VK_PHYSICAL_DEVICE_TYPE_CPU: info->type = ST_DEVICE_CPU; break;
	default: info->type = ST_DEVICE_OTHER; break;
	}
	if (sg.supportedStages & VK_SHADER_STAGE_COMPUTE_BIT)
		info->subgroup_size = sg.subgroupSize;
	if (has_amd)
		info->compute_units = amd.shaderEngineCount * amd.shaderArraysPerEngineCount * amd.computeUnitsPerShaderArray;
	else if (has_nv)
		info->compute_units = nv.shaderSMCount;
	else if (p.deviceType == VK_PHYSICAL_DEVICE_TYPE_CPU) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);   /* a CPU driver (lavapipe) runs on every core */
		info->compute_units = n > 0 ? (uint32_t)n : 0;
	}

	VkPhysicalDeviceMemoryBudgetPropertiesEXT budget = { .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MEMORY_BUDGET_PROPERTIES_EXT };
	VkPhysicalDeviceMemoryProperties2 m2 = { .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MEMORY_PROPERTIES_2,
						 .pNext = has_budget ? &budget : NULL };
	vkGetPhysicalDeviceMemoryProperties2(pd, &m2);
	const VkPhysicalDeviceMemoryProperties *mp = &m2.memoryProperties;
	for (uint32_t h = 0; h < mp->memoryHeapCount; h++) {
		if (!(mp->memoryHeaps[h].flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT))
			continue;
		info->mem_total += mp->memoryHeaps[h].size;
		if (has_budget)
			info->mem_free += budget.heapBudget[h] > budget.heapUsage[h] ?
					  budget.heapBudget[h] - budget.heapUsage[h] : 0;
		else
			info->mem_free += mp->memoryHeaps[h].size;   /* no budget extension: total */
	}
	info->unified_memory = memory_is_unified(mp, p.deviceType);
}

int st_vk_device_info(int index, struct st_device_info *info)
{
	VkInstance in;
	VkPhysicalDevice devs[ST_VK_MAX_DEVICES];
	int rc = instance_get(&in);
	if (rc)
		return rc;
	int n = enum_devices(in, devs, ST_VK_MAX_DEVICES);
	if (n < 0) {
		instance_put();
		return n;
	}
	if (index < 0 || index >= n) {
		instance_put();
		return st_error(-ENODEV, "vulkan: no device %d (%d present)", index, n);
	}
	fill_info(devs[index], info);
	instance_put();
	return 0;
}

/* ---- logical device -------------------------------------------------------- */

int st_vk_submit_wait(struct st_vk_backend *be, VkCommandBuffer cb)
{
	VkSubmitInfo si = { .sType = VK_STRUCTURE_TYPE_SUBMIT_INFO, .commandBufferCount = 1, .pCommandBuffers = &cb };
	int rc = st_vk_check(vkQueueSubmit(be->queue, 1, &si, be->fence), "vkQueueSubmit");
	if (rc)
		return rc;
	/* 10 minutes: a stage of a large model on a CPU driver is slow, not hung */
	rc = st_vk_check(vkWaitForFences(be->dev, 1, &be->fence, VK_TRUE, UINT64_C(600000000000)), "vkWaitForFences");
	VkResult r = vkResetFences(be->dev, 1, &be->fence);
	return rc ? rc : st_vk_check(r, "vkResetFences");
}

void st_vk_close(struct st_backend *base)
{
	struct st_vk_backend *be = st_vk_be(base);
	if (!be)
		return;
	if (be->dev) {
		vkDeviceWaitIdle(be->dev);
		if (be->dummy)
			st_vk_buffer_free(be->dummy);
		st_vk_pipeline_fini(be);
		if (be->fence)
			vkDestroyFence(be->dev, be->fence, NULL);
		if (be->pool)
			vkDestroyCommandPool(be->dev, be->pool, NULL);
		vkDestroyDevice(be->dev, NULL);
	}
	if (be->instance)
		instance_put();
	free(be);
}

int st_vk_open(int index, struct st_backend **out)
{
	VkPhysicalDevice devs[ST_VK_MAX_DEVICES];
	struct st_vk_backend *be;
	int rc, n;

	*out = NULL;
	be = calloc(1, sizeof(*be));
	if (!be)
		return st_error(-ENOMEM, "vulkan: no memory for a backend");
	be->base.ops = &st_backend_vulkan;
	be->base.device_index = index;
	if ((rc = instance_get(&be->instance)) != 0) {
		free(be);
		return rc;
	}
	n = enum_devices(be->instance, devs, ST_VK_MAX_DEVICES);
	if (n <= 0 || index < 0 || index >= n) {
		rc = n < 0 ? n : st_error(-ENODEV, "vulkan: no device %d (%d present)", index, n);
		goto err;
	}
	be->pdev = devs[index];
	fill_info(be->pdev, &be->base.info);
	vkGetPhysicalDeviceProperties(be->pdev, &be->props);
	vkGetPhysicalDeviceMemoryProperties(be->pdev, &be->mem_props);

	VkPhysicalDeviceSubgroupProperties sg = { .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_PROPERTIES };
	VkPhysicalDeviceProperties2 p2 = { .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2, .pNext = &sg };
	vkGetPhysicalDeviceProperties2(be->pdev, &p2);
	be->subgroup_size = sg.subgroupSize;
	be->subgroup_arith = (sg.supportedStages & VK_SHADER_STAGE_COMPUTE_BIT) &&
			     (sg.supportedOperations & VK_SUBGROUP_FEATURE_ARITHMETIC_BIT) &&
			     (sg.supportedOperations & VK_SUBGROUP_FEATURE_BASIC_BIT) && sg.subgroupSize >= 1;
	/* kernels: on CPU drivers a row (matmul) or a head (attention) per
	 * invocation, no reductions or shared memory; on GPUs a workgroup per
	 * row/head with subgroup reductions.  ST_VULKAN_KERNELS=cpu|gpu overrides */
	const char *kk = getenv("ST_VULKAN_KERNELS");
	be->cpu_kernels = be->props.deviceType == VK_PHYSICAL_DEVICE_TYPE_CPU;
	if (kk && !strcmp(kk, "cpu"))
		be->cpu_kernels = true;
	else if (kk && !strcmp(kk, "gpu"))
		be->cpu_kernels = false;
	/* ST_VULKAN_MAX_BINDING lowers the binding limit (tests of split matmuls) */
	be->max_range = be->props.limits.maxStorageBufferRange;
	const char *mb = getenv("ST_VULKAN_MAX_BINDING");
	if (mb && strtoull(mb, NULL, 10) >= 256 && strtoull(mb, NULL, 10) < be->max_range)
		be->max_range = strtoull(mb, NULL, 10);
	be->subgroup_shuffle8 = (sg.supportedStages & VK_SHADER_STAGE_COMPUTE_BIT) &&
				(sg.supportedOperations & VK_SUBGROUP_FEATURE_SHUFFLE_BIT) &&
				(sg.supportedOperations & VK_SUBGROUP_FEATURE_BASIC_BIT) && sg.subgroupSize >= 8;
	const char *nosg = getenv("ST_VULKAN_NO_SUBGROUPS");
	if (nosg && *nosg && strcmp(nosg, "0") != 0)
		be->subgroup_arith = be->subgroup_shuffle8 = false;

	/* queue family: prefer compute without graphics (a dedicated compute queue) */
	uint32_t nq = 0;
	vkGetPhysicalDeviceQueueFamilyProperties(be->pdev, &nq, NULL);
	VkQueueFamilyProperties *qf = calloc(nq ? nq : 1, sizeof(*qf));
	if (!qf) {
		rc = st_error(-ENOMEM, "vulkan: no memory for queue families");
		goto err;
	}
	vkGetPhysicalDeviceQueueFamilyProperties(be->pdev, &nq, qf);
	int best = -1;
	for (uint32_t i = 0; i < nq; i++) {
		if (!(qf[i].queueFlags & VK_QUEUE_COMPUTE_BIT))
			continue;
		if (best < 0 || ((qf[best].queueFlags & VK_QUEUE_GRAPHICS_BIT) && !(qf[i].queueFlags & VK_QUEUE_GRAPHICS_BIT)))
			best = (int)i;
	}
	if (best < 0) {
		free(qf);
		rc = st_error(-ENODEV, "vulkan: device %d (%s) has no compute queue", index, be->props.deviceName);
		goto err;
	}
	be->qfam = (uint32_t)best;
	be->ts_mask = qf[best].timestampValidBits >= 64 ? UINT64_MAX :
		      (qf[best].timestampValidBits ? (UINT64_C(1) << qf[best].timestampValidBits) - 1 : 0);
	be->timestamps = qf[best].timestampValidBits > 0 && be->props.limits.timestampPeriod > 0;
	const char *ts_env = getenv("ST_VULKAN_TIMESTAMPS");
	if (ts_env && !strcmp(ts_env, "0"))
		be->timestamps = false;   /* no per-op times at all */
	be->ts_period_ns = be->props.limits.timestampPeriod;
	free(qf);

	float prio = 1.0f;
	VkDeviceQueueCreateInfo qci = { .sType = VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO,
					.queueFamilyIndex = be->qfam, .queueCount = 1, .pQueuePriorities = &prio };
	/* VK_EXT_external_memory_host: on unified memory the weights can be the
	 * mapped model file itself (buffer_wrap), no copy */
	const char *dexts[1];
	uint32_t n_dexts = 0;
	const char *noimp = getenv("ST_VULKAN_NO_HOST_IMPORT");
	if (be->base.info.unified_memory && has_device_ext(be->pdev, VK_EXT_EXTERNAL_MEMORY_HOST_EXTENSION_NAME) &&
	    !(noimp && *noimp && strcmp(noimp, "0") != 0)) {
		VkPhysicalDeviceExternalMemoryHostPropertiesEXT hp = {
			.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_EXTERNAL_MEMORY_HOST_PROPERTIES_EXT };
		VkPhysicalDeviceProperties2 hp2 = { .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2, .pNext = &hp };
		vkGetPhysicalDeviceProperties2(be->pdev, &hp2);
		if (hp.minImportedHostPointerAlignment && st_is_pow2_u64(hp.minImportedHostPointerAlignment)) {
			dexts[n_dexts++] = VK_EXT_EXTERNAL_MEMORY_HOST_EXTENSION_NAME;
			be->host_import_align = hp.minImportedHostPointerAlignment;
		}
	}
	VkDeviceCreateInfo dci = { .sType = VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO,
				   .queueCreateInfoCount = 1, .pQueueCreateInfos = &qci,
				   .enabledExtensionCount = n_dexts, .ppEnabledExtensionNames = dexts };
	if ((rc = st_vk_check(vkCreateDevice(be->pdev, &dci, NULL, &be->dev), "vkCreateDevice")) != 0)
		goto err;
	if (n_dexts) {
		be->get_host_ptr_props = (PFN_vkGetMemoryHostPointerPropertiesEXT)vkGetDeviceProcAddr(
			be->dev, "vkGetMemoryHostPointerPropertiesEXT");
		be->host_import = be->get_host_ptr_props != NULL;
	}
	vkGetDeviceQueue(be->dev, be->qfam, 0, &be->queue);

	VkCommandPoolCreateInfo pci = { .sType = VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO,
					.flags = VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT, .queueFamilyIndex = be->qfam };
	if ((rc = st_vk_check(vkCreateCommandPool(be->dev, &pci, NULL, &be->pool), "vkCreateCommandPool")) != 0)
		goto err;
	VkCommandBufferAllocateInfo cai = { .sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO,
					    .commandPool = be->pool, .level = VK_COMMAND_BUFFER_LEVEL_PRIMARY,
					    .commandBufferCount = 1 };
	if ((rc = st_vk_check(vkAllocateCommandBuffers(be->dev, &cai, &be->xfer_cb), "vkAllocateCommandBuffers")) != 0)
		goto err;
	VkFenceCreateInfo fci = { .sType = VK_STRUCTURE_TYPE_FENCE_CREATE_INFO };
	if ((rc = st_vk_check(vkCreateFence(be->dev, &fci, NULL, &be->fence), "vkCreateFence")) != 0)
		goto err;
	if ((rc = st_vk_memory_init(be)) != 0 || (rc = st_vk_pipeline_init(be)) != 0)
		goto err;
	if ((rc = st_vk_buffer_create(be, 16, ST_BUF_HOST_VISIBLE, 0, &be->dummy)) != 0)
		goto err;
	st_log(ST_LOG_INFO, "vulkan%d: %s (%s), %s memory%s, subgroup size %u (%s reductions), %s, timestamps %s",
	       index, be->base.info.name, be->base.info.driver,
	       be->unified ? "unified host-visible device" : "device-local + host-visible staging",
	       be->unified ? (be->host_import ? " used directly (mapped model files imported, no copy)" :
						" used directly, no staging copies") : "",
	       be->subgroup_size, be->subgroup_arith ? "subgroupAdd" : "shared-memory",
	       be->cpu_kernels ? "CPU-driver kernels (a matmul row / attention head per invocation)" :
				 "GPU kernels (a workgroup per matmul row / attention head)",
	       be->timestamps ? "on request (graph_op_times)" : "off");
	*out = &be->base;
	return 0;
err:
	st_vk_close(&be->base);
	return rc;
}

int st_vk_synchronize(struct st_backend *base)
{
	struct st_vk_backend *be = st_vk_be(base);
	return st_vk_check(vkQueueWaitIdle(be->queue), "vkQueueWaitIdle");
}

const struct st_backend_ops st_backend_vulkan = {
	.name = "vulkan",
	.device_count = st_vk_device_count,
	.device_info = st_vk_device_info,
	.open = st_vk_open,
	.close = st_vk_close,
	.buffer_alloc = st_vk_buffer_alloc,
	.buffer_wrap = st_vk_buffer_wrap,
	.buffer_free = st_vk_buffer_free,
	.buffer_map = st_vk_buffer_map,
	.buffer_write = st_vk_buffer_write,
	.buffer_read = st_vk_buffer_read,
	.graph_prepare = st_vk_graph_prepare,
	.graph_run = st_vk_graph_run,
	.graph_free = st_vk_graph_free,
	.synchronize = st_vk_synchronize,
	.graph_op_times = st_vk_graph_op_times,
	.upload_open = st_vk_upload_open,
	.upload_submit = st_vk_upload_submit,
	.upload_wait = st_vk_upload_wait,
	.upload_close = st_vk_upload_close,
};
