/* ops_ref.c: scalar reference kernels for the ops of backend.h, and the
 * shape/type checks every backend shares (see ops_ref.h). */
#include "ops_ref.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "types.h"
#include "util.h"

static const char *const op_names[ST_OP_COUNT] = {
	[ST_OP_GET_ROWS] = "get_rows", [ST_OP_RMSNORM] = "rmsnorm", [ST_OP_MATMUL] = "matmul",
	[ST_OP_ROPE] = "rope", [ST_OP_KV_STORE] = "kv_store", [ST_OP_ATTN] = "attn",
	[ST_OP_SWIGLU] = "swiglu", [ST_OP_ADD] = "add", [ST_OP_SOFTMAX] = "softmax",
};

const char *st_op_name(enum st_op_kind kind)
{
	if ((unsigned)kind >= ST_OP_COUNT)
		return "unknown";
	return op_names[kind];
}

/* ---- checks --------------------------------------------------------------- */

static bool is_float_type(uint32_t t)
{
	return t == ST_TYPE_F32 || t == ST_TYPE_F16 || t == ST_TYPE_BF16;
}

/* A tensor whose rows hold ne0 elements of its type (nb1 large enough). */
static int check_tensor(const struct st_op *op, const char *what, const struct st_tensor *t)
{
	const struct st_type_traits *tr = st_type_traits(t->type);
	uint64_t row;
	if (!tr || !tr->supported)
		return st_error(-EINVAL, "%s: %s has type %s, which strata cannot compute with",
				st_op_name(op->kind), what, st_type_name(t->type));
	if (t->ne0 <= 0 || t->ne1 <= 0)
		return st_error(-EINVAL, "%s: %s has shape [%lld, %lld]", st_op_name(op->kind), what,
				(long long)t->ne0, (long long)t->ne1);
	if (st_type_row_size(t->type, (uint64_t)t->ne0, &row) != 0)
		return st_error(-EINVAL, "%s: %s row of %lld elements is not a multiple of the %s block size %u",
				st_op_name(op->kind), what, (long long)t->ne0, tr->name, tr->block_size);
	if (t->nb1 < row)
		return st_error(-EINVAL, "%s: %s row stride %zu < row size %llu", st_op_name(op->kind), what,
				t->nb1, (unsigned long long)row);
	return 0;
}

static int need_type(const struct st_op *op, const char *what, const struct st_tensor *t, uint32_t type)
{
	if (t->type != type)
		return st_error(-EINVAL, "%s: %s has type %s, expected %s", st_op_name(op->kind), what,
				st_type_name(t->type), st_type_name(type));
	return 0;
}

static int need_ne0(const struct st_op *op, const char *what, const struct st_tensor *t, int64_t ne0)
{
	if (t->ne0 != ne0)
		return st_error(-EINVAL, "%s: %s has %lld elements per row, expected %lld", st_op_name(op->kind),
				what, (long long)t->ne0, (long long)ne0);
	return 0;
}

/* An activation: n_tokens live rows must fit its capacity. */
static int need_rows(const struct st_op *op, const char *what, const struct st_tensor *t,
		     const struct st_graph_run *run)
{
	if (run && run->n_tokens > t->ne1)
		return st_error(-EINVAL, "%s: %lld tokens exceed the %lld rows of %s", st_op_name(op->kind),
				(long long)run->n_tokens, (long long)t->ne1, what);
	return 0;
}

#define TRY(x) do { int rc_ = (x); if (rc_) return rc_; } while (0)

