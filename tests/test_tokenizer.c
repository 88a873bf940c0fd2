/* test_tokenizer.c: SPM and GPT-2 BPE tokenizers against llama.cpp's test
 * vectors, llama2.c's encoder (an independent implementation, written out
 * below, on tok512.bin) for stories260K, round trips on the TinyStories
 * text, byte fallback, BOS, special tokens, streaming UTF-8, the synthetic
 * vocabulary, and malformed metadata. */
#include "tap.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gguf.h"
#include "strata.h"
#include "util.h"

#if defined(__SANITIZE_ADDRESS__)
#define SLOW_BUILD 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SLOW_BUILD 1
#endif
#endif
#ifndef SLOW_BUILD
#define SLOW_BUILD 0
#endif

/* ---- helpers ---------------------------------------------------------------- */

static char *read_file(const char *path, size_t *size)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	long n;
	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = malloc((size_t)n + 1);
	if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
		free(buf);
		buf = NULL;
	}
	fclose(f);
	if (buf) {
		buf[n] = '\0';
		*size = (size_t)n;
	}
	return buf;
}

static struct st_tokenizer *load_tok(const char *dir, const char *rel)
{
	char path[1024];
	struct st_gguf *g = NULL;
	struct st_tokenizer *t = NULL;
	int rc;
	snprintf(path, sizeof path, "%s/%s", dir, rel);
	rc = st_gguf_open(path, &g);
	if (rc < 0) {
		diag("st_gguf_open(%s): %d %s", path, rc, st_last_error());
		return NULL;
	}
	rc = st_tokenizer_from_gguf(g, &t);
	if (rc < 0)
		diag("st_tokenizer_from_gguf(%s): %d %s", path, rc, st_last_error());
	st_gguf_free(g);
	return t;
}

/* Tokenize into a malloc'd array (count in *n); NULL on error. */
static int32_t *tokenize_all(const struct st_tokenizer *t, const char *s, size_t len, bool bos, int *n)
{
	int32_t *ids;
	int cnt = st_tokenize(t, s, len, bos, NULL, 0);
	*n = cnt;
	if (cnt < 0)
		return NULL;
	ids = malloc(((size_t)cnt + 1) * sizeof *ids);
	if (ids && st_tokenize(t, s, len, bos, ids, cnt) != cnt) {
		free(ids);
		return NULL;
	}
	return ids;
}

static char *detok_all(const struct st_tokenizer *t, const int32_t *ids, int n, bool strip, int *len)
{
	char *buf;
	int l = st_detokenize(t, ids, n, strip, NULL, 0);
	*len = l;
	if (l < 0)
		return NULL;
	buf = malloc((size_t)l + 1);
	if (buf && st_detokenize(t, ids, n, strip, buf, (size_t)l + 1) != l) {
		free(buf);
		return NULL;
	}
	return buf;
}

static void diag_ids(const struct st_tokenizer *t, const char *what, const int32_t *ids, int n)
{
	char line[4096];
	size_t k = 0;
	for (int i = 0; i < n && k < sizeof line - 64; i++) {
		const char *s = st_tokenizer_token_text(t, ids[i]);
		k += (size_t)snprintf(line + k, sizeof line - k, " %d'%s'", ids[i], s ? s : "?");
	}
	line[ST_MIN(k, sizeof line - 1)] = '\0';
	diag("%s:%s", what, line);
}

static bool same_ids(const int32_t *a, int na, const int32_t *b, int nb)
{
	return na == nb && (na == 0 || memcmp(a, b, (size_t)na * sizeof *a) == 0);
}

/* ---- llama.cpp test vectors (tests/test-tokenizer-0.cpp format) -------------- */

static void run_vectors(const char *dir, const char *rel, const char *label)
{
	char path[1024];
	size_t ninp, nout;
	char *inp, *outf, *p, *line;
	struct st_tokenizer *t = load_tok(dir, rel);
	static const char sep[] = "\n__ggml_vocab_test__\n";
	int idx = 0, n_ok = 0;

	snprintf(path, sizeof path, "%s/%s.inp", dir, rel);
	inp = read_file(path, &ninp);
	snprintf(path, sizeof path, "%s/%s.out", dir, rel);
	outf = read_file(path, &nout);
	if (!ok(t && inp && outf, "%s: vocab and vectors load", label)) {
		free(inp);
		free(outf);
		st_tokenizer_free(t);
		return;
	}
	p = inp;
	line = outf;
	while ((size_t)(p - inp) < ninp) {
		char *next = strstr(p, sep), *eol;
		size_t len = next ? (size_t)(next - p) : ninp - (size_t)(p - inp);
		int32_t expect[1024];
		int ne = 0, ng = 0;
		int32_t *got;
		if (!*line) {
			ok(0, "%s: vector %d has no expected line", label, idx);
			break;
		}
		eol = strchr(line, '\n');
		if (eol)
			*eol = '\0';
		for (char *q = line; *q && ne < 1024;) {
			char *end;
			long v = strtol(q, &end, 10);
			if (end == q) {
				q++;
				continue;
			}
			expect[ne++] = (int32_t)v;
			q = end;
		}
		got = tokenize_all(t, p, len, false, &ng);
		if (ok(got && same_ids(got, ng, expect, ne), "%s vector %d (%zu bytes) -> %d ids", label, idx, len, ne)) {
			n_ok++;
		} else {
			diag("input: '%.*s'", (int)ST_MIN(len, 200), p);
			diag_ids(t, "expected", expect, ne);
			if (got)
				diag_ids(t, "got     ", got, ng);
			else
				diag("tokenize failed: %d %s", ng, st_last_error());
		}
		free(got);
		idx++;
		line = eol ? eol + 1 : line + strlen(line);
		if (!next)
			break;
		p = next + strlen(sep);
	}
	ok(idx > 20 && !*line, "%s: %d vectors, all expected lines used (%d match)", label, idx, n_ok);
	free(inp);
	free(outf);
	st_tokenizer_free(t);
}

static void round_trip(const struct st_tokenizer *t, const char *label, const char *text, size_t len);
static void fuzz(const struct st_tokenizer *t, const char *label);

/* ---- llama2.c encode on tok512.bin: the independent reference ----------------- */

struct l2c_vocab {
	int n;
	char **s;
	float *score;
	int *hidx;                  /* hash table of ids, -1 empty */
	unsigned mask;
};

