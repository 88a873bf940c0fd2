/* cl_graph.c: prepare an op list once (one kernel object per op with its
 * static arguments set) and replay it per step, setting only the dynamic
 * arguments (positions) and the token-dependent global sizes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cl_internal.h"
#include "types.h"
#include "util.h"

struct st_cl_node {
	cl_kernel k;
	enum st_op_kind kind;
	int pos0_arg;           /* index of the pos0 argument, or -1 */
	size_t g0;              /* global size in dim 0 (token-independent part) */
	size_t g1;              /* dim 1 for ROPE (heads) */
	int64_t cap;            /* max n_tokens the op's tensors hold */
	int64_t kv_rows;        /* rows of the KV cache (KV_STORE/ATTN), else 0 */
	bool rows;              /* MATMUL: one work-item per row (no local size) */
	cl_kernel k4;           /* MATMUL, rows: the batch kernel (4 tokens per work-item), or NULL */
};

struct st_graph {
	struct st_cl_backend *be;
	int n;
	struct st_cl_node *nodes;
	cl_event *events;       /* profiling events of the last run */
};

/* Types with a 32-value block (or scalar) layout: the batch matmul kernel
 * dequantizes them 32 values at a time. */
#define ST_TYPE_BLOCK32(t) ((t) == ST_TYPE_F32 || (t) == ST_TYPE_F16 || (t) == ST_TYPE_BF16 || \
			    (t) == ST_TYPE_Q8_0 || (t) == ST_TYPE_Q4_0 || (t) == ST_TYPE_Q4_1 || \
			    (t) == ST_TYPE_Q5_0 || (t) == ST_TYPE_Q5_1)

static const char *cl_type_suffix(uint32_t type)
{
	switch (type) {
	case ST_TYPE_F32: return "f32";
	case ST_TYPE_F16: return "f16";
	case ST_TYPE_BF16: return "bf16";
	case ST_TYPE_Q8_0: return "q8_0";
	case ST_TYPE_Q4_0: return "q4_0";
	case ST_TYPE_Q4_1: return "q4_1";
	case ST_TYPE_Q5_0: return "q5_0";
	case ST_TYPE_Q5_1: return "q5_1";
	case ST_TYPE_Q4_K: return "q4_K";
	case ST_TYPE_Q5_K: return "q5_K";
	case ST_TYPE_Q6_K: return "q6_K";
	default: return NULL;
	}
}

/* Argument setters: a tensor is (cl_mem, byte offset, row stride). */
struct cl_args {
	cl_kernel k;
	cl_uint i;
	cl_int err;
};

static void arg(struct cl_args *a, size_t size, const void *v)
{
	if (a->err == CL_SUCCESS)
		a->err = clSetKernelArg(a->k, a->i, size, v);
	a->i++;
}

static void arg_tensor(struct cl_args *a, const struct st_tensor *t, bool with_stride)
{
	const struct st_cl_buffer *b = (const struct st_cl_buffer *)t->buf;
	cl_ulong off = t->offset, nb1 = t->nb1;
	arg(a, sizeof(cl_mem), &b->mem);
	arg(a, sizeof off, &off);
	if (with_stride)
		arg(a, sizeof nb1, &nb1);
}

static void arg_int(struct cl_args *a, int v) { cl_int x = v; arg(a, sizeof x, &x); }
static void arg_float(struct cl_args *a, float v) { arg(a, sizeof v, &v); }

static int cl_tensor_ok(const struct st_tensor *t, const char *what, int i)
{
	if (!t->buf)
		return st_error(-EINVAL, "opencl: op %d: %s has no buffer", i, what);
	if (t->ne0 < 1 || t->ne1 < 1)
		return st_error(-EINVAL, "opencl: op %d: %s has shape %lldx%lld", i, what,
				(long long)t->ne0, (long long)t->ne1);
	return 0;
}

