/* test_mkmodel_logits: a generated model of every weight type gives logits
 * close to the F32 model of the same seed, through the session API.
 *
 * The F32 model's weights are the exact values; each other type holds the
 * same values rounded, so the logits differ only by the rounding error
 * carried through the layers.  Measured by NMSE = sum((a-b)^2)/sum(a^2)
 * over all positions.
 *
 * Measured on this tiny model (2 layers, dim 64; seeds 1, 2, 3, 99, 1234,
 * 2024): f16 2.1e-7..2.9e-7, bf16 1.3e-5..2.0e-5, q8_0 2.4e-4..3.0e-4,
 * q4_0 0.030..0.051.  That matches the rounding of each type: the
 * per-weight relative error squared is ~8e-8 (f16, 11-bit mantissa), ~5e-6
 * (bf16, 8 bits), ~6e-5 (q8_0: step max/127 on ~3.4 sd blocks) and ~1.5e-2
 * (q4_0: step max/8), and some 15 matrices (embedding, 7 per layer, head)
 * add their errors on the way to the logits.  Thresholds are 3-30x above
 * the largest measurement (f16 1e-5, bf16 2e-4, q8_0 2e-3, q4_0 0.15): a
 * seed change cannot cross them, while a wrong dequantization (errors of
 * order 1, NMSE ~1) or a type mix-up (q4_0 data read as q8_0) fails.
 * Q4_1, Q5_0, Q5_1 over the same seeds: 0.028..0.038, 8.4e-3..1.1e-2,
 * 6.6e-3..8.9e-3 (thresholds 0.12, 0.04, 0.03), and 5 bits < 4 bits.  Every
 * type must also differ from F32 (NMSE > 0, so the converted weights really
 * ran).
 *
 * K-quants run on a dim-256/ff-512 shape (rows of whole 256-blocks; on tiny
 * they would all fall back to q5_0/q5_1/q8_0).  Measured over the same seeds: q6_K
 * 1.7e-3..2.0e-3, q5_K 6.4e-3..7.4e-3, q4_K 0.024..0.028, q4_K_M
 * 0.018..0.022, q5_K_M 5.4e-3..6.1e-3: each step of one bit less is ~4x
 * (the step size doubles), as for q8_0 -> q6_K (2 bits, ~7x with the
 * activation rounding).  Thresholds 3.5-5x above (q6_K 1e-2, q5_K and
 * q5_K_M 3e-2, q4_K and q4_K_M 0.1), plus the ordering by bits. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mkmodel.h"
#include "strata.h"
#include "tap.h"
#include "types.h"

#define N_TOK 12

static char tmpdir[256];

/* logits of N_TOK tokens (prefill, logits_all) -> malloc'd array */
static float *run_p(struct st_mkmodel_params p, uint32_t *n_vocab);

static float *run(uint32_t type, const char *shape, uint32_t *n_vocab)
{
	struct st_mkmodel_params p;
	st_mkmodel_preset(shape, &p);
	p.type = type;
	return run_p(p, n_vocab);
}

/* the dim-256 shape where K-quant rows are whole 256-blocks */
static float *run_k(const char *type, uint32_t *n_vocab)
{
	struct st_mkmodel_params p;
	st_mkmodel_preset("custom", &p);
	p.n_embd = 256;
	p.n_ff = 512;
	if (st_mkmodel_parse_type(type, &p) < 0)
		return NULL;
	return run_p(p, n_vocab);
}

static float *run_p(struct st_mkmodel_params p, uint32_t *n_vocab)
{
	struct st_model *m = NULL;
	struct st_session *s = NULL;
	struct st_session_params sp;
	char path[300];
	float *out = NULL;
	int32_t toks[N_TOK];
	int rc;

	uint32_t type = p.type;
	p.seed = 1234;
	snprintf(path, sizeof(path), "%s/l_%s_%u.gguf", tmpdir, st_type_name(type), p.mix);
	if (st_mkmodel_write(&p, path, NULL, NULL) < 0) {
		diag("mkmodel %s: %s", st_type_name(type), st_last_error());
		return NULL;
	}
	rc = st_model_open(path, &m);
	if (rc < 0) {
		diag("open %s: %s", st_type_name(type), st_last_error());
		goto out;
	}
	st_session_params_default(&sp);
	sp.n_ctx = 64;
	sp.n_threads = 1;
	if (st_session_create(m, &sp, &s) < 0) {
		diag("session %s: %s", st_type_name(type), st_last_error());
		goto out;
	}
	*n_vocab = st_model_desc(m)->n_vocab;
	toks[0] = 1;
	for (int i = 1; i < N_TOK; i++)
		toks[i] = (int32_t)((i * 37 + 11) % (int)*n_vocab);
	rc = st_session_eval(s, toks, N_TOK, true);
	if (rc != N_TOK) {
		diag("eval %s: %d %s", st_type_name(type), rc, st_last_error());
		goto out;
	}
	out = malloc((size_t)N_TOK * *n_vocab * sizeof(float));
	for (int i = 0; i < N_TOK; i++)
		memcpy(out + (size_t)i * *n_vocab, st_session_logits(s, i), *n_vocab * sizeof(float));
out:
	st_session_destroy(s);
	st_model_close(m);
	unlink(path);
	return out;
}

