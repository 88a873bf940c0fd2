/* backend.h: the private backend interface (DESIGN.md "Key interfaces").
 *
 * A backend is a const table of function pointers filled with designated
 * initializers; callers use the st_backend_* wrappers in backend.c, never
 * ->ops directly.  A NULL slot is optional and the wrapper supplies the
 * default or -ENOTSUP.
 *
 * Work reaches a backend as a *graph*: a flat list of op records over
 * 2-D tensors in the backend's buffers, built once per stage (the stage
 * executor in stage.c builds it from the layer range) and prepared once
 * (pipelines, command buffers, kernel arguments), then replayed every step
 * with only the dynamic parameters (n_tokens, pos0) changing.  The same
 * graph serves prefill (many tokens) and decode (one token). */
#ifndef ST_BACKEND_H
#define ST_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct st_backend;          /* one opened device */
struct st_buffer;           /* memory on that device */
struct st_graph;            /* a prepared op list */
struct st_upload;           /* staging slots of a streamed upload (upload_open) */

enum st_device_type { ST_DEVICE_CPU, ST_DEVICE_INTEGRATED, ST_DEVICE_DISCRETE, ST_DEVICE_OTHER };

struct st_device_info {
	char name[128];
	char driver[128];
	char pci_bus_id[32];    /* "0000:01:00.0", or "" */
	enum st_device_type type;
	uint64_t mem_total, mem_free;
	uint32_t compute_units;
	uint32_t subgroup_size;  /* 0 = n/a */
	bool unified_memory;     /* device-local memory the host can map */
};

/* A 2-D view: ne1 rows of ne0 elements of `type`, rows nb1 bytes apart.
 * For activations ne1 is the capacity in tokens; the run's n_tokens rows
 * are the live ones. */
struct st_tensor {
	struct st_buffer *buf;
	size_t offset;
	uint32_t type;           /* enum st_type */
	int64_t ne0, ne1;
	size_t nb1;
};

/* Op conventions (checked by st_op_check in ops_ref.h, which every backend
 * should call; the scalar kernels there are the reference):
 *  - activations are F32, n_tokens live rows; weights keep all their rows;
 *  - GET_ROWS: src1 ids are I32 [1, n]; an id outside src0's rows fails;
 *  - RMSNORM: src1 weight is one row of f32, f16 or bf16;
 *  - MATMUL: src0 W is [cols, rows] of f32/f16/bf16/q8_0/q4_0, src1 x is
 *    [cols, n], dst [rows, n];
 *  - ROPE: dst is the same tensor as src0; "normal" mode (adjacent pairs
 *    (2i, 2i+1) of the first rope_dim dims of each head, angle
 *    (pos0+t) * theta^(-2i/rope_dim));
 *  - KV_STORE: dst is the cache ([n_kv*hd, n_ctx], f32 or f16); rows
 *    pos0..pos0+n-1 are written, nothing else;
 *  - ATTN: src1/src2 are K/V caches like KV_STORE's dst; query t sees
 *    positions 0..pos0+t; query head h uses KV head h / (n_head/n_head_kv);
 *  - an op a backend cannot do returns -ENOTSUP from graph_prepare. */
enum st_op_kind {
	ST_OP_GET_ROWS,   /* dst[t] = float(src0[ids[t]]); src1 = I32 ids          */
	ST_OP_RMSNORM,    /* dst[t] = src0[t] / rms(src0[t]) * src1 (float weight) */
	ST_OP_MATMUL,     /* dst[t][r] = sum_c src0[r][c] * src1[t][c]  (W any type) */
	ST_OP_ROPE,       /* in place on src0 [t][head*hd], position pos0+t        */
	ST_OP_KV_STORE,   /* dst rows pos0.. (cache type) = src0 rows 0..n_tokens  */
	ST_OP_ATTN,       /* dst = causal GQA attention of q=src0 over K=src1, V=src2 */
	ST_OP_SWIGLU,     /* dst = silu(src0) * src1                               */
	ST_OP_ADD,        /* dst = src0 + src1                                     */
	ST_OP_SOFTMAX,    /* dst[t] = softmax(src0[t])                             */
	ST_OP_COUNT,
};

struct st_op {
	enum st_op_kind kind;
	struct st_tensor dst, src[3];
	union {
		struct { float eps; } norm;
		struct { uint32_t n_head, head_dim, rope_dim; float theta; } rope;
		struct { uint32_t n_head, n_head_kv, head_dim; float scale; } attn;
	} p;
};

/* Dynamic parameters of one replay. */
struct st_graph_run {
	int64_t n_tokens;        /* live rows in activation tensors */
	int64_t pos0;            /* position of row 0 (KV cache write/read) */
	/* optional (CPU backend): called before op i runs; a non-zero return
	 * stops the run with it.  A stage whose weights are still loading in
	 * the background waits here for each layer's bytes. */
	int (*before_op)(void *user, int op);
	void *before_op_user;
};

/* One copy of a streamed upload: size bytes at src_offset of a staging
 * slot go to dst_offset of the destination buffer. */
struct st_upload_region {
	size_t src_offset, dst_offset, size;
};
#define ST_UPLOAD_ALIGN 4096u        /* slot addresses and sizes (O_DIRECT reads land in them) */
#define ST_UPLOAD_MAX_SLOTS 16

enum st_buffer_flags {
	ST_BUF_HOST_VISIBLE = 1u << 0,  /* must be mappable (staging, weights loaded in place) */
	ST_BUF_WEIGHTS      = 1u << 1,  /* read-only weights */
};

