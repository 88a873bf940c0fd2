/* vk_kquant.c: which compiled kernel serves a K-quant (Q4_K/Q5_K/Q6_K) or
 * Q4_1/Q5_0/Q5_1 weight type (the variants are built by shaders/meson.build
 * from the same .comp files with -DW_<type>; wtype.glsl decodes them). */
#include "vk_internal.h"

#include "types.h"

int st_vk_kq_kernel(enum st_vk_kernel q4, uint32_t type, enum st_vk_kernel *k)
{
	/* family (its q4_0 kernel) -> its q4_K and q4_1 kernels and the
	 * distance between types */
	static const struct { enum st_vk_kernel q4, kbase, lbase; int stride; } fam[] = {
		{ ST_VK_GET_ROWS_Q4_0, ST_VK_GET_ROWS_Q4_K, ST_VK_GET_ROWS_Q4_1, 1 },
		{ ST_VK_MATMUL_Q4_0, ST_VK_MATMUL_Q4_K, ST_VK_MATMUL_Q4_1, 2 },   /* each followed by its _SG */
		{ ST_VK_MATMUL_ROWS_Q4_0, ST_VK_MATMUL_ROWS_Q4_K, ST_VK_MATMUL_ROWS_Q4_1, 1 },
		{ ST_VK_MATMUL_ROWS_Q4_0_XS, ST_VK_MATMUL_ROWS_Q4_K_XS, ST_VK_MATMUL_ROWS_Q4_1_XS, 1 },
	};
	int t = type == ST_TYPE_Q4_K ? 0 : type == ST_TYPE_Q5_K ? 1 : type == ST_TYPE_Q6_K ? 2 : -1;
	int l = type == ST_TYPE_Q4_1 ? 0 : type == ST_TYPE_Q5_0 ? 1 : type == ST_TYPE_Q5_1 ? 2 : -1;
	if (t < 0 && l < 0)
		return -1;
	for (size_t i = 0; i < sizeof(fam) / sizeof(fam[0]); i++) {
		if (fam[i].q4 == q4) {
			*k = (enum st_vk_kernel)(t >= 0 ? fam[i].kbase + t * fam[i].stride : fam[i].lbase + l * fam[i].stride);
			return 0;
		}
	}
	return -1;
}
