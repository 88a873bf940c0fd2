/* test_forward: strata's logits on stories260K against an independent numpy
 * implementation (tests/ref_llama.py, float64) at all 64 positions of a
 * fixed token sequence, for the scalar reference pass and the backend/stage
 * path, prefill in one call and token-by-token decode (NMSE <= 1e-9); then
 * prefill == decode, a two-stage split == one stage, small batches == one
 * batch, F16 KV close to F32, and bad input rejected without a crash. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "strata.h"
#include "tap.h"

#define N_POS 64

static int32_t tokens[N_POS];
static uint32_t n_vocab;

static double nmse(const float *a, const double *ref, size_t n)
{
	double e = 0, s = 0;
	for (size_t i = 0; i < n; i++) {
		if (isnan(a[i]))
			return INFINITY;
		e += (a[i] - ref[i]) * (a[i] - ref[i]);
		s += ref[i] * ref[i];
	}
	return s > 0 ? e / s : e;
}

/* Logits of all N_POS positions: one eval of everything, or one per token. */
static float *run(struct st_model *m, const struct st_session_params *p, bool decode)
{
	struct st_session *s = NULL;
	float *out = calloc((size_t)N_POS * n_vocab, sizeof(float));
	int rc = st_session_create(m, p, &s);
	if (rc) {
		diag("session_create: %s", st_last_error());
		free(out);
		return NULL;
	}
	for (int i = 0; i < (decode ? N_POS : 1) && rc >= 0; i++) {
		const int n = decode ? 1 : N_POS;
		rc = st_session_eval(s, tokens + i, n, true);
		for (int j = 0; j < n && rc >= 0; j++) {
			const float *l = st_session_logits(s, j);
			if (!l) {
				rc = -1;
				break;
			}
			memcpy(out + (size_t)(i + j) * n_vocab, l, n_vocab * sizeof(float));
		}
	}
	if (rc < 0 || st_session_pos(s) != N_POS) {
		diag("eval failed: %s", st_last_error());
		free(out);
		out = NULL;
	}
	st_session_destroy(s);
	return out;
}

/* numpy's logits, or NULL (with a diag) when python3/numpy are missing. */
static double *numpy_logits(const char *model)
{
	char tmp[] = "/tmp/st_ref_llama_XXXXXX", cmd[4096], list[N_POS * 8] = "";
	const char *src = getenv("ST_SOURCE_DIR");
	size_t o = 0;
	int fd;
	double *ref;
	FILE *f;

	if (access("/usr/bin/python3", X_OK) != 0 || system("/usr/bin/python3 -c 'import numpy' 2>/dev/null") != 0) {
		diag("/usr/bin/python3 with numpy not found");
		return NULL;
	}
	for (int i = 0; i < N_POS; i++)
		o += (size_t)snprintf(list + o, sizeof(list) - o, "%s%d", i ? "," : "", tokens[i]);
	fd = mkstemp(tmp);
	if (fd < 0)
		return NULL;
	close(fd);
	snprintf(cmd, sizeof(cmd), "/usr/bin/python3 '%s/tests/ref_llama.py' '%s' '%s' %s", src ? src : ".", model, tmp,
		 list);
	if (system(cmd) != 0) {
		diag("ref_llama.py failed: %s", cmd);
		unlink(tmp);
		return NULL;
	}
	ref = calloc((size_t)N_POS * n_vocab, sizeof(double));
	f = fopen(tmp, "rb");
	if (!f || fread(ref, sizeof(double), (size_t)N_POS * n_vocab, f) != (size_t)N_POS * n_vocab) {
		diag("ref_llama.py output is short");
		free(ref);
		ref = NULL;
	}
	if (f)
		fclose(f);
	unlink(tmp);
	return ref;
}

static void check_vs_numpy(const char *what, const float *got, const double *ref)
{
	double worst = 0;
	int worst_pos = 0;
	if (!got) {
		ok(0, "%s vs numpy: no logits", what);
		return;
	}
	for (int p = 0; p < N_POS; p++) {
		double e = nmse(got + (size_t)p * n_vocab, ref + (size_t)p * n_vocab, n_vocab);
		if (!(e <= worst)) {
			worst = e;
			worst_pos = p;
		}
	}
	ok(worst <= 1e-9, "%s vs numpy at all %d positions: worst NMSE %.3g (position %d)", what, N_POS, worst,
	   worst_pos);
}

