/* vk_memory.c: buffers.  On a unified device (integrated GPU, CPU driver
 * such as lavapipe, or a BAR covering all VRAM) every buffer lives in
 * device-local host-visible coherent memory, mapped once and written in
 * place.  Elsewhere weights and activations are device-local and
 * buffer_write/read go through a host-visible staging buffer and a copy
 * command; ST_BUF_HOST_VISIBLE buffers are host memory the device reads.
 * ST_VULKAN_FORCE_STAGING=1 takes the staging path on any device (tests). */
#include "vk_internal.h"

#include <stdlib.h>
#include <string.h>

#include "util.h"

#define ST_VK_STAGING_CHUNK ((size_t)32 << 20)

static int find_type(const VkPhysicalDeviceMemoryProperties *mp, uint32_t bits, VkMemoryPropertyFlags want)
{
	for (uint32_t i = 0; i < mp->memoryTypeCount; i++)
		if ((bits & (1u << i)) && (mp->memoryTypes[i].propertyFlags & want) == want)
			return (int)i;
	return -1;
}

int st_vk_memory_init(struct st_vk_backend *be)
{
	const VkPhysicalDeviceMemoryProperties *mp = &be->mem_props;
	const char *force = getenv("ST_VULKAN_FORCE_STAGING");
	const VkMemoryPropertyFlags hv = VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT;

	be->mt_host = find_type(mp, ~0u, hv);
	be->mt_device = find_type(mp, ~0u, VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT);
	if (be->mt_host < 0)
		return st_error(-ENOTSUP, "vulkan: %s has no host-visible coherent memory type", be->props.deviceName);
	if (be->mt_device < 0)
		be->mt_device = be->mt_host;
	be->unified = be->base.info.unified_memory && !(force && *force && strcmp(force, "0") != 0);
	if (be->unified) {
		int t = find_type(mp, ~0u, hv | VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT);
		if (t >= 0)
			be->mt_host = be->mt_device = t;
		else
			be->unified = false;
	}
	return 0;
}

int st_vk_buffer_create(struct st_vk_backend *be, size_t size, unsigned flags, VkBufferUsageFlags extra_usage,
			struct st_buffer **out)
{
	struct st_buffer *b;
	int rc;
	bool host = be->unified || (flags & ST_BUF_HOST_VISIBLE);

	*out = NULL;
	if (size == 0 || size > SIZE_MAX - 16)
		return st_error(-EINVAL, "vulkan: buffer of %zu bytes", size);
	b = calloc(1, sizeof(*b));
	if (!b)
		return st_error(-ENOMEM, "vulkan: no memory for a buffer record");
	b->be = be;
	b->size = size;
	VkBufferCreateInfo bci = {
		.sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO,
		.size = (size + 15) & ~(size_t)15,   /* kernels read whole words */
		.usage = VK_BUFFER_USAGE_STORAGE_BUFFER_BIT | VK_BUFFER_USAGE_TRANSFER_SRC_BIT |
			 VK_BUFFER_USAGE_TRANSFER_DST_BIT | extra_usage,
		.sharingMode = VK_SHARING_MODE_EXCLUSIVE,
	};
	if ((rc = st_vk_check(vkCreateBuffer(be->dev, &bci, NULL, &b->buf), "vkCreateBuffer")) != 0)
		goto err;
	VkMemoryRequirements req;
	vkGetBufferMemoryRequirements(be->dev, b->buf, &req);
	int type = host ? be->mt_host : be->mt_device;
	if (!(req.memoryTypeBits & (1u << type))) {
		type = find_type(&be->mem_props, req.memoryTypeBits,
				 host ? VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT : 0);
		if (type < 0) {
			rc = st_error(-ENOTSUP, "vulkan: no memory type for a %zu-byte buffer (type bits 0x%x)", size,
				      req.memoryTypeBits);
			goto err;
		}
	}
	VkMemoryAllocateInfo mai = { .sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO,
				     .allocationSize = req.size, .memoryTypeIndex = (uint32_t)type };
	VkResult r = vkAllocateMemory(be->dev, &mai, NULL, &b->mem);
	if (r != VK_SUCCESS) {
		rc = st_vk_check(r, "vkAllocateMemory");
		st_error(rc, "vulkan: allocating %zu bytes (%s) on %s: %s", size, host ? "host-visible" : "device-local",
			 be->props.deviceName, r == VK_ERROR_OUT_OF_DEVICE_MEMORY ? "out of device memory" : "failed");
		b->mem = VK_NULL_HANDLE;
		goto err;
	}
	if ((rc = st_vk_check(vkBindBufferMemory(be->dev, b->buf, b->mem, 0), "vkBindBufferMemory")) != 0)
		goto err;
	if (host && (rc = st_vk_check(vkMapMemory(be->dev, b->mem, 0, VK_WHOLE_SIZE, 0, &b->map), "vkMapMemory")) != 0)
		goto err;
	*out = b;
	return 0;
err:
	st_vk_buffer_free(b);
	return rc;
}

