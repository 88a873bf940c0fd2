/* cmd_profile.c: `strata profile`: measure what each layer unit of a model
 * costs on one device (decode at several context lengths, prefill per
 * token) through a session with per-layer timing, and write the versioned
 * profile JSON that `strata plan --profiles` reads. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "backend.h"
#include "cli.h"
#include "json.h"
#include "strata.h"
#include "util.h"

#define MAX_CTX 8
#define MAX_RUNS 64

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
		"                         of min(n_ctx_train, 2048))\n"
		"      --prefill N        prompt tokens for the prefill measurement (default 64)\n"
		"      --runs R           decode tokens measured per context, median taken (default 9)\n"
		"      --quick            3 runs, 2 contexts\n"
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

int cmd_profile(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "model", required_argument, NULL, 'm' },  { "device", required_argument, NULL, 'd' },
		{ "contexts", required_argument, NULL, 'c' }, { "prefill", required_argument, NULL, 'p' },
		{ "runs", required_argument, NULL, 'r' },   { "quick", no_argument, NULL, 'q' },
		{ "threads", required_argument, NULL, 't' }, { "output", required_argument, NULL, 'o' },
		{ "help", no_argument, NULL, 'h' },         { NULL, 0, NULL, 0 },
	};
	const char *model = NULL, *device = "cpu", *contexts = NULL, *output = NULL;
	int64_t prefill = 64, runs = 9, threads = 0;
	bool quick = false;
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "m:d:t:o:h", opts, NULL)) != -1) {
		switch (c) {
		case 'm': model = optarg; break;
		case 'd': device = optarg; break;
		case 'c': contexts = optarg; break;
		case 'p':
			if (!cli_parse_i64(optarg, 1, 4096, &prefill))
				return cli_usage_error("profile", "--prefill: expected 1..4096, got '%s'", optarg);
			break;
		case 'r':
			if (!cli_parse_i64(optarg, 1, MAX_RUNS, &runs))
				return cli_usage_error("profile", "--runs: expected 1..%d, got '%s'", MAX_RUNS, optarg);
			break;
		case 'q': quick = true; break;
		case 't':
			if (!cli_parse_i64(optarg, 0, 1024, &threads))
				return cli_usage_error("profile", "--threads: expected 0..1024, got '%s'", optarg);
			break;
		case 'o': output = optarg; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind < argc)
		return cli_usage_error("profile", "unexpected argument '%s'", argv[optind]);
	if (!model)
		return cli_usage_error("profile", "-m MODEL is required");
	if (quick)
		runs = 3;

	struct st_device_info info;
	char backend[32];
	if (device_info(device, &info, backend, sizeof backend))
		return cli_usage_error("profile", "--device: no device '%s' (see 'strata devices')", device);

	struct st_model *m;
	if (st_model_open(model, &m) < 0)
		return cli_fail("profile", "%s: %s", model, st_last_error());
	const struct st_model_desc *md = st_model_desc(m);
	int nl = (int)md->n_layer, rc = 1;
	uint32_t nmax = md->n_ctx_train && md->n_ctx_train < 2048 ? md->n_ctx_train : 2048;
	uint32_t ctx[MAX_CTX];
	int nctx = 0;
	if (contexts) {
		char *dup = strdup(contexts), *save = NULL;
		for (char *t = strtok_r(dup, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
			int64_t v;
			if (nctx >= MAX_CTX || !cli_parse_i64(t, 0, nmax - prefill - runs - 1, &v) ||
			    (nctx && (uint32_t)v <= ctx[nctx - 1])) {
				free(dup);
				st_model_close(m);
				return cli_usage_error("profile", "--contexts: up to %d ascending values in 0..%lld",
						       MAX_CTX, (long long)(nmax - prefill - runs - 1));
			}
			ctx[nctx++] = (uint32_t)v;
		}
		free(dup);
	} else {
		uint32_t top = nmax > (uint32_t)(prefill + runs + 1) ? nmax - (uint32_t)(prefill + runs + 1) : 0;
		ctx[nctx++] = 0;
		if (top / 4 > 0 && !quick)
			ctx[nctx++] = top / 4;
		if (top / 2 > ctx[nctx - 1])
			ctx[nctx++] = top / 2;
	}

	char stages[64];
	snprintf(stages, sizeof stages, "%s:0-%d", device, nl - 1);
	struct st_session_params sp;
	st_session_params_default(&sp);
	sp.n_ctx = nmax;
	sp.n_threads = (uint32_t)threads;
	sp.stages = stages;
	sp.profile = true;
	struct st_session *s = NULL;
	int L = nl + 2;
	double *ms = calloc((size_t)L * (MAX_CTX + 1), sizeof *ms), *lt = calloc((size_t)nl, sizeof *lt);
	double *samp = calloc((size_t)L * MAX_RUNS, sizeof *samp);
	double ovh[2 * (MAX_RUNS * 2 + 1)];
	int32_t *toks = calloc(nmax, sizeof *toks);
	char *text = NULL;
	if (!ms || !lt || !samp || !toks) {
		cli_fail("profile", "out of memory");
		goto out;
	}
	if (st_session_create(m, &sp, &s) < 0) {
		cli_fail("profile", "session on %s: %s", stages, st_last_error());
		goto out;
	}
	for (uint32_t i = 0; i < nmax; i++)
		toks[i] = (int32_t)((i * 7919u + 1u) % md->n_vocab);
	fprintf(stderr, "strata profile: %s on %s (%s), %d blocks, contexts", model, device, info.name, nl);
	for (int k = 0; k < nctx; k++)
		fprintf(stderr, " %u", ctx[k]);
	fprintf(stderr, ", %lld runs each\n", (long long)runs);

	/* Decode: fill the cache to the context, then time single tokens,
	 * truncating back so every run sees the same context length. */
	for (int k = 0; k < nctx; k++) {
		st_session_reset(s);
		if (ctx[k] > 0 && st_session_eval(s, toks, (int)ctx[k], false) < 0)
			goto eval_fail;
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
			ms[(size_t)k * L + u] = median(samp + (size_t)u * MAX_RUNS, (int)runs);
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
	double overhead = 0, shift = 0, w1 = 0, w2 = 0;
	{
		char spec1[64], spec2[96];
		struct st_session *p1 = NULL, *p2 = NULL;
		int nr = 2 * (int)runs + 1;
		double sum = 0, *a1 = ovh, *a2 = ovh + MAX_RUNS * 2 + 1;
		if (nr > MAX_RUNS * 2 + 1)
			nr = MAX_RUNS * 2 + 1;
		snprintf(spec1, sizeof spec1, "%s:0-%d", device, nl - 1);
		snprintf(spec2, sizeof spec2, "%s:0-%d,%s:%d-%d", device, nl / 2 - 1, device, nl / 2, nl - 1);
		struct st_session_params pp = sp;
		pp.profile = false;
		pp.stages = spec1;
		int e = st_session_create(m, &pp, &p1);
		pp.stages = spec2;
		if (!e && nl >= 2)
			e = st_session_create(m, &pp, &p2);
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
				if (r > 0)      /* the first is a warm-up */
					(k ? a2 : a1)[r - 1] = dt;
			}
		st_session_destroy(p1);
		st_session_destroy(p2);
		if (e) {
			cli_fail("profile", "plain decoding on %s: %s", spec2, st_last_error());
			goto out;
		}
		for (int u = 0; u < L; u++)
			sum += ms[u];
		w1 = median(a1, nr);
		w2 = p2 ? median(a2, nr) : w1;
		overhead = w2 - w1;
		if (overhead < 0)
			overhead = 0;
		if (!p2)        /* one layer: no split to compare with */
			overhead = w1 > sum ? w1 - sum : 0;
		shift = (w1 - overhead - sum) / L;
		/* A unit that does work never costs nothing: a negative shift
		 * larger than a tiny unit (an embedding lookup is ~1 us) stops
		 * at a tenth of what was measured for it, and at 1 ns. */
		for (int k = 0; k < nctx; k++)
			for (int u = 0; u < L; u++) {
				double *x = &ms[(size_t)k * L + u];
				double floor_ms = *x * 0.1 > 1e-6 ? *x * 0.1 : 1e-6;
				*x = *x + shift > floor_ms ? *x + shift : floor_ms;
			}
	}
	/* Prefill: one prompt of `prefill` tokens; per-token cost per unit. */
	{
		double *pf = ms + (size_t)MAX_CTX * L, e0, h0, e1, h1;
		st_session_reset(s);
		st_session_head_times(s, &e0, &h0);
		if (st_session_eval(s, toks, (int)prefill, false) < 0 || st_session_layer_times(s, lt, nl) < 0)
			goto eval_fail;
		st_session_head_times(s, &e1, &h1);
		pf[0] = (e1 - e0) * 1e3 / (double)prefill;
		for (int i = 0; i < nl; i++)
			pf[1 + i] = lt[i] * 1e3 / (double)prefill;
		pf[nl + 1] = (h1 - h0) * 1e3 / (double)prefill;     /* the head runs on the last row only */
	}

	/* KV bytes per token per block, from the stage's cache size. */
	struct st_stage_stats ss;
	uint64_t kv_tok = 0;
	if (st_session_stage_stats(s, 0, &ss) == 0 && st_session_n_ctx(s) > 0)
		kv_tok = ss.kv_bytes / st_session_n_ctx(s) / (uint64_t)nl;

	char host[64] = "localhost", mname[128];
	gethostname(host, sizeof host - 1);
	const char *base = strrchr(model, '/') ? strrchr(model, '/') + 1 : model;
	snprintf(mname, sizeof mname, "%s", md->name[0] ? md->name : base);

	struct st_jw w;
	st_jw_init(&w, true);
	st_jw_object_begin(&w, NULL);
	st_jw_string(&w, "format", "strata-profile");
	st_jw_int(&w, "version", 1);
	st_jw_object_begin(&w, "device");
	st_jw_string(&w, "name", device);
	st_jw_string(&w, "backend", backend);
	st_jw_string(&w, "description", info.name);
	st_jw_string(&w, "host", host);
	st_jw_uint(&w, "memory_bytes", info.mem_total);
	st_jw_object_end(&w);
	st_jw_object_begin(&w, "model");
	st_jw_string(&w, "name", mname);
	st_jw_string(&w, "file", model);
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
		st_jw_uint(&w, "kv_bytes_per_token", (u == 0 || u == L - 1) ? 0 : kv_tok);
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
			st_jw_number(&w, NULL, ms[(size_t)k * L + u]);
		st_jw_array_end(&w);
		st_jw_object_end(&w);
	}
	st_jw_array_end(&w);
	st_jw_number(&w, "stage_overhead_ms", overhead);
	st_jw_array_begin(&w, "prefill_ms");
	for (int u = 0; u < L; u++)
		st_jw_number(&w, NULL, ms[(size_t)MAX_CTX * L + u]);
	st_jw_array_end(&w);
	st_jw_object_begin(&w, "measured");
	st_jw_uint(&w, "runs", (uint64_t)runs);
	st_jw_uint(&w, "prefill_tokens", (uint64_t)prefill);
	st_jw_uint(&w, "threads", (uint64_t)threads);
	st_jw_int(&w, "unix_time", (int64_t)time(NULL));
	st_jw_object_end(&w);
	st_jw_object_end(&w);
	int err;
	text = st_jw_finish(&w, NULL, &err);
	if (!text) {
		cli_fail("profile", "cannot write the profile JSON (%d)", err);
		goto out;
	}
	char path[4096];
	if (output)
		snprintf(path, sizeof path, "%s", output);
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
		snprintf(path, sizeof path, "%s/profile-%s-%s.json", dir, mname, device);
		mkdirs(path);
	}
	FILE *f = fopen(path, "w");
	if (!f || fputs(text, f) < 0 || fclose(f)) {
		cli_fail("profile", "cannot write %s: %s", path, strerror(errno));
		goto out;
	}
	printf("%s\n", path);
	fprintf(stderr, "strata profile: decode at context %u: embedding %.4f ms, block 0 %.4f ms, head %.4f ms, "
		"overhead %.4f ms per stage per token (plain decoding: one stage %.4f ms, two stages %.4f ms; "
		"unit costs shifted by %+.4f ms each)\n", ctx[0], ms[0], ms[1], ms[L - 1], overhead, w1, w2, shift);
	rc = 0;
	goto out;
eval_fail:
	cli_fail("profile", "eval on %s: %s", stages, st_last_error());
out:
	free(text);
	free(ms);
	free(lt);
	free(samp);
	free(toks);
	if (s)
		st_session_destroy(s);
	st_model_close(m);
	return rc;
}
