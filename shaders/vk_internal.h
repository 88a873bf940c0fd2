/* vk_internal.h: the Vulkan backend's private structures, shared by its
 * files (split by concern): vk_device.c (instance, enumeration, device),
 * vk_memory.c (buffers), vk_pipeline.c (SPIR-V table, layouts, pipelines),
 * vk_dispatch.c (graph record and replay), vk_ops.c (op -> kernel). */
#ifndef ST_VK_INTERNAL_H
#define ST_VK_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <vulkan/vulkan.h>

#include "backend.h"
#include "vk_backend.h"

/* Kernels: one compiled SPIR-V module each (vk_spirv.c, built by
 * shaders/meson.build); the reduction kernels have a subgroup variant
 * right after them (kernel + 1), used where the device reports subgroup
 * arithmetic in compute shaders. */
enum st_vk_kernel {
	ST_VK_GET_ROWS_F32, ST_VK_GET_ROWS_F16, ST_VK_GET_ROWS_BF16, ST_VK_GET_ROWS_Q8_0, ST_VK_GET_ROWS_Q4_0,
	ST_VK_MATMUL_F32, ST_VK_MATMUL_F32_SG, ST_VK_MATMUL_F16, ST_VK_MATMUL_F16_SG,
	ST_VK_MATMUL_BF16, ST_VK_MATMUL_BF16_SG, ST_VK_MATMUL_Q8_0, ST_VK_MATMUL_Q8_0_SG,
	ST_VK_MATMUL_Q4_0, ST_VK_MATMUL_Q4_0_SG,
	ST_VK_RMSNORM_F32, ST_VK_RMSNORM_F32_SG, ST_VK_RMSNORM_F16, ST_VK_RMSNORM_F16_SG,
	ST_VK_RMSNORM_BF16, ST_VK_RMSNORM_BF16_SG,
	ST_VK_SOFTMAX, ST_VK_SOFTMAX_SG,
	ST_VK_ATTN_F32, ST_VK_ATTN_F32_SG, ST_VK_ATTN_F16, ST_VK_ATTN_F16_SG,
	ST_VK_ROPE, ST_VK_KV_STORE_F32, ST_VK_KV_STORE_F16, ST_VK_ADD, ST_VK_SWIGLU,
	ST_VK_MATMUL_ROWS_F32, ST_VK_MATMUL_ROWS_F16, ST_VK_MATMUL_ROWS_BF16, ST_VK_MATMUL_ROWS_Q8_0,
	ST_VK_MATMUL_ROWS_Q4_0,
	ST_VK_MATMUL_ROWS_F32_XS, ST_VK_MATMUL_ROWS_F16_XS, ST_VK_MATMUL_ROWS_BF16_XS, ST_VK_MATMUL_ROWS_Q8_0_XS,
	ST_VK_MATMUL_ROWS_Q4_0_XS,
	ST_VK_ATTN_ROWS_F32, ST_VK_ATTN_ROWS_F16,
	/* K-quants, per family in type order q4_K, q5_K, q6_K (vk_kquant.c) */
	ST_VK_GET_ROWS_Q4_K, ST_VK_GET_ROWS_Q5_K, ST_VK_GET_ROWS_Q6_K,
	ST_VK_MATMUL_Q4_K, ST_VK_MATMUL_Q4_K_SG, ST_VK_MATMUL_Q5_K, ST_VK_MATMUL_Q5_K_SG,
	ST_VK_MATMUL_Q6_K, ST_VK_MATMUL_Q6_K_SG,
	ST_VK_MATMUL_ROWS_Q4_K, ST_VK_MATMUL_ROWS_Q5_K, ST_VK_MATMUL_ROWS_Q6_K,
	ST_VK_MATMUL_ROWS_Q4_K_XS, ST_VK_MATMUL_ROWS_Q5_K_XS, ST_VK_MATMUL_ROWS_Q6_K_XS,
	/* Q4_1, Q5_0, Q5_1, per family in that order (vk_kquant.c) */
	ST_VK_GET_ROWS_Q4_1, ST_VK_GET_ROWS_Q5_0, ST_VK_GET_ROWS_Q5_1,
	ST_VK_MATMUL_Q4_1, ST_VK_MATMUL_Q4_1_SG, ST_VK_MATMUL_Q5_0, ST_VK_MATMUL_Q5_0_SG,
	ST_VK_MATMUL_Q5_1, ST_VK_MATMUL_Q5_1_SG,
	ST_VK_MATMUL_ROWS_Q4_1, ST_VK_MATMUL_ROWS_Q5_0, ST_VK_MATMUL_ROWS_Q5_1,
	ST_VK_MATMUL_ROWS_Q4_1_XS, ST_VK_MATMUL_ROWS_Q5_0_XS, ST_VK_MATMUL_ROWS_Q5_1_XS,
	ST_VK_KERNEL_COUNT,
};