int main(void)
{
	static const struct { uint32_t type; double thr; } types[] = {
		{ ST_TYPE_F16, 1e-5 }, { ST_TYPE_BF16, 2e-4 }, { ST_TYPE_Q8_0, 2e-3 }, { ST_TYPE_Q4_0, 0.15 },
		{ ST_TYPE_Q4_1, 0.12 }, { ST_TYPE_Q5_0, 0.04 }, { ST_TYPE_Q5_1, 0.03 },
	};
	double lnmse[8] = { 0 };
	double knmse[5] = { 0 };
	static const struct { const char *name; double thr; } ktypes[] = {
		{ "q6_K", 1e-2 }, { "q5_K", 3e-2 }, { "q4_K", 0.1 }, { "q4_k_m", 0.1 }, { "q5_k_m", 3e-2 },
	};
	const char *t = getenv("TMPDIR");
	uint32_t nv = 0, nv2 = 0;
	float *ref;
	snprintf(tmpdir, sizeof(tmpdir), "%s/st_mklogits_XXXXXX", t ? t : "/tmp");
	if (!mkdtemp(tmpdir)) {
		printf("Bail out! mkdtemp failed\n");
		return 1;
	}
	ref = run(ST_TYPE_F32, "tiny", &nv);
	ok(ref != NULL, "f32 tiny model evaluates %d tokens", N_TOK);
	if (ref) {
		double s2 = 0;
		int finite = 1;
		for (size_t i = 0; i < (size_t)N_TOK * nv; i++) {
			finite &= isfinite(ref[i]);
			s2 += (double)ref[i] * ref[i];
		}
		/* output.weight has std 1/sqrt(dim) on a unit-RMS normed state:
		 * logits have RMS ~1 when activations stay sane */
		diag("f32 logits RMS %.3f", sqrt(s2 / ((double)N_TOK * nv)));
		ok(finite && sqrt(s2 / ((double)N_TOK * nv)) > 0.1 && sqrt(s2 / ((double)N_TOK * nv)) < 10,
		   "f32 logits finite with RMS in (0.1, 10): activations stay sane");
	}
	for (size_t k = 0; k < sizeof(types) / sizeof(types[0]); k++) {
		float *q = ref ? run(types[k].type, "tiny", &nv2) : NULL;
		double num = 0, den = 0, nmse;
		if (!q) {
			ok(0, "%s: evaluates", st_type_name(types[k].type));
			continue;
		}
		for (size_t i = 0; i < (size_t)N_TOK * nv; i++) {
			double d = (double)q[i] - ref[i];
			num += d * d;
			den += (double)ref[i] * ref[i];
		}
		nmse = num / den;
		diag("%s: logits NMSE vs f32 = %.3g (threshold %.2g)", st_type_name(types[k].type), nmse,
		     types[k].thr);
		ok(nmse > 0 && nmse < types[k].thr, "%s logits close to f32 (NMSE %.3g < %.2g, > 0)",
		   st_type_name(types[k].type), nmse, types[k].thr);
		lnmse[k] = nmse;
		free(q);
	}
	/* 5 bits beat 4 (measured margins 2.7x and more) */
	ok(lnmse[5] > 0 && lnmse[5] < lnmse[4] && lnmse[6] > 0 && lnmse[6] < lnmse[4],
	   "NMSE ordering: q5_0 and q5_1 < q4_1");
	free(ref);

	/* K-quants against the f32 model of the dim-256 shape */
	ref = run_k("f32", &nv);
	ok(ref != NULL, "f32 dim-256 model evaluates");
	for (size_t k = 0; ref && k < sizeof(ktypes) / sizeof(ktypes[0]); k++) {
		float *q = run_k(ktypes[k].name, &nv2);
		double num = 0, den = 0, nmse;
		if (!q) {
			ok(0, "%s: evaluates", ktypes[k].name);
			continue;
		}
		for (size_t i = 0; i < (size_t)N_TOK * nv; i++) {
			double d = (double)q[i] - ref[i];
			num += d * d;
			den += (double)ref[i] * ref[i];
		}
		nmse = num / den;
		knmse[k] = nmse;
		diag("%s: logits NMSE vs f32 = %.3g (threshold %.2g)", ktypes[k].name, nmse, ktypes[k].thr);
		ok(nmse > 0 && nmse < ktypes[k].thr, "%s logits close to f32 (NMSE %.3g < %.2g, > 0)",
		   ktypes[k].name, nmse, ktypes[k].thr);
		free(q);
	}
	/* more bits, less error; the _M mixes (some tensors in q6_K) beat
	 * their base type (measured margins: 3.5x, 4x, 1.2x, 1.2x) */
	ok(ref && knmse[0] < knmse[1] && knmse[1] < knmse[2] && knmse[3] < knmse[2] && knmse[4] < knmse[1],
	   "NMSE ordering: q6_K < q5_K < q4_K, q4_K_M < q4_K, q5_K_M < q5_K");
	free(ref);
	rmdir(tmpdir);
	return tap_done();
}
