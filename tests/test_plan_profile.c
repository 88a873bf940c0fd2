/* test_plan_profile.c: device profiles (issue 6).
 *
 * Without a model: the prefill cost model (per-token costs at several
 * prompt lengths, linear in the prompt length between them, the nearest
 * point outside) against numbers computed here by hand; profile versions
 * (v1 read with one prefill point of unknown length, v2 with several and
 * the bandwidth, v3 refused with a message); instance JSON round trip.
 *
 * With a model written by the mkmodel library (12 blocks, dim 256, Q4_K_M:
 * two weight-type mixes, as llama.cpp's _M files keep more bits in some
 * blocks) and `strata profile` (the shipped profiler, child processes, one
 * CPU thread):
 *  - a full profile and a --quick one (which measures the first, middle and
 *    last block of each mix and estimates the others): the quick estimate
 *    of every block against the full measurement of it, as ratios; per mix
 *    and per context point the median ratio must be within 35% (the
 *    machine is shared and small per-block times are noisy; medians over
 *    the blocks of a mix take single outliers out, 35% still catches an
 *    estimate taken from the wrong mix or the wrong context);
 *  - the time to first token the cost model predicts from the full profile
 *    for a prompt of 64 tokens (between the profiled 32 and 128) against a
 *    plain session's prefill of 64 tokens in this process (median of 3),
 *    within 35%.
 * A missed bound repeats the attempt (profiles and measurement) up to 3
 * times; the output says which attempt passed.  Two full profiles are taken
 * per attempt, around the quick one: when they disagree with each other
 * (or, within one, plain decoding with the per-layer times) by more than
 * the bound, the load distorts wall times beyond what 35% can resolve, and
 * the two timing checks say "TODO inconclusive" instead of passing or
 * failing. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "json.h"
#include "mkmodel.h"
#include "plan.h"
#include "strata.h"
#include "tap.h"
#include "types.h"
#include "util.h"

#define MAX_ATTEMPTS 3
#define BOUND 0.35
#define PROMPT 64

static bool near(double a, double b)
{
	return fabs(a - b) <= 1e-12 * (fabs(a) + fabs(b) + 1e-300);
}

static int parse(const char *text, struct st_json_doc **doc)
{
	return st_json_parse(text, strlen(text), NULL, doc);
}

/* ---- the prefill cost model, by hand ------------------------------------------ */

static const char *const instance_json =
	"{\"format\": \"strata-plan-input\", \"version\": 1,"
	" \"model\": {\"units\": [{\"name\": \"a\", \"weight_bytes\": 10}, {\"name\": \"b\", \"weight_bytes\": 10},"
	"   {\"name\": \"c\", \"weight_bytes\": 10}], \"activation_bytes\": 1000, \"output_bytes\": 4},"
	" \"devices\": [{\"name\": \"x\", \"memory_bytes\": 1000, \"decode_ms\": [1, 2, 3], \"stage_overhead_ms\": 0.5,"
	"   \"peak_gbs\": 12.5,"
	"   \"prefill_ms_at\": [{\"tokens\": 32, \"ms\": [0.2, 0.4, 0.6]}, {\"tokens\": 8, \"ms\": [1, 2, 3]},"
	"                      {\"tokens\": 128, \"ms\": [0.1, 0.1, 0.1]}]},"
	"  {\"name\": \"y\", \"memory_bytes\": 1000, \"decode_ms\": [1, 1, 1], \"prefill_ms\": [0.3, 0.3, 0.3]}],"
	" \"links\": {\"default\": {\"bandwidth_mbps\": 8, \"rtt_ms\": 1}}}";