/* A weight loader for st_session_params.load_weights: plain pread. */
struct pread_loader {
	const char *path;
	int calls, spans;
	bool fail;
};

static int pread_load(void *user, const struct st_weight_span *spans, int n)
{
	struct pread_loader *L = user;
	FILE *f = fopen(L->path, "rb");
	int rc = 0;
	L->calls++;
	L->spans += n;
	if (!f)
		return -ENOENT;
	for (int i = 0; i < n && !rc; i++)
		if (fseek(f, (long)spans[i].file_offset, SEEK_SET) != 0 ||
		    fread(spans[i].dst, 1, spans[i].nbytes, f) != spans[i].nbytes)
			rc = -EIO;
	fclose(f);
	return L->fail ? -EIO : rc;
}

static void test_errors(struct st_model *m)
{
	struct st_session_params p;
	struct st_session *s = NULL;
	int32_t t[16] = { 1, 2, 3, 4, 5, 6, 7, 8, 9 };
	int rc;

	st_session_params_default(&p);
	p.n_ctx = 8;
	rc = st_session_create(m, &p, &s);
	ok(rc == 0, "session with n_ctx 8");
	if (rc)
		return;
	rc = st_session_eval(s, t, 0, false);
	ok(rc < 0, "eval of 0 tokens fails: %s", st_last_error());
	ok(st_session_eval(s, NULL, 1, false) < 0, "eval of NULL tokens fails");
	t[2] = -1;
	ok(st_session_eval(s, t, 3, false) < 0 && st_session_pos(s) == 0, "token -1 fails, pos unchanged: %s",
	   st_last_error());
	t[2] = (int32_t)n_vocab;
	ok(st_session_eval(s, t, 3, false) < 0, "token %u (= n_vocab) fails: %s", n_vocab, st_last_error());
	t[2] = 3;
	rc = st_session_eval(s, t, 9, false);
	ok(rc == -ENOSPC && st_session_pos(s) == 0, "9 tokens into n_ctx 8 fail with -ENOSPC: %s", st_last_error());
	rc = st_session_eval(s, t, 8, false);
	ok(rc == 1 && st_session_pos(s) == 8, "8 tokens fill the context (rc %d)", rc);
	ok(st_session_eval(s, t, 1, false) == -ENOSPC && st_session_pos(s) == 8, "one more fails: %s",
	   st_last_error());
	ok(st_session_logits(s, 1) == NULL && st_session_logits(s, 0) != NULL && st_session_logits(s, -1) != NULL,
	   "logits row 1 of 1 is NULL, rows 0 and -1 exist");
	ok(st_session_truncate(s, 9) < 0 && st_session_truncate(s, 4) == 0 && st_session_pos(s) == 4,
	   "truncate past pos fails, to 4 works");
	st_session_reset(s);
	ok(st_session_pos(s) == 0 && st_session_logits(s, 0) == NULL, "reset: pos 0, no logits");
	st_session_destroy(s);

	static const char *const bad[] = { "cpu:0-2", "nosuch:0-4", "cpu:0-1,cpu:3-4", "cpu:0-9", "cpu0-4",
					   "cpu:4-0", "cpu:0-4,", "cpu7:0-4" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		st_session_params_default(&p);
		p.stages = bad[i];
		s = NULL;
		rc = st_session_create(m, &p, &s);
		if (!ok(rc < 0 && s == NULL, "stages '%s' rejected: %s", bad[i], rc < 0 ? st_last_error() : "accepted"))
			st_session_destroy(s);
	}
	st_session_params_default(&p);
	p.n_ctx = 100000;
	ok(st_session_create(m, &p, &s) < 0, "n_ctx beyond the model's context fails: %s", st_last_error());
	p.n_ctx = 0;
	p.kv_type = 7;
	ok(st_session_create(m, &p, &s) < 0, "kv_type 7 fails: %s", st_last_error());
}