struct st_backend_ops {
	const char *name;                       /* "cpu", "vulkan", "opencl" */
	/* devices */
	int (*device_count)(void);
	int (*device_info)(int index, struct st_device_info *info);
	int (*open)(int index, struct st_backend **out);
	void (*close)(struct st_backend *be);
	/* buffers */
	int (*buffer_alloc)(struct st_backend *be, size_t size, unsigned flags, struct st_buffer **out);
	/* optional: wrap host memory without copying (CPU: mmapped weights) */
	int (*buffer_wrap)(struct st_backend *be, void *ptr, size_t size, struct st_buffer **out);
	void (*buffer_free)(struct st_buffer *buf);
	void *(*buffer_map)(struct st_buffer *buf);     /* optional: host pointer or NULL */
	int (*buffer_write)(struct st_buffer *buf, size_t offset, const void *src, size_t n);
	int (*buffer_read)(struct st_buffer *buf, size_t offset, void *dst, size_t n);
	/* graphs */
	int (*graph_prepare)(struct st_backend *be, const struct st_op *ops, int n_ops, struct st_graph **out);
	int (*graph_run)(struct st_graph *g, const struct st_graph_run *run);
	void (*graph_free)(struct st_graph *g);
	int (*synchronize)(struct st_backend *be);   /* optional */
	/* optional: per-op times of the last run, in seconds (n_ops entries) */
	int (*graph_op_times)(struct st_graph *g, double *seconds, int n_ops);
	/* optional: streamed uploads into device-local buffers (ioring/upload.c
	 * reads chunk k+1 from the file while the device copies chunk k).
	 * upload_open: n_slots staging slots of slot_size bytes in host memory
	 * the device copies from fast (Vulkan: a host-visible buffer; OpenCL: a
	 * CL_MEM_ALLOC_HOST_PTR buffer mapped once), their host addresses
	 * (ST_UPLOAD_ALIGN-aligned) in slots[].  upload_submit: start copying
	 * regions of a slot into dst and return at once; the slot must not be
	 * written until upload_wait(slot) returns.  upload_wait: wait for the
	 * slot's last copy (0 at once if none; the copy's error otherwise).
	 * upload_close: waits for every copy in flight, then frees the slots. */
	int (*upload_open)(struct st_backend *be, size_t slot_size, int n_slots, void **slots, struct st_upload **out);
	int (*upload_submit)(struct st_upload *u, int slot, struct st_buffer *dst, const struct st_upload_region *r,
			     int n);
	int (*upload_wait)(struct st_upload *u, int slot);
	void (*upload_close)(struct st_upload *u);
};

/* Every backend's object starts with this header. */
struct st_backend {
	const struct st_backend_ops *ops;
	int device_index;
	struct st_device_info info;
};

/* Registry: compiled-in backends; CPU is always present and last.
 * Accelerator backends are found through the weak symbols
 * st_backend_vulkan / st_backend_opencl (link their library whole) or
 * added with st_backend_register(). */
int st_backend_registry(const struct st_backend_ops *const **list);
int st_backend_register(const struct st_backend_ops *ops);
const struct st_backend_ops *st_backend_find(const char *name);    /* or NULL */
/* Devices of a backend (0 when it has none or device_count fails). */
int st_backend_device_count(const struct st_backend_ops *ops);
int st_backend_device_info(const struct st_backend_ops *ops, int index, struct st_device_info *info);

/* Wrappers (backend.c). */
int st_backend_open(const struct st_backend_ops *ops, int index, struct st_backend **out);
void st_backend_close(struct st_backend *be);
int st_buffer_alloc(struct st_backend *be, size_t size, unsigned flags, struct st_buffer **out);
int st_buffer_wrap(struct st_backend *be, void *ptr, size_t size, struct st_buffer **out);
void st_buffer_free(struct st_backend *be, struct st_buffer *buf);
void *st_buffer_map(struct st_backend *be, struct st_buffer *buf);
int st_buffer_write(struct st_backend *be, struct st_buffer *buf, size_t off, const void *src, size_t n);
int st_buffer_read(struct st_backend *be, struct st_buffer *buf, size_t off, void *dst, size_t n);
int st_graph_prepare(struct st_backend *be, const struct st_op *ops, int n_ops, struct st_graph **out);
int st_graph_run(struct st_backend *be, struct st_graph *g, const struct st_graph_run *run);
void st_graph_free(struct st_backend *be, struct st_graph *g);
int st_backend_synchronize(struct st_backend *be);
/* Per-op seconds of the last run; -ENOTSUP when the backend does not time. */
int st_graph_op_times(struct st_backend *be, struct st_graph *g, double *seconds, int n_ops);
/* Streamed uploads (ops upload_*): -ENOTSUP when the backend has none (the
 * caller then writes with st_buffer_write).  slot_size is a multiple of
 * ST_UPLOAD_ALIGN, n_slots 1..ST_UPLOAD_MAX_SLOTS. */
int st_upload_open(struct st_backend *be, size_t slot_size, int n_slots, void **slots, struct st_upload **out);
int st_upload_submit(struct st_backend *be, struct st_upload *u, int slot, struct st_buffer *dst,
		     const struct st_upload_region *r, int n);
int st_upload_wait(struct st_backend *be, struct st_upload *u, int slot);
void st_upload_close(struct st_backend *be, struct st_upload *u);
/* For backends' upload_submit: do the n regions lie inside a slot of
 * slot_size bytes and a destination of dst_size bytes? */
int st_upload_check_regions(const struct st_upload_region *r, int n, size_t slot_size, size_t dst_size,
			    const char *who);
/* For backends' graph_prepare: does t lie inside a buffer of buf_size bytes? */
int st_tensor_check_bounds(const struct st_tensor *t, size_t buf_size, const char *what);

extern const struct st_backend_ops st_backend_cpu;

#endif
