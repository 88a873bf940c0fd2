/* strata.h: the public interface of libstrata.
 *
 * Handles are opaque; functions return 0 (or a count) on success and a
 * negative errno-style code on failure, with a message for the calling
 * thread in st_last_error().  Nothing here prints, exits or aborts. */
#ifndef STRATA_H
#define STRATA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define STRATA_VERSION "0.1.0"

/* ---- logging and errors -------------------------------------------- */

enum st_log_level { ST_LOG_DEBUG = 0, ST_LOG_INFO = 1, ST_LOG_WARN = 2, ST_LOG_ERROR = 3 };
typedef void (*st_log_fn)(enum st_log_level level, const char *msg, void *user);

/* Install the one log callback (NULL: silent) and the lowest level passed. */
void st_set_log(st_log_fn fn, void *user, enum st_log_level min_level);
/* The message of the last failure on this thread. */
const char *st_last_error(void);

/* ---- tokenizer -------------------------------------------------------- */

/* The tokenizer of a GGUF file (tokenizer.ggml.*), as llama.cpp runs it:
 *  - "llama" (SentencePiece BPE, SPM): spaces escaped to U+2581, a dummy
 *    prefix space (tokenizer.ggml.add_space_prefix, default true), bigram
 *    merges by highest score (leftmost on ties), byte fallback to <0xNN>.
 *  - "gpt2" (byte-level BPE): pre-tokenized by the regexes of
 *    tokenizer.ggml.pre (PCRE2, UTF + UCP), GPT-2 bytes-to-unicode, merges
 *    by rank (tokenizer.ggml.merges, rank = index).
 * Special tokens: USER_DEFINED tokens are always matched in the text
 * first (as llama.cpp and HF do); CONTROL/UNKNOWN tokens such as "<s>" or
 * "<|endoftext|>" are matched only by st_tokenize_special(parse_special =
 * true); st_tokenize() treats their text as ordinary characters.
 * Round trips: detokenize(tokenize(s)) == s for valid UTF-8 without a
 * literal U+2581 (SPM decodes it as a space, as SentencePiece does); for
 * bytes that are not UTF-8, BPE is exact and SPM does what llama.cpp does.
 * A tokenizer is immutable after creation: any number of threads may use
 * it at once. */
struct st_gguf;
struct st_tokenizer;

enum st_token_type {              /* tokenizer.ggml.token_type values */
	ST_TOKEN_UNDEFINED = 0, ST_TOKEN_NORMAL = 1, ST_TOKEN_UNKNOWN = 2,
	ST_TOKEN_CONTROL = 3, ST_TOKEN_USER_DEFINED = 4, ST_TOKEN_UNUSED = 5,
	ST_TOKEN_BYTE = 6,
};
enum st_tokenizer_kind { ST_TOKENIZER_SPM = 1, ST_TOKENIZER_BPE = 2 };

/* Load from GGUF metadata.  Rejects (negative code + message naming the
 * key and the numbers) a missing or mistyped key, tokens/scores/types
 * count mismatches, empty or duplicate tokens, tokens over 64 KiB, token
 * types outside 0..6, bos/eos/unk/eot ids outside the vocabulary (the
 * value 0xFFFFFFFF / -1 means "none"), merges without a space or naming a
 * token not in the vocabulary, add_bos_token without a BOS id. */
int st_tokenizer_from_gguf(const struct st_gguf *g, struct st_tokenizer **out);

/* The same from plain arrays (what from_gguf reads; also for tests and
 * generated models).  NULL scores = all 0; NULL types = all NORMAL. */
struct st_tokenizer_vocab {
	int kind;                          /* enum st_tokenizer_kind */
	uint32_t n_tokens;
	const char *const *tokens;         /* n_tokens strings */
	const uint32_t *token_lens;        /* NULL: strlen() of each */
	const float *scores;
	const int32_t *types;
	uint32_t n_merges;                 /* BPE: "left right" strings */
	const char *const *merges;
	const char *pre;                   /* BPE pre-tokenizer name; NULL = "default" */
	int64_t bos, eos, unk, eot, eom;   /* -1 = none, -2 = llama.cpp default */
	int add_bos;                       /* -1 = llama.cpp default, else 0/1 */
	int add_space_prefix;              /* -1 = default (SPM true, BPE false) */
};
int st_tokenizer_create(const struct st_tokenizer_vocab *v, struct st_tokenizer **out);
void st_tokenizer_free(struct st_tokenizer *t);