int st_op_check(const struct st_op *op, const struct st_graph_run *run)
{
	const struct st_tensor *d = &op->dst, *s0 = &op->src[0], *s1 = &op->src[1], *s2 = &op->src[2];

	if ((unsigned)op->kind >= ST_OP_COUNT)
		return st_error(-EINVAL, "op kind %d is unknown", (int)op->kind);
	if (run && (run->n_tokens <= 0 || run->pos0 < 0))
		return st_error(-EINVAL, "%s: bad run n_tokens=%lld pos0=%lld", st_op_name(op->kind),
				(long long)run->n_tokens, (long long)run->pos0);
	TRY(check_tensor(op, "dst", d));
	TRY(check_tensor(op, "src0", s0));
	switch (op->kind) {
	case ST_OP_GET_ROWS:
		if (s1->type != ST_TYPE_I32 || s1->ne0 != 1 || s1->ne1 <= 0 || s1->nb1 < sizeof(int32_t))
			return st_error(-EINVAL, "get_rows: ids must be i32 [1, n] (got %s [%lld, %lld], stride %zu)",
					st_type_name(s1->type), (long long)s1->ne0, (long long)s1->ne1, s1->nb1);
		TRY(need_type(op, "dst", d, ST_TYPE_F32));
		TRY(need_ne0(op, "dst", d, s0->ne0));
		TRY(need_rows(op, "dst", d, run));
		TRY(need_rows(op, "src1 (ids)", s1, run));
		break;
	case ST_OP_RMSNORM:
		TRY(check_tensor(op, "src1 (weight)", s1));
		TRY(need_type(op, "src0", s0, ST_TYPE_F32));
		TRY(need_type(op, "dst", d, ST_TYPE_F32));
		if (!is_float_type(s1->type))
			return st_error(-EINVAL, "rmsnorm: weight has type %s, expected f32, f16 or bf16",
					st_type_name(s1->type));
		TRY(need_ne0(op, "src1 (weight)", s1, s0->ne0));
		TRY(need_ne0(op, "dst", d, s0->ne0));
		if (!(op->p.norm.eps >= 0.0f))
			return st_error(-EINVAL, "rmsnorm: eps %g is not a non-negative number", (double)op->p.norm.eps);
		TRY(need_rows(op, "src0", s0, run));
		TRY(need_rows(op, "dst", d, run));
		break;
	case ST_OP_MATMUL:
		TRY(check_tensor(op, "src1 (x)", s1));
		TRY(need_type(op, "src1 (x)", s1, ST_TYPE_F32));
		TRY(need_type(op, "dst", d, ST_TYPE_F32));
		TRY(need_ne0(op, "src1 (x)", s1, s0->ne0));
		TRY(need_ne0(op, "dst", d, s0->ne1));
		TRY(need_rows(op, "src1 (x)", s1, run));
		TRY(need_rows(op, "dst", d, run));
		break;
	case ST_OP_ROPE: {
		const uint32_t nh = op->p.rope.n_head, hd = op->p.rope.head_dim, rd = op->p.rope.rope_dim;
		TRY(need_type(op, "src0", s0, ST_TYPE_F32));
		if (d->buf != s0->buf || d->offset != s0->offset || d->nb1 != s0->nb1 || d->ne0 != s0->ne0)
			return st_error(-EINVAL, "rope: runs in place; dst must be the src0 tensor");
		if (nh == 0 || hd == 0 || rd > hd || rd % 2)
			return st_error(-EINVAL, "rope: n_head=%u head_dim=%u rope_dim=%u (need rope_dim even, <= head_dim)",
					nh, hd, rd);
		TRY(need_ne0(op, "src0", s0, (int64_t)nh * hd));
		if (!(op->p.rope.theta > 0.0f))
			return st_error(-EINVAL, "rope: theta %g is not positive", (double)op->p.rope.theta);
		TRY(need_rows(op, "src0", s0, run));
		break;
	}
	case ST_OP_KV_STORE:
		TRY(need_type(op, "src0", s0, ST_TYPE_F32));
		if (d->type != ST_TYPE_F32 && d->type != ST_TYPE_F16)
			return st_error(-EINVAL, "kv_store: cache type %s, expected f32 or f16", st_type_name(d->type));
		TRY(need_ne0(op, "dst (cache)", d, s0->ne0));
		TRY(need_rows(op, "src0", s0, run));
		if (run && run->pos0 + run->n_tokens > d->ne1)
			return st_error(-EINVAL, "kv_store: positions %lld..%lld exceed the cache of %lld rows",
					(long long)run->pos0, (long long)(run->pos0 + run->n_tokens - 1), (long long)d->ne1);
		break;
	case ST_OP_ATTN: {
		const uint32_t nh = op->p.attn.n_head, nkv = op->p.attn.n_head_kv, hd = op->p.attn.head_dim;
		TRY(check_tensor(op, "src1 (K)", s1));
		TRY(check_tensor(op, "src2 (V)", s2));
		TRY(need_type(op, "src0 (q)", s0, ST_TYPE_F32));
		TRY(need_type(op, "dst", d, ST_TYPE_F32));
		if (s1->type != ST_TYPE_F32 && s1->type != ST_TYPE_F16)
			return st_error(-EINVAL, "attn: cache type %s, expected f32 or f16", st_type_name(s1->type));
		TRY(need_type(op, "src2 (V)", s2, s1->type));
		if (nh == 0 || nkv == 0 || hd == 0 || nh % nkv)
			return st_error(-EINVAL, "attn: n_head=%u n_head_kv=%u head_dim=%u (n_head must be a multiple of n_head_kv)",
					nh, nkv, hd);
		TRY(need_ne0(op, "src0 (q)", s0, (int64_t)nh * hd));
		TRY(need_ne0(op, "dst", d, (int64_t)nh * hd));
		TRY(need_ne0(op, "src1 (K)", s1, (int64_t)nkv * hd));
		TRY(need_ne0(op, "src2 (V)", s2, (int64_t)nkv * hd));
		if (s1->ne1 != s2->ne1)
			return st_error(-EINVAL, "attn: K has %lld rows, V %lld", (long long)s1->ne1, (long long)s2->ne1);
		TRY(need_rows(op, "src0 (q)", s0, run));
		TRY(need_rows(op, "dst", d, run));
		if (run && run->pos0 + run->n_tokens > s1->ne1)
			return st_error(-EINVAL, "attn: positions %lld..%lld exceed the cache of %lld rows",
					(long long)run->pos0, (long long)(run->pos0 + run->n_tokens - 1), (long long)s1->ne1);
		break;
	}
	case ST_OP_SWIGLU:
	case ST_OP_ADD:
		TRY(check_tensor(op, "src1", s1));
		TRY(need_type(op, "src1", s1, ST_TYPE_F32));
		TRY(need_ne0(op, "src1", s1, s0->ne0));
		TRY(need_rows(op, "src1", s1, run));
		/* fall through */
	case ST_OP_SOFTMAX:
		TRY(need_type(op, "src0", s0, ST_TYPE_F32));
		TRY(need_type(op, "dst", d, ST_TYPE_F32));
		TRY(need_ne0(op, "dst", d, s0->ne0));
		TRY(need_rows(op, "src0", s0, run));
		TRY(need_rows(op, "dst", d, run));
		break;
	default:
		return st_error(-EINVAL, "op kind %d is unknown", (int)op->kind);
	}
	return 0;
}

