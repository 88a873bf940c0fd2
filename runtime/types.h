/* types.h: tensor element types (GGML numbering, as stored in GGUF), their
 * block layouts, half-precision conversions, and the scalar reference
 * quantize/dequantize routines every faster path is checked against. */
#ifndef ST_TYPES_H
#define ST_TYPES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* GGML type ids.  Every id GGUF files use is known (so sizes can be checked
 * and an unsupported type named); st_type_traits()->supported says which
 * ones strata can compute with. */
enum st_type {
	ST_TYPE_F32 = 0, ST_TYPE_F16 = 1, ST_TYPE_Q4_0 = 2, ST_TYPE_Q4_1 = 3,
	ST_TYPE_Q5_0 = 6, ST_TYPE_Q5_1 = 7, ST_TYPE_Q8_0 = 8, ST_TYPE_Q8_1 = 9,
	ST_TYPE_Q2_K = 10, ST_TYPE_Q3_K = 11, ST_TYPE_Q4_K = 12, ST_TYPE_Q5_K = 13,
	ST_TYPE_Q6_K = 14, ST_TYPE_Q8_K = 15, ST_TYPE_IQ2_XXS = 16, ST_TYPE_IQ2_XS = 17,
	ST_TYPE_IQ3_XXS = 18, ST_TYPE_IQ1_S = 19, ST_TYPE_IQ4_NL = 20, ST_TYPE_IQ3_S = 21,
	ST_TYPE_IQ2_S = 22, ST_TYPE_IQ4_XS = 23, ST_TYPE_I8 = 24, ST_TYPE_I16 = 25,
	ST_TYPE_I32 = 26, ST_TYPE_I64 = 27, ST_TYPE_F64 = 28, ST_TYPE_IQ1_M = 29,
	ST_TYPE_BF16 = 30, ST_TYPE_TQ1_0 = 34, ST_TYPE_TQ2_0 = 35, ST_TYPE_MXFP4 = 39,
	ST_TYPE_COUNT = 40,
};

struct st_type_traits {
	const char *name;       /* "q4_0", as GGUF tools spell it */
	uint32_t block_size;    /* elements per block */
	uint32_t type_size;     /* bytes per block */
	bool supported;         /* strata computes with it */
	/* Scalar reference conversions (NULL where unsupported); n is a
	 * multiple of block_size. */
	void (*to_float)(const void *src, float *dst, int64_t n);
	void (*from_float)(const float *src, void *dst, int64_t n);
};

/* Traits of a type id, or NULL for an id GGUF does not define. */
const struct st_type_traits *st_type_traits(uint32_t type);
const char *st_type_name(uint32_t type);           /* "unknown" for bad ids */
/* Parse "q4_0"/"Q4_0"/"f16"...; returns the id or -1. */
int st_type_from_name(const char *name);
/* Bytes of one row of ne0 elements: 0, or -EINVAL if ne0 is not a multiple
 * of the block size, -EOVERFLOW on overflow. */
int st_type_row_size(uint32_t type, uint64_t ne0, uint64_t *bytes);

/* ---- block layouts (exactly as GGUF/ggml define them) ------------------ */

#define ST_QK4_0 32
typedef struct {
	uint16_t d;                 /* fp16 scale */
	uint8_t qs[ST_QK4_0 / 2];   /* nibbles: low = element j, high = element j+16 */
} st_block_q4_0;
_Static_assert(sizeof(st_block_q4_0) == 18, "q4_0 block");

#define ST_QK8_0 32
typedef struct {
	uint16_t d;                 /* fp16 scale */
	int8_t qs[ST_QK8_0];
} st_block_q8_0;
_Static_assert(sizeof(st_block_q8_0) == 34, "q8_0 block");

/* K-quants: super-blocks of 256 values (ggml-common.h).  Q4_K/Q5_K hold 8
 * sub-blocks of 32 with a 6-bit scale and a 6-bit min each, packed into
 * scales[12] (st_kq_scale_min): value = d*sc*q - dmin*m.  Q6_K holds 16
 * sub-blocks of 16 with int8 scales: value = d*sc*(q - 32).  Q8_K is the
 * activation block the K-quant dot products use. */
