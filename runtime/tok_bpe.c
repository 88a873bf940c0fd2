/* tok_bpe.c: GPT-2 style byte-level BPE ("gpt2" vocabularies).
 *
 * As llama.cpp's llm_tokenizer_bpe: the text is cut into pre-tokens by the
 * regexes of the pre-tokenizer named in tokenizer.ggml.pre (each regex
 * splits every piece left by the previous one; text a regex does not match
 * stays a piece of its own), each pre-token's bytes are mapped to GPT-2's
 * bytes_to_unicode characters, and inside each pre-token adjacent symbols
 * are merged by lowest merge rank (leftmost on ties).
 *
 * The regexes are the ones llama.cpp uses (its hand-written matchers for
 * gpt2/llama3 implement exactly these), run by PCRE2 in UTF + UCP mode.
 * Bytes that are not valid UTF-8 are cut out first and stay pieces of their
 * own (as if no regex matched them); they are encoded byte for byte
 * (llama.cpp turns them into U+FFFD first).  The regexes then run on valid
 * UTF-8 only, without PCRE2 re-checking the subject on every call (its
 * interpreter would do that in O(n) per match). */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "tokenizer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

#define RE_GPT2 "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+"
#define RE_LLAMA3_HEAD "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|"
#define RE_LLAMA3_TAIL "| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"

struct pre_def {
	const char *const *names;
	const char *regex[ST_TOK_MAX_REGEX];
	bool ignore_merges, add_bos;
};

static const char *const names_gpt2[] = {
	"gpt-2", "phi-2", "jina-es", "jina-de", "gigachat", "jina-v2-es", "jina-v2-de", "a.x-4.0",
	"mellum", "modern-bert", "mpt", "olmo", "jais", "trillion", "granite-docling", "jina-v1-en",
	"jina-v2-code", "roberta-bpe", NULL,
};
static const char *const names_llama3[] = {
	"llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral", "midm-2.0", "lfm2",
	"jina-v5-nano", NULL,
};
static const char *const names_dbrx[] = { "dbrx", "smaug-bpe", NULL };
static const char *const names_qwen2[] = { "qwen2", "deepseek-r1-qwen", "stablelm2", "hunyuan", NULL };
static const char *const names_starcoder[] = {
	"starcoder", "refact", "command-r", "smollm", "codeshell", "exaone", "minerva", NULL,
};
static const char *const names_default[] = { "default", NULL };

static const struct pre_def pre_defs[] = {
	{ names_gpt2, { RE_GPT2 }, false, false },
	{ names_llama3, { RE_LLAMA3_HEAD "\\p{N}{1,3}" RE_LLAMA3_TAIL }, true, true },
	{ names_dbrx, { RE_LLAMA3_HEAD "\\p{N}{1,3}" RE_LLAMA3_TAIL }, false, false },
	{ names_qwen2, { RE_LLAMA3_HEAD "\\p{N}" RE_LLAMA3_TAIL }, false, false },
	{ names_starcoder, { "\\p{N}", RE_GPT2 }, false, false },
	{ names_default, { "[\\p{P}\\$\\+<=>\\^~\\|]+", RE_GPT2, "\\p{N}+", "[0-9][0-9][0-9]" }, false, false },
};

/* ---- GPT-2 bytes_to_unicode -------------------------------------------------
 * Printable bytes ('!'..'~', 0xA1..0xAC, 0xAE..0xFF) stand for themselves;
 * the other 68 bytes, in order, become U+0100.. U+0143. */
uint32_t st_tok_byte_to_cp(uint8_t b)
{
	if (b <= 32)
		return 256u + b;
	if (b >= 127 && b <= 160)
		return 256u + 33 + (b - 127u);
	if (b == 173)
		return 256u + 33 + 34;
	return b;
}

int st_tok_cp_to_byte(uint32_t cp)
{
	if ((cp >= 33 && cp <= 126) || (cp >= 161 && cp <= 172) || (cp >= 174 && cp <= 255))
		return (int)cp;
	if (cp >= 256 && cp <= 288)
		return (int)(cp - 256);
	if (cp >= 289 && cp <= 322)
		return (int)(cp - 289 + 127);
	if (cp == 323)
		return 173;
	return -1;
}

