#version 450
#extension GL_GOOGLE_include_directive : require
// matmul: dst[t][r] = sum_c W[r][c] * x[t][c]; W = src0 (weight type by
// define), x = src1 (f32).  One workgroup per weight row and per TB tokens:
// each invocation strides over the row (a block at a time for quantized
// types), dequantizes once and multiplies into TB token accumulators, then
// the workgroup reduces (subgroupAdd where available).
// Grid: x = min(rows, 32768), y = ceil(n_tokens / TB), z = ceil(rows / 32768).
#define NEED_REDUCE
#include "common.glsl"
#include "wtype.glsl"

#define TB 4u

void main()
{
	uint r = gl_WorkGroupID.x + gl_WorkGroupID.z * 32768u;
	uint t0 = gl_WorkGroupID.y * TB;
	uint tid = gl_LocalInvocationID.x;
	if (r >= pc.ne1 || t0 >= N_TOKENS)
		return;   // uniform over the workgroup
	uint nt = min(TB, N_TOKENS - t0);
	uint ro = pc.off[1] + r * pc.nb1[1];
	uint xo = pc.off[2] + t0 * pc.nb1[2];
	float acc[TB];
	[[unroll]] for (uint t = 0; t < TB; t++)
		acc[t] = 0.0;
#ifdef W_QUANT
	uint nb = pc.k / 32u;
	for (uint b = tid; b < nb; b += WG) {
		float w[32];
		w_block(ro, b, w);
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
	for (uint c = tid; c < pc.k; c += WG) {
		float w = w_get(ro, c);
		[[unroll]] for (uint t = 0; t < TB; t++)
			if (t < nt)
				acc[t] += w * LD_F32(b2, xo + t * pc.nb1[2] + c * 4u);
	}
#endif
	[[unroll]] for (uint t = 0; t < TB; t++) {
		if (t < nt) {   // nt is uniform: every invocation reduces the same count
			float s = wg_sum(acc[t]);
			if (tid == 0u)
				ST_F32(b0, pc.off[0] + (t0 + t) * pc.nb1[0] + r * 4u, s);
		}
	}
}