static void test_cost_model(void)
{
	struct st_json_doc *doc = NULL;
	struct st_pl_instance in;
	int r = parse(instance_json, &doc);
	r = r ? r : st_pl_instance_from_json(st_json_root(doc), &in);
	st_json_doc_free(doc);
	if (!ok(r == 0, "instance with prefill_ms_at (3 prompt lengths, given out of order) and prefill_ms reads (%s)",
		r ? st_last_error() : "ok"))
		return;
	const struct st_pl_device *x = &in.devices[0], *y = &in.devices[1];
	ok(x->n_pf == 3 && x->pf_tokens[0] == 8 && x->pf_tokens[1] == 32 && x->pf_tokens[2] == 128 &&
		   x->prefill_ms[0][2] == 3 && x->prefill_ms[2][0] == 0.1 && y->n_pf == 1 && y->pf_tokens[0] == 0 &&
		   x->peak_gbs == 12.5,
	   "points sorted by prompt length (8, 32, 128), a plain prefill_ms is one point of unknown length, peak_gbs kept");
	/* unit 1 of x: 2 at 8, 0.4 at 32, 0.1 at 128 */
	double at20 = 2 + (0.4 - 2) * (20.0 - 8) / (32 - 8), at80 = 0.4 + (0.1 - 0.4) * (80.0 - 32) / (128 - 32);
	ok(near(st_pl_unit_prefill_ms(&in, 0, 1, 8), 2) && near(st_pl_unit_prefill_ms(&in, 0, 1, 20), at20) &&
		   near(st_pl_unit_prefill_ms(&in, 0, 1, 80), at80) && near(st_pl_unit_prefill_ms(&in, 0, 1, 1), 2) &&
		   near(st_pl_unit_prefill_ms(&in, 0, 1, 5000), 0.1) && near(st_pl_unit_prefill_ms(&in, 1, 2, 7), 0.3) &&
		   near(st_pl_unit_prefill_ms(&in, 1, 2, 700), 0.3),
	   "per-token prefill cost: exact at a point, linear between (20 tokens: %.4f, 80: %.4f), the nearest point "
	   "outside, constant for a single point", at20, at80);
	/* time to first token, one stage on x: 20 * sum of units at 20 + overhead */
	struct st_pl_plan solo = { 1, { { 0, 0, 2 } }, 0 }, two = { 2, { { 0, 0, 1 }, { 1, 2, 2 } }, 0 };
	struct st_pl_eval ev;
	in.prompt_tokens = 20;
	double u0 = 1 + (0.2 - 1) * 12.0 / 24, u2 = 3 + (0.6 - 3) * 12.0 / 24;
	double want1 = 20 * (u0 + at20 + u2) + 0.5;
	st_pl_evaluate(&in, &solo, &ev);
	bool ok1 = near(ev.prefill_ms, want1);
	/* two stages: x runs units 0-1, y unit 2: the prompt's 20 activations
	 * cross the link (20 * 1000 bytes at 8 Mbps + 1 ms), the output returns */
	double want2 = 20 * (u0 + at20) + 0.5 + (20.0 * 1000 * 8 / 8e3 + 1) + 20 * 0.3 + (4.0 * 8 / 8e3 + 1);
	st_pl_evaluate(&in, &two, &ev);
	ok(ok1 && near(ev.prefill_ms, want2), "time to first token for 20 prompt tokens: one stage %.4f ms (want %.4f), "
	   "two stages with the prompt's hop and the return %.4f ms (want %.4f)", want1, want1, ev.prefill_ms, want2);
	in.prompt_tokens = 0;
	st_pl_evaluate(&in, &solo, &ev);
	ok(ev.prefill_ms == 0, "no prompt: no prefill prediction");
	/* round trip through the writer */
	char *text = st_pl_instance_to_json(&in, false);
	struct st_pl_instance back;
	r = text ? parse(text, &doc) : -1;
	r = r ? r : st_pl_instance_from_json(st_json_root(doc), &back);
	if (!r) {
		st_json_doc_free(doc);
		back.prompt_tokens = 20;
		in.prompt_tokens = 20;
		struct st_pl_eval e2;
		st_pl_evaluate(&in, &two, &ev);
		st_pl_evaluate(&back, &two, &e2);
		ok(back.devices[0].n_pf == 3 && back.devices[1].n_pf == 1 && back.devices[1].pf_tokens[0] == 0 &&
			   back.devices[0].peak_gbs == 12.5 && near(ev.prefill_ms, e2.prefill_ms),
		   "instance JSON round trip keeps the prefill points, the single point and peak_gbs");
		st_pl_instance_free(&back);
	} else {
		ok(0, "instance JSON round trip: %s", st_last_error());
	}
	free(text);
	/* a point without its length cannot be mixed with others */
	static const char *const bad =
		"{\"version\": 1, \"model\": {\"units\": [{\"name\": \"a\", \"weight_bytes\": 1}], \"activation_bytes\": 4},"
		" \"devices\": [{\"name\": \"x\", \"memory_bytes\": 9, \"decode_ms\": [1], \"prefill_ms\": [1],"
		" \"prefill_ms_at\": [{\"tokens\": 8, \"ms\": [1]}]}]}";
	struct st_pl_instance bi;
	r = parse(bad, &doc);
	r = r ? r : st_pl_instance_from_json(st_json_root(doc), &bi);
	st_json_doc_free(doc);
	ok(r == -EINVAL && strstr(st_last_error(), "not both"), "prefill_ms and prefill_ms_at together: refused (%s)",
	   st_last_error());
	if (!r)
		st_pl_instance_free(&bi);
	st_pl_instance_free(&in);
}

