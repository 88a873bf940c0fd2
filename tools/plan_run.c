/* plan_run.c: device selection shared by `strata run`, `strata perplexity`
 * and `strata bench` (--device, checked --stages), and `strata run --plan
 * FILE|auto`: read a plan, or profile every device (cached profiles when
 * they match the model), plan, run, and report predicted vs measured time
 * per stage and per token. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backend.h"
#include "cli.h"
#include "json.h"
#include "plan.h"
#include "plan_run.h"
#include "profile.h"
#include "strata.h"
#include "util.h"

/* ---- device names --------------------------------------------------------- */

/* Every device as `strata devices` names it: "cpu" (or "cpuN" when there
 * are several), "vulkan0", "opencl0", ... */
static int device_ids(char ids[][32], int max)
{
	const struct st_backend_ops *const *list;
	int nb = st_backend_registry(&list), n = 0;
	for (int b = 0; b < nb; b++) {
		int nd = st_backend_device_count(list[b]);
		for (int d = 0; d < nd && n < max; d++) {
			if (!strcmp(list[b]->name, "cpu") && nd == 1)
				snprintf(ids[n++], 32, "cpu");
			else
				snprintf(ids[n++], 32, "%s%d", list[b]->name, d);
		}
	}
	return n;
}

/* Does device `id` (up to len bytes) exist?  "cpu" and "cpu0" are the same. */
static bool device_exists(const char *id, size_t len)
{
	char name[32];
	size_t n = 0;
	long idx = 0;
	while (n < len && (id[n] < '0' || id[n] > '9'))
		n++;
	if (n == 0 || n >= sizeof name)
		return false;
	memcpy(name, id, n);
	name[n] = 0;
	if (n < len) {
		if (len - n > 4)
			return false;
		for (size_t k = n; k < len; k++) {
			if (id[k] < '0' || id[k] > '9')
				return false;
			idx = idx * 10 + (id[k] - '0');
		}
	}
	const struct st_backend_ops *ops = st_backend_find(name);
	return ops && idx < st_backend_device_count(ops);
}

static int no_device(const char *cmd, const char *what, const char *id, size_t len)
{
	char ids[64][32], list[1024] = "";
	int n = device_ids(ids, 64);
	for (int i = 0; i < n; i++) {
		size_t l = strlen(list);
		snprintf(list + l, sizeof list - l, "%s%s", i ? ", " : "", ids[i]);
	}
	return cli_usage_error(cmd, "%s: no device '%.*s' (available: %s)", what, (int)len, id, list);
}

int cli_stages_resolve(const char *cmd, const char *device, const char *stages, const struct st_model *m,
		       char *buf, size_t size)
{
	if (device && stages)
		return cli_usage_error(cmd, "give either --device or --stages, not both");
	buf[0] = 0;
	if (device) {
		if (!device_exists(device, strlen(device)))
			return no_device(cmd, "--device", device, strlen(device));
		snprintf(buf, size, "%s:0-%u", device, st_model_desc(m)->n_layer - 1);
		return 0;
	}
	if (!stages)
		return 0;
	/* every stage's device must exist (ranges are the session's to check) */
	for (const char *p = stages; *p;) {
		size_t len = strcspn(p, ",");
		const char *colon = memchr(p, ':', len);
		if (colon && !device_exists(p, (size_t)(colon - p)))
			return no_device(cmd, "--stages", p, (size_t)(colon - p));
		p += len;
		if (*p == ',')
			p++;
	}
	if (strlen(stages) >= size)
		return cli_usage_error(cmd, "--stages: longer than %zu bytes", size - 1);
	snprintf(buf, size, "%s", stages);
	return 0;
}

/* ---- --plan FILE|auto ------------------------------------------------------ */

struct plan_run {
	char stages[4096];
	bool have_instance;             /* auto: predictions from the instance */
	struct st_pl_instance in;
	struct st_pl_plan plan;
	/* FILE: the plan's own predictions */
	int n_stages;
	char dev[ST_PL_MAX_DEVICES][ST_PL_NAME];
	double pred_stage[ST_PL_MAX_DEVICES], pred_hops, pred_tok;
	uint32_t pred_ctx;
	/* measurement */
	double t0;
	uint32_t pos0;
	bool started;
	uint64_t prompt_tokens;         /* the prompt's eval, from the stage statistics */
	double prompt_ms;
};