/* ---- pre-tokenizer ------------------------------------------------------- */

void st_tok_bpe_fini(struct st_tokenizer *t)
{
	for (int i = 0; i < t->n_regex; i++)
		pcre2_code_free(t->regex[i].code);
	t->n_regex = 0;
}

int st_tok_bpe_init(struct st_tokenizer *t, const char *pre)
{
	const struct pre_def *def = NULL;
	const char *name = pre ? pre : "default";
	for (size_t d = 0; d < ST_ARRAY_SIZE(pre_defs) && !def; d++)
		for (const char *const *n = pre_defs[d].names; *n; n++)
			if (strcmp(*n, name) == 0) {
				def = &pre_defs[d];
				break;
			}
	if (!def) {
		st_log(ST_LOG_WARN, "tokenizer.ggml.pre = '%.64s' is not known to strata; using the gpt-2 pre-tokenizer",
		       name);
		def = &pre_defs[0];
		name = "gpt-2";
	}
	snprintf(t->pre, sizeof t->pre, "%s", name);
	t->ignore_merges = def->ignore_merges;
	t->add_bos = def->add_bos;      /* default; the file's add_bos_token overrides */
	for (int i = 0; i < ST_TOK_MAX_REGEX && def->regex[i]; i++) {
		int err;
		PCRE2_SIZE erroff;
		pcre2_code *code = pcre2_compile((PCRE2_SPTR)def->regex[i], PCRE2_ZERO_TERMINATED,
						 PCRE2_UTF | PCRE2_UCP, &err, &erroff, NULL);
		if (!code) {
			PCRE2_UCHAR msg[160];
			pcre2_get_error_message(err, msg, sizeof msg);
			return st_error(-EINVAL, "tokenizer: pre-tokenizer '%s' regex %d does not compile at %zu: %s",
					name, i, (size_t)erroff, (const char *)msg);
		}
		(void)pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);   /* optional speed-up */
		t->regex[t->n_regex++].code = code;
	}
	return 0;
}

struct piece {
	size_t off, len;
	bool invalid;               /* not UTF-8: no regex runs on it */
};

struct pieces {
	struct piece *v;
	size_t n, cap;
};

static int pieces_push(struct pieces *p, size_t off, size_t len, bool invalid)
{
	if (p->n == p->cap) {
		size_t cap = p->cap ? p->cap * 2 : 64;
		struct piece *nv = realloc(p->v, cap * sizeof *nv);
		if (!nv)
			return st_error(-ENOMEM, "tokenize: out of memory");
		p->v = nv;
		p->cap = cap;
	}
	p->v[p->n++] = (struct piece){ off, len, invalid };
	return 0;
}

/* Split each piece of `in` by regex code into `out` (matches and the
 * unmatched text between them, in order). */
static int regex_split(pcre2_code *code, pcre2_match_data *md, const char *text,
		       const struct pieces *in, struct pieces *out)
{
	int rc;
	for (size_t i = 0; i < in->n; i++) {
		PCRE2_SPTR subj = (PCRE2_SPTR)(text + in->v[i].off);
		size_t n = in->v[i].len, start = 0, pos = 0;
		if (in->v[i].invalid) {
			if ((rc = pieces_push(out, in->v[i].off, n, true)) < 0)
				return rc;
			continue;
		}
		while (pos < n) {
			PCRE2_SIZE *ov;
			size_t ms, me;
			int m = pcre2_match(code, subj, n, pos, PCRE2_NO_UTF_CHECK, md, NULL);
			if (m == PCRE2_ERROR_NOMATCH)
				break;
			if (m < 0)
				return st_error(-EINVAL, "tokenize: pre-tokenizer regex failed (PCRE2 error %d)", m);
			ov = pcre2_get_ovector_pointer(md);
			ms = ov[0];
			me = ov[1];
			if (me <= ms) {     /* empty match: step over one character */
				pos = ms + ST_MIN(st_tok_utf8_len(subj[ms]), n - ms);
				continue;
			}
			if (ms > start && (rc = pieces_push(out, in->v[i].off + start, ms - start, false)) < 0)
				return rc;
			if ((rc = pieces_push(out, in->v[i].off + ms, me - ms, false)) < 0)
				return rc;
			start = pos = me;
		}
		if (start < n && (rc = pieces_push(out, in->v[i].off + start, n - start, false)) < 0)
			return rc;
	}
	return 0;
}

