#version 450
#extension GL_GOOGLE_include_directive : require
// get_rows: dst[t][e] = float(src0[ids[t]][e]); ids (src1) are int32.
// Grid: x = ceil(ne0 / WG), y = n_tokens.
#include "common.glsl"
#include "wtype.glsl"

void main()
{
	uint t = gl_WorkGroupID.y;
	uint e = gl_GlobalInvocationID.x;
	if (e >= pc.ne0 || t >= N_TOKENS)
		return;
	int id = int(b2[(pc.off[2] + t * pc.ids_stride) >> 2]);
	float v = uintBitsToFloat(0x7fc00000u);   // out-of-range id: NaN, never a silent row
	if (id >= 0 && uint(id) < pc.src_rows)
		v = w_get(pc.off[1] + uint(id) * pc.nb1[1], e);
	ST_F32(b0, pc.off[0] + t * pc.nb1[0] + e * 4u, v);
}
