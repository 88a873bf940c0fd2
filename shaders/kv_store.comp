#version 450
#extension GL_GOOGLE_include_directive : require
// kv_store: dst row pos0 + t = src0 row t (f32), converted to the cache
// type: f32, or f16 with -DKV_F16 (round to nearest even).  Each invocation
// owns a pair of elements; f16 halves are merged into their 32-bit words
// with atomicAnd/atomicOr, so rows need only 2-byte alignment and a word
// shared with a neighbour (odd row length, odd offset) is never torn.
// Grid: x = ceil(ne0/2 / WG), y = n_tokens.
#include "common.glsl"

void main()
{
	uint t = gl_WorkGroupID.y;
	uint i = gl_GlobalInvocationID.x * 2u;
	if (i >= pc.ne0 || t >= N_TOKENS)
		return;
	uint xo = pc.off[1] + t * pc.nb1[1] + i * 4u;
	uint row = POS0 + t;
	float a = LD_F32(b1, xo);
	float b = i + 1u < pc.ne0 ? LD_F32(b1, xo + 4u) : 0.0;
#ifdef KV_F16
	uint yo = pc.off[0] + row * pc.nb1[0] + i * 2u;
	if ((yo & 2u) == 0u && i + 1u < pc.ne0) {
		b0[yo >> 2] = f32_to_f16(a) | (f32_to_f16(b) << 16);
	} else {
		for (uint j = 0; j < 2u && i + j < pc.ne0; j++) {
			uint o = yo + 2u * j, sh = (o & 2u) * 8u;
			atomicAnd(b0[o >> 2], ~(0xffffu << sh));
			atomicOr(b0[o >> 2], f32_to_f16(j == 0u ? a : b) << sh);
		}
	}
#else
	uint yo = pc.off[0] + row * pc.nb1[0] + i * 4u;
	ST_F32(b0, yo, a);
	if (i + 1u < pc.ne0)
		ST_F32(b0, yo + 4u, b);
#endif
}
