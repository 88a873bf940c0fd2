/* sampler.c: token sampling (llama.cpp's default chain, seeded PRNG). */
#include "sampler.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

/* ---- PRNG ------------------------------------------------------------------ */

static uint64_t splitmix64(uint64_t *x)
{
	uint64_t z = (*x += UINT64_C(0x9e3779b97f4a7c15));
	z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
	return z ^ (z >> 31);
}

void st_rng_seed(struct st_rng *r, uint64_t seed)
{
	uint64_t x = seed;
	for (int i = 0; i < 4; i++)
		r->s[i] = splitmix64(&x);
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t st_rng_next(struct st_rng *r)
{
	uint64_t *s = r->s;
	const uint64_t result = rotl(s[1] * 5, 7) * 9;
	const uint64_t t = s[1] << 17;
	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return result;
}

double st_rng_uniform(struct st_rng *r)
{
	return (double)(st_rng_next(r) >> 11) * 0x1.0p-53;
}

double st_rng_normal(struct st_rng *r)
{
	double u1 = 1.0 - st_rng_uniform(r);    /* (0, 1] */
	double u2 = st_rng_uniform(r);
	return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

/* ---- filters ----------------------------------------------------------------- */

int st_token_array_fill(struct st_token_array *arr, const float *logits, int32_t n_vocab)
{
	bool any_finite = false;
	if (n_vocab <= 0)
		return st_error(-EINVAL, "sampler: vocabulary size %d must be positive", (int)n_vocab);
	for (int32_t i = 0; i < n_vocab; i++) {
		float l = logits[i];
		if (isnan(l) || (isinf(l) && l > 0))
			return st_error(-EINVAL, "sampler: logit %d is %s", (int)i, isnan(l) ? "NaN" : "+inf");
		if (isfinite(l))
			any_finite = true;
		arr->data[i].id = i;
		arr->data[i].logit = l;
		arr->data[i].p = 0.0f;
	}
	if (!any_finite)
		return st_error(-EINVAL, "sampler: all %d logits are -inf", (int)n_vocab);
	arr->n = (size_t)n_vocab;
	arr->sorted = false;
	return 0;
}

static int cmp_desc(const void *a, const void *b)
{
	const struct st_token_data *x = a, *y = b;
	if (x->logit > y->logit)
		return -1;
	if (x->logit < y->logit)
		return 1;
	return x->id < y->id ? -1 : x->id > y->id;   /* stable on ties: lower id first */
}

static void sort_desc(struct st_token_array *arr)
{
	if (!arr->sorted) {
		qsort(arr->data, arr->n, sizeof(arr->data[0]), cmp_desc);
		arr->sorted = true;
	}
}

void st_sampler_softmax(struct st_token_array *arr)
{
	double sum = 0.0;
	float max;
	sort_desc(arr);
	max = arr->data[0].logit;
	for (size_t i = 0; i < arr->n; i++)
		sum += exp((double)arr->data[i].logit - (double)max);
	for (size_t i = 0; i < arr->n; i++)
		arr->data[i].p = (float)(exp((double)arr->data[i].logit - (double)max) / sum);
}

static void penalize(struct st_token_data *t, float penalty)
{
	if (t->logit > 0)
		t->logit /= penalty;
	else
		t->logit *= penalty;
}

static int cmp_i32(const void *a, const void *b)
{
	int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
	return (x > y) - (x < y);
}

static void penalize_id(struct st_token_array *arr, int32_t id, float penalty)
{
	if (id < 0)
		return;
	if ((size_t)id < arr->n && arr->data[id].id == id) {   /* id-indexed array */
		penalize(&arr->data[id], penalty);
		return;
	}
	for (size_t i = 0; i < arr->n; i++)
		if (arr->data[i].id == id) {
			penalize(&arr->data[i], penalty);
			return;
		}
}

void st_sampler_penalty(struct st_token_array *arr, const int32_t *history, size_t n_hist,
			float penalty)
{
	int32_t *sorted = NULL;
	if (penalty == 1.0f || n_hist == 0)
		return;
	/* each distinct token once: a sorted copy for long windows (a
	 * quadratic scan when short, or if the copy cannot be allocated) */
	if (n_hist > 64)
		sorted = malloc(n_hist * sizeof(*sorted));
	if (sorted) {
		memcpy(sorted, history, n_hist * sizeof(*sorted));
		qsort(sorted, n_hist, sizeof(*sorted), cmp_i32);
		for (size_t h = 0; h < n_hist; h++)
			if (h == 0 || sorted[h] != sorted[h - 1])
				penalize_id(arr, sorted[h], penalty);
		free(sorted);
	} else {
		for (size_t h = 0; h < n_hist; h++) {
			bool seen = false;
			for (size_t j = 0; j < h && !seen; j++)
				seen = history[j] == history[h];
			if (!seen)
				penalize_id(arr, history[h], penalty);
		}
	}
	arr->sorted = false;
}

/* a ranks before b: larger logit, then lower id (the sort order) */
static inline bool before(const struct st_token_data *a, const struct st_token_data *b)
{
	return a->logit > b->logit || (a->logit == b->logit && a->id < b->id);
}

/* Min-heap (by rank: the root is the worst kept) over h[0..k). */
static void heap_down(struct st_token_data *h, size_t k, size_t i)
{
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, w = i;
		if (l < k && before(&h[w], &h[l]))
			w = l;
		if (r < k && before(&h[w], &h[r]))
			w = r;
		if (w == i)
			return;
		struct st_token_data t = h[i];
		h[i] = h[w];
		h[w] = t;
		i = w;
	}
}

void st_sampler_top_k(struct st_token_array *arr, int32_t k)
{
	size_t kk = (size_t)k;
	if (k <= 0 || kk >= arr->n)
		return;
	if (!arr->sorted && kk <= arr->n / 8) {
		/* select the k best with a heap in the first k slots: O(n log k)
		 * instead of sorting the whole vocabulary */
		struct st_token_data *d = arr->data;
		for (size_t i = kk / 2; i-- > 0;)
			heap_down(d, kk, i);
		for (size_t i = kk; i < arr->n; i++)
			if (before(&d[i], &d[0])) {
				d[0] = d[i];
				heap_down(d, kk, 0);
			}
		arr->n = kk;
		qsort(d, kk, sizeof(*d), cmp_desc);
		arr->sorted = true;
		return;
	}
	sort_desc(arr);
	arr->n = kk;
}

/* top-p on a large unsorted array without sorting all of it: move the
 * candidates within 12 nats of the best (probability ratio > 6e-6) to the
 * front and sort only those.  Every one of them ranks before every other
 * candidate, so if they reach probability p the kept prefix is the one a
 * full sort would give.  Returns false (array reordered, still complete)
 * when they do not. */
static bool top_p_prefix(struct st_token_array *arr, float p)
{
	struct st_token_data *d = arr->data;
	float max = -INFINITY;
	double sum = 0.0, cum = 0.0, thr;
	size_t m = 0;
	for (size_t i = 0; i < arr->n; i++)
		max = d[i].logit > max ? d[i].logit : max;
	for (size_t i = 0; i < arr->n; i++)
		sum += exp((double)d[i].logit - (double)max);
	thr = (double)max - 12.0;
	for (size_t i = 0; i < arr->n; i++)
		if ((double)d[i].logit >= thr) {
			struct st_token_data t = d[m];
			d[m++] = d[i];
			d[i] = t;
		}
	qsort(d, m, sizeof(*d), cmp_desc);
	for (size_t i = 0; i < m; i++) {
		d[i].p = (float)(exp((double)d[i].logit - (double)max) / sum);
		cum += exp((double)d[i].logit - (double)max) / sum;
		if (cum >= p) {
			arr->n = i + 1;
			arr->sorted = true;
			return true;
		}
	}
	return false;
}

void st_sampler_top_p(struct st_token_array *arr, float p)
{
	double cum = 0.0;
	size_t keep;
	if (p >= 1.0f)
		return;
	if (!arr->sorted && arr->n > 1024 && top_p_prefix(arr, p))
		return;
	st_sampler_softmax(arr);
	keep = arr->n;
	for (size_t i = 0; i < arr->n; i++) {
		cum += arr->data[i].p;
		if (cum >= p) {
			keep = i + 1;
			break;
		}
	}
	arr->n = keep;
}

void st_sampler_min_p(struct st_token_array *arr, float min_p)
{
	size_t keep = 0;
	float max = -INFINITY;
	double thr;
	if (min_p <= 0.0f)
		return;
	for (size_t i = 0; i < arr->n; i++)
		if (arr->data[i].logit > max)
			max = arr->data[i].logit;
	/* p_i >= min_p * p_max  <=>  logit_i >= max + log(min_p) */
	thr = (double)max + log((double)min_p);
	for (size_t i = 0; i < arr->n; i++)
		if ((double)arr->data[i].logit >= thr)
			arr->data[keep++] = arr->data[i];
	arr->n = keep ? keep : 1;     /* the max always passes; guard anyway */
}

int32_t st_sampler_argmax(const struct st_token_array *arr)
{
	size_t best = 0;
	for (size_t i = 1; i < arr->n; i++) {
		const struct st_token_data *a = &arr->data[i], *b = &arr->data[best];
		if (a->logit > b->logit || (a->logit == b->logit && a->id < b->id))
			best = i;
	}
	return arr->data[best].id;
}

void st_sampler_temp(struct st_token_array *arr, float temp)
{
	if (temp <= 0.0f) {
		int32_t id = st_sampler_argmax(arr);
		for (size_t i = 0; i < arr->n; i++)
			if (arr->data[i].id == id) {
				arr->data[0] = arr->data[i];
				break;
			}
		arr->n = 1;
		arr->sorted = true;
		return;
	}
	for (size_t i = 0; i < arr->n; i++)
		arr->data[i].logit /= temp;
}

int32_t st_sampler_draw(struct st_token_array *arr, struct st_rng *rng)
{
	/* softmax in the array's order (no sort needed to draw) */
	double u, cum = 0.0, sum = 0.0;
	float max = -INFINITY;
	size_t last = 0;
	for (size_t i = 0; i < arr->n; i++)
		max = arr->data[i].logit > max ? arr->data[i].logit : max;
	for (size_t i = 0; i < arr->n; i++)
		sum += exp((double)arr->data[i].logit - (double)max);
	u = st_rng_uniform(rng) * sum;
	for (size_t i = 0; i < arr->n; i++) {
		double e = exp((double)arr->data[i].logit - (double)max);
		arr->data[i].p = (float)(e / sum);
		if (e > 0)
			last = i;
		cum += e;
		if (u < cum)
			return arr->data[i].id;
	}
	/* u landed in the rounding slack past the last sum: the last candidate
	 * with nonzero probability */
	return arr->data[last].id;
}

/* ---- the public sampler ---------------------------------------------------- */

struct st_sampler {
	struct st_sampler_params params;
	int32_t n_vocab;
	struct st_rng rng;
	struct st_token_data *cand;
	int32_t *hist;          /* ring of the last repeat_last_n accepted tokens */
	size_t hist_len, hist_pos;
	int32_t *hist_lin;      /* scratch: the ring in order */
};

void st_sampler_params_default(struct st_sampler_params *p)
{
	memset(p, 0, sizeof(*p));
	p->temp = 0.8f;
	p->top_k = 40;
	p->top_p = 0.95f;
	p->min_p = 0.05f;
	p->repeat_penalty = 1.0f;
	p->repeat_last_n = 64;
	p->seed = 0;
}

int st_sampler_create(const struct st_sampler_params *p, int32_t n_vocab, struct st_sampler **out)
{
	struct st_sampler *s;
	size_t nh;
	*out = NULL;
	if (n_vocab <= 0)
		return st_error(-EINVAL, "sampler: vocabulary size %d must be positive", (int)n_vocab);
	if (!isfinite(p->temp) || !isfinite(p->top_p) || !isfinite(p->min_p) ||
	    !isfinite(p->repeat_penalty))
		return st_error(-EINVAL, "sampler: temp/top_p/min_p/repeat_penalty must be finite");
	if (p->temp < 0)
		return st_error(-EINVAL, "sampler: temperature %g is negative", (double)p->temp);
	if (p->top_p <= 0 || p->top_p > 1)
		return st_error(-EINVAL, "sampler: top_p %g is not in (0, 1]", (double)p->top_p);
	if (p->min_p < 0 || p->min_p > 1)
		return st_error(-EINVAL, "sampler: min_p %g is not in [0, 1]", (double)p->min_p);
	if (p->repeat_penalty <= 0)
		return st_error(-EINVAL, "sampler: repeat_penalty %g must be positive",
				(double)p->repeat_penalty);
	if (p->top_k < 0)
		return st_error(-EINVAL, "sampler: top_k %d is negative (0 = off)", (int)p->top_k);
	if (p->repeat_last_n < 0 || p->repeat_last_n > (1 << 20))
		return st_error(-EINVAL, "sampler: repeat_last_n %d is not in [0, 1048576]",
				(int)p->repeat_last_n);
	s = calloc(1, sizeof(*s));
	if (!s)
		return st_error(-ENOMEM, "sampler: out of memory");
	s->params = *p;
	s->n_vocab = n_vocab;
	nh = (size_t)p->repeat_last_n;
	s->cand = malloc((size_t)n_vocab * sizeof(*s->cand));
	s->hist = malloc((nh ? nh : 1) * sizeof(*s->hist));
	s->hist_lin = malloc((nh ? nh : 1) * sizeof(*s->hist_lin));
	if (!s->cand || !s->hist || !s->hist_lin) {
		st_sampler_destroy(s);
		return st_error(-ENOMEM, "sampler: out of memory for %d candidates", (int)n_vocab);
	}
	st_rng_seed(&s->rng, p->seed);
	*out = s;
	return 0;
}

void st_sampler_destroy(struct st_sampler *s)
{
	if (!s)
		return;
	free(s->cand);
	free(s->hist);
	free(s->hist_lin);
	free(s);
}

void st_sampler_reset(struct st_sampler *s)
{
	s->hist_len = s->hist_pos = 0;
	st_rng_seed(&s->rng, s->params.seed);
}

void st_sampler_accept(struct st_sampler *s, int32_t token)
{
	size_t cap = (size_t)s->params.repeat_last_n;
	if (cap == 0)
		return;
	s->hist[s->hist_pos] = token;
	s->hist_pos = (s->hist_pos + 1) % cap;
	if (s->hist_len < cap)
		s->hist_len++;
}

int st_sampler_sample(struct st_sampler *s, const float *logits)
{
	struct st_token_array arr = { s->cand, 0, false };
	const struct st_sampler_params *p = &s->params;
	int rc = st_token_array_fill(&arr, logits, s->n_vocab);
	if (rc < 0)
		return rc;
	if (s->hist_len) {
		size_t cap = (size_t)p->repeat_last_n;
		size_t start = (s->hist_pos + cap - s->hist_len) % cap;
		for (size_t i = 0; i < s->hist_len; i++)
			s->hist_lin[i] = s->hist[(start + i) % cap];
		st_sampler_penalty(&arr, s->hist_lin, s->hist_len, p->repeat_penalty);
	}
	if (p->temp <= 0.0f)             /* greedy: the filters cannot change the argmax */
		return st_sampler_argmax(&arr);
	st_sampler_top_k(&arr, p->top_k);
	st_sampler_top_p(&arr, p->top_p);
	st_sampler_min_p(&arr, p->min_p);
	st_sampler_temp(&arr, p->temp);
	return st_sampler_draw(&arr, &s->rng);
}