/* ---- merges ------------------------------------------------------------------ */

struct bpe_sym {
	int prev, next;
	size_t off, n;
	int32_t id;                 /* token of the symbol's text, or -1 */
};

struct bpe_bigram {
	int left, right;
	uint32_t rank;
	size_t size;
	int32_t result;
};

struct bpe_heap {
	struct bpe_bigram *v;
	size_t n, cap;
};

static bool bigram_before(const struct bpe_bigram *a, const struct bpe_bigram *b)
{
	return a->rank < b->rank || (a->rank == b->rank && a->left < b->left);
}

static int heap_push(struct bpe_heap *h, struct bpe_bigram b)
{
	size_t i;
	if (h->n == h->cap) {
		size_t cap = h->cap ? h->cap * 2 : 64;
		struct bpe_bigram *nv = realloc(h->v, cap * sizeof *nv);
		if (!nv)
			return st_error(-ENOMEM, "tokenize: out of memory");
		h->v = nv;
		h->cap = cap;
	}
	i = h->n++;
	while (i > 0) {
		size_t p = (i - 1) / 2;
		if (!bigram_before(&b, &h->v[p]))
			break;
		h->v[i] = h->v[p];
		i = p;
	}
	h->v[i] = b;
	return 0;
}

static struct bpe_bigram heap_pop(struct bpe_heap *h)
{
	struct bpe_bigram top = h->v[0], last = h->v[--h->n];
	size_t i = 0;
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, c;
		if (l >= h->n)
			break;
		c = (r < h->n && bigram_before(&h->v[r], &h->v[l])) ? r : l;
		if (!bigram_before(&h->v[c], &last))
			break;
		h->v[i] = h->v[c];
		i = c;
	}
	if (h->n)
		h->v[i] = last;
	return top;
}

static int add_bigram(const struct st_tokenizer *t, const struct bpe_sym *sym, int left, int right,
		      struct bpe_heap *h)
{
	uint64_t key;
	uint32_t i;
	int32_t a, b;
	if (left < 0 || right < 0 || t->n_merges == 0)
		return 0;
	a = sym[left].id;
	b = sym[right].id;
	if (a < 0 || b < 0)
		return 0;
	key = ((uint64_t)(uint32_t)a << 32) | (uint32_t)b;
	{
		uint64_t k = key;
		k ^= k >> 33;
		k *= 0xff51afd7ed558ccdull;
		k ^= k >> 33;
		i = (uint32_t)k & t->merge_mask;
	}
	while (t->merge_key[i] != key) {
		if (t->merge_key[i] == UINT64_MAX)
			return 0;
		i = (i + 1) & t->merge_mask;
	}
	return heap_push(h, (struct bpe_bigram){ left, right, t->merge_rank[i],
						 sym[left].n + sym[right].n, t->merge_result[i] });
}

struct bpe_work {
	char *word;                 /* byte-level encoded pre-token */
	struct bpe_sym *sym;
	struct bpe_heap heap;
};

static int bpe_word(const struct st_tokenizer *t, struct bpe_work *w, const char *raw, size_t rawlen,
		    struct st_tokvec *out)
{
	size_t n = 0, nsym = 0;
	int rc = 0;
	int32_t whole;

	for (size_t i = 0; i < rawlen; i++)
		n += st_tok_utf8_put(st_tok_byte_to_cp((uint8_t)raw[i]), w->word + n);

	if (t->ignore_merges && (whole = st_tok_find(t, w->word, n)) >= 0)
		return st_tokvec_push(out, whole);

