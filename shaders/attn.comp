#version 450
#extension GL_GOOGLE_include_directive : require
// attn: causal grouped-query attention of q = src0 [t][n_head * head_dim]
// over the KV cache K = src1, V = src2 [pos][n_head_kv * head_dim] (f32, or
// f16 with -DKV_F16).  Token t sits at position pos0 + t and sees cache
// rows 0..pos0+t.  One workgroup per (head, token); keys are taken WG at a
// time (one score per invocation) with an online softmax (running max M and
// sum L, accumulators rescaled when M grows), and each invocation owns
// head_dim/WG (<= 4) output dimensions.
// Grid: x = n_head, y = n_tokens.
#define NEED_REDUCE
#include "common.glsl"

#define MAX_HD 512u
shared float qsh[MAX_HD];
shared float psh[WG];

float kv_get(uint which, uint o)
{
#ifdef KV_F16
	return f16_to_f32(which == 0u ? LD_U16(b2, o) : LD_U16(b3, o));
#else
	return which == 0u ? LD_F32(b2, o) : LD_F32(b3, o);
#endif
}

#ifdef KV_F16
#define KV_ES 2u
#else
#define KV_ES 4u
#endif

void main()
{
	uint h = gl_WorkGroupID.x;
	uint t = gl_WorkGroupID.y;
	uint tid = gl_LocalInvocationID.x;
	if (t >= N_TOKENS)
		return;
	uint hd = pc.head_dim;
	uint g = h / (pc.n_head / pc.n_head_kv);
	uint n_kv = POS0 + t + 1u;
	uint qo = pc.off[1] + t * pc.nb1[1] + h * hd * 4u;
	for (uint d = tid; d < hd; d += WG)
		qsh[d] = LD_F32(b1, qo + d * 4u);
	barrier();

	float M = uintBitsToFloat(0xff800000u), L = 0.0;
	float acc[4] = float[4](0.0, 0.0, 0.0, 0.0);
	for (uint c0 = 0; c0 < n_kv; c0 += WG) {
		uint p = c0 + tid;
		float s = uintBitsToFloat(0xff800000u);
		if (p < n_kv) {
			uint ko = pc.off[2] + p * pc.nb1[2] + g * hd * KV_ES;
			float dot = 0.0;
			for (uint d = 0; d < hd; d++)
				dot += qsh[d] * kv_get(0u, ko + d * KV_ES);
			s = dot * pc.scale;
		}
		float newM = max(M, wg_max(s));
		float e = p < n_kv ? exp(s - newM) : 0.0;
		float alpha = exp(M - newM);
		psh[tid] = e;
		L = L * alpha + wg_sum(e);   // wg_sum's barriers publish psh
		uint n = min(WG, n_kv - c0);
		[[unroll]] for (uint j = 0; j < 4u; j++) {
			uint d = tid + j * WG;
			if (d < hd) {
				float a = acc[j] * alpha;
				uint vo = pc.off[3] + c0 * pc.nb1[3] + (g * hd + d) * KV_ES;
				for (uint i = 0; i < n; i++)
					a += psh[i] * kv_get(1u, vo + i * pc.nb1[3]);
				acc[j] = a;
			}
		}
		barrier();   // psh is rewritten by the next chunk
		M = newM;
	}
	uint yo = pc.off[0] + t * pc.nb1[0] + h * hd * 4u;
	float inv = 1.0 / L;
	[[unroll]] for (uint j = 0; j < 4u; j++) {
		uint d = tid + j * WG;
		if (d < hd)
			ST_F32(b0, yo + d * 4u, acc[j] * inv);
	}
}
