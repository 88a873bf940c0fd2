/* simd_arm.c: NEON kernels for aarch64 (placeholder until the NEON paths
 * land: no kernels, callers fall back to the scalar path). */
#include "quant_dot.h"

st_mm_fn st_mm_kernel_arm(enum st_isa isa, uint32_t type)
{
	(void)isa;
	(void)type;
	return NULL;
}

bool st_vec_ops_arm(enum st_isa isa, st_vec_dot_fn *dot, st_vec_axpy_fn *axpy)
{
	(void)isa;
	(void)dot;
	(void)axpy;
	return false;
}
