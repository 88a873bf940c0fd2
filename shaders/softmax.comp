#version 450
#extension GL_GOOGLE_include_directive : require
// softmax: dst[t][i] = exp(x[t][i] - max) / sum_j exp(x[t][j] - max).
// One workgroup per token.  Grid: x = 1, y = n_tokens.
#define NEED_REDUCE
#include "common.glsl"

void main()
{
	uint t = gl_WorkGroupID.y;
	uint tid = gl_LocalInvocationID.x;
	if (t >= N_TOKENS)
		return;
	uint xo = pc.off[1] + t * pc.nb1[1];
	uint yo = pc.off[0] + t * pc.nb1[0];
	float m = uintBitsToFloat(0xff800000u);
	bool nan = false;
	for (uint i = tid; i < pc.ne0; i += WG) {
		float v = LD_F32(b1, xo + i * 4u);
		nan = nan || isnan(v);
		m = max(m, v);
	}
	m = wg_max(m);
	// max() may drop a NaN; carry it through explicitly so it reaches dst.
	float poison = wg_sum(nan ? 1.0 : 0.0) > 0.0 ? uintBitsToFloat(0x7fc00000u) : 0.0;
	float s = 0.0;
	for (uint i = tid; i < pc.ne0; i += WG) {
		float e = exp(LD_F32(b1, xo + i * 4u) - m);
		ST_F32(b0, yo + i * 4u, e);
		s += e;
	}
	s = wg_sum(s);
	float inv = 1.0 / s;
	for (uint i = tid; i < pc.ne0; i += WG)
		ST_F32(b0, yo + i * 4u, LD_F32(b0, yo + i * 4u) * inv + poison);
}
