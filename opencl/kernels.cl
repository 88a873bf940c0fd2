/* kernels.cl: strata's OpenCL kernels, one per op of runtime/backend.h and
 * per weight type.  Embedded in the library at build time.
 *
 * A tensor is passed as (base, byte offset, row stride in bytes); rows are
 * tokens for activations and output features for weights.  LS (the work-group
 * size of the reducing kernels) is set with -DLS=... when the program is
 * built. */

#ifndef LS
#define LS 64
#endif

#define ROW(T, base, off, nb1, r) ((__global T *)((base) + (off) + (ulong)(r) * (nb1)))

inline float bf16_to_f32(ushort h) { return as_float(((uint)h) << 16); }

/* Work-group reductions over LS work-items (LS a power of two). */
inline float wg_sum(float v, __local float *sh)
{
	const int lid = get_local_id(0);
	sh[lid] = v;
	barrier(CLK_LOCAL_MEM_FENCE);
	for (int k = LS / 2; k > 0; k >>= 1) {
		if (lid < k)
			sh[lid] += sh[lid + k];
		barrier(CLK_LOCAL_MEM_FENCE);
	}
	float r = sh[0];
	barrier(CLK_LOCAL_MEM_FENCE);
	return r;
}

inline float wg_max(float v, __local float *sh)
{
	const int lid = get_local_id(0);
	sh[lid] = v;
	barrier(CLK_LOCAL_MEM_FENCE);
	for (int k = LS / 2; k > 0; k >>= 1) {
		if (lid < k)
			sh[lid] = fmax(sh[lid], sh[lid + k]);
		barrier(CLK_LOCAL_MEM_FENCE);
	}
	float r = sh[0];
	barrier(CLK_LOCAL_MEM_FENCE);
	return r;
}

/* ---- one element of a weight row, and a work-item's share of a dot ------ */

inline float deq_f32(__global const uchar *row, int c) { return ((__global const float *)row)[c]; }
inline float deq_f16(__global const uchar *row, int c) { return vload_half(c, (__global const half *)row); }
inline float deq_bf16(__global const uchar *row, int c) { return bf16_to_f32(((__global const ushort *)row)[c]); }
inline float deq_q8_0(__global const uchar *row, int c)
{
	__global const uchar *b = row + (c / 32) * 34;
	return vload_half(0, (__global const half *)b) * (float)((__global const char *)(b + 2))[c % 32];
}
inline float deq_q4_0(__global const uchar *row, int c)
{
	__global const uchar *b = row + (c / 32) * 18;
	const int j = c % 32;
	const uchar q = b[2 + (j & 15)];
	return vload_half(0, (__global const half *)b) * (float)((j < 16 ? (q & 15) : (q >> 4)) - 8);
}

inline float dot_f32(__global const uchar *row, __global const float *x, int n, int lid)
{
	__global const float *w = (__global const float *)row;
	float s = 0.0f;
	for (int c = lid; c < n; c += LS)
		s += w[c] * x[c];
	return s;
}
inline float dot_f16(__global const uchar *row, __global const float *x, int n, int lid)
{
	float s = 0.0f;
	for (int c = lid; c < n; c += LS)
		s += vload_half(c, (__global const half *)row) * x[c];
	return s;
}
inline float dot_bf16(__global const uchar *row, __global const float *x, int n, int lid)
{
	__global const ushort *w = (__global const ushort *)row;
	float s = 0.0f;
	for (int c = lid; c < n; c += LS)
		s += bf16_to_f32(w[c]) * x[c];
	return s;
}
inline float dot_q8_0(__global const uchar *row, __global const float *x, int n, int lid)
{
	float s = 0.0f;
	for (int b = lid; b < n / 32; b += LS) {
		__global const uchar *blk = row + b * 34;
		__global const char *qs = (__global const char *)(blk + 2);
		__global const float *xb = x + b * 32;
		float acc = 0.0f;
		for (int j = 0; j < 32; j++)
			acc += (float)qs[j] * xb[j];
		s += vload_half(0, (__global const half *)blk) * acc;
	}
	return s;
}
inline float dot_q4_0(__global const uchar *row, __global const float *x, int n, int lid)
{
	float s = 0.0f;
	for (int b = lid; b < n / 32; b += LS) {
		__global const uchar *blk = row + b * 18;
		__global const float *xb = x + b * 32;
		float acc = 0.0f;
		for (int j = 0; j < 16; j++) {
			const uchar q = blk[2 + j];
			acc += (float)((q & 15) - 8) * xb[j] + (float)((q >> 4) - 8) * xb[j + 16];
		}
		s += vload_half(0, (__global const half *)blk) * acc;
	}
	return s;
}

