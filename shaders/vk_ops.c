/* vk_ops.c: lowering one op of backend.h to one kernel dispatch: kernel
 * variant (weight/cache type, subgroup or shared-memory reduction), push
 * constants, descriptor ranges and grid.  Shapes and types are checked by
 * st_op_check (ops_ref.c) first, like every backend; this file adds the
 * Vulkan-specific limits (alignment, storage buffer range, grid size). */
#include "vk_internal.h"

#include <math.h>
#include <string.h>

#include "ops_ref.h"
#include "types.h"
#include "util.h"

static uint32_t ceil_div(uint64_t a, uint64_t b) { return (uint32_t)((a + b - 1) / b); }

/* Bind tensor t (or the dummy buffer when t has none) as binding slot i. */
static int bind_tensor(struct st_vk_backend *be, const struct st_op *op, struct st_vk_gop *gop, int i,
		       const struct st_tensor *t, const char *what)
{
	const VkDeviceSize align = be->props.limits.minStorageBufferOffsetAlignment ?
				   be->props.limits.minStorageBufferOffsetAlignment : 1;
	uint64_t row, end;
	VkDeviceSize vk_size;

	if (!t->buf) {
		gop->bind[i] = (VkDescriptorBufferInfo){ .buffer = be->dummy->buf, .offset = 0, .range = VK_WHOLE_SIZE };
		gop->push.off[i] = 0;
		gop->push.nb1[i] = 0;
		return 0;
	}
	if (t->buf->be != be)
		return st_error(-EINVAL, "vulkan %s: %s lives in another device's buffer", st_op_name(op->kind), what);
	int rc = st_tensor_check_bounds(t, t->buf->size, what);
	if (rc)
		return rc;
	uint32_t need = t->type == ST_TYPE_F16 || t->type == ST_TYPE_BF16 || t->type == ST_TYPE_Q4_0 ||
			t->type == ST_TYPE_Q8_0 || t->type == ST_TYPE_Q6_K || t->type == ST_TYPE_Q5_0 ||
			t->type == ST_TYPE_Q4_1 || t->type == ST_TYPE_Q5_1 ? 2 : 4;   /* q6_K: 210-byte blocks */
	if (t->offset % need || t->nb1 % need)
		return st_error(-EINVAL, "vulkan %s: %s (%s) at offset %zu, row stride %zu: kernels need %u-byte alignment",
				st_op_name(op->kind), what, st_type_name(t->type), t->offset, t->nb1, need);
	(void)st_type_row_size(t->type, (uint64_t)t->ne0, &row);
	VkDeviceSize doff = t->offset / align * align;
	uint64_t resid = t->offset - doff;
	end = resid + (uint64_t)(t->ne1 - 1) * t->nb1 + row;      /* no overflow: check_bounds passed */
	end = (end + 3) & ~(uint64_t)3;
	vk_size = (t->buf->size + 15) & ~(size_t)15;               /* the VkBuffer's real size */
	if (end > vk_size - doff)
		end = vk_size - doff;
	if (end > be->max_range)
		return st_error(-E2BIG, "vulkan %s: %s spans %llu bytes; %s binds at most %llu bytes per storage buffer",
				st_op_name(op->kind), what, (unsigned long long)end, be->props.deviceName,
				(unsigned long long)be->max_range);
	gop->bind[i] = (VkDescriptorBufferInfo){ .buffer = t->buf->buf, .offset = doff, .range = end };
	gop->push.off[i] = (uint32_t)resid;
	if (t->nb1 > UINT32_MAX)
		return st_error(-E2BIG, "vulkan %s: %s row stride %zu", st_op_name(op->kind), what, t->nb1);
	gop->push.nb1[i] = (uint32_t)t->nb1;
	return 0;
}

static int kernel_for_type(uint32_t type, enum st_vk_kernel f32, enum st_vk_kernel f16, enum st_vk_kernel bf16,
			   enum st_vk_kernel q8, enum st_vk_kernel q4, enum st_vk_kernel *k)
{
	switch (type) {
	case ST_TYPE_F32: *k = f32; return 0;
	case ST_TYPE_F16: *k = f16; return 0;
	case ST_TYPE_BF16: *k = bf16; return 0;
	case ST_TYPE_Q8_0: *k = q8; return 0;
	case ST_TYPE_Q4_0: *k = q4; return 0;
	case ST_TYPE_Q4_K: case ST_TYPE_Q5_K: case ST_TYPE_Q6_K:
	case ST_TYPE_Q4_1: case ST_TYPE_Q5_0: case ST_TYPE_Q5_1: return st_vk_kq_kernel(q4, type, k);
	default: return -1;
	}
}