static unsigned l2c_hash(const char *s)
{
	unsigned h = 5381;
	while (*s)
		h = h * 33 + (unsigned char)*s++;
	return h;
}

static int l2c_lookup(const struct l2c_vocab *v, const char *s)
{
	for (unsigned i = l2c_hash(s) & v->mask;; i = (i + 1) & v->mask) {
		if (v->hidx[i] < 0)
			return -1;
		if (strcmp(v->s[v->hidx[i]], s) == 0)
			return v->hidx[i];
	}
}

static bool l2c_load(const char *path, int n, struct l2c_vocab *v)
{
	FILE *f = fopen(path, "rb");
	int maxlen;
	if (!f)
		return false;
	v->n = n;
	v->s = calloc((size_t)n, sizeof *v->s);
	v->score = calloc((size_t)n, sizeof *v->score);
	v->mask = 1;
	while (v->mask < 4u * (unsigned)n)
		v->mask <<= 1;
	v->mask -= 1;
	v->hidx = malloc((v->mask + 1) * sizeof *v->hidx);
	memset(v->hidx, 0xFF, (v->mask + 1) * sizeof *v->hidx);
	if (fread(&maxlen, 4, 1, f) != 1)
		goto fail;
	for (int i = 0; i < n; i++) {
		int len;
		if (fread(&v->score[i], 4, 1, f) != 1 || fread(&len, 4, 1, f) != 1 || len < 0 || len > 1000)
			goto fail;
		v->s[i] = calloc((size_t)len + 1, 1);
		if (fread(v->s[i], 1, (size_t)len, f) != (size_t)len)
			goto fail;
		unsigned h = l2c_hash(v->s[i]) & v->mask;
		while (v->hidx[h] >= 0)
			h = (h + 1) & v->mask;
		v->hidx[h] = i;
	}
	fclose(f);
	return true;
fail:
	fclose(f);
	return false;
}

static void l2c_free(struct l2c_vocab *v)
{
	for (int i = 0; i < v->n; i++)
		free(v->s[i]);
	free(v->s);
	free(v->score);
	free(v->hidx);
}

/* run.c's encode(): BOS not added here (we compare without BOS). */
static int l2c_encode(const struct l2c_vocab *v, const char *text, int *tokens)
{
	char buf[64], pair[2048];
	size_t str_len = 0;
	int n = 0;
	if (text[0] != '\0')
		tokens[n++] = l2c_lookup(v, " ");
	for (const char *c = text; *c != '\0'; c++) {
		if ((*c & 0xC0) != 0x80)
			str_len = 0;
		buf[str_len++] = *c;
		buf[str_len] = '\0';
		if ((*(c + 1) & 0xC0) == 0x80 && str_len < 4)
			continue;
		int id = l2c_lookup(v, buf);
		if (id != -1) {
			tokens[n++] = id;
		} else {
			for (size_t i = 0; i < str_len; i++)
				tokens[n++] = (unsigned char)buf[i] + 3;
		}
		str_len = 0;
	}
	for (;;) {
		float best_score = -1e10f;
		int best_id = -1, best_idx = -1;
		for (int i = 0; i < n - 1; i++) {
			snprintf(pair, sizeof pair, "%s%s", v->s[tokens[i]], v->s[tokens[i + 1]]);
			int id = l2c_lookup(v, pair);
			if (id != -1 && v->score[id] > best_score) {
				best_score = v->score[id];
				best_id = id;
				best_idx = i;
			}
		}
		if (best_idx == -1)
			break;
		tokens[best_idx] = best_id;
		for (int i = best_idx + 1; i < n - 1; i++)
			tokens[i] = tokens[i + 1];
		n--;
	}
	return n;
}

/* Each non-empty line of the text (up to max_lines), strata vs llama2.c. */
static void compare_l2c_lines(const struct st_tokenizer *t, const struct l2c_vocab *v, const char *label,
			      const char *text, size_t textlen, int max_lines)
{
	int lines = 0, good = 0;
	int *ref = malloc(4096 * sizeof *ref);
	for (const char *p = text; p < text + textlen && lines < max_lines;) {
		const char *e = memchr(p, '\n', (size_t)(text + textlen - p));
		size_t len = e ? (size_t)(e - p) : (size_t)(text + textlen - p);
		if (len > 0 && len < 2000) {
			char *line = strndup(p, len);
			int nr = l2c_encode(v, line, ref), ng;
			int32_t *got = tokenize_all(t, line, len, false, &ng);
			bool same = got && ng == nr;
			for (int i = 0; same && i < nr; i++)
				same = got[i] == ref[i];
			if (same)
				good++;
			else if (good + 5 > lines)
				diag("line %d differs: '%.80s' (llama2.c %d ids, strata %d)", lines, line, nr, ng);
			lines++;
			free(got);
			free(line);
		}
		p += len + 1;
	}
	ok(lines > 50 && good == lines, "%s: %d/%d TinyStories lines tokenize exactly as llama2.c's encode", label,
	   good, lines);
	free(ref);
}

static void test_llama2c_32000(const char *dir, const char *text, size_t textlen)
{
	char path[1024];
	struct l2c_vocab v = { 0 };
	struct st_tokenizer *t = load_tok(dir, "llama2-tokenizer/ggml-vocab-llama-spm.gguf");
	snprintf(path, sizeof path, "%s/llama2-tokenizer/tokenizer.bin", dir);
	if (ok(t && l2c_load(path, 32000, &v), "llama2.c tokenizer.bin (32000) loads"))
		compare_l2c_lines(t, &v, "llama SPM vs llama2.c tokenizer.bin", text, textlen, SLOW_BUILD ? 60 : 200);
	st_tokenizer_free(t);
	l2c_free(&v);
}

