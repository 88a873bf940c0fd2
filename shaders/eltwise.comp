#version 450
#extension GL_GOOGLE_include_directive : require
// Elementwise ops on f32 rows, chosen by define:
//   OP_ADD:    dst = src0 + src1
//   OP_SWIGLU: dst = silu(src0) * src1, silu(x) = x / (1 + exp(-x))
// Grid: x = ceil(ne0 / WG), y = n_tokens.
#include "common.glsl"

void main()
{
	uint t = gl_WorkGroupID.y;
	uint i = gl_GlobalInvocationID.x;
	if (i >= pc.ne0 || t >= N_TOKENS)
		return;
	float a = LD_F32(b1, pc.off[1] + t * pc.nb1[1] + i * 4u);
	float b = LD_F32(b2, pc.off[2] + t * pc.nb1[2] + i * 4u);
#if defined(OP_ADD)
	float v = a + b;
#elif defined(OP_SWIGLU)
	float v = a / (1.0 + exp(-a)) * b;
#else
#error "no op"
#endif
	ST_F32(b0, pc.off[0] + t * pc.nb1[0] + i * 4u, v);
}
