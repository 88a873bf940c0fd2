/* sampler.h: the pieces of the sampler (private; the public API is the
 * sampler section of strata.h).
 *
 * A sampling step works on an array of candidates {id, logit, p}, one per
 * vocabulary entry, which a chain of filters narrows in llama.cpp's default
 * order: repetition penalty -> top-k -> top-p -> min-p -> temperature ->
 * draw.  Each filter is exposed so tests can check it on hand-made arrays.
 * Every filter keeps at least one candidate. */
#ifndef ST_SAMPLER_H
#define ST_SAMPLER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "strata.h"

/* ---- a small seeded PRNG: xoshiro256** seeded through splitmix64 --------
 * Integer-only, so a seed gives the same stream on every machine. */
struct st_rng {
	uint64_t s[4];
};

void st_rng_seed(struct st_rng *r, uint64_t seed);
uint64_t st_rng_next(struct st_rng *r);
/* Uniform in [0, 1) with 53 random bits. */
double st_rng_uniform(struct st_rng *r);
/* Standard normal (Box-Muller over st_rng_uniform; uses libm log/cos). */
double st_rng_normal(struct st_rng *r);

/* ---- candidates ---------------------------------------------------------- */
struct st_token_data {
	int32_t id;
	float logit;
	float p;            /* valid after st_sampler_softmax() */
};

struct st_token_array {
	struct st_token_data *data;
	size_t n;
	bool sorted;        /* by logit, descending */
};

/* Fill arr (capacity n_vocab) from logits: one candidate per id, in id order.
 * -EINVAL with a message naming the index when a logit is NaN or +inf, or
 * when no logit is finite. */
int st_token_array_fill(struct st_token_array *arr, const float *logits, int32_t n_vocab);

/* Sort by logit (descending) and set p = softmax(logit) (double sums). */
void st_sampler_softmax(struct st_token_array *arr);

/* Repetition penalty over the distinct tokens of history[0..n_hist): a
 * positive logit is divided by penalty, a negative one multiplied (the
 * CTRL/llama.cpp rule).  penalty == 1: no-op. */
void st_sampler_penalty(struct st_token_array *arr, const int32_t *history, size_t n_hist,
			float penalty);
/* Keep the k largest logits (k <= 0 or k >= n: no-op). Sorts. */
void st_sampler_top_k(struct st_token_array *arr, int32_t k);
/* Keep the smallest prefix of the sorted distribution whose cumulative
 * probability reaches p (p >= 1: no-op). */
void st_sampler_top_p(struct st_token_array *arr, float p);
/* Keep tokens whose probability is at least min_p times the largest
 * (min_p <= 0: no-op). */
void st_sampler_min_p(struct st_token_array *arr, float min_p);
/* Divide logits by temp; temp <= 0 keeps only the largest (greedy). */
void st_sampler_temp(struct st_token_array *arr, float temp);
/* The id of the largest logit (the first on ties). */
int32_t st_sampler_argmax(const struct st_token_array *arr);
/* Draw from softmax(logit) with one uniform number from rng, walking the
 * array in its current order (no sort). */
int32_t st_sampler_draw(struct st_token_array *arr, struct st_rng *rng);

#endif
