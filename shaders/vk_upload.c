/* vk_upload.c: streamed uploads into device-local buffers (backend.h
 * upload_*).  The slots are pieces of one host-visible coherent staging
 * buffer, mapped once; each slot has its own command buffer and fence, so
 * the copy of slot k (vkCmdCopyBuffer) runs on the device while the host
 * fills slot k+1.  A slot is handed back to the host only after its fence
 * signalled.  Host writes to coherent memory before vkQueueSubmit are
 * visible to the transfer (submission is a host-write barrier). */
#include "vk_internal.h"

#include <stdlib.h>
#include <string.h>

#include "util.h"

/* 10 minutes, as st_vk_submit_wait: slow is not hung */
#define ST_VK_UPLOAD_TIMEOUT_NS UINT64_C(600000000000)

struct st_upload {
	struct st_vk_backend *be;
	struct st_buffer *staging;
	size_t base;                     /* offset of slot 0 in staging (page-aligned address) */
	size_t slot_size;
	int n_slots;
	VkCommandBuffer cb[ST_UPLOAD_MAX_SLOTS];
	VkFence fence[ST_UPLOAD_MAX_SLOTS];
	bool busy[ST_UPLOAD_MAX_SLOTS];  /* submitted, fence not yet waited for */
};

int st_vk_upload_open(struct st_backend *base, size_t slot_size, int n_slots, void **slots,
			  struct st_upload **out)
{
	struct st_vk_backend *be = st_vk_be(base);
	uint64_t verr = st_vk_validation_error_count();
	size_t bytes;
	int rc;

	*out = NULL;
	bytes = slot_size * (size_t)n_slots + ST_UPLOAD_ALIGN;   /* bounded by st_upload_open */
	struct st_upload *u = calloc(1, sizeof(*u));
	if (!u)
		return st_error(-ENOMEM, "vulkan upload: out of memory");
	u->be = be;
	u->slot_size = slot_size;
	/* the staging buffer is the copy's source: host memory on every device */
	if ((rc = st_vk_buffer_create(be, bytes, ST_BUF_HOST_VISIBLE, 0, &u->staging)) != 0)
		goto err;
	u->base = (size_t)(-(uintptr_t)u->staging->map & (ST_UPLOAD_ALIGN - 1));
	VkCommandBufferAllocateInfo cai = { .sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO,
					    .commandPool = be->pool, .level = VK_COMMAND_BUFFER_LEVEL_PRIMARY,
					    .commandBufferCount = (uint32_t)n_slots };
	if ((rc = st_vk_check(vkAllocateCommandBuffers(be->dev, &cai, u->cb), "vkAllocateCommandBuffers (upload)")) != 0)
		goto err;
	u->n_slots = n_slots;      /* from here close frees the command buffers */
	for (int i = 0; i < n_slots; i++) {
		VkFenceCreateInfo fci = { .sType = VK_STRUCTURE_TYPE_FENCE_CREATE_INFO };
		if ((rc = st_vk_check(vkCreateFence(be->dev, &fci, NULL, &u->fence[i]), "vkCreateFence (upload)")) != 0)
			goto err;
		slots[i] = (char *)u->staging->map + u->base + (size_t)i * slot_size;
	}
	if ((rc = st_vk_validation_check(verr, "upload_open")) != 0)
		goto err;
	st_log(ST_LOG_DEBUG, "vulkan upload: %d staging slots of %zu KiB", n_slots, slot_size >> 10);
	*out = u;
	return 0;
err:
	st_vk_upload_close(u);
	return rc;
}

int st_vk_upload_wait(struct st_upload *u, int slot)
{
	struct st_vk_backend *be = u->be;
	if (slot < 0 || slot >= u->n_slots)
		return st_error(-EINVAL, "vulkan upload: slot %d of %d", slot, u->n_slots);
	if (!u->busy[slot])
		return 0;
	uint64_t verr = st_vk_validation_error_count();
	int rc = st_vk_check(vkWaitForFences(be->dev, 1, &u->fence[slot], VK_TRUE, ST_VK_UPLOAD_TIMEOUT_NS),
			     "vkWaitForFences (upload)");
	if (rc)
		return rc;              /* still busy: close waits for the device */
	u->busy[slot] = false;
	rc = st_vk_check(vkResetFences(be->dev, 1, &u->fence[slot]), "vkResetFences (upload)");
	return rc ? rc : st_vk_validation_check(verr, "upload_wait");
}

