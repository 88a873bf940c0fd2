/* backend_cpu.c: the CPU backend (always present).  Buffers are aligned
 * host memory (or wrapped host memory: mmapped weights used in place); a
 * graph is the op list with its tensors resolved to host pointers; running
 * it calls the scalar reference kernels, except matmul and attention which
 * go through cpu_kernels.h so faster ones can be swapped in. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "backend.h"
#include "cpu_features.h"
#include "cpu_fuse.h"
#include "cpu_kernels.h"
#include "ops_ref.h"
#include "util.h"

#define CPU_ALIGN 64
/* Buffers from this size up are anonymous mappings: page aligned and
 * zeroed by the kernel on first touch, so allocating one costs nothing up
 * front (a memset of a fresh 1 GiB buffer takes seconds on some VMs) and a
 * loader filling weights with O_DIRECT reads touches each page once. */
#define CPU_MMAP_MIN ((size_t)1 << 20)

struct st_buffer {
	void *ptr;
	size_t size;
	size_t map_len;          /* != 0: an anonymous mapping of this length */
	bool owned;
};

struct st_graph {
	struct st_op *ops;
	int n_ops;
	double *op_seconds;
	int *span;               /* one-token replays: ops run fused from i (cpu_fuse.h) */
};

static int cpu_device_count(void)
{
	return 1;
}

static int cpu_device_info(int index, struct st_device_info *info)
{
	long pages = sysconf(_SC_PHYS_PAGES), avail = sysconf(_SC_AVPHYS_PAGES), psz = sysconf(_SC_PAGESIZE);
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	(void)index;
	snprintf(info->name, sizeof(info->name), "CPU");
	snprintf(info->driver, sizeof(info->driver), "strata CPU kernels (%s)", st_cpu_isa_name(st_cpu_isa_best()));
	info->type = ST_DEVICE_CPU;
	info->mem_total = pages > 0 && psz > 0 ? (uint64_t)pages * (uint64_t)psz : 0;
	info->mem_free = avail > 0 && psz > 0 ? (uint64_t)avail * (uint64_t)psz : 0;
	info->compute_units = ncpu > 0 ? (uint32_t)ncpu : 1;
	info->unified_memory = true;
	return 0;
}

static int cpu_open(int index, struct st_backend **out)
{
	struct st_backend *be = calloc(1, sizeof(*be));
	if (!be)
		return st_error(-ENOMEM, "cpu backend: out of memory");
	be->ops = &st_backend_cpu;
	be->device_index = index;
	cpu_device_info(index, &be->info);
	*out = be;
	return 0;
}

static void cpu_close(struct st_backend *be)
{
	free(be);
}