/* ---- MATMUL: y[t][r] = sum_c W[r][c] * x[t][c]; group per (row, token) --- */
#define MATMUL(T)                                                                          \
__kernel void matmul_##T(__global const uchar *wb, ulong woff, ulong wnb1,                 \
			 __global const uchar *xb, ulong xoff, ulong xnb1,                 \
			 __global uchar *yb, ulong yoff, ulong ynb1, int ncols)            \
{                                                                                          \
	__local float sh[LS];                                                              \
	const int r = get_group_id(0), t = get_global_id(1), lid = get_local_id(0);        \
	__global const uchar *row = wb + woff + (ulong)r * wnb1;                           \
	float s = wg_sum(dot_##T(row, ROW(const float, xb, xoff, xnb1, t), ncols, lid), sh); \
	if (lid == 0)                                                                      \
		ROW(float, yb, yoff, ynb1, t)[r] = s;                                      \
}
MATMUL(f32)
MATMUL(f16)
MATMUL(bf16)
MATMUL(q8_0)
MATMUL(q4_0)

/* ---- GET_ROWS: y[t] = float(W[ids[t]]) ---------------------------------- */
#define GET_ROWS(T)                                                                        \
__kernel void get_rows_##T(__global const uchar *wb, ulong woff, ulong wnb1,               \
			   __global const uchar *ib, ulong ioff,                           \
			   __global uchar *yb, ulong yoff, ulong ynb1, int ncols)          \
{                                                                                          \
	const int t = get_group_id(0), lid = get_local_id(0);                              \
	const int id = ((__global const int *)(ib + ioff))[t];                             \
	__global const uchar *row = wb + woff + (ulong)id * wnb1;                          \
	__global float *y = ROW(float, yb, yoff, ynb1, t);                                 \
	for (int c = lid; c < ncols; c += LS)                                              \
		y[c] = deq_##T(row, c);                                                    \
}
GET_ROWS(f32)
GET_ROWS(f16)
GET_ROWS(bf16)
GET_ROWS(q8_0)
GET_ROWS(q4_0)

/* ---- RMSNORM: y[t] = x[t] / sqrt(mean(x[t]^2) + eps) * w (w any float type) */
#define RMSNORM(T)                                                                         \
__kernel void rmsnorm_##T(__global const uchar *xb, ulong xoff, ulong xnb1,                \
			  __global const uchar *wb, ulong woff,                            \
			  __global uchar *yb, ulong yoff, ulong ynb1, int ncols, float eps) \
{                                                                                          \
	__local float sh[LS];                                                              \
	const int t = get_group_id(0), lid = get_local_id(0);                              \
	__global const float *x = ROW(const float, xb, xoff, xnb1, t);                     \
	__global float *y = ROW(float, yb, yoff, ynb1, t);                                 \
	float ss = 0.0f;                                                                   \
	for (int c = lid; c < ncols; c += LS)                                              \
		ss += x[c] * x[c];                                                         \
	ss = wg_sum(ss, sh);                                                               \
	const float scale = 1.0f / sqrt(ss / (float)ncols + eps);                          \
	for (int c = lid; c < ncols; c += LS)                                              \
		y[c] = x[c] * scale * deq_##T(wb + woff, c);                               \
}
RMSNORM(f32)
RMSNORM(f16)
RMSNORM(bf16)

/* ---- ROPE (in place): adjacent pairs (2i, 2i+1) of each head, for the first
 * rope_dim dimensions; angle = (pos0 + t) * theta^(-2i/rope_dim).  One
 * work-item per (pair, head, token). */
__kernel void rope(__global uchar *xb, ulong xoff, ulong xnb1, int head_dim, int rope_dim,
		   float theta, int pos0)
{
	const int i = get_global_id(0), h = get_global_id(1), t = get_global_id(2);
	if (2 * i >= rope_dim)
		return;
	__global float *x = ROW(float, xb, xoff, xnb1, t) + h * head_dim + 2 * i;
	const float freq = pow(theta, -(float)(2 * i) / (float)rope_dim);
	const float a = (float)(pos0 + t) * freq;
	const float c = cos(a), s = sin(a);
	const float x0 = x[0], x1 = x[1];
	x[0] = x0 * c - x1 * s;
	x[1] = x0 * s + x1 * c;
}

/* ---- KV_STORE: cache rows pos0+t = x rows t (f32 or f16 cache) ---------- */
__kernel void kv_store_f32(__global const uchar *xb, ulong xoff, ulong xnb1,
			   __global uchar *cb, ulong coff, ulong cnb1, int ncols, int pos0)
{
	const int c = get_global_id(0), t = get_global_id(1);
	if (c < ncols)
		ROW(float, cb, coff, cnb1, pos0 + t)[c] = ROW(const float, xb, xoff, xnb1, t)[c];
}
__kernel void kv_store_f16(__global const uchar *xb, ulong xoff, ulong xnb1,
			   __global uchar *cb, ulong coff, ulong cnb1, int ncols, int pos0)
{
	const int c = get_global_id(0), t = get_global_id(1);
	if (c < ncols)
		vstore_half_rte(ROW(const float, xb, xoff, xnb1, t)[c], c,
				(__global half *)(cb + coff + (ulong)(pos0 + t) * cnb1));
}

