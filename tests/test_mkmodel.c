/* test_mkmodel: generated models round-trip through the GGUF reader for
 * every type: the tensor table against a list written out here, the key
 * values, the bytes as generated (regenerated with the same seed), the
 * statistics of the weights, determinism per seed, and the presets. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gguf.h"
#include "mkmodel.h"
#include "strata.h"
#include "tap.h"
#include "types.h"

static char tmpdir[256];

static int read_at(const char *path, uint64_t off, void *buf, uint64_t n)
{
	FILE *f = fopen(path, "rb");
	int ok_ = 0;
	if (!f)
		return -1;
	if (fseeko(f, (off_t)off, SEEK_SET) == 0 && fread(buf, 1, n, f) == n)
		ok_ = 1;
	fclose(f);
	return ok_ ? 0 : -1;
}

static int files_equal(const char *a, const char *b)
{
	FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
	int eq = fa && fb;
	while (eq) {
		int ca = fgetc(fa), cb = fgetc(fb);
		if (ca != cb)
			eq = 0;
		if (ca == EOF || cb == EOF)
			break;
	}
	if (fa)
		fclose(fa);
	if (fb)
		fclose(fb);
	return eq;
}

static uint32_t get_u32(const struct st_gguf *g, const char *k)
{
	uint32_t v = 0xdeadbeef;
	st_gguf_get_u32(g, k, &v);
	return v;
}

/* The type a tensor must have, from the rules as documented (llama.cpp's
 * quantizer): norms F32; _M mixes put output.weight, and attn_v/ffn_down of
 * the "more bits" layers, in Q6_K; rows that are not whole blocks fall back
 * (K-quants, rows of whole 32-blocks) to Q5_0 (Q4_K), Q5_1 (Q5_K) or Q8_0
 * (Q6_K), else to F32. */
static uint32_t expect_type(const struct st_mkmodel_params *p, const char *name, uint32_t layer,
			    uint64_t ne0, bool norm)
{
	uint32_t t = p->type, n = p->n_layer, bs;
	if (norm)
		return ST_TYPE_F32;
	if (p->mix != ST_MKMODEL_MIX_NONE) {
		bool more = layer < n / 8 || layer >= 7 * n / 8 || (layer - n / 8) % 3 == 2;
		if (!strcmp(name, "output.weight") ||
		    ((strstr(name, "attn_v.") || strstr(name, "ffn_down.")) && more))
			t = ST_TYPE_Q6_K;
	}
	bs = st_type_traits(t)->block_size;
	if (ne0 % bs && bs == 256 && ne0 % 32 == 0)
		t = t == ST_TYPE_Q4_K ? ST_TYPE_Q5_0 : t == ST_TYPE_Q5_K ? ST_TYPE_Q5_1 : ST_TYPE_Q8_0;
	else if (ne0 % bs)
		t = ST_TYPE_F32;
	return t;
}

/* The tensor table a llama GGUF must have, written out independently of
 * mkmodel.c: name, ne0, ne1 (ne1 = 1: 1-D norm). */
static int check_table(const struct st_gguf *g, const struct st_mkmodel_params *p)
{
	uint64_t d = p->n_embd, kv = p->n_embd / p->n_head * p->n_head_kv, ff = p->n_ff;
	char nm[64];
	int bad = 0;
	struct { const char *suffix; uint64_t ne0, ne1; } blk[] = {
		{ "attn_norm", d, 1 }, { "attn_q", d, d }, { "attn_k", d, kv }, { "attn_v", d, kv },
		{ "attn_output", d, d }, { "ffn_norm", d, 1 }, { "ffn_gate", d, ff },
		{ "ffn_down", ff, d }, { "ffn_up", d, ff },
	};
	if (g->n_tensors != 3 + 9 * (uint64_t)p->n_layer) {
		diag("n_tensors %llu", (unsigned long long)g->n_tensors);
		return 0;
	}
	for (uint32_t l = 0; l <= p->n_layer + 1; l++) {
		int n = l < p->n_layer ? 9 : 1;
		for (int k = 0; k < n; k++) {
			const struct st_gguf_tensor *t;
			uint64_t ne0, ne1;
			if (l < p->n_layer) {
				snprintf(nm, sizeof(nm), "blk.%u.%s.weight", l, blk[k].suffix);
				ne0 = blk[k].ne0;
				ne1 = blk[k].ne1;
			} else if (l == p->n_layer) {
				snprintf(nm, sizeof(nm), "token_embd.weight");
				ne0 = d;
				ne1 = p->n_vocab;
			} else {
				/* output_norm and output */
				t = st_gguf_find_tensor(g, "output_norm.weight");
				if (!t || t->n_dims != 1 || t->ne[0] != d || t->type != ST_TYPE_F32)
					bad++;
				snprintf(nm, sizeof(nm), "output.weight");
				ne0 = d;
				ne1 = p->n_vocab;
			}
			t = st_gguf_find_tensor(g, nm);
			uint32_t want = expect_type(p, nm, l < p->n_layer ? l : 0, ne0, ne1 == 1);
			if (!t || t->n_dims != (ne1 == 1 ? 1u : 2u) || t->ne[0] != ne0 || t->ne[1] != ne1 ||
			    t->type != want) {
				if (bad++ < 3)
					diag("tensor %s: %s", nm, t ? "wrong shape/type" : "missing");
			}
		}
	}
	return bad == 0;
}

