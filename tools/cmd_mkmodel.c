/* cmd_mkmodel.c: `strata mkmodel`: a llama GGUF with deterministic random
 * weights and a synthetic SentencePiece tokenizer (runtime/mkmodel.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "mkmodel.h"
#include "strata.h"
#include "types.h"
#include "util.h"

static const char *const CMD = "mkmodel";

/* The library's message without its "mkmodel: " prefix (ours says it). */
static const char *lib_error(void)
{
	const char *e = st_last_error();
	return strncmp(e, "mkmodel: ", 9) ? e : e + 9;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: strata mkmodel OUT.gguf [--shape SHAPE] [--type TYPE] [--seed S] [-t N]\n"
		"                      [--layers N] [--dim N] [--ff N] [--heads N] [--kv-heads N]\n"
		"                      [--vocab N] [--ctx N]\n"
		"\n"
		"Writes a llama-architecture GGUF v3 file with deterministic random weights (the\n"
		"same seed gives the same bytes on every machine) and a synthetic SentencePiece\n"
		"tokenizer, using the standard key and tensor names so other GGUF readers load it.\n"
		"The file is generated and written tensor by tensor (a few MB of memory whatever\n"
		"the size), with progress on a terminal.\n"
		"\n"
		"  --shape SHAPE   tiny (default: 2 layers, dim 64, ff 128, 4/2 heads, vocab 512,\n"
		"                  ctx 256), stories260k (5 layers, dim 64, ff 172, 8/4 heads,\n"
		"                  vocab 512, ctx 512), tinyllama-1.1b (22, 2048, 5632, 32/4,\n"
		"                  32000, 2048), llama2-7b (32, 4096, 11008, 32/32, 32000, 4096),\n"
		"                  llama3-8b (32, 4096, 14336, 32/8, 128256, 8192, rope theta\n"
		"                  500000), custom (tiny's numbers; set the options below)\n"
		"  --type TYPE     f32 (default), f16, bf16, q8_0, q4_0, q4_1, q5_0, q5_1, q4_k,\n"
		"                  q5_k, q6_k: the type of the weight matrices; norm weights\n"
		"                  are always f32.  A matrix whose rows are not a whole number\n"
		"                  of 32-element blocks (stories260k's ffn_down, rows of 172)\n"
		"                  stays f32, as llama.cpp's quantizer does; K-quant rows that\n"
		"                  are not a multiple of 256 become q5_0 (q4_k), q5_1 (q5_k) or\n"
		"                  q8_0 (q6_k), as llama.cpp's (or f32 if not a multiple of 32)\n"
		"                  q4_k_m, q5_k_m: llama.cpp's mixes: q4_k/q5_k, with q6_k for\n"
		"                  output.weight and for attn_v and ffn_down in the layers i with\n"
		"                  i < n/8, i >= 7n/8 or (i - n/8) %% 3 == 2\n"
		"  --seed S        PRNG seed (default 0)\n"
		"  -t, --threads N generation threads (default 0 = all cores, at most 8); the\n"
		"                  bytes written do not depend on it\n"
		"  --layers N --dim N --ff N --heads N --kv-heads N --vocab N --ctx N\n"
		"                  override the shape's numbers (any shape)\n"
		"  -h, --help      this text\n"
		"\n"
		"Weights: normal-ish (Irwin-Hall) with std 1/sqrt(fan_in) for matrices, std 1\n"
		"for the token embedding, 1 + 0.05 noise for norms.\n");
}

struct progress {
	bool tty;
	int last_pct;
};

static void on_progress(uint64_t done, uint64_t total, void *user)
{
	struct progress *pr = user;
	int pct = total ? (int)(done * 100 / total) : 100;
	char a[32], b[32];
	if (!pr->tty || pct == pr->last_pct)
		return;
	pr->last_pct = pct;
	fprintf(stderr, "\rstrata mkmodel: %3d%% (%s of %s)", pct, cli_bytes(done, a, sizeof(a)),
		cli_bytes(total, b, sizeof(b)));
	fflush(stderr);
}

