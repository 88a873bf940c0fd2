/* attn_f16.c: attention helpers over an F16 KV cache (attn_f16.h): scalar,
 * AVX2+F16C and AVX-512 (chosen at run time, compiled with target
 * attributes like simd_x86.c), NEON on aarch64.  The f32 versions are in
 * quant_dot.c / simd_x86.c / simd_arm.c; these are the same loops with each
 * cached half converted to f32 on load (exact), so the f32 and f16 caches
 * give the same results for values an f16 holds. */
#include "attn_f16.h"

#include "types.h"

static void dots_f16_scalar(const float *q, const uint16_t *k, size_t ks, int n, int hd, float scale, float *out)
{
	for (int j = 0; j < n; j++, k += ks) {
		float s = 0.0f;
		for (int i = 0; i < hd; i++)
			s += q[i] * st_fp16_to_fp32(k[i]);
		out[j] = s * scale;
	}
}

static void wsum_f16_scalar(const float *p, const uint16_t *v, size_t vs, int n, int hd, float *o)
{
	for (int i = 0; i < hd; i++)
		o[i] = 0.0f;
	for (int j = 0; j < n; j++, v += vs)
		for (int i = 0; i < hd; i++)
			o[i] += p[j] * st_fp16_to_fp32(v[i]);
}

/* ===================================================================== */
#if defined(__x86_64__)

#include <immintrin.h>

#define TGT_AVX2 __attribute__((target("avx2,fma,f16c")))
#define TGT_AVX512 __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512dq")))

TGT_AVX2 static inline __m256 ld8h(const uint16_t *p)
{
	return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p));
}

TGT_AVX2 static inline float hsum8(__m256 v)
{
	__m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
	s = _mm_add_ps(s, _mm_movehl_ps(s, s));
	s = _mm_add_ss(s, _mm_movehdup_ps(s));
	return _mm_cvtss_f32(s);
}

TGT_AVX2 static void avx2_dots_f16(const float *q, const uint16_t *k, size_t ks, int n, int hd, float scale,
				   float *out)
{
	for (int j = 0; j < n; j++, k += ks) {
		__m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
		int i = 0;
		for (; i + 16 <= hd; i += 16) {
			a0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), ld8h(k + i), a0);
			a1 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i + 8), ld8h(k + i + 8), a1);
		}
		for (; i + 8 <= hd; i += 8)
			a0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), ld8h(k + i), a0);
		float s = hsum8(_mm256_add_ps(a0, a1));
		for (; i < hd; i++)
			s += q[i] * st_fp16_to_fp32(k[i]);
		out[j] = s * scale;
	}
}

/* 32 columns at a time kept in registers over j, then 8, then single ones */
TGT_AVX2 static void avx2_wsum_f16(const float *p, const uint16_t *v, size_t vs, int n, int hd, float *o)
{
	int i = 0;
	for (; i + 32 <= hd; i += 32) {
		__m256 a[4] = { _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps() };
		const uint16_t *vj = v + i;
		for (int j = 0; j < n; j++, vj += vs) {
			const __m256 pj = _mm256_set1_ps(p[j]);
			for (int c = 0; c < 4; c++)
				a[c] = _mm256_fmadd_ps(pj, ld8h(vj + 8 * c), a[c]);
		}
		for (int c = 0; c < 4; c++)
			_mm256_storeu_ps(o + i + 8 * c, a[c]);
	}
	for (; i + 8 <= hd; i += 8) {
		__m256 a = _mm256_setzero_ps();
		const uint16_t *vj = v + i;
		for (int j = 0; j < n; j++, vj += vs)
			a = _mm256_fmadd_ps(_mm256_set1_ps(p[j]), ld8h(vj), a);
		_mm256_storeu_ps(o + i, a);
	}
	for (; i < hd; i++) {
		float acc = 0.0f;
		for (int j = 0; j < n; j++)
			acc += p[j] * st_fp16_to_fp32(v[(size_t)j * vs + i]);
		o[i] = acc;
	}
}

static inline __mmask16 mask16(int left)
{
	return left >= 16 ? (__mmask16)0xFFFF : left > 0 ? (__mmask16)((1u << left) - 1) : (__mmask16)0;
}

/* up to 16 halves (masked: lanes past `m` read nothing and are 0.0) */
TGT_AVX512 static inline __m512 ld16h(__mmask16 m, const uint16_t *p)
{
	return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, p));
}

TGT_AVX512 static void avx512_dots_f16(const float *q, const uint16_t *k, size_t ks, int n, int hd, float scale,
				       float *out)
{
	for (int j = 0; j < n; j++, k += ks) {
		__m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
		int i = 0;
		for (; i + 32 <= hd; i += 32) {
			a0 = _mm512_fmadd_ps(_mm512_loadu_ps(q + i), ld16h(0xFFFF, k + i), a0);
			a1 = _mm512_fmadd_ps(_mm512_loadu_ps(q + i + 16), ld16h(0xFFFF, k + i + 16), a1);
		}
		for (; i < hd; i += 16) {
			const __mmask16 m = mask16(hd - i);
			a0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, q + i), ld16h(m, k + i), a0);
		}
		out[j] = _mm512_reduce_add_ps(_mm512_add_ps(a0, a1)) * scale;
	}
}