static int cpu_buffer_alloc(struct st_backend *be, size_t size, unsigned flags, struct st_buffer **out)
{
	/* weights: page aligned, so a loader's O_DIRECT reads can land in place */
	const size_t align = flags & ST_BUF_WEIGHTS ? 4096 : CPU_ALIGN;
	uint64_t asz;
	struct st_buffer *b;
	(void)be;
	if (st_align_up_u64(size ? size : 1, align, &asz) || asz > SIZE_MAX)
		return st_error(-EOVERFLOW, "cpu buffer: size %zu overflows", size);
	b = calloc(1, sizeof(*b));
	if (!b)
		return st_error(-ENOMEM, "cpu buffer: out of memory");
	if (asz >= CPU_MMAP_MIN) {
		b->ptr = mmap(NULL, (size_t)asz, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (b->ptr == MAP_FAILED) {
			free(b);
			return st_error(-ENOMEM, "cpu buffer: cannot map %zu bytes", size);
		}
		b->map_len = (size_t)asz;
#ifdef MADV_HUGEPAGE
		/* ST_CPU_THP=1: transparent huge pages for weights.  Off by
		 * default: on the benchmark VM, faulting fresh 2 MiB pages made
		 * loading 1.1 GiB 3-4x slower (BENCHMARKS.md "Weight loading") */
		if (flags & ST_BUF_WEIGHTS && asz >= ((uint64_t)32 << 20) && getenv("ST_CPU_THP"))
			(void)madvise(b->ptr, (size_t)asz, MADV_HUGEPAGE);
#endif
	} else {
		b->ptr = aligned_alloc(align, (size_t)asz);
		if (!b->ptr) {
			free(b);
			return st_error(-ENOMEM, "cpu buffer: cannot allocate %zu bytes", size);
		}
		memset(b->ptr, 0, (size_t)asz);
	}
	b->size = size;
	b->owned = true;
	*out = b;
	return 0;
}

static int cpu_buffer_wrap(struct st_backend *be, void *ptr, size_t size, struct st_buffer **out)
{
	struct st_buffer *b;
	(void)be;
	if (!ptr)
		return st_error(-EINVAL, "cpu buffer_wrap: NULL pointer");
	b = calloc(1, sizeof(*b));
	if (!b)
		return st_error(-ENOMEM, "cpu buffer: out of memory");
	b->ptr = ptr;
	b->size = size;
	*out = b;
	return 0;
}

static void cpu_buffer_free(struct st_buffer *b)
{
	if (!b)
		return;
	if (b->owned && b->map_len)
		munmap(b->ptr, b->map_len);
	else if (b->owned)
		free(b->ptr);
	free(b);
}

static void *cpu_buffer_map(struct st_buffer *b)
{
	return b->ptr;
}

static int cpu_range(const struct st_buffer *b, size_t off, size_t n, const char *what)
{
	size_t end;
	if (st_add_overflow_size(off, n, &end) || end > b->size)
		return st_error(-EINVAL, "cpu buffer %s: %zu bytes at offset %zu overrun the buffer of %zu bytes",
				what, n, off, b->size);
	return 0;
}

static int cpu_buffer_write(struct st_buffer *b, size_t off, const void *src, size_t n)
{
	int rc = cpu_range(b, off, n, "write");
	if (rc)
		return rc;
	if (n)
		memcpy((char *)b->ptr + off, src, n);
	return 0;
}

static int cpu_buffer_read(struct st_buffer *b, size_t off, void *dst, size_t n)
{
	int rc = cpu_range(b, off, n, "read");
	if (rc)
		return rc;
	if (n)
		memcpy(dst, (const char *)b->ptr + off, n);
	return 0;
}

static int n_srcs(enum st_op_kind k)
{
	switch (k) {
	case ST_OP_ROPE:
	case ST_OP_SOFTMAX:
	case ST_OP_KV_STORE:
		return 1;
	case ST_OP_ATTN:
		return 3;
	default:
		return 2;
	}
}

static int cpu_graph_prepare(struct st_backend *be, const struct st_op *ops, int n_ops, struct st_graph **out)
{
	struct st_graph *g;
	(void)be;
	for (int i = 0; i < n_ops; i++) {
		char what[64];
		int rc = st_op_check(&ops[i], NULL);
		if (rc) {
			char msg[256];
			snprintf(msg, sizeof(msg), "%s", st_last_error());
			return st_error(rc, "op %d: %s", i, msg);
		}
		for (int j = -1; j < n_srcs(ops[i].kind); j++) {
			const struct st_tensor *t = j < 0 ? &ops[i].dst : &ops[i].src[j];
			if (!t->buf)
				return st_error(-EINVAL, "op %d (%s): %s%.0d has no buffer", i, st_op_name(ops[i].kind),
						j < 0 ? "dst" : "src", j);
			snprintf(what, sizeof(what), "op %d (%s) %s%d", i, st_op_name(ops[i].kind),
				 j < 0 ? "dst" : "src", j < 0 ? 0 : j);
			rc = st_tensor_check_bounds(t, t->buf->size, what);
			if (rc)
				return rc;
		}
	}
	g = calloc(1, sizeof(*g));
	if (!g)
		return st_error(-ENOMEM, "cpu graph: out of memory");
	g->ops = malloc((size_t)n_ops * sizeof(*g->ops));
	g->op_seconds = calloc((size_t)n_ops, sizeof(double));
	g->span = calloc((size_t)n_ops, sizeof(int));
	if (!g->ops || !g->op_seconds || !g->span) {
		free(g->ops);
		free(g->op_seconds);
		free(g->span);
		free(g);
		return st_error(-ENOMEM, "cpu graph: out of memory");
	}
	memcpy(g->ops, ops, (size_t)n_ops * sizeof(*ops));
	g->n_ops = n_ops;
	/* ST_CPU_NO_FUSE=1: every op on its own (for comparison) */
	const bool fuse = !getenv("ST_CPU_NO_FUSE");
	for (int i = 0; i < n_ops; i++)
		g->span[i] = fuse ? st_cpu_fuse_span(g->ops, n_ops, i) : 1;
	*out = g;
	return 0;
}

static void *tptr(const struct st_tensor *t)
{
	return t->buf ? (char *)t->buf->ptr + t->offset : NULL;
}

static int cpu_run_op(const struct st_op *op, const struct st_graph_run *run)
{
	const struct st_tensor *d = &op->dst, *s0 = &op->src[0], *s1 = &op->src[1];
	const void *src[3] = { tptr(&op->src[0]), tptr(&op->src[1]), tptr(&op->src[2]) };
	int rc;

	switch (op->kind) {
	case ST_OP_MATMUL:
		rc = st_op_check(op, run);
		if (rc)
			return rc;
		return st_cpu_matmul(s0->type, src[0], s0->ne1, s0->ne0, s0->nb1, src[1],
				     (int64_t)(s1->nb1 / sizeof(float)), run->n_tokens, tptr(d),
				     (int64_t)(d->nb1 / sizeof(float)));
	case ST_OP_ATTN:
		rc = st_op_check(op, run);
		if (rc)
			return rc;
		return st_cpu_attn(src[0], (int64_t)(s0->nb1 / sizeof(float)), src[1], src[2], s1->type,
				   s1->nb1, tptr(d), (int64_t)(d->nb1 / sizeof(float)), run->n_tokens,
				   run->pos0, op->p.attn.n_head, op->p.attn.n_head_kv, op->p.attn.head_dim,
				   op->p.attn.scale);
	default:
		return st_ref_op_run(op, run, tptr(d), src);
	}
}

static int cpu_run_fused(struct st_graph *g, int i, const struct st_graph_run *run)
{
	struct st_cpu_op_ptrs p[ST_CPU_FUSE_MAX];
	const int n = g->span[i];
	for (int k = 0; k < n; k++) {
		p[k].dst = tptr(&g->ops[i + k].dst);
		for (int j = 0; j < 3; j++)
			p[k].src[j] = tptr(&g->ops[i + k].src[j]);
	}
	return st_cpu_fuse_run(&g->ops[i], p, n, run);
}

/* A one-token replay runs fused spans as one step (its time goes to the
 * span's first op). */
static int cpu_graph_run(struct st_graph *g, const struct st_graph_run *run)
{
	for (int i = 0; i < g->n_ops;) {
		const int n = run->n_tokens == 1 ? g->span[i] : 1;
		double t0 = st_time_now();
		int rc = 0;
		for (int k = 0; k < n && !rc; k++)
			rc = run->before_op ? run->before_op(run->before_op_user, i + k) : 0;
		if (!rc)
			rc = n > 1 ? cpu_run_fused(g, i, run) : cpu_run_op(&g->ops[i], run);
		g->op_seconds[i] = st_time_now() - t0;
		for (int k = 1; k < n; k++)
			g->op_seconds[i + k] = 0;
		if (rc)
			return rc;
		i += n;
	}
	return 0;
}

static void cpu_graph_free(struct st_graph *g)
{
	if (!g)
		return;
	free(g->ops);
	free(g->op_seconds);
	free(g->span);
	free(g);
}

static int cpu_graph_op_times(struct st_graph *g, double *seconds, int n_ops)
{
	int n = ST_MIN(n_ops, g->n_ops);
	memcpy(seconds, g->op_seconds, (size_t)n * sizeof(double));
	return n;
}

const struct st_backend_ops st_backend_cpu = {
	.name = "cpu",
	.device_count = cpu_device_count,
	.device_info = cpu_device_info,
	.open = cpu_open,
	.close = cpu_close,
	.buffer_alloc = cpu_buffer_alloc,
	.buffer_wrap = cpu_buffer_wrap,
	.buffer_free = cpu_buffer_free,
	.buffer_map = cpu_buffer_map,
	.buffer_write = cpu_buffer_write,
	.buffer_read = cpu_buffer_read,
	.graph_prepare = cpu_graph_prepare,
	.graph_run = cpu_graph_run,
	.graph_free = cpu_graph_free,
	.graph_op_times = cpu_graph_op_times,
};
