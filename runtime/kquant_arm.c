/* kquant_arm.c: integer sums of the K-quant dot products (kquant.h) for
 * NEON.  Not written yet: on aarch64 the K-quants use the scalar integer
 * sums (same bits, slower). */
#include "kquant.h"

st_kq_isum_fn st_kq_isum_kernel_arm(enum st_isa isa, uint32_t type)
{
	(void)isa;
	(void)type;
	return NULL;
}
