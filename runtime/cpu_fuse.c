/* cpu_fuse.c: fused decode steps of the CPU backend (cpu_fuse.h). */
#include "cpu_fuse.h"

#include <errno.h>
#include <math.h>
#include <stdatomic.h>
#include <string.h>

#include "cpu_kernels.h"
#include "matmul_decode.h"
#include "ops_ref.h"
#include "types.h"
#include "util.h"

#define ROPE_MAX_PAIRS 512
#define ROW_ALIGN 4

/* ---- matching (prepare time) --------------------------------------- */

static bool same(const struct st_tensor *a, const struct st_tensor *b)
{
	return a->buf == b->buf && a->offset == b->offset && a->type == b->type && a->ne0 == b->ne0 &&
	       a->ne1 == b->ne1 && a->nb1 == b->nb1;
}

/* Whole tensors' byte ranges intersect (conservative). */
static bool overlap(const struct st_tensor *a, const struct st_tensor *b)
{
	if (a->buf != b->buf)
		return false;
	const uint64_t ea = a->offset + (uint64_t)a->nb1 * (uint64_t)(a->ne1 > 0 ? a->ne1 : 1);
	const uint64_t eb = b->offset + (uint64_t)b->nb1 * (uint64_t)(b->ne1 > 0 ? b->ne1 : 1);
	return a->offset < eb && b->offset < ea;
}

static bool f32_rows(const struct st_tensor *t)
{
	return t->type == ST_TYPE_F32 && t->nb1 >= (size_t)t->ne0 * sizeof(float);
}

struct match {
	const struct st_op *mm[ST_MM_MAX_PARTS];
	int n_mm;
	bool lockstep;
	uint32_t head_dim;       /* 0: no RoPE yet */
	/* tensors written by accepted ADD / KV_STORE epilogues, and the matmul part each follows */
	const struct st_tensor *wr[ST_CPU_FUSE_MAX];
	int wr_part[ST_CPU_FUSE_MAX];
	int n_wr;
};

static int part_of(const struct match *m, const struct st_tensor *t)
{
	for (int p = 0; p < m->n_mm; p++)
		if (same(&m->mm[p]->dst, t))
			return p;
	return -1;
}

/* Written by the epilogue while other chunks still read the matmul input. */
static bool clobbers_input(const struct match *m, const struct st_tensor *t)
{
	for (int p = 0; p < m->n_mm; p++)
		if (overlap(t, &m->mm[p]->src[1]))
			return true;
	return false;
}

/* Epilogues of different parts run on different threads at the same time (the span is not
 * lockstep), so two of them must not write the same rows: x += W1 h; x += W2 h would lose
 * updates. Records t as written by part p when it is safe. */
static bool write_ok(struct match *m, const struct st_tensor *t, int p)
{
	for (int k = 0; k < m->n_wr; k++)
		if (m->wr_part[k] != p && overlap(t, m->wr[k]))
			return false;
	if (m->n_wr == ST_CPU_FUSE_MAX)
		return false;
	m->wr[m->n_wr] = t;
	m->wr_part[m->n_wr++] = p;
	return true;
}

/* Can op run on chunks of rows after the matmuls in m? (may set lockstep) */
static bool epilogue_ok(struct match *m, const struct st_op *op)
{
	int p, q;
	switch (op->kind) {
	case ST_OP_ROPE: {
		const uint32_t hd = op->p.rope.head_dim, rd = op->p.rope.rope_dim;
		p = part_of(m, &op->dst);
		if (p < 0 || !same(&op->dst, &op->src[0]) || hd == 0 || rd % 2 || rd > hd ||
		    rd / 2 > ROPE_MAX_PAIRS || (int64_t)op->p.rope.n_head * hd != m->mm[p]->src[0].ne1 ||
		    (m->head_dim && m->head_dim != hd))
			return false;
		m->head_dim = hd;
		return true;
	}
	case ST_OP_KV_STORE:
		p = part_of(m, &op->src[0]);
		return p >= 0 && (op->dst.type == ST_TYPE_F32 || op->dst.type == ST_TYPE_F16) &&
		       op->dst.ne0 == m->mm[p]->src[0].ne1 && !clobbers_input(m, &op->dst) &&
		       part_of(m, &op->dst) < 0 && write_ok(m, &op->dst, p);
	case ST_OP_SWIGLU:
		p = part_of(m, &op->src[0]);
		q = part_of(m, &op->src[1]);
		if (p < 0 || q < 0 || p == q || !same(&op->dst, &op->src[0]))
			return false;
		for (int r = 1; r < m->n_mm; r++)
			if (m->mm[r]->src[0].ne1 != m->mm[0]->src[0].ne1)
				return false;
		m->lockstep = true;
		return true;
	case ST_OP_ADD: {
		/* x = x + y or x = y + x with y a matmul output: written in place */
		p = part_of(m, &op->src[1]);
		const struct st_tensor *x = &op->src[0];
		if (p < 0) {
			p = part_of(m, &op->src[0]);
			x = &op->src[1];
		}
		return p >= 0 && part_of(m, x) < 0 && same(&op->dst, x) && f32_rows(x) &&
		       x->ne0 == m->mm[p]->src[0].ne1 && !clobbers_input(m, x) && write_ok(m, x, p);
	}
	default:
		return false;
	}
}