struct st_vk_spirv {
	const char *name;
	const uint32_t *code;
	size_t size;             /* bytes */
};
extern const struct st_vk_spirv st_vk_spirv_table[ST_VK_KERNEL_COUNT];

/* The K-quant (Q4_K/Q5_K/Q6_K) or Q4_1/Q5_0/Q5_1 kernel of the family
 * whose q4_0 kernel is q4 (get_rows, matmul, matmul_rows, matmul_rows_xs):
 * 0 and *k, or -1 when the family has no variant for the type
 * (vk_kquant.c). */
int st_vk_kq_kernel(enum st_vk_kernel q4, uint32_t type, enum st_vk_kernel *k);

/* Push constants: mirrors `pc` in common.glsl word for word. */
struct st_vk_push {
	uint32_t off[4];         /* byte offset of dst, src0..2 inside their binding */
	uint32_t nb1[4];         /* row strides in bytes */
	uint32_t ne0, ne1, k;
	uint32_t n_head, n_head_kv, head_dim, rope_dim;
	float eps, scale;
	uint32_t aux;            /* word offset of the op's table in the params buffer */
	uint32_t src_rows;
	uint32_t ids_stride;
};
_Static_assert(sizeof(struct st_vk_push) == 80, "push constants must match common.glsl");
_Static_assert(sizeof(struct st_vk_push) <= 128, "push constants beyond the guaranteed 128 bytes");

/* Params buffer words: n_tokens, pos0, 2 pad, then one indirect dispatch
 * (x, y, z) per op, then the ops' constant tables. */
#define ST_VK_PARAMS_HDR 4u
#define ST_VK_BINDINGS 5u

struct st_vk_backend;

struct st_buffer {
	struct st_vk_backend *be;
	VkBuffer buf;
	VkDeviceMemory mem;
	size_t size;
	void *map;               /* persistent mapping, NULL if device-local only */
	bool imported;           /* wraps host memory (buffer_wrap): read-only to us */
};

struct st_vk_backend {
	struct st_backend base;
	VkInstance instance;
	VkPhysicalDevice pdev;
	VkDevice dev;
	VkQueue queue;
	uint32_t qfam;
	VkCommandPool pool;
	VkCommandBuffer xfer_cb;         /* staging copies */
	VkFence fence;
	VkPhysicalDeviceProperties props;
	VkPhysicalDeviceMemoryProperties mem_props;
	bool subgroup_arith;             /* subgroupAdd/Max in compute shaders */
	uint32_t subgroup_size;
	bool unified;                    /* host-visible device memory used directly */
	bool cpu_kernels;                /* CPU driver kernels: matmul_rows.comp, attn_rows.comp */
	bool subgroup_shuffle8;          /* subgroupShuffle, subgroups of >= 8 */
	uint64_t max_range;              /* bytes one storage-buffer binding may span */
	bool host_import;                /* VK_EXT_external_memory_host enabled */
	uint64_t host_import_align;
	PFN_vkGetMemoryHostPointerPropertiesEXT get_host_ptr_props;
	int mt_device, mt_host;          /* memory type indices */
	bool timestamps;
	double ts_period_ns;
	uint64_t ts_mask;
	VkDescriptorSetLayout dsl;
	VkPipelineLayout layout;
	VkPipeline pipes[ST_VK_KERNEL_COUNT];
	uint32_t wg[ST_VK_KERNEL_COUNT]; /* workgroup size each pipeline was built with */
	struct st_buffer *dummy;         /* bound to unused bindings */
};

