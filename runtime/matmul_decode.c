/* matmul_decode.c: a decode step's matmuls sharing one input row in one
 * pool run (matmul_decode.h). */
#include "matmul_decode.h"

#include <errno.h>

#include "kquant.h"
#include "quant_dot.h"
#include "types.h"
#include "util.h"

/* Chunks per thread: small enough that the threads finish within a few
 * microseconds of each other, large enough that taking one costs nothing. */
#define CHUNKS_PER_THREAD 64
/* Below this many multiply-adds the run stays on the calling thread. */
#define MT_MIN_WORK (1 << 16)

struct dec_task {
	const struct st_mm_part *parts;
	int n_parts;
	bool lockstep;
	int64_t cols, chunk_rows;
	int64_t first_chunk[ST_MM_MAX_PARTS + 1];   /* chunk index where part p starts */
	st_mm_fn fn[ST_MM_MAX_PARTS];
	struct st_mm_act act[ST_MM_MAX_PARTS];
	st_mm_epilogue_fn epi;
	void *user;
	struct st_tp_chunks chunks;
};

static void rows_of(const struct dec_task *d, int p, int64_t r0, int64_t r1)
{
	const struct st_mm_part *pt = &d->parts[p];
	d->fn[p]((const uint8_t *)pt->w + (size_t)r0 * pt->w_stride, pt->w_stride, d->cols, r1 - r0, &d->act[p], 0,
		 1, pt->y + r0, 1);
}

static void dec_task_run(void *arg, int ith, int nth)
{
	struct dec_task *d = arg;
	(void)nth;
	for (int64_t c; (c = st_tp_chunks_next(&d->chunks, ith)) >= 0;) {
		int p = 0;
		while (c >= d->first_chunk[p + 1])
			p++;
		const int64_t r0 = (c - d->first_chunk[p]) * d->chunk_rows;
		const int64_t r1 = ST_MIN(d->parts[p].rows, r0 + d->chunk_rows);
		if (d->lockstep) {
			for (int q = 0; q < d->n_parts; q++)
				rows_of(d, q, r0, r1);
			if (d->epi)
				d->epi(d->user, -1, r0, r1);
		} else {
			rows_of(d, p, r0, r1);
			if (d->epi)
				d->epi(d->user, p, r0, r1);
		}
	}
}

int st_matmul_decode(struct st_matmul_ctx *ctx, const struct st_mm_part *parts, int n_parts, int64_t cols,
		     const float *x, int64_t align, bool lockstep, st_mm_epilogue_fn epi, void *user)
{
	const enum st_isa isa = st_matmul_ctx_isa(ctx);
	struct dec_task d = { .parts = parts, .n_parts = n_parts, .lockstep = lockstep, .cols = cols,
			      .epi = epi, .user = user };
	bool need_q8 = false, need_q8k = false;
	int64_t total_rows = 0;

	if (n_parts < 1 || n_parts > ST_MM_MAX_PARTS || cols <= 0 || align < 1)
		return st_error(-EINVAL, "matmul_decode: %d parts (1..%d), cols %lld, align %lld", n_parts,
				ST_MM_MAX_PARTS, (long long)cols, (long long)align);
	for (int p = 0; p < n_parts; p++) {
		const uint32_t type = parts[p].type;
		if (!st_mm_type_supported(type))
			return st_error(-ENOTSUP, "matmul_decode: weight type %s has no CPU kernel", st_type_name(type));
		const bool kq = st_kq_type(type), quant = st_mm_type_is_quant(type) || kq;
		if (quant && cols % (kq ? ST_QK_K : 32))
			return st_error(-EINVAL, "matmul_decode: %s weights need cols %% %d == 0, got %lld",
					st_type_name(type), kq ? ST_QK_K : 32, (long long)cols);
		if (parts[p].rows < 0 || (lockstep && parts[p].rows != parts[0].rows))
			return st_error(-EINVAL, "matmul_decode: part %d has %lld rows (lockstep needs %lld)", p,
					(long long)parts[p].rows, (long long)parts[0].rows);
		need_q8 |= quant && !kq;
		need_q8k |= kq;
		d.fn[p] = st_mm_kernel(isa, type);
		if (!d.fn[p])
			d.fn[p] = st_mm_kernel(ST_ISA_SCALAR, type);
		total_rows += parts[p].rows;
	}

	/* activations quantized once for all parts (on this thread: a few
	 * thousand values) */
	struct st_q8_act q8;
	struct st_q8k_act q8k;
	size_t b8 = 0, b8k = 0;
	if ((need_q8 && st_q8_act_bytes(cols, 1, &b8)) || (need_q8k && st_q8k_act_bytes(cols, 1, &b8k)))
		return st_error(-EOVERFLOW, "matmul_decode: activation scratch for %lld columns overflows",
				(long long)cols);
	b8 = (b8 + 63) & ~(size_t)63;
	if (need_q8 || need_q8k) {
		uint8_t *scratch = st_matmul_ctx_scratch(ctx, b8 + b8k);
		if (!scratch)
			return st_error(-ENOMEM, "matmul_decode: out of memory for %zu bytes of scratch", b8 + b8k);
		if (need_q8) {
			st_q8_act_init(&q8, scratch, cols, 1);
			st_q8_quantizer(isa)(&q8, 0, x);
		}
		if (need_q8k) {
			st_q8k_act_init(&q8k, scratch + b8, cols, 1);
			st_q8k_act_quantize(&q8k, 0, x);
		}
	}
	for (int p = 0; p < n_parts; p++) {
		d.act[p].f = x;
		d.act[p].f_stride = (size_t)cols;
		if (st_kq_type(parts[p].type))
			d.act[p].qk = &q8k;
		else if (st_mm_type_is_quant(parts[p].type))
			d.act[p].q = &q8;
	}

	/* chunks: a multiple of align rows, about CHUNKS_PER_THREAD per thread */
	struct st_threadpool *pool = st_matmul_ctx_pool(ctx);
	const int nth = st_threadpool_n_threads(pool);
	const int64_t split_rows = lockstep ? parts[0].rows : total_rows;
	int64_t cr = (split_rows + (int64_t)nth * CHUNKS_PER_THREAD - 1) / ((int64_t)nth * CHUNKS_PER_THREAD);
	d.chunk_rows = ST_MAX(1, (cr + align - 1) / align) * align;
	d.first_chunk[0] = 0;
	for (int p = 0; p < n_parts; p++) {
		const int64_t nc = lockstep ? (p == 0 ? (parts[0].rows + d.chunk_rows - 1) / d.chunk_rows : 0)
					    : (parts[p].rows + d.chunk_rows - 1) / d.chunk_rows;
		d.first_chunk[p + 1] = d.first_chunk[p] + nc;
	}
	for (int p = n_parts + 1; p <= ST_MM_MAX_PARTS; p++)
		d.first_chunk[p] = d.first_chunk[n_parts];
	st_tp_chunks_init(&d.chunks, d.first_chunk[n_parts], nth);
	if ((double)total_rows * (double)cols < MT_MIN_WORK)
		dec_task_run(&d, 0, 1);
	else
		st_threadpool_run_dynamic(pool, dec_task_run, &d);
	return 0;
}
