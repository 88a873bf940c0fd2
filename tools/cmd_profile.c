/* cmd_profile.c: `strata profile`: measure what each layer unit of a model
 * costs on one device (decode at several context lengths, prefill at
 * several prompt lengths) through a session with per-layer timing, the
 * device's memory read bandwidth, and write the versioned profile JSON
 * (format "strata-profile", version 2) that `strata plan --profiles` and
 * `strata run --plan auto` read.
 *
 * --quick measures a few blocks only and estimates the others: blocks with
 * the same weight shapes and types cost the same, so the blocks are grouped
 * by that signature (a Q4_K_M file mixes two: some blocks keep more bits)
 * and of each group the first, middle and last are measured, in a view of
 * the model holding just those blocks (the embedding and head included);
 * every other block gets the median of its group's measured blocks. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../bench/stream.h"
#include "backend.h"
#include "cli.h"
#include "json.h"
#include "model.h"
#include "profile.h"
#include "strata.h"
#include "util.h"

#define MAX_CTX 8
#define MAX_PF 8
#define MAX_RUNS 64
#define MAX_PF_REPS 3

static void usage(FILE *f)
{
	fprintf(f,
		"usage: strata profile -m MODEL.gguf [options]\n"
		"\n"
		"Measure per-unit costs (embedding, each block, head) of MODEL on one device and\n"
		"write a profile for `strata plan --profiles`.\n"
		"\n"
		"  -m, --model FILE       GGUF model\n"
		"  -d, --device ID        cpu (default), vulkan0, opencl0, ... (see `strata devices`)\n"
		"      --contexts LIST    decode context lengths, e.g. 0,64,256 (default: 0, n/4, n/2\n"
		"                         of min(n_ctx_train, 2048); --quick: 0, n/4)\n"
		"      --prefill LIST     prompt lengths for the prefill measurement (default 8,32,128,\n"
		"                         capped by the context size)\n"
		"      --runs R           decode tokens measured per context, median taken (default 9;\n"
		"                         --quick: 5)\n"
		"      --quick            measure the first, middle and last block of each weight-type\n"
		"                         mix (with embedding and head) and estimate the other blocks\n"
		"  -t, --threads N        CPU threads (default: all)\n"
		"  -o, --output FILE      default: $XDG_CACHE_HOME/strata/profile-MODEL-DEVICE.json\n"
		"  -h, --help\n");
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof *v, cmp_d);
	return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* Backend + index of a device id ("cpu", "vulkan0", "opencl1"). */
static int device_info(const char *id, struct st_device_info *info, char *backend, size_t bsize)
{
	size_t n = strcspn(id, "0123456789");
	char name[32];
	int idx = 0;
	if (n == 0 || n >= sizeof name)
		return -EINVAL;
	memcpy(name, id, n);
	name[n] = 0;
	if (id[n])
		idx = atoi(id + n);
	const struct st_backend_ops *ops = st_backend_find(name);
	if (!ops || idx < 0 || idx >= st_backend_device_count(ops))
		return -ENODEV;
	snprintf(backend, bsize, "%s", name);
	return st_backend_device_info(ops, idx, info);
}

static int mkdirs(char *path)
{
	for (char *p = path + 1; *p; p++)
		if (*p == '/') {
			*p = 0;
			if (mkdir(path, 0755) && errno != EEXIST) {
				*p = '/';
				return -errno;
			}
			*p = '/';
		}
	return 0;
}