/* ---- ATTN: causal grouped-query attention over the KV cache.  One group per
 * (head, token); token t sees positions 0 .. pos0+t.  Scores live in local
 * memory (n_ctx floats, checked against the device's local memory when the
 * graph is prepared). */
#define ATTN(T, LOAD)                                                                      \
__kernel void attn_##T(__global const uchar *qb, ulong qoff, ulong qnb1,                   \
		       __global const uchar *kb, ulong koff, ulong knb1,                   \
		       __global const uchar *vb, ulong voff, ulong vnb1,                   \
		       __global uchar *ob, ulong ooff, ulong onb1,                         \
		       int n_head, int n_head_kv, int hd, float scale, int pos0,           \
		       __local float *sc)                                                  \
{                                                                                          \
	__local float sh[LS];                                                              \
	const int h = get_group_id(0), t = get_group_id(1), lid = get_local_id(0);         \
	const int kvh = h / (n_head / n_head_kv), n_pos = pos0 + t + 1;                    \
	__global const float *q = ROW(const float, qb, qoff, qnb1, t) + h * hd;            \
	float mx = -INFINITY;                                                              \
	for (int p = lid; p < n_pos; p += LS) {                                            \
		__global const uchar *k = kb + koff + (ulong)p * knb1;                     \
		float s = 0.0f;                                                            \
		for (int d = 0; d < hd; d++)                                               \
			s += q[d] * LOAD(k, kvh * hd + d);                                 \
		s *= scale;                                                                \
		sc[p] = s;                                                                 \
		mx = fmax(mx, s);                                                          \
	}                                                                                  \
	mx = wg_max(mx, sh);                                                               \
	float sum = 0.0f;                                                                  \
	for (int p = lid; p < n_pos; p += LS) {                                            \
		const float e = exp(sc[p] - mx);                                           \
		sc[p] = e;                                                                 \
		sum += e;                                                                  \
	}                                                                                  \
	sum = wg_sum(sum, sh); /* its barriers also publish sc[] */                        \
	__global float *o = ROW(float, ob, ooff, onb1, t) + h * hd;                        \
	for (int d = lid; d < hd; d += LS) {                                               \
		float acc = 0.0f;                                                          \
		for (int p = 0; p < n_pos; p++)                                            \
			acc += sc[p] * LOAD(vb + voff + (ulong)p * vnb1, kvh * hd + d);    \
		o[d] = acc / sum;                                                          \
	}                                                                                  \
}
#define LOAD_F32(row, i) (((__global const float *)(row))[i])
#define LOAD_F16(row, i) vload_half((i), (__global const half *)(row))
ATTN(f32, LOAD_F32)
ATTN(f16, LOAD_F16)

/* ---- elementwise ---------------------------------------------------------- */
__kernel void swiglu(__global const uchar *ab, ulong aoff, ulong anb1,
		     __global const uchar *bb, ulong boff, ulong bnb1,
		     __global uchar *yb, ulong yoff, ulong ynb1, int ncols)
{
	const int c = get_global_id(0), t = get_global_id(1);
	if (c >= ncols)
		return;
	const float a = ROW(const float, ab, aoff, anb1, t)[c];
	ROW(float, yb, yoff, ynb1, t)[c] = a / (1.0f + exp(-a)) * ROW(const float, bb, boff, bnb1, t)[c];
}

__kernel void add(__global const uchar *ab, ulong aoff, ulong anb1,
		  __global const uchar *bb, ulong boff, ulong bnb1,
		  __global uchar *yb, ulong yoff, ulong ynb1, int ncols)
{
	const int c = get_global_id(0), t = get_global_id(1);
	if (c < ncols)
		ROW(float, yb, yoff, ynb1, t)[c] = ROW(const float, ab, aoff, anb1, t)[c] +
						   ROW(const float, bb, boff, bnb1, t)[c];
}

__kernel void softmax(__global const uchar *xb, ulong xoff, ulong xnb1,
		      __global uchar *yb, ulong yoff, ulong ynb1, int ncols)
{
	__local float sh[LS];
	const int t = get_group_id(0), lid = get_local_id(0);
	__global const float *x = ROW(const float, xb, xoff, xnb1, t);
	__global float *y = ROW(float, yb, yoff, ynb1, t);
	float mx = -INFINITY;
	for (int c = lid; c < ncols; c += LS)
		mx = fmax(mx, x[c]);
	mx = wg_max(mx, sh);
	float sum = 0.0f;
	for (int c = lid; c < ncols; c += LS) {
		const float e = exp(x[c] - mx);
		y[c] = e;
		sum += e;
	}
	sum = wg_sum(sum, sh);
	for (int c = lid; c < ncols; c += LS)
		y[c] /= sum;
}