/* The x-sharing row kernels (matmul_rows.comp -DX_SHARE): x rows 16-byte
 * aligned, whole 32-element blocks, f16/bf16 rows 4-byte aligned, and
 * subgroups that can shuffle. */
static bool use_xs(const struct st_vk_backend *be, const struct st_op *op)
{
	const struct st_tensor *w = &op->src[0], *x = &op->src[1];
	bool half = w->type == ST_TYPE_F16 || w->type == ST_TYPE_BF16;
	return be->cpu_kernels && be->subgroup_shuffle8 && x->offset % 16 == 0 && x->nb1 % 16 == 0 &&
	       w->ne0 % 32 == 0 && (!half || (w->offset % 4 == 0 && w->nb1 % 4 == 0));
}

/* Weights that do not fit one storage-buffer binding (maxStorageBufferRange:
 * 128 MiB on lavapipe, e.g. a 32000 x 2048 f16 output head or embedding
 * table) are split into ranges of rows, one dispatch each: a matmul piece
 * writes its columns of dst; a get_rows piece copies the tokens whose id
 * falls in its range (the first piece also marks ids outside the whole
 * table).  Returns the number of pieces and fills out (when not NULL). */
int st_vk_op_split(struct st_vk_backend *be, const struct st_op *op, struct st_vk_piece *out)
{
	const struct st_tensor *w = &op->src[0];
	const uint64_t align = be->props.limits.minStorageBufferOffsetAlignment ?
			       be->props.limits.minStorageBufferOffsetAlignment : 1;
	const uint64_t range = be->max_range;
	int n = 1;
	int64_t rows = w->ne1;
	if (op->kind != ST_OP_MATMUL && op->kind != ST_OP_GET_ROWS) {
		if (out)
			*out = (struct st_vk_piece){ .op = *op, .mode = ST_VK_PIECE_ALL, .rows_total = w->ne1 };
		return 1;
	}
	if (w->ne1 > 0 && w->nb1 > 0 && range > align + 16 && (uint64_t)w->ne1 * w->nb1 + align + 16 > range &&
	    (range - align - 16) / w->nb1 > 0) {
		rows = (int64_t)((range - align - 16) / w->nb1);
		n = (int)((w->ne1 + rows - 1) / rows);
	}   /* else: fits, or one row is beyond the limit and the lowering says so */
	for (int i = 0; out && i < n; i++) {
		int64_t r0 = (int64_t)i * rows, nr = ST_MIN(rows, w->ne1 - r0);
		struct st_op p = *op;
		p.src[0].offset += (size_t)r0 * w->nb1;
		p.src[0].ne1 = nr;
		if (op->kind == ST_OP_MATMUL) {
			p.dst.offset += (size_t)r0 * sizeof(float);
			p.dst.ne0 = nr;
		}
		out[i] = (struct st_vk_piece){ .op = p, .mode = ST_VK_PIECE_ALL, .row0 = r0, .rows_total = w->ne1 };
	}
	return n;
}

