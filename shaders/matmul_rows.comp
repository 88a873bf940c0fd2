#version 450
#extension GL_GOOGLE_include_directive : require
// matmul, one weight row per invocation: dst[t][r] = sum_c W[r][c] * x[t][c],
// with no reduction and no barrier.  Chosen for CPU Vulkan drivers
// (lavapipe), where a workgroup runs as SIMD lanes on one core; GPUs use
// matmul.comp (a workgroup per row with a subgroup reduction).
//
// Variants:
//   plain        any alignment: x read element by element, weights by w_get
//                or, for q4_0/q8_0, as whole 32-bit words (5 per q4_0
//                block, 9 per q8_0 block) instead of 16-bit pieces.
//   -DX_SHARE    x rows 16-byte aligned, k a multiple of 32, subgroups of
//                >= 8 with shuffle: per 32-element block each lane loads one
//                vec4 of x and subgroupShuffle hands the block to every lane
//                (llvmpipe turns an x load that is the same in every lane into
//                a gather per lane: sharing it is ~4x faster), four products
//                per dot().  f16/bf16 weights read two per word (rows 4-byte
//                aligned).
// One token per invocation: blocking 4 tokens per invocation (unpacking a
// block once for 4 tokens) measured no faster on llvmpipe, where the x
// shuffles and dots, not the weight reads, are the cost.
// Grid: x = min(ceil(rows / WG), 32768), y = n_tokens,
// z = ceil(ceil(rows / WG) / 32768).
#include "common.glsl"
#include "wtype.glsl"

#ifdef X_SHARE
#extension GL_KHR_shader_subgroup_basic : enable
#extension GL_KHR_shader_subgroup_shuffle : enable
layout(std430, binding = 2) readonly buffer Src1v { vec4 b2v[]; };
#define NT 1u
#endif

#if defined(W_QUANT) && !defined(W_DEQ32)
// Block b of the row at ro: scale and the 32-bit words of its quants,
// realigned (blocks are only 2-byte aligned).
float load_block(uint ro, uint b, out uint q[8])
{
	uint bo = ro + b * W_BLOCK_BYTES;
	uint wi = bo >> 2;
	bool hi = (bo & 2u) != 0u;
	uint w0 = b1[wi];
	uint prev = w0;
	[[unroll]] for (uint i = 0; i < W_BLOCK / 4u * (W_BLOCK_BYTES - 2u) / 32u; i++) {
		uint nx = b1[wi + 1u + i];
		q[i] = hi ? nx : ((prev >> 16) | (nx << 16));
		prev = nx;
	}
	return f16_to_f32(hi ? (w0 >> 16) : (w0 & 0xffffu));
}
#endif