/* ---- MATMUL, one work-item per (row, token) ---------------------------------
 * No barriers and no local memory: on CPU drivers (PoCL) a barrier splits the
 * kernel into separately looped regions, so a 64-wide reduction per row is
 * several times slower than one work-item walking its row with explicit
 * vector types (contiguous 16-wide loads the compiler maps to SIMD). */
inline float hsum16(float16 v)
{
	float8 a = v.lo + v.hi;
	float4 b = a.lo + a.hi;
	float2 c = b.lo + b.hi;
	return c.x + c.y;
}

inline float rdot_f32(__global const uchar *row, __global const float *x, int n)
{
	__global const float *w = (__global const float *)row;
	float16 acc = 0.0f;
	int c = 0;
	for (; c + 16 <= n; c += 16)
		acc = fma(vload16(0, w + c), vload16(0, x + c), acc);
	float s = hsum16(acc);
	for (; c < n; c++)
		s += w[c] * x[c];
	return s;
}
inline float rdot_f16(__global const uchar *row, __global const float *x, int n)
{
	__global const half *w = (__global const half *)row;
	float16 acc = 0.0f;
	int c = 0;
	for (; c + 16 <= n; c += 16)
		acc = fma(vload_half16(0, w + c), vload16(0, x + c), acc);
	float s = hsum16(acc);
	for (; c < n; c++)
		s += vload_half(c, w) * x[c];
	return s;
}
inline float rdot_bf16(__global const uchar *row, __global const float *x, int n)
{
	__global const ushort *w = (__global const ushort *)row;
	float16 acc = 0.0f;
	int c = 0;
	for (; c + 16 <= n; c += 16)
		acc = fma(as_float16(convert_uint16(vload16(0, w + c)) << 16), vload16(0, x + c), acc);
	float s = hsum16(acc);
	for (; c < n; c++)
		s += bf16_to_f32(w[c]) * x[c];
	return s;
}
inline float rdot_q8_0(__global const uchar *row, __global const float *x, int n)
{
	float s = 0.0f;
	for (int b = 0; b < n / 32; b++) {
		__global const uchar *blk = row + b * 34;
		__global const char *qs = (__global const char *)(blk + 2);
		float16 acc = convert_float16(vload16(0, qs)) * vload16(0, x + b * 32);
		acc = fma(convert_float16(vload16(1, qs)), vload16(1, x + b * 32), acc);
		s += vload_half(0, (__global const half *)blk) * hsum16(acc);
	}
	return s;
}
inline float rdot_q4_0(__global const uchar *row, __global const float *x, int n)
{
	float s = 0.0f;
	for (int b = 0; b < n / 32; b++) {
		__global const uchar *blk = row + b * 18;
		const uchar16 q = vload16(0, blk + 2);
		const float16 lo = convert_float16(convert_char16(q & (uchar)15) - (char)8);
		const float16 hi = convert_float16(convert_char16(q >> (uchar)4) - (char)8);
		float16 acc = lo * vload16(0, x + b * 32);
		acc = fma(hi, vload16(1, x + b * 32), acc);
		s += vload_half(0, (__global const half *)blk) * hsum16(acc);
	}
	return s;
}

/* ---- K-quants (blocks of 256; ggml layouts, see runtime/types.h) --------
 * Worked per sub-block of 32 values: the dot of sub-block j of a block
 * with its 32 activations, and one element.  Q4_K/Q5_K: d*sc*q - dmin*m;
 * Q6_K: d*sc*(q-32) with a scale per 16.  Type ids: 4 = q4_K, 5 = q5_K,
 * 6 = q6_K (constants, so each instance compiles to its own code). */
