/* cmd_perplexity.c: `strata perplexity`: mean negative log-likelihood of a
 * text under a model, chunk by chunk. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "plan_run.h"
#include "strata.h"
#include "util.h"

static const char *const CMD = "perplexity";

static void usage(FILE *f)
{
	fprintf(f,
		"usage: strata perplexity -m MODEL -f TEXT [--ctx N] [--chunks K] [--json]\n"
		"\n"
		"Tokenizes the whole text once, as a prompt is tokenized (BOS when the model\n"
		"asks for it, then the text), and cuts the tokens into consecutive chunks of N\n"
		"(a last partial chunk is dropped).  Each chunk is evaluated on its own from\n"
		"position 0 (fresh KV cache, one eval with logits for every position) and the\n"
		"predictions of its tokens 2..N are scored: for positions i = 1..N-1 of the\n"
		"chunk, the logits at position i-1 predict token i, with\n"
		"  NLL_i = -(logit[i-1][tok_i] - log(sum_j exp(logit[i-1][j])))\n"
		"computed in double precision.  So each chunk scores N-1 tokens, and the first\n"
		"token of a chunk is context only.\n"
		"Prints `mean NLL <mean of NLL_i>`, `perplexity <exp(mean NLL)>` and the number\n"
		"of scored tokens, over all chunks or the first K.\n"
		"\n"
		"  -m, --model MODEL   GGUF model file\n"
		"  -f, --file TEXT     the text file\n"
		"  --ctx N             chunk length in tokens (default: 512, or the model's\n"
		"                      trained context if smaller); N >= 2\n"
		"  --chunks K          score only the first K chunks (default: all)\n"
		"  --json              print one JSON object instead\n"
		"  -t, --threads N     CPU threads (default: all cores)\n"
		"  --kv-type f32|f16   KV cache element type (default f32)\n"
		"  --stages SPEC       layers per device (see strata run --help)\n"
		"  --device D          all layers on device D (see `strata devices`)\n"
		"  -h, --help          this text\n");
}

static char *read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t cap = 0, n = 0;
	if (!f)
		return NULL;
	for (;;) {
		if (n + 65536 + 1 > cap) {
			char *nb;
			if (cap > ((size_t)1 << 30)) {       /* 1 GiB of text is plenty */
				errno = EFBIG;
				goto fail;
			}
			cap = cap ? cap * 2 : 1 << 20;
			nb = realloc(buf, cap);
			if (!nb)
				goto fail;
			buf = nb;
		}
		size_t r = fread(buf + n, 1, cap - n - 1, f);
		n += r;
		if (r == 0) {
			if (ferror(f))
				goto fail;
			break;
		}
	}
	fclose(f);
	buf[n] = 0;
	*len = n;
	return buf;
fail:
	free(buf);
	fclose(f);
	return NULL;
}

static void json_str(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			printf("\\%c", c);
		else if (c < 0x20)
			printf("\\u%04x", c);
		else
			putchar(c);
	}
	putchar('"');
}

