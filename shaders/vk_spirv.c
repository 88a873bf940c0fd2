/* vk_spirv.c: the SPIR-V of every kernel variant, compiled by glslang at
 * build time (shaders/meson.build: one custom_target per variant, emitted
 * as a C array with --vn) and embedded here; nothing is read at run time.
 * Keep in step with the variant table in meson.build. */
#include "vk_internal.h"

#include "spv_get_rows_f32.h"
#include "spv_get_rows_f16.h"
#include "spv_get_rows_bf16.h"
#include "spv_get_rows_q8_0.h"
#include "spv_get_rows_q4_0.h"
#include "spv_matmul_f32.h"
#include "spv_matmul_f32_sg.h"
#include "spv_matmul_f16.h"
#include "spv_matmul_f16_sg.h"
#include "spv_matmul_bf16.h"
#include "spv_matmul_bf16_sg.h"
#include "spv_matmul_q8_0.h"
#include "spv_matmul_q8_0_sg.h"
#include "spv_matmul_q4_0.h"
#include "spv_matmul_q4_0_sg.h"
#include "spv_rmsnorm_f32.h"
#include "spv_rmsnorm_f32_sg.h"
#include "spv_rmsnorm_f16.h"
#include "spv_rmsnorm_f16_sg.h"
#include "spv_rmsnorm_bf16.h"
#include "spv_rmsnorm_bf16_sg.h"
#include "spv_softmax.h"
#include "spv_softmax_sg.h"
#include "spv_attn_f32.h"
#include "spv_attn_f32_sg.h"
#include "spv_attn_f16.h"
#include "spv_attn_f16_sg.h"
#include "spv_rope.h"
#include "spv_kv_store_f32.h"
#include "spv_kv_store_f16.h"
#include "spv_add.h"
#include "spv_swiglu.h"
#include "spv_matmul_rows_f32.h"
#include "spv_matmul_rows_f16.h"
#include "spv_matmul_rows_bf16.h"
#include "spv_matmul_rows_q8_0.h"
#include "spv_matmul_rows_q4_0.h"
#include "spv_matmul_rows_f32_xs.h"
#include "spv_matmul_rows_f16_xs.h"
#include "spv_matmul_rows_bf16_xs.h"
#include "spv_matmul_rows_q8_0_xs.h"
#include "spv_matmul_rows_q4_0_xs.h"
#include "spv_matmul_rows_q8_0_xs_tb4.h"
#include "spv_matmul_rows_q4_0_xs_tb4.h"

#define SPV(k, n) [k] = { #n, st_spv_##n, sizeof(st_spv_##n) }
const struct st_vk_spirv st_vk_spirv_table[ST_VK_KERNEL_COUNT] = {
	SPV(ST_VK_GET_ROWS_F32, get_rows_f32),
	SPV(ST_VK_GET_ROWS_F16, get_rows_f16),
	SPV(ST_VK_GET_ROWS_BF16, get_rows_bf16),
	SPV(ST_VK_GET_ROWS_Q8_0, get_rows_q8_0),
	SPV(ST_VK_GET_ROWS_Q4_0, get_rows_q4_0),
	SPV(ST_VK_MATMUL_F32, matmul_f32),
	SPV(ST_VK_MATMUL_F32_SG, matmul_f32_sg),
	SPV(ST_VK_MATMUL_F16, matmul_f16),
	SPV(ST_VK_MATMUL_F16_SG, matmul_f16_sg),
	SPV(ST_VK_MATMUL_BF16, matmul_bf16),
	SPV(ST_VK_MATMUL_BF16_SG, matmul_bf16_sg),
	SPV(ST_VK_MATMUL_Q8_0, matmul_q8_0),
	SPV(ST_VK_MATMUL_Q8_0_SG, matmul_q8_0_sg),
	SPV(ST_VK_MATMUL_Q4_0, matmul_q4_0),
	SPV(ST_VK_MATMUL_Q4_0_SG, matmul_q4_0_sg),
	SPV(ST_VK_RMSNORM_F32, rmsnorm_f32),
	SPV(ST_VK_RMSNORM_F32_SG, rmsnorm_f32_sg),
	SPV(ST_VK_RMSNORM_F16, rmsnorm_f16),
	SPV(ST_VK_RMSNORM_F16_SG, rmsnorm_f16_sg),
	SPV(ST_VK_RMSNORM_BF16, rmsnorm_bf16),
	SPV(ST_VK_RMSNORM_BF16_SG, rmsnorm_bf16_sg),
	SPV(ST_VK_SOFTMAX, softmax),
	SPV(ST_VK_SOFTMAX_SG, softmax_sg),
	SPV(ST_VK_ATTN_F32, attn_f32),
	SPV(ST_VK_ATTN_F32_SG, attn_f32_sg),
	SPV(ST_VK_ATTN_F16, attn_f16),
	SPV(ST_VK_ATTN_F16_SG, attn_f16_sg),
	SPV(ST_VK_ROPE, rope),
	SPV(ST_VK_KV_STORE_F32, kv_store_f32),
	SPV(ST_VK_KV_STORE_F16, kv_store_f16),
	SPV(ST_VK_ADD, add),
	SPV(ST_VK_SWIGLU, swiglu),
	SPV(ST_VK_MATMUL_ROWS_F32, matmul_rows_f32),
	SPV(ST_VK_MATMUL_ROWS_F16, matmul_rows_f16),
	SPV(ST_VK_MATMUL_ROWS_BF16, matmul_rows_bf16),
	SPV(ST_VK_MATMUL_ROWS_Q8_0, matmul_rows_q8_0),
	SPV(ST_VK_MATMUL_ROWS_Q4_0, matmul_rows_q4_0),
	SPV(ST_VK_MATMUL_ROWS_F32_XS, matmul_rows_f32_xs),
	SPV(ST_VK_MATMUL_ROWS_F16_XS, matmul_rows_f16_xs),
	SPV(ST_VK_MATMUL_ROWS_BF16_XS, matmul_rows_bf16_xs),
	SPV(ST_VK_MATMUL_ROWS_Q8_0_XS, matmul_rows_q8_0_xs),
	SPV(ST_VK_MATMUL_ROWS_Q4_0_XS, matmul_rows_q4_0_xs),
	SPV(ST_VK_MATMUL_ROWS_Q8_0_XS_TB4, matmul_rows_q8_0_xs_tb4),
	SPV(ST_VK_MATMUL_ROWS_Q4_0_XS_TB4, matmul_rows_q4_0_xs_tb4),
};
