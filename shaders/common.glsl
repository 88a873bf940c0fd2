// common.glsl: bindings, push constants and helpers shared by every kernel.
//
// Every tensor is bound as a raw array of 32-bit words (binding 0 = dst,
// 1..3 = src0..src2) at a 16-byte aligned descriptor offset; the push
// constants carry the residual byte offset and row stride of each one, so
// types whose rows or blocks are not 4-byte aligned (f16, bf16, q4_0: 18-byte
// blocks, q8_0: 34-byte blocks) are read with byte addressing.  Binding 4 is
// the graph's host-visible params buffer: n_tokens and pos0 of the current
// run (rewritten by the host before each replay of the recorded command
// buffer), the indirect dispatch sizes, and per-op constant tables.
//
// Mirrored in C by struct st_vk_push (vk_internal.h, _Static_assert on size).
#extension GL_EXT_control_flow_attributes : enable
#ifdef USE_SUBGROUP
#extension GL_KHR_shader_subgroup_basic : enable
#extension GL_KHR_shader_subgroup_arithmetic : enable
#endif

layout(constant_id = 0) const uint WG = 64;
layout(local_size_x_id = 0) in;

layout(push_constant) uniform Push {
	uint off[4];      // byte offset of dst, src0, src1, src2 inside their binding
	uint nb1[4];      // row strides in bytes
	uint ne0;         // dst row length (elements)
	uint ne1;         // rows of the op's main operand (matmul: weight rows)
	uint k;           // source row length (matmul inner dimension)
	uint n_head;
	uint n_head_kv;
	uint head_dim;
	uint rope_dim;
	float eps;
	float scale;
	uint aux;         // word offset of this op's table in the params buffer
	uint src_rows;    // rows of src0 (get_rows bound, kv cache capacity)
	uint ids_stride;  // byte stride between token ids
} pc;

layout(std430, binding = 0) buffer Dst { uint b0[]; };
layout(std430, binding = 1) buffer Src0 { uint b1[]; };
layout(std430, binding = 2) readonly buffer Src1 { uint b2[]; };
layout(std430, binding = 3) readonly buffer Src2 { uint b3[]; };
layout(std430, binding = 4) readonly buffer Params { uint params[]; };

#define N_TOKENS (params[0])
#define POS0 (params[1])

#define LD_F32(B, o) uintBitsToFloat(B[(o) >> 2])
#define ST_F32(B, o, v) B[(o) >> 2] = floatBitsToUint(v)
#define LD_U16(B, o) ((B[(o) >> 2] >> (((o) & 2u) * 8u)) & 0xffffu)
#define LD_U8(B, o) ((B[(o) >> 2] >> (((o) & 3u) * 8u)) & 0xffu)

float f16_to_f32(uint h) { return unpackHalf2x16(h).x; }
float bf16_to_f32(uint h) { return uintBitsToFloat(h << 16); }

// float -> binary16, round to nearest even (bit exact with st_fp32_to_fp16
// on every driver, whatever its packHalf2x16 rounding is).
uint f32_to_f16(float f)
{
	uint x = floatBitsToUint(f);
	uint sign = (x >> 16) & 0x8000u;
	uint ax = x & 0x7fffffffu;
	if (ax > 0x7f800000u)
		return sign | 0x7e00u;
	if (ax >= 0x477ff000u)
		return sign | 0x7c00u;
	if (ax < 0x38800000u)
		return sign | uint(roundEven(uintBitsToFloat(ax) * 16777216.0));
	uint e = ax - 0x38000000u;
	return sign | ((e + 0xfffu + ((e >> 13) & 1u)) >> 13);
}

#ifdef NEED_REDUCE
shared float red[WG];

float wg_sum(float v)
{
#ifdef USE_SUBGROUP
	v = subgroupAdd(v);
	if (subgroupElect())
		red[gl_SubgroupID] = v;
	barrier();
	float s = 0.0;
	for (uint i = 0; i < gl_NumSubgroups; i++)
		s += red[i];
	barrier();
	return s;
#else
	uint tid = gl_LocalInvocationID.x;
	red[tid] = v;
	barrier();
	for (uint s = WG / 2; s > 0; s >>= 1) {
		if (tid < s)
			red[tid] += red[tid + s];
		barrier();
	}
	float r = red[0];
	barrier();
	return r;
#endif
}

float wg_max(float v)
{
#ifdef USE_SUBGROUP
	v = subgroupMax(v);
	if (subgroupElect())
		red[gl_SubgroupID] = v;
	barrier();
	float s = red[0];
	for (uint i = 1; i < gl_NumSubgroups; i++)
		s = max(s, red[i]);
	barrier();
	return s;
#else
	uint tid = gl_LocalInvocationID.x;
	red[tid] = v;
	barrier();
	for (uint s = WG / 2; s > 0; s >>= 1) {
		if (tid < s)
			red[tid] = max(red[tid], red[tid + s]);
		barrier();
	}
	float r = red[0];
	barrier();
	return r;
#endif
}
#endif