/* Text (len bytes, any bytes) -> token ids.  add_bos: put the BOS id first
 * (-EINVAL if the vocabulary has none); pass st_tokenizer_add_bos(t) to
 * follow the file.  Returns the number of ids.  out = NULL: only count.
 * If max_out is too small, returns -ENOSPC (message says how many were
 * needed) and out holds the first max_out ids. */
int st_tokenize(const struct st_tokenizer *t, const char *text, size_t len, bool add_bos,
		int32_t *out, int max_out);
int st_tokenize_special(const struct st_tokenizer *t, const char *text, size_t len, bool add_bos,
			bool parse_special, int32_t *out, int max_out);

/* The bytes one token stands for (not NUL-terminated): byte tokens give
 * their raw byte, SPM U+2581 gives ' ', GPT-2 byte-level text is mapped
 * back to bytes, CONTROL/UNKNOWN/UNUSED tokens give nothing (0 bytes),
 * USER_DEFINED tokens give their text.  A piece may be part of a UTF-8
 * sequence.  Returns the length; buf = NULL: only the length; -ENOSPC if
 * size is too small; -EINVAL for an id outside the vocabulary. */
int st_token_to_piece(const struct st_tokenizer *t, int32_t id, char *buf, size_t size);

/* ids -> text (the pieces concatenated, NUL-terminated when size allows).
 * strip_prefix_space: skip a leading BOS and drop the first piece's
 * leading space when the vocabulary adds a dummy prefix (SPM), so that
 * detokenize(tokenize(s)) == s.  Returns the length without the NUL;
 * buf = NULL: only the length; -ENOSPC when size <= length. */
int st_detokenize(const struct st_tokenizer *t, const int32_t *ids, int n, bool strip_prefix_space,
		  char *buf, size_t size);

/* Streaming output: how many bytes at the end of buf[0..len) are the start
 * of a UTF-8 sequence that is not complete yet (0..3); hold them back until
 * the next piece arrives.  Invalid bytes are never held back. */
size_t st_utf8_incomplete_tail(const char *buf, size_t len);

uint32_t st_tokenizer_n_vocab(const struct st_tokenizer *t);
int st_tokenizer_kind(const struct st_tokenizer *t);
int32_t st_tokenizer_bos(const struct st_tokenizer *t);      /* -1 if none */
int32_t st_tokenizer_eos(const struct st_tokenizer *t);      /* -1 if none */
bool st_tokenizer_add_bos(const struct st_tokenizer *t);     /* the file's add_bos_token or default */
/* End of generation: eos, eot, eom and tokens named like <|eot_id|>,
 * <|im_end|>, <|endoftext|>, <end_of_turn>... (llama.cpp's list). */
bool st_tokenizer_is_eog(const struct st_tokenizer *t, int32_t id);
/* The vocabulary string of a token (raw, e.g. "▁the", "<0x0A>"), NULL if
 * out of range; its type (enum st_token_type) or -EINVAL; its score. */
const char *st_tokenizer_token_text(const struct st_tokenizer *t, int32_t id);
int st_tokenizer_token_type(const struct st_tokenizer *t, int32_t id);
float st_tokenizer_token_score(const struct st_tokenizer *t, int32_t id);

/* A synthetic SentencePiece vocabulary for generated models: <unk>, <s>,
 * </s>, <0x00>..<0xFF>, "▁" and the printable ASCII characters, then
 * common English words with their prefixes (▁the, ▁a, ...), then letter
 * pairs/triples, with descending scores.  n_vocab >= 260 (room for ▁).
 * The arrays (malloc'd; free with st_tokenizer_synth_free) feed the GGUF
 * writer as tokenizer.ggml.tokens / scores / token_type with model
 * "llama", bos 1, eos 2, unk 0. */
