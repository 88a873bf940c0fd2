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