static int cl_node_init(struct st_cl_backend *be, const struct st_op *op, int i, struct st_cl_node *nd)
{
	char name[32];
	const char *sfx = NULL;
	int rc;
	cl_int err;

	if ((rc = cl_tensor_ok(&op->dst, "dst", i)) < 0)
		return rc;
	nd->kind = op->kind;
	nd->pos0_arg = -1;
	nd->cap = op->dst.ne1;
	switch (op->kind) {
	case ST_OP_MATMUL:
		sfx = cl_type_suffix(op->src[0].type);
		snprintf(name, sizeof name, "matmul_%s%s", be->matmul_rows ? "rows_" : "", sfx ? sfx : "");
		break;
	case ST_OP_GET_ROWS: sfx = cl_type_suffix(op->src[0].type); snprintf(name, sizeof name, "get_rows_%s", sfx ? sfx : ""); break;
	case ST_OP_KV_STORE: sfx = op->dst.type == ST_TYPE_F16 ? "f16" : op->dst.type == ST_TYPE_F32 ? "f32" : NULL;
		snprintf(name, sizeof name, "kv_store_%s", sfx ? sfx : ""); break;
	case ST_OP_ATTN: sfx = op->src[1].type == ST_TYPE_F16 ? "f16" : op->src[1].type == ST_TYPE_F32 ? "f32" : NULL;
		snprintf(name, sizeof name, "attn_%s", sfx ? sfx : ""); break;
	case ST_OP_RMSNORM:
		sfx = op->src[1].type == ST_TYPE_F32 || op->src[1].type == ST_TYPE_F16 ||
		      op->src[1].type == ST_TYPE_BF16 ? cl_type_suffix(op->src[1].type) : NULL;
		snprintf(name, sizeof name, "rmsnorm_%s", sfx ? sfx : "");
		break;
	case ST_OP_ROPE: sfx = "rope"; snprintf(name, sizeof name, "rope"); break;
	case ST_OP_SWIGLU: sfx = "swiglu"; snprintf(name, sizeof name, "swiglu"); break;
	case ST_OP_ADD: sfx = "add"; snprintf(name, sizeof name, "add"); break;
	case ST_OP_SOFTMAX: sfx = "softmax"; snprintf(name, sizeof name, "softmax"); break;
	default:
		return st_error(-ENOTSUP, "opencl: op %d: unknown kind %d", i, (int)op->kind);
	}
	if (!sfx)
		return st_error(-ENOTSUP, "opencl: op %d (%s): type %s is not supported", i, name,
				st_type_name(op->kind == ST_OP_KV_STORE ? op->dst.type :
					     op->kind == ST_OP_ATTN || op->kind == ST_OP_RMSNORM ? op->src[1].type :
					     op->src[0].type));
	nd->k = clCreateKernel(be->prog, name, &err);
	if (!nd->k)
		return st_cl_fail(err, name);

	struct cl_args a = { .k = nd->k, .err = CL_SUCCESS };
	switch (op->kind) {
	case ST_OP_MATMUL:
		if ((rc = cl_tensor_ok(&op->src[0], "weights", i)) < 0 || (rc = cl_tensor_ok(&op->src[1], "input", i)) < 0)
			return rc;
		if (op->src[0].ne0 != op->src[1].ne0 || op->dst.ne0 != op->src[0].ne1)
			return st_error(-EINVAL, "opencl: op %d matmul: W %lldx%lld, x has %lld columns, y %lld",
					i, (long long)op->src[0].ne1, (long long)op->src[0].ne0,
					(long long)op->src[1].ne0, (long long)op->dst.ne0);
		arg_tensor(&a, &op->src[0], true);
		arg_tensor(&a, &op->src[1], true);
		arg_tensor(&a, &op->dst, true);
		arg_int(&a, (int)op->src[0].ne0);
		nd->g0 = (size_t)op->src[0].ne1 * (be->matmul_rows ? 1 : ST_CL_LS);
		nd->rows = be->matmul_rows;
		if (nd->rows && op->dst.ne1 > 1 && op->src[1].ne1 > 1 && ST_TYPE_BLOCK32(op->src[0].type)) {
			char name4[40];
			snprintf(name4, sizeof name4, "matmul_rows4_%s", sfx);
			nd->k4 = clCreateKernel(be->prog, name4, &err);
			if (!nd->k4)
				return st_cl_fail(err, name4);
			struct cl_args a4 = { .k = nd->k4, .err = CL_SUCCESS };
			arg_tensor(&a4, &op->src[0], true);
			arg_tensor(&a4, &op->src[1], true);
			arg_tensor(&a4, &op->dst, true);
			arg_int(&a4, (int)op->src[0].ne0);
			arg_int(&a4, 1);        /* n_tokens: set per run */
			if (a4.err != CL_SUCCESS)
				return st_cl_fail(a4.err, name4);
		}
		nd->cap = ST_MIN(op->dst.ne1, op->src[1].ne1);
		break;
	case ST_OP_GET_ROWS:
		arg_tensor(&a, &op->src[0], true);
		arg_tensor(&a, &op->src[1], false);
		arg_tensor(&a, &op->dst, true);
		arg_int(&a, (int)op->src[0].ne0);
		nd->cap = ST_MIN(op->dst.ne1, op->src[1].ne0 * op->src[1].ne1);
		break;
	case ST_OP_RMSNORM:
		arg_tensor(&a, &op->src[0], true);
		arg_tensor(&a, &op->src[1], false);
		arg_tensor(&a, &op->dst, true);
		arg_int(&a, (int)op->src[0].ne0);
		arg_float(&a, op->p.norm.eps);
		break;
	case ST_OP_ROPE:
		arg_tensor(&a, &op->dst, true);
		arg_int(&a, (int)op->p.rope.head_dim);
		arg_int(&a, (int)op->p.rope.rope_dim);
		arg_float(&a, op->p.rope.theta);
		nd->pos0_arg = (int)a.i;
		arg_int(&a, 0);
		nd->g0 = op->p.rope.rope_dim / 2;
		nd->g1 = op->p.rope.n_head;
		if (!nd->g0 || !nd->g1 || (int64_t)op->p.rope.n_head * op->p.rope.head_dim > op->dst.ne0 ||
		    op->p.rope.rope_dim > op->p.rope.head_dim)
			return st_error(-EINVAL, "opencl: op %d rope: %u heads x %u dims (rope %u) in rows of %lld",
					i, op->p.rope.n_head, op->p.rope.head_dim, op->p.rope.rope_dim,
					(long long)op->dst.ne0);
		break;
	case ST_OP_KV_STORE:
		arg_tensor(&a, &op->src[0], true);
		arg_tensor(&a, &op->dst, true);
		arg_int(&a, (int)op->src[0].ne0);
		nd->pos0_arg = (int)a.i;
		arg_int(&a, 0);
		nd->g0 = (size_t)op->src[0].ne0;
		nd->cap = op->src[0].ne1;
		nd->kv_rows = op->dst.ne1;
		break;
	case ST_OP_ATTN: {
		size_t need = (size_t)op->src[1].ne1 * sizeof(float) + ST_CL_LS * sizeof(float) + 256;
		if (need > be->local_mem)
			return st_error(-ENOTSUP, "opencl: op %d attention over %lld positions needs %zu bytes of local memory; the device has %zu",
					i, (long long)op->src[1].ne1, need, be->local_mem);
		if (!op->p.attn.n_head_kv || op->p.attn.n_head % op->p.attn.n_head_kv)
			return st_error(-EINVAL, "opencl: op %d attention: %u heads over %u kv heads", i,
					op->p.attn.n_head, op->p.attn.n_head_kv);
		arg_tensor(&a, &op->src[0], true);
		arg_tensor(&a, &op->src[1], true);
		arg_tensor(&a, &op->src[2], true);
		arg_tensor(&a, &op->dst, true);
		arg_int(&a, (int)op->p.attn.n_head);
		arg_int(&a, (int)op->p.attn.n_head_kv);
		arg_int(&a, (int)op->p.attn.head_dim);
		arg_float(&a, op->p.attn.scale);
		nd->pos0_arg = (int)a.i;
		arg_int(&a, 0);
		arg(&a, (size_t)op->src[1].ne1 * sizeof(float), NULL);
		nd->g0 = (size_t)op->p.attn.n_head * ST_CL_LS;
		nd->cap = ST_MIN(op->dst.ne1, op->src[0].ne1);
		nd->kv_rows = ST_MIN(op->src[1].ne1, op->src[2].ne1);
		break;
	}
	case ST_OP_SWIGLU:
	case ST_OP_ADD:
		arg_tensor(&a, &op->src[0], true);
		arg_tensor(&a, &op->src[1], true);
		arg_tensor(&a, &op->dst, true);
		arg_int(&a, (int)op->dst.ne0);
		nd->g0 = (size_t)op->dst.ne0;
		break;
	case ST_OP_SOFTMAX:
		arg_tensor(&a, &op->src[0], true);
		arg_tensor(&a, &op->dst, true);
		arg_int(&a, (int)op->dst.ne0);
		break;
	default:
		break;
	}
	if (a.err != CL_SUCCESS)
		return st_cl_fail(a.err, name);
	return 0;
}