inline void kq_scale_min(int j, __global const uchar *q, float *sc, float *m)
{
	if (j < 4) {
		*sc = (float)(q[j] & 63);
		*m = (float)(q[j + 4] & 63);
	} else {
		*sc = (float)((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
		*m = (float)((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
	}
}
/* sub-block j of a Q4_K (five = 0) or Q5_K block */
inline float kq45_sub(__global const uchar *blk, int five, int j, __global const float *x)
{
	float sc, m;
	kq_scale_min(j, blk + 4, &sc, &m);
	__global const uchar *q = blk + (five ? 48 : 16) + 32 * (j / 2);
	__global const uchar *qh = blk + 16;
	const uchar sh = (uchar)(4 * (j & 1));
	float16 acc = 0.0f, sx = 0.0f;
	for (int h = 0; h < 2; h++) {
		uchar16 v = (vload16(h, q) >> sh) & (uchar)15;
		if (five)
			v |= ((vload16(h, qh) >> (uchar)j) & (uchar)1) << (uchar)4;
		const float16 xv = vload16(h, x);
		acc = fma(convert_float16(v), xv, acc);
		sx += xv;
	}
	const float d = vload_half(0, (__global const half *)blk), dmin = vload_half(1, (__global const half *)blk);
	return d * sc * hsum16(acc) - dmin * m * hsum16(sx);
}
inline float kq6_sub(__global const uchar *blk, int j, __global const float *x)
{
	const int h = j / 4, k = j % 4;
	__global const uchar *ql = blk + 64 * h + 32 * (k & 1), *qh = blk + 128 + 32 * h;
	__global const char *sc = (__global const char *)(blk + 192) + 8 * h + 2 * k;
	const uchar sl = (uchar)(4 * (k >> 1)), shh = (uchar)(2 * k);
	float r = 0.0f;
	for (int g = 0; g < 2; g++) {
		const uchar16 v = ((vload16(g, ql) >> sl) & (uchar)15) | (((vload16(g, qh) >> shh) & (uchar)3) << (uchar)4);
		const float16 q = convert_float16(convert_char16(v) - (char)32);
		r += (float)sc[g] * hsum16(q * vload16(g, x));
	}
	return vload_half(0, (__global const half *)(blk + 208)) * r;
}
inline float kq_sub(int type, __global const uchar *row, int sb, __global const float *x)
{
	const int b = sb / 8, j = sb % 8;
	if (type == 6)
		return kq6_sub(row + b * 210, j, x);
	return kq45_sub(row + b * (type == 4 ? 144 : 176), type == 5, j, x);
}
inline float kq_deq(int type, __global const uchar *row, int c)
{
	const int b = c / 256, e = c % 256;
	if (type == 6) {
		__global const uchar *blk = row + b * 210;
		const int h = e / 128, k = (e % 128) / 32, l = e % 32;
		const int ql = (blk[64 * h + l + 32 * (k & 1)] >> (4 * (k >> 1))) & 15;
		const int qh = (blk[128 + 32 * h + l] >> (2 * k)) & 3;
		const float sc = (float)((__global const char *)(blk + 192))[e / 16];
		return vload_half(0, (__global const half *)(blk + 208)) * sc * (float)((ql | (qh << 4)) - 32);
	}
	__global const uchar *blk = row + b * (type == 4 ? 144 : 176);
	const int j = e / 32, l = e % 32;
	float sc, m;
	kq_scale_min(j, blk + 4, &sc, &m);
	int q = (blk[(type == 4 ? 16 : 48) + 32 * (j / 2) + l] >> (4 * (j & 1))) & 15;
	if (type == 5)
		q |= ((blk[16 + l] >> j) & 1) << 4;
	const float d = vload_half(0, (__global const half *)blk), dmin = vload_half(1, (__global const half *)blk);
	return d * sc * (float)q - dmin * m;
}
inline float deq_q4_K(__global const uchar *row, int c) { return kq_deq(4, row, c); }
inline float deq_q5_K(__global const uchar *row, int c) { return kq_deq(5, row, c); }
inline float deq_q6_K(__global const uchar *row, int c) { return kq_deq(6, row, c); }
/* dot_: a work-item's share (sub-blocks lid, lid + LS, ...) */
#define KQ_DOT(T, ID)                                                                      \
inline float dot_##T(__global const uchar *row, __global const float *x, int n, int lid)   \
{                                                                                          \
	float s = 0.0f;                                                                    \
	for (int sb = lid; sb < n / 32; sb += LS)                                          \
		s += kq_sub(ID, row, sb, x + sb * 32);                                     \
	return s;                                                                          \
}
/* rdot_: a whole row per work-item, a super-block at a time (the quants of
 * a sub-block pair loaded once, shifts by constants) */
inline float rdot_q45(__global const uchar *row, __global const float *x, int n, const int five)
{
	const int bsz = five ? 176 : 144;
	float s = 0.0f;
	for (int b = 0; b < n / 256; b++) {
		__global const uchar *blk = row + b * bsz;
		__global const uchar *qs = blk + (five ? 48 : 16);
		__global const float *xb = x + b * 256;
		const float d = vload_half(0, (__global const half *)blk), dmin = vload_half(1, (__global const half *)blk);
		uchar16 hb0 = (uchar16)0, hb1 = (uchar16)0;
		if (five) {
			hb0 = vload16(0, blk + 16);
			hb1 = vload16(1, blk + 16);
		}
		float acc = 0.0f;
#pragma unroll
		for (int c = 0; c < 4; c++) {
			float sc0, m0, sc1, m1;
			kq_scale_min(2 * c, blk + 4, &sc0, &m0);
			kq_scale_min(2 * c + 1, blk + 4, &sc1, &m1);
			const uchar16 v0 = vload16(0, qs + 32 * c), v1 = vload16(1, qs + 32 * c);
			uchar16 lo0 = v0 & (uchar)15, lo1 = v1 & (uchar)15, hi0 = v0 >> (uchar)4, hi1 = v1 >> (uchar)4;
			if (five) {
				lo0 |= ((hb0 >> (uchar)(2 * c)) & (uchar)1) << (uchar)4;
				lo1 |= ((hb1 >> (uchar)(2 * c)) & (uchar)1) << (uchar)4;
				hi0 |= ((hb0 >> (uchar)(2 * c + 1)) & (uchar)1) << (uchar)4;
				hi1 |= ((hb1 >> (uchar)(2 * c + 1)) & (uchar)1) << (uchar)4;
			}
			const float16 x0 = vload16(0, xb + 64 * c), x1 = vload16(1, xb + 64 * c);
			const float16 x2 = vload16(2, xb + 64 * c), x3 = vload16(3, xb + 64 * c);
			const float qlo = hsum16(fma(convert_float16(lo0), x0, convert_float16(lo1) * x1));
			const float qhi = hsum16(fma(convert_float16(hi0), x2, convert_float16(hi1) * x3));
			acc += d * (sc0 * qlo + sc1 * qhi) - dmin * (m0 * hsum16(x0 + x1) + m1 * hsum16(x2 + x3));
		}
		s += acc;
	}
	return s;
}
inline float rdot_q4_K(__global const uchar *row, __global const float *x, int n) { return rdot_q45(row, x, n, 0); }
inline float rdot_q5_K(__global const uchar *row, __global const float *x, int n) { return rdot_q45(row, x, n, 1); }
inline float rdot_q6_K(__global const uchar *row, __global const float *x, int n)
{
	float s = 0.0f;
	for (int b = 0; b < n / 256; b++) {
		__global const uchar *blk = row + b * 210;
		__global const char *sc = (__global const char *)(blk + 192);
		__global const float *xb = x + b * 256;
		float acc = 0.0f;
#pragma unroll
		for (int h = 0; h < 2; h++) {
			const uchar16 l0 = vload16(0, blk + 64 * h), l1 = vload16(1, blk + 64 * h);
			const uchar16 l2 = vload16(2, blk + 64 * h), l3 = vload16(3, blk + 64 * h);
			const uchar16 h0 = vload16(0, blk + 128 + 32 * h), h1 = vload16(1, blk + 128 + 32 * h);
			__global const float *xh = xb + 128 * h;
			const uchar16 q[8] = {
				(l0 & (uchar)15) | ((h0 & (uchar)3) << (uchar)4),
				(l1 & (uchar)15) | ((h1 & (uchar)3) << (uchar)4),
				(l2 & (uchar)15) | (((h0 >> (uchar)2) & (uchar)3) << (uchar)4),
				(l3 & (uchar)15) | (((h1 >> (uchar)2) & (uchar)3) << (uchar)4),
				(l0 >> (uchar)4) | (((h0 >> (uchar)4) & (uchar)3) << (uchar)4),
				(l1 >> (uchar)4) | (((h1 >> (uchar)4) & (uchar)3) << (uchar)4),
				(l2 >> (uchar)4) | ((h0 >> (uchar)6) << (uchar)4),
				(l3 >> (uchar)4) | ((h1 >> (uchar)6) << (uchar)4),
			};
#pragma unroll
			for (int g = 0; g < 8; g++)
				acc += (float)sc[8 * h + g] * hsum16((convert_float16(q[g]) - 32.0f) * vload16(g, xh));
		}
		s += vload_half(0, (__global const half *)(blk + 208)) * acc;
	}
	return s;
}

/* ---- Q4_1, Q5_0, Q5_1 (blocks of 32; ggml layouts, runtime/quant_legacy.h)
 * Q4_1 {half d, half m, uchar qs[16]}: d*q + m; Q5_0 {half d, uchar qh[4],
 * uchar qs[16]}: d*(q-16); Q5_1 {half d, half m, uchar qh[4], uchar qs[16]}:
 * d*q + m.  Nibbles as Q4_0; bit j of qh is the 5th bit of element j.
 * Type ids: 41 = q4_1, 50 = q5_0, 51 = q5_1 (constants, so each instance
 * compiles to its own code). */
inline int ql_bsz(int type) { return type == 41 ? 20 : type == 50 ? 22 : 24; }
/* the 32 quants of a block in element order, as two 16-wide vectors */
inline void ql_quants(int type, __global const uchar *blk, uchar16 *lo, uchar16 *hi)
{
	const int qo = ql_bsz(type) - 16;
	const uchar16 q = vload16(0, blk + qo);
	*lo = q & (uchar)15;
	*hi = q >> (uchar)4;
	if (type != 41) {
		const uint qh = (uint)blk[qo - 4] | ((uint)blk[qo - 3] << 8) | ((uint)blk[qo - 2] << 16) |
				((uint)blk[qo - 1] << 24);
		const uint16 sh = (uint16)(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
		*lo |= convert_uchar16(((uint16)qh >> sh) & 1u) << (uchar)4;
		*hi |= convert_uchar16(((uint16)qh >> (sh + 16u)) & 1u) << (uchar)4;
	}
}
/* d and the offset: value = d * q + m (Q5_0: m = -16 d) */
inline void ql_dm(int type, __global const uchar *blk, float *d, float *m)
{
	*d = vload_half(0, (__global const half *)blk);
	*m = type == 50 ? -16.0f * *d : vload_half(1, (__global const half *)blk);
}
inline float ql_deq(int type, __global const uchar *row, int c)
{
	__global const uchar *blk = row + (c / 32) * ql_bsz(type);
	const int j = c % 32, qo = ql_bsz(type) - 16;
	const uchar q = blk[qo + (j & 15)];
	int v = j < 16 ? (q & 15) : (q >> 4);
	if (type != 41)
		v |= ((blk[qo - 4 + j / 8] >> (j % 8)) & 1) << 4;
	float d, m;
	ql_dm(type, blk, &d, &m);
	return d * (float)v + m;
}
/* block b of a row against its 32 activations */
inline float ql_block(int type, __global const uchar *row, int b, __global const float *x)
{
	__global const uchar *blk = row + b * ql_bsz(type);
	uchar16 lo, hi;
	ql_quants(type, blk, &lo, &hi);
	const float16 x0 = vload16(0, x), x1 = vload16(1, x);
	float d, m;
	ql_dm(type, blk, &d, &m);
	return d * hsum16(fma(convert_float16(hi), x1, convert_float16(lo) * x0)) + m * hsum16(x0 + x1);
}
#define QL_FUNCS(T, ID)                                                                    \
inline float deq_##T(__global const uchar *row, int c) { return ql_deq(ID, row, c); }      \
inline float dot_##T(__global const uchar *row, __global const float *x, int n, int lid)   \
{                                                                                          \
	float s = 0.0f;                                                                    \
	for (int b = lid; b < n / 32; b += LS)                                             \
		s += ql_block(ID, row, b, x + b * 32);                                     \
	return s;                                                                          \
}                                                                                          \
inline float rdot_##T(__global const uchar *row, __global const float *x, int n)           \
{                                                                                          \
	float s = 0.0f;                                                                    \
	for (int b = 0; b < n / 32; b++)                                                   \
		s += ql_block(ID, row, b, x + b * 32);                                     \
	return s;                                                                          \
}
QL_FUNCS(q4_1, 41)
QL_FUNCS(q5_0, 50)
QL_FUNCS(q5_1, 51)

#define MATMUL_ROWS(T)                                                                     \
__kernel void matmul_rows_##T(__global const uchar *wb, ulong woff, ulong wnb1,            \
			      __global const uchar *xb, ulong xoff, ulong xnb1,            \
			      __global uchar *yb, ulong yoff, ulong ynb1, int ncols)       \
{                                                                                          \
	const int r = get_global_id(0), t = get_global_id(1);                              \
	ROW(float, yb, yoff, ynb1, t)[r] =                                                 \
		rdot_##T(wb + woff + (ulong)r * wnb1, ROW(const float, xb, xoff, xnb1, t), ncols); \
}
MATMUL_ROWS(f32)
MATMUL_ROWS(f16)
MATMUL_ROWS(bf16)
MATMUL_ROWS(q8_0)
MATMUL_ROWS(q4_0)

/* K-quant instances (the macros above, the K helpers just before MATMUL_ROWS) */
KQ_DOT(q4_K, 4)
KQ_DOT(q5_K, 5)
KQ_DOT(q6_K, 6)
MATMUL(q4_K)
MATMUL(q5_K)
MATMUL(q6_K)
MATMUL_ROWS(q4_K)
MATMUL_ROWS(q5_K)
MATMUL_ROWS(q6_K)
GET_ROWS(q4_K)
GET_ROWS(q5_K)
GET_ROWS(q6_K)
MATMUL(q4_1)
MATMUL(q5_0)
MATMUL(q5_1)
MATMUL_ROWS(q4_1)
MATMUL_ROWS(q5_0)
MATMUL_ROWS(q5_1)
GET_ROWS(q4_1)
GET_ROWS(q5_0)
GET_ROWS(q5_1)

/* ---- MATMUL for a batch of tokens, one work-item per (row, 4 tokens) --------
 * Prefill on CPU drivers: the row kernel above dequantizes a weight block
 * once per token; here each 32-value block is dequantized once (into two
 * 16-wide vectors and a scale) and used for up to 4 tokens.  Rows whose
 * length is not a multiple of 32 (float types only) finish element-wise. */
#define DEQ32_f32(row, b, lo, hi, d) do { __global const float *w_ = (__global const float *)(row) + (b) * 32; \
	lo = vload16(0, w_); hi = vload16(1, w_); d = 1.0f; } while (0)
#define DEQ32_f16(row, b, lo, hi, d) do { __global const half *w_ = (__global const half *)(row) + (b) * 32; \
	lo = vload_half16(0, w_); hi = vload_half16(1, w_); d = 1.0f; } while (0)
#define DEQ32_bf16(row, b, lo, hi, d) do { __global const ushort *w_ = (__global const ushort *)(row) + (b) * 32; \
	lo = as_float16(convert_uint16(vload16(0, w_)) << 16); \
	hi = as_float16(convert_uint16(vload16(1, w_)) << 16); d = 1.0f; } while (0)
#define DEQ32_q8_0(row, b, lo, hi, d) do { __global const uchar *blk_ = (row) + (b) * 34; \
	__global const char *qs_ = (__global const char *)(blk_ + 2); \
	lo = convert_float16(vload16(0, qs_)); hi = convert_float16(vload16(1, qs_)); \
	d = vload_half(0, (__global const half *)blk_); } while (0)
