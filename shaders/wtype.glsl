// wtype.glsl: reading one weight element or one 32-element block from b1
// (src0), for the weight type chosen at build time by -DW_F32, -DW_F16,
// -DW_BF16, -DW_Q8_0 or -DW_Q4_0 (and the types below).  `ro` is the byte
// offset of the row.
// q4_0 block: fp16 d, 16 bytes of nibbles (low = element j, high = j+16),
// value (q - 8) * d.  q8_0 block: fp16 d, 32 int8, value q * d.
// K-quants (-DW_Q4_K, -DW_Q5_K, -DW_Q6_K; ggml layouts, runtime/types.h):
// super-blocks of 256; w_block works on 32-element sub-blocks (b / 8 is the
// super-block), so the block-of-32 loops of the kernels serve them too.
// -DW_Q4_1, -DW_Q5_0, -DW_Q5_1 (runtime/quant_legacy.h): blocks of 32,
// fp16 d (and m), qh[4] (5th bit of element j = bit j), qs[16] nibbles as
// q4_0; value d * q + m (q5_0: d * (q - 16)).  Both kinds define W_DEQ32:
// the kernels use w_block (32 dequantized values) for them.

#if defined(W_Q4_0)
#define W_BLOCK 32u
#define W_QUANT
#define W_BLOCK_BYTES 18u
#elif defined(W_Q8_0)
#define W_BLOCK 32u
#define W_QUANT
#define W_BLOCK_BYTES 34u
#elif defined(W_Q4_1) || defined(W_Q5_0) || defined(W_Q5_1)
#define W_BLOCK 32u
#define W_QUANT
#define W_LEGACY
#define W_DEQ32
#if defined(W_Q4_1)
#define W_BLOCK_BYTES 20u
#define W_QS 4u
#elif defined(W_Q5_0)
#define W_BLOCK_BYTES 22u
#define W_QS 6u
#else
#define W_BLOCK_BYTES 24u
#define W_QS 8u
#endif
#elif defined(W_Q4_K) || defined(W_Q5_K) || defined(W_Q6_K)
#define W_BLOCK 256u
#define W_QUANT
#define W_KQUANT
#define W_DEQ32
#if defined(W_Q4_K)
#define W_BLOCK_BYTES 144u
#elif defined(W_Q5_K)
#define W_BLOCK_BYTES 176u
#else
#define W_BLOCK_BYTES 210u
#endif
#else
#define W_BLOCK 1u
#endif

#ifdef W_KQUANT
// Q4_K/Q5_K: 6-bit scale and min of sub-block j from scales[12] (block + 4).
void kq_scale_min(uint bo, uint j, out float sc, out float m)
{
	uint s = bo + 4u;
	if (j < 4u) {
		sc = float(LD_U8(b1, s + j) & 63u);
		m = float(LD_U8(b1, s + j + 4u) & 63u);
	} else {
		uint a = LD_U8(b1, s + j + 4u);
		sc = float((a & 15u) | ((LD_U8(b1, s + j - 4u) >> 6) << 4));
		m = float((a >> 4) | ((LD_U8(b1, s + j) >> 6) << 4));
	}
}

// Element e of a K-quant row.  Q4_K/Q5_K: d*sc*q - dmin*m (q in the low or
// high nibbles of the 32 bytes of sub-block pair j/2, Q5_K's 5th bit is bit
// j of qh[l]); Q6_K: d*sc*(q - 32), low 4 bits in ql, high 2 in qh.
float kq_get(uint ro, uint e)
{
	uint bo = ro + (e / 256u) * W_BLOCK_BYTES;
	uint i = e % 256u;
#if defined(W_Q6_K)
	uint h = i / 128u, k = (i % 128u) / 32u, l = i % 32u;
	uint ql = (LD_U8(b1, bo + 64u * h + l + 32u * (k & 1u)) >> (4u * (k >> 1))) & 15u;
	uint qh = (LD_U8(b1, bo + 128u + 32u * h + l) >> (2u * k)) & 3u;
	int sc = bitfieldExtract(int(LD_U8(b1, bo + 192u + i / 16u)), 0, 8);
	return f16_to_f32(LD_U16(b1, bo + 208u)) * float(sc) * float(int(ql | (qh << 4)) - 32);
#else
	uint j = i / 32u, l = i % 32u;
	float sc, m;
	kq_scale_min(bo, j, sc, m);
#if defined(W_Q4_K)
	uint q = (LD_U8(b1, bo + 16u + 32u * (j / 2u) + l) >> (4u * (j & 1u))) & 15u;
#else
	uint q = (LD_U8(b1, bo + 48u + 32u * (j / 2u) + l) >> (4u * (j & 1u))) & 15u;
	q |= ((LD_U8(b1, bo + 16u + l) >> j) & 1u) << 4;
#endif
	return f16_to_f32(LD_U16(b1, bo)) * sc * float(q) - f16_to_f32(LD_U16(b1, bo + 2u)) * m;
#endif
}

