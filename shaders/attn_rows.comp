#version 450
#extension GL_GOOGLE_include_directive : require
// attn, one (head, token) per invocation, for CPU Vulkan drivers: lanes are
// heads, each walks the positions 0..pos0+t of its KV head with an online
// softmax (running max M, sum L, accumulator rescaled as M grows), q and
// the accumulator held in registers as vec4s (head_dim <= 4 * MAX4), K and
// V rows read as vec4 (f32) or 4 halves (f16, -DKV_F16).  No shared
// memory and no barrier: on llvmpipe the workgroup-per-head kernel
// (attn.comp) spends its time in gathers of values that are the same in
// every lane.  Needs head_dim % 4 == 0 and 16-byte aligned q/dst rows
// (8-byte aligned f16 cache rows, 16 for f32).
// Grid: x = ceil(n_head / WG), y = n_tokens.
#include "common.glsl"

#define MAX4 32u

layout(std430, binding = 1) buffer Qv { vec4 qv[]; };
#ifdef KV_F16
layout(std430, binding = 2) readonly buffer Kh { uvec2 kh[]; };
layout(std430, binding = 3) readonly buffer Vh { uvec2 vh[]; };
#define KV_UNIT 8u
vec4 k_at(uint i) { uvec2 u = kh[i]; return vec4(unpackHalf2x16(u.x), unpackHalf2x16(u.y)); }
vec4 v_at(uint i) { uvec2 u = vh[i]; return vec4(unpackHalf2x16(u.x), unpackHalf2x16(u.y)); }
#else
layout(std430, binding = 2) readonly buffer Kv { vec4 kv4[]; };
layout(std430, binding = 3) readonly buffer Vv { vec4 vv4[]; };
#define KV_UNIT 16u
vec4 k_at(uint i) { return kv4[i]; }
vec4 v_at(uint i) { return vv4[i]; }
#endif

void main()
{
	uint h = gl_GlobalInvocationID.x;
	uint t = gl_WorkGroupID.y;
	if (h >= pc.n_head || t >= N_TOKENS)
		return;
	uint hd4 = pc.head_dim / 4u;
	uint g = h / (pc.n_head / pc.n_head_kv);
	uint n_kv = POS0 + t + 1u;
	uint qo = (pc.off[1] + t * pc.nb1[1]) / 16u + h * hd4;
	uint ko = pc.off[2] / KV_UNIT + g * hd4, ks = pc.nb1[2] / KV_UNIT;
	uint vo = pc.off[3] / KV_UNIT + g * hd4, vs = pc.nb1[3] / KV_UNIT;

	vec4 q[MAX4], acc[MAX4];
	[[unroll]] for (uint i = 0; i < MAX4; i++) {
		q[i] = i < hd4 ? qv[qo + i] * pc.scale : vec4(0.0);
		acc[i] = vec4(0.0);
	}
	float M = uintBitsToFloat(0xff800000u), L = 0.0;
	for (uint p = 0; p < n_kv; p++) {
		float s = 0.0;
		[[unroll]] for (uint i = 0; i < MAX4; i++)
			if (i < hd4)
				s += dot(q[i], k_at(ko + p * ks + i));
		float m = max(M, s);
		float alpha = exp(M - m), e = exp(s - m);
		L = L * alpha + e;
		[[unroll]] for (uint i = 0; i < MAX4; i++)
			if (i < hd4)
				acc[i] = acc[i] * alpha + e * v_at(vo + p * vs + i);
		M = m;
	}
	uint yo = pc.off[0] + t * pc.nb1[0] + h * pc.head_dim * 4u;
	float inv = 1.0 / L;
	[[unroll]] for (uint i = 0; i < MAX4; i++)
		if (i < hd4) {
			vec4 o = acc[i] * inv;
			ST_F32(b0, yo + 16u * i, o.x);
			ST_F32(b0, yo + 16u * i + 4u, o.y);
			ST_F32(b0, yo + 16u * i + 8u, o.z);
			ST_F32(b0, yo + 16u * i + 12u, o.w);
		}
}
