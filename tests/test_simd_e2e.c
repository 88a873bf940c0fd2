/* test_simd_e2e.c: whole models on every CPU kernel path.
 *  - stories260K (F32 weights): greedy generation is token-identical on the
 *    scalar path and every SIMD path the CPU has, with 1 and 2 threads, and
 *    1 vs 2 threads give bit-identical logits; with an F16 KV cache, the
 *    tokens equal the reference forward pass's on every path.
 *  - mkmodel 'custom' (dim 256, ff 512) in Q8_0 and Q4_0: logits of a prefill + decodes are
 *    bit-identical on every path and with 1, 2 and 3 threads (the quantized
 *    kernels' exact rule), and close to the scalar reference forward pass. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cpu_features.h"
#include "cpu_kernels.h"
#include "mkmodel.h"
#include "strata.h"
#include "tap.h"
#include "types.h"

#define N_GEN 40

/* KV cache type of the runs below (stories() also runs with ST_KV_F16). */
static uint32_t g_kv = ST_KV_F32;

/* Greedy from BOS; tokens into out, all logits rows concatenated into lg
 * (N_GEN * n_vocab) if lg != NULL. */
static int run(struct st_model *m, uint32_t n_threads, bool reference, int prefill, int32_t *out, float *lg)
{
	struct st_session_params p;
	struct st_session *s = NULL;
	const uint32_t nv = st_model_desc(m)->n_vocab;
	int rc;
	st_session_params_default(&p);
	p.n_threads = n_threads;
	p.reference = reference;
	p.kv_type = g_kv;
	rc = st_session_create(m, &p, &s);
	if (rc)
		return rc;
	int32_t prompt[8] = { 1, 5, 9, 13, 17, 21, 25, 29 };
	int32_t tok = 1;
	int i = 0;
	if (prefill) {
		rc = st_session_eval(s, prompt, prefill, false);
		if (rc < 0)
			goto out;
	}
	for (; i < N_GEN; i++) {
		if (i > 0 || !prefill) {
			rc = st_session_eval(s, &tok, 1, false);
			if (rc < 0)
				goto out;
		}
		const float *l = st_session_logits(s, -1);
		if (lg)
			memcpy(lg + (size_t)i * nv, l, nv * sizeof(float));
		int best = 0;
		for (uint32_t v = 1; v < nv; v++)
			if (l[v] > l[best])
				best = (int)v;
		out[i] = tok = best;
	}
	rc = 0;
out:
	st_session_destroy(s);
	return rc;
}

static double nmse(const float *a, const float *b, size_t n)
{
	double num = 0, den = 0;
	for (size_t i = 0; i < n; i++) {
		double d = (double)a[i] - b[i];
		num += d * d;
		den += (double)a[i] * a[i];
	}
	return den > 0 ? num / den : num;
}

static void stories(const char *dir)
{
	char path[1024];
	struct st_model *m;
	snprintf(path, sizeof(path), "%s/stories260K/stories260K.gguf", dir);
	if (st_model_open(path, &m)) {
		tap_skip("stories260K.gguf: %s", st_last_error());
		return;
	}
	const uint32_t nv = st_model_desc(m)->n_vocab;
	int32_t ref[N_GEN], got[N_GEN];
	float *l1 = malloc((size_t)N_GEN * nv * 4), *l2 = malloc((size_t)N_GEN * nv * 4);
	st_cpu_kernels_set_isa(ST_ISA_SCALAR);
	ok(run(m, 1, false, 0, ref, NULL) == 0, "stories260K greedy on the scalar kernel path");
	for (int isa = 1; isa < ST_ISA_COUNT; isa++) {
		if (!st_cpu_isa_supported((enum st_isa)isa))
			continue;
		st_cpu_kernels_set_isa((enum st_isa)isa);
		int rc1 = run(m, 1, false, 0, got, l1);
		int same1 = !memcmp(ref, got, sizeof(ref));
		int rc2 = run(m, 2, false, 0, got, l2);
		int same2 = !memcmp(ref, got, sizeof(ref));
		ok(!rc1 && !rc2 && same1 && same2 && !memcmp(l1, l2, (size_t)N_GEN * nv * 4),
		   "stories260K: %d greedy tokens on %s identical to the scalar path (1 and 2 threads; logits 1 == 2 threads)",
		   N_GEN, st_cpu_isa_name((enum st_isa)isa));
	}
	st_cpu_kernels_set_isa(ST_ISA_AUTO);
	/* F16 KV cache: the scalar reference forward pass against the CPU
	 * backend's F16-cache attention on every path (prefill of 8 + decode) */
	g_kv = ST_KV_F16;
	int32_t ref16[N_GEN];
	ok(run(m, 1, true, 8, ref16, NULL) == 0, "stories260K greedy, f16 KV, reference forward pass");
	for (int isa = 0; isa < ST_ISA_COUNT; isa++) {
		if (!st_cpu_isa_supported((enum st_isa)isa))
			continue;
		st_cpu_kernels_set_isa((enum st_isa)isa);
		int rc1 = run(m, 2, false, 8, got, NULL);
		ok(!rc1 && !memcmp(ref16, got, sizeof(ref16)),
		   "stories260K, f16 KV: %d greedy tokens on %s (2 threads) identical to the reference forward pass",
		   N_GEN, st_cpu_isa_name((enum st_isa)isa));
	}
	g_kv = ST_KV_F32;
	st_cpu_kernels_set_isa(ST_ISA_AUTO);
	free(l1);
	free(l2);
	st_model_close(m);
}