int st_tokenizer_synth_spm(uint32_t n_vocab, char ***tokens, float **scores, int32_t **types);
void st_tokenizer_synth_free(uint32_t n_vocab, char **tokens, float *scores, int32_t *types);


/* ---- model and session ------------------------------------------------ */

/* A model is the parsed GGUF file with its weights mapped read-only (plain
 * data, shared by any number of sessions).  A session is one sequence being
 * evaluated: the stages that hold the layers, the KV cache and the logits
 * of the last eval.  A model must outlive its sessions. */
struct st_model;
struct st_session;
struct st_tokenizer;

/* Hyperparameters and a few facts about the file (llama architecture). */
struct st_model_desc {
	char arch[32];            /* general.architecture: "llama" */
	char name[128];           /* general.name, or "" */
	uint32_t n_vocab;         /* rows of token_embd */
	uint32_t n_embd;          /* llama.embedding_length (dim) */
	uint32_t n_ff;            /* llama.feed_forward_length */
	uint32_t n_layer;         /* llama.block_count */
	uint32_t n_head;          /* llama.attention.head_count */
	uint32_t n_head_kv;       /* llama.attention.head_count_kv (default n_head) */
	uint32_t head_dim;        /* n_embd / n_head */
	uint32_t rope_dim;        /* llama.rope.dimension_count (default head_dim) */
	uint32_t n_ctx_train;     /* llama.context_length */
	float rms_eps;            /* llama.attention.layer_norm_rms_epsilon (1e-5) */
	float rope_theta;         /* llama.rope.freq_base (10000) */
	uint32_t weight_type;     /* type id (GGML numbering) of most matrix weights */
	bool tied_output;         /* no output.weight: the head reuses token_embd */
	uint64_t n_params;        /* elements in all tensors */
	uint64_t weight_bytes;    /* bytes of all tensors */
	uint64_t file_size;
};

/* Open a GGUF llama model: parse, validate every tensor against the
 * hyperparameters, map the weights, and load the tokenizer if the file has
 * one.  Errors (wrong architecture, missing tensor, wrong shape, a weight
 * type strata cannot compute with...) come back as negative codes with a
 * message naming the tensor/key and the numbers. */
int st_model_open(const char *path, struct st_model **out);
void st_model_close(struct st_model *m);
const struct st_model_desc *st_model_desc(const struct st_model *m);
/* The tokenizer embedded in the file (owned by the model), or NULL. */
struct st_tokenizer *st_model_tokenizer(const struct st_model *m);
/* Bytes of the weights of layer `layer` (0..n_layer-1), or of the
 * non-layer tensors with layer = -1 (embedding) / -2 (output norm + head).
 * Returns 0 and sets *bytes, or -EINVAL for a bad layer. */
int st_model_layer_bytes(const struct st_model *m, int layer, uint64_t *bytes);

/* KV cache element type (same ids as the GGUF tensor types). */
enum st_kv_type { ST_KV_F32 = 0, ST_KV_F16 = 1 };

/* Optional weight loader (st_session_params.load_weights): instead of using
 * the mapped file in place (CPU) or copying from the mapping (other
 * backends), each stage asks it to read its tensors: bytes
 * [file_offset, file_offset + nbytes) of the model file into dst, for n
 * spans (e.g. with the io_uring span loader, ioring/loader.h).  Returns 0
 * or a negative code (with st_error), which fails st_session_create. */
struct st_backend;
struct st_buffer;
struct st_weight_span {
	uint64_t file_offset;
	uint64_t nbytes;
	void *dst;
	const char *name;         /* tensor name, for messages */
	/* With st_session_params.load_device, a stage whose weight buffer is
	 * device memory the host cannot map (discrete GPUs) passes dst = NULL
	 * and the destination here: offset buf_offset of buffer buf of backend
	 * be (runtime/backend.h; ioring/upload.h streams the bytes there). */
	struct st_backend *be;
	struct st_buffer *buf;
	uint64_t buf_offset;
};
typedef int (*st_weight_load_fn)(void *user, const struct st_weight_span *spans, int n);