static void test_stories260k(const char *dir, const char *text, size_t textlen)
{
	char path[1024];
	struct l2c_vocab v = { 0 };
	struct st_tokenizer *t = load_tok(dir, "stories260K/stories260K.gguf");
	int *ref = malloc(4096 * sizeof *ref);

	snprintf(path, sizeof path, "%s/stories260K/tok512.bin", dir);
	if (!ok(t && l2c_load(path, 512, &v), "stories260K: GGUF tokenizer and tok512.bin load")) {
		st_tokenizer_free(t);
		l2c_free(&v);
		free(ref);
		return;
	}
	ok(st_tokenizer_n_vocab(t) == 512 && st_tokenizer_kind(t) == ST_TOKENIZER_SPM &&
	   st_tokenizer_bos(t) == 1 && st_tokenizer_eos(t) == 2 && st_tokenizer_add_bos(t),
	   "stories260K: 512 tokens, SPM, bos 1, eos 2, add_bos (default)");
	{
		int32_t ids[8];
		int n = st_tokenize(t, " ", 1, false, ids, 8);
		/* " " -> dummy prefix + space = "▁▁"; tok512 has "▁" = 410 only */
		ok(n == 2 && ids[0] == 410 && ids[1] == 410, "stories260K: ' ' -> 410 410 (the single-space token)");
	}
	compare_l2c_lines(t, &v, "stories260K vs llama2.c tok512.bin", text, textlen, SLOW_BUILD ? 150 : 600);
	round_trip(t, "stories260K TinyStories", text, textlen);
	fuzz(t, "stories260K");
	/* a line with bytes the 512 vocabulary lacks: byte fallback */
	{
		const char *s = "caf\xc3\xa9 \xe2\x9c\x85!";
		int nr = l2c_encode(&v, s, ref), ng;
		int32_t *got = tokenize_all(t, s, strlen(s), false, &ng);
		bool same = got && ng == nr;
		for (int i = 0; same && i < nr; i++)
			same = got[i] == ref[i];
		ok(same, "stories260K: byte fallback matches llama2.c (%d ids)", ng);
		if (got && !same)
			diag_ids(t, "got", got, ng);
		free(got);
	}
	st_tokenizer_free(t);
	l2c_free(&v);
	free(ref);
}

/* ---- round trips ------------------------------------------------------------------ */

/* CPU time of this thread: the machine may be shared, so wall time would
 * measure the neighbours. */
static double cpu_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void round_trip(const struct st_tokenizer *t, const char *label, const char *text, size_t len)
{
	double t0 = cpu_now(), dt;
	int n = 0, dl = 0;
	int32_t *ids = tokenize_all(t, text, len, false, &n);
	char *back;
	dt = cpu_now() - t0;
	if (!ok(ids != NULL, "%s: tokenize %zu bytes -> %d tokens in %.3f s CPU (twice: count, then fill)", label, len, n, dt)) {
		diag("%s", st_last_error());
		return;
	}
	ok(dt < (SLOW_BUILD ? 10.0 : 1.0), "%s: tokenizing %zu bytes took %.3f s (< %s s)", label, len, dt,
	   SLOW_BUILD ? "10 (sanitizers)" : "1");
	back = detok_all(t, ids, n, true, &dl);
	ok(back && (size_t)dl == len && memcmp(back, text, len) == 0, "%s: detokenize(tokenize(text)) == text (%d bytes)",
	   label, dl);
	if (back && ((size_t)dl != len || memcmp(back, text, len) != 0)) {
		size_t i = 0;
		while (i < len && i < (size_t)dl && back[i] == text[i])
			i++;
		diag("first difference at byte %zu: '%.40s' vs '%.40s'", i, text + i, back + i);
	}
	/* the same through st_token_to_piece, piece by piece (streaming) */
	{
		char *cat = malloc(len + 64), piece[256];
		size_t k = 0;
		bool fine = cat != NULL;
		for (int i = 0; i < n && fine; i++) {
			int m = st_token_to_piece(t, ids[i], piece, sizeof piece);
			if (m < 0 || k + (size_t)m > len + 1) {
				fine = false;
				break;
			}
			memcpy(cat + k, piece, (size_t)m);
			k += (size_t)m;
		}
		/* SPM: the dummy prefix space comes first */
		if (fine && st_tokenizer_kind(t) == ST_TOKENIZER_SPM && k > 0 && cat[0] == ' ')
			fine = k - 1 == len && memcmp(cat + 1, text, len) == 0;
		else if (fine)
			fine = k == len && memcmp(cat, text, len) == 0;
		ok(fine, "%s: pieces concatenate to the text", label);
		free(cat);
	}
	free(ids);
	free(back);
}

/* ---- llama SPM specifics ------------------------------------------------------ */

