/* forward_ref.h: the plain scalar llama forward pass, written straight
 * from the maths (llama2.c style).  It is THE reference that the backend
 * path, SIMD kernels and GPU backends are tested against. */
#ifndef ST_FORWARD_REF_H
#define ST_FORWARD_REF_H

#include <stdbool.h>
#include <stdint.h>

#include "model.h"

struct st_ref_state;

/* Scratch for up to max_tokens tokens per call and a KV cache of n_ctx
 * positions; kv_f16 rounds cached K/V to binary16 (as an F16 cache does). */
int st_ref_create(const struct st_model *m, uint32_t n_ctx, uint32_t max_tokens, bool kv_f16,
		  struct st_ref_state **out);
void st_ref_destroy(struct st_ref_state *s);

/* Run tokens[0..n) at positions pos0..pos0+n-1 (the cache must hold
 * positions 0..pos0-1 from earlier calls).  logits: n_vocab floats per
 * token when logits_all, else the last token's only (NULL: none).
 * Returns 0 or a negative code (bad token id, n > max_tokens, past n_ctx). */
int st_ref_forward(struct st_ref_state *s, const int32_t *tokens, int n, uint32_t pos0, float *logits,
		   bool logits_all);

#endif
