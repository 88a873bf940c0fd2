/* test_planner_props.c: properties of the planners on seeded random
 * instances, for all three objectives: adding a device never makes the
 * optimum worse; raising a link's bandwidth never makes it worse; plans
 * never exceed a memory budget and are never worse than a baseline that
 * fits; grouping identical devices gives the same optimum as solving them
 * as distinct devices; context scaling; JSON plans read back; malformed
 * instances get clear errors. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "tap.h"
#include "test_planner_gen.h"
#include "util.h"

static int solve(struct st_pl_instance *in, enum st_pl_objective o, double *v)
{
	struct st_pl_plan p;
	in->objective = o;
	int r = st_pl_plan(in, &p, NULL);
	*v = r ? INFINITY : p.value;
	return r;
}

/* Copy of `in` with one more random device. */
static int add_device(const struct st_pl_instance *in, struct st_pl_instance *out)
{
	int D = in->n_devices, L = in->n_units;
	int r = st_pl_instance_alloc(out, D + 1, L, (struct st_pl_link){ 1, 0 });
	if (r)
		return r;
	memcpy(out->units, in->units, (size_t)L * sizeof *out->units);
	for (int d = 0; d <= D; d++) {
		double *ms;
		if ((r = st_pl_device_add_ctx(out, d, 0, &ms)))
			return r;
		if (d < D) {
			out->devices[d] = in->devices[d];
			out->devices[d].n_ctx = 1;
			out->devices[d].ctx[0] = 0;
			out->devices[d].decode_ms[0] = ms;
			out->devices[d].n_pf = 0;
			memcpy(ms, in->devices[d].decode_ms[0], (size_t)L * sizeof *ms);
		} else {
			snprintf(out->devices[d].name, ST_PL_NAME, "extra");
			snprintf(out->devices[d].host, ST_PL_NAME, "extra");
			out->devices[d].memory_bytes = in->devices[gen_int(0, D - 1)].memory_bytes;
			for (int i = 0; i < L; i++)
				ms[i] = gen_unif(0, 8);
		}
	}
	for (int a = 0; a <= D; a++)
		for (int b = 0; b <= D; b++)
			out->links[a * (D + 1) + b] = (a < D && b < D) ? in->links[a * D + b]
								       : (struct st_pl_link){ gen_unif(1, 1000), gen_unif(0, 5) };
	out->activation_bytes = in->activation_bytes;
	out->output_bytes = in->output_bytes;
	out->source = in->source;
	out->context = in->context;
	out->batch = in->batch;
	return 0;
}

static void monotonicity(void)
{
	int worse_dev = 0, worse_bw = 0, n = 0, base_bad = 0, mem_bad = 0;
	for (int seed = 1; seed <= 250; seed++) {
		struct st_pl_instance in, more;
		gen_seed((uint64_t)seed + 100000);
		int D = gen_int(1, 5), L = gen_int(1, 30);
		gen_instance(&in, D, L);
		add_device(&in, &more);
		for (int o = 0; o < ST_PL_N_OBJECTIVES; o++) {
			double v0, v1, v2;
			solve(&in, (enum st_pl_objective)o, &v0);
			solve(&more, (enum st_pl_objective)o, &v1);
			n++;
			if (v1 > v0 * (1 + 1e-9))
				worse_dev++;
			/* raise one link's bandwidth (D > 1) */
			if (D > 1) {
				int a = gen_int(0, D - 1), b = (a + gen_int(1, D - 1)) % D;
				struct st_pl_link keep = in.links[a * D + b];
				in.links[a * D + b].bandwidth_mbps *= gen_unif(1, 20);
				solve(&in, (enum st_pl_objective)o, &v2);
				if (v2 > v0 * (1 + 1e-9))
					worse_bw++;
				in.links[a * D + b] = keep;
			}
			/* memory and baselines */
			struct st_pl_plan p;
			in.objective = (enum st_pl_objective)o;
			if (st_pl_plan(&in, &p, NULL) == 0) {
				struct st_pl_eval ev;
				st_pl_evaluate(&in, &p, &ev);
				for (int s = 0; s < p.n_stages; s++)
					if (ev.mem_bytes[s] > in.devices[p.stage[s].device].memory_bytes || !ev.fits)
						mem_bad++;
				for (int k = 0; k < ST_PL_BASE_COUNT; k++) {
					struct st_pl_plan bp;
					if (st_pl_baseline(&in, (enum st_pl_baseline)k, &bp))
						continue;
					st_pl_evaluate(&in, &bp, &ev);
					if (ev.fits && st_pl_eval_objective(&ev, in.objective) < p.value * (1 - 1e-9))
						base_bad++;
				}
			}
		}
		st_pl_instance_free(&in);
		st_pl_instance_free(&more);
	}
	ok(worse_dev == 0, "adding a device never makes the optimum worse (%d of %d cases worse)", worse_dev, n);
	ok(worse_bw == 0, "raising a link's bandwidth never makes the optimum worse (%d worse)", worse_bw);
	ok(mem_bad == 0, "no plan exceeds a device's memory budget (%d stages over)", mem_bad);
	ok(base_bad == 0, "no baseline that fits beats the planner (%d cases)", base_bad);
}