int st_cpu_fuse_span(const struct st_op *ops, int n_ops, int i)
{
	struct match m = { 0 };
	int n = i;
	for (; n < n_ops && m.n_mm < ST_MM_MAX_PARTS; n++) {
		const struct st_op *op = &ops[n];
		if (op->kind != ST_OP_MATMUL || !f32_rows(&op->dst) || !f32_rows(&op->src[1]) ||
		    op->src[1].ne0 != op->src[0].ne0 || op->dst.ne0 != op->src[0].ne1)
			break;
		if (m.n_mm && !same(&op->src[1], &m.mm[0]->src[1]))
			break;
		bool ok = !overlap(&op->dst, &op->src[1]);
		for (int p = 0; p < m.n_mm && ok; p++)
			ok = !overlap(&op->dst, &m.mm[p]->dst);
		if (!ok)
			break;
		m.mm[m.n_mm++] = op;
	}
	if (m.n_mm == 0)
		return 1;
	while (n < n_ops && n - i < ST_CPU_FUSE_MAX && epilogue_ok(&m, &ops[n]))
		n++;
	return ST_MAX(1, n - i);
}

/* ---- running (one token) ------------------------------------------- */

static _Atomic uint64_t g_fused;

uint64_t st_cpu_fuse_count(void)
{
	return atomic_load_explicit(&g_fused, memory_order_relaxed);
}

struct epi {
	enum st_op_kind kind;
	int part;
	float *y;                /* ROPE, SWIGLU, ADD: written */
	const float *a, *b;      /* SWIGLU, ADD operands; KV_STORE source */
	void *row;               /* KV_STORE: the cache row at pos0 */
	uint32_t row_type;
	uint32_t head_dim, pairs;
	const double *cs;        /* RoPE: cos, sin of each pair at pos0 */
};

struct fuse {
	struct epi e[ST_CPU_FUSE_MAX];
	int n;
	bool lockstep;
	double cs[2][2 * ROPE_MAX_PAIRS];
};

/* The same arithmetic as st_ref_rope, SwiGLU and ADD in ops_ref.c. */
static void epi_apply(const struct epi *e, int64_t r0, int64_t r1)
{
	switch (e->kind) {
	case ST_OP_ROPE:
		for (int64_t h = r0 / e->head_dim; h < r1 / (int64_t)e->head_dim; h++) {
			float *v = e->y + h * e->head_dim;
			for (uint32_t i = 0; i < e->pairs; i++) {
				const double c = e->cs[2 * i], s = e->cs[2 * i + 1];
				const double x0 = v[2 * i], x1 = v[2 * i + 1];
				v[2 * i] = (float)(x0 * c - x1 * s);
				v[2 * i + 1] = (float)(x0 * s + x1 * c);
			}
		}
		break;
	case ST_OP_KV_STORE:
		if (e->row_type == ST_TYPE_F16)
			for (int64_t r = r0; r < r1; r++)
				((uint16_t *)e->row)[r] = st_fp32_to_fp16(e->a[r]);
		else
			memcpy((float *)e->row + r0, e->a + r0, (size_t)(r1 - r0) * sizeof(float));
		break;
	case ST_OP_SWIGLU:
		for (int64_t r = r0; r < r1; r++)
			e->y[r] = (float)((double)e->a[r] / (1.0 + exp(-(double)e->a[r]))) * e->b[r];
		break;
	case ST_OP_ADD:
		for (int64_t r = r0; r < r1; r++)
			e->y[r] = e->a[r] + e->b[r];
		break;
	default:
		break;
	}
}

