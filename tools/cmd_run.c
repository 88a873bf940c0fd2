/* cmd_run.c: `strata run`: generate text from a prompt. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "load_progress.h"
#include "loader.h"
#include "model.h"
#include "plan_run.h"
#include "strata.h"
#include "util.h"
#include "weights.h"

static const char *const CMD = "run";

static void usage(FILE *f)
{
	fprintf(f,
		"usage: strata run -m MODEL [-p PROMPT] [options]\n"
		"\n"
		"Tokenizes the prompt (with BOS when the model asks for it), evaluates it in one\n"
		"call, then generates one token at a time, streaming the text to stdout, until\n"
		"the end-of-sequence token or -n tokens.  An empty prompt starts from BOS alone.\n"
		"Statistics go to stderr at the end.\n"
		"\n"
		"  -m, --model MODEL       GGUF model file\n"
		"  -p, --prompt PROMPT     prompt text (default: empty)\n"
		"  -n, --n-predict N       tokens to generate (default 128)\n"
		"  --temp T                temperature (default 0.8; 0 = greedy)\n"
		"  --top-k K               keep the K most likely tokens (default 40; 0 = off)\n"
		"  --top-p P               nucleus: smallest set with probability >= P\n"
		"                          (default 0.95; 1 = off)\n"
		"  --min-p P               drop tokens below P times the best (default 0.05; 0 = off)\n"
		"  --repeat-penalty R      penalty on the last tokens (default 1.0 = off)\n"
		"  --repeat-last-n N       how many tokens the penalty looks at (default 64)\n"
		"  --seed S                sampling seed (default 0; same seed, same text)\n"
		"  -t, --threads N         CPU threads (default: all cores)\n"
		"  --ctx N                 context size in tokens (default: min(trained, 2048))\n"
		"  --kv-type f32|f16       KV cache element type (default f32)\n"
		"  --io auto|mmap|uring|direct|pread  how stages get their weights from the file:\n"
		"                          auto (default) or uring: stages that can use the mapped\n"
		"                          file in place (the CPU, unified-memory devices) do, and\n"
		"                          io_uring reads their layers into the page cache ahead of\n"
		"                          them (readahead; posix_fadvise without io_uring); devices\n"
		"                          with memory of their own get theirs read with io_uring\n"
		"                          (O_DIRECT) and copied in, streamed (chunk k+1 read while\n"
		"                          chunk k is copied);\n"
		"                          mmap: the mapped file, read on demand (copied by devices\n"
		"                          with memory of their own);\n"
		"                          direct/pread: every stage reads with io_uring O_DIRECT /\n"
		"                          buffered pread into memory of its own, CPU stages in the\n"
		"                          background, each layer of the first token starting as its\n"
		"                          bytes arrive (a mapped file must not be truncated while it\n"
		"                          runs, as with any mmap; these copies are immune to that)\n"
		"  --verify FILE           check every tensor of the model file (read through the\n"
		"                          mapping, which the stages use or copy from) against the\n"
		"                          hashes in FILE (`strata bench-load -m MODEL --save-hashes\n"
		"                          FILE` writes one) before the first token; a mismatch\n"
		"                          names the tensor and stops with status 1.  With --io\n"
		"                          direct|pread this reads the file a second time\n"
		"  --stages SPEC           layers per device, e.g. cpu:0-4 or cpu:0-1,vulkan0:2-4\n"
		"                          (default: all layers on the CPU)\n"
		"  --device D              all layers on device D (cpu, vulkan0, opencl0, ...:\n"
		"                          see `strata devices`)\n"
		"  --plan FILE|auto        run a `strata plan --json` plan's stages; auto: profile\n"
		"                          each device (or read matching cached profiles), plan,\n"
		"                          run, then print predicted vs measured time per stage\n"
		"  --objective O           with --plan auto: latency (default), throughput, tokens_per_s\n"
		"  --verbose               log library messages to stderr\n"
		"  -h, --help              this text\n"
		"\n"
		"Sampling order (llama.cpp's default chain): repetition penalty, top-k, top-p,\n"
		"min-p, temperature, draw.\n");
}

static void log_stderr(enum st_log_level level, const char *msg, void *user)
{
	static const char *names[] = { "debug", "info", "warn", "error" };
	fprintf(stderr, "[%s] %s\n", names[level & 3], msg);
}

struct run_opts {
	const char *model, *prompt, *stages;
	const char *device, *plan, *objective;          /* plan_run.c */
	int64_t n_predict, top_k, repeat_last_n, seed, threads, ctx;
	double temp, top_p, min_p, repeat_penalty;
	uint32_t kv_type;
	const char *io;                                 /* how stages get their weights (--io) */
	const char *verify;                             /* hash file, or NULL */
	bool verbose;
};