	for (size_t off = 0; off < n;) {
		size_t l = ST_MIN(st_tok_utf8_len((uint8_t)w->word[off]), n - off);
		struct bpe_sym *s = &w->sym[nsym];
		s->off = off;
		s->n = l;
		s->prev = (int)nsym - 1;
		off += l;
		s->next = off == n ? -1 : (int)nsym + 1;
		s->id = st_tok_find(t, w->word + s->off, l);
		nsym++;
	}
	w->heap.n = 0;
	for (size_t i = 1; i < nsym && rc == 0; i++)
		rc = add_bigram(t, w->sym, (int)i - 1, (int)i, &w->heap);
	while (rc == 0 && w->heap.n > 0) {
		struct bpe_bigram b = heap_pop(&w->heap);
		struct bpe_sym *l = &w->sym[b.left], *r = &w->sym[b.right];
		if (l->n == 0 || r->n == 0 || l->n + r->n != b.size)
			continue;       /* outdated */
		l->n += r->n;
		l->id = b.result;
		r->n = 0;
		l->next = r->next;
		if (r->next >= 0)
			w->sym[r->next].prev = b.left;
		rc = add_bigram(t, w->sym, l->prev, b.left, &w->heap);
		if (rc == 0)
			rc = add_bigram(t, w->sym, b.left, l->next, &w->heap);
	}
	for (int i = nsym ? 0 : -1; rc == 0 && i != -1; i = w->sym[i].next) {
		const struct bpe_sym *s = &w->sym[i];
		if (s->id >= 0) {
			rc = st_tokvec_push(out, s->id);
			continue;
		}
		/* not a token: each byte of its text as a one-byte token, if
		 * there is one (llama.cpp drops the others) */
		for (size_t j = 0; j < s->n && rc == 0; j++) {
			int32_t id = st_tok_find(t, w->word + s->off + j, 1);
			if (id >= 0)
				rc = st_tokvec_push(out, id);
		}
	}
	return rc;
}

int st_tok_bpe_encode(const struct st_tokenizer *t, const char *text, size_t len, struct st_tokvec *out)
{
	struct pieces a = { 0 }, b = { 0 };
	struct bpe_work w = { 0 };
	pcre2_match_data *md = NULL;
	size_t maxlen = 0, wcap;
	int rc = 0;

	if (len == 0)
		return 0;
	if (st_mul_overflow_size(len, 2, &wcap))
		return st_error(-E2BIG, "tokenize: text of %zu bytes is too long", len);
	/* maximal runs of valid UTF-8 and of invalid bytes */
	for (size_t p = 0; p < len && rc == 0;) {
		size_t q = p;
		uint32_t cp;
		bool bad = st_tok_utf8_get(text + p, len - p, &cp) == 0;
		while (q < len) {
			size_t l = st_tok_utf8_get(text + q, len - q, &cp);
			if ((l == 0) != bad)
				break;
			q += l ? l : 1;
		}
		rc = pieces_push(&a, p, q - p, bad);
		p = q;
	}
	if (rc < 0)
		goto done;
	md = pcre2_match_data_create(2, NULL);
	if (!md) {
		rc = st_error(-ENOMEM, "tokenize: out of memory");
		goto done;
	}
	for (int r = 0; r < t->n_regex; r++) {
		struct pieces tmp;
		b.n = 0;
		if ((rc = regex_split(t->regex[r].code, md, text, &a, &b)) < 0)
			goto done;
		tmp = a;
		a = b;
		b = tmp;
	}
	for (size_t i = 0; i < a.n; i++)
		maxlen = ST_MAX(maxlen, a.v[i].len);
	w.word = malloc(2 * maxlen + 1);
	w.sym = malloc((2 * maxlen + 1) * sizeof *w.sym);
	if (!w.word || !w.sym) {
		rc = st_error(-ENOMEM, "tokenize: out of memory");
		goto done;
	}
	for (size_t i = 0; i < a.n && rc == 0; i++)
		rc = bpe_word(t, &w, text + a.v[i].off, a.v[i].len, out);
done:
	pcre2_match_data_free(md);
	free(a.v);
	free(b.v);
	free(w.word);
	free(w.sym);
	free(w.heap.v);
	return rc;
}