/* Ten identical devices (classes) vs the same devices made distinct by a
 * 1e-12 relative perturbation: same optimum. */
static void symmetry(void)
{
	int bad = 0, n = 0;
	for (int seed = 1; seed <= 12; seed++) {
		struct st_pl_instance a, b;
		gen_seed((uint64_t)seed + 200000);
		int L = gen_int(10, 40), D = 10;
		st_pl_instance_alloc(&a, D, L, (struct st_pl_link){ gen_unif(5, 500), gen_unif(0, 3) });
		uint64_t total = 0;
		for (int i = 0; i < L; i++) {
			snprintf(a.units[i].name, ST_PL_NAME, "u%d", i);
			a.units[i].weight_bytes = (uint64_t)gen_int(50, 100);
			total += a.units[i].weight_bytes;
		}
		a.activation_bytes = 8192;
		a.output_bytes = 64;
		a.batch = (uint32_t)gen_int(1, 8);
		double speed[3] = { gen_unif(0.5, 2), gen_unif(0.5, 2), gen_unif(0.5, 2) };
		for (int d = 0; d < D; d++) {
			double *ms;
			int kind = d == 0 ? 0 : d < 7 ? 1 : 2;
			snprintf(a.devices[d].name, ST_PL_NAME, "d%d", d);
			snprintf(a.devices[d].host, ST_PL_NAME, "d%d", d);
			a.devices[d].memory_bytes = total / (uint64_t)(kind == 1 ? 5 : 3);
			st_pl_device_add_ctx(&a, d, 0, &ms);
			for (int i = 0; i < L; i++)
				ms[i] = speed[kind] * (1 + 0.1 * ((i * 7 + kind) % 5));
		}
		a.source = 0;
		st_pl_instance_copy(&b, &a);
		for (int d = 1; d < D; d++)
			for (int i = 0; i < L; i++)
				b.devices[d].decode_ms[0][i] *= 1 + 1e-12 * d;
		struct st_pl_problem pa, pb;
		st_pl_problem_build(&a, &pa);
		st_pl_problem_build(&b, &pb);
		if (pa.n_classes != 3 || pb.n_classes != D)
			bad++;
		st_pl_problem_free(&pa);
		st_pl_problem_free(&pb);
		for (int o = 0; o < 2; o++) {        /* latency and throughput DPs */
			double va, vb;
			int ra = solve(&a, (enum st_pl_objective)o, &va), rb = solve(&b, (enum st_pl_objective)o, &vb);
			n++;
			if (ra != rb || (ra == 0 && fabs(va - vb) > 1e-9 * va)) {
				bad++;
				diag("seed %d objective %d: grouped %d %.12g, distinct %d %.12g", seed, o, ra, va, rb, vb);
			}
		}
		st_pl_instance_free(&a);
		st_pl_instance_free(&b);
	}
	ok(bad == 0, "identical devices grouped into classes give the same optimum as distinct devices (%d of %d differ)",
	   bad, n);
}

static const char *good_instance =
	"{\"format\": \"strata-plan-input\", \"version\": 1,\n"
	" \"model\": {\"units\": [{\"name\": \"emb\", \"weight_bytes\": 100},\n"
	"   {\"name\": \"blk\", \"repeat\": 4, \"weight_bytes\": 1000, \"kv_bytes_per_token\": 10},\n"
	"   {\"name\": \"head\", \"weight_bytes\": 100}], \"activation_bytes\": 4096, \"output_bytes\": 4},\n"
	" \"kinds\": {\"gpu\": {\"memory_bytes\": 10000, \"decode_ms_at\": [\n"
	"    {\"context\": 100, \"ms\": [0.1, 1, 1, 1, 1, 0.5]},\n"
	"    {\"context\": 300, \"ms\": [0.1, 2, 2, 2, 2, 0.5]}]}},\n"
	" \"devices\": [{\"name\": \"cpu\", \"memory_bytes\": 100000, \"decode_ms\": [1, 5, 5, 5, 5, 2]},\n"
	"   {\"name\": \"gpu0\", \"kind\": \"gpu\"}, {\"name\": \"gpu1\", \"kind\": \"gpu\", \"host\": \"box\"}],\n"
	" \"links\": {\"default\": {\"bandwidth_mbps\": 100, \"rtt_ms\": 0.5},\n"
	"   \"pairs\": [{\"from\": \"cpu\", \"to\": \"gpu0\", \"bandwidth_mbps\": 10000, \"rtt_ms\": 0.01}]},\n"
	" \"objective\": \"latency\", \"constraints\": {\"source\": \"cpu\", \"context\": 200, \"batch\": 1}}\n";