static void quantized(uint32_t type)
{
	struct st_mkmodel_params p;
	char path[] = "/tmp/strata_simd_e2e_XXXXXX";
	int fd = mkstemp(path);
	if (fd < 0) {
		ok(0, "temp file");
		return;
	}
	close(fd);
	st_mkmodel_preset("custom", &p);   /* big enough that matmuls use the pool */
	p.n_embd = 256;
	p.n_ff = 512;
	p.n_head = 4;
	p.n_head_kv = 2;
	p.type = type;
	p.seed = 7;
	struct st_model *m = NULL;
	if (st_mkmodel_write(&p, path, NULL, NULL) || st_model_open(path, &m)) {
		ok(0, "mkmodel tiny %s: %s", st_type_name(type), st_last_error());
		unlink(path);
		return;
	}
	const uint32_t nv = st_model_desc(m)->n_vocab;
	const size_t n = (size_t)N_GEN * nv;
	float *l0 = malloc(n * 4), *l = malloc(n * 4), *lr = malloc(n * 4);
	int32_t t0[N_GEN], t[N_GEN], tr[N_GEN];
	st_cpu_kernels_set_isa(ST_ISA_SCALAR);
	int rc = run(m, 1, false, 5, t0, l0);
	ok(rc == 0, "custom %s: prefill 5 + %d decodes on the scalar kernel path", st_type_name(type), N_GEN - 1);
	for (int isa = 0; isa < ST_ISA_COUNT; isa++) {
		if (!st_cpu_isa_supported((enum st_isa)isa))
			continue;
		st_cpu_kernels_set_isa((enum st_isa)isa);
		int bad = 0;
		for (uint32_t th = 1; th <= 3; th++) {
			bad += run(m, th, false, 5, t, l) != 0;
			bad += memcmp(l, l0, n * 4) != 0 || memcmp(t, t0, sizeof(t)) != 0;
		}
		ok(bad == 0, "custom %s on %s: logits bit-identical to the scalar path with 1, 2, 3 threads",
		   st_type_name(type), st_cpu_isa_name((enum st_isa)isa));
	}
	st_cpu_kernels_set_isa(ST_ISA_AUTO);
	/* against the scalar reference forward pass (double sums, f32
	 * activations: quantizing activations to Q8 costs some accuracy) */
	rc = run(m, 1, true, 5, tr, lr);
	double e = nmse(lr, l0, nv);   /* the prefill's logits (later rows follow different tokens) */
	ok(rc == 0 && e < 1e-3, "custom %s: Q8-activation prefill logits vs reference forward pass NMSE %.3g < 1e-3",
	   st_type_name(type), e);
	free(l0);
	free(l);
	free(lr);
	st_model_close(m);
	unlink(path);
}

int main(void)
{
	const char *dir = tap_models_dir();
	if (dir)
		stories(dir);
	else
		tap_skip("models directory not found (set ST_MODELS_DIR): stories260K part skipped");
	quantized(ST_TYPE_Q8_0);
	quantized(ST_TYPE_Q4_0);
	return tap_done();
}
