/* cpu_kernels.c: the CPU backend's matmul and attention.  For now the
 * scalar reference kernels; SIMD/threaded versions replace this file. */
#include "cpu_kernels.h"

#include "ops_ref.h"

int st_cpu_matmul(uint32_t type, const void *W, int64_t rows, int64_t cols, size_t nb_w,
		  const float *x, int64_t ldx, int64_t n_tokens, float *y, int64_t ldy)
{
	st_ref_matmul(type, W, rows, cols, nb_w, x, ldx, n_tokens, y, ldy);
	return 0;
}

int st_cpu_attn(const float *q, int64_t ldq, const void *k, const void *v, uint32_t cache_type,
		size_t nb_kv, float *out, int64_t ldo, int64_t n_tokens, int64_t pos0,
		uint32_t n_head, uint32_t n_head_kv, uint32_t head_dim, float scale)
{
	return st_ref_attn(q, ldq, k, v, cache_type, nb_kv, out, ldo, n_tokens, pos0, n_head,
			   n_head_kv, head_dim, scale);
}