/* ---- profile versions ------------------------------------------------------------ */

static int from_profile(const char *text, struct st_pl_instance *in)
{
	struct st_json_doc *doc = NULL;
	int r = parse(text, &doc);
	if (r)
		return r;
	const struct st_json *root = st_json_root(doc);
	r = st_pl_instance_from_profiles(&root, 1, NULL, NULL, in);
	st_json_doc_free(doc);
	return r;
}

static void test_versions(void)
{
	char text[2048];
	const char *fmt =
		"{\"format\": \"strata-profile\", \"version\": %d, \"device\": {\"name\": \"cpu\", \"host\": \"h\","
		" \"memory_bytes\": 1000000},"
		" \"units\": [{\"name\": \"embedding\", \"weight_bytes\": 10}, {\"name\": \"block.0\", \"weight_bytes\": 20,"
		"   \"kv_bytes_per_token\": 8}, {\"name\": \"head\", \"weight_bytes\": 10}], \"activation_bytes\": 16,"
		" \"output_bytes\": 4, \"decode_ms_at\": [{\"context\": 0, \"ms\": [0.1, 1, 0.5]}], \"stage_overhead_ms\": 0.1, %s}";
	struct st_pl_instance in;
	snprintf(text, sizeof text, fmt, 1, "\"prefill_ms\": [0.01, 0.2, 0.05]");
	int r = from_profile(text, &in);
	ok(r == 0 && in.devices[0].n_pf == 1 && in.devices[0].pf_tokens[0] == 0 && in.devices[0].peak_gbs == 0,
	   "a version-1 profile (one prefill_ms array, no bandwidth) still reads: one prefill point of unknown length (%s)",
	   r ? st_last_error() : "ok");
	if (!r)
		st_pl_instance_free(&in);
	snprintf(text, sizeof text, fmt, 2,
		 "\"prefill_ms_at\": [{\"tokens\": 8, \"ms\": [0.01, 0.4, 0.1]}, {\"tokens\": 32, \"ms\": [0.01, 0.2, 0.05]}],"
		 " \"bandwidth\": {\"peak_read_gbs\": 9.5, \"method\": \"stream\", \"decode_weight_gbs\": 4}");
	r = from_profile(text, &in);
	ok(r == 0 && in.devices[0].n_pf == 2 && in.devices[0].pf_tokens[1] == 32 && in.devices[0].peak_gbs == 9.5,
	   "a version-2 profile: prefill at 8 and 32 tokens, peak bandwidth 9.5 GB/s (%s)", r ? st_last_error() : "ok");
	if (!r)
		st_pl_instance_free(&in);
	snprintf(text, sizeof text, fmt, 3, "\"prefill_ms\": [0.01, 0.2, 0.05]");
	r = from_profile(text, &in);
	ok(r == -EINVAL && strstr(st_last_error(), "version 3") && strstr(st_last_error(), "strata profile"),
	   "a version-3 profile is refused, saying what to do: %s", st_last_error());
	if (!r)
		st_pl_instance_free(&in);
}

/* ---- quick vs full on a model ---------------------------------------------------- */

static int run_profile(const char *strata, const char *model, const char *extra, const char *path)
{
	char cmd[8192];
	snprintf(cmd, sizeof cmd, "%s profile -m %s -d cpu -t 1 --contexts 0,64 %s -o %s >/dev/null 2>%s.err", strata,
		 model, extra, path, path);
	int st = system(cmd);
	return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
}

static double num(const struct st_json *v)
{
	double d = NAN;
	if (v)
		st_json_f64(v, "number", &d);
	return d;
}

/* decode ms of unit u at context point k */
static double dec_ms(const struct st_json *root, int k, int u)
{
	const struct st_json *at = st_json_get(root, "decode_ms_at");
	if (!at || at->type != ST_JSON_ARRAY || (size_t)k >= at->u.arr.n)
		return NAN;
	const struct st_json *ms = st_json_get(&at->u.arr.items[k], "ms");
	if (!ms || ms->type != ST_JSON_ARRAY || (size_t)u >= ms->u.arr.n)
		return NAN;
	return num(&ms->u.arr.items[u]);
}

