/* cmd_plan.c: `strata plan`: choose devices and cut points for a model
 * from a planner instance (docs/plan-input.md), print the plan and its
 * predictions beside the baselines, or the plan as JSON. */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "json.h"
#include "plan.h"
#include "strata.h"
#include "util.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: strata plan --input INSTANCE.json [options]\n"
		"       strata plan --profiles P1.json,P2.json,... [-m MODEL] [--links LINKS.json] [options]\n"
		"\n"
		"Plan which devices run which layer units (exact under the cost model of\n"
		"docs/plan-input.md) and compare with the usual baselines.\n"
		"\n"
		"  -i, --input FILE         planner instance (devices, links, model shape, constraints)\n"
		"      --profiles LIST      instead of --input: device profiles from `strata profile`\n"
		"      --links FILE         with --profiles: links JSON ({\"default\", \"same_host\", \"pairs\"})\n"
		"  -m, --model FILE         with --profiles: check that they were measured on this model\n"
		"      --measure N          run the plan (and each baseline and single device) on -m MODEL\n"
		"                           in this process for N decode tokens: predicted vs measured\n"
		"  -t, --threads N          CPU threads for --measure (default: all)\n"
		"      --objective O        latency (time per token), throughput (slowest stage or link,\n"
		"                           EdgeShard) or tokens_per_s (most tokens/s with --batch in flight)\n"
		"      --context N          KV-cache length per sequence (scales attention costs and memory)\n"
		"      --batch K            sequences in flight (KV memory, tokens/s)\n"
		"      --prompt N           also predict the time to first token for a prompt of N tokens\n"
		"                           (prefill costs interpolated between the profiled prompt lengths)\n"
		"      --source NAME        device that holds the first unit and receives the output\n"
		"      --no-source          drop the instance's source constraint\n"
		"      --bandwidth-mbps X   set every link's bandwidth (simulation)\n"
		"      --rtt-ms Y           set every link's fixed per-transfer time (simulation)\n"
		"      --json               print the plan as JSON (what `strata run --plan` reads)\n"
		"      --stages             print only the stage spec (dev:first-last,...)\n"
		"  -o, --output FILE        also write the plan JSON to FILE\n"
		"      --write-instance F   write the (modified) instance as JSON to F\n"
		"  -h, --help\n");
}

static void human_bytes(uint64_t b, char *buf, size_t n)
{
	if (b >= (1ull << 30))
		snprintf(buf, n, "%.2f GiB", (double)b / (double)(1ull << 30));
	else if (b >= (1ull << 20))
		snprintf(buf, n, "%.1f MiB", (double)b / (double)(1ull << 20));
	else
		snprintf(buf, n, "%llu B", (unsigned long long)b);
}

static void print_plan(const struct st_pl_instance *in, const struct st_pl_plan *p)
{
	struct st_pl_eval ev;
	char spec[4096], used[32], bud[32];
	st_pl_evaluate(in, p, &ev);
	printf("  %-5s %-20s %-14s %-9s %11s %10s  %s\n", "stage", "device", "host", "units", "compute ms", "hop ms",
	       "memory / budget");
	for (int s = 0; s < p->n_stages; s++) {
		const struct st_pl_device *dv = &in->devices[p->stage[s].device];
		char units[32];
		snprintf(units, sizeof units, "%d-%d", p->stage[s].first, p->stage[s].last);
		human_bytes(ev.mem_bytes[s], used, sizeof used);
		human_bytes(dv->memory_bytes, bud, sizeof bud);
		printf("  %-5d %-20s %-14s %-9s %11.3f %10.3f  %s / %s\n", s, dv->name, dv->host, units, ev.stage_ms[s],
		       p->n_stages > 1 ? ev.hop_ms[s] : 0.0, used, bud);
	}
	printf("  predicted: %.3f ms/token, %.2f tokens/s with %u in flight (bottleneck %.3f ms)",
	       ev.latency_ms, ev.tokens_per_s, in->batch, ev.bottleneck_ms);
	if (ev.prefill_ms > 0)
		printf(", prompt of %u tokens: time to first token %.1f ms", in->prompt_tokens, ev.prefill_ms);
	else if (in->prompt_tokens)
		printf(", prompt of %u tokens: no prefill costs for every stage's device", in->prompt_tokens);
	printf("\n");
	if (!st_pl_plan_stages_spec(in, p, spec, sizeof spec))
		printf("  stages: %s\n", spec);
	if (!st_pl_plan_runtime_stages(in, p, spec, sizeof spec))
		printf("  runtime: --stages %s\n", spec);
}