/* Loading in the background (st_session_params.load_weights_async, used
 * instead of load_weights): a stage on the CPU backend gives its weight
 * buffer's spans to the loader on a thread of its own, and
 * st_session_create returns while the bytes arrive.  The loader calls
 * st_weight_ready_publish(ready, off) whenever every byte of the spans
 * below file offset `off` is in place (calls may only raise it; returning
 * 0 means all are in).  The first evaluation runs each layer as soon as
 * that layer's bytes are in (embedding first, head last), so the time to
 * the first token is about max(load, eval) instead of their sum.  If the
 * loader fails (negative code with st_error), the evaluation waiting for
 * the missing bytes, and every later one, fails with the loader's message.
 * st_weight_ready_publish returns -ECANCELED once the session is being
 * destroyed: the loader should stop and return it (destroy waits for it).
 * Stages on other backends, or whose buffer the host cannot map, call the
 * same function synchronously with ready = NULL (publishing to NULL is a
 * no-op returning 0). */
struct st_weight_ready;
typedef int (*st_weight_load_async_fn)(void *user, const struct st_weight_span *spans, int n,
				       struct st_weight_ready *ready);
int st_weight_ready_publish(struct st_weight_ready *ready, uint64_t file_offset);

struct st_session_params {
	uint32_t n_ctx;           /* max positions; 0 = min(n_ctx_train, 2048) */
	uint32_t kv_type;         /* enum st_kv_type; default ST_KV_F32 */
	uint32_t n_threads;       /* 0 = all cores */
	uint32_t n_batch;         /* tokens per internal step; 0 = 256.  eval()
				   * of more tokens is split transparently */
	/* Which device runs which layers: "BACKEND[INDEX]:FIRST-LAST,..."
	 * covering 0..n_layer-1 in order, e.g. "cpu:0-4", "cpu:0-1,cpu:2-4",
	 * "vulkan0:0-9,opencl0:10-21".  NULL or "" = all layers on the CPU. */
	const char *stages;
	bool reference;           /* use the scalar reference forward pass
				   * (forward_ref) instead of backends/stages */
	bool profile;             /* record per-op/per-layer times (slower) */
	st_weight_load_fn load_weights;   /* NULL: use the mapped file */
	st_weight_load_async_fn load_weights_async;  /* or this: in the background */
	void *load_user;                  /* for either */
	bool load_device;                 /* the loader also fills device memory
					   * (spans with dst NULL): accelerator
					   * stages then keep their weights in
					   * device-local buffers, not host memory */
	/* Read-ahead of the mapped file (e.g. ioring/weights.h
	 * st_ioring_prefetch_weights; user = load_user): a stage that computes
	 * from the mapped file in place (the CPU backend), or copies its
	 * weights from it, hands its spans (dst = the mapped bytes) to this
	 * function on a thread of its own, in the order the evaluation needs
	 * them, and goes on at once: the function should bring them into the
	 * page cache (a page whose read is in flight makes the thread that
	 * touches it wait in the kernel, so nothing is signalled).  Its
	 * failure is logged (ST_LOG_WARN) and otherwise ignored: the pages are
	 * then read on demand.  It should poll st_weight_ready_publish(ready, 0)
	 * and stop when that returns -ECANCELED (session destroyed, or a copying
	 * stage done copying).  With prefetch_weights set, stages whose backend
	 * can use the mapped file in place (the CPU; accelerators with unified
	 * memory) use it even when load_weights/load_weights_async is set: the
	 * loader then serves the stages that need their weights copied (device
	 * memory the host cannot map), which do not read ahead (their weights
	 * are not read twice).  Without a loader such stages copy from the
	 * mapping, reading ahead of the copy. */
	st_weight_load_async_fn prefetch_weights;
};

/* Fill *p with the defaults above. */
void st_session_params_default(struct st_session_params *p);
/* params NULL = defaults. */
int st_session_create(struct st_model *m, const struct st_session_params *params,
		      struct st_session **out);