/* ---- kernels ----------------------------------------------------------- */

#define ROW(p, i, nb) ((const char *)(p) + (size_t)(i) * (nb))

void st_ref_matmul(uint32_t type, const void *W, int64_t rows, int64_t cols, size_t nb_w,
		   const float *x, int64_t ldx, int64_t n_tokens, float *y, int64_t ldy)
{
	/* Dequantize each weight row in chunks (a multiple of every block
	 * size) and dot it with every token; sums in double. */
	enum { CHUNK = 256 };
	float buf[CHUNK];
	const struct st_type_traits *tr = st_type_traits(type);

	for (int64_t t = 0; t < n_tokens; t++)
		for (int64_t r = 0; r < rows; r++)
			y[t * ldy + r] = 0.0f;
	for (int64_t r = 0; r < rows; r++) {
		const char *wrow = ROW(W, r, nb_w);
		for (int64_t c0 = 0; c0 < cols; c0 += CHUNK) {
			const int64_t nc = ST_MIN((int64_t)CHUNK, cols - c0);
			const float *w;
			if (type == ST_TYPE_F32) {
				w = (const float *)wrow + c0;
			} else {
				tr->to_float(wrow + (size_t)(c0 / tr->block_size) * tr->type_size, buf, nc);
				w = buf;
			}
			for (int64_t t = 0; t < n_tokens; t++) {
				const float *xt = x + t * ldx + c0;
				double s = 0.0;
				for (int64_t c = 0; c < nc; c++)
					s += (double)w[c] * xt[c];
				y[t * ldy + r] += (float)s;
			}
		}
	}
}

static inline float cache_get(const void *row, uint32_t type, int64_t i)
{
	if (type == ST_TYPE_F16)
		return st_fp16_to_fp32(((const uint16_t *)row)[i]);
	return ((const float *)row)[i];
}