static void test_llama_spm(const char *dir, const char *text, size_t textlen)
{
	struct st_tokenizer *t = load_tok(dir, "llama2-tokenizer/ggml-vocab-llama-spm.gguf");
	int32_t ids[64];
	int n;
	char buf[64];
	if (!ok(t != NULL, "llama SPM vocab loads")) {
		return;
	}
	ok(st_tokenizer_n_vocab(t) == 32000 && st_tokenizer_bos(t) == 1 && st_tokenizer_eos(t) == 2 &&
	   st_tokenizer_add_bos(t), "llama SPM: 32000 tokens, bos 1, eos 2, add_bos_token true");
	ok(st_tokenizer_is_eog(t, 2) && !st_tokenizer_is_eog(t, 1) && !st_tokenizer_is_eog(t, 15043),
	   "llama SPM: </s> ends generation, <s> and words do not");

	n = st_tokenize(t, "Hello world", 11, true, ids, 64);
	ok(n == 3 && ids[0] == 1 && ids[1] == 15043 && ids[2] == 3186, "BOS: 'Hello world' with BOS -> 1 15043 3186");
	n = st_tokenize(t, "", 0, true, ids, 64);
	ok(n == 1 && ids[0] == 1, "BOS: empty text with BOS -> just BOS");
	n = st_tokenize(t, "", 0, false, ids, 64);
	ok(n == 0, "empty text without BOS -> no tokens");

	/* byte fallback: TAB and an emoji have no piece */
	n = st_tokenize(t, "\t\xf0\x9f\xa6\x99", 5, false, ids, 64);
	ok(n == 6 && ids[0] == 29871 && ids[1] == 12 && ids[2] == 243 && ids[3] == 162 && ids[4] == 169 && ids[5] == 156,
	   "byte fallback: '\\t🦙' -> ▁ <0x09> <0xF0> <0x9F> <0xA6> <0x99>");
	n = st_token_to_piece(t, 243, buf, sizeof buf);
	ok(n == 1 && (unsigned char)buf[0] == 0xF0, "piece of <0xF0> is the raw byte 0xF0");
	n = st_token_to_piece(t, 15043, buf, sizeof buf);
	ok(n == 6 && memcmp(buf, " Hello", 6) == 0, "piece of ▁Hello is ' Hello'");
	ok(st_token_to_piece(t, 1, buf, sizeof buf) == 0 && st_token_to_piece(t, 0, buf, sizeof buf) == 0,
	   "control/unknown tokens (<s>, <unk>) give no bytes");
	ok(st_token_to_piece(t, 15043, NULL, 0) == 6 && st_token_to_piece(t, 15043, buf, 3) == -ENOSPC &&
	   st_token_to_piece(t, 32000, buf, sizeof buf) == -EINVAL && st_token_to_piece(t, -1, buf, sizeof buf) == -EINVAL,
	   "token_to_piece: NULL measures, short buffer -ENOSPC, bad id -EINVAL");

	/* -ENOSPC from tokenize, with the needed count from a NULL call */
	n = st_tokenize(t, "Hello world", 11, false, NULL, 0);
	ok(n == 2 && st_tokenize(t, "Hello world", 11, false, ids, 1) == -ENOSPC && ids[0] == 15043,
	   "tokenize: NULL counts (2), a 1-slot buffer gives -ENOSPC with the first id filled");

	/* special tokens in the text */
	n = st_tokenize_special(t, "Hello<s>world", 13, false, true, ids, 64);
	ok(n == 3 && ids[0] == 15043 && ids[1] == 1 && ids[2] == 3186,
	   "parse_special: 'Hello<s>world' -> ▁Hello <s> ▁world (dummy prefix again after a special token)");
	if (n != 3 || ids[2] != 3186)
		diag_ids(t, "got", ids, n > 0 ? n : 0);
	n = st_tokenize(t, "<s>", 3, false, ids, 64);
	ok(n > 1 && ids[0] != 1, "without parse_special '<s>' is plain text (%d tokens)", n);

	/* detokenize: strip the dummy-prefix space, skip BOS */
	{
		int32_t in[] = { 1, 15043, 3186 };
		char out[64];
		int l = st_detokenize(t, in, 3, true, out, sizeof out);
		ok(l == 11 && strcmp(out, "Hello world") == 0, "detokenize(<s> ▁Hello ▁world, strip) = 'Hello world'");
		l = st_detokenize(t, in, 3, false, out, sizeof out);
		ok(l == 12 && strcmp(out, " Hello world") == 0, "detokenize without strip keeps the space: ' Hello world'");
		ok(st_detokenize(t, in, 3, false, out, 12) == -ENOSPC, "detokenize: no room for the NUL -> -ENOSPC");
	}
	/* streaming: the emoji arrives in four pieces */
	{
		char acc[16];
		size_t k = 0;
		bool fine = true;
		int32_t em[] = { 243, 162, 169, 156 };
		for (int i = 0; i < 4; i++) {
			k += (size_t)st_token_to_piece(t, em[i], acc + k, sizeof acc - k);
			fine = fine && st_utf8_incomplete_tail(acc, k) == (i < 3 ? k : 0);
		}
		ok(fine, "st_utf8_incomplete_tail holds 1, 2, 3 bytes of a 4-byte character, then 0");
	}
	fuzz(t, "llama SPM");
	if (text)
		round_trip(t, "llama SPM TinyStories", text, textlen);
	st_tokenizer_free(t);
}

/* Random texts from pieces that stress the edges (runs of spaces, tabs,
 * newlines, multi-byte characters, contractions, digits, special-token
 * text): decode(encode(x)) == x.  Random bytes: no failure, ids in range,
 * and for byte-level BPE an exact round trip. */
static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint32_t rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return (uint32_t)(rng_state >> 16);
}

static void fuzz(const struct st_tokenizer *t, const char *label)
{
	static const char *const parts[] = {
		"a", "b", "Z", "the", " ", "  ", "   ", "\n", "\n\n", "\t", "\r\n", "\xc3\xa9", "\xe4\xbd\xa0",
		"\xf0\x9f\xa6\x99", "'s", "'ll", "123", "4567", "!", "?!", ".", "<s>", "</s>", "<|endoftext|>",
		"\xe2\x80\x8d", "\xef\xb8\x8f", "\xc2\xa0", "\xe3\x80\x80", "x\xcc\x81",
	};
	char buf[512], back[4096];
	int32_t ids[2048];
	int bad_rt = 0, bad_bytes = 0, rounds = 300;
	for (int r = 0; r < rounds; r++) {
		size_t len = 0;
		int n, l;
		while (len < 200) {
			const char *p = parts[rng() % ST_ARRAY_SIZE(parts)];
			memcpy(buf + len, p, strlen(p));
			len += strlen(p);
		}
		n = st_tokenize(t, buf, len, r & 1, ids, 2048);
		l = n >= 0 ? st_detokenize(t, ids, n, true, back, sizeof back) : -1;
		if (l != (int)len || memcmp(back, buf, len) != 0) {
			if (bad_rt++ < 3)
				diag("%s: round trip fails for '%.*s' (n %d, l %d)", label, (int)len, buf, n, l);
		}
		/* random bytes */
		for (size_t i = 0; i < 200; i++)
			buf[i] = (char)(rng() & 0xFF);
		n = st_tokenize(t, buf, 200, false, ids, 2048);
		for (int i = 0; i < n; i++)
			if ((uint32_t)ids[i] >= st_tokenizer_n_vocab(t))
				n = -1;
		l = n >= 0 ? st_detokenize(t, ids, n, true, back, sizeof back) : -1;
		if (n < 0 || l < 0 || (st_tokenizer_kind(t) == ST_TOKENIZER_BPE && (l != 200 || memcmp(back, buf, 200))))
			bad_bytes++;
	}
	ok(bad_rt == 0, "%s: %d random texts round-trip (%d fail)", label, rounds, bad_rt);
	ok(bad_bytes == 0, "%s: %d random byte strings tokenize%s (%d fail)", label, rounds,
	   st_tokenizer_kind(t) == ST_TOKENIZER_BPE ? " and round-trip exactly" : " to ids in range", bad_bytes);
}

