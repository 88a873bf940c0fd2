/* tokenizer.c: the vocabulary (from GGUF metadata or plain arrays), string
 * look-ups, special-token matching, tokenize dispatch, decoding to bytes.
 * The merge algorithms are in tok_spm.c and tok_bpe.c.
 *
 * Behaviour follows llama.cpp (src/llama-vocab.cpp) so that its test
 * vectors come out identical; where llama.cpp would abort or throw on bad
 * metadata we return a negative code with a message instead. */
#include "tokenizer.h"

#include <stdlib.h>
#include <string.h>

#include "gguf.h"
#include "util.h"

/* ---- small helpers ------------------------------------------------------ */

int st_tokvec_push(struct st_tokvec *vec, int32_t id)
{
	if (vec->n == vec->cap) {
		size_t cap = vec->cap ? vec->cap * 2 : 64;
		int32_t *nv;
		if (cap > (size_t)INT32_MAX)
			return st_error(-E2BIG, "tokenize: more than %d tokens", INT32_MAX);
		nv = realloc(vec->v, cap * sizeof *nv);
		if (!nv)
			return st_error(-ENOMEM, "tokenize: out of memory for %zu token ids", cap);
		vec->v = nv;
		vec->cap = cap;
	}
	vec->v[vec->n++] = id;
	return 0;
}

size_t st_tok_utf8_len(uint8_t lead)
{
	static const uint8_t lookup[16] = { 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4 };
	return lookup[lead >> 4];
}