#define DEQ32_q4_0(row, b, lo, hi, d) do { __global const uchar *blk_ = (row) + (b) * 18; \
	const uchar16 q_ = vload16(0, blk_ + 2); \
	lo = convert_float16(convert_char16(q_ & (uchar)15) - (char)8); \
	hi = convert_float16(convert_char16(q_ >> (uchar)4) - (char)8); \
	d = vload_half(0, (__global const half *)blk_); } while (0)
/* Q4_1/Q5_0/Q5_1: the values themselves (d * q + m), scale 1 */
#define DEQ32_QL(ID, row, b, lo, hi, d) do { __global const uchar *blk_ = (row) + (b) * ql_bsz(ID); \
	uchar16 l_, h_; float d_, m_; ql_quants(ID, blk_, &l_, &h_); ql_dm(ID, blk_, &d_, &m_); \
	lo = fma(convert_float16(l_), (float16)d_, (float16)m_); \
	hi = fma(convert_float16(h_), (float16)d_, (float16)m_); d = 1.0f; } while (0)
#define DEQ32_q4_1(row, b, lo, hi, d) DEQ32_QL(41, row, b, lo, hi, d)
#define DEQ32_q5_0(row, b, lo, hi, d) DEQ32_QL(50, row, b, lo, hi, d)
#define DEQ32_q5_1(row, b, lo, hi, d) DEQ32_QL(51, row, b, lo, hi, d)