static void test_gpt2(const char *dir, const char *text, size_t textlen)
{
	struct st_tokenizer *t = load_tok(dir, "gpt2-tokenizer/ggml-vocab-gpt-2.gguf");
	int32_t ids[64];
	char buf[64];
	int n;
	if (!ok(t != NULL, "GPT-2 vocab loads"))
		return;
	ok(st_tokenizer_n_vocab(t) == 50257 && st_tokenizer_kind(t) == ST_TOKENIZER_BPE && !st_tokenizer_add_bos(t) &&
	   st_tokenizer_bos(t) == 50256 && st_tokenizer_is_eog(t, 50256),
	   "GPT-2: 50257 tokens, BPE, no BOS by default, <|endoftext|> = 50256 ends generation");
	n = st_token_to_piece(t, 18435, buf, sizeof buf);   /* "ĠHello" */
	ok(n == 6 && memcmp(buf, " Hello", 6) == 0, "GPT-2 piece of 'ĠHello' is ' Hello'");
	n = st_tokenize(t, "<|endoftext|>", 13, false, ids, 64);
	ok(n > 1, "GPT-2: '<|endoftext|>' is plain text without parse_special (%d tokens)", n);
	n = st_tokenize_special(t, "a<|endoftext|>", 14, false, true, ids, 64);
	ok(n == 2 && ids[0] == 64 && ids[1] == 50256, "GPT-2: with parse_special it is token 50256");
	n = st_tokenize(t, "\xff\xfe ok", 5, false, ids, 64);
	{
		char out[32];
		int l = n > 0 ? st_detokenize(t, ids, n, false, out, sizeof out) : -1;
		ok(l == 5 && memcmp(out, "\xff\xfe ok", 5) == 0, "GPT-2: invalid UTF-8 bytes round-trip byte for byte");
	}
	fuzz(t, "GPT-2");
	if (text)
		round_trip(t, "GPT-2 TinyStories", text, textlen);
	st_tokenizer_free(t);
}

/* ---- in-memory vocabularies ---------------------------------------------------- */

static void test_small_spm(void)
{
	/* merges "ab" (score -1) vs "bc" (score -2): "abc" -> ab c */
	const char *toks[] = { "<unk>", "<s>", "</s>", "a", "b", "c", "ab", "bc", "\xe2\x96\x81", "<0x41>", "\xe2\x96\x81" "ab",
			       "<tag>" };
	float scores[] = { 0, 0, 0, -10, -10, -10, -1, -2, -10, 0, -0.5f, 0 };
	int32_t types[] = { 2, 3, 3, 1, 1, 1, 1, 1, 1, 6, 1, 4 };
	struct st_tokenizer_vocab v = {
		.kind = ST_TOKENIZER_SPM, .n_tokens = 12, .tokens = toks, .scores = scores, .types = types,
		.bos = -2, .eos = -2, .unk = -2, .eot = -1, .eom = -1, .add_bos = -1, .add_space_prefix = 0,
	};
	struct st_tokenizer *t = NULL;
	int32_t ids[16];
	int n;
	ok(st_tokenizer_create(&v, &t) == 0, "small SPM vocab builds");
	if (!t)
		return;
	n = st_tokenize(t, "abc", 3, false, ids, 16);
	ok(n == 2 && ids[0] == 6 && ids[1] == 5, "highest score merges first: abc -> ab c");
	n = st_tokenize(t, "bcab", 4, false, ids, 16);
	ok(n == 2 && ids[0] == 7 && ids[1] == 6, "bcab -> bc ab");
	n = st_tokenize(t, "abab", 4, false, ids, 16);
	ok(n == 2 && ids[0] == 6 && ids[1] == 6, "ties: leftmost first: abab -> ab ab");
	n = st_tokenize(t, "aAz", 3, false, ids, 16);
	ok(n == 3 && ids[0] == 3 && ids[1] == 9 && ids[2] == 0,
	   "byte fallback: 'A' -> <0x41>; 'z' has no byte token -> <unk>");
	n = st_tokenize(t, " ab", 3, false, ids, 16);
	ok(n == 1 && ids[0] == 10, "space becomes ▁ and merges: ' ab' -> ▁ab");
	n = st_tokenize(t, "ab<tag>ab", 9, false, ids, 16);
	ok(n == 3 && ids[0] == 6 && ids[1] == 11 && ids[2] == 6,
	   "user-defined tokens are matched even without parse_special: ab<tag>ab -> ab <tag> ab");
	{
		char piece[16];
		ok(st_token_to_piece(t, 11, piece, sizeof piece) == 5 && memcmp(piece, "<tag>", 5) == 0,
		   "a user-defined token decodes to its text");
	}
	st_tokenizer_free(t);
	/* with the dummy prefix */
	v.add_space_prefix = -1;
	ok(st_tokenizer_create(&v, &t) == 0, "small SPM vocab with dummy prefix builds");
	if (!t)
		return;
	n = st_tokenize(t, "ab", 2, true, ids, 16);
	ok(n == 2 && ids[0] == 1 && ids[1] == 10, "BOS + dummy prefix: 'ab' -> <s> ▁ab");
	st_tokenizer_free(t);
}

static void test_small_bpe(void)
{
	/* byte-level: ' ' is 'Ġ' (U+0120) */
	const char *toks[] = { "a", "b", "c", "\xc4\xa0", "ab", "\xc4\xa0" "ab", "<|endoftext|>", "abc" };
	int32_t types[] = { 1, 1, 1, 1, 1, 1, 3, 1 };
	const char *merges[] = { "a b", "\xc4\xa0 ab", "ab c" };
	struct st_tokenizer_vocab v = {
		.kind = ST_TOKENIZER_BPE, .n_tokens = 8, .tokens = toks, .types = types,
		.n_merges = 3, .merges = merges, .pre = "gpt-2",
		.bos = 6, .eos = 6, .unk = -1, .eot = -1, .eom = -1, .add_bos = -1, .add_space_prefix = -1,
	};
	struct st_tokenizer *t = NULL;
	int32_t ids[16];
	int n;
	ok(st_tokenizer_create(&v, &t) == 0, "small BPE vocab builds");
	if (!t)
		return;
	n = st_tokenize(t, "ab abc cab", 10, false, ids, 16);
	ok(n == 6 && ids[0] == 4 && ids[1] == 5 && ids[2] == 2 && ids[3] == 3 && ids[4] == 2 && ids[5] == 4,
	   "BPE by rank: 'ab abc cab' -> ab | Ġab c | Ġ c ab (rank 1 'Ġ ab' beats rank 2 'ab c')");
	if (n != 6)
		diag_ids(t, "got", ids, n > 0 ? n : 0);
	n = st_tokenize(t, "abc", 3, false, ids, 16);
	ok(n == 1 && ids[0] == 7, "BPE: 'abc' -> abc (merged result of 'ab c')");
	{
		char out[32];
		int32_t in[] = { 5, 2, 6 };
		int l = st_detokenize(t, in, 3, true, out, sizeof out);
		ok(l == 4 && strcmp(out, " abc") == 0, "BPE detokenize: Ġab c <|endoftext|> -> ' abc' (no prefix to strip)");
	}
	st_tokenizer_free(t);
}