int cmd_mkmodel(int argc, char **argv)
{
	struct st_mkmodel_params p;
	const char *out = NULL, *shape = "tiny", *type = "f32", *v;
	const char *ov_name[7] = { "--layers", "--dim", "--ff", "--heads", "--kv-heads", "--vocab", "--ctx" };
	int64_t ov[7] = { -1, -1, -1, -1, -1, -1, -1 };
	int64_t seed = 0, threads = 0;
	struct progress pr = { false, -1 };
	int rc, t;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		int r, matched = 0;
		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			usage(stdout);
			return 0;
		}
		if ((r = cli_take(CMD, argc, argv, &i, "--shape", &v))) {
			if (r < 0)
				return 2;
			shape = v;
			continue;
		}
		if ((r = cli_take(CMD, argc, argv, &i, "--type", &v))) {
			if (r < 0)
				return 2;
			type = v;
			continue;
		}
		if ((r = cli_take(CMD, argc, argv, &i, "--seed", &v))) {
			if (r < 0)
				return 2;
			if (!cli_parse_i64(v, 0, INT64_MAX, &seed))
				return cli_usage_error(CMD, "--seed '%s' is not a non-negative integer", v);
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
		for (int k = 0; k < 7 && !matched; k++) {
			if (!(r = cli_take(CMD, argc, argv, &i, ov_name[k], &v)))
				continue;
			if (r < 0)
				return 2;
			if (!cli_parse_i64(v, 1, 1 << 24, &ov[k]))
				return cli_usage_error(CMD, "%s '%s' is not an integer in 1..16777216", ov_name[k], v);
			matched = 1;
		}
		if (matched)
			continue;
		if (a[0] == '-' && a[1])
			return cli_usage_error(CMD, "unknown option '%s'", a);
		if (out)
			return cli_usage_error(CMD, "more than one output file ('%s' and '%s')", out, a);
		out = a;
	}
	if (!out)
		return cli_usage_error(CMD, "missing the output file OUT.gguf");
	if (st_mkmodel_preset(shape, &p) < 0)
		return cli_usage_error(CMD, "unknown --shape '%s' (tiny, stories260k, tinyllama-1.1b, "
				       "llama2-7b, llama3-8b, custom)", shape);
	t = st_mkmodel_parse_type(type, &p);
	if (t < 0 || (p.type != ST_TYPE_F32 && p.type != ST_TYPE_F16 && p.type != ST_TYPE_BF16 &&
		      p.type != ST_TYPE_Q8_0 && p.type != ST_TYPE_Q4_0 && p.type != ST_TYPE_Q4_K &&
		      p.type != ST_TYPE_Q5_K && p.type != ST_TYPE_Q6_K && p.type != ST_TYPE_Q4_1 &&
		      p.type != ST_TYPE_Q5_0 && p.type != ST_TYPE_Q5_1))
		return cli_usage_error(CMD, "unknown --type '%s' (f32, f16, bf16, q8_0, q4_0, q4_1, q5_0, "
				       "q5_1, q4_k, q5_k, q6_k, q4_k_m, q5_k_m)", type);
	p.seed = (uint64_t)seed;
	p.n_threads = (uint32_t)threads;
	if (ov[0] > 0) p.n_layer = (uint32_t)ov[0];
	if (ov[1] > 0) p.n_embd = (uint32_t)ov[1];
	if (ov[2] > 0) p.n_ff = (uint32_t)ov[2];
	if (ov[3] > 0) p.n_head = (uint32_t)ov[3];
	if (ov[4] > 0) p.n_head_kv = (uint32_t)ov[4];
	else if (ov[3] > 0 && p.n_head % p.n_head_kv) p.n_head_kv = p.n_head;
	if (ov[5] > 0) p.n_vocab = (uint32_t)ov[5];
	if (ov[6] > 0) p.n_ctx = (uint32_t)ov[6];
	if (st_mkmodel_validate(&p) < 0)
		return cli_usage_error(CMD, "%s", lib_error());

	pr.tty = isatty(2);
	double t0 = st_time_now();
	rc = st_mkmodel_write(&p, out, on_progress, &pr);
	if (pr.tty)
		fprintf(stderr, "\n");
	if (rc < 0)
		return cli_fail(CMD, "%s", lib_error());
	{
		struct st_mkmodel_tensor *ts;
		uint64_t total = 0;
		char b[32];
		int n = st_mkmodel_tensors(&p, &ts);
		for (int i = 0; i < n; i++)
			total += ts[i].nbytes;
		free(ts);
		fprintf(stderr, "strata mkmodel: wrote %s: %s %s, %d tensors, %s of weights in %.2f s\n", out,
			p.shape, p.mix == ST_MKMODEL_MIX_Q4_K_M ? "q4_K_M" : p.mix == ST_MKMODEL_MIX_Q5_K_M ? "q5_K_M" :
			st_type_name(p.type), n, cli_bytes(total, b, sizeof(b)),
			st_time_now() - t0);
	}
	return 0;
}
