/* tok_spm.c: SentencePiece-style BPE ("llama" vocabularies) and a synthetic
 * SPM vocabulary for generated models.
 *
 * The algorithm is llama.cpp's llm_tokenizer_spm: escape ' ' to U+2581,
 * optionally prepend it once (the dummy prefix), split into UTF-8
 * characters, then repeatedly merge the adjacent pair whose concatenation
 * is a vocabulary token with the highest score (the leftmost on ties),
 * using a priority queue with lazy deletion.  Symbols that are not tokens
 * at the end fall back to <0xNN> byte tokens. */
#include "tokenizer.h"

#include <stdlib.h>
#include <string.h>

#include "util.h"

struct spm_sym {
	int prev, next;
	size_t off, n;
};

struct spm_bigram {
	int left, right;
	float score;
	size_t size;
};

struct spm_heap {
	struct spm_bigram *v;
	size_t n, cap;
};

/* a comes out of the queue before b */
static bool bigram_before(const struct spm_bigram *a, const struct spm_bigram *b)
{
	return a->score > b->score || (a->score == b->score && a->left < b->left);
}

static int heap_push(struct spm_heap *h, struct spm_bigram b)
{
	size_t i;
	if (h->n == h->cap) {
		size_t cap = h->cap ? h->cap * 2 : 64;
		struct spm_bigram *nv = realloc(h->v, cap * sizeof *nv);
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

static struct spm_bigram heap_pop(struct spm_heap *h)
{
	struct spm_bigram top = h->v[0], last = h->v[--h->n];
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

static int try_add_bigram(const struct st_tokenizer *t, const char *text, const struct spm_sym *sym,
			  int left, int right, struct spm_heap *h)
{
	int32_t id;
	size_t n;
	if (left < 0 || right < 0)
		return 0;
	n = sym[left].n + sym[right].n;
	id = st_tok_find(t, text + sym[left].off, n);
	if (id < 0)
		return 0;
	return heap_push(h, (struct spm_bigram){ left, right, t->score[id], n });
}

/* Merge the characters of s[a..b) and emit their tokens. */
static int spm_merge(const struct st_tokenizer *t, const char *s, size_t a, size_t b, struct spm_sym *sym,
		     struct spm_heap *heap, struct st_tokvec *out)
{
	size_t nsym = 0;
	int rc = 0;

	/* one symbol per UTF-8 character (invalid bytes are characters too) */
	for (size_t off = a; off < b;) {
		size_t l = ST_MIN(st_tok_utf8_len((uint8_t)s[off]), b - off);
		sym[nsym].off = off;
		sym[nsym].n = l;
		sym[nsym].prev = (int)nsym - 1;
		off += l;
		sym[nsym].next = off == b ? -1 : (int)nsym + 1;
		nsym++;
	}
	if (nsym == 0)
		return 0;
	heap->n = 0;
	for (size_t i = 1; i < nsym && rc == 0; i++)
		rc = try_add_bigram(t, s, sym, (int)i - 1, (int)i, heap);

	while (rc == 0 && heap->n > 0) {
		struct spm_bigram bg = heap_pop(heap);
		struct spm_sym *l = &sym[bg.left], *r = &sym[bg.right];
		/* stale: one side was merged away or grew since it was queued */
		if (l->n == 0 || r->n == 0 || l->n + r->n != bg.size)
			continue;
		l->n += r->n;
		r->n = 0;
		l->next = r->next;
		if (r->next >= 0)
			sym[r->next].prev = bg.left;
		rc = try_add_bigram(t, s, sym, l->prev, bg.left, heap);
		if (rc == 0)
			rc = try_add_bigram(t, s, sym, bg.left, l->next, heap);
	}

	for (int i = 0; rc == 0 && i != -1; i = sym[i].next) {
		int32_t id = st_tok_find(t, s + sym[i].off, sym[i].n);
		if (id >= 0) {
			rc = st_tokvec_push(out, id);
			continue;
		}
		for (size_t j = 0; j < sym[i].n && rc == 0; j++) {
			uint8_t byte = (uint8_t)s[sym[i].off + j];
			int32_t bt = t->byte_token[byte];
			if (bt < 0)
				bt = t->unk;
			if (bt < 0)
				rc = st_error(-EINVAL, "tokenize: byte 0x%02X has no token (<0x%02X>) and there is no <unk>",
					      byte, byte);
			else
				rc = st_tokvec_push(out, bt);
		}
	}
	return rc;
}

static bool is_esc(const char *s, size_t n, size_t p)
{
	return p + 3 <= n && (unsigned char)s[p] == 0xE2 && (unsigned char)s[p + 1] == 0x96 &&
	       (unsigned char)s[p + 2] == 0x81;
}

bool st_tok_spm_can_split(const struct st_tokenizer *t)
{
	for (uint32_t i = 0; i < t->n_vocab; i++) {
		const char *s = t->pool + t->off[i];
		size_t n = t->len[i];
		for (size_t p = 0; p < n;) {
			uint32_t cp;
			size_t l = st_tok_utf8_get(s + p, n - p, &cp);
			if (l == 0)
				return false;       /* not UTF-8: make no assumption */
			if (cp == 0x2581 && p > 0 && (p < 3 || !is_esc(s, n, p - 3)))
				return false;
			p += l;
		}
	}
	return true;
}

int st_tok_spm_encode(const struct st_tokenizer *t, const char *text, size_t len, bool add_prefix,
		      struct st_tokvec *out)
{
	static const char esc[3] = { (char)0xE2, (char)0x96, (char)0x81 };   /* U+2581 */
	struct spm_heap heap = { 0 };
	struct spm_sym *sym = NULL;
	char *s = NULL;
	size_t n = 0, cap;
	int rc = 0;

	/* escape: at most 3 bytes per input byte, plus the prefix */
	if (st_mul_overflow_size(len, 3, &cap) || st_add_overflow_size(cap, 3, &cap))
		return st_error(-E2BIG, "tokenize: text of %zu bytes is too long", len);
	s = malloc(cap);
	if (!s)
		return st_error(-ENOMEM, "tokenize: out of memory for %zu bytes", cap);
	if (add_prefix) {
		memcpy(s, esc, 3);
		n = 3;
	}
	for (size_t i = 0; i < len; i++) {
		if (text[i] == ' ') {
			memcpy(s + n, esc, 3);
			n += 3;
		} else {
			s[n++] = text[i];
		}
	}
	if (n == 0)
		goto done;
	if (n > (size_t)INT32_MAX) {
		rc = st_error(-E2BIG, "tokenize: text of %zu bytes is too long", len);
		goto done;
	}
	sym = malloc(n * sizeof *sym);
	if (!sym) {
		rc = st_error(-ENOMEM, "tokenize: out of memory");
		goto done;
	}
	if (!t->spm_split_words) {
		rc = spm_merge(t, s, 0, n, sym, &heap, out);
	} else {
		/* No token has a ▁ right after another character (and all are
		 * valid UTF-8), so no merge crosses the start of a run of ▁:
		 * each word merges on its own, with the same result as one
		 * queue over the whole text and a far smaller queue. */
		size_t a = 0;
		bool prev_esc = false;
		for (size_t p = 0; p < n && rc == 0;) {
			size_t l = ST_MIN(st_tok_utf8_len((uint8_t)s[p]), n - p);
			bool cur_esc = l == 3 && is_esc(s, n, p);
			if (cur_esc && !prev_esc && p > 0) {
				rc = spm_merge(t, s, a, p, sym, &heap, out);
				a = p;
			}
			prev_esc = cur_esc;
			p += l;
		}
		if (rc == 0)
			rc = spm_merge(t, s, a, n, sym, &heap, out);
	}
done:
	free(heap.v);
	free(sym);
	free(s);
	return rc;
}

/* ---- synthetic vocabulary ------------------------------------------------ */

/* Frequent TinyStories/English words; each is added with a leading U+2581
 * ("▁") together with all its prefixes, so the merges can reach it. */
static const char *const synth_words[] = {
	"the", "a", "and", "to", "was", "he", "she", "it", "of", "in", "his", "her", "they", "with",
	"you", "that", "said", "day", "on", "for", "is", "big", "saw", "Once", "upon", "time",
	"there", "little", "girl", "boy", "named", "Lily", "Tim", "Tom", "Sue", "Ben", "Mia", "Max",
	"happy", "very", "play", "wanted", "friend", "friends", "mom", "dad", "had", "were", "not",
	"so", "but", "then", "one", "all", "her", "out", "up", "at", "be", "can", "what", "do",
	"went", "go", "help", "like", "liked", "loved", "love", "park", "tree", "ball", "dog", "cat",
	"bird", "fun", "They", "She", "He", "The", "It", "One", "Lily's", "toy", "toys", "house",
	"home", "sun", "sky", "blue", "red", "green", "nice", "kind", "good", "sad", "smiled",
	"looked", "found", "came", "made", "make", "see", "look", "have", "are", "this", "an", "from",
	"into", "back", "would", "could", "when", "We", "I", "me", "my", "your", "too", "no", "yes",
	"asked", "told", "started", "feel", "felt", "thought", "know", "new", "many", "some",
	"every", "again", "always", "together", "learned", "lesson", "careful", "because", "after",
	"water", "food", "cake", "car", "box", "small", "bed", "garden", "flower", "flowers", "best",
	"run", "ran", "jump", "jumped", "walked", "around", "away", "other", "came", "get", "got",
	"hug", "thank", "Thank", "lot", "laughed", "cried", "fish", "bear", "bunny", "animals",
};
static const char *const synth_suffixes[] = {
	"ed", "ing", "er", "ly", "s", "es", "'s", "y", "en", "le", "est", "ful",
};

struct synth {
	char **tok;
	float *score;
	int32_t *type;
	uint32_t n, cap;
	uint32_t *set;              /* hash set of indices + 1 (0 = empty) */
	uint32_t set_mask;
	int32_t n_merges;
};

static uint32_t synth_hash(const char *s)
{
	uint32_t h = 2166136261u;
	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 16777619u;
	}
	return h;
}

/* Add a token unless present or full; returns 0, or -ENOMEM. */
static int synth_add(struct synth *sy, const char *s, size_t n, float score, int32_t type)
{
	char *c;
	uint32_t h;
	if (sy->n >= sy->cap)
		return 0;
	c = malloc(n + 1);
	if (!c)
		return -ENOMEM;
	memcpy(c, s, n);
	c[n] = '\0';
	h = synth_hash(c) & sy->set_mask;
	while (sy->set[h]) {
		if (strcmp(sy->tok[sy->set[h] - 1], c) == 0) {
			free(c);
			return 0;
		}
		h = (h + 1) & sy->set_mask;
	}
	sy->set[h] = sy->n + 1;
	sy->tok[sy->n] = c;
	sy->score[sy->n] = score;
	sy->type[sy->n] = type;
	sy->n++;
	return 0;
}

/* s and each of its prefixes of at least two characters, as merges */
static int synth_add_closure(struct synth *sy, const char *s, size_t n)
{
	size_t nchars = 0;
	for (size_t k = 0; k < n;) {
		k += ST_MIN(st_tok_utf8_len((uint8_t)s[k]), n - k);
		if (++nchars >= 2) {
			int rc = synth_add(sy, s, k, (float)-(sy->n_merges + 1), ST_TOKEN_NORMAL);
			if (rc < 0)
				return rc;
			sy->n_merges++;
		}
	}
	return 0;
}

void st_tokenizer_synth_free(uint32_t n_vocab, char **tokens, float *scores, int32_t *types)
{
	if (tokens)
		for (uint32_t i = 0; i < n_vocab; i++)
			free(tokens[i]);
	free(tokens);
	free(scores);
	free(types);
}

int st_tokenizer_synth_spm(uint32_t n_vocab, char ***tokens, float **scores, int32_t **types)
{
	static const char hex[] = "0123456789ABCDEF";
	static const char esc[] = "\xe2\x96\x81";
	struct synth sy = { 0 };
	char buf[64];
	int rc = 0;

	*tokens = NULL;
	*scores = NULL;
	*types = NULL;
	if (n_vocab < 260 || n_vocab > (1u << 24))
		return st_error(-EINVAL, "synthetic vocabulary: n_vocab = %u (must be 260..%u)", n_vocab, 1u << 24);
	sy.cap = n_vocab;
	sy.tok = calloc(n_vocab, sizeof *sy.tok);
	sy.score = calloc(n_vocab, sizeof *sy.score);
	sy.type = calloc(n_vocab, sizeof *sy.type);
	sy.set_mask = 1;
	while (sy.set_mask < 2 * n_vocab)
		sy.set_mask <<= 1;
	sy.set = calloc(sy.set_mask, sizeof *sy.set);
	sy.set_mask -= 1;
	if (!sy.tok || !sy.score || !sy.type || !sy.set) {
		rc = -ENOMEM;
		goto out;
	}

	rc |= synth_add(&sy, "<unk>", 5, 0.0f, ST_TOKEN_UNKNOWN);
	rc |= synth_add(&sy, "<s>", 3, 0.0f, ST_TOKEN_CONTROL);
	rc |= synth_add(&sy, "</s>", 4, 0.0f, ST_TOKEN_CONTROL);
	for (int b = 0; b < 256 && rc == 0; b++) {
		char bt[7] = { '<', '0', 'x', hex[b >> 4], hex[b & 15], '>', 0 };
		rc = synth_add(&sy, bt, 6, 0.0f, ST_TOKEN_BYTE);
	}
	/* single characters: ▁ and printable ASCII (never the result of a
	 * merge, so their scores do not matter; keep them low) */
	if (rc == 0)
		rc = synth_add(&sy, esc, 3, -1e6f, ST_TOKEN_NORMAL);
	for (int c = '!'; c <= '~' && rc == 0; c++) {
		char ch = (char)c;
		rc = synth_add(&sy, &ch, 1, -1e6f - (float)c, ST_TOKEN_NORMAL);
	}
	for (size_t w = 0; w < ST_ARRAY_SIZE(synth_words) && rc == 0; w++) {
		size_t l = strlen(synth_words[w]);
		memcpy(buf, esc, 3);
		memcpy(buf + 3, synth_words[w], l);
		rc = synth_add_closure(&sy, buf, l + 3);
	}
	for (size_t w = 0; w < ST_ARRAY_SIZE(synth_suffixes) && rc == 0; w++)
		rc = synth_add_closure(&sy, synth_suffixes[w], strlen(synth_suffixes[w]));
	/* filler: lowercase strings of 2, 3, ... letters, with and without ▁ */
	for (size_t len = 2; sy.n < sy.cap && rc == 0 && len < 16; len++) {
		uint64_t count = 1;
		for (size_t k = 0; k < len; k++)
			count *= 26;
		for (uint64_t i = 0; i < count && sy.n < sy.cap && rc == 0; i++) {
			uint64_t x = i;
			for (size_t k = 0; k < len; k++) {
				buf[3 + len - 1 - k] = (char)('a' + x % 26);
				x /= 26;
			}
			memcpy(buf, esc, 3);
			rc = synth_add(&sy, buf, len + 3, (float)-(++sy.n_merges), ST_TOKEN_NORMAL);
			if (rc == 0)
				rc = synth_add(&sy, buf + 3, len, (float)-(++sy.n_merges), ST_TOKEN_NORMAL);
		}
	}
out:
	free(sy.set);
	if (rc < 0 || sy.n != n_vocab) {
		st_tokenizer_synth_free(n_vocab, sy.tok, sy.score, sy.type);
		return rc < 0 ? st_error(-ENOMEM, "synthetic vocabulary: out of memory")
			      : st_error(-EINVAL, "synthetic vocabulary: only %u of %u tokens made", sy.n, n_vocab);
	}
	*tokens = sy.tok;
	*scores = sy.score;
	*types = sy.type;
	return 0;
}
