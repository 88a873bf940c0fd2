/* test_mkmodel_perplexity: `strata perplexity --json` against the
 * definition computed here: tokenize the text as a prompt (BOS + text),
 * cut it into chunks of N, and for each chunk, starting from an empty
 * context, score tokens 2..N with the logits of the previous position.
 * Here each chunk is evaluated one token at a time in a fresh session
 * (the decode path) and log-softmax is done by hand in double precision,
 * while the tool does one prefill eval per chunk: the two must agree. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mkmodel.h"
#include "strata.h"
#include "tap.h"

#define CTX 16
#define CHUNKS 3

static const char text[] =
	"Once upon a time, there was a little girl named Lily. She loved to play outside "
	"in the park with her red ball. One day, she saw a big dog under a tree. The dog "
	"was sad because it was lost. Lily said, \"Do not be sad, I will help you find your "
	"home.\" They walked and walked until they found a small house with a blue door.\n";

static double json_num(const char *js, const char *key)
{
	char pat[64];
	const char *p;
	snprintf(pat, sizeof(pat), "\"%s\":", key);
	p = strstr(js, pat);
	return p ? strtod(p + strlen(pat), NULL) : NAN;
}

int main(void)
{
	const char *bdir = getenv("ST_BUILD_DIR"), *t = getenv("TMPDIR");
	char dir[256], model[300], txt[300], cmd[1200], js[1024] = { 0 };
	struct st_mkmodel_params p;
	struct st_model *m = NULL;
	struct st_tokenizer *tok;
	int32_t toks[1024];
	int n_tok;
	double sum = 0, sum_wrong = 0, tool_nll, tool_n;
	FILE *f;
	uint32_t nv;

	if (!bdir)
		tap_skip_all("ST_BUILD_DIR is not set (run through meson test)");
	snprintf(dir, sizeof(dir), "%s/st_ppl_XXXXXX", t ? t : "/tmp");
	if (!mkdtemp(dir)) {
		printf("Bail out! mkdtemp failed\n");
		return 1;
	}
	snprintf(model, sizeof(model), "%s/tiny.gguf", dir);
	snprintf(txt, sizeof(txt), "%s/text.txt", dir);
	st_mkmodel_preset("tiny", &p);
	p.seed = 5;
	ok(st_mkmodel_write(&p, model, NULL, NULL) == 0, "tiny model written");
	f = fopen(txt, "wb");
	fputs(text, f);
	fclose(f);

	/* the tool */
	snprintf(cmd, sizeof(cmd), "'%s/tools/strata' perplexity -m '%s' -f '%s' --ctx %d --chunks %d --json -t 1",
		 bdir, model, txt, CTX, CHUNKS);
	f = popen(cmd, "r");
	if (f) {
		size_t n = fread(js, 1, sizeof(js) - 1, f);
		js[n] = 0;
		ok(pclose(f) == 0, "strata perplexity --json exits 0");
	} else {
		ok(0, "popen");
	}
	diag("tool: %s", js);
	tool_nll = json_num(js, "mean_nll");
	tool_n = json_num(js, "scored_tokens");
	ok(tool_n == CHUNKS * (CTX - 1), "scored tokens %g = chunks x (N-1) = %d", tool_n, CHUNKS * (CTX - 1));
	ok(fabs(exp(tool_nll) - json_num(js, "perplexity")) < 1e-9 * exp(tool_nll), "perplexity = exp(mean NLL)");

	/* the definition, by hand */
	if (st_model_open(model, &m) < 0) {
		ok(0, "open: %s", st_last_error());
		return tap_done();
	}
	tok = st_model_tokenizer(m);
	nv = st_model_desc(m)->n_vocab;
	n_tok = st_tokenize(tok, text, strlen(text), true, toks, 1024);
	ok(n_tok >= CTX * CHUNKS && toks[0] == 1, "text is %d tokens with BOS first", n_tok);
	for (int c = 0; c < CHUNKS; c++) {
		struct st_session *s = NULL;
		struct st_session_params sp;
		const int32_t *ct = toks + c * CTX;
		st_session_params_default(&sp);
		sp.n_ctx = CTX;
		sp.n_threads = 1;
		if (st_session_create(m, &sp, &s) < 0) {
			ok(0, "session: %s", st_last_error());
			break;
		}
		for (int i = 0; i < CTX; i++) {
			const float *lg;
			double mx = -INFINITY, z = 0;
			if (st_session_eval(s, &ct[i], 1, false) != 1)
				break;
			lg = st_session_logits(s, -1);
			for (uint32_t j = 0; j < nv; j++)
				mx = fmax(mx, lg[j]);
			for (uint32_t j = 0; j < nv; j++)
				z += exp(lg[j] - mx);
			/* logits after token i predict token i+1 */
			if (i + 1 < CTX)
				sum += -(lg[ct[i + 1]] - mx - log(z));
			/* the off-by-one a wrong implementation would make */
			if (i >= 1)
				sum_wrong += -(lg[ct[i]] - mx - log(z));
		}
		st_session_destroy(s);
	}
	sum /= CHUNKS * (CTX - 1);
	sum_wrong /= CHUNKS * (CTX - 1);
	diag("by hand (decode path): mean NLL %.9f; off-by-one definition would give %.6f", sum, sum_wrong);
	ok(fabs(sum - tool_nll) < 1e-4, "tool's mean NLL %.9f matches the definition %.9f (|d| < 1e-4)",
	   tool_nll, sum);
	ok(fabs(sum_wrong - tool_nll) > 1e-2, "and it is far from the off-by-one variant");
	st_model_close(m);
	unlink(model);
	unlink(txt);
	rmdir(dir);
	return tap_done();
}