int st_cl_graph_prepare(struct st_backend *base, const struct st_op *ops, int n_ops, struct st_graph **out)
{
	struct st_cl_backend *be = (struct st_cl_backend *)base;
	int rc;
	if (n_ops < 0)
		return st_error(-EINVAL, "opencl: %d ops", n_ops);
	struct st_graph *g = calloc(1, sizeof *g);
	if (!g)
		return -ENOMEM;
	g->be = be;
	g->nodes = calloc((size_t)n_ops + 1, sizeof *g->nodes);
	g->events = calloc((size_t)n_ops + 1, sizeof *g->events);
	if (!g->nodes || !g->events) {
		rc = -ENOMEM;
		goto err;
	}
	for (int i = 0; i < n_ops; i++, g->n++)
		if ((rc = cl_node_init(be, &ops[i], i, &g->nodes[i])) < 0) {
			if (g->nodes[i].k)
				clReleaseKernel(g->nodes[i].k);
			if (g->nodes[i].k4)
				clReleaseKernel(g->nodes[i].k4);
			goto err;
		}
	*out = g;
	return 0;
err:
	st_cl_graph_free(g);
	return rc;
}

static void cl_release_events(struct st_graph *g)
{
	for (int i = 0; i < g->n; i++)
		if (g->events[i]) {
			clReleaseEvent(g->events[i]);
			g->events[i] = NULL;
		}
}