static int load_text(const char *text, struct st_pl_instance *in)
{
	struct st_json_doc *doc;
	int r = st_json_parse(text, strlen(text), NULL, &doc);
	if (r)
		return r;
	r = st_pl_instance_from_json(st_json_root(doc), in);
	st_json_doc_free(doc);
	return r;
}

static void json_and_model(void)
{
	struct st_pl_instance in;
	int r = load_text(good_instance, &in);
	ok(r == 0, "documented-style instance parses (%s)", r ? st_last_error() : "ok");
	if (r)
		return;
	ok(in.n_units == 6 && !strcmp(in.units[3].name, "blk.2") && in.devices[1].memory_bytes == 10000 &&
		   in.source == 0 && !strcmp(in.devices[2].host, "box") && !strcmp(in.devices[1].host, "gpu0"),
	   "repeat, kinds, host defaults and source resolved");
	/* context 200 is half-way between the profile points 100 and 300 */
	ok(fabs(st_pl_unit_ms(&in, 1, 1) - 1.5) < 1e-12 && st_pl_unit_ms(&in, 0, 1) == 5,
	   "decode cost interpolated in context (1.5 ms at 200 between 1 and 2)");
	in.context = 500;
	ok(fabs(st_pl_unit_ms(&in, 1, 1) - 3.0) < 1e-12, "and extrapolated linearly beyond (3.0 ms at 500)");
	in.context = 200;
	ok(in.links[0 * 3 + 1].bandwidth_mbps == 10000 && in.links[1 * 3 + 0].bandwidth_mbps == 10000 &&
		   in.links[1 * 3 + 2].bandwidth_mbps == 100,
	   "link pairs apply both ways, default elsewhere");

	/* The cost model by hand on cpu:0-2, gpu0:3-4, gpu1:5. */
	struct st_pl_plan p = { 3, { { 0, 0, 2 }, { 1, 3, 4 }, { 2, 5, 5 } }, 0 };
	struct st_pl_eval ev;
	st_pl_evaluate(&in, &p, &ev);
	double hop01 = 4096 * 8 / (10000 * 1e3) + 0.01, hop12 = 4096 * 8 / (100 * 1e3) + 0.5,
	       ret20 = 4 * 8 / (100 * 1e3) + 0.5;
	double want = (1 + 5 + 5) + hop01 + (1.5 + 1.5) + hop12 + 0.5 + ret20;
	ok(ev.valid && fabs(ev.latency_ms - want) < 1e-12, "cost model by hand: %.6f ms (want %.6f)", ev.latency_ms, want);
	ok(ev.mem_bytes[1] == 2000 + 2 * 10 * 200 && ev.fits, "stage memory = weights + KV x context x batch (%llu)",
	   (unsigned long long)ev.mem_bytes[1]);
	double bott = 11;
	ok(fabs(ev.bottleneck_ms - bott) < 1e-12 && fabs(ev.tokens_per_s - 1000 / want) < 1e-9,
	   "bottleneck %.3f and tokens/s %.3f with one sequence", ev.bottleneck_ms, ev.tokens_per_s);

	struct st_pl_plan best;
	ok(st_pl_plan(&in, &best, NULL) == 0 && best.value <= ev.latency_ms, "planner no worse than the hand plan");
	char *js = st_pl_plan_to_json(&in, &best, true);
	struct st_json_doc *doc = NULL;
	struct st_pl_plan_file pf;
	struct st_pl_plan back;
	ok(js && st_json_parse(js, strlen(js), NULL, &doc) == 0 && st_pl_plan_file_from_json(st_json_root(doc), &pf) == 0 &&
		   st_pl_plan_file_resolve(&pf, &in, &back) == 0 && back.n_stages == best.n_stages &&
		   !memcmp(back.stage, best.stage, (size_t)best.n_stages * sizeof best.stage[0]),
	   "plan -> JSON -> plan gives the same stages");
	char spec[256];
	st_pl_plan_stages_spec(&in, &best, spec, sizeof spec);
	ok(js && strstr(js, spec) != NULL, "plan JSON carries the stage spec \"%s\"", spec);
	st_json_doc_free(doc);
	free(js);

	/* KV memory: at a huge context nothing fits -> -ENOSPC with words. */
	in.context = 100000000;
	r = st_pl_plan_latency(&in, &best, NULL);
	ok(r == -ENOSPC && strstr(st_last_error(), "do not fit"), "KV at a huge context: -ENOSPC (%s)", st_last_error());
	in.objective = ST_PL_THROUGHPUT;
	ok(st_pl_plan(&in, &best, NULL) == -ENOSPC, "throughput DP: -ENOSPC too");
	in.objective = ST_PL_TOKENS;
	ok(st_pl_plan(&in, &best, NULL) == -ENOSPC, "tokens/s planner: -ENOSPC too");
	st_pl_instance_free(&in);

	/* Malformed instances: clear errors. */
	struct { const char *from, *to, *needle; } bad[] = {
		{ "\"batch\": 1}", "\"batch\": 1, \"bogus\": 2}", "unknown key \"bogus\"" },
		{ "\"source\": \"cpu\"", "\"source\": \"tpu\"", "no device named \"tpu\"" },
		{ "\"default\": {\"bandwidth_mbps\": 100, \"rtt_ms\": 0.5},", "", "no link from" },
		{ "[1, 5, 5, 5, 5, 2]", "[1, 5, 5, 5, 2]", "5 numbers, the model has 6 units" },
		{ "\"version\": 1", "\"version\": 2", "version 2 not supported" },
		{ "\"latency\"", "\"fastest\"", "expected latency, throughput or tokens_per_s" },
		{ "{\"name\": \"gpu0\", \"kind\": \"gpu\"}", "{\"name\": \"gpu0\", \"kind\": \"tpu\"}", "kind \"tpu\"" },
		{ "\"bandwidth_mbps\": 100,", "\"bandwidth_mbps\": -1,", "must be > 0" },
		{ "\"weight_bytes\": 100}", "\"weight_bytes\": 1.5}", "non-negative integer" },
		{ "[0.1, 1, 1, 1, 1, 0.5]", "[0.1, -1, 1, 1, 1, 0.5]", "negative" },
		{ "{\"name\": \"gpu0\"", "{\"name\": \"cpu\"", "used twice" },
	};
	for (size_t i = 0; i < ST_ARRAY_SIZE(bad); i++) {
		char text[4096];
		const char *at = strstr(good_instance, bad[i].from);
		if (!at) {
			ok(0, "test bug: pattern %zu", i);
			continue;
		}
		snprintf(text, sizeof text, "%.*s%s%s", (int)(at - good_instance), good_instance, bad[i].to,
			 at + strlen(bad[i].from));
		struct st_pl_instance x;
		r = load_text(text, &x);
		ok(r == -EINVAL && strstr(st_last_error(), bad[i].needle), "malformed instance %zu rejected: %s", i,
		   st_last_error());
		if (!r)
			st_pl_instance_free(&x);
	}
}