#ifdef X_SHARE
void main()
{
	uint row0 = (gl_WorkGroupID.x + gl_WorkGroupID.z * 32768u) * WG;
	uint r = row0 + gl_LocalInvocationID.x;
	uint t0 = gl_WorkGroupID.y;
	if (row0 >= pc.ne1 || t0 >= N_TOKENS)
		return;   // uniform: every lane of a subgroup stays for the shuffles
	bool live = r < pc.ne1;
	r = min(r, pc.ne1 - 1u);
	uint lane = gl_SubgroupInvocationID & 7u;
	uint ro = pc.off[1] + r * pc.nb1[1];
	uint xv = ((pc.off[2] + t0 * pc.nb1[2]) >> 4) + lane, xs = pc.nb1[2] >> 4;   // in vec4
	float acc[NT];
	[[unroll]] for (uint t = 0; t < NT; t++)
		acc[t] = 0.0;
	uint nb = pc.k / 32u;
	for (uint b = 0; b < nb; b++) {
		vec4 xm[NT];   // lane l: x[t][32b + 4l .. 32b + 4l + 3]
		[[unroll]] for (uint t = 0; t < NT; t++)
			xm[t] = b2v[xv + t * xs + b * 8u];
#if defined(W_Q4_0)
		uint q[8];
		float d = load_block(ro, b, q), s[NT];
		[[unroll]] for (uint t = 0; t < NT; t++)
			s[t] = 0.0;
		[[unroll]] for (uint i = 0; i < 4u; i++) {
			uint w = q[i];
			vec4 lo = vec4(ivec4(w & 15u, (w >> 8) & 15u, (w >> 16) & 15u, (w >> 24) & 15u) - 8);
			vec4 hv = vec4(ivec4((w >> 4) & 15u, (w >> 12) & 15u, (w >> 20) & 15u, w >> 28) - 8);
			[[unroll]] for (uint t = 0; t < NT; t++)
				s[t] += dot(lo, subgroupShuffle(xm[t], i)) + dot(hv, subgroupShuffle(xm[t], i + 4u));
		}
		[[unroll]] for (uint t = 0; t < NT; t++)
			acc[t] += d * s[t];
#elif defined(W_Q8_0)
		uint q[8];
		float d = load_block(ro, b, q), s[NT];
		[[unroll]] for (uint t = 0; t < NT; t++)
			s[t] = 0.0;
		[[unroll]] for (uint i = 0; i < 8u; i++) {
			int w = int(q[i]);
			vec4 qv = vec4(bitfieldExtract(w, 0, 8), bitfieldExtract(w, 8, 8), bitfieldExtract(w, 16, 8),
				       bitfieldExtract(w, 24, 8));
			[[unroll]] for (uint t = 0; t < NT; t++)
				s[t] += dot(qv, subgroupShuffle(xm[t], i));
		}
		[[unroll]] for (uint t = 0; t < NT; t++)
			acc[t] += d * s[t];
#elif defined(W_DEQ32)   // (sub-)block b of 32, dequantized by wtype.glsl
		float w[32];
		w_block(ro, b, w);
		[[unroll]] for (uint i = 0; i < 8u; i++) {
			vec4 wv = vec4(w[4u * i], w[4u * i + 1u], w[4u * i + 2u], w[4u * i + 3u]);
			[[unroll]] for (uint t = 0; t < NT; t++)
				acc[t] += dot(wv, subgroupShuffle(xm[t], i));
		}
#elif defined(W_F32)
		uint wo = (ro >> 2) + b * 32u;
		[[unroll]] for (uint i = 0; i < 8u; i++) {
			vec4 wv = vec4(uintBitsToFloat(b1[wo + 4u * i]), uintBitsToFloat(b1[wo + 4u * i + 1u]),
				       uintBitsToFloat(b1[wo + 4u * i + 2u]), uintBitsToFloat(b1[wo + 4u * i + 3u]));
			[[unroll]] for (uint t = 0; t < NT; t++)
				acc[t] += dot(wv, subgroupShuffle(xm[t], i));
		}
#else   // f16 / bf16: two per word, rows 4-byte aligned
		uint wo = (ro >> 2) + b * 16u;
		[[unroll]] for (uint i = 0; i < 8u; i++) {
			uint a = b1[wo + 2u * i], c = b1[wo + 2u * i + 1u];
#if defined(W_F16)
			vec4 wv = vec4(unpackHalf2x16(a), unpackHalf2x16(c));
#else
			vec4 wv = vec4(uintBitsToFloat(a << 16), uintBitsToFloat(a & 0xffff0000u),
				       uintBitsToFloat(c << 16), uintBitsToFloat(c & 0xffff0000u));
#endif
			[[unroll]] for (uint t = 0; t < NT; t++)
				acc[t] += dot(wv, subgroupShuffle(xm[t], i));
		}
#endif
	}
	if (live) {
		uint yo = pc.off[0] + t0 * pc.nb1[0] + r * 4u;
		[[unroll]] for (uint t = 0; t < NT; t++)
			ST_F32(b0, yo + t * pc.nb1[0], acc[t]);
	}
}
#else
void main()
{
	uint r = (gl_WorkGroupID.x + gl_WorkGroupID.z * 32768u) * WG + gl_LocalInvocationID.x;
	uint t = gl_WorkGroupID.y;
	if (r >= pc.ne1 || t >= N_TOKENS)
		return;
	uint ro = pc.off[1] + r * pc.nb1[1];
	uint xo = pc.off[2] + t * pc.nb1[2];
	float acc = 0.0;
#if defined(W_DEQ32)   // (sub-)blocks of 32, dequantized by wtype.glsl
	for (uint b = 0; b < pc.k / 32u; b++) {
		float w[32];
		w_block(ro, b, w);
		uint xb = xo + b * 128u;
		[[unroll]] for (uint j = 0; j < 32u; j++)
			acc += w[j] * LD_F32(b2, xb + j * 4u);
	}
#elif defined(W_QUANT)
	uint nb = pc.k / 32u;
	for (uint b = 0; b < nb; b++) {
		uint q[8];
		float d = load_block(ro, b, q);
		uint xb = xo + b * 128u;
		float s = 0.0;
#if defined(W_Q4_0)
		[[unroll]] for (uint i = 0; i < 4u; i++)
			[[unroll]] for (uint k = 0; k < 4u; k++) {
				uint by = q[i] >> (8u * k);
				s += float(int(by & 15u) - 8) * LD_F32(b2, xb + (4u * i + k) * 4u);
				s += float(int((by >> 4) & 15u) - 8) * LD_F32(b2, xb + (4u * i + k + 16u) * 4u);
			}
#else
		[[unroll]] for (uint i = 0; i < 8u; i++)
			[[unroll]] for (uint k = 0; k < 4u; k++)
				s += float(bitfieldExtract(int(q[i]), int(8u * k), 8)) * LD_F32(b2, xb + (4u * i + k) * 4u);
#endif
		acc += d * s;
	}
#else
	for (uint c = 0; c < pc.k; c++)
		acc += w_get(ro, c) * LD_F32(b2, xo + c * 4u);
#endif
	ST_F32(b0, pc.off[0] + t * pc.nb1[0] + r * 4u, acc);
}
#endif