static int mkdirs(const char *path)
{
	char tmp[4096];
	snprintf(tmp, sizeof tmp, "%s", path);
	for (char *p = tmp + 1; *p; p++)
		if (*p == '/') {
			*p = 0;
			if (mkdir(tmp, 0755) && errno != EEXIST)
				return -errno;
			*p = '/';
		}
	return 0;
}

/* The path `strata profile` uses by default for this model and device. */
static void profile_path(const char *model, const struct st_model_desc *md, const char *dev, char *path,
			 size_t size)
{
	const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
	const char *base = strrchr(model, '/') ? strrchr(model, '/') + 1 : model;
	char mname[128], dir[3072];
	snprintf(mname, sizeof mname, "%s", md->name[0] ? md->name : base);
	for (char *p = mname; *p; p++)
		if (*p == '/' || *p == ' ')
			*p = '_';
	if (xdg && xdg[0])
		snprintf(dir, sizeof dir, "%s/strata", xdg);
	else
		snprintf(dir, sizeof dir, "%s/.cache/strata", home ? home : ".");
	snprintf(path, size, "%.3000s/profile-%.127s-%.63s.json", dir, mname, dev);
}

/* A cached profile that describes this model (file size, layers, width)
 * and this device, in the current format (version 2: an older profile is
 * measured again); NULL otherwise. */
static struct st_json_doc *cached_profile(const char *path, const struct st_model_desc *md, const char *dev)
{
	struct st_json_doc *doc = NULL;
	const char *name;
	uint64_t fs = 0, nl = 0, ne = 0, ver = 0;
	if (access(path, R_OK) || st_json_parse_file(path, NULL, &doc))
		return NULL;
	const struct st_json *r = st_json_root(doc), *pm = st_json_get(r, "model"), *pd = st_json_get(r, "device");
	if (st_json_u64(st_json_get(r, "version"), "version", &ver) || ver != 2 ||
	    st_json_u64(st_json_get(pm, "file_size"), "file_size", &fs) ||
	    st_json_u64(st_json_get(pm, "n_layer"), "n_layer", &nl) ||
	    st_json_u64(st_json_get(pm, "n_embd"), "n_embd", &ne) || st_json_str(st_json_get(pd, "name"), "name", &name) ||
	    fs != md->file_size || nl != md->n_layer || ne != md->n_embd || strcmp(name, dev)) {
		st_json_doc_free(doc);
		return NULL;
	}
	return doc;
}

/* `strata profile --quick` in this process (progress on stderr); 0, or
 * nonzero with the reason in why. */
static int profile_device(const char *model, const char *dev, const char *path, int threads, char *why,
			  size_t wsize)
{
	struct profile_req rq = { .model = model, .device = dev, .output = path, .threads = threads, .quick = true };
	char out[4096];
	return profile_write(&rq, out, sizeof out, why, wsize);
}

static void print_plan(const struct plan_run *pr, bool verbose)
{
	const struct st_pl_instance *in = &pr->in;
	struct st_pl_eval ev;
	st_pl_evaluate(in, &pr->plan, &ev);
	fprintf(stderr, "strata run: plan (%s, context %u): --stages %s\n", st_pl_objective_name(in->objective),
		in->context, pr->stages);
	for (int s = 0; s < pr->plan.n_stages; s++)
		fprintf(stderr, "strata run:   stage %d: %-10s layers %d-%d, predicted %.4f ms/token\n", s,
			in->devices[pr->plan.stage[s].device].name, pr->plan.stage[s].first, pr->plan.stage[s].last,
			ev.stage_ms[s]);
	fprintf(stderr, "strata run:   predicted %.4f ms/token (%.1f tokens/s)\n", ev.latency_ms,
		ev.latency_ms > 0 ? 1e3 / ev.latency_ms : 0.0);
	if (!verbose)
		return;
	for (int d = 0; d < in->n_devices; d++) {
		const struct st_pl_device *dv = &in->devices[d];
		double sum = 0;
		for (int u = 0; u < in->n_units; u++)
			sum += st_pl_unit_ms(in, d, u);
		fprintf(stderr, "strata run:   device %-10s all units %.4f ms/token + stage overhead %.4f ms, "
			"memory budget %llu bytes\n", dv->name, sum, dv->overhead_ms, (unsigned long long)dv->memory_bytes);
	}
	for (int b = 0; b < ST_PL_BASE_COUNT; b++) {
		struct st_pl_plan bp;
		struct st_pl_eval be;
		char spec[1024];
		if (st_pl_baseline(in, (enum st_pl_baseline)b, &bp) ||
		    st_pl_plan_stages_spec(in, &bp, spec, sizeof spec))
			continue;
		st_pl_evaluate(in, &bp, &be);
		fprintf(stderr, "strata run:   baseline %-10s %.4f ms/token%s  %s\n",
			st_pl_baseline_name((enum st_pl_baseline)b), be.latency_ms, be.fits ? "" : " (OOM)", spec);
	}
}