// The 4 bytes at a 2-byte aligned offset a.
uint kq_ld32(uint a)
{
	uint i = a >> 2;
	return (a & 2u) != 0u ? ((b1[i] >> 16) | (b1[i + 1u] << 16)) : b1[i];
}

// Sub-block b (32 elements) of the row at ro into w[0..31].
void w_block(uint ro, uint b, out float w[32])
{
	uint bo = ro + (b / 8u) * W_BLOCK_BYTES;
	uint j = b % 8u;
#if defined(W_Q6_K)
	uint h = j / 4u, k = j % 4u;
	uint qlo = bo + 64u * h + 32u * (k & 1u), qho = bo + 128u + 32u * h, sl = 4u * (k >> 1), sh = 2u * k;
	float d = f16_to_f32(LD_U16(b1, bo + 208u));
	float s0 = d * float(bitfieldExtract(int(LD_U8(b1, bo + 192u + 8u * h + 2u * k)), 0, 8));
	float s1 = d * float(bitfieldExtract(int(LD_U8(b1, bo + 193u + 8u * h + 2u * k)), 0, 8));
	// 4 quants per 32-bit word; Q6_K blocks (210 bytes) are only 2-byte
	// aligned, so a word may straddle two
	[[unroll]] for (uint i = 0; i < 8u; i++) {
		uint v = ((kq_ld32(qlo + 4u * i) >> sl) & 0x0f0f0f0fu) | (((kq_ld32(qho + 4u * i) >> sh) & 0x03030303u) << 4);
		float s = i < 4u ? s0 : s1;
		w[4u * i] = s * float(int(v & 255u) - 32);
		w[4u * i + 1u] = s * float(int((v >> 8) & 255u) - 32);
		w[4u * i + 2u] = s * float(int((v >> 16) & 255u) - 32);
		w[4u * i + 3u] = s * float(int(v >> 24) - 32);
	}
#else
	// Q4_K/Q5_K rows are 4-byte aligned (blocks of 144/176 bytes; the
	// backend checks the offsets), so quants are read a word (4 values) at a time
	float sc, m;
	kq_scale_min(bo, j, sc, m);
	float d = f16_to_f32(LD_U16(b1, bo)) * sc, mn = f16_to_f32(LD_U16(b1, bo + 2u)) * m;
#if defined(W_Q4_K)
	uint qw = (bo + 16u + 32u * (j / 2u)) >> 2;
#else
	uint qw = (bo + 48u + 32u * (j / 2u)) >> 2, hw = (bo + 16u) >> 2;
#endif
	uint sh = 4u * (j & 1u);
	[[unroll]] for (uint i = 0; i < 8u; i++) {
		uint v = (b1[qw + i] >> sh) & 0x0f0f0f0fu;
#if defined(W_Q5_K)
		v |= ((b1[hw + i] >> j) & 0x01010101u) << 4;
#endif
		w[4u * i] = d * float(v & 255u) - mn;
		w[4u * i + 1u] = d * float((v >> 8) & 255u) - mn;
		w[4u * i + 2u] = d * float((v >> 16) & 255u) - mn;
		w[4u * i + 3u] = d * float(v >> 24) - mn;
	}
#endif
}
#endif

