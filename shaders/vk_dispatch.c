/* vk_dispatch.c: a graph is recorded once into one command buffer
 * (graph_prepare) and replayed by every graph_run.  What changes between
 * runs (n_tokens, pos0, and the grid height derived from n_tokens) lives in
 * a small host-visible params buffer: the kernels read n_tokens/pos0 from
 * it and every dispatch is vkCmdDispatchIndirect from it, so a run writes a
 * few words and submits; nothing is re-recorded.  Timestamps around each
 * dispatch (where the queue supports them) give per-op times. */
#include "vk_internal.h"

#include <stdlib.h>
#include <string.h>

#include "ops_ref.h"
#include "util.h"

void st_vk_graph_free(struct st_graph *g)
{
	if (!g)
		return;
	struct st_vk_backend *be = g->be;
	if (g->ran)
		vkQueueWaitIdle(be->queue);
	if (g->cb)
		vkFreeCommandBuffers(be->dev, be->pool, 1, &g->cb);
	if (g->cb_timed)
		vkFreeCommandBuffers(be->dev, be->pool, 1, &g->cb_timed);
	if (g->qpool)
		vkDestroyQueryPool(be->dev, g->qpool, NULL);
	if (g->dpool)
		vkDestroyDescriptorPool(be->dev, g->dpool, NULL);
	if (g->params)
		st_vk_buffer_free(g->params);
	free(g->gops);
	free(g->ops);
	free(g);
}

/* Record the graph into cb; with timed, a timestamp before and after each
 * dispatch (on lavapipe each one is a full sync that doubles the cost of a
 * small dispatch, so only the second command buffer has them). */
static void record(struct st_graph *g, const VkDescriptorSet *sets, VkCommandBuffer cb, bool timed)
{
	struct st_vk_backend *be = g->be;
	const VkMemoryBarrier between = {
		.sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
		.srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT,
		.dstAccessMask = VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT,
	};
	const VkMemoryBarrier to_host = {
		.sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
		.srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT,
		.dstAccessMask = VK_ACCESS_HOST_READ_BIT | VK_ACCESS_TRANSFER_READ_BIT,
	};

	if (timed)
		vkCmdResetQueryPool(cb, g->qpool, 0, 2 * (uint32_t)g->n_disp);
	for (int i = 0; i < g->n_disp; i++) {
		const struct st_vk_gop *op = &g->gops[i];
		vkCmdBindPipeline(cb, VK_PIPELINE_BIND_POINT_COMPUTE, be->pipes[op->kernel]);
		vkCmdBindDescriptorSets(cb, VK_PIPELINE_BIND_POINT_COMPUTE, be->layout, 0, 1, &sets[i], 0, NULL);
		vkCmdPushConstants(cb, be->layout, VK_SHADER_STAGE_COMPUTE_BIT, 0, sizeof(op->push), &op->push);
		if (timed)
			vkCmdWriteTimestamp(cb, VK_PIPELINE_STAGE_TOP_OF_PIPE_BIT, g->qpool, 2 * (uint32_t)i);
		vkCmdDispatchIndirect(cb, g->params->buf, (VkDeviceSize)(ST_VK_PARAMS_HDR + 3u * (uint32_t)i) * 4u);
		if (timed)
			vkCmdWriteTimestamp(cb, VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT, g->qpool, 2 * (uint32_t)i + 1);
		vkCmdPipelineBarrier(cb, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT,
				     i + 1 < g->n_disp ? VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT :
							 VK_PIPELINE_STAGE_HOST_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT,
				     0, 1, i + 1 < g->n_disp ? &between : &to_host, 0, NULL, 0, NULL);
	}
}

static int graph_prepare(struct st_backend *base, const struct st_op *ops, int n_ops, struct st_graph **out);

int st_vk_graph_prepare(struct st_backend *base, const struct st_op *ops, int n_ops, struct st_graph **out)
{
	uint64_t verr = st_vk_validation_error_count();
	int rc = graph_prepare(base, ops, n_ops, out);
	if (rc == 0 && (rc = st_vk_validation_check(verr, "graph_prepare")) != 0) {
		st_vk_graph_free(*out);
		*out = NULL;
	}
	return rc;
}