/* Every tensor's bytes equal the regenerated values converted with the
 * reference quantizer; the dequantized weights have the advertised
 * statistics (std 1/sqrt(fan_in), norms around 1). */
static int check_bytes(const char *path, const struct st_gguf *g, const struct st_mkmodel_params *p,
		       int *stats_ok)
{
	struct st_mkmodel_tensor *ts;
	int n = st_mkmodel_tensors(p, &ts), bad = 0;
	*stats_ok = 1;
	for (int i = 0; i < n; i++) {
		const struct st_gguf_tensor *t = st_gguf_find_tensor(g, ts[i].name);
		const struct st_type_traits *tr = st_type_traits(ts[i].type);
		uint64_t ne = ts[i].ne[0] * ts[i].ne[1];
		float *vals = malloc(ne * sizeof(float)), *deq = malloc(ne * sizeof(float));
		void *want = malloc(ts[i].nbytes), *got = malloc(ts[i].nbytes);
		if (!t || t->nbytes != ts[i].nbytes || read_at(path, t->file_offset, got, t->nbytes)) {
			bad++;
			goto next;
		}
		st_mkmodel_rows(p, &ts[i], (uint32_t)i, 0, ts[i].ne[1], vals);
		tr->from_float(vals, want, (int64_t)ne);
		if (memcmp(want, got, ts[i].nbytes)) {
			if (bad++ < 3)
				diag("%s: bytes differ from the regenerated ones", ts[i].name);
		}
		/* statistics of what is in the file */
		tr->to_float(got, deq, (int64_t)ne);
		{
			double s = 0, s2 = 0, mean, sd, want_sd;
			for (uint64_t j = 0; j < ne; j++) {
				s += deq[j];
				s2 += (double)deq[j] * deq[j];
			}
			mean = s / (double)ne;
			sd = sqrt(s2 / (double)ne - mean * mean);
			if (strstr(ts[i].name, "norm")) {
				if (fabs(mean - 1) > 0.02 || sd > 0.08 || sd < 0.02)
					*stats_ok = 0;
			} else {
				want_sd = strstr(ts[i].name, "token_embd") ? 1.0 : 1.0 / sqrt((double)ts[i].ne[0]);
				/* q4_0 rounding adds noise: allow 15% */
				if (fabs(sd / want_sd - 1) > 0.15 || fabs(mean) > 0.1 * want_sd) {
					if (*stats_ok)
						diag("%s: mean %g sd %g, want sd %g", ts[i].name, mean, sd, want_sd);
					*stats_ok = 0;
				}
			}
		}
	next:
		free(vals);
		free(deq);
		free(want);
		free(got);
	}
	free(ts);
	return n > 0 && bad == 0;
}

static void one_model(struct st_mkmodel_params p, const char *label);

static void one_type(const char *shape, uint32_t type, uint64_t seed)
{
	struct st_mkmodel_params p;
	st_mkmodel_preset(shape, &p);
	p.type = type;
	p.seed = seed;
	one_model(p, st_type_name(type));
}