/* 64 columns at a time (4 x 16 lanes, the last group masked) */
TGT_AVX512 static void avx512_wsum_f16(const float *p, const uint16_t *v, size_t vs, int n, int hd, float *o)
{
	for (int i = 0; i < hd; i += 64) {
		const int w = hd - i >= 64 ? 64 : hd - i;
		__mmask16 m[4];
		for (int c = 0; c < 4; c++)
			m[c] = mask16(w - 16 * c);
		__m512 a[4] = { _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps() };
		const uint16_t *vj = v + i;
		if (w == 64) {
			for (int j = 0; j < n; j++, vj += vs) {
				const __m512 pj = _mm512_set1_ps(p[j]);
				for (int c = 0; c < 4; c++)
					a[c] = _mm512_fmadd_ps(pj, ld16h(0xFFFF, vj + 16 * c), a[c]);
			}
		} else {
			for (int j = 0; j < n; j++, vj += vs) {
				const __m512 pj = _mm512_set1_ps(p[j]);
				for (int c = 0; c < 4; c++)
					a[c] = _mm512_fmadd_ps(pj, ld16h(m[c], vj + 16 * c), a[c]);
			}
		}
		for (int c = 0; c < 4; c++)
			_mm512_mask_storeu_ps(o + i + 16 * c, m[c], a[c]);
	}
}

static int ops_f16_path(enum st_isa isa, st_vec_dots_f16_fn *dots, st_vec_wsum_f16_fn *wsum)
{
	if (isa == ST_ISA_AVX2) {
		*dots = avx2_dots_f16;
		*wsum = avx2_wsum_f16;
		return 1;
	}
	if (isa == ST_ISA_AVX512 || isa == ST_ISA_AVX512_VNNI) {
		*dots = avx512_dots_f16;
		*wsum = avx512_wsum_f16;
		return 1;
	}
	return 0;
}

/* ===================================================================== */
#elif defined(__aarch64__)

#include <arm_neon.h>

static inline float32x4_t ld4h(const uint16_t *p)
{
	return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(p)));
}

static void neon_dots_f16(const float *q, const uint16_t *k, size_t ks, int n, int hd, float scale, float *out)
{
	for (int j = 0; j < n; j++, k += ks) {
		float32x4_t a0 = vdupq_n_f32(0.0f), a1 = vdupq_n_f32(0.0f);
		int i = 0;
		for (; i + 8 <= hd; i += 8) {
			a0 = vfmaq_f32(a0, vld1q_f32(q + i), ld4h(k + i));
			a1 = vfmaq_f32(a1, vld1q_f32(q + i + 4), ld4h(k + i + 4));
		}
		for (; i + 4 <= hd; i += 4)
			a0 = vfmaq_f32(a0, vld1q_f32(q + i), ld4h(k + i));
		float s = vaddvq_f32(vaddq_f32(a0, a1));
		for (; i < hd; i++)
			s += q[i] * st_fp16_to_fp32(k[i]);
		out[j] = s * scale;
	}
}

/* 16 columns at a time kept in registers over j, then 4, then single ones */
static void neon_wsum_f16(const float *p, const uint16_t *v, size_t vs, int n, int hd, float *o)
{
	int i = 0;
	for (; i + 16 <= hd; i += 16) {
		float32x4_t a[4] = { vdupq_n_f32(0.0f), vdupq_n_f32(0.0f), vdupq_n_f32(0.0f), vdupq_n_f32(0.0f) };
		const uint16_t *vj = v + i;
		for (int j = 0; j < n; j++, vj += vs)
			for (int c = 0; c < 4; c++)
				a[c] = vfmaq_n_f32(a[c], ld4h(vj + 4 * c), p[j]);
		for (int c = 0; c < 4; c++)
			vst1q_f32(o + i + 4 * c, a[c]);
	}
	for (; i + 4 <= hd; i += 4) {
		float32x4_t a = vdupq_n_f32(0.0f);
		const uint16_t *vj = v + i;
		for (int j = 0; j < n; j++, vj += vs)
			a = vfmaq_n_f32(a, ld4h(vj), p[j]);
		vst1q_f32(o + i, a);
	}
	for (; i < hd; i++) {
		float acc = 0.0f;
		for (int j = 0; j < n; j++)
			acc += p[j] * st_fp16_to_fp32(v[(size_t)j * vs + i]);
		o[i] = acc;
	}
}

static int ops_f16_path(enum st_isa isa, st_vec_dots_f16_fn *dots, st_vec_wsum_f16_fn *wsum)
{
	if (isa != ST_ISA_NEON && isa != ST_ISA_NEON_DOTPROD)
		return 0;
	*dots = neon_dots_f16;
	*wsum = neon_wsum_f16;
	return 1;
}

/* ===================================================================== */
#else
static int ops_f16_path(enum st_isa isa, st_vec_dots_f16_fn *dots, st_vec_wsum_f16_fn *wsum)
{
	(void)isa;
	(void)dots;
	(void)wsum;
	return 0;
}
#endif

void st_vec_ops_f16_get(enum st_isa isa, st_vec_dots_f16_fn *dots, st_vec_wsum_f16_fn *wsum)
{
	*dots = dots_f16_scalar;
	*wsum = wsum_f16_scalar;
	if (isa == ST_ISA_SCALAR || !st_cpu_isa_supported(isa))
		return;
	ops_f16_path(isa, dots, wsum);
}
