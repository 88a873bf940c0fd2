/* vk_pipeline.c: the one descriptor set layout (dst, src0..2, params) and
 * pipeline layout (push constants = struct st_vk_push) every kernel shares,
 * and compute pipelines built on first use from the embedded SPIR-V, with
 * the workgroup size passed as specialization constant 0. */
#include "vk_internal.h"

#include <string.h>

#include "util.h"

int st_vk_pipeline_init(struct st_vk_backend *be)
{
	VkDescriptorSetLayoutBinding b[ST_VK_BINDINGS];
	for (uint32_t i = 0; i < ST_VK_BINDINGS; i++)
		b[i] = (VkDescriptorSetLayoutBinding){ .binding = i, .descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
						       .descriptorCount = 1, .stageFlags = VK_SHADER_STAGE_COMPUTE_BIT };
	VkDescriptorSetLayoutCreateInfo dci = { .sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_LAYOUT_CREATE_INFO,
						.bindingCount = ST_VK_BINDINGS, .pBindings = b };
	int rc = st_vk_check(vkCreateDescriptorSetLayout(be->dev, &dci, NULL, &be->dsl), "vkCreateDescriptorSetLayout");
	if (rc)
		return rc;
	VkPushConstantRange pr = { .stageFlags = VK_SHADER_STAGE_COMPUTE_BIT, .offset = 0,
				   .size = sizeof(struct st_vk_push) };
	if (be->props.limits.maxPushConstantsSize < sizeof(struct st_vk_push))
		return st_error(-ENOTSUP, "vulkan: %s allows %u bytes of push constants, kernels need %zu",
				be->props.deviceName, be->props.limits.maxPushConstantsSize, sizeof(struct st_vk_push));
	VkPipelineLayoutCreateInfo lci = { .sType = VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO,
					   .setLayoutCount = 1, .pSetLayouts = &be->dsl,
					   .pushConstantRangeCount = 1, .pPushConstantRanges = &pr };
	return st_vk_check(vkCreatePipelineLayout(be->dev, &lci, NULL, &be->layout), "vkCreatePipelineLayout");
}

void st_vk_pipeline_fini(struct st_vk_backend *be)
{
	for (int i = 0; i < ST_VK_KERNEL_COUNT; i++)
		if (be->pipes[i])
			vkDestroyPipeline(be->dev, be->pipes[i], NULL);
	if (be->layout)
		vkDestroyPipelineLayout(be->dev, be->layout, NULL);
	if (be->dsl)
		vkDestroyDescriptorSetLayout(be->dev, be->dsl, NULL);
}

/* Workgroup size: a power of two (the shared-memory reduction halves it),
 * at least the subgroup size, within the device limits. */
static uint32_t pick_wg(const struct st_vk_backend *be, enum st_vk_kernel k)
{
	uint32_t wg = 64;
	/* attn_rows: lanes are heads; small groups spread a token over cores */
	if (k == ST_VK_ATTN_ROWS_F32 || k == ST_VK_ATTN_ROWS_F16)
		wg = 8;
	while (wg < be->subgroup_size && wg < 1024)
		wg *= 2;
	while (wg > be->props.limits.maxComputeWorkGroupInvocations || wg > be->props.limits.maxComputeWorkGroupSize[0])
		wg /= 2;
	/* shared memory: attn keeps 512 + 2 * wg floats */
	while (wg > 32 && (512 + 2 * wg) * sizeof(float) > be->props.limits.maxComputeSharedMemorySize)
		wg /= 2;
	return wg;
}

int st_vk_pipeline_get(struct st_vk_backend *be, enum st_vk_kernel k, VkPipeline *out)
{
	const struct st_vk_spirv *sp = &st_vk_spirv_table[k];
	VkShaderModule mod;
	int rc;

	if ((unsigned)k >= ST_VK_KERNEL_COUNT || !sp->code)
		return st_error(-EINVAL, "vulkan: no SPIR-V for kernel %d", (int)k);
	if (be->pipes[k]) {
		*out = be->pipes[k];
		return 0;
	}
	VkShaderModuleCreateInfo mci = { .sType = VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO,
					 .codeSize = sp->size, .pCode = sp->code };
	if ((rc = st_vk_check(vkCreateShaderModule(be->dev, &mci, NULL, &mod), "vkCreateShaderModule")) != 0)
		return rc;
	uint32_t wg = pick_wg(be, k);
	VkSpecializationMapEntry me = { .constantID = 0, .offset = 0, .size = sizeof(uint32_t) };
	VkSpecializationInfo si = { .mapEntryCount = 1, .pMapEntries = &me, .dataSize = sizeof wg, .pData = &wg };
	VkComputePipelineCreateInfo pci = {
		.sType = VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO,
		.stage = { .sType = VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO,
			   .stage = VK_SHADER_STAGE_COMPUTE_BIT, .module = mod, .pName = "main",
			   .pSpecializationInfo = &si },
		.layout = be->layout,
	};
	VkResult r = vkCreateComputePipelines(be->dev, VK_NULL_HANDLE, 1, &pci, NULL, &be->pipes[k]);
	vkDestroyShaderModule(be->dev, mod, NULL);
	if (r != VK_SUCCESS) {
		be->pipes[k] = VK_NULL_HANDLE;
		rc = st_vk_check(r, "vkCreateComputePipelines");
		return st_error(rc, "vulkan: building kernel %s failed (VkResult %d)", sp->name, (int)r);
	}
	be->wg[k] = wg;
	st_log(ST_LOG_DEBUG, "vulkan: built kernel %s, workgroup %u", sp->name, wg);
	*out = be->pipes[k];
	return 0;
}