size_t st_tok_utf8_put(uint32_t cp, char *buf)
{
	unsigned char *b = (unsigned char *)buf;
	if (cp < 0x80) {
		b[0] = (unsigned char)cp;
		return 1;
	}
	if (cp < 0x800) {
		b[0] = (unsigned char)(0xC0 | (cp >> 6));
		b[1] = (unsigned char)(0x80 | (cp & 0x3F));
		return 2;
	}
	if (cp < 0x10000) {
		b[0] = (unsigned char)(0xE0 | (cp >> 12));
		b[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
		b[2] = (unsigned char)(0x80 | (cp & 0x3F));
		return 3;
	}
	b[0] = (unsigned char)(0xF0 | (cp >> 18));
	b[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
	b[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
	b[3] = (unsigned char)(0x80 | (cp & 0x3F));
	return 4;
}

size_t st_tok_utf8_get(const char *s, size_t n, uint32_t *cp)
{
	const unsigned char *b = (const unsigned char *)s;
	size_t need, i;
	uint32_t c;
	if (n == 0)
		return 0;
	if (b[0] < 0x80) {
		*cp = b[0];
		return 1;
	}
	if (b[0] >= 0xC2 && b[0] <= 0xDF) {
		need = 2;
		c = b[0] & 0x1F;
	} else if (b[0] >= 0xE0 && b[0] <= 0xEF) {
		need = 3;
		c = b[0] & 0x0F;
	} else if (b[0] >= 0xF0 && b[0] <= 0xF4) {
		need = 4;
		c = b[0] & 0x07;
	} else {
		return 0;
	}
	if (n < need)
		return 0;
	for (i = 1; i < need; i++) {
		if ((b[i] & 0xC0) != 0x80)
			return 0;
		c = (c << 6) | (b[i] & 0x3F);
	}
	if ((need == 3 && (c < 0x800 || (c >= 0xD800 && c <= 0xDFFF))) ||
	    (need == 4 && (c < 0x10000 || c > 0x10FFFF)))
		return 0;
	*cp = c;
	return need;
}

size_t st_utf8_incomplete_tail(const char *buf, size_t len)
{
	const unsigned char *b = (const unsigned char *)buf;
	size_t k;
	if (!buf)
		return 0;
	for (k = 1; k <= 3 && k <= len; k++) {
		unsigned char c = b[len - k];
		size_t need;
		if ((c & 0xC0) == 0x80)
			continue;       /* continuation byte: look further back */
		if (c >= 0xC2 && c <= 0xDF)
			need = 2;
		else if (c >= 0xE0 && c <= 0xEF)
			need = 3;
		else if (c >= 0xF0 && c <= 0xF4)
			need = 4;
		else
			return 0;       /* ASCII or a byte that starts nothing */
		return need > k ? k : 0;
	}
	return 0;
}

/* ---- string -> id hash map ---------------------------------------------- */

static uint64_t tok_hash(const char *s, size_t n)
{
	uint64_t h = 1469598103934665603ull;     /* FNV-1a 64 */
	for (size_t i = 0; i < n; i++) {
		h ^= (unsigned char)s[i];
		h *= 1099511628211ull;
	}
	return h ^ (h >> 29);
}

int32_t st_tok_find(const struct st_tokenizer *t, const char *s, size_t n)
{
	uint32_t i = (uint32_t)tok_hash(s, n) & t->hash_mask;
	for (;;) {
		int32_t id = t->hash[i];
		if (id < 0)
			return -1;
		if (t->len[id] == n && memcmp(t->pool + t->off[id], s, n) == 0)
			return id;
		i = (i + 1) & t->hash_mask;
	}
}

static uint64_t merge_hash(uint64_t key)
{
	key ^= key >> 33;
	key *= 0xff51afd7ed558ccdull;
	key ^= key >> 33;
	return key;
}

/* ---- creation ------------------------------------------------------------ */

static const char *const eot_texts[] = {
	"<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>",
	"<|end_of_text|>", "<EOT>", "_<EOT>", "[EOT]",
	"<\xef\xbd\x9c" "end\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>", "<end_of_utterance>",
};

void st_tokenizer_free(struct st_tokenizer *t)
{
	if (!t)
		return;
	if (t->kind == ST_TOKENIZER_BPE)
		st_tok_bpe_fini(t);
	free(t->pool);
	free(t->off);
	free(t->len);
	free(t->score);
	free(t->type);
	free(t->hash);
	free(t->merge_key);
	free(t->merge_rank);
	free(t->merge_result);
	free(t->special);
	free(t);
}

static uint32_t pow2_at_least(uint64_t n)
{
	uint32_t p = 16;
	while (p < n)
		p <<= 1;
	return p;
}

/* Resolve a special id: -1 none, -2 the default, else it must be in range. */
static int resolve_id(const char *what, int64_t v, int32_t def, uint32_t n, int32_t *out)
{
	if (v == -2) {
		*out = (def >= 0 && (uint32_t)def < n) ? def : -1;
		return 0;
	}
	if (v == -1) {
		*out = -1;
		return 0;
	}
	if (v < 0 || v >= (int64_t)n)
		return st_error(-EINVAL, "%s = %lld is outside the vocabulary (%u tokens)",
				what, (long long)v, n);
	*out = (int32_t)v;
	return 0;
}

static int build_merges(struct st_tokenizer *t, const struct st_tokenizer_vocab *v)
{
	uint32_t cap;
	char *cat = NULL;
	size_t cat_cap = 0;
	if (v->n_merges == 0)
		return 0;
	if (!v->merges)
		return st_error(-EINVAL, "tokenizer: %u merges but no merge strings", v->n_merges);
	cap = pow2_at_least((uint64_t)v->n_merges * 2);
	t->merge_mask = cap - 1;
	t->merge_key = malloc((size_t)cap * sizeof *t->merge_key);
	t->merge_rank = malloc((size_t)cap * sizeof *t->merge_rank);
	t->merge_result = malloc((size_t)cap * sizeof *t->merge_result);
	if (!t->merge_key || !t->merge_rank || !t->merge_result)
		return st_error(-ENOMEM, "tokenizer: out of memory for %u merges", v->n_merges);
	memset(t->merge_key, 0xFF, (size_t)cap * sizeof *t->merge_key);
	for (uint32_t r = 0; r < v->n_merges; r++) {
		const char *m = v->merges[r];
		size_t n = m ? strlen(m) : 0;
		const char *sp = n > 1 ? memchr(m + 1, ' ', n - 1) : NULL;
		int32_t a, b, res;
		uint64_t key;
		uint32_t i;
		size_t la, lb;
		if (!sp) {
			free(cat);
			return st_error(-EINVAL, "tokenizer.ggml.merges[%u] = '%.64s' has no space between two tokens",
					r, m ? m : "(null)");
		}
		la = (size_t)(sp - m);
		lb = n - la - 1;
		a = st_tok_find(t, m, la);
		b = st_tok_find(t, sp + 1, lb);
		if (a < 0 || b < 0) {
			free(cat);
			return st_error(-EINVAL, "tokenizer.ggml.merges[%u] = '%.64s' names a token that is not in the vocabulary ('%.*s')",
					r, m, (int)ST_MIN(a < 0 ? la : lb, 64), a < 0 ? m : sp + 1);
		}
		if (la + lb > cat_cap) {
			char *nc = realloc(cat, la + lb);
			if (!nc) {
				free(cat);
				return st_error(-ENOMEM, "tokenizer: out of memory");
			}
			cat = nc;
			cat_cap = la + lb;
		}
		memcpy(cat, m, la);
		memcpy(cat + la, sp + 1, lb);
		res = st_tok_find(t, cat, la + lb);
		key = ((uint64_t)(uint32_t)a << 32) | (uint32_t)b;
		i = (uint32_t)merge_hash(key) & t->merge_mask;
		while (t->merge_key[i] != UINT64_MAX && t->merge_key[i] != key)
			i = (i + 1) & t->merge_mask;
		if (t->merge_key[i] == key)
			continue;       /* duplicate pair: the first (lowest rank) wins */
		t->merge_key[i] = key;
		t->merge_rank[i] = r;
		t->merge_result[i] = res;
		t->n_merges++;
	}
	free(cat);
	return 0;
}

static void add_eog(struct st_tokenizer *t, int32_t id)
{
	if (id < 0 || t->n_eog >= (int)ST_ARRAY_SIZE(t->eog))
		return;
	for (int i = 0; i < t->n_eog; i++)
		if (t->eog[i] == id)
			return;
	t->eog[t->n_eog++] = id;
}

struct special_key {
	uint32_t len;
	int32_t id;
};

static int cmp_special(const void *pa, const void *pb)
{
	const struct special_key *a = pa, *b = pb;
	if (a->len != b->len)
		return a->len > b->len ? -1 : 1;
	return a->id < b->id ? -1 : a->id > b->id;
}

int st_tokenizer_create(const struct st_tokenizer_vocab *v, struct st_tokenizer **out)
{
	struct st_tokenizer *t;
	uint64_t pool_size = 0;
	uint32_t n, cap;
	int rc;

	*out = NULL;
	if (!v || (v->kind != ST_TOKENIZER_SPM && v->kind != ST_TOKENIZER_BPE))
		return st_error(-EINVAL, "tokenizer: unknown kind %d", v ? v->kind : -1);
	n = v->n_tokens;
	if (n == 0 || !v->tokens)
		return st_error(-EINVAL, "tokenizer: the vocabulary is empty");
	if (n > ST_GGUF_MAX_ARRAY)
		return st_error(-EINVAL, "tokenizer: %u tokens is more than the limit %u", n, ST_GGUF_MAX_ARRAY);

	t = calloc(1, sizeof *t);
	if (!t)
		return st_error(-ENOMEM, "tokenizer: out of memory");
	t->kind = v->kind;
	t->n_vocab = n;
	t->off = malloc((size_t)n * sizeof *t->off);
	t->len = malloc((size_t)n * sizeof *t->len);
	t->score = malloc((size_t)n * sizeof *t->score);
	t->type = malloc((size_t)n);
	if (!t->off || !t->len || !t->score || !t->type) {
		rc = st_error(-ENOMEM, "tokenizer: out of memory for %u tokens", n);
		goto err;
	}

	for (uint32_t i = 0; i < n; i++) {
		uint64_t l;
		if (!v->tokens[i]) {
			rc = st_error(-EINVAL, "tokenizer.ggml.tokens[%u] is missing", i);
			goto err;
		}
		l = v->token_lens ? v->token_lens[i] : strlen(v->tokens[i]);
		if (l == 0) {
			rc = st_error(-EINVAL, "tokenizer.ggml.tokens[%u] is an empty string", i);
			goto err;
		}
		if (l > ST_TOK_MAX_TOKEN_LEN) {
			rc = st_error(-EINVAL, "tokenizer.ggml.tokens[%u] is %llu bytes long (limit %u)",
				      i, (unsigned long long)l, ST_TOK_MAX_TOKEN_LEN);
			goto err;
		}
		t->off[i] = (uint32_t)pool_size;
		t->len[i] = (uint32_t)l;
		if (st_add_overflow_u64(pool_size, l + 1, &pool_size) || pool_size > UINT32_MAX) {
			rc = st_error(-EINVAL, "tokenizer: the token strings add up to more than 4 GiB");
			goto err;
		}
		t->score[i] = v->scores ? v->scores[i] : 0.0f;
		if (v->types && (v->types[i] < 0 || v->types[i] > ST_TOKEN_BYTE)) {
			rc = st_error(-EINVAL, "tokenizer.ggml.token_type[%u] = %d is not a token type (0..6)",
				      i, v->types[i]);
			goto err;
		}
		t->type[i] = v->types ? (uint8_t)v->types[i] : ST_TOKEN_NORMAL;
	}
	t->pool = malloc((size_t)pool_size);
	if (!t->pool) {
		rc = st_error(-ENOMEM, "tokenizer: out of memory for %llu bytes of token strings",
			      (unsigned long long)pool_size);
		goto err;
	}
	for (uint32_t i = 0; i < n; i++) {
		memcpy(t->pool + t->off[i], v->tokens[i], t->len[i]);
		t->pool[t->off[i] + t->len[i]] = '\0';
	}

	/* string -> id */
	cap = pow2_at_least((uint64_t)n * 2);
	t->hash_mask = cap - 1;
	t->hash = malloc((size_t)cap * sizeof *t->hash);
	if (!t->hash) {
		rc = st_error(-ENOMEM, "tokenizer: out of memory");
		goto err;
	}
	memset(t->hash, 0xFF, (size_t)cap * sizeof *t->hash);
	for (uint32_t i = 0; i < n; i++) {
		const char *s = t->pool + t->off[i];
		uint32_t h = (uint32_t)tok_hash(s, t->len[i]) & t->hash_mask;
		while (t->hash[h] >= 0) {
			int32_t o = t->hash[h];
			if (t->len[o] == t->len[i] && memcmp(t->pool + t->off[o], s, t->len[i]) == 0) {
				rc = st_error(-EINVAL, "tokenizer.ggml.tokens: '%.64s' appears twice (ids %d and %u)",
					      s, o, i);
				goto err;
			}
			h = (h + 1) & t->hash_mask;
		}
		t->hash[h] = (int32_t)i;
	}

	/* special ids, with llama.cpp's defaults */
	{
		bool spm = v->kind == ST_TOKENIZER_SPM;
		if ((rc = resolve_id("tokenizer.ggml.bos_token_id", v->bos, spm ? 1 : 11, n, &t->bos)) < 0 ||
		    (rc = resolve_id("tokenizer.ggml.eos_token_id", v->eos, spm ? 2 : 11, n, &t->eos)) < 0 ||
		    (rc = resolve_id("tokenizer.ggml.unknown_token_id", v->unk, spm ? 0 : -1, n, &t->unk)) < 0 ||
		    (rc = resolve_id("tokenizer.ggml.eot_token_id", v->eot, -1, n, &t->eot)) < 0 ||
		    (rc = resolve_id("tokenizer.ggml.eom_token_id", v->eom, -1, n, &t->eom)) < 0)
			goto err;
	}
	/* end of generation: eos, eot, eom, and every token named like an end
	 * (llama.cpp's list); those found by name become control tokens as
	 * llama.cpp makes them, so they print nothing and only match text
	 * with parse_special */
	add_eog(t, t->eos);
	add_eog(t, t->eot);
	add_eog(t, t->eom);
	for (size_t k = 0; k <= ST_ARRAY_SIZE(eot_texts); k++) {
		const char *name = k < ST_ARRAY_SIZE(eot_texts) ? eot_texts[k] : "<|eom_id|>";
		int32_t id = st_tok_find(t, name, strlen(name));
		if (id < 0)
			continue;
		if (k < ST_ARRAY_SIZE(eot_texts) && t->eot < 0)
			t->eot = id;
		if (k == ST_ARRAY_SIZE(eot_texts) && t->eom < 0)
			t->eom = id;
		if (t->type[id] == ST_TOKEN_NORMAL || t->type[id] == ST_TOKEN_UNDEFINED)
			t->type[id] = ST_TOKEN_CONTROL;
		add_eog(t, id);
	}

	t->add_space_prefix = v->add_space_prefix >= 0 ? v->add_space_prefix != 0
						       : v->kind == ST_TOKENIZER_SPM;

	if (v->kind == ST_TOKENIZER_BPE) {
		if ((rc = build_merges(t, v)) < 0)
			goto err;
		if ((rc = st_tok_bpe_init(t, v->pre)) < 0)
			goto err;
		/* byte-level: byte b is the token of its stand-in character */
		for (int b = 0; b < 256; b++) {
			char buf[4];
			size_t l = st_tok_utf8_put(st_tok_byte_to_cp((uint8_t)b), buf);
			t->byte_token[b] = st_tok_find(t, buf, l);
		}
	} else {
		static const char hex[] = "0123456789ABCDEF";
		t->ignore_merges = false;
		t->spm_split_words = st_tok_spm_can_split(t);
		for (int b = 0; b < 256; b++) {
			char buf[7] = { '<', '0', 'x', hex[b >> 4], hex[b & 15], '>', 0 };
			char c = (char)b;
			int32_t id = st_tok_find(t, buf, 6);
			if (id < 0)
				id = st_tok_find(t, &c, 1);
			t->byte_token[b] = id;
		}
	}

	/* add_bos default: SPM yes; BPE only for the llama3 family (set by
	 * st_tok_bpe_init through t->add_bos) */
	if (v->add_bos >= 0)
		t->add_bos = v->add_bos != 0;
	else if (v->kind == ST_TOKENIZER_SPM)
		t->add_bos = true;
	if (t->add_bos && t->bos < 0) {
		rc = st_error(-EINVAL, "tokenizer: add_bos_token is true but there is no bos_token_id");
		goto err;
	}

	/* tokens matched in the raw text, longest first */
	for (uint32_t i = 0; i < n; i++)
		if (t->type[i] == ST_TOKEN_CONTROL || t->type[i] == ST_TOKEN_USER_DEFINED ||
		    t->type[i] == ST_TOKEN_UNKNOWN)
			t->n_special++;
	if (t->n_special) {
		uint32_t k = 0;
		struct special_key *keys = malloc((size_t)t->n_special * sizeof *keys);
		t->special = malloc((size_t)t->n_special * sizeof *t->special);
		if (!t->special || !keys) {
			free(keys);
			rc = st_error(-ENOMEM, "tokenizer: out of memory");
			goto err;
		}
		for (uint32_t i = 0; i < n; i++)
			if (t->type[i] == ST_TOKEN_CONTROL || t->type[i] == ST_TOKEN_USER_DEFINED ||
			    t->type[i] == ST_TOKEN_UNKNOWN)
				keys[k++] = (struct special_key){ t->len[i], (int32_t)i };
		qsort(keys, t->n_special, sizeof *keys, cmp_special);
		for (uint32_t i = 0; i < t->n_special; i++)
			t->special[i] = keys[i].id;
		free(keys);
	}

	*out = t;
	return 0;
err:
	st_tokenizer_free(t);
	return rc;
}

/* ---- from GGUF ------------------------------------------------------------ */

/* A token id key: absent -> -2 (default); 0xFFFFFFFF or -1 -> -1 (none). */
static int gguf_token_id(const struct st_gguf *g, const char *key, int64_t *out)
{
	const struct st_gguf_kv *kv = st_gguf_find(g, key);
	*out = -2;
	if (!kv)
		return 0;
	switch (kv->type) {
	case ST_GGUF_U8: case ST_GGUF_U16: case ST_GGUF_U32: case ST_GGUF_U64:
		if (kv->v.u64 == UINT32_MAX || kv->v.u64 == UINT64_MAX)
			*out = -1;
		else
			*out = kv->v.u64 > INT64_MAX / 2 ? INT64_MAX / 2 : (int64_t)kv->v.u64;
		return 0;
	case ST_GGUF_I8: case ST_GGUF_I16: case ST_GGUF_I32: case ST_GGUF_I64:
		*out = kv->v.i64 == -1 ? -1 : (kv->v.i64 < 0 ? -3 : kv->v.i64);
		if (*out == -3)
			return st_error(-EINVAL, "%s = %lld is not a token id", key, (long long)kv->v.i64);
		return 0;
	default:
		return st_error(-EINVAL, "%s has type %s, expected an integer", key, st_gguf_vtype_name(kv->type));
	}
}

static int gguf_opt_bool(const struct st_gguf *g, const char *key, int *out)
{
	bool b;
	int rc = st_gguf_get_bool(g, key, &b);
	*out = -1;
	if (rc == -ENOENT)
		return 0;
	if (rc < 0)
		return rc;
	*out = b;
	return 0;
}

/* A per-token array of 4-byte elements (element type a or b) under key:
 * its n words, decoded little-endian, in a new array (*out; *elem_type
 * says which type).  0 with *out = NULL when the key is absent. */
static int gguf_token_words(const struct st_gguf *g, const char *key, uint32_t a, uint32_t b, const char *what,
			    uint64_t n, uint32_t **out, uint32_t *elem_type)
{
	const struct st_gguf_kv *kv = st_gguf_find(g, key);
	*out = NULL;
	if (!kv)
		return 0;
	if (kv->type != ST_GGUF_ARRAY || (kv->v.arr.type != a && kv->v.arr.type != b))
		return st_error(-EINVAL, "%s must be an array of %s", key, what);
	if (kv->v.arr.n != n)
		return st_error(-EINVAL, "%s has %llu entries but there are %llu tokens", key,
				(unsigned long long)kv->v.arr.n, (unsigned long long)n);
	uint32_t *w = malloc((size_t)(n ? n : 1) * sizeof *w);
	if (!w)
		return st_error(-ENOMEM, "tokenizer: out of memory");
	for (uint64_t i = 0; i < n; i++) {
		const unsigned char *p = (const unsigned char *)kv->v.arr.data + 4 * i;
		w[i] = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
	}
	*elem_type = kv->v.arr.type;
	*out = w;
	return 0;
}

int st_tokenizer_from_gguf(const struct st_gguf *g, struct st_tokenizer **out)
{
	struct st_tokenizer_vocab v;
	const char *model = NULL, *pre = NULL;
	const void *data;
	const struct st_gguf_string *toks, *mstr = NULL;
	uint64_t n;
	const char **tokens = NULL, **merges = NULL;
	uint32_t *lens = NULL;
	float *scores = NULL;
	int32_t *types = NULL;
	int rc;

	*out = NULL;
	memset(&v, 0, sizeof v);
	rc = st_gguf_get_str(g, "tokenizer.ggml.model", &model);
	if (rc == -ENOENT)
		return st_error(-ENOENT, "the file has no tokenizer (tokenizer.ggml.model is absent)");
	if (rc < 0)
		return rc;
	if (strcmp(model, "llama") == 0)
		v.kind = ST_TOKENIZER_SPM;
	else if (strcmp(model, "gpt2") == 0)
		v.kind = ST_TOKENIZER_BPE;
	else
		return st_error(-ENOTSUP, "tokenizer.ggml.model = '%.64s' is not supported (llama, gpt2)", model);

	rc = st_gguf_get_arr(g, "tokenizer.ggml.tokens", ST_GGUF_STRING, &n, &data);
	if (rc == -ENOENT)
		return st_error(-EINVAL, "tokenizer.ggml.tokens is missing");
	if (rc < 0)
		return rc;
	if (n == 0 || n > ST_GGUF_MAX_ARRAY)
		return st_error(-EINVAL, "tokenizer.ggml.tokens has %llu entries", (unsigned long long)n);
	toks = data;
	v.n_tokens = (uint32_t)n;

	tokens = malloc((size_t)n * sizeof *tokens);
	lens = malloc((size_t)n * sizeof *lens);
	if (!tokens || !lens) {
		rc = st_error(-ENOMEM, "tokenizer: out of memory");
		goto done;
	}
	for (uint64_t i = 0; i < n; i++) {
		tokens[i] = toks[i].data;
		if (toks[i].len > ST_TOK_MAX_TOKEN_LEN) {
			rc = st_error(-EINVAL, "tokenizer.ggml.tokens[%llu] is %llu bytes long (limit %u)",
				      (unsigned long long)i, (unsigned long long)toks[i].len, ST_TOK_MAX_TOKEN_LEN);
			goto done;
		}
		lens[i] = (uint32_t)toks[i].len;
	}
	v.tokens = tokens;
	v.token_lens = lens;

	uint32_t *words, et;
	rc = gguf_token_words(g, "tokenizer.ggml.scores", ST_GGUF_F32, ST_GGUF_I32, "f32", n, &words, &et);
	if (rc < 0)
		goto done;
	if (words) {
		scores = malloc((size_t)n * sizeof *scores);
		for (uint64_t i = 0; scores && i < n; i++) {
			if (et == ST_GGUF_F32)
				memcpy(&scores[i], &words[i], 4);
			else
				scores[i] = (float)(int32_t)words[i];
		}
		free(words);
		if (!scores) {
			rc = st_error(-ENOMEM, "tokenizer: out of memory");
			goto done;
		}
		v.scores = scores;
	}

	rc = gguf_token_words(g, "tokenizer.ggml.token_type", ST_GGUF_I32, ST_GGUF_U32, "i32", n, &words, &et);
	if (rc < 0)
		goto done;
	if (words) {
		types = (int32_t *)words;       /* same size; read as int32 */
		v.types = types;
	}

	if (v.kind == ST_TOKENIZER_BPE) {
		rc = st_gguf_get_arr(g, "tokenizer.ggml.merges", ST_GGUF_STRING, &n, &data);
		if (rc == -ENOENT) {
			rc = st_error(-EINVAL, "tokenizer.ggml.merges is missing (required for a gpt2 tokenizer)");
			goto done;
		}
		if (rc < 0)
			goto done;
		if (n > ST_GGUF_MAX_ARRAY) {
			rc = st_error(-EINVAL, "tokenizer.ggml.merges has %llu entries", (unsigned long long)n);
			goto done;
		}
		mstr = data;
		merges = malloc((size_t)(n ? n : 1) * sizeof *merges);
		if (!merges) {
			rc = st_error(-ENOMEM, "tokenizer: out of memory");
			goto done;
		}
		for (uint64_t i = 0; i < n; i++)
			merges[i] = mstr[i].data;
		v.n_merges = (uint32_t)n;
		v.merges = merges;
		rc = st_gguf_get_str(g, "tokenizer.ggml.pre", &pre);
		if (rc < 0 && rc != -ENOENT)
			goto done;
		v.pre = rc == 0 ? pre : NULL;
	}

	if ((rc = gguf_token_id(g, "tokenizer.ggml.bos_token_id", &v.bos)) < 0 ||
	    (rc = gguf_token_id(g, "tokenizer.ggml.eos_token_id", &v.eos)) < 0 ||
	    (rc = gguf_token_id(g, "tokenizer.ggml.unknown_token_id", &v.unk)) < 0 ||
	    (rc = gguf_token_id(g, "tokenizer.ggml.eot_token_id", &v.eot)) < 0 ||
	    (rc = gguf_token_id(g, "tokenizer.ggml.eom_token_id", &v.eom)) < 0)
		goto done;
	if (v.eot == -2)
		v.eot = -1;
	if (v.eom == -2)
		v.eom = -1;
	if ((rc = gguf_opt_bool(g, "tokenizer.ggml.add_bos_token", &v.add_bos)) < 0 ||
	    (rc = gguf_opt_bool(g, "tokenizer.ggml.add_space_prefix", &v.add_space_prefix)) < 0)
		goto done;

	rc = st_tokenizer_create(&v, out);
done:
	free(tokens);
	free(lens);
	free(scores);
	free(types);
	free(merges);
	return rc;
}

/* ---- tokenize -------------------------------------------------------------- */

struct tok_frag {
	size_t off, len;
	int32_t tok;                /* -1: raw text */
};

/* Split the text at every occurrence of the special tokens in play
 * (llama.cpp's tokenizer_st_partition: longest token first, each token
 * splits every raw fragment left to right). */
static int partition(const struct st_tokenizer *t, const char *text, size_t len, bool parse_special,
		     struct tok_frag **frags, size_t *n_frags)
{
	struct tok_frag *f = malloc(sizeof *f), *nf = NULL;
	size_t nfr = 1;
	if (!f)
		return st_error(-ENOMEM, "tokenize: out of memory");
	f[0] = (struct tok_frag){ 0, len, -1 };
	for (uint32_t s = 0; s < t->n_special; s++) {
		int32_t id = t->special[s];
		const char *stext = t->pool + t->off[id];
		size_t slen = t->len[id], cnt = 0, k = 0;
		if (!parse_special && t->type[id] != ST_TOKEN_USER_DEFINED)
			continue;
		/* count the pieces first */
		for (size_t i = 0; i < nfr; i++) {
			const char *p, *base;
			size_t off, rem;
			cnt++;
			if (f[i].tok >= 0)
				continue;
			base = text + f[i].off;
			off = 0;
			rem = f[i].len;
			while (rem >= slen && (p = memmem(base + off, rem, stext, slen))) {
				size_t at = (size_t)(p - base);
				cnt += 2;
				rem -= at - off + slen;
				off = at + slen;
			}
		}
		if (cnt == nfr)
			continue;
		nf = malloc(cnt * sizeof *nf);
		if (!nf) {
			free(f);
			return st_error(-ENOMEM, "tokenize: out of memory");
		}
		for (size_t i = 0; i < nfr; i++) {
			const char *p, *base;
			size_t off, rem;
			if (f[i].tok >= 0) {
				nf[k++] = f[i];
				continue;
			}
			base = text + f[i].off;
			off = 0;
			rem = f[i].len;
			while (rem >= slen && (p = memmem(base + off, rem, stext, slen))) {
				size_t at = (size_t)(p - base);
				if (at > off)
					nf[k++] = (struct tok_frag){ f[i].off + off, at - off, -1 };
				nf[k++] = (struct tok_frag){ f[i].off + at, slen, id };
				rem -= at - off + slen;
				off = at + slen;
			}
			if (rem > 0)
				nf[k++] = (struct tok_frag){ f[i].off + off, rem, -1 };
		}
		free(f);
		f = nf;
		nfr = k;
	}
	*frags = f;
	*n_frags = nfr;
	return 0;
}

static int tokenize_vec(const struct st_tokenizer *t, const char *text, size_t len, bool add_bos,
			bool parse_special, struct st_tokvec *vec)
{
	struct tok_frag *frags = NULL;
	size_t n_frags = 0;
	bool prev_special = true;       /* SPM: dummy prefix before the first text */
	int rc = 0;

	if (add_bos) {
		if (t->bos < 0)
			return st_error(-EINVAL, "tokenize: BOS requested but the vocabulary has no BOS token");
		if ((rc = st_tokvec_push(vec, t->bos)) < 0)
			return rc;
	}
	if (len == 0)
		return 0;
	if (!text)
		return st_error(-EINVAL, "tokenize: text is NULL");
	if ((rc = partition(t, text, len, parse_special, &frags, &n_frags)) < 0)
		return rc;
	for (size_t i = 0; i < n_frags && rc == 0; i++) {
		if (frags[i].tok >= 0) {
			rc = st_tokvec_push(vec, frags[i].tok);
			prev_special = true;
			continue;
		}
		if (t->kind == ST_TOKENIZER_SPM)
			rc = st_tok_spm_encode(t, text + frags[i].off, frags[i].len,
					       t->add_space_prefix && prev_special, vec);
		else
			rc = st_tok_bpe_encode(t, text + frags[i].off, frags[i].len, vec);
		prev_special = false;
	}
	free(frags);
	return rc;
}

int st_tokenize_special(const struct st_tokenizer *t, const char *text, size_t len, bool add_bos,
			bool parse_special, int32_t *out, int max_out)
{
	struct st_tokvec vec = { 0 };
	int rc;
	if (!t)
		return st_error(-EINVAL, "tokenize: no tokenizer");
	rc = tokenize_vec(t, text, len, add_bos, parse_special, &vec);
	if (rc < 0) {
		free(vec.v);
		return rc;
	}
	if (vec.n > (size_t)INT32_MAX) {
		free(vec.v);
		return st_error(-E2BIG, "tokenize: %zu tokens do not fit an int", vec.n);
	}
	rc = (int)vec.n;
	if (out) {
		size_t m = max_out > 0 ? (size_t)max_out : 0;
		if (vec.n)
			memcpy(out, vec.v, ST_MIN(m, vec.n) * sizeof *out);
		if (vec.n > m)
			rc = st_error(-ENOSPC, "tokenize: the text needs %zu tokens, the buffer holds %d",
				      vec.n, max_out);
	}
	free(vec.v);
	return rc;
}

int st_tokenize(const struct st_tokenizer *t, const char *text, size_t len, bool add_bos,
		int32_t *out, int max_out)
{
	return st_tokenize_special(t, text, len, add_bos, false, out, max_out);
}

/* ---- decode ---------------------------------------------------------------- */

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* The piece of token id into dst (NULL: only measure); never longer than
 * the token's string. */
static size_t piece(const struct st_tokenizer *t, int32_t id, char *dst)
{
	const char *s = t->pool + t->off[id];
	size_t n = t->len[id], k = 0;
	switch (t->type[id]) {
	case ST_TOKEN_USER_DEFINED:
		if (dst)
			memcpy(dst, s, n);
		return n;
	case ST_TOKEN_BYTE:
		if (n == 6 && s[0] == '<' && s[1] == '0' && s[2] == 'x' && s[5] == '>' &&
		    hexval(s[3]) >= 0 && hexval(s[4]) >= 0) {
			if (dst)
				dst[0] = (char)(hexval(s[3]) * 16 + hexval(s[4]));
			return 1;
		}
		if (dst)
			memcpy(dst, s, n);
		return n;
	case ST_TOKEN_NORMAL:
		break;
	default:                    /* control, unknown, unused, undefined */
		return 0;
	}
	if (t->kind == ST_TOKENIZER_SPM) {
		for (size_t i = 0; i < n;) {
			if (i + 3 <= n && (unsigned char)s[i] == 0xE2 && (unsigned char)s[i + 1] == 0x96 &&
			    (unsigned char)s[i + 2] == 0x81) {
				if (dst)
					dst[k] = ' ';
				k++;
				i += 3;
			} else {
				if (dst)
					dst[k] = s[i];
				k++;
				i++;
			}
		}
		return k;
	}
	/* byte-level BPE: every character stands for one byte; characters
	 * outside the map are copied as they are */
	for (size_t i = 0; i < n;) {
		uint32_t cp;
		size_t l = st_tok_utf8_get(s + i, n - i, &cp);
		int b = l ? st_tok_cp_to_byte(cp) : -1;
		if (b >= 0) {
			if (dst)
				dst[k] = (char)b;
			k++;
			i += l;
		} else {
			size_t m = l ? l : 1;
			if (dst)
				memcpy(dst + k, s + i, m);
			k += m;
			i += m;
		}
	}
	return k;
}

int st_token_to_piece(const struct st_tokenizer *t, int32_t id, char *buf, size_t size)
{
	size_t n;
	if (!t || id < 0 || (uint32_t)id >= t->n_vocab)
		return st_error(-EINVAL, "token_to_piece: id %d is outside the vocabulary (%u tokens)",
				id, t ? t->n_vocab : 0);
	n = piece(t, id, NULL);
	if (!buf)
		return (int)n;
	if (n > size)
		return st_error(-ENOSPC, "token_to_piece: token %d needs %zu bytes, the buffer holds %zu",
				id, n, size);
	if (size >= t->len[id]) {
		piece(t, id, buf);
	} else {
		char *tmp = malloc(t->len[id]);
		if (!tmp)
			return st_error(-ENOMEM, "token_to_piece: out of memory");
		piece(t, id, tmp);
		memcpy(buf, tmp, n);
		free(tmp);
	}
	return (int)n;
}

int st_detokenize(const struct st_tokenizer *t, const int32_t *ids, int n, bool strip_prefix_space,
		  char *buf, size_t size)
{
	size_t total = 0;
	bool strip = strip_prefix_space && t && t->add_space_prefix;
	int i = 0;
	if (!t || n < 0 || (n > 0 && !ids))
		return st_error(-EINVAL, "detokenize: bad arguments");
	if (strip_prefix_space && n > 0 && ids[0] == t->bos && t->bos >= 0)
		i = 1;
	/* measure */
	for (int j = i; j < n; j++) {
		if (ids[j] < 0 || (uint32_t)ids[j] >= t->n_vocab)
			return st_error(-EINVAL, "detokenize: ids[%d] = %d is outside the vocabulary (%u tokens)",
					j, ids[j], t->n_vocab);
		total += t->len[ids[j]];    /* an upper bound; exact below */
	}
	if (total > (size_t)INT32_MAX - 1)
		return st_error(-E2BIG, "detokenize: text too long");
	{
		char *tmp = malloc(total + 1);
		size_t k = 0;
		if (!tmp)
			return st_error(-ENOMEM, "detokenize: out of memory");
		for (; i < n; i++) {
			size_t m = piece(t, ids[i], tmp + k);
			if (strip && m > 0) {
				if (tmp[k] == ' ') {
					memmove(tmp + k, tmp + k + 1, m - 1);
					m--;
				}
				strip = false;
			}
			k += m;
		}
		tmp[k] = '\0';
		if (buf) {
			if (size <= k) {
				free(tmp);
				return st_error(-ENOSPC, "detokenize: the text needs %zu bytes + NUL, the buffer holds %zu",
						k, size);
			}
			memcpy(buf, tmp, k + 1);
		}
		free(tmp);
		return (int)k;
	}
}

/* ---- accessors ------------------------------------------------------------- */

uint32_t st_tokenizer_n_vocab(const struct st_tokenizer *t) { return t ? t->n_vocab : 0; }
int st_tokenizer_kind(const struct st_tokenizer *t) { return t ? t->kind : -EINVAL; }
int32_t st_tokenizer_bos(const struct st_tokenizer *t) { return t ? t->bos : -1; }
int32_t st_tokenizer_eos(const struct st_tokenizer *t) { return t ? t->eos : -1; }
bool st_tokenizer_add_bos(const struct st_tokenizer *t) { return t && t->add_bos; }

bool st_tokenizer_is_eog(const struct st_tokenizer *t, int32_t id)
{
	if (!t || id < 0)
		return false;
	for (int i = 0; i < t->n_eog; i++)
		if (t->eog[i] == id)
			return true;
	return false;
}

const char *st_tokenizer_token_text(const struct st_tokenizer *t, int32_t id)
{
	if (!t || id < 0 || (uint32_t)id >= t->n_vocab)
		return NULL;
	return t->pool + t->off[id];
}

int st_tokenizer_token_type(const struct st_tokenizer *t, int32_t id)
{
	if (!t || id < 0 || (uint32_t)id >= t->n_vocab)
		return -EINVAL;
	return t->type[id];
}

float st_tokenizer_token_score(const struct st_tokenizer *t, int32_t id)
{
	if (!t || id < 0 || (uint32_t)id >= t->n_vocab)
		return 0.0f;
	return t->score[id];
}
