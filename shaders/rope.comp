#version 450
#extension GL_GOOGLE_include_directive : require
// rope (llama "normal" mode, adjacent pairs): for token t at position
// pos0 + t, in every head, pair (2j, 2j+1) with j < rope_dim/2 rotates by
// angle (pos0 + t) * freq[j]; freq[j] = theta^(-2j/rope_dim) is a table the
// host computed once (params buffer at word pc.aux).  Pairs beyond
// rope_dim/2 are copied.  Reads src0, writes dst (the same tensor when the
// op is in place).  Grid: x = ceil(n_head * head_dim/2 / WG), y = n_tokens.
#include "common.glsl"

void main()
{
	uint t = gl_WorkGroupID.y;
	uint i = gl_GlobalInvocationID.x;
	uint half_hd = pc.head_dim / 2u;
	if (i >= pc.n_head * half_hd || t >= N_TOKENS)
		return;
	uint h = i / half_hd, j = i % half_hd;
	uint e = h * pc.head_dim + 2u * j;
	uint xo = pc.off[1] + t * pc.nb1[1] + e * 4u;
	uint yo = pc.off[0] + t * pc.nb1[0] + e * 4u;
	float x0 = LD_F32(b1, xo), x1 = LD_F32(b1, xo + 4u);
	if (j < pc.rope_dim / 2u) {
		float a = float(POS0 + t) * uintBitsToFloat(params[pc.aux + j]);
		float c = cos(a), s = sin(a);
		float y0 = x0 * c - x1 * s;
		float y1 = x0 * s + x1 * c;
		x0 = y0;
		x1 = y1;
	}
	ST_F32(b0, yo, x0);
	ST_F32(b0, yo + 4u, x1);
}
