#version 450
#extension GL_GOOGLE_include_directive : require
// matmul, one weight row per invocation: dst[t][r] = sum_c W[r][c] * x[t][c],
// with no reduction and no barrier.  Chosen for
// CPU Vulkan drivers (lavapipe), where a workgroup runs as SIMD lanes on
// one core: every lane walks its own row, x reads are the same address in
// every lane, and quantized blocks are read as whole 32-bit words (5 for
// q4_0, 9 for q8_0) instead of 16-bit pieces.  GPUs use matmul.comp
// (a workgroup per row with a subgroup reduction).
// Grid: x = min(ceil(rows / WG), 32768), y = n_tokens,
// z = ceil(ceil(rows / WG) / 32768).
#include "common.glsl"
#include "wtype.glsl"

#ifdef X_VEC4
// -DX_VEC4 (q4_0/q8_0, x rows 16-byte aligned): x read as vec4, four
// products per dot(); about 1.5-2x faster on llvmpipe than scalar loads.
layout(std430, binding = 2) readonly buffer Src1v { vec4 b2v[]; };
#endif

// One token per invocation (grid y = n_tokens): on llvmpipe, token blocking
// with per-token accumulator arrays measured 2-4x slower than re-reading
// the row per token, even for prefill.

void main()
{
	uint r = (gl_WorkGroupID.x + gl_WorkGroupID.z * 32768u) * WG + gl_LocalInvocationID.x;
	uint t = gl_WorkGroupID.y;
	if (r >= pc.ne1 || t >= N_TOKENS)
		return;
	uint ro = pc.off[1] + r * pc.nb1[1];
	uint xo = pc.off[2] + t * pc.nb1[2];
	float acc = 0.0;
#ifdef W_QUANT
	uint nb = pc.k / 32u;
	for (uint b = 0; b < nb; b++) {
		uint bo = ro + b * W_BLOCK_BYTES;
		uint wi = bo >> 2;
		bool hi = (bo & 2u) != 0u;
		uint w0 = b1[wi];
		float d = f16_to_f32(hi ? (w0 >> 16) : (w0 & 0xffffu));
		uint xb = xo + b * 128u;
		float s = 0.0;
		uint prev = w0;
#if defined(W_Q4_0)
		[[unroll]] for (uint i = 0; i < 4u; i++) {
			uint nx = b1[wi + 1u + i];
			uint q = hi ? nx : ((prev >> 16) | (nx << 16));
			prev = nx;
#ifdef X_VEC4
			vec4 xl = b2v[(xb >> 4) + i], xh = b2v[(xb >> 4) + i + 4u];
			vec4 lo = vec4(ivec4(q & 15u, (q >> 8) & 15u, (q >> 16) & 15u, (q >> 24) & 15u) - 8);
			vec4 hv = vec4(ivec4((q >> 4) & 15u, (q >> 12) & 15u, (q >> 20) & 15u, q >> 28) - 8);
			s += dot(lo, xl) + dot(hv, xh);
#else
			[[unroll]] for (uint k = 0; k < 4u; k++) {
				uint by = q >> (8u * k);
				s += float(int(by & 15u) - 8) * LD_F32(b2, xb + (4u * i + k) * 4u);
				s += float(int((by >> 4) & 15u) - 8) * LD_F32(b2, xb + (4u * i + k + 16u) * 4u);
			}
#endif
		}
#else
		[[unroll]] for (uint i = 0; i < 8u; i++) {
			uint nx = b1[wi + 1u + i];
			uint q = hi ? nx : ((prev >> 16) | (nx << 16));
			prev = nx;
#ifdef X_VEC4
			vec4 qv = vec4(bitfieldExtract(int(q), 0, 8), bitfieldExtract(int(q), 8, 8),
				       bitfieldExtract(int(q), 16, 8), bitfieldExtract(int(q), 24, 8));
			s += dot(qv, b2v[(xb >> 4) + i]);
#else
			[[unroll]] for (uint k = 0; k < 4u; k++)
				s += float(bitfieldExtract(int(q), int(8u * k), 8)) * LD_F32(b2, xb + (4u * i + k) * 4u);
#endif
		}
#endif
		acc += d * s;
	}
#else
	for (uint c = 0; c < pc.k; c++)
		acc += w_get(ro, c) * LD_F32(b2, xo + c * 4u);
#endif
	ST_F32(b0, pc.off[0] + t * pc.nb1[0] + r * 4u, acc);
}
