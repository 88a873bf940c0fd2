/* gemm.c: packing quantized activations for the prompt GEMM (gemm.h) and
 * choosing its kernel. */
#include "gemm.h"

#include <string.h>

#include "kquant.h"

#include "util.h"

/* Per block and token: bvals quant bytes, a scale, and (256-blocks) 4 sums. */
static size_t per_block(int64_t bvals)
{
	return (size_t)bvals + sizeof(float) + (bvals == 256 ? 4 * sizeof(int32_t) : 0);
}

int st_gemm_act_bytes(int64_t cols, int64_t n_tokens, int64_t bvals, size_t *bytes)
{
	if (cols < 0 || n_tokens < 0 || (bvals != 32 && bvals != 256) || cols % bvals)
		return -EINVAL;
	size_t groups = ((size_t)n_tokens + ST_GEMM_TG - 1) / ST_GEMM_TG, blocks, tot;
	if (st_mul_overflow_size((size_t)(cols / bvals), groups * ST_GEMM_TG, &blocks) ||
	    st_mul_overflow_size(blocks, per_block(bvals), &tot) || st_add_overflow_size(tot, 3 * 64, &tot))
		return -EOVERFLOW;
	*bytes = tot;
	return 0;
}

static void *align64(void *p)
{
	return (void *)(((uintptr_t)p + 63) & ~(uintptr_t)63);
}

void st_gemm_act_init(struct st_gemm_act *g, void *mem, int64_t cols, int64_t n_tokens, int64_t bvals)
{
	g->nb = cols / bvals;
	g->bvals = bvals;
	g->n_groups = (n_tokens + ST_GEMM_TG - 1) / ST_GEMM_TG;
	const size_t slots = (size_t)g->nb * (size_t)g->n_groups * ST_GEMM_TG;
	g->qs = align64(mem);
	g->d = align64(g->qs + slots * (size_t)bvals);
	g->bs = bvals == 256 ? align64(g->d + slots) : NULL;
}

/* Token t's runs of one block: k-th 4 values at dq[k * 4 * TG + t * 4]. */
static void put_runs(uint8_t *dq, int t, const int8_t *src, int64_t bvals)
{
	for (int64_t k = 0; k < bvals / 4; k++) {
		uint32_t v = 0x80808080u;    /* padding: x = 0 */
		if (src) {
			memcpy(&v, src + 4 * k, 4);
			v ^= 0x80808080u;   /* int8 x -> uint8 x + 128 */
		}
		memcpy(dq + k * 4 * ST_GEMM_TG + t * 4, &v, 4);
	}
}

void st_gemm_act_pack(struct st_gemm_act *g, const struct st_q8_act *q, int64_t group)
{
	const int64_t nb = g->nb;
	const int64_t t0 = group * ST_GEMM_TG;
	uint8_t *dq = g->qs + (size_t)group * (size_t)nb * 32 * ST_GEMM_TG;
	float *dd = g->d + (size_t)group * (size_t)nb * ST_GEMM_TG;
	for (int j = 0; j < 8; j++)
		for (int64_t b = j; b < nb; b += 8, dq += 32 * ST_GEMM_TG, dd += ST_GEMM_TG)
			for (int t = 0; t < ST_GEMM_TG; t++) {
				const int64_t tok = t0 + t;
				const bool have = tok < q->n_tokens;
				const size_t o = (size_t)tok * (size_t)nb + (size_t)b;
				put_runs(dq, t, have ? q->qs + o * 32 : NULL, 32);
				dd[t] = have ? q->d[o] : 0.0f;
			}
}

void st_gemm_act_pack_k(struct st_gemm_act *g, const struct st_q8k_act *qk, int64_t group)
{
	const int64_t nb = g->nb;
	const int64_t t0 = group * ST_GEMM_TG;
	uint8_t *dq = g->qs + (size_t)group * (size_t)nb * 256 * ST_GEMM_TG;
	float *dd = g->d + (size_t)group * (size_t)nb * ST_GEMM_TG;
	int32_t *ds = g->bs + (size_t)group * (size_t)nb * 4 * ST_GEMM_TG;
	for (int j = 0; j < 8; j++)
		for (int64_t b = j; b < nb; b += 8, dq += 256 * ST_GEMM_TG, dd += ST_GEMM_TG, ds += 4 * ST_GEMM_TG)
			for (int t = 0; t < ST_GEMM_TG; t++) {
				const int64_t tok = t0 + t;
				const st_block_q8_K *x = tok < qk->n_tokens ? &qk->b[(size_t)tok * (size_t)nb + (size_t)b] : NULL;
				put_runs(dq, t, x ? x->qs : NULL, 256);
				dd[t] = x ? x->d : 0.0f;
				for (int k = 0; k < 4; k++) {
					/* |s| <= 32 * 127: fits int16 */
					const int32_t s0 = x ? x->bsums[4 * k] + x->bsums[4 * k + 1] : 0;
					const int32_t s1 = x ? x->bsums[4 * k + 2] + x->bsums[4 * k + 3] : 0;
					ds[k * ST_GEMM_TG + t] = (int32_t)(((uint32_t)(uint16_t)s1 << 16) | (uint16_t)s0);
				}
			}
}

st_mm_fn st_gemm_kernel(enum st_isa isa, uint32_t type)
{
	if (isa == ST_ISA_SCALAR || !st_cpu_isa_supported(isa))
		return NULL;
#if defined(__x86_64__)
	return st_gemm_kernel_x86(isa, type);
#else
	(void)type;
	return NULL;
#endif
}

int64_t st_gemm_tok_tile(int64_t cols)
{
	/* ~512 KiB of packed activations per call (half of a 1 MiB L2),
	 * 32..128 tokens, a multiple of the group */
	int64_t t = cols > 0 ? ((int64_t)512 * 1024) / cols : 128;
	t = t / ST_GEMM_TG * ST_GEMM_TG;
	return t < 32 ? 32 : t > 128 ? 128 : t;
}