static int plan_auto(const char *cmd, const char *model, struct st_model *m, const char *objective, int threads,
		     uint32_t context, bool verbose, struct plan_run *pr)
{
	const struct st_model_desc *md = st_model_desc(m);
	char ids[ST_PL_MAX_DEVICES][32];
	struct st_json_doc *docs[ST_PL_MAX_DEVICES] = { NULL };
	const struct st_json *roots[ST_PL_MAX_DEVICES];
	int nd = device_ids(ids, ST_PL_MAX_DEVICES), n = 0, rc = 1;
	/* A device that cannot be profiled (its backend fails, it cannot hold
	 * the model...) is left out with a warning; planning goes on with the
	 * others. */
	for (int d = 0; d < nd; d++) {
		char path[4096], why[1024];
		profile_path(model, md, ids[d], path, sizeof path);
		docs[n] = cached_profile(path, md, ids[d]);
		if (docs[n]) {
			fprintf(stderr, "strata run: %s: cached profile %s\n", ids[d], path);
		} else {
			fprintf(stderr, "strata run: %s: profiling (--quick) into %s\n", ids[d], path);
			mkdirs(path);
			why[0] = 0;
			if (profile_device(model, ids[d], path, threads, why, sizeof why) ||
			    !(docs[n] = cached_profile(path, md, ids[d]))) {
				fprintf(stderr, "strata run: warning: skipping device %s: profiling failed: %s\n", ids[d],
					why[0] ? why : "the profile written does not describe this model");
				continue;
			}
		}
		roots[n] = st_json_root(docs[n]);
		n++;
	}
	if (n == 0) {
		cli_fail(cmd, "--plan auto: no device could be profiled (%d tried; see the warnings above)", nd);
		goto out;
	}
	if (st_pl_instance_from_profiles(roots, n, NULL, NULL, &pr->in)) {
		cli_fail(cmd, "--plan auto: %s", st_last_error());
		goto out;
	}
	pr->have_instance = true;
	/* plan over layers (embedding with the first, head with the last): every
	 * plan of that instance runs */
	if (st_pl_instance_fold_ends(&pr->in)) {
		cli_fail(cmd, "--plan auto: %s", st_last_error());
		goto out;
	}
	if (objective && st_pl_objective_parse(objective, &pr->in.objective)) {
		rc = cli_usage_error(cmd, "--objective: expected latency, throughput or tokens_per_s, got '%s'",
				     objective);
		goto out;
	}
	pr->in.context = context;
	pr->in.batch = 1;
	if (st_pl_instance_validate(&pr->in) || st_pl_plan(&pr->in, &pr->plan, NULL) ||
	    st_pl_plan_layer_stages(&pr->in, &pr->plan, pr->stages, sizeof pr->stages)) {
		cli_fail(cmd, "--plan auto: %s", st_last_error());
		goto out;
	}
	print_plan(pr, verbose);
	rc = 0;
out:
	for (int d = 0; d < n; d++)
		st_json_doc_free(docs[d]);
	return rc;
}

/* Layer range of planner units [first, last]: units are the layers, or
 * unit 0 = embedding, unit b + 1 = block b, unit n_layer + 1 = head, as in
 * st_pl_plan_runtime_stages. */