int st_cl_graph_run(struct st_graph *g, const struct st_graph_run *run)
{
	const size_t ls = ST_CL_LS;
	const int64_t nt = run->n_tokens, pos0 = run->pos0;
	cl_int err = CL_SUCCESS;

	if (nt < 1 || pos0 < 0)
		return st_error(-EINVAL, "opencl: run of %lld tokens at position %lld", (long long)nt, (long long)pos0);
	if (g->be->mapped) {
		int rc = st_cl_unmap_all(g->be);
		if (rc < 0)
			return rc;
	}
	cl_release_events(g);
	for (int i = 0; i < g->n; i++) {
		struct st_cl_node *nd = &g->nodes[i];
		size_t gws[3], lws[3];
		const size_t *lp = NULL;
		cl_uint dims = 2;

		if (nt > nd->cap || (nd->kv_rows && pos0 + nt > nd->kv_rows))
			return st_error(-EINVAL, "opencl: op %d: %lld tokens at position %lld do not fit (capacity %lld, cache %lld rows)",
					i, (long long)nt, (long long)pos0, (long long)nd->cap, (long long)nd->kv_rows);
		if (nd->pos0_arg >= 0) {
			cl_int p = (cl_int)pos0;
			err = clSetKernelArg(nd->k, (cl_uint)nd->pos0_arg, sizeof p, &p);
			if (err != CL_SUCCESS)
				return st_cl_fail(err, "clSetKernelArg(pos0)");
		}
		cl_kernel k = nd->k;
		if (nd->k4 && nt > 1) {     /* batch: 4 tokens per work-item */
			cl_int ntv = (cl_int)nt;
			err = clSetKernelArg(nd->k4, 10, sizeof ntv, &ntv);
			if (err != CL_SUCCESS)
				return st_cl_fail(err, "clSetKernelArg(n_tokens)");
			k = nd->k4;
			gws[0] = nd->g0;
			gws[1] = (size_t)(nt + 3) / 4;
			err = clEnqueueNDRangeKernel(g->be->queue, k, 2, NULL, gws, NULL, 0, NULL, &g->events[i]);
			if (err != CL_SUCCESS)
				return st_cl_fail(err, "clEnqueueNDRangeKernel");
			continue;
		}
		switch (nd->kind) {
		case ST_OP_MATMUL:
		case ST_OP_ATTN:
			gws[0] = nd->g0; gws[1] = (size_t)nt; lws[0] = ls; lws[1] = 1;
			lp = nd->rows ? NULL : lws;
			break;
		case ST_OP_GET_ROWS:
		case ST_OP_RMSNORM:
		case ST_OP_SOFTMAX:
			dims = 1; gws[0] = (size_t)nt * ls; lws[0] = ls; lp = lws;
			break;
		case ST_OP_ROPE:
			dims = 3; gws[0] = nd->g0; gws[1] = nd->g1; gws[2] = (size_t)nt;
			break;
		default:
			gws[0] = nd->g0; gws[1] = (size_t)nt;
			break;
		}
		err = clEnqueueNDRangeKernel(g->be->queue, nd->k, dims, NULL, gws, lp, 0, NULL, &g->events[i]);
		if (err != CL_SUCCESS)
			return st_cl_fail(err, "clEnqueueNDRangeKernel");
	}
	err = clFinish(g->be->queue);
	return err == CL_SUCCESS ? 0 : st_cl_fail(err, "clFinish");
}

int st_cl_graph_op_times(struct st_graph *g, double *seconds, int n_ops)
{
	int n = ST_MIN(n_ops, g->n);
	for (int i = 0; i < n; i++) {
		cl_ulong t0 = 0, t1 = 0;
		seconds[i] = 0;
		if (g->events[i] &&
		    clGetEventProfilingInfo(g->events[i], CL_PROFILING_COMMAND_START, sizeof t0, &t0, NULL) == CL_SUCCESS &&
		    clGetEventProfilingInfo(g->events[i], CL_PROFILING_COMMAND_END, sizeof t1, &t1, NULL) == CL_SUCCESS)
			seconds[i] = (double)(t1 - t0) * 1e-9;
	}
	return n;
}

void st_cl_graph_free(struct st_graph *g)
{
	if (!g)
		return;
	if (g->events)
		cl_release_events(g);
	for (int i = 0; i < g->n; i++) {
		if (g->nodes[i].k)
			clReleaseKernel(g->nodes[i].k);
		if (g->nodes[i].k4)
			clReleaseKernel(g->nodes[i].k4);
	}
	free(g->nodes);
	free(g->events);
	free(g);
}