static int graph_prepare(struct st_backend *base, const struct st_op *ops, int n_ops, struct st_graph **out)
{
	struct st_vk_backend *be = st_vk_be(base);
	struct st_graph *g;
	VkDescriptorSet *sets = NULL;
	struct st_vk_piece *disp = NULL;
	uint32_t words;
	int rc;

	*out = NULL;
	if (n_ops <= 0 || n_ops > 1000000)
		return st_error(-EINVAL, "vulkan graph_prepare: %d ops", n_ops);
	g = calloc(1, sizeof(*g));
	if (!g)
		return st_error(-ENOMEM, "vulkan: no memory for a graph");
	g->be = be;
	g->n_ops = n_ops;
	g->ops = calloc((size_t)n_ops, sizeof(*g->ops));
	if (!g->ops) {
		rc = st_error(-ENOMEM, "vulkan: no memory for a graph of %d ops", n_ops);
		goto err;
	}
	memcpy(g->ops, ops, (size_t)n_ops * sizeof(*ops));
	for (int i = 0; i < n_ops; i++) {
		if ((rc = st_op_check(&ops[i], NULL)) != 0)
			goto err;
		g->n_disp += st_vk_op_split(be, &ops[i], NULL);
	}
	g->gops = calloc((size_t)g->n_disp, sizeof(*g->gops));
	disp = calloc((size_t)g->n_disp, sizeof(*disp));
	sets = calloc((size_t)g->n_disp, sizeof(*sets));
	if (!g->gops || !disp || !sets) {
		rc = st_error(-ENOMEM, "vulkan: no memory for a graph of %d dispatches", g->n_disp);
		goto err;
	}
	for (int i = 0, k = 0; i < n_ops; i++) {
		int n = st_vk_op_split(be, &ops[i], &disp[k]);
		for (int j = 0; j < n; j++)
			g->gops[k + j].op = i;
		k += n;
	}

	/* pass 1: kernels, pipelines, table sizes; pass 2 fills the tables */
	const uint32_t nd = (uint32_t)g->n_disp;
	uint32_t cursor = ST_VK_PARAMS_HDR + 3u * nd;
	for (uint32_t i = 0; i < nd; i++) {
		int op = g->gops[i].op;
		if ((rc = st_vk_op_lower(be, &disp[i], &g->gops[i], &cursor, NULL)) != 0)
			goto err;   /* the message names the op */
		g->gops[i].op = op;   /* lowering clears the record */
	}
	words = cursor;
	if ((rc = st_vk_buffer_create(be, (size_t)words * 4u, ST_BUF_HOST_VISIBLE, VK_BUFFER_USAGE_INDIRECT_BUFFER_BIT,
				      &g->params)) != 0)
		goto err;
	g->pmap = g->params->map;
	memset(g->pmap, 0, (size_t)words * 4u);
	cursor = ST_VK_PARAMS_HDR + 3u * nd;
	for (uint32_t i = 0; i < nd; i++) {
		int op = g->gops[i].op;
		if ((rc = st_vk_op_lower(be, &disp[i], &g->gops[i], &cursor, g->pmap)) != 0)
			goto err;
		g->gops[i].op = op;   /* lowering clears the record */
	}

	/* descriptor sets: one per op */
	VkDescriptorPoolSize ps = { .type = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
				    .descriptorCount = ST_VK_BINDINGS * nd };
	VkDescriptorPoolCreateInfo dpi = { .sType = VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO,
					   .maxSets = nd, .poolSizeCount = 1, .pPoolSizes = &ps };
	if ((rc = st_vk_check(vkCreateDescriptorPool(be->dev, &dpi, NULL, &g->dpool), "vkCreateDescriptorPool")) != 0)
		goto err;
	for (uint32_t i = 0; i < nd; i++) {
		VkDescriptorSetAllocateInfo ai = { .sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO,
						   .descriptorPool = g->dpool, .descriptorSetCount = 1,
						   .pSetLayouts = &be->dsl };
		if ((rc = st_vk_check(vkAllocateDescriptorSets(be->dev, &ai, &sets[i]), "vkAllocateDescriptorSets")) != 0)
			goto err;
		VkDescriptorBufferInfo bi[ST_VK_BINDINGS];
		VkWriteDescriptorSet w[ST_VK_BINDINGS];
		for (uint32_t b = 0; b < ST_VK_BINDINGS; b++) {
			bi[b] = b < 4 ? g->gops[i].bind[b] :
				(VkDescriptorBufferInfo){ .buffer = g->params->buf, .offset = 0, .range = VK_WHOLE_SIZE };
			w[b] = (VkWriteDescriptorSet){ .sType = VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET, .dstSet = sets[i],
						       .dstBinding = b, .descriptorCount = 1,
						       .descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
						       .pBufferInfo = &bi[b] };
		}
		vkUpdateDescriptorSets(be->dev, ST_VK_BINDINGS, w, 0, NULL);
	}

	if (be->timestamps) {
		VkQueryPoolCreateInfo qi = { .sType = VK_STRUCTURE_TYPE_QUERY_POOL_CREATE_INFO,
					     .queryType = VK_QUERY_TYPE_TIMESTAMP, .queryCount = 2 * nd };
		if (vkCreateQueryPool(be->dev, &qi, NULL, &g->qpool) != VK_SUCCESS)
			g->qpool = VK_NULL_HANDLE;   /* timing is optional */
	}

	for (int timed = 0; timed < (g->qpool ? 2 : 1); timed++) {
		VkCommandBuffer *cb = timed ? &g->cb_timed : &g->cb;
		VkCommandBufferAllocateInfo cai = { .sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO,
						    .commandPool = be->pool, .level = VK_COMMAND_BUFFER_LEVEL_PRIMARY,
						    .commandBufferCount = 1 };
		if ((rc = st_vk_check(vkAllocateCommandBuffers(be->dev, &cai, cb), "vkAllocateCommandBuffers")) != 0)
			goto err;
		VkCommandBufferBeginInfo bi = { .sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO };
		if ((rc = st_vk_check(vkBeginCommandBuffer(*cb, &bi), "vkBeginCommandBuffer")) != 0)
			goto err;
		record(g, sets, *cb, timed);
		if ((rc = st_vk_check(vkEndCommandBuffer(*cb), "vkEndCommandBuffer")) != 0)
			goto err;
	}
	free(sets);
	free(disp);
	*out = g;
	return 0;
err:
	free(sets);
	free(disp);
	st_vk_graph_free(g);
	return rc;
}

