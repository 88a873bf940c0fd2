/* test_edgeshard.c: EdgeShard's setting in simulation, from the published
 * per-layer Llama-2-7B profile (shared/profiles/edgeshard-llama2-7b.json):
 * 12 x Jetson AGX Orin (32 GiB), 2 x Orin NX (16 GiB), 1 x RTX 3090
 * (24 GiB); links of 1-50 Mbps charged bits/1000/Mbps + 2.1 ms per hop;
 * one AGX Orin is the source (first unit, receives the output).
 *
 * Checks: the instance converts and round-trips through JSON; at every
 * bandwidth both objectives' plans fit, are no worse than every baseline
 * that fits, and match a second, independent solve of the same instance
 * with the devices' symmetry broken (no classes); the 3090 is used when
 * links are fast.  With --table it prints the markdown table for
 * BENCHMARKS.md; with --write-instance FILE it writes the instance JSON
 * (bench/edgeshard-llama2-7b.json) that `strata plan --input` reads. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "plan.h"
#include "tap.h"
#include <math.h>
#include "util.h"

#define GIB (1024.0 * 1024.0 * 1024.0)

static const char *profile_path(char *buf, size_t n)
{
	const char *d = getenv("ST_PROFILES_DIR");
	if (d)
		snprintf(buf, n, "%s/edgeshard-llama2-7b.json", d);
	else
		snprintf(buf, n, "%s/../shared/profiles/edgeshard-llama2-7b.json",
			 getenv("ST_SOURCE_DIR") ? getenv("ST_SOURCE_DIR") : ".");
	return buf;
}

static int read_array(const struct st_json *a, double *out, int n)
{
	if (!a || a->type != ST_JSON_ARRAY || a->u.arr.n != (size_t)n)
		return -1;
	for (int i = 0; i < n; i++)
		if (st_json_f64(&a->u.arr.items[i], "profile", &out[i]))
			return -1;
	return 0;
}

/* The profile -> a planner instance. */
static int build(const char *path, struct st_pl_instance *in)
{
	struct st_json_doc *doc;
	int r = st_json_parse_file(path, NULL, &doc);
	if (r)
		return r;
	const struct st_json *root = st_json_root(doc), *cm = st_json_get(root, "compute_ms");
	const struct st_json *mem = st_json_get(root, "memory_gib");
	double act_bits = 0, out_bits = 0, gib[64];
	int L = mem && mem->type == ST_JSON_ARRAY ? (int)mem->u.arr.n : 0;
	r = -EINVAL;
	if (L < 3 || L > 64 || read_array(mem, gib, L) ||
	    st_json_f64(st_json_get(root, "activation_bits_per_hop"), "activation_bits_per_hop", &act_bits) ||
	    st_json_f64(st_json_get(root, "output_bits"), "output_bits", &out_bits))
		goto out;
	struct { const char *kind, *prefix; int count; double mem_gib; } kinds[] = {
		{ "jetson_agx_orin", "agx", 12, 32 }, { "jetson_orin_nx", "nx", 2, 16 }, { "rtx_3090", "rtx3090", 1, 24 },
	};
	if ((r = st_pl_instance_alloc(in, 15, L, (struct st_pl_link){ 10, 2.1 })))
		goto out;
	r = -EINVAL;
	int d = 0;
	for (int k = 0; k < 3; k++)
		for (int i = 0; i < kinds[k].count; i++, d++) {
			struct st_pl_device *dv = &in->devices[d];
			double *ms;
			if (kinds[k].count > 1)
				snprintf(dv->name, ST_PL_NAME, "%s%d", kinds[k].prefix, i);
			else
				snprintf(dv->name, ST_PL_NAME, "%s", kinds[k].prefix);
			snprintf(dv->kind, ST_PL_NAME, "%s", kinds[k].kind);
			snprintf(dv->host, ST_PL_NAME, "%s", dv->name);
			dv->memory_bytes = (uint64_t)(kinds[k].mem_gib * GIB);
			if (st_pl_device_add_ctx(in, d, 0, &ms) || read_array(st_json_get(cm, kinds[k].kind), ms, L))
				goto out;
		}
	for (int i = 0; i < L; i++) {
		snprintf(in->units[i].name, ST_PL_NAME, i == 0 ? "embedding" : i == L - 1 ? "head" : "block.%d", i - 1);
		in->units[i].weight_bytes = (uint64_t)(gib[i] * GIB);
		/* Llama-2-7B FP32: K and V of 4096 floats per token per block. */
		in->units[i].kv_bytes_per_token = (i == 0 || i == L - 1) ? 0 : 2 * 4096 * 4;
	}
	in->activation_bytes = (uint64_t)(act_bits / 8);
	in->output_bytes = (uint64_t)(out_bits / 8);
	in->source = 0;                         /* agx0 */
	in->context = 128;                      /* 32 prompt + 96 generated */
	in->batch = 1;
	r = st_pl_instance_validate(in);
out:
	st_json_doc_free(doc);
	return r;
}