int st_vk_upload_submit(struct st_upload *u, int slot, struct st_buffer *dst, const struct st_upload_region *r,
			    int n)
{
	struct st_vk_backend *be = u->be;
	VkBufferCopy *c;
	int rc;

	if (slot < 0 || slot >= u->n_slots)
		return st_error(-EINVAL, "vulkan upload: slot %d of %d", slot, u->n_slots);
	if (!dst || dst->be != be || dst->imported)
		return st_error(-EINVAL, "vulkan upload: the destination is not a writable buffer of this device");
	if (n == 0)
		return 0;
	if ((rc = st_upload_check_regions(r, n, u->slot_size, dst->size, "vulkan")) != 0)
		return rc;
	if ((rc = st_vk_upload_wait(u, slot)) != 0)
		return rc;
	c = malloc((size_t)n * sizeof(*c));
	if (!c)
		return st_error(-ENOMEM, "vulkan upload: out of memory for %d regions", n);
	for (int i = 0; i < n; i++)
		c[i] = (VkBufferCopy){ .srcOffset = u->base + (size_t)slot * u->slot_size + r[i].src_offset,
				       .dstOffset = r[i].dst_offset, .size = r[i].size };
	uint64_t verr = st_vk_validation_error_count();
	VkCommandBuffer cb = u->cb[slot];
	VkCommandBufferBeginInfo bi = { .sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO,
					.flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT };
	if ((rc = st_vk_check(vkBeginCommandBuffer(cb, &bi), "vkBeginCommandBuffer (upload)")) != 0)
		goto out;
	/* after any compute work or copy that touched the destination */
	VkMemoryBarrier mb = { .sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
			       .srcAccessMask = VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT |
						VK_ACCESS_TRANSFER_WRITE_BIT,
			       .dstAccessMask = VK_ACCESS_TRANSFER_WRITE_BIT };
	vkCmdPipelineBarrier(cb, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT,
			     VK_PIPELINE_STAGE_TRANSFER_BIT, 0, 1, &mb, 0, NULL, 0, NULL);
	vkCmdCopyBuffer(cb, u->staging->buf, dst->buf, (uint32_t)n, c);
	/* the shaders (and buffer_read's copies) see the bytes */
	VkMemoryBarrier mb2 = { .sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
				.srcAccessMask = VK_ACCESS_TRANSFER_WRITE_BIT,
				.dstAccessMask = VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_TRANSFER_READ_BIT };
	vkCmdPipelineBarrier(cb, VK_PIPELINE_STAGE_TRANSFER_BIT,
			     VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT, 0, 1, &mb2, 0, NULL, 0,
			     NULL);
	if ((rc = st_vk_check(vkEndCommandBuffer(cb), "vkEndCommandBuffer (upload)")) != 0)
		goto out;
	VkSubmitInfo si = { .sType = VK_STRUCTURE_TYPE_SUBMIT_INFO, .commandBufferCount = 1, .pCommandBuffers = &cb };
	if ((rc = st_vk_check(vkQueueSubmit(be->queue, 1, &si, u->fence[slot]), "vkQueueSubmit (upload)")) != 0)
		goto out;
	u->busy[slot] = true;
	rc = st_vk_validation_check(verr, "upload_submit");
out:
	free(c);
	return rc;
}

void st_vk_upload_close(struct st_upload *u)
{
	if (!u)
		return;
	struct st_vk_backend *be = u->be;
	bool stuck = false;
	for (int i = 0; i < u->n_slots; i++)
		if (u->busy[i] && st_vk_upload_wait(u, i) != 0)
			stuck = true;
	if (stuck)
		vkQueueWaitIdle(be->queue);     /* nothing may still read the staging buffer */
	for (int i = 0; i < ST_UPLOAD_MAX_SLOTS; i++)
		if (u->fence[i])
			vkDestroyFence(be->dev, u->fence[i], NULL);
	if (u->n_slots)
		vkFreeCommandBuffers(be->dev, be->pool, (uint32_t)u->n_slots, u->cb);
	st_vk_buffer_free(u->staging);
	free(u);
}