static void one_model(struct st_mkmodel_params p, const char *label)
{
	const char *shape = p.shape;
	uint64_t seed = p.seed;
	struct st_gguf *g = NULL;
	struct st_tokenizer *tok = NULL;
	char path[300], path2[300], path3[300];
	const char *s;
	int rc, stats_ok;

	snprintf(path, sizeof(path), "%s/m_%s_%s.gguf", tmpdir, shape, label);
	rc = st_mkmodel_write(&p, path, NULL, NULL);
	ok(rc == 0, "%s %s: written (%s)", shape, label, rc ? st_last_error() : "ok");
	rc = st_gguf_open(path, &g);
	ok(rc == 0, "%s %s: the GGUF reader accepts it (%s)", shape, label,
	   rc ? st_last_error() : "ok");
	if (rc)
		return;
	ok(g->version == 3 && g->alignment == 32, "version 3, alignment 32");
	ok(check_table(g, &p), "%s %s: tensor names, shapes and types as llama.cpp names them",
	   shape, label);
	ok(st_gguf_get_str(g, "general.architecture", &s) == 0 && !strcmp(s, "llama") &&
		   get_u32(g, "llama.block_count") == p.n_layer &&
		   get_u32(g, "llama.embedding_length") == p.n_embd &&
		   get_u32(g, "llama.feed_forward_length") == p.n_ff &&
		   get_u32(g, "llama.attention.head_count") == p.n_head &&
		   get_u32(g, "llama.attention.head_count_kv") == p.n_head_kv &&
		   get_u32(g, "llama.context_length") == p.n_ctx &&
		   get_u32(g, "llama.rope.dimension_count") == p.n_embd / p.n_head &&
		   get_u32(g, "tokenizer.ggml.bos_token_id") == 1 &&
		   get_u32(g, "tokenizer.ggml.eos_token_id") == 2,
	   "%s %s: llama.* and tokenizer ids", shape, label);
	{
		uint64_t nt = 0, ns = 0, ny = 0;
		const void *d;
		float theta = 0, eps = 0;
		st_gguf_get_f32(g, "llama.rope.freq_base", &theta);
		st_gguf_get_f32(g, "llama.attention.layer_norm_rms_epsilon", &eps);
		st_gguf_get_arr(g, "tokenizer.ggml.tokens", ST_GGUF_STRING, &nt, &d);
		st_gguf_get_arr(g, "tokenizer.ggml.scores", ST_GGUF_F32, &ns, &d);
		st_gguf_get_arr(g, "tokenizer.ggml.token_type", ST_GGUF_I32, &ny, &d);
		ok(theta == p.rope_theta && eps == 1e-5f && nt == p.n_vocab && ns == p.n_vocab &&
			   ny == p.n_vocab && st_gguf_get_str(g, "tokenizer.ggml.model", &s) == 0 &&
			   !strcmp(s, "llama"),
		   "rope theta, rms eps, tokens/scores/token_type (%llu)", (unsigned long long)nt);
	}
	rc = st_tokenizer_from_gguf(g, &tok);
	ok(rc == 0 && st_tokenizer_n_vocab(tok) == p.n_vocab && st_tokenizer_bos(tok) == 1,
	   "the tokenizer loads from it (%s)", rc ? st_last_error() : "ok");
	if (tok)
		st_tokenizer_free(tok);
	ok(check_bytes(path, g, &p, &stats_ok), "%s %s: every tensor's bytes are the regenerated ones",
	   shape, label);
	ok(stats_ok, "%s %s: weights have std 1/sqrt(fan_in) (embedding 1), norms ~1", shape,
	   label);
	st_gguf_free(g);

	/* same seed, same bytes; another seed, other bytes */
	snprintf(path2, sizeof(path2), "%s/m2.gguf", tmpdir);
	snprintf(path3, sizeof(path3), "%s/m3.gguf", tmpdir);
	st_mkmodel_write(&p, path2, NULL, NULL);
	p.seed = seed + 1;
	st_mkmodel_write(&p, path3, NULL, NULL);
	ok(files_equal(path, path2) && !files_equal(path, path3),
	   "%s %s: same seed gives the same file, another seed another", shape, label);
	unlink(path);
	unlink(path2);
	unlink(path3);
}

/* The bytes do not depend on the number of generation threads (tensors
 * of several chunks: the embedding is 1M elements, 4 chunks). */
static void test_threads(void)
{
	static const char *const ty[] = { "f32", "q4_0", "q4_K" };
	char a[300], b[300];
	int good = 1;
	snprintf(a, sizeof(a), "%s/t1.gguf", tmpdir);
	snprintf(b, sizeof(b), "%s/t3.gguf", tmpdir);
	for (size_t i = 0; i < sizeof(ty) / sizeof(ty[0]); i++) {
		struct st_mkmodel_params p;
		st_mkmodel_preset("custom", &p);
		p.n_layer = 1;
		p.n_embd = 256;
		p.n_ff = 512;
		p.n_vocab = 4096;
		p.seed = 5;
		st_mkmodel_parse_type(ty[i], &p);
		p.n_threads = 1;
		good &= st_mkmodel_write(&p, a, NULL, NULL) == 0;
		p.n_threads = 3;
		good &= st_mkmodel_write(&p, b, NULL, NULL) == 0;
		if (!files_equal(a, b)) {
			diag("%s: 1 and 3 threads differ", ty[i]);
			good = 0;
		}
	}
	ok(good, "1 and 3 generation threads write the same bytes (f32, q4_0, q4_K)");
	unlink(a);
	unlink(b);
}

