// wtype.glsl: reading one weight element or one 32-element block from b1
// (src0), for the weight type chosen at build time by -DW_F32, -DW_F16,
// -DW_BF16, -DW_Q8_0 or -DW_Q4_0.  `ro` is the byte offset of the row.
// q4_0 block: fp16 d, 16 bytes of nibbles (low = element j, high = j+16),
// value (q - 8) * d.  q8_0 block: fp16 d, 32 int8, value q * d.

#if defined(W_Q4_0)
#define W_BLOCK 32u
#define W_QUANT
#define W_BLOCK_BYTES 18u
#elif defined(W_Q8_0)
#define W_BLOCK 32u
#define W_QUANT
#define W_BLOCK_BYTES 34u
#else
#define W_BLOCK 1u
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

#ifdef W_QUANT
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
