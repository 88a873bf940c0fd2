#version 450
#extension GL_GOOGLE_include_directive : require
// get_rows: dst[t][e] = float(src0[ids[t]][e]); ids (src1) are int32.
// A table too large for one binding is split: this dispatch holds rows
// pc.aux .. pc.aux + pc.src_rows - 1 of pc.k and copies only the tokens
// whose id falls there; the piece at row 0 also writes NaN for an id
// outside the whole table (never a silent row).
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
	float v;
	if (id < 0 || uint(id) >= pc.k) {
		if (pc.aux != 0u)
			return;
		v = uintBitsToFloat(0x7fc00000u);
	} else {
		uint rel = uint(id) - pc.aux;
		if (uint(id) < pc.aux || rel >= pc.src_rows)
			return;   // another piece's row
		v = w_get(pc.off[1] + rel * pc.nb1[1], e);
	}
	ST_F32(b0, pc.off[0] + t * pc.nb1[0] + e * 4u, v);
}
