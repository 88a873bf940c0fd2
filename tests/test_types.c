/* test_types.c: type table, half-precision conversions and the reference
 * Q8_0/Q4_0 quantizers, checked against independent computations. */
#include <errno.h>
#include <math.h>
#include <string.h>

#include "tap.h"
#include "types.h"

int main(void)
{
	/* fp16: against the compiler's own _Float16 conversion (independent). */
	int bad = 0;
	for (uint32_t h = 0; h < 65536; h++) {
		_Float16 hf;
		uint16_t hh = (uint16_t)h;
		memcpy(&hf, &hh, 2);
		float want = (float)hf, got = st_fp16_to_fp32(hh);
		if (!(isnan(want) && isnan(got)) && memcmp(&want, &got, 4))
			bad++;
	}
	ok(bad == 0, "fp16->fp32 matches _Float16 for all 65536 values (%d differ)", bad);
	bad = 0;
	for (uint32_t i = 0; i < 2000000; i++) {
		uint32_t u = i * 2654435761u;
		float f = st_bits_f32(u);
		_Float16 want = (_Float16)f;
		uint16_t w, g = st_fp32_to_fp16(f);
		memcpy(&w, &want, 2);
		if (isnan(f) ? !((g & 0x7c00) == 0x7c00 && (g & 0x3ff)) : w != g)
			bad++;
	}
	ok(bad == 0, "fp32->fp16 rounds like _Float16 on 2M bit patterns (%d differ)", bad);

	/* bf16: exact for values with 8 significant bits, rounds to nearest even. */
	ok(st_fp32_to_bf16(1.0f) == 0x3f80 && st_bf16_to_fp32(0x3f80) == 1.0f, "bf16 1.0");
	ok(st_fp32_to_bf16(st_bits_f32(0x3f808000)) == 0x3f80, "bf16 tie rounds to even (down)");
	ok(st_fp32_to_bf16(st_bits_f32(0x3f818000)) == 0x3f82, "bf16 tie rounds to even (up)");
	ok(isnan(st_bf16_to_fp32(st_fp32_to_bf16(NAN))), "bf16 NaN stays NaN");

	/* Table sanity for the types strata computes with. */
	const struct st_type_traits *q4 = st_type_traits(ST_TYPE_Q4_0), *q8 = st_type_traits(ST_TYPE_Q8_0);
	ok(q4 && q4->block_size == 32 && q4->type_size == 18 && q4->supported, "q4_0 traits");
	ok(q8 && q8->block_size == 32 && q8->type_size == 34 && q8->supported, "q8_0 traits");
	ok(st_type_traits(4) == NULL && st_type_traits(1000) == NULL, "unknown ids have no traits");
	ok(st_type_traits(ST_TYPE_Q4_K)->supported && !st_type_traits(ST_TYPE_Q2_K)->supported,
	   "q4_K supported, q2_K known but not supported");
	uint64_t rs;
	ok(st_type_row_size(ST_TYPE_Q4_0, 64, &rs) == 0 && rs == 36, "q4_0 row of 64 is 36 bytes");
	ok(st_type_row_size(ST_TYPE_Q4_0, 33, &rs) == -EINVAL, "q4_0 row of 33 rejected");
	ok(st_type_row_size(ST_TYPE_Q8_K, UINT64_MAX - UINT64_MAX % 256, &rs) == -EOVERFLOW,
	   "row size overflow detected");
	ok(st_type_from_name("Q8_0") == ST_TYPE_Q8_0 && st_type_from_name("bf16") == ST_TYPE_BF16 &&
	   st_type_from_name("nope") == -1, "type names parse");

	/* Hand-built blocks decode to values worked out by hand. */
	st_block_q4_0 b4;
	b4.d = st_fp32_to_fp16(0.5f);
	for (int j = 0; j < 16; j++)
		b4.qs[j] = (uint8_t)(j | ((15 - j) << 4));
	float y[32];
	st_type_traits(ST_TYPE_Q4_0)->to_float(&b4, y, 32);
	ok(y[0] == -4.0f && y[15] == 3.5f && y[16] == 3.5f && y[31] == -4.0f, "q4_0 nibble order and offset 8");
	st_block_q8_0 b8;
	b8.d = st_fp32_to_fp16(0.25f);
	for (int j = 0; j < 32; j++)
		b8.qs[j] = (int8_t)(j - 16);
	st_type_traits(ST_TYPE_Q8_0)->to_float(&b8, y, 32);
	ok(y[0] == -4.0f && y[16] == 0.0f && y[31] == 3.75f, "q8_0 decode");

	/* Q4_1 {d, m, qs[16]}, Q5_0 {d, qh[4], qs[16]}, Q5_1 {d, m, qh[4],
	 * qs[16]} as raw little-endian bytes (ggml-common.h): nibbles as
	 * Q4_0, bit j of qh is the 5th bit of element j. */
	uint8_t raw[24];
	const uint8_t h05[2] = { 0x00, 0x38 }, hm1[2] = { 0x00, 0xBC }, h025[2] = { 0x00, 0x34 },
		      h1[2] = { 0x00, 0x3C };
	memcpy(raw, h05, 2);
	memcpy(raw + 2, hm1, 2);
	for (int j = 0; j < 16; j++)
		raw[4 + j] = (uint8_t)(j | ((15 - j) << 4));
	const struct st_type_traits *t41 = st_type_traits(ST_TYPE_Q4_1);
	ok(t41 && t41->supported && t41->block_size == 32 && t41->type_size == 20, "q4_1 traits (32, 20 bytes)");
	t41->to_float(raw, y, 32);
	ok(y[0] == -1.0f && y[1] == -0.5f && y[15] == 6.5f && y[16] == 6.5f && y[31] == -1.0f,
	   "q4_1 decode: d * q + m, nibble order as q4_0");
	memcpy(raw, h05, 2);
	const uint8_t qh50[4] = { 0x01, 0x00, 0x00, 0x80 };   /* elements 0 and 31 */
	memcpy(raw + 2, qh50, 4);
	for (int j = 0; j < 16; j++)
		raw[6 + j] = (uint8_t)(j | ((15 - j) << 4));
	const struct st_type_traits *t50 = st_type_traits(ST_TYPE_Q5_0);
	ok(t50 && t50->supported && t50->type_size == 22, "q5_0 traits (32, 22 bytes)");
	t50->to_float(raw, y, 32);
	ok(y[0] == 0.0f && y[1] == -7.5f && y[15] == -0.5f && y[16] == -0.5f && y[30] == -7.5f && y[31] == 0.0f,
	   "q5_0 decode: d * (q - 16), qh bit j is element j's 5th bit");
	memcpy(raw, h025, 2);
	memcpy(raw + 2, h1, 2);
	const uint8_t qh51[4] = { 0x02, 0x00, 0x01, 0x00 };   /* elements 1 and 16 */
	memcpy(raw + 4, qh51, 4);
	for (int j = 0; j < 16; j++)
		raw[8 + j] = (uint8_t)(j | ((15 - j) << 4));
	const struct st_type_traits *t51 = st_type_traits(ST_TYPE_Q5_1);
	ok(t51 && t51->supported && t51->type_size == 24, "q5_1 traits (32, 24 bytes)");
	t51->to_float(raw, y, 32);
	ok(y[0] == 1.0f && y[1] == 5.25f && y[16] == 8.75f && y[17] == 4.5f && y[31] == 1.0f,
	   "q5_1 decode: d * q + m, 5th bits of elements 1 and 16");
	ok(st_type_from_name("Q5_1") == ST_TYPE_Q5_1 && st_type_from_name("q4_1") == ST_TYPE_Q4_1 &&
	   st_type_from_name("q5_0") == ST_TYPE_Q5_0, "q4_1/q5_0/q5_1 names parse");

	/* Round trips: error within half a quantization step of each block. */
	enum { N = 4096 };
	static float x[N], r[N];
	static uint8_t q[N * 4];
	uint32_t s = 12345;
	for (int i = 0; i < N; i++) {
		s = s * 1664525u + 1013904223u;
		x[i] = ((float)(s >> 8) / 16777216.0f - 0.5f) * 4.0f;
	}
	const uint32_t ts[] = { ST_TYPE_F32, ST_TYPE_F16, ST_TYPE_BF16, ST_TYPE_Q8_0, ST_TYPE_Q4_0,
				ST_TYPE_Q4_1, ST_TYPE_Q5_0, ST_TYPE_Q5_1 };
	for (size_t k = 0; k < sizeof ts / sizeof ts[0]; k++) {
		const struct st_type_traits *t = st_type_traits(ts[k]);
		t->from_float(x, q, N);
		t->to_float(q, r, N);
		double worst = 0, num = 0, den = 0;
		for (int b = 0; b < N; b += 32) {
			float amax = 0, mn = x[b], mx = x[b];
			for (int j = 0; j < 32; j++) {
				amax = fmaxf(amax, fabsf(x[b + j]));
				mn = fminf(mn, x[b + j]);
				mx = fmaxf(mx, x[b + j]);
			}
			/* Bound on |x - deq(q(x))|: half a step d/2 plus the fp16
			 * rounding of the scale (|q| * d * 2^-11).  Q4_0 maps the
			 * largest magnitude to -8, so an element of the opposite sign
			 * and the same magnitude clamps at +7: a full step there.
			 * f16/bf16: half an ulp relative to each value (11/8 bits). */
			double bound = 1e-30;
			if (ts[k] == ST_TYPE_Q8_0)
				bound = amax / 127.0 * (0.5 + 127.0 / 2048.0);
			else if (ts[k] == ST_TYPE_Q4_0)
				bound = amax / 8.0 * (1.0 + 8.0 / 2048.0);
			else if (ts[k] == ST_TYPE_Q5_0)   /* as Q4_0 with 16 steps */
				bound = amax / 16.0 * (1.0 + 16.0 / 2048.0);
			else if (ts[k] == ST_TYPE_Q4_1 || ts[k] == ST_TYPE_Q5_1)
				/* half a step of (max - min) / (2^bits - 1), plus the
				 * fp16 rounding of d (q * d <= max - min) and of m */
				bound = (mx - mn) / (ts[k] == ST_TYPE_Q4_1 ? 15.0 : 31.0) / 2.0 +
					((double)mx - mn) / 2048.0 + fabs(mn) / 2048.0;
			for (int j = 0; j < 32; j++) {
				double rel = ts[k] == ST_TYPE_F16 ? fabs(x[b + j]) / 2048.0 + 3e-8 :
					     ts[k] == ST_TYPE_BF16 ? fabs(x[b + j]) / 256.0 : 0;
				double e = fabs((double)x[b + j] - r[b + j]) - (bound + rel) * (1 + 1e-6);
				if (e > worst)
					worst = e;
				num += ((double)x[b + j] - r[b + j]) * ((double)x[b + j] - r[b + j]);
				den += (double)x[b + j] * x[b + j];
			}
		}
		ok(worst <= 0, "%s round trip within its error bound (nmse %.3g)", t->name, num / den);
	}
	return tap_done();
}
