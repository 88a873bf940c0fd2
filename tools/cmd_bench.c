/* cmd_bench.c: `strata bench`: prompt processing (pp) and generation (tg)
 * speed like llama-bench, with the memory-bandwidth limit of generation
 * measured on the spot (bench/stream.c) and peak RSS. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"
#include "plan_run.h"
#include "cpu_features.h"
#include "cpu_kernels.h"
#include "../bench/stream.h"
#include "strata.h"
#include "types.h"
#include "util.h"

static const char *const CMD = "bench";

#define MAX_LIST 16

static void usage(FILE *f)
{
	fprintf(f,
		"usage: strata bench -m MODEL [-p 128,512] [-n 64,128] [-d 0,512] [-t 1,2] [-r REPEATS] [--json]\n"
		"\n"
		"Measures like llama-bench: ppN = one prompt of N tokens evaluated at once from\n"
		"an empty context (tokens/s = N / time); tgN = N single-token decode steps from an\n"
		"empty context (tokens/s = N / time).  Each test runs once to warm up, then\n"
		"REPEATS times; the median, min and max are printed.  For tg the bandwidth limit\n"
		"is the weight bytes read per token divided by the memory read bandwidth measured\n"
		"with the same thread count (bench/stream.c), and the fraction reached is shown.\n"
		"With -d D (llama-bench's -d) each test starts after a D-token context, evaluated\n"
		"untimed before each run: 'tg64@d512' is 64 decode steps at positions 512..575.\n"
		"\n"
		"  -m, --model MODEL    GGUF model\n"
		"  -p, --n-prompt LIST  prompt lengths (default 512; 0 = none)\n"
		"  -n, --n-gen LIST     generation lengths (default 128; 0 = none)\n"
		"  -d, --n-depth LIST   context depths the tests start at (default 0)\n"
		"  -t, --threads LIST   thread counts (default: number of cores)\n"
		"  -r, --repetitions N  measured repeats per test (default 5)\n"
		"  --stages SPEC        stage string as for 'strata run' (default: all on the CPU)\n"
		"  --device D           all layers on device D (see `strata devices`)\n"
		"  --kv f32|f16         KV cache type (default f32)\n"
		"  --isa PATH           force a CPU kernel path (scalar, avx2, avx512, avx512_vnni,\n"
		"                       neon, neon_dotprod); default: the best one\n"
		"  --bw-mib N           buffer for the bandwidth measurement (default 1024; 0 = skip)\n"
		"  --json               one JSON object per line per test\n"
		"  -h, --help           this text\n");
}

static int parse_list(const char *s, int64_t min, int64_t max, int64_t *out, int *n)
{
	char buf[256];
	*n = 0;
	if (strlen(s) >= sizeof(buf))
		return -1;
	strcpy(buf, s);
	for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (*n >= MAX_LIST || !cli_parse_i64(tok, min, max, &out[*n]))
			return -1;
		(*n)++;
	}
	return *n ? 0 : -1;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static uint64_t peak_rss_bytes(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (uint64_t)ru.ru_maxrss * 1024u;
}

struct stats {
	double median, min, max;
};

static struct stats summarize(double *v, int n)
{
	struct stats s;
	qsort(v, (size_t)n, sizeof(double), cmp_double);
	s.min = v[0];
	s.max = v[n - 1];
	s.median = n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
	return s;
}

/* One measurement: tokens/s of a pp (prompt) or tg (decode) test, after
 * an untimed context of depth tokens. */
static int run_once(struct st_session *s, uint32_t n_vocab, bool pp, int n, int depth, double *tps)
{
	int32_t *toks = malloc((size_t)(n + depth) * sizeof(int32_t));
	if (!toks)
		return -ENOMEM;
	uint32_t x = 12345;
	for (int i = 0; i < n + depth; i++) {
		x = x * 1103515245u + 12345u;
		toks[i] = (int32_t)(3 + (x >> 8) % (n_vocab - 3));
	}
	st_session_reset(s);
	int rc = depth > 0 ? st_session_eval(s, toks + n, depth, false) : 0;
	double t0 = st_time_now();
	if (rc < 0) {
	} else if (pp) {
		rc = st_session_eval(s, toks, n, false);
	} else {
		for (int i = 0; i < n && rc >= 0; i++)
			rc = st_session_eval(s, &toks[i], 1, false);
	}
	double dt = st_time_now() - t0;
	free(toks);
	if (rc < 0)
		return rc;
	*tps = n / dt;
	return 0;
}

/* The bandwidth measurement runs in a child process so its buffer does
 * not count in this process's peak RSS. */
static double measure_bandwidth(int threads, int64_t mib)
{
	int fd[2];
	struct st_stream_result r = { 0 };
	if (mib <= 0 || pipe(fd))
		return 0;
	fflush(stdout);
	pid_t pid = fork();
	if (pid < 0) {
		close(fd[0]);
		close(fd[1]);
		return 0;
	}
	if (pid == 0) {
		close(fd[0]);
		if (st_stream_read(threads, (size_t)mib << 20, 5, &r))
			r.best_gbs = 0;
		ssize_t w = write(fd[1], &r.best_gbs, sizeof(r.best_gbs));
		_exit(w == (ssize_t)sizeof(r.best_gbs) ? 0 : 1);
	}
	close(fd[1]);
	double gbs = 0;
	if (read(fd[0], &gbs, sizeof(gbs)) != (ssize_t)sizeof(gbs))
		gbs = 0;
	close(fd[0]);
	waitpid(pid, NULL, 0);
	return gbs;
}

