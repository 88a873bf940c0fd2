#version 450
#extension GL_GOOGLE_include_directive : require
// rmsnorm: dst[t][i] = x[t][i] / sqrt(mean_i(x[t][i]^2) + eps) * w[i];
// x = src0 (f32), w = src1: one row of f32, f16 or bf16 (-DNW_F32, -DNW_F16,
// -DNW_BF16).  One workgroup per token; the product is formed as
// float(x * s) * w like the reference.
// Grid: x = 1, y = n_tokens.
#define NEED_REDUCE
#include "common.glsl"

float norm_w(uint i)
{
#if defined(NW_F16)
	return f16_to_f32(LD_U16(b2, pc.off[2] + i * 2u));
#elif defined(NW_BF16)
	return bf16_to_f32(LD_U16(b2, pc.off[2] + i * 2u));
#else
	return LD_F32(b2, pc.off[2] + i * 4u);
#endif
}

void main()
{
	uint t = gl_WorkGroupID.y;
	uint tid = gl_LocalInvocationID.x;
	if (t >= N_TOKENS)
		return;
	uint xo = pc.off[1] + t * pc.nb1[1];
	uint yo = pc.off[0] + t * pc.nb1[0];
	float ss = 0.0;
	for (uint i = tid; i < pc.ne0; i += WG) {
		float v = LD_F32(b1, xo + i * 4u);
		ss += v * v;
	}
	ss = wg_sum(ss);
	float s = 1.0 / sqrt(ss / float(pc.ne0) + pc.eps);
	for (uint i = tid; i < pc.ne0; i += WG)
		ST_F32(b0, yo + i * 4u, (LD_F32(b1, xo + i * 4u) * s) * norm_w(i));
}