int main(void)
{
	const char *dir = tap_models_dir();
	char path[1024];
	struct st_model *m = NULL;
	struct st_session_params p;
	uint32_t x = 12345;

	if (!dir)
		tap_skip_all("models dir not found (set ST_MODELS_DIR)");
	snprintf(path, sizeof(path), "%s/stories260K/stories260K.gguf", dir);
	if (access(path, R_OK) != 0)
		tap_skip_all("%s not found", path);
	if (st_model_open(path, &m) != 0) {
		ok(0, "open %s: %s", path, st_last_error());
		return tap_done();
	}
	const struct st_model_desc *d = st_model_desc(m);
	n_vocab = d->n_vocab;
	ok(!strcmp(d->arch, "llama") && d->n_embd == 64 && d->n_ff == 172 && d->n_layer == 5 && d->n_head == 8 &&
	   d->n_head_kv == 4 && d->head_dim == 8 && d->rope_dim == 8 && d->n_vocab == 512 && d->n_ctx_train == 2048 &&
	   fabsf(d->rms_eps - 1e-5f) < 1e-12f && d->rope_theta == 10000.0f && d->weight_type == 0,
	   "hparams: dim %u ff %u layers %u heads %u/%u hd %u rope %u vocab %u ctx %u eps %g theta %g", d->n_embd,
	   d->n_ff, d->n_layer, d->n_head, d->n_head_kv, d->head_dim, d->rope_dim, d->n_vocab, d->n_ctx_train,
	   (double)d->rms_eps, (double)d->rope_theta);

	/* BOS, then a fixed pseudo-random sequence over the non-special ids */
	tokens[0] = 1;
	for (int i = 1; i < N_POS; i++) {
		x = x * 1103515245u + 12345u;
		tokens[i] = 3 + (int32_t)((x >> 16) % (n_vocab - 3));
	}

	st_session_params_default(&p);
	p.reference = true;
	float *ref_pre = run(m, &p, false), *ref_dec = run(m, &p, true);
	st_session_params_default(&p);
	float *be_pre = run(m, &p, false), *be_dec = run(m, &p, true);
	p.stages = "cpu:0-1,cpu:2-4";
	float *split = run(m, &p, false);
	p.stages = NULL;
	p.n_batch = 5;
	float *small = run(m, &p, false);
	p.n_batch = 0;
	p.n_threads = 1;
	float *one_thread = run(m, &p, false);
	p.n_threads = 2;
	float *two_threads = run(m, &p, false);
	p.n_threads = 0;
	p.kv_type = ST_KV_F16;
	float *f16 = run(m, &p, false);
	const size_t nl = (size_t)N_POS * n_vocab;

	double *np = numpy_logits(path);
	if (np) {
		check_vs_numpy("forward_ref prefill", ref_pre, np);
		check_vs_numpy("forward_ref decode", ref_dec, np);
		check_vs_numpy("stage prefill", be_pre, np);
		check_vs_numpy("stage decode", be_dec, np);
	} else {
		for (int i = 0; i < 4; i++)
			tap_skip("numpy reference unavailable (/usr/bin/python3 + python3-numpy)");
	}
	if (ref_pre && ref_dec && be_pre && be_dec && split && small && f16) {
		double e;
		e = tap_nmse(ref_pre, ref_dec, nl);
		ok(e <= 1e-10, "forward_ref: prefill == token-by-token decode (NMSE %.3g)", e);
		e = tap_nmse(be_pre, be_dec, nl);
		ok(e <= 1e-10, "stages: prefill == token-by-token decode (NMSE %.3g)", e);
		e = tap_nmse(ref_pre, be_pre, nl);
		ok(e <= 1e-10, "stage path == forward_ref (NMSE %.3g)", e);
		e = tap_nmse(be_pre, split, nl);
		ok(e <= 1e-12, "two stages (cpu:0-1,cpu:2-4) == one stage (NMSE %.3g)", e);
		e = tap_nmse(be_pre, small, nl);
		ok(e <= 1e-10, "n_batch 5 (prefill in 13 chunks) == one batch (NMSE %.3g)", e);
		e = one_thread && two_threads ? tap_nmse(two_threads, one_thread, nl) : INFINITY;
		ok(e <= 1e-12, "n_threads 1 == n_threads 2 (NMSE %.3g)", e);
		e = tap_nmse(be_pre, f16, nl);
		ok(e > 0 && e <= 1e-4, "F16 KV cache close to F32 (NMSE %.3g)", e);
	} else {
		ok(0, "all runs produced logits");
	}
	/* weights read by a caller-supplied loader instead of the mapping */
	{
		struct pread_loader L = { .path = path };
		struct st_session *s = NULL;
		st_session_params_default(&p);
		p.stages = "cpu:0-1,cpu:2-4";
		p.load_weights = pread_load;
		p.load_user = &L;
		float *loaded = run(m, &p, false);
		double e = loaded && be_pre ? tap_nmse(be_pre, loaded, nl) : INFINITY;
		/* stage 1: embedding + 2 layers x 9; stage 2: 3 layers x 9 + norm + head */
		ok(e == 0 && L.calls == 2 && L.spans == 1 + 18 + 27 + 2,
		   "weights via a pread loader: same logits (NMSE %.3g), %d calls, %d spans", e, L.calls, L.spans);
		free(loaded);
		L.fail = true;
		int rc = st_session_create(m, &p, &s);
		ok(rc < 0 && s == NULL, "a failing loader fails session_create (%d)", rc);
	}
	/* a greedy continuation from the prefill agrees between the paths */
	{
		int am_ref = 0, am_be = 0;
		for (uint32_t v = 1; v < n_vocab; v++) {
			if (ref_pre && ref_pre[(size_t)(N_POS - 1) * n_vocab + v] > ref_pre[(size_t)(N_POS - 1) * n_vocab + am_ref])
				am_ref = (int)v;
			if (be_pre && be_pre[(size_t)(N_POS - 1) * n_vocab + v] > be_pre[(size_t)(N_POS - 1) * n_vocab + am_be])
				am_be = (int)v;
		}
		ok(am_ref == am_be, "argmax of the last position agrees (%d, %d)", am_ref, am_be);
	}
	/* stats */
	{
		struct st_session *s = NULL;
		struct st_stage_stats st;
		double lt[5] = { 0 }, te = -1, th = -1;
		st_session_params_default(&p);
		p.stages = "cpu:0-1,cpu:2-4";
		p.profile = true;
		if (st_session_create(m, &p, &s) == 0) {
			int rc = st_session_eval(s, tokens, 16, false);
			int nst = st_session_n_stages(s);
			bool sok = rc == 1 && nst == 2;
			for (int i = 0; i < nst && sok; i++)
				sok = st_session_stage_stats(s, i, &st) == 0 && st.n_runs == 1 && st.n_tokens == 16 &&
				      st.seconds > 0 && !strcmp(st.backend, "cpu") && st.weight_bytes > 0 && st.kv_bytes > 0;
			if (sok)
				diag("stage 1: %s layers %u-%u, %.3f ms for 16 tokens, %llu weight bytes, %llu KV bytes",
				     st.backend, st.first_layer, st.last_layer, st.seconds * 1e3,
				     (unsigned long long)st.weight_bytes, (unsigned long long)st.kv_bytes);
			ok(sok, "per-stage stats of a two-stage session");
			rc = st_session_layer_times(s, lt, 5);
			ok(rc == 5 && lt[0] > 0 && lt[4] > 0, "per-layer times (%.3f ms, ..., %.3f ms)", lt[0] * 1e3,
			   lt[4] * 1e3);
			st_session_head_times(s, &te, &th);
			ok(te > 0 && th > 0, "embed %.3f ms, head %.3f ms", te * 1e3, th * 1e3);
			st_session_destroy(s);
		} else {
			ok(0, "profiled session: %s", st_last_error());
		}
	}
	test_errors(m);

	free(ref_pre);
	free(ref_dec);
	free(be_pre);
	free(be_dec);
	free(split);
	free(small);
	free(f16);
	free(one_thread);
	free(two_threads);
	free(np);
	st_model_close(m);
	return tap_done();
}