/* Pre-tokenizers by name: llama3 splits digits in threes and keeps whole
 * words that are tokens (ignore_merges), qwen2 splits single digits,
 * gpt-2 keeps digit runs; unknown names fall back to gpt-2. */
static int small_bpe_ids(const char *pre, const char *text, int32_t *ids, int max, int *add_bos)
{
	const char *toks[] = { "1", "2", "3", "4", "5", "12", "123", "45", "12345", "1234", "x", "y", "z", "xyz",
			       "<|begin_of_text|>" };
	int32_t types[] = { 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 3 };
	const char *merges[] = { "1 2", "12 3", "4 5", "123 4", "1234 5", "123 45" };
	struct st_tokenizer_vocab v = {
		.kind = ST_TOKENIZER_BPE, .n_tokens = 15, .tokens = toks, .types = types,
		.n_merges = 6, .merges = merges, .pre = pre,
		.bos = 14, .eos = -1, .unk = -1, .eot = -1, .eom = -1, .add_bos = -1, .add_space_prefix = -1,
	};
	struct st_tokenizer *t = NULL;
	int n;
	if (st_tokenizer_create(&v, &t) < 0)
		return -1000;
	n = st_tokenize(t, text, strlen(text), false, ids, max);
	*add_bos = st_tokenizer_add_bos(t);
	st_tokenizer_free(t);
	return n;
}

static void test_pre_tokenizers(void)
{
	int32_t ids[16];
	int n, bos;
	n = small_bpe_ids("gpt-2", "12345", ids, 16, &bos);
	ok(n == 1 && ids[0] == 8 && !bos, "pre gpt-2: digit run merges whole: 12345 -> [12345], no BOS by default");
	n = small_bpe_ids("llama-bpe", "12345", ids, 16, &bos);
	ok(n == 2 && ids[0] == 6 && ids[1] == 7 && bos, "pre llama-bpe: \\p{N}{1,3}: 12345 -> [123][45], BOS by default");
	n = small_bpe_ids("qwen2", "12345", ids, 16, &bos);
	ok(n == 5 && ids[0] == 0 && ids[4] == 4, "pre qwen2: single digits: 12345 -> 1 2 3 4 5");
	n = small_bpe_ids("llama3", "xyz", ids, 16, &bos);
	ok(n == 1 && ids[0] == 13, "pre llama3: ignore_merges: a word that is a token stays whole (xyz)");
	n = small_bpe_ids("gpt-2", "xyz", ids, 16, &bos);
	ok(n == 3 && ids[0] == 10 && ids[2] == 12, "pre gpt-2: no merges for x y z -> three tokens");
	n = small_bpe_ids("no-such-pre", "12345", ids, 16, &bos);
	ok(n == 1 && ids[0] == 8, "unknown pre-tokenizer name falls back to gpt-2");
	{
		const char *toks[] = { "a", "</s>", "<|im_end|>", "<|eot_id|>", "b" };
		int32_t types[] = { 1, 3, 3, 3, 1 };
		struct st_tokenizer_vocab v = {
			.kind = ST_TOKENIZER_BPE, .n_tokens = 5, .tokens = toks, .types = types, .pre = "gpt-2",
			.bos = -1, .eos = 1, .unk = -1, .eot = -1, .eom = -1, .add_bos = -1, .add_space_prefix = -1,
		};
		struct st_tokenizer *t = NULL;
		ok(st_tokenizer_create(&v, &t) == 0 && st_tokenizer_is_eog(t, 1) && st_tokenizer_is_eog(t, 2) &&
		   st_tokenizer_is_eog(t, 3) && !st_tokenizer_is_eog(t, 0) && !st_tokenizer_is_eog(t, 4) &&
		   !st_tokenizer_is_eog(t, -1) && st_tokenizer_bos(t) == -1 && !st_tokenizer_add_bos(t),
		   "end of generation: eos and end-looking tokens (<|im_end|>, <|eot_id|>); no BOS");
		st_tokenizer_free(t);
	}
	n = small_bpe_ids(NULL, "12345", ids, 16, &bos);
	ok(n == 2 && ids[0] == 6 && ids[1] == 7, "missing pre (llama.cpp 'default'): [0-9]{3} split -> [123][45]");
}

/* ---- synthetic vocabulary ------------------------------------------------------- */