static void set_bw(struct st_pl_instance *in, double bw)
{
	for (int i = 0; i < in->n_devices * in->n_devices; i++)
		in->links[i] = (struct st_pl_link){ bw, 2.1 };
}

static const double bws[] = { 1, 5, 10, 20, 50 };

static void table(struct st_pl_instance *in, uint64_t output_bytes)
{
	in->output_bytes = output_bytes;
	printf("\n### Output returned to the source: %llu bytes per token\n", (unsigned long long)output_bytes);
	for (int t = 0; t < 2; t++) {
		enum st_pl_objective obj = t ? ST_PL_TOKENS : ST_PL_LATENCY;
		in->objective = obj;
		in->batch = t ? 8 : 1;
		if (!t)
			printf("\nLatency objective: ms per token, one sequence (lower is better).\n\n"
			       "| Mbps | strata | strata plan | Edge-Solo | even (15 dev) | memory-prop. | best two-way |\n"
			       "|---:|---:|---|---:|---:|---:|---:|\n");
		else
			printf("\nThroughput: tokens/s with 8 sequences in flight = 1000 / max(latency/8, bottleneck) "
			       "(higher is better).  `strata` maximises exactly that; `min-bottleneck` is EdgeShard's "
			       "objective (its plan's tokens/s at 8 in flight; in parentheses 1000/bottleneck, reached "
			       "with enough sequences in flight).\n\n"
			       "| Mbps | strata | strata plan | min-bottleneck | Edge-Solo | even (15 dev) | memory-prop. | best two-way |\n"
			       "|---:|---:|---|---:|---:|---:|---:|---:|\n");
		for (size_t b = 0; b < ST_ARRAY_SIZE(bws); b++) {
			struct st_pl_plan p;
			struct st_pl_eval ev;
			char spec[1024];
			set_bw(in, bws[b]);
			if (st_pl_plan(in, &p, NULL)) {
				printf("| %g | error: %s |\n", bws[b], st_last_error());
				continue;
			}
			st_pl_evaluate(in, &p, &ev);
			st_pl_plan_stages_spec(in, &p, spec, sizeof spec);
			printf("| %g | %.1f | `%s` |", bws[b], t ? ev.tokens_per_s : ev.latency_ms, spec);
			if (t) {
				struct st_pl_plan q;
				if (st_pl_plan_throughput(in, &q, NULL))
					printf(" - |");
				else {
					st_pl_evaluate(in, &q, &ev);
					printf(" %.1f (%.1f) |", ev.tokens_per_s, 1000 / ev.bottleneck_ms);
				}
			}
			for (int k = 0; k < ST_PL_BASE_COUNT; k++) {
				struct st_pl_plan bp;
				if (st_pl_baseline(in, (enum st_pl_baseline)k, &bp)) {
					printf(" OOM |");
					continue;
				}
				st_pl_evaluate(in, &bp, &ev);
				if (!ev.fits)
					printf(" OOM |");
				else
					printf(" %.1f |", t ? ev.tokens_per_s : ev.latency_ms);
			}
			printf("\n");
		}
	}
}