void st_ref_rope(float *x, int64_t ldx, int64_t n_tokens, int64_t pos0,
		 uint32_t n_head, uint32_t head_dim, uint32_t rope_dim, float theta)
{
	for (int64_t t = 0; t < n_tokens; t++) {
		const double pos = (double)(pos0 + t);
		for (uint32_t h = 0; h < n_head; h++) {
			float *v = x + t * ldx + (int64_t)h * head_dim;
			for (uint32_t i = 0; i < rope_dim / 2; i++) {
				/* freq = theta^(-2i/rope_dim); rotate (2i, 2i+1) */
				const double freq = pow((double)theta, -2.0 * i / rope_dim);
				const double a = pos * freq, c = cos(a), s = sin(a);
				const double x0 = v[2 * i], x1 = v[2 * i + 1];
				v[2 * i] = (float)(x0 * c - x1 * s);
				v[2 * i + 1] = (float)(x0 * s + x1 * c);
			}
		}
	}
}

/* Scores of one query against one KV position, softmax, weighted sum of V.
 * `sc` holds pos0 + n_tokens doubles. */
static void attn_rows(const float *q, int64_t ldq, const void *k, const void *v, uint32_t ct,
		      size_t nb_kv, float *out, int64_t ldo, int64_t n_tokens, int64_t pos0,
		      uint32_t n_head, uint32_t n_head_kv, uint32_t hd, float scale, double *sc)
{
	const uint32_t group = n_head / n_head_kv;
	for (int64_t t = 0; t < n_tokens; t++) {
		const int64_t n_pos = pos0 + t + 1;    /* causal: positions 0..pos0+t */
		for (uint32_t h = 0; h < n_head; h++) {
			const float *qh = q + t * ldq + (int64_t)h * hd;
			const int64_t kvo = (int64_t)(h / group) * hd;
			double mx = -INFINITY, sum = 0.0;
			for (int64_t j = 0; j < n_pos; j++) {
				const void *kr = ROW(k, j, nb_kv);
				double s = 0.0;
				for (uint32_t i = 0; i < hd; i++)
					s += (double)qh[i] * cache_get(kr, ct, kvo + i);
				sc[j] = s * scale;
				if (sc[j] > mx)
					mx = sc[j];
			}
			for (int64_t j = 0; j < n_pos; j++) {
				sc[j] = exp(sc[j] - mx);
				sum += sc[j];
			}
			float *o = out + t * ldo + (int64_t)h * hd;
			for (uint32_t i = 0; i < hd; i++) {
				double acc = 0.0;
				for (int64_t j = 0; j < n_pos; j++)
					acc += sc[j] * cache_get(ROW(v, j, nb_kv), ct, kvo + i);
				o[i] = (float)(acc / sum);
			}
		}
	}
}

int st_ref_attn(const float *q, int64_t ldq, const void *k, const void *v, uint32_t cache_type,
		size_t nb_kv, float *out, int64_t ldo, int64_t n_tokens, int64_t pos0,
		uint32_t n_head, uint32_t n_head_kv, uint32_t head_dim, float scale)
{
	/* Small enough positions use the stack; else one allocation. */
	double stack[1024];
	const int64_t n = pos0 + n_tokens;
	double *sc = n <= 1024 ? stack : malloc((size_t)n * sizeof(double));
	if (!sc)
		return st_error(-ENOMEM, "attn: no memory for %lld scores", (long long)n);
	attn_rows(q, ldq, k, v, cache_type, nb_kv, out, ldo, n_tokens, pos0, n_head, n_head_kv,
		  head_dim, scale, sc);
	if (sc != stack)
		free(sc);
	return 0;
}