static void test_synth(const char *text, size_t textlen)
{
	static const uint32_t sizes[] = { 260, 512, 32000 };
	for (size_t s = 0; s < ST_ARRAY_SIZE(sizes); s++) {
		char **toks = NULL;
		float *scores = NULL;
		int32_t *types = NULL;
		struct st_tokenizer *t = NULL;
		uint32_t nv = sizes[s];
		int rc = st_tokenizer_synth_spm(nv, &toks, &scores, &types);
		if (!ok(rc == 0, "synthetic vocab of %u tokens", nv)) {
			diag("%s", st_last_error());
			continue;
		}
		ok(strcmp(toks[0], "<unk>") == 0 && strcmp(toks[1], "<s>") == 0 && strcmp(toks[2], "</s>") == 0 &&
		   strcmp(toks[3], "<0x00>") == 0 && strcmp(toks[258], "<0xFF>") == 0 && types[3] == ST_TOKEN_BYTE &&
		   types[0] == ST_TOKEN_UNKNOWN && types[1] == ST_TOKEN_CONTROL,
		   "synthetic %u: <unk> <s> </s> <0x00>..<0xFF> in llama's layout", nv);
		/* through GGUF, as mkmodel will write it */
		{
			struct st_gguf_writer *w = NULL;
			struct st_gguf *g = NULL;
			char *mem = NULL;
			size_t memlen = 0;
			FILE *f = open_memstream(&mem, &memlen);
			rc = st_gguf_writer_create(&w, 3, 32);
			if (rc == 0) rc = st_gguf_writer_set_str(w, "tokenizer.ggml.model", "llama");
			if (rc == 0) rc = st_gguf_writer_set_arr(w, "tokenizer.ggml.tokens", ST_GGUF_STRING, toks, nv);
			if (rc == 0) rc = st_gguf_writer_set_arr(w, "tokenizer.ggml.scores", ST_GGUF_F32, scores, nv);
			if (rc == 0) rc = st_gguf_writer_set_arr(w, "tokenizer.ggml.token_type", ST_GGUF_I32, types, nv);
			if (rc == 0) rc = st_gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id", 1);
			if (rc == 0) rc = st_gguf_writer_set_u32(w, "tokenizer.ggml.eos_token_id", 2);
			if (rc == 0) rc = st_gguf_writer_set_u32(w, "tokenizer.ggml.unknown_token_id", 0);
			if (rc == 0 && f) rc = st_gguf_writer_begin(w, f);
			if (rc == 0) rc = st_gguf_writer_finish(w);
			st_gguf_writer_destroy(w);
			if (f)
				fclose(f);
			if (rc == 0)
				rc = st_gguf_parse_mem(mem, memlen, &g);
			if (rc == 0)
				rc = st_tokenizer_from_gguf(g, &t);
			ok(rc == 0 && t, "synthetic %u: written to GGUF and loaded back", nv);
			if (rc)
				diag("%d %s", rc, st_last_error());
			st_gguf_free(g);
			free(mem);
		}
		if (t) {
			int32_t ids[8];
			int n = st_tokenize(t, " the", 4, false, ids, 8);
			if (nv >= 512)
				ok(n == 2 && strcmp(st_tokenizer_token_text(t, ids[1]), "\xe2\x96\x81the") == 0 && ids[0] == 259,
				   "synthetic %u: ' the' -> ▁ ▁the", nv);
			if (text) {
				char label[64];
				snprintf(label, sizeof label, "synthetic %u TinyStories", nv);
				round_trip(t, label, text, ST_MIN(textlen, (size_t)50000));
			}
			{
				char label[64];
				snprintf(label, sizeof label, "synthetic %u", nv);
				fuzz(t, label);
			}
		}
		st_tokenizer_free(t);
		st_tokenizer_synth_free(nv, toks, scores, types);
	}
	ok(st_tokenizer_synth_spm(259, &(char **){ NULL }, &(float *){ NULL }, &(int32_t *){ NULL }) == -EINVAL,
	   "synthetic vocab below 260 tokens (no room for ▁) is refused");
}

/* ---- malformed metadata ------------------------------------------------------------ */

enum defect {
	D_NONE, D_SCORES_SHORT, D_TYPES_LONG, D_DUP, D_EMPTY, D_BOS_RANGE, D_EOS_RANGE, D_MERGE_UNKNOWN,
	D_MERGE_NOSPACE, D_TYPE_VALUE, D_MODEL, D_NO_TOKENS, D_TOKENS_TYPE, D_ADD_BOS_NO_BOS, D_HUGE,
	D_NO_MERGES, D_SCORES_TYPE, D_NO_MODEL, D_BOS_NONE, D_COUNT,
};
static const char *const defect_name[] = {
	"valid", "scores shorter than tokens", "token_type longer than tokens", "duplicate token", "empty token",
	"bos id out of range", "eos id out of range", "merge names an unknown token", "merge without a space",
	"token type 9", "unknown tokenizer model", "no tokens", "tokens not strings", "add_bos without bos",
	"token of 70000 bytes", "gpt2 without merges", "scores are strings", "no tokenizer.ggml.model",
	"bos_token_id = -1 (i32) with add_bos_token false",
};

static int make_gguf(enum defect d, struct st_gguf **g)
{
	const char *toks[] = { "<unk>", "<s>", "</s>", "a", "b", "ab", "c" };
	float scores[] = { 0, 0, 0, -1, -1, -0.5f, -1 };
	int32_t types[] = { 2, 3, 3, 1, 1, 1, 1, 1 };
	const char *merges[] = { "a b", d == D_MERGE_UNKNOWN ? "a zz" : d == D_MERGE_NOSPACE ? "ab" : "ab c" };
	uint32_t n = 7;
	bool bpe = d == D_MERGE_UNKNOWN || d == D_MERGE_NOSPACE || d == D_NO_MERGES;
	struct st_gguf_writer *w = NULL;
	char *mem = NULL, *huge = NULL;
	size_t memlen = 0;
	FILE *f;
	int rc;

	if (d == D_DUP)
		toks[6] = "ab";
	if (d == D_EMPTY)
		toks[6] = "";
	if (d == D_TYPE_VALUE)
		types[4] = 9;
	if (d == D_HUGE) {
		huge = malloc(70001);
		memset(huge, 'x', 70000);
		huge[70000] = '\0';
		toks[6] = huge;
	}
	rc = st_gguf_writer_create(&w, 3, 32);
	if (rc == 0 && d != D_NO_MODEL)
		rc = st_gguf_writer_set_str(w, "tokenizer.ggml.model", d == D_MODEL ? "wordpiece-x" : bpe ? "gpt2" : "llama");
	if (rc == 0 && d != D_NO_TOKENS) {
		if (d == D_TOKENS_TYPE)
			rc = st_gguf_writer_set_arr(w, "tokenizer.ggml.tokens", ST_GGUF_I32, types, n);
		else
			rc = st_gguf_writer_set_arr(w, "tokenizer.ggml.tokens", ST_GGUF_STRING, toks, n);
	}
	if (rc == 0) {
		if (d == D_SCORES_TYPE)
			rc = st_gguf_writer_set_arr(w, "tokenizer.ggml.scores", ST_GGUF_STRING, toks, n);
		else
			rc = st_gguf_writer_set_arr(w, "tokenizer.ggml.scores", ST_GGUF_F32, scores,
						    d == D_SCORES_SHORT ? n - 1 : n);
	}
	if (rc == 0)
		rc = st_gguf_writer_set_arr(w, "tokenizer.ggml.token_type", ST_GGUF_I32, types, d == D_TYPES_LONG ? n + 1 : n);
	if (rc == 0 && bpe && d != D_NO_MERGES)
		rc = st_gguf_writer_set_arr(w, "tokenizer.ggml.merges", ST_GGUF_STRING, merges, 2);
	if (rc == 0 && d == D_BOS_NONE)
		rc = st_gguf_writer_set_i32(w, "tokenizer.ggml.bos_token_id", -1);
	else if (rc == 0)
		rc = st_gguf_writer_set_u32(w, "tokenizer.ggml.bos_token_id",
					    d == D_BOS_RANGE ? 7 : d == D_ADD_BOS_NO_BOS ? 0xFFFFFFFFu : 1);
	if (rc == 0 && d == D_BOS_NONE)
		rc = st_gguf_writer_set_bool(w, "tokenizer.ggml.add_bos_token", false);
	if (rc == 0)
		rc = st_gguf_writer_set_u32(w, "tokenizer.ggml.eos_token_id", d == D_EOS_RANGE ? 1000000 : 2);
	if (rc == 0 && d == D_ADD_BOS_NO_BOS)
		rc = st_gguf_writer_set_bool(w, "tokenizer.ggml.add_bos_token", true);
	f = open_memstream(&mem, &memlen);
	if (rc == 0)
		rc = f ? st_gguf_writer_begin(w, f) : -ENOMEM;
	if (rc == 0)
		rc = st_gguf_writer_finish(w);
	st_gguf_writer_destroy(w);
	if (f)
		fclose(f);
	if (rc == 0)
		rc = st_gguf_parse_mem(mem, memlen, g);
	free(mem);
	free(huge);
	return rc;
}