static int plan_file(const char *cmd, const char *path, struct st_model *m, struct plan_run *pr)
{
	struct st_json_doc *doc = NULL;
	struct st_pl_plan_file pf;
	const struct st_json *root, *v, *pred;
	const char *rs;
	int rc = 1;
	if (st_json_parse_file(path, NULL, &doc) || st_pl_plan_file_from_json((root = st_json_root(doc)), &pf)) {
		cli_fail(cmd, "--plan %s: %s", path, st_last_error());
		goto out;
	}
	uint32_t nl = st_model_desc(m)->n_layer;
	/* A plan is over layers (n_layer units: `strata plan --profiles`, --plan
	 * auto) or over embedding, blocks and head (n_layer + 2 units). */
	bool over_layers = pf.n_units == (int)nl;
	if (pf.n_units && !over_layers && pf.n_units != (int)nl + 2) {
		cli_fail(cmd, "--plan %s: planned for %d units; the model has %u layers (%u units with embedding and head)",
			 path, pf.n_units, nl, nl + 2);
		goto out;
	}
	if ((v = st_json_get(root, "runtime_stages")) && !st_json_str(v, "runtime_stages", &rs)) {
		snprintf(pr->stages, sizeof pr->stages, "%s", rs);
	} else {
		size_t off = 0;
		for (int s = 0; s < pf.n_stages; s++) {
			int a = pf.stage[s].first - (over_layers ? 0 : 1), b = pf.stage[s].last - (over_layers ? 0 : 1);
			if (a < 0)
				a = 0;
			if (b > (int)nl - 1)
				b = (int)nl - 1;
			if (b < a) {
				cli_fail(cmd, "--plan %s: stage %d holds only the embedding or the head", path, s);
				goto out;
			}
			off += (size_t)snprintf(pr->stages + off, sizeof pr->stages - off, "%s%s:%d-%d", s ? "," : "",
						pf.stage[s].device, a, b);
		}
	}
	pr->n_stages = pf.n_stages;
	for (int s = 0; s < pf.n_stages; s++)
		snprintf(pr->dev[s], ST_PL_NAME, "%s", pf.stage[s].device);
	if ((pred = st_json_get(root, "predicted"))) {
		const struct st_json *sm = st_json_get(pred, "stage_ms"), *hm = st_json_get(pred, "hop_ms");
		uint64_t c = 0;
		st_json_f64(st_json_get(pred, "ms_per_token"), "ms_per_token", &pr->pred_tok);
		if (!st_json_u64(st_json_get(pred, "context"), "context", &c))
			pr->pred_ctx = (uint32_t)c;
		if (sm && sm->type == ST_JSON_ARRAY)
			for (size_t s = 0; s < sm->u.arr.n && (int)s < pf.n_stages; s++)
				st_json_f64(&sm->u.arr.items[s], "stage_ms", &pr->pred_stage[s]);
		if (hm && hm->type == ST_JSON_ARRAY)
			for (size_t s = 0; s < hm->u.arr.n; s++) {
				double h = 0;
				st_json_f64(&hm->u.arr.items[s], "hop_ms", &h);
				if (pf.n_stages > 1)
					pr->pred_hops += h;
			}
	}
	fprintf(stderr, "strata run: plan %s: --stages %s\n", path, pr->stages);
	rc = 0;
out:
	st_json_doc_free(doc);
	return rc;
}

int plan_run_prepare(const char *cmd, const char *arg, const char *model, struct st_model *m,
		     const char *objective, int threads, uint32_t context, bool verbose, struct plan_run **out)
{
	struct plan_run *pr = calloc(1, sizeof *pr);
	int rc;
	*out = NULL;
	if (!pr)
		return cli_fail(cmd, "out of memory");
	rc = !strcmp(arg, "auto") ? plan_auto(cmd, model, m, objective, threads, context, verbose, pr)
				  : plan_file(cmd, arg, m, pr);
	if (!rc) {
		char dummy[4096];
		/* the plan's devices must exist here */
		rc = cli_stages_resolve(cmd, NULL, pr->stages, m, dummy, sizeof dummy);
	}
	if (rc) {
		plan_run_free(pr);
		return rc;
	}
	*out = pr;
	return 0;
}

const char *plan_run_stages(const struct plan_run *pr)
{
	return pr->stages;
}

void plan_run_begin(struct plan_run *pr, struct st_session *s)
{
	/* what the prompt's eval cost, before the statistics restart */
	struct st_stage_stats ss;
	double emb = 0, head = 0;
	pr->prompt_ms = 0;
	pr->prompt_tokens = 0;
	for (int k = 0; k < st_session_n_stages(s) && !st_session_stage_stats(s, k, &ss); k++) {
		pr->prompt_ms += ss.seconds * 1e3;
		if (k == 0)
			pr->prompt_tokens = ss.n_tokens;
	}
	if (!st_session_head_times(s, &emb, &head))
		pr->prompt_ms += (emb + head) * 1e3;
	st_session_stats_reset(s);
	pr->pos0 = st_session_pos(s);
	pr->t0 = st_time_now();
	pr->started = true;
}