#define ST_QK_K 256
#define ST_K_SCALE_SIZE 12
typedef struct {
	uint16_t d;                       /* fp16 super-scale of the scales */
	uint16_t dmin;                    /* fp16 super-scale of the mins */
	uint8_t scales[ST_K_SCALE_SIZE];  /* 8 x (6-bit scale, 6-bit min) */
	uint8_t qs[ST_QK_K / 2];          /* 4-bit quants, 64 values per 32 bytes */
} st_block_q4_K;
_Static_assert(sizeof(st_block_q4_K) == 144, "q4_K block");

typedef struct {
	uint16_t d, dmin;
	uint8_t scales[ST_K_SCALE_SIZE];
	uint8_t qh[ST_QK_K / 8];          /* 5th bit of each quant */
	uint8_t qs[ST_QK_K / 2];          /* low 4 bits, as q4_K */
} st_block_q5_K;
_Static_assert(sizeof(st_block_q5_K) == 176, "q5_K block");

typedef struct {
	uint8_t ql[ST_QK_K / 2];          /* low 4 bits */
	uint8_t qh[ST_QK_K / 4];          /* high 2 bits */
	int8_t scales[ST_QK_K / 16];      /* 8-bit scale per 16 values */
	uint16_t d;                       /* fp16 super-scale */
} st_block_q6_K;
_Static_assert(sizeof(st_block_q6_K) == 210, "q6_K block");

typedef struct {
	float d;                          /* f32 scale */
	int8_t qs[ST_QK_K];
	int16_t bsums[ST_QK_K / 16];      /* sum of each group of 16 qs */
} st_block_q8_K;
_Static_assert(sizeof(st_block_q8_K) == 292, "q8_K block");

/* ---- half precision ----------------------------------------------------- */

static inline uint32_t st_f32_bits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static inline float st_bits_f32(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }

/* IEEE binary16 <-> binary32, round to nearest even, NaN/Inf/subnormals kept. */
static inline float st_fp16_to_fp32(uint16_t h)
{
	const uint32_t w = (uint32_t)h << 16;
	const uint32_t sign = w & UINT32_C(0x80000000);
	const uint32_t two_w = w + w;
	const uint32_t exp_offset = UINT32_C(0xE0) << 23;
	const float normalized = st_bits_f32((two_w >> 4) + exp_offset) * 0x1.0p-112f;
	const uint32_t magic_mask = UINT32_C(126) << 23;
	const float denormalized = st_bits_f32((two_w >> 17) | magic_mask) - 0.5f;
	const uint32_t cutoff = UINT32_C(1) << 27;
	return st_bits_f32(sign | (two_w < cutoff ? st_f32_bits(denormalized) : st_f32_bits(normalized)));
}

static inline uint16_t st_fp32_to_fp16(float f)
{
	float fa = f < 0 ? -f : f;
	float base = (fa * 0x1.0p+112f) * 0x1.0p-110f;
	const uint32_t w = st_f32_bits(f);
	const uint32_t shl1_w = w + w;
	const uint32_t sign = w & UINT32_C(0x80000000);
	uint32_t bias = shl1_w & UINT32_C(0xFF000000);
	if (bias < UINT32_C(0x71000000))
		bias = UINT32_C(0x71000000);
	base = st_bits_f32((bias >> 1) + UINT32_C(0x07800000)) + base;
	const uint32_t bits = st_f32_bits(base);
	const uint32_t exp_bits = (bits >> 13) & UINT32_C(0x00007C00);
	const uint32_t mantissa_bits = bits & UINT32_C(0x00000FFF);
	const uint32_t nonsign = exp_bits + mantissa_bits;
	return (uint16_t)((sign >> 16) | (shl1_w > UINT32_C(0xFF000000) ? UINT16_C(0x7E00) : nonsign));
}

/* bfloat16: the top half of a float, rounded to nearest even; NaN stays NaN. */
static inline float st_bf16_to_fp32(uint16_t h) { return st_bits_f32((uint32_t)h << 16); }
static inline uint16_t st_fp32_to_bf16(float f)
{
	uint32_t u = st_f32_bits(f);
	if ((u & 0x7fffffffu) > 0x7f800000u)
		return (uint16_t)((u >> 16) | 64);
	return (uint16_t)((u + (0x7fffu + ((u >> 16) & 1))) >> 16);
}

#endif
