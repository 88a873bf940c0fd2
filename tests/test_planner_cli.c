/* test_planner_cli.c: `strata plan` end to end on the EdgeShard instance
 * (bench/edgeshard-llama2-7b.json): the text report names the plan and
 * every baseline, --json is a plan that reads back and matches --stages,
 * overrides work, and bad input gives exit 1/2 with a message. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "json.h"
#include "plan.h"
#include "tap.h"

static char out[1 << 16];

/* Run a shell command, capture stdout+stderr into out, return exit code. */
static int run(const char *fmt, const char *a, const char *b)
{
	char cmd[16384];
	snprintf(cmd, sizeof cmd, fmt, a, b);
	strncat(cmd, " 2>&1", sizeof cmd - strlen(cmd) - 1);
	FILE *p = popen(cmd, "r");
	size_t n = 0;
	if (!p)
		return -1;
	while (n + 1 < sizeof out && !feof(p)) {
		size_t k = fread(out + n, 1, sizeof out - 1 - n, p);
		if (!k)
			break;
		n += k;
	}
	out[n] = 0;
	int st = pclose(p);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

int main(void)
{
	const char *bd = getenv("ST_BUILD_DIR"), *sd = getenv("ST_SOURCE_DIR");
	char strata[2048], inst[2048];
	if (!bd || !sd)
		tap_skip_all("ST_BUILD_DIR / ST_SOURCE_DIR not set (run through meson test)");
	snprintf(strata, sizeof strata, "%s/tools/strata", bd);
	snprintf(inst, sizeof inst, "%s/bench/edgeshard-llama2-7b.json", sd);

	int rc = run("%s plan --input %s --bandwidth-mbps 50", strata, inst);
	ok(rc == 0 && strstr(out, "stages: agx0:0-1,rtx3090:2-33") && strstr(out, "127.962 ms/token"),
	   "latency plan at 50 Mbps: agx0:0-1,rtx3090:2-33, 127.962 ms/token (rc %d)", rc);
	ok(strstr(out, "solo") && strstr(out, "even") && strstr(out, "memory") && strstr(out, "two-way") &&
		   strstr(out, "173.973"),
	   "baselines listed side by side (Edge-Solo 173.973 ms)");

	rc = run("%s plan --input %s --bandwidth-mbps 50 --objective tokens_per_s --batch 8 --json", strata, inst);
	struct st_json_doc *doc = NULL;
	struct st_pl_plan_file pf;
	int pr = rc == 0 ? st_json_parse(out, strlen(out), NULL, &doc) : -1;
	ok(rc == 0 && pr == 0 && st_pl_plan_file_from_json(st_json_root(doc), &pf) == 0 && pf.n_units == 34 &&
		   pf.n_stages == 2 && !strcmp(pf.stage[1].device, "rtx3090"),
	   "--json: a plan that reads back (34 units, 2 stages, 3090 second)");
	const struct st_json *pred = st_json_get(st_json_root(doc), "predicted");
	double tps = 0;
	ok(pred && st_json_f64(st_json_get(pred, "tokens_per_s"), "tps", &tps) == 0 && fabs(tps - 1000 / 84.02) < 1e-6,
	   "tokens_per_s objective with 8 in flight: %.3f tokens/s (the 84.02 ms return of the logits bounds it)", tps);
	const struct st_json *spec = st_json_get(st_json_root(doc), "stages_spec");
	char want[512] = "";
	if (spec && spec->type == ST_JSON_STRING)
		snprintf(want, sizeof want, "%s", spec->u.str.s);
	st_json_doc_free(doc);
	rc = run("%s plan --input %s --bandwidth-mbps 50 --objective tokens_per_s --batch 8 --stages", strata, inst);
	ok(rc == 0 && want[0] && !strncmp(out, want, strlen(want)), "--stages prints the plan's stage spec (%s)", want);

	rc = run("%s plan --input %s --bandwidth-mbps 1", strata, inst);
	ok(rc == 0 && strstr(out, "stages: agx0:0-33"), "at 1 Mbps the source runs everything");

	rc = run("%s plan --input %s --context 100000000", strata, inst);
	ok(rc == 1 && strstr(out, "no plan fits"), "KV of a huge context: exit 1, 'no plan fits'");
	rc = run("%s plan --input %s --objective fastest", strata, inst);
	ok(rc == 2 && strstr(out, "expected latency, throughput or tokens_per_s"), "bad objective: exit 2");
	rc = run("%s plan --input %s-nonexistent.json", strata, inst);
	ok(rc == 1 && strstr(out, "cannot open"), "missing file: exit 1");
	rc = run("%s plan --input %s --source nosuch", strata, inst);
	ok(rc == 2 && strstr(out, "no device named"), "unknown source: exit 2");
	rc = run("%s plan%s", strata, "");
	ok(rc == 2 && strstr(out, "--input"), "no input: usage error");

	/* strata profile (CPU, quick) -> strata plan --profiles. */
	const char *md = tap_models_dir();
	char model[2048], prof[2048], cmd[8192];
	snprintf(model, sizeof model, "%s/stories260K/stories260K.gguf", md ? md : "/nonexistent");
	FILE *mf = fopen(model, "rb");
	if (!mf) {
		tap_skip("stories260K.gguf not found under ST_MODELS_DIR: profile/plan round trip skipped");
		return tap_done();
	}
	fclose(mf);
	snprintf(prof, sizeof prof, "%s/test_planner_cli_profile.json", bd);
	snprintf(cmd, sizeof cmd, "%%s profile -m %%s --quick -t 1 -o %s", prof);
	rc = run(cmd, strata, model);
	struct st_json_doc *pd = NULL;
	const struct st_json *dm = NULL;
	ok(rc == 0 && st_json_parse_file(prof, NULL, &pd) == 0 &&
		   (dm = st_json_get(st_json_root(pd), "decode_ms_at")) && dm->type == ST_JSON_ARRAY && dm->u.arr.n == 2 &&
		   dm->u.arr.items[0].type == ST_JSON_OBJECT,
	   "strata profile writes a profile with 2 decode context points (rc %d)", rc);
	int units = 0, positive = 0;
	if (dm && dm->u.arr.n) {
		const struct st_json *ms = st_json_get(&dm->u.arr.items[0], "ms");
		units = ms && ms->type == ST_JSON_ARRAY ? (int)ms->u.arr.n : 0;
		for (int i = 0; i < units; i++)
			positive += ms->u.arr.items[i].type == ST_JSON_NUMBER && ms->u.arr.items[i].u.num.v > 0;
	}
	ok(units == 7 && positive == 7, "7 units (embedding, 5 blocks, head), every cost > 0 (%d of %d)", positive, units);
	st_json_doc_free(pd);
	snprintf(cmd, sizeof cmd, "%%s plan --profiles %s,%s -m %%s --context 64", prof, prof);
	rc = run(cmd, strata, model);
	/* profiles plan over layers: the embedding folds into the first and the
	 * head into the last, so the 7 profiled units become 5 */
	ok(rc == 0 && strstr(out, "2 devices, 5 units") && strstr(out, "runtime: --stages cpu"),
	   "plan --profiles (two copies: cpu and cpu@host) plans over 5 layers and prints the runtime spec (rc %d)", rc);
	snprintf(cmd, sizeof cmd, "%%s plan --profiles %s -m %%s", prof);
	rc = run(cmd, strata, inst);
	ok(rc == 1 && strstr(out, "strata plan: ") != NULL,
	   "plan --profiles with -m of another file: exit 1 (%.80s)", out);
	return tap_done();
}