/* Random byte mutations of a valid instance: the reader and the planner
 * either accept cleanly or fail with -EINVAL/-E2BIG/-ERANGE/-ENOSPC; no crash. */
static void fuzz_instance(void)
{
	size_t n = strlen(good_instance);
	char *buf = malloc(n);
	int odd = 0, accepted = 0;
	gen_seed(424242);
	for (int it = 0; it < 4000; it++) {
		memcpy(buf, good_instance, n);
		for (int m = 0; m < 1 + it % 3; m++) {
			size_t at = (size_t)gen_int(0, (int)n - 1);
			static const char pool[] = "0123456789-.e\"{}[],:x ";
			buf[at] = gen_int(0, 3) ? pool[gen_int(0, (int)sizeof pool - 2)] : (char)gen_int(0, 255);
		}
		struct st_json_doc *doc = NULL;
		struct st_pl_instance in;
		int r = st_json_parse(buf, n, NULL, &doc);
		if (r == 0) {
			r = st_pl_instance_from_json(st_json_root(doc), &in);
			if (r == 0) {
				struct st_pl_plan p;
				accepted++;
				for (int o = 0; o < ST_PL_N_OBJECTIVES; o++) {
					in.objective = (enum st_pl_objective)o;
					int pr = st_pl_plan(&in, &p, NULL);
					if (pr && pr != -ENOSPC && pr != -E2BIG)
						odd++;
				}
				st_pl_instance_free(&in);
			}
		}
		if (r && r != -EINVAL && r != -E2BIG && r != -ERANGE && r != -EOVERFLOW)
			odd++;
		st_json_doc_free(doc);
	}
	free(buf);
	ok(odd == 0, "4,000 mutated instances: clean accept (%d planned) or clean error (%d odd codes)", accepted, odd);
}

int main(void)
{
	fuzz_instance();
	monotonicity();
	symmetry();
	json_and_model();
	return tap_done();
}
