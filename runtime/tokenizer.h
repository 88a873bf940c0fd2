/* tokenizer.h: private parts of the tokenizer shared by tokenizer.c (vocab,
 * look-ups, special tokens, decoding), tok_spm.c (SentencePiece merges,
 * synthetic vocabulary) and tok_bpe.c (byte-level BPE, PCRE2 pre-tokenizer).
 * The public interface is the tokenizer section of strata.h. */
#ifndef ST_TOKENIZER_H
#define ST_TOKENIZER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "strata.h"

#define ST_TOK_MAX_TOKEN_LEN 65536u     /* bytes per vocabulary string */
#define ST_TOK_MAX_REGEX 4

/* A growable list of token ids. */
struct st_tokvec {
	int32_t *v;
	size_t n, cap;
};
int st_tokvec_push(struct st_tokvec *vec, int32_t id);

/* One compiled pre-tokenizer regex (pcre2_code *, kept opaque here). */
struct st_tok_regex {
	void *code;
};

struct st_tokenizer {
	int kind;                   /* enum st_tokenizer_kind */
	uint32_t n_vocab;
	char *pool;                 /* every token string, NUL-terminated */
	uint32_t *off;              /* [n_vocab] offset of the string in pool */
	uint32_t *len;              /* [n_vocab] its length */
	float *score;               /* [n_vocab] */
	uint8_t *type;              /* [n_vocab] enum st_token_type */

	/* string -> id: open addressing, linear probing, -1 = empty slot */
	int32_t *hash;
	uint32_t hash_mask;

	/* BPE merges: (left id, right id) -> rank, with the merged token id
	 * (or -1 if the concatenation is not in the vocabulary) */
	uint64_t *merge_key;        /* [merge_mask + 1]; UINT64_MAX = empty */
	uint32_t *merge_rank;
	int32_t *merge_result;
	uint32_t merge_mask;
	uint32_t n_merges;

	int32_t bos, eos, unk, eot, eom;   /* -1 = none */
	int32_t eog[16];            /* end-of-generation ids: eos, eot, eom and
				   * every token named like one (llama.cpp) */
	int n_eog;
	bool add_bos, add_space_prefix, ignore_merges;
	bool spm_split_words;       /* SPM: merges never cross the start of a ▁ run */

	int32_t byte_token[256];    /* byte fallback (SPM) / byte-level char (BPE); -1 none */

	/* tokens matched in the raw text before the model runs, longest
	 * first: user-defined always, control/unknown with parse_special */
	int32_t *special;
	uint32_t n_special;

	char pre[32];               /* BPE pre-tokenizer name in use */
	struct st_tok_regex regex[ST_TOK_MAX_REGEX];
	int n_regex;
};

/* Look up a string; -1 if absent. */
int32_t st_tok_find(const struct st_tokenizer *t, const char *s, size_t n);

/* SPM: tokenize one fragment (raw text; the caller has not escaped it);
 * decide whether the vocabulary allows word-by-word merging. */
bool st_tok_spm_can_split(const struct st_tokenizer *t);
int st_tok_spm_encode(const struct st_tokenizer *t, const char *text, size_t len, bool add_prefix,
		      struct st_tokvec *out);

/* BPE: set up the pre-tokenizer (regexes, byte map, flags) from t->pre;
 * release it; tokenize one fragment. */
int st_tok_bpe_init(struct st_tokenizer *t, const char *pre);
void st_tok_bpe_fini(struct st_tokenizer *t);
int st_tok_bpe_encode(const struct st_tokenizer *t, const char *text, size_t len, struct st_tokvec *out);
/* GPT-2 bytes_to_unicode: the code point standing for byte b, and back
 * (-1 if cp stands for no byte). */
uint32_t st_tok_byte_to_cp(uint8_t b);
int st_tok_cp_to_byte(uint32_t cp);

/* UTF-8 helpers: length of the sequence a lead byte starts (1 for invalid
 * bytes, as llama.cpp's unicode_len_utf8); encode a code point (returns
 * bytes written, buf >= 4); decode one code point (returns bytes used, 0
 * on an invalid sequence). */
size_t st_tok_utf8_len(uint8_t lead);
size_t st_tok_utf8_put(uint32_t cp, char *buf);
size_t st_tok_utf8_get(const char *s, size_t n, uint32_t *cp);

#endif