static void epi_fn(void *user, int part, int64_t r0, int64_t r1)
{
	const struct fuse *f = user;
	for (int k = 0; k < f->n; k++)
		if (f->lockstep || f->e[k].part == part)
			epi_apply(&f->e[k], r0, r1);
}

int st_cpu_fuse_run(const struct st_op *ops, const struct st_cpu_op_ptrs *ptrs, int n,
		    const struct st_graph_run *run)
{
	struct st_mm_part parts[ST_MM_MAX_PARTS];
	struct match m = { 0 };
	struct fuse f;
	int n_rope = 0, k = 0;
	float rope_theta = 0;
	uint32_t rope_dim = 0;

	if (run->n_tokens != 1 || n < 1 || n > ST_CPU_FUSE_MAX)
		return st_error(-EINVAL, "cpu fuse: %d ops for %lld tokens (1 token, 1..%d ops)", n,
				(long long)run->n_tokens, ST_CPU_FUSE_MAX);
	for (int i = 0; i < n; i++) {
		int rc = st_op_check(&ops[i], run);
		if (rc)
			return rc;
	}
	for (; k < n && ops[k].kind == ST_OP_MATMUL && k < ST_MM_MAX_PARTS; k++) {
		const struct st_tensor *w = &ops[k].src[0];
		parts[k] = (struct st_mm_part){ .type = w->type, .w = ptrs[k].src[0], .w_stride = w->nb1,
						.rows = w->ne1, .y = ptrs[k].dst };
		m.mm[m.n_mm++] = &ops[k];
	}
	f.n = 0;
	for (int i = k; i < n; i++) {
		const struct st_op *op = &ops[i];
		struct epi *e = &f.e[f.n++];
		if (!epilogue_ok(&m, op))
			return st_error(-EINVAL, "cpu fuse: op %d (%s) cannot follow the matmuls", i, st_op_name(op->kind));
		memset(e, 0, sizeof(*e));
		e->kind = op->kind;
		switch (op->kind) {
		case ST_OP_ROPE: {
			const uint32_t rd = op->p.rope.rope_dim;
			e->part = part_of(&m, &op->dst);
			e->y = ptrs[i].dst;
			e->head_dim = op->p.rope.head_dim;
			e->pairs = rd / 2;
			/* Q and K share theta and rope_dim: one table */
			if (n_rope && rope_theta == op->p.rope.theta && rope_dim == rd) {
				e->cs = f.cs[n_rope - 1];
				break;
			}
			if (n_rope == 2)
				return st_error(-EINVAL, "cpu fuse: more than two RoPE tables in one step");
			double *cs = f.cs[n_rope++];
			const double pos = (double)run->pos0;
			for (uint32_t j = 0; j < rd / 2; j++) {
				/* freq = theta^(-2j/rope_dim), as st_ref_rope */
				const double freq = pow((double)op->p.rope.theta, -2.0 * j / rd);
				const double a = pos * freq;
				cs[2 * j] = cos(a);
				cs[2 * j + 1] = sin(a);
			}
			e->cs = cs;
			rope_theta = op->p.rope.theta;
			rope_dim = rd;
			break;
		}
		case ST_OP_KV_STORE:
			e->part = part_of(&m, &op->src[0]);
			e->a = ptrs[i].src[0];
			e->row = (char *)ptrs[i].dst + (size_t)run->pos0 * op->dst.nb1;
			e->row_type = op->dst.type;
			break;
		case ST_OP_SWIGLU:
			e->part = part_of(&m, &op->src[0]);
			e->y = ptrs[i].dst;
			e->a = ptrs[i].src[0];
			e->b = ptrs[i].src[1];
			break;
		case ST_OP_ADD:
			e->part = part_of(&m, &op->src[1]);
			if (e->part < 0)
				e->part = part_of(&m, &op->src[0]);
			e->y = ptrs[i].dst;
			e->a = ptrs[i].src[0];
			e->b = ptrs[i].src[1];
			break;
		default:
			break;
		}
	}
	f.lockstep = m.lockstep;
	atomic_fetch_add_explicit(&g_fused, 1, memory_order_relaxed);
	return st_cpu_matmul_decode(parts, k, ops[0].src[0].ne0, ptrs[0].src[1], m.head_dim ? m.head_dim : ROW_ALIGN,
				    m.lockstep, f.n ? epi_fn : NULL, &f);
}