static void test_presets(void)
{
	struct st_mkmodel_params p;
	struct st_mkmodel_tensor *ts;
	uint64_t total = 0;
	int n;
	ok(st_mkmodel_preset("tinyllama-1.1b", &p) == 0 && p.n_layer == 22 && p.n_embd == 2048 &&
		   p.n_ff == 5632 && p.n_head == 32 && p.n_head_kv == 4 && p.n_vocab == 32000 && p.n_ctx == 2048,
	   "tinyllama-1.1b preset");
	ok(st_mkmodel_preset("llama3-8b", &p) == 0 && p.n_layer == 32 && p.n_ff == 14336 &&
		   p.n_head_kv == 8 && p.n_vocab == 128256 && p.n_ctx == 8192 && p.rope_theta == 500000.0f,
	   "llama3-8b preset");
	ok(st_mkmodel_preset("llama2-7b", &p) == 0 && p.n_head_kv == 32 && p.n_ff == 11008,
	   "llama2-7b preset");
	p.type = ST_TYPE_Q4_0;
	n = st_mkmodel_tensors(&p, &ts);
	for (int i = 0; i < n; i++)
		total += ts[i].nbytes;
	free(ts);
	/* 6.74e9 parameters; q4_0 is 18 bytes per 32 weights, norms f32 */
	diag("llama2-7b q4_0: %d tensors, %.3f GB of weights", n, total / 1e9);
	ok(n == 291 && total > 3.7e9 && total < 3.9e9, "llama2-7b q4_0 is ~3.8 GB in 291 tensors");
	int rc = st_mkmodel_preset("nope", &p);
	ok(rc == -EINVAL, "unknown shape rejected: %s", st_last_error());
	st_mkmodel_preset("tiny", &p);
	p.n_head = 5;
	rc = st_mkmodel_validate(&p);
	ok(rc == -EINVAL, "dim not a multiple of heads rejected: %s", st_last_error());
	st_mkmodel_preset("tiny", &p);
	p.n_vocab = 100;
	rc = st_mkmodel_validate(&p);
	ok(rc == -EINVAL, "vocab below 259 rejected: %s", st_last_error());
	st_mkmodel_preset("tiny", &p);
	p.type = ST_TYPE_Q2_K;
	ok(st_mkmodel_validate(&p) == -EINVAL, "unsupported type rejected");
	st_mkmodel_preset("tiny", &p);
	rc = st_mkmodel_write(&p, "/nonexistent-dir/x.gguf", NULL, NULL);
	ok(rc < 0, "unwritable path fails: %s", st_last_error());
}

int main(void)
{
	static const uint32_t types[] = { ST_TYPE_F32, ST_TYPE_F16, ST_TYPE_BF16, ST_TYPE_Q8_0, ST_TYPE_Q4_0,
					  ST_TYPE_Q4_1, ST_TYPE_Q5_0, ST_TYPE_Q5_1 };
	const char *t = getenv("TMPDIR");
	snprintf(tmpdir, sizeof(tmpdir), "%s/st_mkmodel_XXXXXX", t ? t : "/tmp");
	if (!mkdtemp(tmpdir)) {
		printf("Bail out! mkdtemp failed\n");
		return 1;
	}
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		one_type("tiny", types[i], 42);
	/* K-quants on a shape whose rows are whole 256-blocks (dim 256, ff
	 * 512), plus tiny (rows of 64: the Q5_0 fallback), and the _M mixes */
	{
		static const char *const kt[] = { "q4_K", "q5_K", "q6_K", "q4_k_m", "q5_k_m" };
		struct st_mkmodel_params p;
		for (size_t i = 0; i < sizeof(kt) / sizeof(kt[0]); i++) {
			st_mkmodel_preset("custom", &p);
			p.n_embd = 256;
			p.n_ff = 512;
			p.seed = 11;
			if (st_mkmodel_parse_type(kt[i], &p) < 0) {
				ok(0, "parse type %s: %s", kt[i], st_last_error());
				continue;
			}
			one_model(p, kt[i]);
		}
		one_type("tiny", ST_TYPE_Q4_K, 3);
	}
	/* stories260k: ffn_down rows of 172 are not whole q4_0/q8_0 blocks */
	one_type("stories260k", ST_TYPE_Q4_0, 7);
	one_type("stories260k", ST_TYPE_F16, 7);
	test_threads();
	test_presets();
	rmdir(tmpdir);
	return tap_done();
}