int main(int argc, char **argv)
{
	char path[4096];
	struct st_pl_instance in;
	bool want_table = false, have_path = false;
	const char *winst = NULL;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--table"))
			want_table = true;
		else if (!strcmp(argv[i], "--write-instance") && i + 1 < argc)
			winst = argv[++i];
		else if (!strcmp(argv[i], "--profile") && i + 1 < argc)
			snprintf(path, sizeof path, "%s", argv[++i]), have_path = true;
	}
	if (!have_path)
		profile_path(path, sizeof path);
	FILE *f = fopen(path, "r");
	if (!f)
		tap_skip_all("EdgeShard profile %s not found", path);
	fclose(f);
	int r = build(path, &in);
	if (!ok(r == 0, "profile %s converts to a 15-device, 34-unit instance (%s)", path, r ? st_last_error() : "ok"))
		return tap_done();
	if (want_table) {
		uint64_t logits = in.output_bytes;
		table(&in, logits);     /* the reimplementation's model: logits go back */
		table(&in, 4);          /* strata samples on the last stage: a token id goes back */
		st_pl_instance_free(&in);
		return 0;
	}
	if (winst) {
		char *t = st_pl_instance_to_json(&in, true);
		FILE *o = t ? fopen(winst, "w") : NULL;
		ok(o && fputs(t, o) >= 0 && fclose(o) == 0, "instance written to %s", winst);
		free(t);
	}

	/* JSON round trip of the instance. */
	{
		char *t = st_pl_instance_to_json(&in, false);
		struct st_json_doc *doc = NULL;
		struct st_pl_instance back;
		int rr = t ? st_json_parse(t, strlen(t), NULL, &doc) : -1;
		rr = rr ? rr : st_pl_instance_from_json(st_json_root(doc), &back);
		struct st_pl_plan p1, p2;
		ok(rr == 0 && !st_pl_plan_latency(&in, &p1, NULL) && !st_pl_plan_latency(&back, &p2, NULL) &&
			   p1.value == p2.value,
		   "instance -> JSON -> instance plans identically (%s)", rr ? st_last_error() : "ok");
		if (!rr)
			st_pl_instance_free(&back);
		st_json_doc_free(doc);
		free(t);
	}

	struct st_pl_problem pb;
	int rb = st_pl_problem_build(&in, &pb);
	ok(rb == 0 && pb.n_classes == 4, "devices group into 4 classes (source, 11 AGX, 2 NX, 3090): %d",
	   pb.n_classes);
	st_pl_problem_free(&pb);

	/* A copy with the symmetry broken: every AGX/NX slightly different
	 * (1e-12 relative), so the planners see 15 singleton classes. */
	struct st_pl_instance brk;
	st_pl_instance_copy(&brk, &in);
	for (int d = 1; d < brk.n_devices; d++)
		for (int i = 0; i < brk.n_units; i++)
			brk.devices[d].decode_ms[0][i] *= 1 + 1e-12 * d;

	int bad_base = 0, bad_fit = 0, bad_sym = 0, n = 0, used_3090_fast = 0;
	for (int obj = 0; obj < ST_PL_N_OBJECTIVES; obj++)
		for (size_t b = 0; b < ST_ARRAY_SIZE(bws); b++) {
			struct st_pl_plan p, q;
			struct st_pl_eval ev;
			in.objective = brk.objective = (enum st_pl_objective)obj;
			in.batch = brk.batch = obj == ST_PL_TOKENS ? 8 : 1;
			set_bw(&in, bws[b]);
			set_bw(&brk, bws[b]);
			n++;
			if (st_pl_plan(&in, &p, NULL)) {
				bad_fit++;
				diag("plan failed: %s", st_last_error());
				continue;
			}
			st_pl_evaluate(&in, &p, &ev);
			if (!ev.valid || !ev.fits)
				bad_fit++;
			if (obj == 0 && bws[b] >= 50)
				for (int s = 0; s < p.n_stages; s++)
					used_3090_fast += p.stage[s].device == 14;
			if (obj == ST_PL_LATENCY) {
				/* the 15-singleton search is the heavy one */
				if (st_pl_plan(&brk, &q, NULL) || fabs(q.value - p.value) > 1e-9 * p.value) {
					bad_sym++;
					diag("%g Mbps: grouped %.9g, singleton %.9g", bws[b], p.value, q.value);
				}
			}
			for (int k = 0; k < ST_PL_BASE_COUNT; k++) {
				struct st_pl_plan bp;
				struct st_pl_eval be;
				if (st_pl_baseline(&in, (enum st_pl_baseline)k, &bp))
					continue;
				st_pl_evaluate(&in, &bp, &be);
				if (be.fits && st_pl_eval_objective(&be, in.objective) < p.value * (1 - 1e-12)) {
					bad_base++;
					diag("%s %g Mbps: baseline %s %.6g beats %.6g", st_pl_objective_name(in.objective), bws[b],
					     st_pl_baseline_name((enum st_pl_baseline)k), st_pl_eval_objective(&be, in.objective),
					     p.value);
				}
			}
		}
	ok(bad_fit == 0, "%d plans (3 objectives x 5 bandwidths) are valid and fit (%d bad)", n, bad_fit);
	ok(bad_base == 0, "no baseline that fits beats strata's plan (%d cases)", bad_base);
	ok(bad_sym == 0, "grouped and singleton (symmetry-broken) latency solves agree (%d differ)", bad_sym);
	ok(used_3090_fast > 0, "at 50 Mbps the latency plan uses the RTX 3090");

	/* Edge-Solo is the source alone: 174 ms per token by the profile. */
	{
		struct st_pl_plan sp;
		struct st_pl_eval ev;
		in.objective = ST_PL_LATENCY;
		st_pl_baseline(&in, ST_PL_BASE_SOLO, &sp);
		st_pl_evaluate(&in, &sp, &ev);
		ok(sp.n_stages == 1 && sp.stage[0].device == 0 && ev.latency_ms > 170 && ev.latency_ms < 180,
		   "Edge-Solo on the source AGX Orin: %.2f ms/token", ev.latency_ms);
	}
	st_pl_instance_free(&brk);
	st_pl_instance_free(&in);
	return tap_done();
}