/* One recorded dispatch (an op, or a piece of a split matmul). */
struct st_vk_gop {
	int op;                          /* index of its op in the graph */
	enum st_vk_kernel kernel;
	struct st_vk_push push;
	uint32_t grid_x, grid_z;         /* static */
	uint32_t y_div;                  /* grid y = ceil(n_tokens / y_div) */
	VkDescriptorBufferInfo bind[4];
};

struct st_graph {
	struct st_vk_backend *be;
	int n_ops;
	struct st_op *ops;               /* copy, for run-time checks */
	int n_disp;
	struct st_vk_gop *gops;          /* n_disp dispatches */
	VkDescriptorPool dpool;
	VkCommandBuffer cb;              /* the graph */
	VkCommandBuffer cb_timed;        /* the same with a timestamp around each dispatch */
	struct st_buffer *params;
	uint32_t *pmap;
	VkQueryPool qpool;
	bool ran;
	bool want_times, last_timed;     /* graph_op_times asked; last run was timed */
};

static inline struct st_vk_backend *st_vk_be(struct st_backend *be) { return (struct st_vk_backend *)be; }

/* vk_device.c */
int st_vk_check(VkResult r, const char *what);   /* 0 or negative errno, with message */
int st_vk_submit_wait(struct st_vk_backend *be, VkCommandBuffer cb);
int st_vk_validation_check(uint64_t before, const char *what);
int st_vk_device_count(void);
int st_vk_device_info(int index, struct st_device_info *info);
int st_vk_open(int index, struct st_backend **out);
void st_vk_close(struct st_backend *be);

/* vk_memory.c */
int st_vk_buffer_create(struct st_vk_backend *be, size_t size, unsigned flags, VkBufferUsageFlags extra_usage,
			struct st_buffer **out);
int st_vk_buffer_alloc(struct st_backend *be, size_t size, unsigned flags, struct st_buffer **out);
int st_vk_buffer_wrap(struct st_backend *be, void *ptr, size_t size, struct st_buffer **out);
void st_vk_buffer_free(struct st_buffer *buf);
void *st_vk_buffer_map(struct st_buffer *buf);
int st_vk_buffer_write(struct st_buffer *buf, size_t offset, const void *src, size_t n);
int st_vk_buffer_read(struct st_buffer *buf, size_t offset, void *dst, size_t n);
int st_vk_memory_init(struct st_vk_backend *be);

/* vk_upload.c: streamed uploads (backend.h upload_*) */
int st_vk_upload_open(struct st_backend *be, size_t slot_size, int n_slots, void **slots, struct st_upload **out);
int st_vk_upload_submit(struct st_upload *u, int slot, struct st_buffer *dst, const struct st_upload_region *r, int n);
int st_vk_upload_wait(struct st_upload *u, int slot);
void st_vk_upload_close(struct st_upload *u);

/* vk_pipeline.c */
int st_vk_pipeline_init(struct st_vk_backend *be);
void st_vk_pipeline_fini(struct st_vk_backend *be);
int st_vk_pipeline_get(struct st_vk_backend *be, enum st_vk_kernel k, VkPipeline *out);

/* vk_ops.c: fill gop (kernel, push, grid, bindings) from op; the params
 * buffer table space it needs is taken from *aux_words (word cursor) and
 * its contents written through aux (NULL on the sizing pass). */
/* A dispatch's share of an op: all of it, or rows row0.. of a weight
 * table of rows_total rows split to fit the binding limit (matmul,
 * get_rows). */
enum { ST_VK_PIECE_ALL };
struct st_vk_piece {
	struct st_op op;
	int mode;
	int64_t row0, rows_total;
};
int st_vk_op_split(struct st_vk_backend *be, const struct st_op *op, struct st_vk_piece *out);
int st_vk_op_lower(struct st_vk_backend *be, const struct st_vk_piece *piece, struct st_vk_gop *gop,
		   uint32_t *aux_cursor, uint32_t *aux);

/* vk_dispatch.c */
int st_vk_graph_prepare(struct st_backend *be, const struct st_op *ops, int n_ops, struct st_graph **out);
int st_vk_graph_run(struct st_graph *g, const struct st_graph_run *run);
void st_vk_graph_free(struct st_graph *g);
int st_vk_graph_op_times(struct st_graph *g, double *seconds, int n_ops);
int st_vk_synchronize(struct st_backend *be);

#endif