void plan_run_report(struct plan_run *pr, struct st_session *s)
{
	double wall = st_time_now() - pr->t0, emb = 0, head = 0;
	int ns = st_session_n_stages(s);
	struct st_stage_stats ss;
	if (!pr->started || ns < 1 || st_session_stage_stats(s, 0, &ss) || ss.n_tokens == 0) {
		fprintf(stderr, "strata run: no decode tokens to compare with the plan's prediction\n");
		return;
	}
	double n = (double)ss.n_tokens;
	struct st_pl_eval ev;
	memset(&ev, 0, sizeof ev);
	uint32_t mid = pr->pos0 + (uint32_t)(ss.n_tokens / 2);
	if (pr->have_instance) {
		pr->in.context = mid;          /* the cache grew while measuring */
		st_pl_evaluate(&pr->in, &pr->plan, &ev);
	}
	st_session_head_times(s, &emb, &head);
	fprintf(stderr, "strata run: predicted vs measured, %.0f decode tokens from context %u (predictions at %s %u)\n",
		n, pr->pos0, pr->have_instance ? "context" : "the plan's context", pr->have_instance ? mid : pr->pred_ctx);
	fprintf(stderr, "strata run:   %-5s %-10s %-9s %13s %12s %7s\n", "stage", "device", "layers", "predicted ms",
		"measured ms", "ratio");
	double hops = pr->have_instance ? 0 : pr->pred_hops, in_stages = 0;
	for (int k = 0; k < ns; k++) {
		char layers[32];
		double pred = 0, meas;
		const char *dev = "";
		st_session_stage_stats(s, k, &ss);
		meas = ss.seconds * 1e3 / n + (k == 0 ? emb * 1e3 / n : 0) + (k == ns - 1 ? head * 1e3 / n : 0);
		if (pr->have_instance && k < pr->plan.n_stages) {
			pred = ev.stage_ms[k];
			dev = pr->in.devices[pr->plan.stage[k].device].name;
			if (pr->plan.n_stages > 1)
				hops += ev.hop_ms[k];
		} else if (k < pr->n_stages) {
			pred = pr->pred_stage[k];
			dev = pr->dev[k];
		}
		in_stages += meas;
		snprintf(layers, sizeof layers, "%u-%u", ss.first_layer, ss.last_layer);
		fprintf(stderr, "strata run:   %-5d %-10s %-9s %13.4f %12.4f %7.2f\n", k, dev, layers, pred, meas,
			pred > 0 ? meas / pred : 0.0);
	}
	double pt = pr->have_instance ? ev.latency_ms : pr->pred_tok;
	if (pt <= 0)
		fprintf(stderr, "strata run:   (the plan file has no \"predicted\" section: ratios are 0)\n");
	double mt = wall * 1e3 / n;
	fprintf(stderr, "strata run:   per token: predicted %.4f ms (hops %.4f), measured %.4f ms in the stages "
		"(ratio %.2f), %.4f ms wall time with sampling and output (ratio %.2f)\n", pt, hops, in_stages,
		pt > 0 ? in_stages / pt : 0.0, mt, pt > 0 ? mt / pt : 0.0);
	if (pr->have_instance && pr->prompt_tokens > 0) {
		/* the prompt: time to first token from the profiles' prefill costs */
		pr->in.prompt_tokens = (uint32_t)pr->prompt_tokens;
		st_pl_evaluate(&pr->in, &pr->plan, &ev);
		if (ev.prefill_ms > 0)
			fprintf(stderr, "strata run:   prompt of %llu tokens: predicted %.4f ms to the first token, measured "
				"%.4f ms in the stages (ratio %.2f)\n", (unsigned long long)pr->prompt_tokens, ev.prefill_ms,
				pr->prompt_ms, pr->prompt_ms / ev.prefill_ms);
	}
}

void plan_run_free(struct plan_run *pr)
{
	if (!pr)
		return;
	if (pr->have_instance)
		st_pl_instance_free(&pr->in);
	free(pr);
}