static int parse(int argc, char **argv, struct run_opts *o)
{
	const char *v;
	*o = (struct run_opts){ 0 };       /* a field added later starts zero, not stack garbage */
	o->model = NULL;
	o->prompt = "";
	o->stages = NULL;
	o->device = o->plan = o->objective = NULL;
	o->n_predict = 128;
	o->temp = 0.8;
	o->top_k = 40;
	o->top_p = 0.95;
	o->min_p = 0.05;
	o->repeat_penalty = 1.0;
	o->repeat_last_n = 64;
	o->seed = 0;
	o->threads = 0;
	o->ctx = 0;
	o->kv_type = ST_KV_F32;
	o->io = "auto";
	o->verify = NULL;
	o->verbose = false;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		int r;
#define TAKE(name) ((r = cli_take(CMD, argc, argv, &i, name, &v)) != 0)
#define INT(name, lo, hi, dst)                                                                   \
	if (TAKE(name)) {                                                                        \
		if (r < 0)                                                                       \
			return 2;                                                                \
		if (!cli_parse_i64(v, lo, hi, dst))                                              \
			return cli_usage_error(CMD, "%s '%s' is not an integer in %lld..%lld", name, v, \
					       (long long)(lo), (long long)(hi));                \
		continue;                                                                        \
	}
#define DBL(name, lo, hi, dst)                                                                   \
	if (TAKE(name)) {                                                                        \
		if (r < 0)                                                                       \
			return 2;                                                                \
		if (!cli_parse_f64(v, lo, hi, dst))                                              \
			return cli_usage_error(CMD, "%s '%s' is not a number in [%g, %g]", name, v, \
					       (double)(lo), (double)(hi));                      \
		continue;                                                                        \
	}
		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			usage(stdout);
			return 0;
		}
		if (!strcmp(a, "--verbose")) {
			o->verbose = true;
			continue;
		}
		if (TAKE("-m") || TAKE("--model")) {
			if (r < 0)
				return 2;
			o->model = v;
			continue;
		}
		if (TAKE("-p") || TAKE("--prompt")) {
			if (r < 0)
				return 2;
			o->prompt = v;
			continue;
		}
		if (TAKE("--stages")) {
			if (r < 0)
				return 2;
			o->stages = v;
			continue;
		}
		/* device choice and plans (plan_run.c) */
		if (TAKE("--device") || TAKE("--plan") || TAKE("--objective")) {
			if (r < 0)
				return 2;
			*(!strcmp(a, "--device") || !strncmp(a, "--device=", 9) ? &o->device
			  : !strcmp(a, "--plan") || !strncmp(a, "--plan=", 7) ? &o->plan : &o->objective) = v;
			continue;
		}
		if (TAKE("--verify")) {
			if (r < 0)
				return 2;
			o->verify = v;
			continue;
		}
		if (TAKE("--io")) {
			if (r < 0)
				return 2;
			if (strcmp(v, "mmap") && strcmp(v, "auto") && strcmp(v, "uring") && strcmp(v, "direct") &&
			    strcmp(v, "pread"))
				return cli_usage_error(CMD, "--io '%s' is not auto, mmap, uring, direct or pread", v);
			o->io = v;
			continue;
		}
		if (TAKE("--kv-type")) {
			if (r < 0)
				return 2;
			if (!strcmp(v, "f32"))
				o->kv_type = ST_KV_F32;
			else if (!strcmp(v, "f16"))
				o->kv_type = ST_KV_F16;
			else
				return cli_usage_error(CMD, "--kv-type '%s' is not f32 or f16", v);
			continue;
		}
		INT("-n", 0, 1 << 24, &o->n_predict)
		INT("--n-predict", 0, 1 << 24, &o->n_predict)
		INT("--top-k", 0, 1 << 24, &o->top_k)
		INT("--repeat-last-n", 0, 1 << 20, &o->repeat_last_n)
		INT("--seed", 0, INT64_MAX, &o->seed)
		INT("-t", 0, 4096, &o->threads)
		INT("--threads", 0, 4096, &o->threads)
		INT("--ctx", 0, 1 << 20, &o->ctx)
		DBL("--temp", 0.0, 1e6, &o->temp)
		DBL("--top-p", 1e-9, 1.0, &o->top_p)
		DBL("--min-p", 0.0, 1.0, &o->min_p)
		DBL("--repeat-penalty", 1e-6, 1e6, &o->repeat_penalty)