static void baseline_row(const struct st_pl_instance *in, const char *name, const struct st_pl_plan *p, int r)
{
	struct st_pl_eval ev;
	char spec[4096];
	char ttft[32] = "";
	if (r) {
		printf("  %-18s %12s %12s %14s%s  %-5s  %s\n", name, "-", "-", "-", in->prompt_tokens ? "          -" : "",
		       "no", st_last_error());
		return;
	}
	st_pl_evaluate(in, p, &ev);
	if (st_pl_plan_stages_spec(in, p, spec, sizeof spec))
		snprintf(spec, sizeof spec, "(%d stages)", p->n_stages);
	if (in->prompt_tokens && ev.prefill_ms > 0)
		snprintf(ttft, sizeof ttft, " %10.1f", ev.prefill_ms);
	else if (in->prompt_tokens)
		snprintf(ttft, sizeof ttft, " %10s", "?");
	printf("  %-18s %12.3f %12.2f %14.3f%s  %-5s  %s\n", name, ev.latency_ms, ev.tokens_per_s, ev.bottleneck_ms,
	       ttft, ev.fits ? "yes" : "OOM", spec);
}

/* An instance from `strata profile` outputs (comma-separated files). */
static int load_profiles(const char *list, const char *links_path, const char *model, const char *source,
			 struct st_pl_instance *in)
{
	struct st_json_doc *docs[ST_PL_MAX_DEVICES] = { NULL }, *ldoc = NULL;
	const struct st_json *roots[ST_PL_MAX_DEVICES];
	char *dup = strdup(list), *save = NULL;
	int n = 0, r = 0;
	memset(in, 0, sizeof *in);
	in->source = -1;
	if (!dup)
		return st_error(-ENOMEM, "out of memory");
	for (char *t = strtok_r(dup, ",", &save); t && !r; t = strtok_r(NULL, ",", &save)) {
		if (n >= ST_PL_MAX_DEVICES) {
			r = st_error(-E2BIG, "more than %d profiles", ST_PL_MAX_DEVICES);
			break;
		}
		if ((r = st_json_parse_file(t, NULL, &docs[n])))
			break;
		roots[n] = st_json_root(docs[n]);
		n++;
	}
	if (!r && model) {
		/* The profiles must describe this file (size and layer count). */
		struct st_model *m;
		if ((r = st_model_open(model, &m)) < 0) {
			char msg[400];
			snprintf(msg, sizeof msg, "%s", st_last_error());
			r = st_error(r, "%s: %s", model, msg);
		} else {
			const struct st_model_desc *md = st_model_desc(m);
			for (int i = 0; i < n && !r; i++) {
				const struct st_json *pm = st_json_get(roots[i], "model");
				uint64_t fs = 0, nl = 0;
				if (st_json_u64(st_json_get(pm, "file_size"), "profile model.file_size", &fs) ||
				    st_json_u64(st_json_get(pm, "n_layer"), "profile model.n_layer", &nl) ||
				    fs != md->file_size || nl != md->n_layer)
					r = st_error(-EINVAL, "profile %d was measured on another model (file size %llu, %llu layers; "
							      "%s has %llu bytes, %u layers)", i, (unsigned long long)fs,
						     (unsigned long long)nl, model, (unsigned long long)md->file_size, md->n_layer);
			}
			st_model_close(m);
		}
	}
	if (!r && links_path)
		r = st_json_parse_file(links_path, NULL, &ldoc);
	if (!r)
		r = st_pl_instance_from_profiles(roots, n, ldoc ? st_json_root(ldoc) : NULL, source, in);
	for (int i = 0; i < n; i++)
		st_json_doc_free(docs[i]);
	st_json_doc_free(ldoc);
	free(dup);
	return r;
}

