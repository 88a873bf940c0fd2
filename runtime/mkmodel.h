/* mkmodel.h: synthetic llama GGUF models with deterministic random weights
 * (private; used by `strata mkmodel` and by tests).
 *
 * Every value is a function of (seed, tensor index, row): each row has its
 * own PRNG stream, so any row can be regenerated alone, and one seed gives
 * the same bytes on every machine (integer PRNG, Irwin-Hall "normal-ish"
 * values from exact float operations).  Matrices have std 1/sqrt(fan_in)
 * (fan_in = ne0, the input dimension) so activations keep their scale; the
 * token embedding has std 1; norm weights are 1 + 0.05 * noise, in F32.
 *
 * A matrix whose rows are not a whole number of blocks of the requested
 * type (stories260k's ffn_down rows are 172 long, not a multiple of 32) is
 * stored in F32 instead, as llama.cpp's quantizer falls back when a row
 * does not fit the block size.  K-quant matrices (blocks of 256) whose rows
 * are not a multiple of 256 fall back as llama.cpp's quantizer does when the
 * rows are whole blocks of 32 (Q4_K -> Q5_0, Q5_K -> Q5_1, Q6_K -> Q8_0),
 * else to F32.
 *
 * Mixes (mix != ST_MKMODEL_MIX_NONE, type = the base Q4_K or Q5_K), as
 * llama.cpp's Q4_K_M and Q5_K_M: output.weight is Q6_K; attn_v and ffn_down
 * of layer i are Q6_K when use_more_bits(i, n_layer) (i < n/8, i >= 7n/8,
 * or (i - n/8) % 3 == 2), else the base type; every other matrix (token
 * embedding included) is the base type. */
#ifndef ST_MKMODEL_H
#define ST_MKMODEL_H

#include <stdbool.h>
#include <stdint.h>

#define ST_MKMODEL_MAX_NAME 64

struct st_mkmodel_params {
	char shape[32];           /* preset name, recorded in general.name */
	uint32_t n_layer, n_embd, n_ff, n_head, n_head_kv, n_vocab, n_ctx;
	float rope_theta, rms_eps;
	uint32_t type;            /* enum st_type of the matrices (a mix's base type) */
	uint32_t mix;             /* ST_MKMODEL_MIX_*: per-tensor types as llama.cpp's _M files */
	uint64_t seed;
	uint32_t n_threads;       /* generation threads; 0 = all cores (at most 8).
				   * The bytes do not depend on it. */
};

enum { ST_MKMODEL_MIX_NONE = 0, ST_MKMODEL_MIX_Q4_K_M, ST_MKMODEL_MIX_Q5_K_M };

/* "q4_k_m"/"q5_k_m" (any case): sets type and mix and returns 0; plain type
 * names: type, mix NONE; -EINVAL for names that are neither. */
int st_mkmodel_parse_type(const char *name, struct st_mkmodel_params *p);

struct st_mkmodel_tensor {
	char name[ST_MKMODEL_MAX_NAME];
	uint32_t type;            /* after the block-size fallback */
	uint32_t n_dims;
	uint64_t ne[2];           /* ne[0] = row length (fan_in) */
	uint64_t nbytes;
	int kind;                 /* internal: how values are drawn */
};

/* Presets: tiny, stories260k, tinyllama-1.1b, llama2-7b, llama3-8b, custom
 * (custom = tiny's numbers, to be overridden).  Type F32, seed 0.
 * -EINVAL with a message for an unknown name. */
int st_mkmodel_preset(const char *shape, struct st_mkmodel_params *p);
/* Checks the hyperparameters (positive, heads divide dim, even head_dim,
 * kv heads divide heads, vocab >= 259 for the byte tokens, supported type,
 * sizes that fit). */
int st_mkmodel_validate(const struct st_mkmodel_params *p);

/* The tensor list in file order; returns the count (or a negative code)
 * and sets *out (free() it). */
int st_mkmodel_tensors(const struct st_mkmodel_params *p, struct st_mkmodel_tensor **out);
/* Float values of rows [row0, row0 + nrows) of tensor t (index idx in the
 * list): nrows * ne[0] floats, before conversion to t->type. */
void st_mkmodel_rows(const struct st_mkmodel_params *p, const struct st_mkmodel_tensor *t,
		     uint32_t idx, uint64_t row0, uint64_t nrows, float *out);

/* Called after each chunk of tensor data with bytes written and total. */
typedef void (*st_mkmodel_progress_fn)(uint64_t done, uint64_t total, void *user);

/* Write the model to path, streaming tensor by tensor (memory use is a few
 * MB whatever the model size).  On failure the partial file is removed. */
int st_mkmodel_write(const struct st_mkmodel_params *p, const char *path,
		     st_mkmodel_progress_fn progress, void *user);

#endif
