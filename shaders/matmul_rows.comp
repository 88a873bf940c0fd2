#version 450
#extension GL_GOOGLE_include_directive : require
// matmul, one weight row per invocation: dst[t][r] = sum_c W[r][c] * x[t][c]
// for TB tokens at a time, with no reduction and no barrier.  Chosen for
// CPU Vulkan drivers (lavapipe), where a workgroup runs as SIMD lanes on
// one core: every lane walks its own row, x reads are the same address in
// every lane, and quantized blocks are read as whole 32-bit words (5 for
// q4_0, 9 for q8_0) instead of 16-bit pieces.  GPUs use matmul.comp
// (a workgroup per row with a subgroup reduction).
// Grid: x = min(ceil(rows / WG), 32768), y = ceil(n_tokens / TB),
// z = ceil(ceil(rows / WG) / 32768).
#include "common.glsl"
#include "wtype.glsl"

#define TB 4u

void main()
{
	uint r = (gl_WorkGroupID.x + gl_WorkGroupID.z * 32768u) * WG + gl_LocalInvocationID.x;
	uint t0 = gl_WorkGroupID.y * TB;
	if (r >= pc.ne1 || t0 >= N_TOKENS)
		return;
	uint nt = min(TB, N_TOKENS - t0);
	uint ro = pc.off[1] + r * pc.nb1[1];
	uint xo = pc.off[2] + t0 * pc.nb1[2];
	float acc[TB];
	[[unroll]] for (uint t = 0; t < TB; t++)
		acc[t] = 0.0;
#ifdef W_QUANT
	uint nb = pc.k / 32u;
	for (uint b = 0; b < nb; b++) {
		uint bo = ro + b * W_BLOCK_BYTES;
		uint wi = bo >> 2;
		bool hi = (bo & 2u) != 0u;
		uint w0 = b1[wi];
		float d = f16_to_f32(hi ? (w0 >> 16) : (w0 & 0xffffu));
		float w[32];
#if defined(W_Q4_0)
		uint prev = w0;
		[[unroll]] for (uint i = 0; i < 4u; i++) {
			uint nx = b1[wi + 1u + i];
			uint q = hi ? nx : ((prev >> 16) | (nx << 16));
			prev = nx;
			[[unroll]] for (uint k = 0; k < 4u; k++) {
				uint by = (q >> (8u * k)) & 0xffu;
				w[4u * i + k] = float(int(by & 15u) - 8) * d;
				w[4u * i + k + 16u] = float(int(by >> 4) - 8) * d;
			}
		}
#else
		uint prev = w0;
		[[unroll]] for (uint i = 0; i < 8u; i++) {
			uint nx = b1[wi + 1u + i];
			uint q = hi ? nx : ((prev >> 16) | (nx << 16));
			prev = nx;
			[[unroll]] for (uint k = 0; k < 4u; k++)
				w[4u * i + k] = float(bitfieldExtract(int(q), int(8u * k), 8)) * d;
		}
#endif
		[[unroll]] for (uint t = 0; t < TB; t++) {
			if (t < nt) {
				uint xb = xo + t * pc.nb1[2] + b * 128u;
				float s = 0.0;
				[[unroll]] for (uint j = 0; j < 32u; j++)
					s += w[j] * LD_F32(b2, xb + j * 4u);
				acc[t] += s;
			}
		}
	}
#else
	for (uint c = 0; c < pc.k; c++) {
		float w = w_get(ro, c);
		[[unroll]] for (uint t = 0; t < TB; t++)
			if (t < nt)
				acc[t] += w * LD_F32(b2, xo + t * pc.nb1[2] + c * 4u);
	}
#endif
	[[unroll]] for (uint t = 0; t < TB; t++)
		if (t < nt)
			ST_F32(b0, pc.off[0] + (t0 + t) * pc.nb1[0] + r * 4u, acc[t]);
}