#undef DBL
#undef INT
#undef TAKE
		if (a[0] == '-' && a[1])
			return cli_usage_error(CMD, "unknown option '%s'", a);
		return cli_usage_error(CMD, "unexpected argument '%s' (the prompt goes after -p)", a);
	}
	if (!o->model)
		return cli_usage_error(CMD, "missing -m MODEL");
	if (o->plan && (o->device || o->stages))
		return cli_usage_error(CMD, "--plan chooses the stages: no --device or --stages with it");
	if (o->objective && (!o->plan || strcmp(o->plan, "auto")))
		return cli_usage_error(CMD, "--objective goes with --plan auto");
	return -1;      /* parsed, go on */
}

/* How the stages get their weights (--io): the read-ahead of the mapped
 * file and/or the loader.  BENCHMARKS.md "Weight loading" has the
 * measurements behind the default. */
static void set_io(const struct run_opts *o, struct st_session_params *sp, struct st_ioring_weights *w)
{
	const bool readahead = !strcmp(o->io, "auto") || !strcmp(o->io, "uring");
	w->path = o->model;
	sp->load_user = w;
	if (!strcmp(o->io, "mmap")) {
		if (o->verbose)
			fprintf(stderr, "strata %s: --io mmap: stages use the mapped file, read on demand\n", CMD);
		return;
	}
	/* stages that can use the mapped file in place read it ahead; the
	 * loader fills the others (device-local memory, streamed), or with
	 * direct/pread every stage, into memory of its own */
	if (readahead)
		sp->prefetch_weights = st_ioring_prefetch_weights;
	w->opts.mode = strcmp(o->io, "pread") ? ST_IO_AUTO : ST_IO_PREAD;
	sp->load_weights_async = st_ioring_load_weights_async;
	sp->load_device = true;
	if (o->verbose)
		fprintf(stderr, "strata %s: --io %s: %s\n", CMD, o->io,
			readahead ? "stages that can use the mapped file in place do, read ahead with io_uring; the "
				    "others read theirs with io_uring into device memory"
				  : "stages read their weights into memory of their own (CPU ones in the background, "
				    "accelerators' into device memory)");
}

/* Write out what is complete of the pending bytes, holding back the start
 * of an incomplete UTF-8 sequence. */
static void emit(char *pend, size_t *n, bool flush_all)
{
	size_t hold = flush_all ? 0 : st_utf8_incomplete_tail(pend, *n);
	size_t out = *n - hold;
	if (out) {
		fwrite(pend, 1, out, stdout);
		fflush(stdout);
		memmove(pend, pend + out, hold);
		*n = hold;
	}
}

/* --verify: every weight of the model, as the stages see it (the mapped
 * file; a loader reads the same bytes), against the hash file. */
static int verify_weights(const struct st_model *m, const char *file)
{
	const int nl = (int)m->desc.n_layer;
	int n = st_model_spans(m, 0, nl - 1, true, true, NULL, 0), rc;
	struct st_tensor_span *ts = n > 0 ? calloc((size_t)n, sizeof *ts) : NULL;
	struct st_load_span *ls = n > 0 ? calloc((size_t)n, sizeof *ls) : NULL;
	if (!ts || !ls) {
		free(ts);
		free(ls);
		return st_error(-ENOMEM, "out of memory verifying the weights");
	}
	n = st_model_spans(m, 0, nl - 1, true, true, ts, n);
	for (int i = 0; i < n; i++)
		ls[i] = (struct st_load_span){ .file_offset = ts[i].file_offset, .nbytes = ts[i].nbytes,
					       .dst = (char *)m->map + ts[i].file_offset, .dst_size = ts[i].nbytes,
					       .name = ts[i].w->name };
	rc = st_load_hashes_read(file, ls, (size_t)n);
	if (rc == 0)
		rc = st_load_verify(ls, (size_t)n);
	free(ts);
	free(ls);
	return rc;
}

/* cli_fail, after erasing the loading-progress line (if any) so the
 * message gets a line of its own. */
#define run_fail(lp, ...) \
	do { \
		load_progress_stop(*(lp)); \
		*(lp) = NULL; \
		cli_fail(CMD, __VA_ARGS__); \
	} while (0)