/* sum of the prefill ms of point j */
static double pf_total(const struct st_json *root, int j)
{
	const struct st_json *at = st_json_get(root, "prefill_ms_at"), *ms;
	double sum = 0;
	if (!at || at->type != ST_JSON_ARRAY || (size_t)j >= at->u.arr.n ||
	    !(ms = st_json_get(&at->u.arr.items[j], "ms")) || ms->type != ST_JSON_ARRAY)
		return NAN;
	for (size_t u = 0; u < ms->u.arr.n; u++)
		sum += num(&ms->u.arr.items[u]);
	return sum;
}

struct attempt_res {
	bool ran, fields_ok, quick_ok, ttft_ok;
	bool noisy;                     /* the two full profiles disagree by more than the bound,
					 * or load distorts their wall times */
	bool distorted;
	double worst;                   /* worst |median ratio - 1| over mixes and contexts */
	double worst_ff;                /* the same for full A against full B */
	double full_s, quick_s, pred, meas;
	int quick_blocks, mixes;
	char why[1400];
};

static void attempt(const char *strata, const char *model, const char *dir, const int *mix, int nl,
		    struct attempt_res *res)
{
	char pf[1100], pq[1100], pb[1100];
	struct st_json_doc *df = NULL, *dq = NULL, *db = NULL;
	memset(res, 0, sizeof *res);
	snprintf(pf, sizeof pf, "%s/full.json", dir);
	snprintf(pq, sizeof pq, "%s/quick.json", dir);
	snprintf(pb, sizeof pb, "%s/full2.json", dir);
	/* full A, quick, full B: the quick profile is compared with the
	 * geometric mean of the two full ones around it (a steady drift of
	 * the load cancels), and A against B says what the machine can
	 * resolve at the moment */
	if (run_profile(strata, model, "--prefill 8,32,128", pf) || run_profile(strata, model, "--quick --prefill 8", pq) ||
	    run_profile(strata, model, "--prefill 8", pb) || st_json_parse_file(pf, NULL, &df) ||
	    st_json_parse_file(pq, NULL, &dq) || st_json_parse_file(pb, NULL, &db)) {
		snprintf(res->why, sizeof res->why, "strata profile failed (see %s.err)", pf);
		goto out;
	}
	res->ran = true;
	const struct st_json *rf = st_json_root(df), *rq = st_json_root(dq), *rb = st_json_root(db);
	const struct st_json *mf = st_json_get(rf, "measured"), *mq = st_json_get(rq, "measured");
	const struct st_json *bw = st_json_get(rf, "bandwidth"), *pfa = st_json_get(rf, "prefill_ms_at");
	const struct st_json *qb = st_json_get(mq, "blocks");
	uint64_t ver = 0, mixes = 0;
	st_json_u64(st_json_get(rf, "version"), "version", &ver);
	st_json_u64(st_json_get(mq, "weight_mixes"), "weight_mixes", &mixes);
	res->mixes = (int)mixes;
	res->quick_blocks = qb && qb->type == ST_JSON_ARRAY ? (int)qb->u.arr.n : -1;
	res->full_s = num(st_json_get(mf, "seconds"));
	res->quick_s = num(st_json_get(mq, "seconds"));
	const char *method = "";
	st_json_str(st_json_get(bw, "method"), "method", &method);
	res->fields_ok = ver == 2 && pfa && pfa->type == ST_JSON_ARRAY && pfa->u.arr.n == 3 &&
			 num(st_json_get(bw, "peak_read_gbs")) > 0 && !strcmp(method, "stream") &&
			 num(st_json_get(bw, "decode_weight_gbs")) > 0;
	/* per mix and context: median over the mix's blocks of quick / full */
	res->quick_ok = true;
	diag("block 1 at context point 0: full A %.4f ms, quick %.4f ms, full B %.4f ms", dec_ms(rf, 0, 2),
	     dec_ms(rq, 0, 2), dec_ms(rb, 0, 2));
	for (int k = 0; k < 2; k++)
		for (int g = 0; g < 2; g++) {
			double ratio[64], ff[64];
			int n = 0;
			for (int b = 0; b < nl; b++)
				if (mix[b] == g) {
					double a = dec_ms(rf, k, 1 + b), c = dec_ms(rb, k, 1 + b);
					ff[n] = a / c;
					ratio[n++] = dec_ms(rq, k, 1 + b) / sqrt(a * c);
				}
			double med = n ? tap_median(ratio, n) : NAN, medff = n ? tap_median(ff, n) : NAN;
			double dev = fabs(med - 1), devff = fabs(medff - 1);
			diag("context point %d, mix %d (%d blocks): per block quick/full median %.3f (range %.3f-%.3f); "
			     "full A/full B median %.3f", k, g, n, med, n ? ratio[0] : NAN, n ? ratio[n - 1] : NAN, medff);
			if (!(dev <= BOUND))
				res->quick_ok = false;
			if (!(dev <= res->worst))
				res->worst = dev;
			if (!(devff <= res->worst_ff))
				res->worst_ff = devff;
		}
	/* On the CPU the per-layer timing costs nothing, so plain decoding
	 * (measured.plain_one_stage_ms) and the sum of the per-layer times
	 * agree on a calm machine; when they do not (the profiler's shift per
	 * unit times the units is more than the bound of the plain time),
	 * wall times are distorted by load: a step longer than the scheduler's
	 * slice gets preempted, a shorter one (the quick profile's) escapes. */
	for (int k = 0; k < 2; k++) {
		const struct st_json *me = st_json_get(k ? rb : rf, "measured");
		double w1 = num(st_json_get(me, "plain_one_stage_ms")), sh = num(st_json_get(me, "unit_shift_ms"));
		res->distorted = res->distorted || !(fabs(sh) * (nl + 2) <= BOUND * w1);
		diag("full profile %c: plain decoding %.4f ms per token, per-layer times shifted by %+.4f ms per unit",
		     k ? 'B' : 'A', w1, sh);
	}
	res->noisy = res->distorted || !(res->worst_ff <= BOUND) ||
		     !(fabs(pf_total(rf, 0) / pf_total(rb, 0) - 1) <= BOUND);
	/* time to first token: predicted from the full profile, measured here */
	{
		const struct st_json *root = rf;
		struct st_pl_instance in;
		struct st_pl_eval ev;
		if (st_pl_instance_from_profiles(&root, 1, NULL, NULL, &in)) {
			snprintf(res->why, sizeof res->why, "instance: %s", st_last_error());
			goto out;
		}
		struct st_pl_plan solo = { 1, { { 0, 0, in.n_units - 1 } }, 0 };
		in.prompt_tokens = PROMPT;
		st_pl_evaluate(&in, &solo, &ev);
		res->pred = ev.prefill_ms;
		st_pl_instance_free(&in);
		struct st_model *m = NULL;
		struct st_session *s = NULL;
		struct st_session_params sp;
		st_session_params_default(&sp);
		sp.n_threads = 1;
		sp.stages = "cpu:0-11";
		double t[3];
		int32_t toks[PROMPT];
		int r = st_model_open(model, &m);
		r = r ? r : st_session_create(m, &sp, &s);
		for (int i = 0; i < PROMPT; i++)
			toks[i] = (int32_t)((i * 7919u + 1u) % 512u);
		for (int i = 0; i < 4 && r >= 0; i++) {   /* the first is a warm-up */
			st_session_reset(s);
			double t0 = st_time_now();
			r = st_session_eval(s, toks, PROMPT, false);
			if (i)
				t[i - 1] = (st_time_now() - t0) * 1e3;
		}
		if (r < 0)
			snprintf(res->why, sizeof res->why, "prefill: %s", st_last_error());
		else
			res->meas = tap_median(t, 3);
		if (s)
			st_session_destroy(s);
		st_model_close(m);
		res->ttft_ok = r >= 0 && res->pred > 0 && fabs(res->meas / res->pred - 1) <= BOUND;
	}
out:
	st_json_doc_free(df);
	st_json_doc_free(dq);
	st_json_doc_free(db);
}