int st_ref_op_run(const struct st_op *op, const struct st_graph_run *run,
		  void *dst, const void *const src[3])
{
	const struct st_tensor *d = &op->dst, *s0 = &op->src[0], *s1 = &op->src[1];
	const int64_t n = run->n_tokens, ne0 = d->ne0;
	int rc = st_op_check(op, run);
	if (rc)
		return rc;

	switch (op->kind) {
	case ST_OP_GET_ROWS: {
		const struct st_type_traits *tr = st_type_traits(s0->type);
		for (int64_t t = 0; t < n; t++) {
			const int32_t id = *(const int32_t *)ROW(src[1], t, s1->nb1);
			if (id < 0 || id >= s0->ne1)
				return st_error(-EINVAL, "get_rows: id %d at row %lld is outside 0..%lld", id,
						(long long)t, (long long)s0->ne1 - 1);
			tr->to_float(ROW(src[0], id, s0->nb1), (float *)((char *)dst + t * d->nb1), ne0);
		}
		return 0;
	}
	case ST_OP_RMSNORM: {
		enum { CHUNK = 256 };
		const struct st_type_traits *tr = st_type_traits(s1->type);
		for (int64_t t = 0; t < n; t++) {
			const float *x = (const float *)ROW(src[0], t, s0->nb1);
			float *y = (float *)((char *)dst + t * d->nb1);
			double ss = 0.0;
			for (int64_t i = 0; i < ne0; i++)
				ss += (double)x[i] * x[i];
			const double scale = 1.0 / sqrt(ss / (double)ne0 + op->p.norm.eps);
			for (int64_t i0 = 0; i0 < ne0; i0 += CHUNK) {
				float w[CHUNK];
				const int64_t nc = ST_MIN((int64_t)CHUNK, ne0 - i0);
				tr->to_float((const char *)src[1] + (size_t)i0 * tr->type_size, w, nc);
				for (int64_t i = 0; i < nc; i++)
					y[i0 + i] = (float)(x[i0 + i] * scale) * w[i];
			}
		}
		return 0;
	}
	case ST_OP_MATMUL:
		st_ref_matmul(s0->type, src[0], s0->ne1, s0->ne0, s0->nb1, src[1],
			      (int64_t)(s1->nb1 / sizeof(float)), n, dst, (int64_t)(d->nb1 / sizeof(float)));
		return 0;
	case ST_OP_ROPE:
		st_ref_rope(dst, (int64_t)(d->nb1 / sizeof(float)), n, run->pos0, op->p.rope.n_head,
			    op->p.rope.head_dim, op->p.rope.rope_dim, op->p.rope.theta);
		return 0;
	case ST_OP_KV_STORE:
		for (int64_t t = 0; t < n; t++) {
			const float *x = (const float *)ROW(src[0], t, s0->nb1);
			char *row = (char *)dst + (size_t)(run->pos0 + t) * d->nb1;
			if (d->type == ST_TYPE_F16)
				for (int64_t i = 0; i < ne0; i++)
					((uint16_t *)row)[i] = st_fp32_to_fp16(x[i]);
			else
				memcpy(row, x, (size_t)ne0 * sizeof(float));
		}
		return 0;
	case ST_OP_ATTN:
		return st_ref_attn(src[0], (int64_t)(s0->nb1 / sizeof(float)), src[1], src[2], s1->type, s1->nb1,
			    dst, (int64_t)(d->nb1 / sizeof(float)), n, run->pos0, op->p.attn.n_head,
				   op->p.attn.n_head_kv, op->p.attn.head_dim, op->p.attn.scale);
	case ST_OP_SWIGLU:
	case ST_OP_ADD:
		for (int64_t t = 0; t < n; t++) {
			const float *a = (const float *)ROW(src[0], t, s0->nb1);
			const float *b = (const float *)ROW(src[1], t, s1->nb1);
			float *y = (float *)((char *)dst + t * d->nb1);
			if (op->kind == ST_OP_ADD)
				for (int64_t i = 0; i < ne0; i++)
					y[i] = a[i] + b[i];
			else
				for (int64_t i = 0; i < ne0; i++)
					y[i] = (float)((double)a[i] / (1.0 + exp(-(double)a[i]))) * b[i];
		}
		return 0;
	case ST_OP_SOFTMAX:
		for (int64_t t = 0; t < n; t++) {
			const float *a = (const float *)ROW(src[0], t, s0->nb1);
			float *y = (float *)((char *)dst + t * d->nb1);
			double mx = -INFINITY, sum = 0.0;
			for (int64_t i = 0; i < ne0; i++)
				if (a[i] > mx)
					mx = a[i];
			for (int64_t i = 0; i < ne0; i++)
				sum += exp((double)a[i] - mx);
			for (int64_t i = 0; i < ne0; i++)
				y[i] = (float)(exp((double)a[i] - mx) / sum);
		}
		return 0;
	default:
		return st_error(-EINVAL, "op kind %d is unknown", (int)op->kind);
	}
}