int cmd_bench(int argc, char **argv)
{
	const char *model = NULL, *stages = NULL, *device = NULL;
	char stages_buf[4096];
	int64_t pl[MAX_LIST] = { 512 }, nl[MAX_LIST] = { 128 }, tl[MAX_LIST] = { 0 }, reps = 5, bw_mib = 1024;
	int64_t dl[MAX_LIST] = { 0 };
	int np = 1, nn = 1, nt = 1, nd = 1;
	bool json = false;
	uint32_t kv = ST_KV_F32;
	enum st_isa isa = ST_ISA_AUTO;
	tl[0] = st_cpu_count();

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			usage(stdout);
			return 0;
		} else if (!strcmp(a, "--json")) {
			json = true;
			continue;
		}
		if (!v)
			return cli_usage_error(CMD, "option %s needs a value", a);
		i++;
		if (!strcmp(a, "-m") || !strcmp(a, "--model"))
			model = v;
		else if (!strcmp(a, "--stages"))
			stages = v;
		else if (!strcmp(a, "--device"))        /* plan_run.c */
			device = v;
		else if (!strcmp(a, "-p") || !strcmp(a, "--n-prompt")) {
			if (parse_list(v, 0, 1 << 20, pl, &np))
				return cli_usage_error(CMD, "-p wants a comma list of 0..%d, got '%s'", 1 << 20, v);
		} else if (!strcmp(a, "-n") || !strcmp(a, "--n-gen")) {
			if (parse_list(v, 0, 1 << 20, nl, &nn))
				return cli_usage_error(CMD, "-n wants a comma list of 0..%d, got '%s'", 1 << 20, v);
		} else if (!strcmp(a, "-d") || !strcmp(a, "--n-depth")) {
			if (parse_list(v, 0, 1 << 20, dl, &nd))
				return cli_usage_error(CMD, "-d wants a comma list of 0..%d, got '%s'", 1 << 20, v);
		} else if (!strcmp(a, "-t") || !strcmp(a, "--threads")) {
			if (parse_list(v, 1, 512, tl, &nt))
				return cli_usage_error(CMD, "-t wants a comma list of 1..512, got '%s'", v);
		} else if (!strcmp(a, "-r") || !strcmp(a, "--repetitions")) {
			if (!cli_parse_i64(v, 1, 1000, &reps))
				return cli_usage_error(CMD, "-r wants 1..1000, got '%s'", v);
		} else if (!strcmp(a, "--bw-mib")) {
			if (!cli_parse_i64(v, 0, 1 << 20, &bw_mib))
				return cli_usage_error(CMD, "--bw-mib wants 0..%d, got '%s'", 1 << 20, v);
		} else if (!strcmp(a, "--kv")) {
			if (!strcmp(v, "f32"))
				kv = ST_KV_F32;
			else if (!strcmp(v, "f16"))
				kv = ST_KV_F16;
			else
				return cli_usage_error(CMD, "--kv wants f32 or f16, got '%s'", v);
		} else if (!strcmp(a, "--isa")) {
			int found = -1;
			for (int k = 0; k < ST_ISA_COUNT; k++)
				if (!strcmp(v, st_cpu_isa_name((enum st_isa)k)))
					found = k;
			if (found < 0)
				return cli_usage_error(CMD, "unknown --isa '%s'", v);
			isa = (enum st_isa)found;
		} else
			return cli_usage_error(CMD, "unknown option '%s'", a);
	}
	if (!model)
		return cli_usage_error(CMD, "-m MODEL is required");
	if (st_cpu_kernels_set_isa(isa))
		return cli_fail(CMD, "%s", st_last_error());

	struct st_model *m = NULL;
	if (st_model_open(model, &m))
		return cli_fail(CMD, "%s: %s", model, st_last_error());
	const struct st_model_desc *d = st_model_desc(m);
	int sr_rc = cli_stages_resolve(CMD, device, stages, m, stages_buf, sizeof stages_buf);
	if (sr_rc) {
		st_model_close(m);
		return sr_rc;
	}
	stages = stages_buf;
	/* weight bytes read per generated token: every layer plus the head */
	uint64_t per_token = 0, b;
	for (int l = 0; l < (int)d->n_layer; l++)
		if (st_model_layer_bytes(m, l, &b) == 0)
			per_token += b;
	if (st_model_layer_bytes(m, -2, &b) == 0)
		per_token += b;
	int64_t max_ctx = 1;
	for (int i = 0; i < np; i++)
		max_ctx = ST_MAX(max_ctx, pl[i]);
	for (int i = 0; i < nn; i++)
		max_ctx = ST_MAX(max_ctx, nl[i]);
	int64_t max_depth = 0;
	for (int i = 0; i < nd; i++)
		max_depth = ST_MAX(max_depth, dl[i]);
	max_ctx += max_depth;
	if (max_ctx > d->n_ctx_train) {
		st_model_close(m);
		return cli_fail(CMD, "a test needs %lld positions; the model's context is %u", (long long)max_ctx,
				d->n_ctx_train);
	}
	const char *isa_name = st_cpu_isa_name(isa == ST_ISA_AUTO ? st_cpu_isa_best() : isa);
	if (!json)
		printf("model %s: %s, %.2f GiB, %" PRIu64 " weight bytes per token; cpu path %s\n\n"
		       "| %-7s | %7s | %8s | %-24s | %9s | %9s | %6s |\n"
		       "|---------|---------|----------|--------------------------|-----------|-----------|--------|\n",
		       model, st_type_name(d->weight_type), (double)d->weight_bytes / (1u << 30), per_token, isa_name,
		       "test", "threads", "repeats", "tokens/s median (min-max)", "bw GB/s", "tg limit", "of lim");
	int status = 0;
	double *v = calloc((size_t)reps, sizeof(double));
	for (int ti = 0; ti < nt && !status; ti++) {
		struct st_stream_result sr = { 0 };
		sr.best_gbs = measure_bandwidth((int)tl[ti], bw_mib);
		struct st_session_params sp;
		struct st_session *s = NULL;
		st_session_params_default(&sp);
		sp.n_threads = (uint32_t)tl[ti];
		sp.kv_type = kv;
		sp.stages = stages;
		sp.n_ctx = (uint32_t)max_ctx;
		sp.n_batch = (uint32_t)ST_MIN(max_ctx, 512);
		if (st_session_create(m, &sp, &s)) {
			status = cli_fail(CMD, "session: %s", st_last_error());
			break;
		}
		for (int pass = 0; pass < 2 * nd && !status; pass++) {
			const int cnt = pass % 2 == 0 ? np : nn;
			const int depth = (int)dl[pass / 2];
			for (int k = 0; k < cnt && !status; k++) {
				const bool pp = pass % 2 == 0;
				const int n = (int)(pp ? pl[k] : nl[k]);
				double tps;
				char test[48];
				if (n == 0)
					continue;
				if (depth > 0)
					snprintf(test, sizeof(test), "%s%d@d%d", pp ? "pp" : "tg", n, depth);
				else
					snprintf(test, sizeof(test), "%s%d", pp ? "pp" : "tg", n);
				if (run_once(s, d->n_vocab, pp, n, depth, &tps) < 0) {   /* warm-up */
					status = cli_fail(CMD, "%s: %s", test, st_last_error());
					break;
				}
				for (int r = 0; r < reps && !status; r++)
					if (run_once(s, d->n_vocab, pp, n, depth, &v[r]) < 0)
						status = cli_fail(CMD, "%s: %s", test, st_last_error());
				if (status)
					break;
				struct stats st = summarize(v, (int)reps);
				const double limit = !pp && sr.best_gbs > 0 && per_token ? sr.best_gbs * 1e9 / (double)per_token : 0;
				if (json) {
					printf("{\"test\":\"%s\",\"threads\":%lld,\"tokens_per_s\":{\"median\":%.3f,\"min\":%.3f,\"max\":%.3f},"
					       "\"model_bytes\":%" PRIu64 ",\"peak_rss_bytes\":%" PRIu64 ",\"repeats\":%lld,"
					       "\"model\":\"%s\",\"type\":\"%s\",\"cpu_path\":\"%s\",\"read_bw_gbs\":%.3f,"
					       "\"n_depth\":%d,\"kv_type\":\"%s\"",
					       test, (long long)tl[ti], st.median, st.min, st.max, d->weight_bytes,
					       peak_rss_bytes(), (long long)reps, model, st_type_name(d->weight_type), isa_name,
					       sr.best_gbs, depth, kv == ST_KV_F16 ? "f16" : "f32");
					if (limit > 0)
						printf(",\"weight_bytes_per_token\":%" PRIu64 ",\"bw_limit_tokens_per_s\":%.3f,"
						       "\"fraction_of_limit\":%.4f", per_token, limit, st.median / limit);
					printf("}\n");
				} else {
					char med[64], lim[32] = "", frac[16] = "";
					snprintf(med, sizeof(med), "%.2f (%.2f-%.2f)", st.median, st.min, st.max);
					if (limit > 0) {
						snprintf(lim, sizeof(lim), "%.2f t/s", limit);
						snprintf(frac, sizeof(frac), "%.0f%%", 100.0 * st.median / limit);
					}
					printf("| %-7s | %7lld | %8lld | %-24s | %9.2f | %9s | %6s |\n", test, (long long)tl[ti],
					       (long long)reps, med, sr.best_gbs, lim, frac);
				}
				fflush(stdout);
			}
		}
		st_session_destroy(s);
	}
	if (!json && !status)
		printf("\npeak RSS %.1f MiB (weights %.1f MiB)\n", (double)peak_rss_bytes() / (1 << 20),
		       (double)d->weight_bytes / (1 << 20));
	free(v);
	st_model_close(m);
	return status;
}
