/* gemm.c: packing quantized activations for the prompt GEMM (gemm.h) and
 * choosing its kernel. */
#include "gemm.h"

#include <string.h>

#include "util.h"

int st_gemm_act_bytes(int64_t cols, int64_t n_tokens, size_t *bytes)
{
	if (cols < 0 || n_tokens < 0 || cols % 32)
		return -EINVAL;
	size_t groups = ((size_t)n_tokens + ST_GEMM_TG - 1) / ST_GEMM_TG, blocks, qs, ds, tot;
	if (st_mul_overflow_size((size_t)cols / 32, groups, &blocks) ||
	    st_mul_overflow_size(blocks, 32 * ST_GEMM_TG, &qs) ||
	    st_mul_overflow_size(blocks, ST_GEMM_TG * sizeof(float), &ds) || st_add_overflow_size(qs, ds, &tot) ||
	    st_add_overflow_size(tot, 2 * 64, &tot))
		return -EOVERFLOW;
	*bytes = tot;
	return 0;
}

static void *align64(void *p)
{
	return (void *)(((uintptr_t)p + 63) & ~(uintptr_t)63);
}

void st_gemm_act_init(struct st_gemm_act *g, void *mem, int64_t cols, int64_t n_tokens)
{
	g->nb = cols / 32;
	g->n_groups = (n_tokens + ST_GEMM_TG - 1) / ST_GEMM_TG;
	const size_t blocks = (size_t)g->nb * (size_t)g->n_groups;
	g->qs = align64(mem);
	g->d = align64(g->qs + blocks * 32 * ST_GEMM_TG);
}

void st_gemm_act_pack(struct st_gemm_act *g, const struct st_q8_act *q, int64_t group)
{
	const int64_t nb = g->nb;
	const int64_t t0 = group * ST_GEMM_TG;
	uint8_t *dq = g->qs + (size_t)group * (size_t)nb * 32 * ST_GEMM_TG;
	float *dd = g->d + (size_t)group * (size_t)nb * ST_GEMM_TG;
	for (int j = 0; j < 8; j++) {
		for (int64_t b = j; b < nb; b += 8, dq += 32 * ST_GEMM_TG, dd += ST_GEMM_TG) {
			for (int t = 0; t < ST_GEMM_TG; t++) {
				const int64_t tok = t0 + t;
				if (tok >= q->n_tokens) {
					for (int k = 0; k < 8; k++)
						memset(dq + k * 4 * ST_GEMM_TG + t * 4, 0x80, 4);
					dd[t] = 0.0f;
					continue;
				}
				const int8_t *src = q->qs + ((size_t)tok * (size_t)nb + (size_t)b) * 32;
				for (int k = 0; k < 8; k++) {
					uint32_t v;
					memcpy(&v, src + 4 * k, 4);
					v ^= 0x80808080u;   /* int8 x -> uint8 x + 128 */
					memcpy(dq + k * 4 * ST_GEMM_TG + t * 4, &v, 4);
				}
				dd[t] = q->d[(size_t)tok * (size_t)nb + (size_t)b];
			}
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