int st_vk_buffer_alloc(struct st_backend *base, size_t size, unsigned flags, struct st_buffer **out)
{
	return st_vk_buffer_create(st_vk_be(base), size, flags, 0, out);
}

/* Wrap host memory (the mapped model file) as a buffer without copying,
 * through VK_EXT_external_memory_host, on unified devices only (elsewhere
 * the GPU would read the weights over the bus every token).  -ENOTSUP
 * whenever it cannot: the caller then allocates and copies.  The range is
 * rounded up to the import alignment (a page: still inside the mapping). */
int st_vk_buffer_wrap(struct st_backend *base, void *ptr, size_t size, struct st_buffer **out)
{
	struct st_vk_backend *be = st_vk_be(base);
	const VkExternalMemoryHandleTypeFlagBits ht = VK_EXTERNAL_MEMORY_HANDLE_TYPE_HOST_ALLOCATION_BIT_EXT;
	uint64_t isize;
	int rc;

	*out = NULL;
	if (!be->host_import || !be->unified || !ptr || size == 0 ||
	    (uintptr_t)ptr % be->host_import_align || st_align_up_u64(size, be->host_import_align, &isize))
		return -ENOTSUP;
	VkMemoryHostPointerPropertiesEXT hp = { .sType = VK_STRUCTURE_TYPE_MEMORY_HOST_POINTER_PROPERTIES_EXT };
	if (be->get_host_ptr_props(be->dev, ht, ptr, &hp) != VK_SUCCESS || !hp.memoryTypeBits)
		return -ENOTSUP;
	struct st_buffer *b = calloc(1, sizeof(*b));
	if (!b)
		return st_error(-ENOMEM, "vulkan: no memory for a buffer record");
	b->be = be;
	b->size = size;
	b->imported = true;
	VkExternalMemoryBufferCreateInfo ext = { .sType = VK_STRUCTURE_TYPE_EXTERNAL_MEMORY_BUFFER_CREATE_INFO,
						 .handleTypes = ht };
	VkBufferCreateInfo bci = { .sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO, .pNext = &ext, .size = isize,
				   .usage = VK_BUFFER_USAGE_STORAGE_BUFFER_BIT | VK_BUFFER_USAGE_TRANSFER_SRC_BIT,
				   .sharingMode = VK_SHARING_MODE_EXCLUSIVE };
	if ((rc = st_vk_check(vkCreateBuffer(be->dev, &bci, NULL, &b->buf), "vkCreateBuffer (import)")) != 0)
		goto err;
	VkMemoryRequirements req;
	vkGetBufferMemoryRequirements(be->dev, b->buf, &req);
	int type = find_type(&be->mem_props, req.memoryTypeBits & hp.memoryTypeBits, 0);
	if (type < 0 || req.size > isize) {
		rc = -ENOTSUP;
		goto err;
	}
	VkImportMemoryHostPointerInfoEXT imp = { .sType = VK_STRUCTURE_TYPE_IMPORT_MEMORY_HOST_POINTER_INFO_EXT,
						 .handleType = ht, .pHostPointer = ptr };
	VkMemoryAllocateInfo mai = { .sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO, .pNext = &imp,
				     .allocationSize = isize, .memoryTypeIndex = (uint32_t)type };
	if (vkAllocateMemory(be->dev, &mai, NULL, &b->mem) != VK_SUCCESS) {
		b->mem = VK_NULL_HANDLE;
		rc = -ENOTSUP;
		goto err;
	}
	if ((rc = st_vk_check(vkBindBufferMemory(be->dev, b->buf, b->mem, 0), "vkBindBufferMemory (import)")) != 0)
		goto err;
	b->map = ptr;
	st_log(ST_LOG_INFO, "vulkan: imported %zu bytes of host memory (mapped weights used in place)", size);
	*out = b;
	return 0;
err:
	st_vk_buffer_free(b);
	return rc;
}