int st_vk_op_lower(struct st_vk_backend *be, const struct st_vk_piece *piece, struct st_vk_gop *gop,
		   uint32_t *aux_cursor, uint32_t *aux)
{
	const struct st_op *op = &piece->op;
	const struct st_tensor *d = &op->dst, *s0 = &op->src[0], *s1 = &op->src[1], *s2 = &op->src[2];
	const char *name = st_op_name(op->kind);
	enum st_vk_kernel k = ST_VK_ADD;
	bool reduce = false;
	VkPipeline pipe;
	int rc;

	if ((rc = st_op_check(op, NULL)) != 0)
		return rc;
	memset(gop, 0, sizeof(*gop));
	gop->grid_x = gop->grid_z = gop->y_div = 1;
	gop->push.ne0 = (uint32_t)d->ne0;

	switch (op->kind) {
	case ST_OP_GET_ROWS:
		if (kernel_for_type(s0->type, ST_VK_GET_ROWS_F32, ST_VK_GET_ROWS_F16, ST_VK_GET_ROWS_BF16,
				    ST_VK_GET_ROWS_Q8_0, ST_VK_GET_ROWS_Q4_0, &k))
			goto bad_type;
		gop->push.src_rows = (uint32_t)ST_MIN(s0->ne1, (int64_t)UINT32_MAX);
		gop->push.ids_stride = (uint32_t)s1->nb1;
		/* a piece of a split table: rows row0.., of rows_total */
		gop->push.aux = (uint32_t)ST_MIN(piece->row0, (int64_t)UINT32_MAX);
		gop->push.k = (uint32_t)ST_MIN(piece->rows_total, (int64_t)UINT32_MAX);
		break;
	case ST_OP_RMSNORM:
		if (kernel_for_type(s1->type, ST_VK_RMSNORM_F32, ST_VK_RMSNORM_F16, ST_VK_RMSNORM_BF16,
				    ST_VK_KERNEL_COUNT, ST_VK_KERNEL_COUNT, &k) || k == ST_VK_KERNEL_COUNT)
			goto bad_type;
		gop->push.eps = op->p.norm.eps;
		reduce = true;
		break;
	case ST_OP_MATMUL:
		gop->push.ne1 = (uint32_t)s0->ne1;
		gop->push.k = (uint32_t)s0->ne0;
		gop->y_div = 4;          /* TB in matmul.comp */
		if (be->cpu_kernels) {   /* grid set below, from the workgroup size */
			gop->y_div = 1;  /* one token per invocation */
			if (use_xs(be, op))
				rc = kernel_for_type(s0->type, ST_VK_MATMUL_ROWS_F32_XS, ST_VK_MATMUL_ROWS_F16_XS,
						     ST_VK_MATMUL_ROWS_BF16_XS, ST_VK_MATMUL_ROWS_Q8_0_XS,
						     ST_VK_MATMUL_ROWS_Q4_0_XS, &k);
			else
				rc = kernel_for_type(s0->type, ST_VK_MATMUL_ROWS_F32, ST_VK_MATMUL_ROWS_F16,
						     ST_VK_MATMUL_ROWS_BF16, ST_VK_MATMUL_ROWS_Q8_0, ST_VK_MATMUL_ROWS_Q4_0, &k);
			if (rc || k == ST_VK_KERNEL_COUNT)
				goto bad_type;
			break;
		}
		if (kernel_for_type(s0->type, ST_VK_MATMUL_F32, ST_VK_MATMUL_F16, ST_VK_MATMUL_BF16,
				    ST_VK_MATMUL_Q8_0, ST_VK_MATMUL_Q4_0, &k))
			goto bad_type;
		gop->grid_x = (uint32_t)ST_MIN(s0->ne1, 32768);
		gop->grid_z = ceil_div((uint64_t)s0->ne1, 32768);
		reduce = true;
		break;
	case ST_OP_ROPE: {
		const uint32_t half = op->p.rope.rope_dim / 2;
		k = ST_VK_ROPE;
		gop->push.n_head = op->p.rope.n_head;
		gop->push.head_dim = op->p.rope.head_dim;
		gop->push.rope_dim = op->p.rope.rope_dim;
		gop->push.aux = *aux_cursor;
		if (aux)   /* freq[j] = theta^(-2j/rope_dim), as the reference computes it */
			for (uint32_t j = 0; j < half; j++) {
				float f = (float)pow((double)op->p.rope.theta, -2.0 * j / op->p.rope.rope_dim);
				memcpy(&aux[*aux_cursor + j], &f, sizeof f);
			}
		*aux_cursor += half ? half : 1;
		if (op->p.rope.head_dim % 2)
			return st_error(-EINVAL, "vulkan rope: head_dim %u is odd", op->p.rope.head_dim);
		break;
	}
	case ST_OP_KV_STORE:
		k = d->type == ST_TYPE_F16 ? ST_VK_KV_STORE_F16 : ST_VK_KV_STORE_F32;
		break;
	case ST_OP_ATTN: {
		gop->push.n_head = op->p.attn.n_head;
		gop->push.n_head_kv = op->p.attn.n_head_kv;
		gop->push.head_dim = op->p.attn.head_dim;
		gop->push.scale = op->p.attn.scale;
		/* CPU drivers: a (head, token) per invocation, where the shapes
		 * allow vec4 rows (attn_rows.comp) */
		const size_t ku = s1->type == ST_TYPE_F16 ? 8 : 16;
		if (be->cpu_kernels && op->p.attn.head_dim % 4 == 0 && op->p.attn.head_dim <= 128 &&
		    s0->offset % 16 == 0 && s0->nb1 % 16 == 0 && s1->offset % ku == 0 && s1->nb1 % ku == 0 &&
		    s2->offset % ku == 0 && s2->nb1 % ku == 0) {
			k = s1->type == ST_TYPE_F16 ? ST_VK_ATTN_ROWS_F16 : ST_VK_ATTN_ROWS_F32;
			break;   /* grid x from the workgroup size, below */
		}
		k = s1->type == ST_TYPE_F16 ? ST_VK_ATTN_F16 : ST_VK_ATTN_F32;
		gop->grid_x = op->p.attn.n_head;
		reduce = true;
		break;
	}
	case ST_OP_SWIGLU: k = ST_VK_SWIGLU; break;
	case ST_OP_ADD: k = ST_VK_ADD; break;
	case ST_OP_SOFTMAX: k = ST_VK_SOFTMAX; reduce = true; break;
	default:
		return st_error(-EINVAL, "vulkan: op kind %d is unknown", (int)op->kind);
	}
	if (reduce && be->subgroup_arith)
		k = (enum st_vk_kernel)(k + 1);
	gop->kernel = k;
	if ((rc = st_vk_pipeline_get(be, k, &pipe)) != 0)
		return rc;
	const uint32_t wg = be->wg[k];

	switch (op->kind) {   /* grids that depend on the workgroup size */
	case ST_OP_GET_ROWS:
	case ST_OP_SWIGLU:
	case ST_OP_ADD: gop->grid_x = ceil_div((uint64_t)d->ne0, wg); break;
	case ST_OP_ROPE: gop->grid_x = ceil_div((uint64_t)op->p.rope.n_head * (op->p.rope.head_dim / 2), wg); break;
	case ST_OP_KV_STORE: gop->grid_x = ceil_div(((uint64_t)d->ne0 + 1) / 2, wg); break;
	case ST_OP_MATMUL:
		if (be->cpu_kernels) {
			uint32_t groups = ceil_div((uint64_t)s0->ne1, wg);
			gop->grid_x = ST_MIN(groups, 32768u);
			gop->grid_z = ceil_div(groups, 32768);
		}
		break;
	case ST_OP_ATTN:
		if (k == ST_VK_ATTN_ROWS_F32 || k == ST_VK_ATTN_ROWS_F16) {
			gop->grid_x = ceil_div(op->p.attn.n_head, wg);
			break;
		}
		if (op->p.attn.head_dim > 4 * wg || op->p.attn.head_dim > 512)
			return st_error(-ENOTSUP, "vulkan attn: head_dim %u above the kernel's max %u",
					op->p.attn.head_dim, ST_MIN(4 * wg, 512u));
		break;
	default: break;
	}
	if (gop->grid_x > be->props.limits.maxComputeWorkGroupCount[0] ||
	    gop->grid_z > be->props.limits.maxComputeWorkGroupCount[2])
		return st_error(-E2BIG, "vulkan %s: grid %u x %u beyond the device's %u x %u", name, gop->grid_x,
				gop->grid_z, be->props.limits.maxComputeWorkGroupCount[0],
				be->props.limits.maxComputeWorkGroupCount[2]);

	if ((rc = bind_tensor(be, op, gop, 0, d, "dst")) != 0 || (rc = bind_tensor(be, op, gop, 1, s0, "src0")) != 0 ||
	    (rc = bind_tensor(be, op, gop, 2, op->kind == ST_OP_ROPE || op->kind == ST_OP_KV_STORE ||
				op->kind == ST_OP_SOFTMAX ? &(struct st_tensor){ 0 } : s1, "src1")) != 0 ||
	    (rc = bind_tensor(be, op, gop, 3, op->kind == ST_OP_ATTN ? s2 : &(struct st_tensor){ 0 }, "src2")) != 0)
		return rc;
	return 0;
bad_type:
	return st_error(-ENOTSUP, "vulkan %s: no kernel for type %s", name,
			st_type_name(op->kind == ST_OP_RMSNORM ? s1->type : s0->type));
}