void st_session_destroy(struct st_session *s);

/* Evaluate n tokens at the current position (prefill: one call with many
 * tokens; decode: n = 1).  logits_all: keep logits for every token of the
 * call, else only for the last one.  Returns the number of logit rows kept
 * (n or 1), or a negative code: n <= 0, a token id outside the vocabulary,
 * or pos + n > n_ctx (-ENOSPC); the session is unchanged on error. */
int st_session_eval(struct st_session *s, const int32_t *tokens, int n, bool logits_all);
/* Logits (n_vocab floats) of row i of the last eval (i = -1: the last
 * row), valid until the next eval/reset; NULL if i is out of range. */
const float *st_session_logits(const struct st_session *s, int i);
uint32_t st_session_pos(const struct st_session *s);     /* tokens in the KV cache */
uint32_t st_session_n_ctx(const struct st_session *s);
/* Forget everything (pos = 0). */
void st_session_reset(struct st_session *s);
/* Drop the KV cache from position pos on (pos <= current pos). */
int st_session_truncate(struct st_session *s, uint32_t pos);

/* Per-stage timing (accumulated since create/reset of the stats). */
struct st_stage_stats {
	char backend[16];         /* "cpu", "vulkan", "opencl", "ref" */
	char device[128];
	int device_index;
	uint32_t first_layer, last_layer;
	uint64_t n_runs;          /* forward calls */
	uint64_t n_tokens;        /* tokens processed */
	double seconds;           /* total wall time in this stage */
	double seconds_last;      /* wall time of the last forward call */
	uint64_t weight_bytes;    /* weights held by this stage */
	uint64_t kv_bytes;        /* KV cache held by this stage */
};
int st_session_n_stages(const struct st_session *s);
int st_session_stage_stats(const struct st_session *s, int stage, struct st_stage_stats *out);
/* Seconds spent in embedding lookup and in the output head (norm + matmul). */
int st_session_head_times(const struct st_session *s, double *embed_seconds, double *head_seconds);
/* With params.profile: wall time per layer of the last eval (n_layer
 * entries, seconds); returns n_layer or a negative code. */
int st_session_layer_times(const struct st_session *s, double *seconds, int n_layer);
void st_session_stats_reset(struct st_session *s);

/* ---- sampler ---------------------------------------------------------- */

/* Picks the next token from a row of logits with llama.cpp's default chain:
 * repetition penalty -> top-k -> top-p -> min-p -> temperature -> draw.
 * The draw uses the sampler's own PRNG (xoshiro256**), so one seed gives
 * one sequence of draws on every machine. */
struct st_sampler;

struct st_sampler_params {
	float temp;               /* 0.8; 0 = greedy (argmax after the penalty) */
	int32_t top_k;            /* 40; 0 = off */
	float top_p;              /* 0.95; 1 = off; in (0, 1] */
	float min_p;              /* 0.05; 0 = off; keep p >= min_p * p_max */
	float repeat_penalty;     /* 1.0 = off; positive logits of recent tokens
				   * are divided by it, negative ones multiplied */
	int32_t repeat_last_n;    /* 64; how many accepted tokens it looks at */
	uint64_t seed;            /* 0 */
};

void st_sampler_params_default(struct st_sampler_params *p);
/* -EINVAL with a message for parameters out of range. */
int st_sampler_create(const struct st_sampler_params *p, int32_t n_vocab,
		      struct st_sampler **out);
void st_sampler_destroy(struct st_sampler *s);
/* Forget the history and restart the PRNG from the seed. */
void st_sampler_reset(struct st_sampler *s);
/* Record a token of the sequence (prompt or generated) for the penalty. */
void st_sampler_accept(struct st_sampler *s, int32_t token);
/* The next token id (>= 0), or -EINVAL when a logit is NaN/+inf or all are
 * -inf.  Does not accept the token: call st_sampler_accept() with it. */
int st_sampler_sample(struct st_sampler *s, const float *logits);

#ifdef __cplusplus
}
#endif
#endif