static void test_malformed(void)
{
	for (int d = 0; d < D_COUNT; d++) {
		struct st_gguf *g = NULL;
		struct st_tokenizer *t = NULL;
		int rc = make_gguf((enum defect)d, &g);
		if (rc < 0 && (d == D_TOKENS_TYPE || d == D_SCORES_TYPE)) {
			/* the GGUF reader checks the types of the well-known keys itself */
			ok(1, "malformed: %s -> rejected by the GGUF reader: %d (%s)", defect_name[d], rc, st_last_error());
			continue;
		}
		if (rc < 0) {
			ok(0, "malformed: building the '%s' file: %d %s", defect_name[d], rc, st_last_error());
			continue;
		}
		rc = st_tokenizer_from_gguf(g, &t);
		if (d == D_NONE)
			ok(rc == 0 && t, "malformed: the valid base file loads");
		else if (d == D_BOS_NONE)
			ok(rc == 0 && t && st_tokenizer_bos(t) == -1 && !st_tokenizer_add_bos(t) &&
			   st_tokenize(t, "a", 1, true, NULL, 0) == -EINVAL,
			   "malformed: %s loads with no BOS; asking for BOS is -EINVAL", defect_name[d]);
		else if (d == D_NO_MODEL)
			ok(rc == -ENOENT && !t, "malformed: %s -> -ENOENT (%s)", defect_name[d], st_last_error());
		else
			ok(rc < 0 && !t, "malformed: %s -> %d (%s)", defect_name[d], rc, rc < 0 ? st_last_error() : "accepted!");
		st_tokenizer_free(t);
		st_gguf_free(g);
	}
	{
		struct st_tokenizer *t = NULL;
		struct st_tokenizer_vocab v = { .kind = 7, .n_tokens = 1, .tokens = (const char *[]){ "a" } };
		ok(st_tokenizer_create(&v, &t) == -EINVAL && !t, "create: unknown kind -> -EINVAL");
		v.kind = ST_TOKENIZER_SPM;
		v.n_tokens = 0;
		ok(st_tokenizer_create(&v, &t) == -EINVAL && !t, "create: empty vocabulary -> -EINVAL");
	}
}

/* test_tokenizer --dump VOCAB.gguf TEXT: print the ids of the whole text,
 * one per line (no BOS), for tests/tok_crosscheck.py. */
static int dump_ids(const char *gguf, const char *textfile)
{
	size_t len = 0;
	char *text = read_file(textfile, &len);
	struct st_gguf *g = NULL;
	struct st_tokenizer *t = NULL;
	int32_t *ids;
	int n = 0;
	if (!text || st_gguf_open(gguf, &g) < 0 || st_tokenizer_from_gguf(g, &t) < 0) {
		fprintf(stderr, "dump: %s\n", text ? st_last_error() : "cannot read the text");
		return 1;
	}
	ids = tokenize_all(t, text, len, false, &n);
	for (int i = 0; ids && i < n; i++)
		printf("%d\n", ids[i]);
	free(ids);
	free(text);
	st_tokenizer_free(t);
	st_gguf_free(g);
	return ids || n == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
	const char *dir = tap_models_dir();
	char path[1024];
	size_t textlen = 0;
	char *text = NULL;

	if (argc == 4 && strcmp(argv[1], "--dump") == 0)
		return dump_ids(argv[2], argv[3]);
	test_small_spm();
	test_small_bpe();
	test_pre_tokenizers();
	test_malformed();
	{
		size_t a = st_utf8_incomplete_tail("ab\xc3", 3), b = st_utf8_incomplete_tail("ab\xc3\xa9", 4),
		       c = st_utf8_incomplete_tail("\xe2\x96", 2), d = st_utf8_incomplete_tail("\x80\x80\x80\x80", 4),
		       e = st_utf8_incomplete_tail("\xff", 1);
		ok(a == 1 && b == 0 && c == 2 && d == 0 && e == 0, "utf8 tail: lead byte held, complete char not, invalid not");
	}
	if (dir) {
		snprintf(path, sizeof path, "%s/tinystories/tinystories_val.head200k.txt", dir);
		text = read_file(path, &textlen);
	}
	test_synth(text, textlen);
	if (!dir) {
		tap_skip("shared models not found (ST_MODELS_DIR): llama.cpp vectors, stories260K, round trips");
		return tap_done();
	}
	run_vectors(dir, "llama2-tokenizer/ggml-vocab-llama-spm.gguf", "llama SPM");
	run_vectors(dir, "gpt2-tokenizer/ggml-vocab-gpt-2.gguf", "GPT-2");
	test_llama_spm(dir, text, textlen);
	test_gpt2(dir, text, textlen);
	if (text) {
		test_stories260k(dir, text, textlen);
		test_llama2c_32000(dir, text, textlen);
	} else {
		tap_skip("TinyStories text missing");
	}
	free(text);
	return tap_done();
}