/* "a,b,c": up to max strictly ascending integers in lo..hi; count or -1. */
static int parse_list(const char *s, int64_t lo, int64_t hi, uint32_t *out, int max)
{
	char *dup = strdup(s), *save = NULL;
	int n = 0;
	if (!dup)
		return -1;
	for (char *t = strtok_r(dup, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		int64_t v;
		if (n >= max || !cli_parse_i64(t, lo, hi, &v) || (n && (uint32_t)v <= out[n - 1])) {
			free(dup);
			return -1;
		}
		out[n++] = (uint32_t)v;
	}
	free(dup);
	return n ? n : -1;
}

/* Is `device` in the comma-separated list `list`? */
static bool in_list(const char *list, const char *device)
{
	size_t n = strlen(device);
	for (const char *p = list; p && *p;) {
		size_t len = strcspn(p, ",");
		if (len == n && !strncmp(p, device, n))
			return true;
		p += len + (p[len] == ',');
	}
	return false;
}

/* ---- which blocks to measure ------------------------------------------------ */

static bool same_mix(const struct st_model *m, int a, int b)
{
	for (int i = 0; i < ST_LAYER_N_WEIGHTS; i++) {
		const struct st_weight *x = st_layer_weight(&m->layers[a], i), *y = st_layer_weight(&m->layers[b], i);
		if (x->type != y->type || x->ne0 != y->ne0 || x->ne1 != y->ne1)
			return false;
	}
	return true;
}

/* group[b] = index of block b's weight mix (shapes and types of its
 * tensors); sel = the blocks to measure (all, or with quick the first,
 * middle and last block of each mix), ascending.  Returns the number
 * selected; *n_groups the number of mixes. */
static int choose_blocks(const struct st_model *m, int nl, bool quick, int *group, int *sel, int *n_groups)
{
	int ng = 0, rep[256], ns = 0;
	bool *take = calloc((size_t)nl, sizeof *take);
	if (!take)
		return -1;
	for (int b = 0; b < nl; b++) {
		int g = 0;
		while (g < ng && !same_mix(m, rep[g], b))
			g++;
		if (g == ng) {
			if (ng == (int)ST_ARRAY_SIZE(rep)) {     /* absurdly many mixes: measure everything */
				quick = false;
				g = ng - 1;
			} else {
				rep[ng++] = b;
			}
		}
		group[b] = g;
	}
	for (int g = 0; g < ng; g++) {
		int cnt = 0, k = 0;
		for (int b = 0; b < nl; b++)
			cnt += group[b] == g;
		for (int b = 0; b < nl; b++)
			if (group[b] == g) {
				if (!quick || k == 0 || k == cnt / 2 || k == cnt - 1)
					take[b] = true;
				k++;
			}
	}
	for (int b = 0; b < nl; b++)
		if (take[b])
			sel[ns++] = b;
	free(take);
	*n_groups = ng;
	return ns;
}

/* ---- measurement -------------------------------------------------------------- */

struct meas {
	int L;                          /* units of the measured model: embedding, blocks, head */
	double dec[MAX_CTX][1 + 4096 + 1], pf[MAX_PF][1 + 4096 + 1];
	double overhead, w1, w2, shift;
	uint64_t kv_tok;
};

/* Profile every unit of model pm (the model itself or a view of a few of
 * its blocks) on `device`.  0, or 1 with why. */
static int measure(struct st_model *pm, const char *device, int threads, uint32_t n_ctx, const uint32_t *ctx,
		   int nctx, const uint32_t *pfl, int npf, int runs, struct meas *me, char *why, size_t wsize)
{
	const struct st_model_desc *md = st_model_desc(pm);
	int nl = (int)md->n_layer, L = nl + 2, rc = 1;
	char stages[64];
	snprintf(stages, sizeof stages, "%s:0-%d", device, nl - 1);
	struct st_session_params sp;
	st_session_params_default(&sp);
	sp.n_ctx = n_ctx;
	sp.n_threads = (uint32_t)threads;
	sp.stages = stages;
	sp.profile = true;
	struct st_session *s = NULL;
	double *lt = calloc((size_t)nl, sizeof *lt), *samp = calloc((size_t)L * MAX_RUNS, sizeof *samp);
	int32_t *toks = calloc(n_ctx, sizeof *toks);
	me->L = L;
	if (!lt || !samp || !toks) {
		snprintf(why, wsize, "out of memory");
		goto out;
	}
	for (uint32_t i = 0; i < n_ctx; i++)
		toks[i] = (int32_t)((i * 7919u + 1u) % md->n_vocab);
	if (st_session_create(pm, &sp, &s) < 0) {
		snprintf(why, wsize, "session on %s: %s", stages, st_last_error());
		goto out;
	}
	/* Decode: fill the cache up to each context in turn (ascending, so the
	 * cache only grows), then time single tokens, truncating back so every
	 * run sees the same context length. */
	uint32_t pos = 0;
	for (int k = 0; k < nctx; k++) {
		if (ctx[k] > pos && st_session_eval(s, toks + pos, (int)(ctx[k] - pos), false) < 0)
			goto eval_fail;
		pos = ctx[k];
		for (int r = 0; r < runs; r++) {
			double e0, h0, e1, h1;
			st_session_head_times(s, &e0, &h0);
			if (st_session_eval(s, toks + ctx[k], 1, false) < 0 || st_session_layer_times(s, lt, nl) < 0)
				goto eval_fail;
			st_session_head_times(s, &e1, &h1);
			samp[0 * MAX_RUNS + r] = (e1 - e0) * 1e3;
			for (int i = 0; i < nl; i++)
				samp[(size_t)(1 + i) * MAX_RUNS + r] = lt[i] * 1e3;
			samp[(size_t)(nl + 1) * MAX_RUNS + r] = (h1 - h0) * 1e3;
			if (st_session_truncate(s, ctx[k]) < 0)
				goto eval_fail;
		}
		for (int u = 0; u < L; u++)
			me->dec[k][u] = median(samp + (size_t)u * MAX_RUNS, runs);
	}
	/* Per-token time outside the units, and the units' true total.  The
	 * per-layer timing above (profile = true) synchronises after every
	 * layer, which accelerators pay for (a submit and wait per layer on
	 * lavapipe and PoCL), so their unit costs come out inflated.  Plain
	 * sessions (no per-layer timing) from the first context point: the
	 * whole model as one stage on this device (median wall W1 per token)
	 * and as two stages on it (W2).  The fixed cost per stage is
	 * c = W2 - W1, the units' total U = W1 - c; the profiled unit costs are
	 * shifted evenly so that they sum to U at the first context point
	 * (their shape across units and contexts kept).  Then one stage over
	 * the whole model is predicted at W1, and a split pays c per stage. */
	{
		char spec1[64], spec2[96];
		struct st_session *p1 = NULL, *p2 = NULL;
		int nr = 2 * runs + 1;
		double sum = 0, a1[2 * MAX_RUNS + 1], a2[2 * MAX_RUNS + 1];
		snprintf(spec1, sizeof spec1, "%s:0-%d", device, nl - 1);
		snprintf(spec2, sizeof spec2, "%s:0-%d,%s:%d-%d", device, nl / 2 - 1, device, nl / 2, nl - 1);
		struct st_session_params pp = sp;
		pp.profile = false;
		pp.stages = spec1;
		int e = st_session_create(pm, &pp, &p1);
		pp.stages = spec2;
		if (!e && nl >= 2)
			e = st_session_create(pm, &pp, &p2);
		if (!e && ctx[0] > 0)
			e = st_session_eval(p1, toks, (int)ctx[0], false) < 0 ||
			    (p2 && st_session_eval(p2, toks, (int)ctx[0], false) < 0);
		/* interleaved: a burst of load hits both */
		for (int r = 0; r < nr + 1 && !e; r++)
			for (int k = 0; k < 2 && !e; k++) {
				struct st_session *ps = k ? p2 : p1;
				if (!ps)
					continue;
				double w0 = st_time_now();
				e = st_session_eval(ps, toks + ctx[0], 1, false) < 0;
				double dt = (st_time_now() - w0) * 1e3;
				e = e || st_session_truncate(ps, ctx[0]) < 0;
				if (r > 0 && k)         /* the first is a warm-up */
					a2[r - 1] = dt;
				else if (r > 0)
					a1[r - 1] = dt;
			}
		st_session_destroy(p1);
		st_session_destroy(p2);
		if (e) {
			snprintf(why, wsize, "plain decoding on %s: %s", spec2, st_last_error());
			goto out;
		}
		for (int u = 0; u < L; u++)
			sum += me->dec[0][u];
		me->w1 = median(a1, nr);
		me->w2 = p2 ? median(a2, nr) : me->w1;
		me->overhead = me->w2 - me->w1;
		if (me->overhead < 0)
			me->overhead = 0;
		if (!p2)        /* one layer: no split to compare with */
			me->overhead = me->w1 > sum ? me->w1 - sum : 0;
		me->shift = (me->w1 - me->overhead - sum) / L;
		/* A unit that does work never costs nothing: a negative shift
		 * larger than a tiny unit (an embedding lookup is ~1 us) stops
		 * at a tenth of what was measured for it, and at 1 ns. */
		for (int k = 0; k < nctx; k++)
			for (int u = 0; u < L; u++) {
				double *x = &me->dec[k][u];
				double floor_ms = *x * 0.1 > 1e-6 ? *x * 0.1 : 1e-6;
				*x = *x + me->shift > floor_ms ? *x + me->shift : floor_ms;
			}
	}
	/* Prefill: a prompt of each length from an empty cache; per-token cost
	 * per unit (median of 3 prompts, or fewer once a length has taken a
	 * second: a prompt that long averages itself). */
	for (int j = 0; j < npf; j++) {
		int reps = 0;
		double ps[MAX_PF_REPS][1 + 4096 + 1], t0 = st_time_now();
		for (int r = 0; r < MAX_PF_REPS && (r == 0 || st_time_now() - t0 < 1.0); r++, reps++) {
			double e0, h0, e1, h1;
			st_session_reset(s);
			st_session_head_times(s, &e0, &h0);
			if (st_session_eval(s, toks, (int)pfl[j], false) < 0 || st_session_layer_times(s, lt, nl) < 0)
				goto eval_fail;
			st_session_head_times(s, &e1, &h1);
			ps[r][0] = (e1 - e0) * 1e3 / (double)pfl[j];
			for (int i = 0; i < nl; i++)
				ps[r][1 + i] = lt[i] * 1e3 / (double)pfl[j];
			ps[r][nl + 1] = (h1 - h0) * 1e3 / (double)pfl[j];  /* the head runs on the last row only */
		}
		for (int u = 0; u < L; u++) {
			double v[MAX_PF_REPS];
			for (int r = 0; r < reps; r++)
				v[r] = ps[r][u];
			me->pf[j][u] = median(v, reps);
		}
	}
	/* KV bytes per token per block, from the stage's cache size. */
	struct st_stage_stats ss;
	me->kv_tok = 0;
	if (st_session_stage_stats(s, 0, &ss) == 0 && st_session_n_ctx(s) > 0)
		me->kv_tok = ss.kv_bytes / st_session_n_ctx(s) / (uint64_t)nl;
	rc = 0;
	goto out;
eval_fail:
	snprintf(why, wsize, "eval on %s: %s", stages, st_last_error());
out:
	free(lt);
	free(samp);
	free(toks);
	if (s)
		st_session_destroy(s);
	return rc;
}

/* ---- the profile ---------------------------------------------------------------- */

int profile_write(const struct profile_req *rq, char *path, size_t psize, char *why, size_t wsize)
{
	const char *device = rq->device ? rq->device : "cpu";
	int runs = rq->runs ? rq->runs : rq->quick ? 5 : 9;
	double t_start = st_time_now();
	struct st_device_info info;
	char backend[32];
	if (runs < 1 || runs > MAX_RUNS) {
		snprintf(why, wsize, "--runs: expected 1..%d, got %d", MAX_RUNS, runs);
		return 2;
	}
	if (device_info(device, &info, backend, sizeof backend)) {
		snprintf(why, wsize, "--device: no device '%s' (see 'strata devices')", device);
		return 2;
	}
	if (in_list(getenv("ST_PROFILE_FAIL"), device)) {
		snprintf(why, wsize, "%s: failing on purpose (ST_PROFILE_FAIL=%s)", device, getenv("ST_PROFILE_FAIL"));
		return 1;
	}

	struct st_model *m;
	if (st_model_open(rq->model, &m) < 0) {
		snprintf(why, wsize, "%s: %s", rq->model, st_last_error());
		return 1;
	}
	const struct st_model_desc *md = st_model_desc(m);
	int nl = (int)md->n_layer, L = nl + 2, rc = 1;
	uint32_t nmax = md->n_ctx_train && md->n_ctx_train < 2048 ? md->n_ctx_train : 2048;
	uint32_t ctx[MAX_CTX], pfl[MAX_PF];
	int nctx = 0, npf = 0;
	struct meas *me = NULL;
	double *full = NULL;
	char *text = NULL;
	int *group = NULL, *sel = NULL, nsel = 0, ngroups = 0;
	struct st_model *view = NULL;

	if (rq->prefill) {
		npf = parse_list(rq->prefill, 1, nmax, pfl, MAX_PF);
		if (npf < 0) {
			snprintf(why, wsize, "--prefill: up to %d ascending prompt lengths in 1..%u", MAX_PF, nmax);
			rc = 2;
			goto out;
		}
	} else {
		static const uint32_t dflt[] = { 8, 32, 128 };
		for (size_t i = 0; i < ST_ARRAY_SIZE(dflt); i++)
			if (dflt[i] <= nmax)
				pfl[npf++] = dflt[i];
		if (!npf)
			pfl[npf++] = nmax;
	}
	/* room after a context point for the measured token */
	int64_t top = (int64_t)nmax - runs - 2;
	if (rq->contexts) {
		nctx = top < 0 ? -1 : parse_list(rq->contexts, 0, top, ctx, MAX_CTX);
		if (nctx < 0) {
			snprintf(why, wsize, "--contexts: up to %d ascending values in 0..%lld", MAX_CTX, (long long)top);
			rc = 2;
			goto out;
		}
	} else {
		uint32_t t = top > 0 ? (uint32_t)top : 0;
		ctx[nctx++] = 0;
		if (t / 4 > 0)
			ctx[nctx++] = t / 4;
		if (!rq->quick && t / 2 > ctx[nctx - 1])
			ctx[nctx++] = t / 2;
	}

	group = calloc((size_t)nl, sizeof *group);
	sel = calloc((size_t)nl, sizeof *sel);
	me = calloc(1, sizeof *me);
	full = calloc((size_t)L * (MAX_CTX + MAX_PF), sizeof *full);
	if (!group || !sel || !me || !full || nl > 4096 || (nsel = choose_blocks(m, nl, rq->quick, group, sel, &ngroups)) < 1) {
		snprintf(why, wsize, nl > 4096 ? "%d blocks (at most 4096)" : "out of memory", nl);
		goto out;
	}
	/* The model to measure: the model itself, or a view holding only the
	 * selected blocks (same mapping, tensors and hyperparameters; never
	 * closed, only freed). */
	struct st_model *pm = m;
	if (nsel < nl) {
		view = malloc(sizeof *view + (size_t)nsel * sizeof *view->layers);
		if (!view) {
			snprintf(why, wsize, "out of memory");
			goto out;
		}
		*view = *m;
		view->layers = (struct st_layer_weights *)(view + 1);
		for (int j = 0; j < nsel; j++)
			view->layers[j] = m->layers[sel[j]];
		view->desc.n_layer = (uint32_t)nsel;
		view->tok = NULL;
		pm = view;
	}
	fprintf(stderr, "strata profile: %s on %s (%s), %d blocks", rq->model, device, info.name, nl);
	if (nsel < nl) {
		fprintf(stderr, " (%d weight mix%s; measuring blocks", ngroups, ngroups == 1 ? "" : "es");
		for (int j = 0; j < nsel; j++)
			fprintf(stderr, "%s%d", j ? "," : " ", sel[j]);
		fprintf(stderr, ")");
	}
	fprintf(stderr, ", contexts");
	for (int k = 0; k < nctx; k++)
		fprintf(stderr, " %u", ctx[k]);
	fprintf(stderr, ", %d runs each, prompts", runs);
	for (int j = 0; j < npf; j++)
		fprintf(stderr, " %u", pfl[j]);
	fprintf(stderr, "\n");
	if (measure(pm, device, rq->threads, nmax, ctx, nctx, pfl, npf, runs, me, why, wsize))
		goto out;

	/* Every unit of the model: measured ones directly, the others from the
	 * median of their weight mix's measured blocks. */
	for (int a = 0; a < nctx + npf; a++) {
		const double *src = a < nctx ? me->dec[a] : me->pf[a - nctx];
		double *dst = full + (size_t)a * L;
		dst[0] = src[0];
		dst[L - 1] = src[nsel + 1];
		for (int b = 0; b < nl; b++) {
			double v[4096];
			int n = 0;
			for (int j = 0; j < nsel; j++)
				if (sel[j] == b) {
					n = 0;
					v[n++] = src[1 + j];
					break;
				} else if (group[sel[j]] == group[b]) {
					v[n++] = src[1 + j];
				}
			dst[1 + b] = n ? median(v, n) : 0;
		}
	}

	/* Memory read bandwidth: on the CPU the STREAM-style read of
	 * bench/stream.c (a buffer 8x a 32 MiB cache, best of 5); on every
	 * device, the weight bytes one plain decode step reads (blocks + head)
	 * per its wall time; for accelerators that is the figure reported. */
	uint64_t wbytes = 0, b;
	for (int j = 0; j < nsel; j++)
		if (!st_model_layer_bytes(m, sel[j], &b))
			wbytes += b;
	if (!st_model_layer_bytes(m, -2, &b))
		wbytes += b;
	double dec_gbs = me->w1 > 0 ? (double)wbytes / (me->w1 * 1e-3) / 1e9 : 0, peak = 0;
	const char *method = "decode_weights";
	int bw_threads = rq->threads > 0 ? rq->threads : (int)sysconf(_SC_NPROCESSORS_ONLN);
	if (!strcmp(backend, "cpu")) {
		struct st_stream_result sr;
		if (!st_stream_read(bw_threads > 0 ? bw_threads : 1, (size_t)256 << 20, 5, &sr)) {
			peak = sr.best_gbs;
			method = "stream";
		}
	}
	if (peak <= 0)
		peak = dec_gbs;

	char host[64] = "localhost", mname[128];
	gethostname(host, sizeof host - 1);
	const char *base = strrchr(rq->model, '/') ? strrchr(rq->model, '/') + 1 : rq->model;
	snprintf(mname, sizeof mname, "%s", md->name[0] ? md->name : base);

	struct st_jw w;
	st_jw_init(&w, true);
	st_jw_object_begin(&w, NULL);
	st_jw_string(&w, "format", "strata-profile");
	st_jw_int(&w, "version", 2);
	st_jw_object_begin(&w, "device");
	st_jw_string(&w, "name", device);
	st_jw_string(&w, "backend", backend);
	st_jw_string(&w, "description", info.name);
	st_jw_string(&w, "host", host);
	st_jw_uint(&w, "memory_bytes", info.mem_total);
	st_jw_object_end(&w);
	st_jw_object_begin(&w, "model");
	st_jw_string(&w, "name", mname);
	st_jw_string(&w, "file", rq->model);
	st_jw_uint(&w, "file_size", md->file_size);
	st_jw_uint(&w, "n_layer", md->n_layer);
	st_jw_uint(&w, "n_embd", md->n_embd);
	st_jw_uint(&w, "weight_type", md->weight_type);
	st_jw_object_end(&w);
	st_jw_array_begin(&w, "units");
	for (int u = 0; u < L; u++) {
		uint64_t bytes = 0;
		char nm[32];
		st_model_layer_bytes(m, u == 0 ? -1 : u == L - 1 ? -2 : u - 1, &bytes);
		snprintf(nm, sizeof nm, u == 0 ? "embedding" : u == L - 1 ? "head" : "block.%d", u - 1);
		st_jw_object_begin(&w, NULL);
		st_jw_string(&w, "name", nm);
		st_jw_uint(&w, "weight_bytes", bytes);
		st_jw_uint(&w, "kv_bytes_per_token", (u == 0 || u == L - 1) ? 0 : me->kv_tok);
		st_jw_object_end(&w);
	}
	st_jw_array_end(&w);
	st_jw_uint(&w, "activation_bytes", (uint64_t)md->n_embd * 4);  /* f32 hidden state per token */
	st_jw_uint(&w, "output_bytes", 4);                              /* the sampled token id */
	st_jw_array_begin(&w, "decode_ms_at");
	for (int k = 0; k < nctx; k++) {
		st_jw_object_begin(&w, NULL);
		st_jw_uint(&w, "context", ctx[k]);
		st_jw_array_begin(&w, "ms");
		for (int u = 0; u < L; u++)
			st_jw_number(&w, NULL, full[(size_t)k * L + u]);
		st_jw_array_end(&w);
		st_jw_object_end(&w);
	}
	st_jw_array_end(&w);
	st_jw_number(&w, "stage_overhead_ms", me->overhead);
	st_jw_array_begin(&w, "prefill_ms_at");
	for (int j = 0; j < npf; j++) {
		st_jw_object_begin(&w, NULL);
		st_jw_uint(&w, "tokens", pfl[j]);
		st_jw_array_begin(&w, "ms");
		for (int u = 0; u < L; u++)
			st_jw_number(&w, NULL, full[(size_t)(nctx + j) * L + u]);
		st_jw_array_end(&w);
		st_jw_object_end(&w);
	}
	st_jw_array_end(&w);
	st_jw_object_begin(&w, "bandwidth");
	st_jw_number(&w, "peak_read_gbs", peak);
	st_jw_string(&w, "method", method);
	st_jw_number(&w, "decode_weight_gbs", dec_gbs);
	st_jw_object_end(&w);
	st_jw_object_begin(&w, "measured");
	st_jw_uint(&w, "runs", (uint64_t)runs);
	st_jw_uint(&w, "threads", (uint64_t)rq->threads);
	st_jw_bool(&w, "quick", nsel < nl);
	st_jw_uint(&w, "weight_mixes", (uint64_t)ngroups);
	st_jw_array_begin(&w, "blocks");
	for (int j = 0; j < nsel; j++)
		st_jw_int(&w, NULL, sel[j]);
	st_jw_array_end(&w);
	st_jw_number(&w, "plain_one_stage_ms", me->w1);
	st_jw_number(&w, "plain_two_stages_ms", me->w2);
	st_jw_number(&w, "unit_shift_ms", me->shift);
	st_jw_number(&w, "seconds", st_time_now() - t_start);
	st_jw_int(&w, "unix_time", (int64_t)time(NULL));
	st_jw_object_end(&w);
	st_jw_object_end(&w);
	int err;
	text = st_jw_finish(&w, NULL, &err);
	if (!text) {
		snprintf(why, wsize, "cannot write the profile JSON (%d)", err);
		goto out;
	}
	if (rq->output)
		snprintf(path, psize, "%s", rq->output);
	else {
		const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
		char dir[3072];
		if (xdg && xdg[0])
			snprintf(dir, sizeof dir, "%s/strata", xdg);
		else
			snprintf(dir, sizeof dir, "%s/.cache/strata", home ? home : ".");
		for (char *p = mname; *p; p++)
			if (*p == '/' || *p == ' ')
				*p = '_';
		snprintf(path, psize, "%s/profile-%s-%s.json", dir, mname, device);
		mkdirs(path);
	}
	FILE *f = fopen(path, "w");
	if (!f || fputs(text, f) < 0 || fclose(f)) {
		snprintf(why, wsize, "cannot write %s: %s", path, strerror(errno));
		goto out;
	}
	double pf_sum[MAX_PF] = { 0 };
	for (int j = 0; j < npf; j++)
		for (int u = 0; u < L; u++)
			pf_sum[j] += full[(size_t)(nctx + j) * L + u];
	fprintf(stderr, "strata profile: decode at context %u: embedding %.4f ms, block 0 %.4f ms, head %.4f ms, "
		"overhead %.4f ms per stage per token (plain decoding: one stage %.4f ms, two stages %.4f ms; "
		"unit costs shifted by %+.4f ms each)\n", ctx[0], full[0], full[1], full[L - 1], me->overhead, me->w1,
		me->w2, me->shift);
	fprintf(stderr, "strata profile: prefill ms per prompt token:");
	for (int j = 0; j < npf; j++)
		fprintf(stderr, " %.4f (%u tokens)", pf_sum[j], pfl[j]);
	fprintf(stderr, "; read bandwidth %.2f GB/s (%s), decode reads weights at %.2f GB/s; %.1f s\n", peak, method,
		dec_gbs, st_time_now() - t_start);
	rc = 0;
out:
	free(text);
	free(me);
	free(full);
	free(group);
	free(sel);
	free(view);
	st_model_close(m);
	return rc;
}

int cmd_profile(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "model", required_argument, NULL, 'm' },  { "device", required_argument, NULL, 'd' },
		{ "contexts", required_argument, NULL, 'c' }, { "prefill", required_argument, NULL, 'p' },
		{ "runs", required_argument, NULL, 'r' },   { "quick", no_argument, NULL, 'q' },
		{ "threads", required_argument, NULL, 't' }, { "output", required_argument, NULL, 'o' },
		{ "help", no_argument, NULL, 'h' },         { NULL, 0, NULL, 0 },
	};
	struct profile_req rq = { .device = "cpu" };
	int64_t v;
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "m:d:t:o:h", opts, NULL)) != -1) {
		switch (c) {
		case 'm': rq.model = optarg; break;
		case 'd': rq.device = optarg; break;
		case 'c': rq.contexts = optarg; break;
		case 'p': rq.prefill = optarg; break;
		case 'r':
			if (!cli_parse_i64(optarg, 1, MAX_RUNS, &v))
				return cli_usage_error("profile", "--runs: expected 1..%d, got '%s'", MAX_RUNS, optarg);
			rq.runs = (int)v;
			break;
		case 'q': rq.quick = true; break;
		case 't':
			if (!cli_parse_i64(optarg, 0, 1024, &v))
				return cli_usage_error("profile", "--threads: expected 0..1024, got '%s'", optarg);
			rq.threads = (int)v;
			break;
		case 'o': rq.output = optarg; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind < argc)
		return cli_usage_error("profile", "unexpected argument '%s'", argv[optind]);
	if (!rq.model)
		return cli_usage_error("profile", "-m MODEL is required");
	char path[4096], why[1024];
	int rc = profile_write(&rq, path, sizeof path, why, sizeof why);
	if (rc == 2)
		return cli_usage_error("profile", "%s", why);
	if (rc)
		return cli_fail("profile", "%s", why);
	printf("%s\n", path);
	return 0;
}
