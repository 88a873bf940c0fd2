/* stage.h: a stage = {backend device, layer range [first, last], the
 * weights of those layers in the backend's memory, their KV cache, and
 * scratch activations for up to max_tokens tokens}.  Its op graph (17 ops
 * per layer) is built and prepared once and replayed for every call, for
 * prefill (many tokens) and decode (one token) alike.
 *
 * The first stage may also hold the embedding table (st_stage_embed) and
 * the last one the output norm and head (st_stage_head). */
#ifndef ST_STAGE_H
#define ST_STAGE_H

#include <stdbool.h>
#include <stdint.h>

#include "backend.h"
#include "model.h"

#define ST_STAGE_OPS_PER_LAYER 17

struct st_stage_params {
	const struct st_backend_ops *backend;   /* NULL: the CPU */
	int device;
	uint32_t first_layer, last_layer;       /* inclusive */
	bool embed, head;                        /* hold token_embd / output */
	uint32_t n_ctx;                          /* KV cache positions */
	uint32_t max_tokens;                     /* tokens per call */
	uint32_t kv_type;                        /* ST_TYPE_F32 or ST_TYPE_F16 */
	/* optional: read the weights with this instead of the mapping (the
	 * buffer is allocated, mapped if the backend can, else staged) */
	st_weight_load_fn load;
	/* or in the background (strata.h st_weight_load_async_fn): CPU stages
	 * wait per layer in their first runs; others load synchronously */
	st_weight_load_async_fn load_async;
	void *load_user;
	bool load_device;       /* the loader takes device buffers (strata.h st_weight_span.buf) */
	/* optional: read-ahead of the mapped file (strata.h
	 * st_session_params.prefetch_weights), with load_user */
	st_weight_load_async_fn prefetch;
};

struct st_stage;

int st_stage_create(const struct st_model *m, const struct st_stage_params *p, struct st_stage **out);
void st_stage_destroy(struct st_stage *s);

/* hidden_out[t] = token_embd[tokens[t]] (n <= max_tokens; stage has embed). */
int st_stage_embed(struct st_stage *s, const int32_t *tokens, int64_t n, float *hidden_out);
/* Run the stage's layers on n tokens at positions pos0..: hidden rows of
 * n_embd floats in, the same out (hidden_out may equal hidden_in). */
int st_stage_forward(struct st_stage *s, const float *hidden_in, int64_t n_tokens, int64_t pos0,
		     float *hidden_out);
/* logits[t] = Woutput (rmsnorm(hidden[t]) * output_norm) (stage has head). */
int st_stage_head(struct st_stage *s, const float *hidden, int64_t n, float *logits);

struct st_backend *st_stage_backend(const struct st_stage *s);
const struct st_stage_params *st_stage_params(const struct st_stage *s);
uint64_t st_stage_weight_bytes(const struct st_stage *s);
uint64_t st_stage_kv_bytes(const struct st_stage *s);
/* Seconds per layer of the last st_stage_forward (last-first+1 entries);
 * returns the count or -ENOTSUP when the backend does not time ops. */
int st_stage_layer_times(const struct st_stage *s, double *seconds, int max);

#endif