/* Run a plan's runtime stages on the model: n decode tokens from context
 * `start` after a prefill to it.  *ms_tok = wall ms per token;
 * stage_ms[s] = ms per token in stage s (+ embedding on the first, head on
 * the last, as the plan's units count them). */
static int measure_threads;

static int cmp_dbl(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double median_d(double *v, int n)
{
	qsort(v, (size_t)n, sizeof *v, cmp_dbl);
	return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static int measure(const struct st_pl_instance *in, const struct st_pl_plan *p, struct st_model *m, int n,
		   uint32_t start, double *ms_tok, double *stage_ms)
{
	char spec[4096];
	int r = st_pl_plan_runtime_stages(in, p, spec, sizeof spec);
	if (r)
		return r;
	const struct st_model_desc *md = st_model_desc(m);
	struct st_session_params sp;
	struct st_session *s;
	st_session_params_default(&sp);
	sp.stages = spec;
	sp.n_ctx = start + (uint32_t)n + 2;
	sp.n_threads = (uint32_t)measure_threads;
	if ((r = st_session_create(m, &sp, &s)) < 0)
		return r;
	int32_t *toks = calloc((size_t)start + (size_t)n + 1, sizeof *toks);
	if (!toks) {
		st_session_destroy(s);
		return st_error(-ENOMEM, "out of memory");
	}
	for (uint32_t i = 0; i < start + (uint32_t)n + 1; i++)
		toks[i] = (int32_t)((i * 7919u + 1u) % md->n_vocab);
	if (start && (r = st_session_eval(s, toks, (int)start, false)) < 0)
		goto out;
	/* one warm-up token, then the measured ones */
	if ((r = st_session_eval(s, toks + start, 1, false)) < 0)
		goto out;
	st_session_stats_reset(s);
	/* median per-token wall time: robust to the other processes of a
	 * shared machine (a mean would charge their time slices to us) */
	double *tt = malloc((size_t)n * sizeof *tt);
	if (!tt) {
		r = st_error(-ENOMEM, "out of memory");
		goto out;
	}
	for (int i = 0; i < n; i++) {
		double t0 = st_time_now();
		if ((r = st_session_eval(s, toks + start + 1 + i, 1, false)) < 0) {
			free(tt);
			goto out;
		}
		tt[i] = (st_time_now() - t0) * 1e3;
	}
	*ms_tok = median_d(tt, n);
	free(tt);
	double emb = 0, head = 0;
	st_session_head_times(s, &emb, &head);
	for (int k = 0; k < p->n_stages && k < st_session_n_stages(s); k++) {
		struct st_stage_stats ss;
		st_session_stage_stats(s, k, &ss);
		stage_ms[k] = ss.seconds * 1e3 / n;
	}
	stage_ms[0] += emb * 1e3 / n;
	stage_ms[p->n_stages - 1] += head * 1e3 / n;
	r = 0;
out:
	free(toks);
	st_session_destroy(s);
	return r;
}

static void measure_report(const struct st_pl_instance *in0, const struct st_pl_plan *p, const char *model_path,
			   int n)
{
	/* Predictions at the mean context of the measured tokens (the cache
	 * grows from context to context + n while measuring). */
	struct st_pl_instance mid = *in0;
	const struct st_pl_instance *in = &mid;
	struct st_model *m;
	struct st_pl_eval ev;
	double stage_ms[ST_PL_MAX_DEVICES] = { 0 }, tok;
	if (st_model_open(model_path, &m) < 0) {
		printf("\nmeasure: %s: %s\n", model_path, st_last_error());
		return;
	}
	printf("\nmeasured on %s: %d decode tokens from context %u, one process (per token: median wall\n"
	       "time; per stage: mean; predictions at the mean context %u)\n", model_path, n, in0->context,
	       in0->context + (uint32_t)n / 2);
	mid.context = in0->context + (uint32_t)n / 2;
	st_pl_evaluate(in, p, &ev);
	if (measure(in, p, m, n, in0->context, &tok, stage_ms)) {
		printf("  strata plan: %s\n", st_last_error());
	} else {
		printf("  %-5s %-20s %13s %12s %7s\n", "stage", "device", "predicted ms", "measured ms", "ratio");
		for (int s = 0; s < p->n_stages; s++)
			printf("  %-5d %-20s %13.4f %12.4f %7.2f\n", s, in->devices[p->stage[s].device].name, ev.stage_ms[s],
			       stage_ms[s], ev.stage_ms[s] > 0 ? stage_ms[s] / ev.stage_ms[s] : 0);
		printf("  per token: predicted %.4f ms, measured %.4f ms (ratio %.2f)\n", ev.latency_ms, tok,
		       ev.latency_ms > 0 ? tok / ev.latency_ms : 0);
	}
	printf("  measured ms/token:  strata %.4f", tok);
	for (int b = 0; b < ST_PL_BASE_COUNT; b++) {
		struct st_pl_plan bp;
		struct st_pl_eval be;
		double t = 0;
		printf(", %s ", st_pl_baseline_name((enum st_pl_baseline)b));
		if (st_pl_baseline(in, (enum st_pl_baseline)b, &bp) || (st_pl_evaluate(in, &bp, &be), !be.fits))
			printf("OOM");
		else if (measure(in, &bp, m, n, in0->context, &t, stage_ms))
			printf("n/a");
		else
			printf("%.4f", t);
	}
	printf("\n");
	for (int d = 0; d < in->n_devices; d++) {
		struct st_pl_plan one = { 1, { { d, 0, in->n_units - 1 } }, 0 };
		struct st_pl_eval oe;
		double t = 0;
		st_pl_evaluate(in, &one, &oe);
		if (!oe.fits)
			continue;
		if (measure(in, &one, m, n, in0->context, &t, stage_ms))
			printf("  single device %-12s predicted %.4f ms, measure failed: %s\n", in->devices[d].name,
			       oe.latency_ms, st_last_error());
		else
			printf("  single device %-12s predicted %.4f ms, measured %.4f ms\n", in->devices[d].name,
			       oe.latency_ms, t);
	}
	st_model_close(m);
}

int cmd_plan(int argc, char **argv)
{
	enum { O_OBJ = 1000, O_CTX, O_BATCH, O_SRC, O_NOSRC, O_BW, O_RTT, O_JSON, O_STAGES, O_WINST, O_PROF, O_LINKS,
	       O_MEASURE, O_PROMPT };
	static const struct option opts[] = {
		{ "input", required_argument, NULL, 'i' },     { "objective", required_argument, NULL, O_OBJ },
		{ "context", required_argument, NULL, O_CTX }, { "batch", required_argument, NULL, O_BATCH },
		{ "source", required_argument, NULL, O_SRC },  { "no-source", no_argument, NULL, O_NOSRC },
		{ "bandwidth-mbps", required_argument, NULL, O_BW }, { "rtt-ms", required_argument, NULL, O_RTT },
		{ "json", no_argument, NULL, O_JSON },         { "stages", no_argument, NULL, O_STAGES },
		{ "output", required_argument, NULL, 'o' },    { "write-instance", required_argument, NULL, O_WINST },
		{ "profiles", required_argument, NULL, O_PROF }, { "links", required_argument, NULL, O_LINKS },
		{ "model", required_argument, NULL, 'm' },     { "measure", required_argument, NULL, O_MEASURE },
		{ "threads", required_argument, NULL, 't' },   { "prompt", required_argument, NULL, O_PROMPT },
		{ "help", no_argument, NULL, 'h' },            { NULL, 0, NULL, 0 },
	};
	const char *input = NULL, *objective = NULL, *source = NULL, *output = NULL, *winst = NULL;
	const char *profiles = NULL, *links = NULL, *model = NULL;
	int64_t context = -1, batch = -1, measure_n = 0, prompt = -1;
	double bw = 0, rtt = -1;
	bool json = false, stages_only = false, no_source = false;
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "i:o:m:t:h", opts, NULL)) != -1) {
		switch (c) {
		case 't': {
			int64_t t;
			if (!cli_parse_i64(optarg, 0, 1024, &t))
				return cli_usage_error("plan", "--threads: expected 0..1024, got '%s'", optarg);
			measure_threads = (int)t;
			break;
		}
		case O_PROF: profiles = optarg; break;
		case O_LINKS: links = optarg; break;
		case 'm': model = optarg; break;
		case 'i': input = optarg; break;
		case 'o': output = optarg; break;
		case O_OBJ: objective = optarg; break;
		case O_CTX:
			if (!cli_parse_i64(optarg, 0, UINT32_MAX, &context))
				return cli_usage_error("plan", "--context: expected 0..%u, got '%s'", UINT32_MAX, optarg);
			break;
		case O_BATCH:
			if (!cli_parse_i64(optarg, 1, 1 << 20, &batch))
				return cli_usage_error("plan", "--batch: expected 1..%d, got '%s'", 1 << 20, optarg);
			break;
		case O_PROMPT:
			if (!cli_parse_i64(optarg, 0, UINT32_MAX, &prompt))
				return cli_usage_error("plan", "--prompt: expected 0..%u tokens, got '%s'", UINT32_MAX, optarg);
			break;
		case O_SRC: source = optarg; break;
		case O_NOSRC: no_source = true; break;
		case O_BW:
			if (!cli_parse_f64(optarg, 1e-9, 1e12, &bw))
				return cli_usage_error("plan", "--bandwidth-mbps: expected a positive number, got '%s'", optarg);
			break;
		case O_RTT:
			if (!cli_parse_f64(optarg, 0, 1e12, &rtt))
				return cli_usage_error("plan", "--rtt-ms: expected a number >= 0, got '%s'", optarg);
			break;
		case O_JSON: json = true; break;
		case O_STAGES: stages_only = true; break;
		case O_WINST: winst = optarg; break;
		case O_MEASURE:
			if (!cli_parse_i64(optarg, 1, 100000, &measure_n))
				return cli_usage_error("plan", "--measure: expected 1..100000 tokens, got '%s'", optarg);
			break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind < argc)
		return cli_usage_error("plan", "unexpected argument '%s'", argv[optind]);
	if (measure_n && !model)
		return cli_usage_error("plan", "--measure needs -m MODEL");
	if (!input == !profiles)
		return cli_usage_error("plan", "give either --input INSTANCE.json or --profiles P1.json,...");

	struct st_pl_instance in;
	int r = input ? st_pl_instance_load(input, &in) : load_profiles(profiles, links, model, source, &in);
	if (r)
		return cli_fail("plan", "%s", st_last_error());
	/* Plans from measured profiles are for the runtime, which runs the
	 * embedding with the first layer and the head with the last: plan over
	 * layers (as `strata run --plan auto` does) so every plan can run. */
	if (profiles && (r = st_pl_instance_fold_ends(&in)) != 0) {
		st_pl_instance_free(&in);
		return cli_fail("plan", "%s", st_last_error());
	}
	if (!input)
		input = profiles;
	int rc = 1;
	if (objective) {
		if (st_pl_objective_parse(objective, &in.objective)) {
			rc = cli_usage_error("plan", "--objective: expected latency, throughput or tokens_per_s, got '%s'",
					     objective);
			goto out;
		}
	}
	if (context >= 0)
		in.context = (uint32_t)context;
	if (batch >= 0)
		in.batch = (uint32_t)batch;
	if (prompt >= 0)
		in.prompt_tokens = (uint32_t)prompt;
	if (no_source)
		in.source = -1;
	if (source && (in.source = st_pl_device_find(&in, source)) < 0) {
		rc = cli_usage_error("plan", "--source: no device named '%s' in %s", source, input);
		goto out;
	}
	for (int i = 0; i < in.n_devices * in.n_devices; i++) {
		if (bw > 0)
			in.links[i].bandwidth_mbps = bw;
		if (rtt >= 0)
			in.links[i].rtt_ms = rtt;
	}
	if ((r = st_pl_instance_validate(&in))) {
		rc = cli_fail("plan", "%s", st_last_error());
		goto out;
	}
	if (winst) {
		char *t = st_pl_instance_to_json(&in, true);
		FILE *f = t ? fopen(winst, "w") : NULL;
		if (!f || fputs(t, f) < 0 || fclose(f)) {
			free(t);
			rc = cli_fail("plan", "cannot write %s", winst);
			goto out;
		}
		free(t);
	}
	struct st_pl_plan p;
	struct st_pl_stats stats;
	double t0 = st_time_now();
	r = st_pl_plan(&in, &p, &stats);
	double dt = st_time_now() - t0;
	if (r) {
		rc = cli_fail("plan", "%s", st_last_error());
		goto out;
	}
	char *pj = st_pl_plan_to_json(&in, &p, true);
	if (!pj) {
		rc = cli_fail("plan", "%s", st_last_error());
		goto out;
	}
	if (output) {
		FILE *f = fopen(output, "w");
		if (!f || fputs(pj, f) < 0 || fclose(f)) {
			free(pj);
			rc = cli_fail("plan", "cannot write %s", output);
			goto out;
		}
	}
	if (json) {
		fputs(pj, stdout);
	} else if (stages_only) {
		char spec[4096];
		if (!st_pl_plan_stages_spec(&in, &p, spec, sizeof spec))
			printf("%s\n", spec);
	} else {
		const char *obj = st_pl_objective_name(in.objective);
		printf("instance: %d devices, %d units, objective %s, context %u, batch %u, source %s\n", in.n_devices,
		       in.n_units, obj, in.context, in.batch, in.source >= 0 ? in.devices[in.source].name : "(none)");
		for (int d = 0; d < in.n_devices; d++) {
			const struct st_pl_device *dv = &in.devices[d];
			if (dv->peak_gbs <= 0 && dv->n_pf == 0)
				continue;
			printf("  device %-20s", dv->name);
			if (dv->peak_gbs > 0)
				printf(" read bandwidth %.2f GB/s", dv->peak_gbs);
			if (dv->n_pf)
				printf(", prefill profiled at");
			for (int k = 0; k < dv->n_pf; k++) {
				double sum = 0;
				for (int u = 0; u < in.n_units; u++)
					sum += dv->prefill_ms[k][u];
				printf(" %u tokens (%.3f ms/token)", dv->pf_tokens[k], sum);
			}
			printf("\n");
		}
		printf("plan (%s, exact; planned in %.3f ms, %llu search nodes):\n", obj, dt * 1e3,
		       (unsigned long long)stats.nodes);
		print_plan(&in, &p);
		printf("\ncomparison                   ms/token     tokens/s  bottleneck ms%s  fits   stages\n",
		       in.prompt_tokens ? "    TTFT ms" : "");
		baseline_row(&in, "strata", &p, 0);
		for (int b = 0; b < ST_PL_BASE_COUNT; b++) {
			struct st_pl_plan bp;
			int br = st_pl_baseline(&in, (enum st_pl_baseline)b, &bp);
			baseline_row(&in, st_pl_baseline_name((enum st_pl_baseline)b), &bp, br);
		}
		if (measure_n)
			measure_report(&in, &p, model, (int)measure_n);
	}
	free(pj);
	rc = 0;
out:
	st_pl_instance_free(&in);
	return rc;
}