int cmd_perplexity(int argc, char **argv)
{
	const char *model = NULL, *file = NULL, *stages = NULL, *device = NULL, *v;
	char stages_buf[4096];
	int64_t ctx = 0, chunks = 0, threads = 0;
	uint32_t kv_type = ST_KV_F32;
	bool json = false;
	struct st_model *m = NULL;
	struct st_session *s = NULL;
	struct st_tokenizer *tok;
	struct st_session_params sp;
	int32_t *toks = NULL;
	char *text = NULL;
	size_t len = 0;
	int n_tok, n_chunks, ret = 1, rc;
	uint32_t n_ctx, n_vocab;
	double sum_nll = 0, t0;
	uint64_t n_scored = 0;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		int r;
		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			usage(stdout);
			return 0;
		}
		if (!strcmp(a, "--json")) {
			json = true;
			continue;
		}
		if ((r = cli_take(CMD, argc, argv, &i, "-m", &v)) ||
		    (r = cli_take(CMD, argc, argv, &i, "--model", &v))) {
			if (r < 0)
				return 2;
			model = v;
			continue;
		}
		if ((r = cli_take(CMD, argc, argv, &i, "-f", &v)) ||
		    (r = cli_take(CMD, argc, argv, &i, "--file", &v))) {
			if (r < 0)
				return 2;
			file = v;
			continue;
		}
		if ((r = cli_take(CMD, argc, argv, &i, "--device", &v))) {        /* plan_run.c */
			if (r < 0)
				return 2;
			device = v;
			continue;
		}
		if ((r = cli_take(CMD, argc, argv, &i, "--stages", &v))) {
			if (r < 0)
				return 2;
			stages = v;
			continue;
		}
		if ((r = cli_take(CMD, argc, argv, &i, "--kv-type", &v))) {
			if (r < 0)
				return 2;
			if (!strcmp(v, "f32"))
				kv_type = ST_KV_F32;
			else if (!strcmp(v, "f16"))
				kv_type = ST_KV_F16;
			else
				return cli_usage_error(CMD, "--kv-type '%s' is not f32 or f16", v);
			continue;
		}
		if ((r = cli_take(CMD, argc, argv, &i, "--ctx", &v))) {
			if (r < 0)
				return 2;
			if (!cli_parse_i64(v, 2, 1 << 20, &ctx))
				return cli_usage_error(CMD, "--ctx '%s' is not an integer in 2..1048576", v);
			continue;
		}
		if ((r = cli_take(CMD, argc, argv, &i, "--chunks", &v))) {
			if (r < 0)
				return 2;
			if (!cli_parse_i64(v, 1, 1 << 30, &chunks))
				return cli_usage_error(CMD, "--chunks '%s' is not a positive integer", v);
			continue;
		}
		if ((r = cli_take(CMD, argc, argv, &i, "-t", &v)) ||
		    (r = cli_take(CMD, argc, argv, &i, "--threads", &v))) {
			if (r < 0)
				return 2;
			if (!cli_parse_i64(v, 0, 4096, &threads))
				return cli_usage_error(CMD, "--threads '%s' is not an integer in 0..4096", v);
			continue;
		}
		if (a[0] == '-' && a[1])
			return cli_usage_error(CMD, "unknown option '%s'", a);
		return cli_usage_error(CMD, "unexpected argument '%s'", a);
	}
	if (!model)
		return cli_usage_error(CMD, "missing -m MODEL");
	if (!file)
		return cli_usage_error(CMD, "missing -f TEXT");

	text = read_file(file, &len);
	if (!text)
		return cli_fail(CMD, "cannot read %s: %s", file, strerror(errno));
	if (st_model_open(model, &m) < 0) {
		cli_fail(CMD, "%s: %s", model, st_last_error());
		goto out;
	}
	tok = st_model_tokenizer(m);
	if (!tok) {
		cli_fail(CMD, "%s: the model has no tokenizer", model);
		goto out;
	}
	n_vocab = st_model_desc(m)->n_vocab;
	if (st_tokenizer_n_vocab(tok) > n_vocab) {
		cli_fail(CMD, "the tokenizer has %u tokens but the model's embedding %u rows",
			 st_tokenizer_n_vocab(tok), n_vocab);
		goto out;
	}
	n_ctx = ctx ? (uint32_t)ctx : ST_MIN(512u, st_model_desc(m)->n_ctx_train ? st_model_desc(m)->n_ctx_train : 512u);

	{
		bool add_bos = st_tokenizer_add_bos(tok) && st_tokenizer_bos(tok) >= 0;
		n_tok = st_tokenize(tok, text, len, add_bos, NULL, 0);
		if (n_tok < 0) {
			cli_fail(CMD, "tokenizing %s: %s", file, st_last_error());
			goto out;
		}
		toks = malloc(((size_t)n_tok + 1) * sizeof(*toks));
		if (!toks || st_tokenize(tok, text, len, add_bos, toks, n_tok) < 0) {
			cli_fail(CMD, "tokenizing %s: %s", file, toks ? st_last_error() : "out of memory");
			goto out;
		}
	}
	n_chunks = (int)((uint32_t)n_tok / n_ctx);
	if (n_chunks == 0) {
		cli_fail(CMD, "%s has %d tokens, fewer than one chunk of %u (see --ctx)", file, n_tok, n_ctx);
		goto out;
	}
	if (chunks && chunks < n_chunks)
		n_chunks = (int)chunks;

	st_session_params_default(&sp);
	sp.n_ctx = n_ctx;
	sp.kv_type = kv_type;
	sp.n_threads = (uint32_t)threads;
	if ((ret = cli_stages_resolve(CMD, device, stages, m, stages_buf, sizeof stages_buf)))
		goto out;
	ret = 1;
	sp.stages = stages_buf;
	if (st_session_create(m, &sp, &s) < 0) {
		cli_fail(CMD, "%s", st_last_error());
		goto out;
	}

	t0 = st_time_now();
	for (int c = 0; c < n_chunks; c++) {
		const int32_t *ct = toks + (size_t)c * n_ctx;
		double chunk_nll = 0;
		st_session_reset(s);
		rc = st_session_eval(s, ct, (int)n_ctx, true);
		if (rc < 0) {
			cli_fail(CMD, "chunk %d: %s", c + 1, st_last_error());
			goto out;
		}
		for (uint32_t i = 1; i < n_ctx; i++) {
			const float *lg = st_session_logits(s, (int)i - 1);
			double mx = -INFINITY, sum = 0, nll;
			if (!lg) {
				cli_fail(CMD, "chunk %d: no logits for position %u", c + 1, i - 1);
				goto out;
			}
			for (uint32_t j = 0; j < n_vocab; j++)
				mx = lg[j] > mx ? lg[j] : mx;
			for (uint32_t j = 0; j < n_vocab; j++)
				sum += exp((double)lg[j] - mx);
			nll = -((double)lg[ct[i]] - mx - log(sum));
			if (!isfinite(nll)) {
				cli_fail(CMD, "chunk %d position %u: the NLL is not finite (logits NaN/inf?)",
					 c + 1, i);
				goto out;
			}
			chunk_nll += nll;
		}
		sum_nll += chunk_nll;
		n_scored += n_ctx - 1;
		if (!json)
			fprintf(stderr, "strata perplexity: chunk %d/%d: mean NLL %.4f, running perplexity %.4f\n",
				c + 1, n_chunks, chunk_nll / (n_ctx - 1), exp(sum_nll / (double)n_scored));
	}
	{
		double mean = sum_nll / (double)n_scored, secs = st_time_now() - t0;
		if (json) {
			printf("{\"model\": ");
			json_str(model);
			printf(", \"tokens\": %d, \"ctx\": %u, \"chunks\": %d, "
			       "\"scored_tokens\": %llu, \"mean_nll\": %.17g, \"perplexity\": %.17g, "
			       "\"seconds\": %.3f}\n",
			       n_tok, n_ctx, n_chunks, (unsigned long long)n_scored, mean, exp(mean), secs);
		} else {
			printf("mean NLL %.6f\n", mean);
			printf("perplexity %.4f\n", exp(mean));
			printf("scored tokens %llu (%d chunks of %u; text %d tokens)\n",
			       (unsigned long long)n_scored, n_chunks, n_ctx, n_tok);
			fprintf(stderr, "strata perplexity: %.2f s, %.1f tokens/s\n", secs,
				secs > 0 ? (double)n_chunks * n_ctx / secs : 0.0);
		}
	}
	ret = 0;
out:
	st_session_destroy(s);
	st_model_close(m);
	free(toks);
	free(text);
	return ret;
}