int st_vk_graph_run(struct st_graph *g, const struct st_graph_run *run)
{
	struct st_vk_backend *be = g->be;
	int rc;

	for (int i = 0; i < g->n_ops; i++)
		if ((rc = st_op_check(&g->ops[i], run)) != 0)
			return rc;
	if (run->n_tokens > UINT32_MAX || run->pos0 + run->n_tokens > UINT32_MAX)
		return st_error(-E2BIG, "vulkan graph_run: n_tokens %lld at pos0 %lld", (long long)run->n_tokens,
				(long long)run->pos0);
	uint32_t *p = g->pmap;
	p[0] = (uint32_t)run->n_tokens;
	p[1] = (uint32_t)run->pos0;
	for (int i = 0; i < g->n_disp; i++) {
		const struct st_vk_gop *op = &g->gops[i];
		uint64_t n = (uint64_t)run->n_tokens;
		uint32_t y = (uint32_t)((n + op->y_div - 1) / op->y_div);
		if (y > be->props.limits.maxComputeWorkGroupCount[1])
			return st_error(-E2BIG, "vulkan graph_run: %lld tokens need %u workgroups in y (device max %u)",
					(long long)run->n_tokens, y, be->props.limits.maxComputeWorkGroupCount[1]);
		p[ST_VK_PARAMS_HDR + 3 * i] = op->grid_x;
		p[ST_VK_PARAMS_HDR + 3 * i + 1] = y;
		p[ST_VK_PARAMS_HDR + 3 * i + 2] = op->grid_z;
	}
	g->ran = true;
	uint64_t verr = st_vk_validation_error_count();
	g->last_timed = g->want_times && g->cb_timed;
	rc = st_vk_submit_wait(be, g->last_timed ? g->cb_timed : g->cb);
	return rc ? rc : st_vk_validation_check(verr, "graph_run");
}

int st_vk_graph_op_times(struct st_graph *g, double *seconds, int n_ops)
{
	struct st_vk_backend *be = g->be;
	if (!g->qpool)
		return -ENOTSUP;
	/* timestamps cost a sync per dispatch: runs are timed from the first
	 * request on */
	g->want_times = true;
	if (!g->ran || !g->last_timed)
		return st_error(-EAGAIN, "vulkan graph_op_times: per-op times are recorded from the next run on");
	int n = ST_MIN(n_ops, g->n_ops);
	uint64_t *ts = calloc(2 * (size_t)g->n_disp, sizeof(*ts));
	if (!ts)
		return st_error(-ENOMEM, "vulkan: no memory for %d timestamps", 2 * g->n_disp);
	int rc = st_vk_check(vkGetQueryPoolResults(be->dev, g->qpool, 0, 2 * (uint32_t)g->n_disp,
						   2 * (size_t)g->n_disp * sizeof(*ts), ts, sizeof(*ts),
						   VK_QUERY_RESULT_64_BIT | VK_QUERY_RESULT_WAIT_BIT),
			     "vkGetQueryPoolResults");
	for (int i = 0; i < n; i++)
		seconds[i] = 0;
	for (int i = 0; i < g->n_disp && !rc; i++) {
		uint64_t dt = (ts[2 * i + 1] - ts[2 * i]) & be->ts_mask;
		if (g->gops[i].op < n)
			seconds[g->gops[i].op] += (double)dt * be->ts_period_ns * 1e-9;
	}
	free(ts);
	return rc ? rc : n;
}
