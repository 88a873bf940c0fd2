/* gemm.h: the prompt (many-token) matmul for Q4_0 and Q8_0 weights as a
 * register-blocked GEMM.
 *
 * Decode dots one weight row with a few tokens and reduces each block's
 * products horizontally (quant_dot.h).  For a prompt that reduction costs
 * more than the products.  Here 16 tokens share one 512-bit vector of int32
 * lanes instead, so a block's integer sum builds up in place:
 *   - activations (already quantized to Q8 blocks) are packed once per
 *     matmul into groups of ST_GEMM_TG tokens: for each block, 8 runs of
 *     [16 tokens x 4 consecutive values] (64 bytes), stored as x + 128
 *     (unsigned, what vpdpbusd wants);
 *   - per R rows the kernel unpacks the weights to signed int8 in a small
 *     scratch (Q4_0 nibble - 8, Q8_0 as is) with -128 * sum(w) per block,
 *     and each 4 weight bytes, broadcast, meet one packed activation run:
 *     8 multiply-adds leave sum_j (x_j + 128) w_j for 16 tokens; starting
 *     from -128 * sum(w) makes that the exact block sum isum_b.
 * The floats then follow quant_dot.h's exact rule term by term (two f32
 * multiplies, an add into lane b % 8, the same final tree), with 16 tokens
 * per vector, so the result is bit-identical to the scalar reference and
 * to the decode kernels.  To keep one lane's accumulator in a register the
 * blocks are visited lane by lane (b = j, j+8, ... for j = 0..7); the
 * packed activations are stored in that order ("lane-major") so both
 * operands stream linearly.
 *
 * Q4_K/Q5_K (kquant.h's rule) work the same way per 32-value sub-block j:
 * the unsigned quants (0..31) are the broadcast operand, the sub-block sum
 * starts from -128 * sum(q), is multiplied by the 6-bit scale and added
 * into isum_b; imin_b comes from the packed pairs of activation sums with
 * vpdpwssd against pairs of the 6-bit mins; then the rule's floats. */
#ifndef ST_GEMM_H
#define ST_GEMM_H

#include <stddef.h>
#include <stdint.h>

#include "quant_dot.h"

#define ST_GEMM_TG 16           /* tokens per packed group */
#define ST_GEMM_MIN_TOKENS 10   /* fewer tokens: the decode kernels are faster */

/* Packed activations of n_tokens tokens (the last group zero-padded).
 * Blocks are 32 values (Q8 activations, for Q4_0/Q8_0 weights) or 256
 * (Q8_K activations, for Q4_K/Q5_K weights). */
struct st_gemm_act {
	int64_t nb;          /* blocks per token */
	int64_t bvals;       /* values per block: 32 or 256 */
	int64_t n_groups;    /* groups of ST_GEMM_TG tokens */
	uint8_t *qs;         /* [group][nb lane-major][bvals/4][TG][4]: x + 128 */
	float *d;            /* [group][nb lane-major][TG]: scales (0 for padding) */
	int32_t *bs;         /* 256-blocks only: [group][nb lane-major][4][TG]: int16
			      * pairs (s[2k], s[2k+1]) of the 32-value sums s[j] */
};

/* Bytes of scratch for cols x n_tokens in blocks of bvals (32 or 256;
 * cols % bvals == 0); -EINVAL/-EOVERFLOW on bad sizes, else 0, *bytes set. */
int st_gemm_act_bytes(int64_t cols, int64_t n_tokens, int64_t bvals, size_t *bytes);
/* Lay the arrays out in mem (64-byte aligned, st_gemm_act_bytes big). */
void st_gemm_act_init(struct st_gemm_act *g, void *mem, int64_t cols, int64_t n_tokens, int64_t bvals);
/* Pack group `group` (tokens 16*group .. +15) from q (bvals 32) or qk
 * (bvals 256), which must hold those tokens already quantized; tokens past
 * the last one become zeros. */
void st_gemm_act_pack(struct st_gemm_act *g, const struct st_q8_act *q, int64_t group);
void st_gemm_act_pack_k(struct st_gemm_act *g, const struct st_q8k_act *qk, int64_t group);

/* Lane-major order: blocks b with b % 8 == j are stored from
 * st_gemm_lane_start(nb, j), in increasing b; lane j holds
 * st_gemm_lane_start(nb, j + 1) - st_gemm_lane_start(nb, j) blocks. */
static inline int64_t st_gemm_lane_start(int64_t nb, int j)
{
	const int64_t full = nb / 8, rem = nb % 8;
	return (int64_t)j * full + (j < rem ? j : rem);
}

/* The GEMM kernel for (isa, type) (Q4_0, Q8_0: a->g packed from Q8;
 * Q4_K, Q5_K: from Q8_K), or NULL when there is none (the caller
 * then uses st_mm_kernel).  It is an st_mm_fn reading a->g (not a->q);
 * t0 must be a multiple of ST_GEMM_TG. */
st_mm_fn st_gemm_kernel(enum st_isa isa, uint32_t type);
st_mm_fn st_gemm_kernel_x86(enum st_isa isa, uint32_t type);

/* Tokens per call that keep one call's packed activations in L2. */
int64_t st_gemm_tok_tile(int64_t cols);

#endif
