/* model.h: a llama model read from GGUF (private side of st_model).
 *
 * The file is parsed (gguf.c), every tensor checked against the
 * hyperparameters, and mapped read-only: weights are used in place, never
 * copied.  Each weight is a 2-D view in ggml order: ne0 = input
 * (contiguous) dimension, ne1 = output rows, rows nb1 bytes apart, so a
 * matrix multiply is y[r] = sum_c W[r][c] * x[c]. */
#ifndef ST_MODEL_H
#define ST_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "gguf.h"
#include "strata.h"

struct st_weight {
	const void *data;          /* into the mapped file */
	uint32_t type;             /* enum st_type */
	int64_t ne0, ne1;          /* [in, out] */
	size_t nb1;                /* bytes per row */
	uint64_t file_offset;      /* absolute offset of the data in the file */
	uint64_t nbytes;
	const char *name;          /* GGUF tensor name (owned by the gguf) */
};

/* One transformer block (llama names; shapes as ggml ne = [in, out]). */
struct st_layer_weights {
	struct st_weight attn_norm;   /* [dim]                       */
	struct st_weight wq;          /* [dim, n_head*hd]      attn_q */
	struct st_weight wk;          /* [dim, n_head_kv*hd]   attn_k */
	struct st_weight wv;          /* [dim, n_head_kv*hd]   attn_v */
	struct st_weight wo;          /* [n_head*hd, dim] attn_output */
	struct st_weight ffn_norm;    /* [dim]                       */
	struct st_weight w1;          /* [dim, ff]  ffn_gate          */
	struct st_weight w2;          /* [ff, dim]  ffn_down          */
	struct st_weight w3;          /* [dim, ff]  ffn_up            */
};

#define ST_LAYER_N_WEIGHTS 9
/* The weights of a layer in a fixed order (attn_norm, wq, wk, wv, wo,
 * ffn_norm, w1, w2, w3). */
const struct st_weight *st_layer_weight(const struct st_layer_weights *l, int i);

struct st_model {
	struct st_model_desc desc;
	struct st_gguf *gguf;
	void *map;                       /* the whole file, read-only */
	size_t map_size;
	struct st_weight tok_embd;       /* [dim, vocab] */
	struct st_weight output_norm;    /* [dim] */
	struct st_weight output;         /* [dim, vocab] (= tok_embd when tied) */
	struct st_layer_weights *layers; /* n_layer */
	struct st_tokenizer *tok;        /* NULL when the file has none */
};

/* Parse + validate an already-parsed GGUF (takes ownership of g on
 * success) with the tensor data at `map` (map_size bytes: the whole file
 * image).  st_model_open() = st_gguf_open + mmap + this. */
int st_model_from_gguf(struct st_gguf *g, void *map, size_t map_size, struct st_model **out);

/* File spans a stage needs (for loaders that read weights straight into
 * backend memory instead of mapping): every tensor of layers
 * first..last, plus the embedding table (with_embd) and the output norm
 * and head (with_head).  Writes up to max spans and returns how many there
 * are (call with spans = NULL to count). */
struct st_tensor_span {
	uint64_t file_offset;
	uint64_t nbytes;
	const struct st_weight *w;       /* which weight (its name, type, shape) */
	int layer;                       /* -1: embedding, -2: head */
};
int st_model_spans(const struct st_model *m, int first, int last, bool with_embd, bool with_head,
		   struct st_tensor_span *spans, int max);

#endif