void st_vk_buffer_free(struct st_buffer *b)
{
	if (!b)
		return;
	VkDevice dev = b->be->dev;
	if (b->map && !b->imported)
		vkUnmapMemory(dev, b->mem);
	if (b->buf)
		vkDestroyBuffer(dev, b->buf, NULL);
	if (b->mem)
		vkFreeMemory(dev, b->mem, NULL);
	free(b);
}

void *st_vk_buffer_map(struct st_buffer *b)
{
	return b->map;
}

static int check_range(const struct st_buffer *b, size_t off, size_t n, const char *what)
{
	size_t end;
	if (st_add_overflow_size(off, n, &end) || end > b->size)
		return st_error(-EINVAL, "vulkan: %s of %zu bytes at offset %zu overruns a buffer of %zu bytes",
				what, n, off, b->size);
	return 0;
}

/* One staging round trip: to_device copies src into the buffer, else the
 * buffer into dst. */
static int staged_copy(struct st_buffer *b, size_t off, void *host, size_t n, bool to_device)
{
	struct st_vk_backend *be = b->be;
	struct st_buffer *st;
	int rc = st_vk_buffer_create(be, ST_MIN(n, ST_VK_STAGING_CHUNK), ST_BUF_HOST_VISIBLE, 0, &st);
	if (rc)
		return rc;
	for (size_t done = 0; done < n && !rc;) {
		size_t len = ST_MIN(n - done, ST_VK_STAGING_CHUNK);
		if (to_device)
			memcpy(st->map, (const char *)host + done, len);
		VkCommandBufferBeginInfo bi = { .sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO,
						.flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT };
		if ((rc = st_vk_check(vkBeginCommandBuffer(be->xfer_cb, &bi), "vkBeginCommandBuffer")) != 0)
			break;
		/* order after any compute work that touched the buffer */
		VkMemoryBarrier mb = { .sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
				       .srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT,
				       .dstAccessMask = VK_ACCESS_TRANSFER_READ_BIT | VK_ACCESS_TRANSFER_WRITE_BIT };
		vkCmdPipelineBarrier(be->xfer_cb, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT,
				     VK_PIPELINE_STAGE_TRANSFER_BIT, 0, 1, &mb, 0, NULL, 0, NULL);
		VkBufferCopy c = { .srcOffset = to_device ? 0 : off + done, .dstOffset = to_device ? off + done : 0,
				   .size = len };
		vkCmdCopyBuffer(be->xfer_cb, to_device ? st->buf : b->buf, to_device ? b->buf : st->buf, 1, &c);
		VkMemoryBarrier mb2 = { .sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
					.srcAccessMask = VK_ACCESS_TRANSFER_WRITE_BIT,
					.dstAccessMask = VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_HOST_READ_BIT };
		vkCmdPipelineBarrier(be->xfer_cb, VK_PIPELINE_STAGE_TRANSFER_BIT,
				     VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_HOST_BIT, 0, 1, &mb2, 0, NULL,
				     0, NULL);
		if ((rc = st_vk_check(vkEndCommandBuffer(be->xfer_cb), "vkEndCommandBuffer")) != 0)
			break;
		if ((rc = st_vk_submit_wait(be, be->xfer_cb)) != 0)
			break;
		if (!to_device)
			memcpy((char *)host + done, st->map, len);
		done += len;
	}
	st_vk_buffer_free(st);
	return rc;
}

int st_vk_buffer_write(struct st_buffer *b, size_t off, const void *src, size_t n)
{
	int rc = check_range(b, off, n, "write");
	if (rc || n == 0)
		return rc;
	if (b->imported)
		return st_error(-EPERM, "vulkan: buffer wraps host memory (mapped weights); it is read-only here");
	if (b->map) {
		memcpy((char *)b->map + off, src, n);
		return 0;
	}
	return staged_copy(b, off, (void *)src, n, true);
}

int st_vk_buffer_read(struct st_buffer *b, size_t off, void *dst, size_t n)
{
	int rc = check_range(b, off, n, "read");
	if (rc || n == 0)
		return rc;
	if (b->map) {
		memcpy(dst, (const char *)b->map + off, n);
		return 0;
	}
	return staged_copy(b, off, dst, n, false);
}