/* ok(), except when the machine cannot resolve the bound at the moment
 * (noisy): then a TODO, shown and not counted as a failure, and never a
 * pass either (a hit against two full profiles that disagree is luck). */
static void check(bool cond, bool noisy, const char *msg)
{
	if (!noisy) {
		ok(cond, "%s", msg);
		return;
	}
	tap_n++;
	printf("not ok %d - %s # TODO inconclusive: the full profiles of this attempt differ from each other, or their "
	       "plain decoding from their per-layer times, by more than the bound (machine load)\n", tap_n, msg);
	fflush(stdout);
}

int main(void)
{
	tap_plan(17);
	test_cost_model();
	test_versions();

	const char *bd = getenv("ST_BUILD_DIR");
	char strata[2048], dir[] = "/tmp/strata_plan_profile.XXXXXX", model[1100];
	const int n_checks = 7;
	if (!bd || (snprintf(strata, sizeof strata, "%s/tools/strata", bd), access(strata, X_OK)) || !mkdtemp(dir)) {
		for (int i = 0; i < n_checks; i++)
			tap_skip("%s", bd ? "strata not built or no temporary directory" : "ST_BUILD_DIR not set");
		return tap_done();
	}
	struct st_mkmodel_params mp;
	st_mkmodel_preset("custom", &mp);
	mp.n_layer = 12;
	mp.n_embd = 256;
	mp.n_ff = 512;
	mp.n_head = mp.n_head_kv = 4;
	mp.n_vocab = 512;
	mp.n_ctx = 256;
	st_mkmodel_parse_type("q4_k_m", &mp);
	snprintf(model, sizeof model, "%s/mix.gguf", dir);
	double t0 = st_time_now();
	int r = st_mkmodel_write(&mp, model, NULL, NULL);
	ok(r == 0, "mkmodel: 12 blocks, dim 256, ff 512, Q4_K_M (%s, %.1f s)", r ? st_last_error() : "written",
	   st_time_now() - t0);
	/* which blocks carry the extra bits: from the file's own tensor types */
	int mix[12] = { 0 }, n_mix1 = 0;
	struct st_mkmodel_tensor *tt = NULL;
	int nt = r ? -1 : st_mkmodel_tensors(&mp, &tt);
	for (int i = 0; i < nt; i++) {
		int b;
		char what[64];
		if (sscanf(tt[i].name, "blk.%d.%63s", &b, what) == 2 && b >= 0 && b < 12 && !strcmp(what, "attn_v.weight"))
			mix[b] = tt[i].type != mp.type;
	}
	free(tt);
	for (int b = 0; b < 12; b++)
		n_mix1 += mix[b];
	diag("blocks with more bits (mix 1): %d of 12", n_mix1);
	if (r || n_mix1 == 0 || n_mix1 == 12) {
		for (int i = 1; i < n_checks; i++)
			ok(0, "no model with two weight mixes");
		return tap_done();
	}

	struct attempt_res res;
	int tries;
	for (tries = 1; tries <= MAX_ATTEMPTS; tries++) {
		attempt(strata, model, dir, mix, 12, &res);
		if (!res.ran)
			break;
		diag("attempt %d: full profile %.2f s, quick %.2f s; worst quick/full median off by %.0f%% (full/full "
		     "by %.0f%%); time to first token for %d tokens predicted %.3f ms, measured %.3f ms", tries, res.full_s,
		     res.quick_s, res.worst * 100, res.worst_ff * 100, PROMPT, res.pred, res.meas);
		if (res.quick_ok && res.ttft_ok && !res.noisy)
			break;
	}
	if (tries > MAX_ATTEMPTS)
		tries = MAX_ATTEMPTS;
	ok(res.ran, "strata profile, full and --quick, on the model (%s)", res.ran ? "ran" : res.why);
	ok(res.fields_ok, "the full profile is version 2 with prefill at 8, 32 and 128 tokens and the CPU's stream "
	   "read bandwidth and decode weight bandwidth");
	ok(res.mixes == 2 && res.quick_blocks == 6, "--quick finds the 2 weight mixes and measures 6 of the 12 blocks "
	   "(first, middle, last of each): %d mixes, %d blocks", res.mixes, res.quick_blocks);
	ok(res.ran && res.quick_s < res.full_s, "--quick takes less time than the full profile (%.2f s vs %.2f s)",
	   res.quick_s, res.full_s);
	/* A miss while two full profiles of the same attempt disagree by more
	 * than the bound themselves is not resolvable on this machine's load at
	 * the moment: reported as TODO (shown, not counted), never passed. */
	char msg[512];
	snprintf(msg, sizeof msg, "quick estimates per block within %.0f%% of the full profiles' measurements (median "
		 "per mix and context; worst %.0f%%, full vs full %.0f%%; attempt %d of up to %d)", BOUND * 100,
		 res.worst * 100, res.worst_ff * 100, tries, MAX_ATTEMPTS);
	check(res.quick_ok, res.noisy, msg);
	snprintf(msg, sizeof msg, "time to first token for a %d-token prompt: predicted %.3f ms (interpolated between "
		 "the 32- and 128-token points), measured %.3f ms, within %.0f%% (attempt %d)", PROMPT, res.pred,
		 res.meas, BOUND * 100, tries);
	check(res.ttft_ok, res.noisy, msg);
	char cmd[1200];
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	if (getenv("ST_KEEP"))
		snprintf(cmd, sizeof cmd, "true");
	if (system(cmd))
		diag("could not remove %s", dir);
	return tap_done();
}