#define MATMUL_ROWS4(T)                                                                    \
__kernel void matmul_rows4_##T(__global const uchar *wb, ulong woff, ulong wnb1,           \
			       __global const uchar *xb, ulong xoff, ulong xnb1,           \
			       __global uchar *yb, ulong yoff, ulong ynb1, int ncols,      \
			       int n_tokens)                                               \
{                                                                                          \
	const int r = get_global_id(0), t0 = 4 * get_global_id(1);                         \
	const int nt = min(4, n_tokens - t0);                                              \
	if (nt <= 0)                                                                       \
		return;                                                                    \
	__global const uchar *row = wb + woff + (ulong)r * wnb1;                           \
	float acc[4] = { 0.0f, 0.0f, 0.0f, 0.0f };                                         \
	const int nb = ncols / 32;                                                         \
	for (int b = 0; b < nb; b++) {                                                     \
		float16 lo, hi;                                                            \
		float d;                                                                   \
		DEQ32_##T(row, b, lo, hi, d);                                              \
		for (int k = 0; k < nt; k++) {                                             \
			__global const float *x = ROW(const float, xb, xoff, xnb1, t0 + k) + b * 32; \
			acc[k] += d * hsum16(fma(hi, vload16(1, x), lo * vload16(0, x)));  \
		}                                                                          \
	}                                                                                  \
	for (int k = 0; k < nt; k++) {                                                     \
		__global const float *x = ROW(const float, xb, xoff, xnb1, t0 + k);        \
		for (int c = nb * 32; c < ncols; c++)                                      \
			acc[k] += deq_##T(row, c) * x[c];                                  \
		ROW(float, yb, yoff, ynb1, t0 + k)[r] = acc[k];                            \
	}                                                                                  \
}
MATMUL_ROWS4(f32)
MATMUL_ROWS4(f16)
MATMUL_ROWS4(bf16)
MATMUL_ROWS4(q8_0)
MATMUL_ROWS4(q4_0)
MATMUL_ROWS4(q4_1)
MATMUL_ROWS4(q5_0)
MATMUL_ROWS4(q5_1)