#ifdef W_LEGACY
// d and m of the block at bo (value = d * q + m); qh (0 for q4_1).  Blocks
// are 2-byte aligned, so everything is read 16 bits at a time.
float lg_head(uint bo, out float m, out uint qh)
{
	float d = f16_to_f32(LD_U16(b1, bo));
#if defined(W_Q5_0)
	m = -16.0 * d;
#else
	m = f16_to_f32(LD_U16(b1, bo + 2u));
#endif
#if defined(W_Q4_1)
	qh = 0u;
#else
	qh = LD_U16(b1, bo + W_QS - 4u) | (LD_U16(b1, bo + W_QS - 2u) << 16);
#endif
	return d;
}

float lg_get(uint ro, uint e)
{
	uint bo = ro + (e / 32u) * W_BLOCK_BYTES, j = e % 32u, qh;
	float m, d = lg_head(bo, m, qh);
	uint q = LD_U8(b1, bo + W_QS + (j & 15u));
	q = (j < 16u ? (q & 15u) : (q >> 4)) | (((qh >> j) & 1u) << 4);
	return d * float(q) + m;
}

void w_block(uint ro, uint b, out float w[32])
{
	uint bo = ro + b * W_BLOCK_BYTES, qh;
	float m, d = lg_head(bo, m, qh);
	[[unroll]] for (uint i = 0; i < 8u; i++) {
		uint v = LD_U16(b1, bo + W_QS + 2u * i);   // bytes 2i, 2i+1: elements 2i, 2i+1, 2i+16, 2i+17
		uint h = qh >> (2u * i);
		w[2u * i] = d * float((v & 15u) | ((h & 1u) << 4)) + m;
		w[2u * i + 1u] = d * float(((v >> 8) & 15u) | (((h >> 1) & 1u) << 4)) + m;
		w[2u * i + 16u] = d * float(((v >> 4) & 15u) | (((h >> 16) & 1u) << 4)) + m;
		w[2u * i + 17u] = d * float(((v >> 12) & 15u) | (((h >> 17) & 1u) << 4)) + m;
	}
}
#endif

float w_get(uint ro, uint e)
{
#if defined(W_F32)
	return LD_F32(b1, ro + e * 4u);
#elif defined(W_F16)
	return f16_to_f32(LD_U16(b1, ro + e * 2u));
#elif defined(W_BF16)
	return bf16_to_f32(LD_U16(b1, ro + e * 2u));
#elif defined(W_Q8_0)
	uint bo = ro + (e / 32u) * W_BLOCK_BYTES;
	float d = f16_to_f32(LD_U16(b1, bo));
	uint q = LD_U8(b1, bo + 2u + (e % 32u));
	return float(int(q) - int((q & 0x80u) << 1)) * d;
#elif defined(W_KQUANT)
	return kq_get(ro, e);
#elif defined(W_LEGACY)
	return lg_get(ro, e);
#elif defined(W_Q4_0)
	uint bo = ro + (e / 32u) * W_BLOCK_BYTES;
	float d = f16_to_f32(LD_U16(b1, bo));
	uint j = e % 32u;
	uint q = LD_U8(b1, bo + 2u + (j & 15u));
	q = j < 16u ? (q & 15u) : (q >> 4);
	return float(int(q) - 8) * d;
#else
#error "no weight type"
#endif
}

#if defined(W_QUANT) && !defined(W_DEQ32)
// Dequantize block b of the row at ro into w[0..31].  Blocks are 2-byte
// aligned, so the payload is read 16 bits at a time.
void w_block(uint ro, uint b, out float w[32])
{
	uint bo = ro + b * W_BLOCK_BYTES;
	float d = f16_to_f32(LD_U16(b1, bo));
#if defined(W_Q4_0)
	[[unroll]] for (uint i = 0; i < 8u; i++) {
		uint v = LD_U16(b1, bo + 2u + 2u * i);
		w[2u * i] = float(int(v & 15u) - 8) * d;
		w[2u * i + 16u] = float(int((v >> 4) & 15u) - 8) * d;
		w[2u * i + 1u] = float(int((v >> 8) & 15u) - 8) * d;
		w[2u * i + 17u] = float(int((v >> 12) & 15u) - 8) * d;
	}
#else
	[[unroll]] for (uint i = 0; i < 16u; i++) {
		uint v = LD_U16(b1, bo + 2u + 2u * i);
		w[2u * i] = float(bitfieldExtract(int(v), 0, 8)) * d;
		w[2u * i + 1u] = float(bitfieldExtract(int(v), 8, 8)) * d;
	}
#endif
}
#endif