int cmd_run(int argc, char **argv)
{
	struct run_opts o;
	struct st_model *m = NULL;
	struct st_session *s = NULL;
	struct st_sampler *smp = NULL;
	struct st_tokenizer *tok;
	struct st_session_params sp;
	struct st_sampler_params pp;
	struct plan_run *plan = NULL;
	struct st_ioring_weights w = { 0 };
	char stages[4096];
	int32_t *toks = NULL;
	int n_prompt, n_gen = 0, rc, ret = 1;
	double t_load0, t_load, t_prompt = 0, t_gen = 0, t0, t_first = 0;
	char *pend = NULL;          /* bytes not written yet (an incomplete UTF-8 tail) */
	size_t n_pend = 0, cap_pend = 0;
	bool strip_space;
	struct load_progress *progress = NULL;

	rc = parse(argc, argv, &o);
	if (rc >= 0)
		return rc;
	if (o.verbose)
		st_set_log(log_stderr, NULL, ST_LOG_DEBUG);

	t_load0 = st_time_now();
	if (st_model_open(o.model, &m) < 0)
		return cli_fail(CMD, "%s: %s", o.model, st_last_error());
	tok = st_model_tokenizer(m);
	if (!tok) {
		cli_fail(CMD, "%s: the model has no tokenizer", o.model);
		goto out;
	}
	st_session_params_default(&sp);
	sp.n_ctx = (uint32_t)o.ctx;
	sp.kv_type = o.kv_type;
	sp.n_threads = (uint32_t)o.threads;
	if (o.plan) {
		ret = plan_run_prepare(CMD, o.plan, o.model, m, o.objective, (int)o.threads,
				       (uint32_t)(o.n_predict / 2 + 1), o.verbose, &plan);
		if (ret)
			goto out;
		snprintf(stages, sizeof stages, "%s", plan_run_stages(plan));
	} else if ((ret = cli_stages_resolve(CMD, o.device, o.stages, m, stages, sizeof stages))) {
		goto out;
	}
	ret = 1;
	sp.stages = stages;
	set_io(&o, &sp, &w);
	/* the mapped file fills while the first evaluation runs (O_DIRECT
	 * reads bypass the page cache: nothing to watch there) */
	if (strcmp(o.io, "direct"))
		progress = load_progress_start(o.model);
	if (st_session_create(m, &sp, &s) < 0) {
		run_fail(&progress, "%s", st_last_error());
		goto out;
	}
	t_load = st_time_now() - t_load0;

	/* tokenize: count, then fill */
	{
		size_t len = strlen(o.prompt);
		bool add_bos = st_tokenizer_add_bos(tok) && st_tokenizer_bos(tok) >= 0;
		n_prompt = st_tokenize(tok, o.prompt, len, add_bos, NULL, 0);
		if (n_prompt < 0) {
			run_fail(&progress, "tokenizing the prompt: %s", st_last_error());
			goto out;
		}
		toks = malloc(((size_t)n_prompt + 1) * sizeof(*toks));
		if (!toks) {
			run_fail(&progress, "out of memory for %d prompt tokens", n_prompt);
			goto out;
		}
		rc = st_tokenize(tok, o.prompt, len, add_bos, toks, n_prompt);
		if (rc < 0) {
			run_fail(&progress, "tokenizing the prompt: %s", st_last_error());
			goto out;
		}
		if (n_prompt == 0) {        /* empty prompt, no automatic BOS: start from BOS */
			if (st_tokenizer_bos(tok) < 0) {
				run_fail(&progress, "empty prompt and the vocabulary has no BOS token to start from");
				goto out;
			}
			toks[n_prompt++] = st_tokenizer_bos(tok);
		}
	}
	if (o.verify && verify_weights(m, o.verify) < 0) {
		run_fail(&progress, "--verify %s: %s", o.verify, st_last_error());
		goto out;
	}
	if ((uint32_t)n_prompt >= st_session_n_ctx(s)) {
		run_fail(&progress, "the prompt has %d tokens, the context only %u (see --ctx)", n_prompt,
			 st_session_n_ctx(s));
		goto out;
	}

	st_sampler_params_default(&pp);
	pp.temp = (float)o.temp;
	pp.top_k = (int32_t)o.top_k;
	pp.top_p = (float)o.top_p;
	pp.min_p = (float)o.min_p;
	pp.repeat_penalty = (float)o.repeat_penalty;
	pp.repeat_last_n = (int32_t)o.repeat_last_n;
	pp.seed = (uint64_t)o.seed;
	/* the embedding may have padding rows beyond the vocabulary: sample
	 * among the tokenizer's ids only */
	if (st_tokenizer_n_vocab(tok) > st_model_desc(m)->n_vocab) {
		run_fail(&progress, "the tokenizer has %u tokens but the model's embedding only %u rows",
			 st_tokenizer_n_vocab(tok), st_model_desc(m)->n_vocab);
		goto out;
	}
	if (st_sampler_create(&pp, (int32_t)st_tokenizer_n_vocab(tok), &smp) < 0) {
		run_fail(&progress, "%s", st_last_error());
		goto out;
	}
	for (int i = 0; i < n_prompt; i++)
		st_sampler_accept(smp, toks[i]);

	t0 = st_time_now();
	rc = st_session_eval(s, toks, n_prompt, false);
	t_prompt = st_time_now() - t0;
	t_first = st_time_now() - t_load0;
	load_progress_stop(progress);       /* its line is gone before any text */
	progress = NULL;
	if (rc < 0) {
		cli_fail(CMD, "evaluating the prompt: %s", st_last_error());
		goto out;
	}
	/* echo the prompt as given, then stream the continuation */
	fputs(o.prompt, stdout);
	fflush(stdout);
	/* with nothing printed yet, SPM's leading space of the first piece is
	 * the dummy prefix, not text */
	strip_space = o.prompt[0] == 0 && st_tokenizer_kind(tok) == ST_TOKENIZER_SPM;
	if (plan)
		plan_run_begin(plan, s);
	t0 = st_time_now();
	while (n_gen < o.n_predict) {
		int32_t id;
		int plen;
		rc = st_sampler_sample(smp, st_session_logits(s, -1));
		if (rc < 0) {
			cli_fail(CMD, "sampling: %s", st_last_error());
			goto out_gen;
		}
		id = rc;
		n_gen++;
		if (st_tokenizer_is_eog(tok, id))
			break;
		st_sampler_accept(smp, id);
		plen = st_token_to_piece(tok, id, NULL, 0);      /* its length */
		if (plen >= 0 && n_pend + (size_t)plen + 1 > cap_pend) {
			char *nb = realloc(pend, n_pend + (size_t)plen + 256);
			if (!nb) {
				cli_fail(CMD, "out of memory for a %d-byte piece", plen);
				goto out_gen;
			}
			pend = nb;
			cap_pend = n_pend + (size_t)plen + 256;
		}
		if (plen >= 0)
			plen = st_token_to_piece(tok, id, pend + n_pend, cap_pend - n_pend);
		if (plen < 0) {
			cli_fail(CMD, "token %d: %s", (int)id, st_last_error());
			goto out_gen;
		}
		if (strip_space && plen > 0) {
			if (pend[n_pend] == ' ') {
				memmove(pend + n_pend, pend + n_pend + 1, (size_t)plen - 1);
				plen--;
			}
			strip_space = false;
		}
		n_pend += (size_t)plen;
		emit(pend, &n_pend, false);
		if (n_gen >= o.n_predict)
			break;
		if (st_session_pos(s) >= st_session_n_ctx(s)) {
			fprintf(stderr, "\nstrata run: the context (%u tokens) is full\n", st_session_n_ctx(s));
			break;
		}
		rc = st_session_eval(s, &id, 1, false);
		if (rc < 0) {
			cli_fail(CMD, "evaluating token %d: %s", n_gen, st_last_error());
			goto out_gen;
		}
	}
	ret = 0;
out_gen:
	t_gen = st_time_now() - t0;
	if (pend)
		emit(pend, &n_pend, true);
	fputc('\n', stdout);
	fflush(stdout);
	/* weights still arriving (read-ahead, background loads) are waited for
	 * by the prompt's evaluation: the first token is the honest total */
	fprintf(stderr, "strata run: load %.3f s; first token after %.3f s\n", t_load, t_first);
	fprintf(stderr, "strata run: prompt %d tokens in %.3f s (%.2f tokens/s)\n", n_prompt, t_prompt,
		t_prompt > 0 ? n_prompt / t_prompt : 0.0);
	fprintf(stderr, "strata run: generated %d tokens in %.3f s (%.2f tokens/s)\n", n_gen, t_gen,
		t_gen > 0 ? n_gen / t_gen : 0.0);
	if (plan)
		plan_run_report(plan, s);
	if (o.verbose) {
		int ns = st_session_n_stages(s);
		for (int i = 0; i < ns; i++) {
			struct st_stage_stats st;
			if (st_session_stage_stats(s, i, &st) < 0)
				continue;
			fprintf(stderr, "strata run: stage %d: %s%d (%s) layers %u-%u: %llu tokens in %llu "
				"calls, %.3f s\n", i, st.backend, st.device_index, st.device, st.first_layer,
				st.last_layer, (unsigned long long)st.n_tokens, (unsigned long long)st.n_runs,
				st.seconds);
		}
	}
out:
	load_progress_stop(progress);
	plan_run_free(plan);
	st_sampler_destroy(smp);
	st_session_destroy(s);
	st_model_close(m);
	free(toks);
	free(pend);
	return ret;
}
