/* instance.c: planner instances (allocation, validation, per-unit cost at a
 * context length, link times) and the precomputed problem the planners
 * share (prefix sums, hop matrices, memory fit, classes of interchangeable
 * devices). */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "plan.h"
#include "util.h"

int st_pl_instance_alloc(struct st_pl_instance *in, int n_devices, int n_units, struct st_pl_link def)
{
	memset(in, 0, sizeof *in);
	in->source = -1;
	in->batch = 1;
	if (n_devices < 1 || n_devices > ST_PL_MAX_DEVICES)
		return st_error(-EINVAL, "plan: %d devices (must be 1..%d)", n_devices, ST_PL_MAX_DEVICES);
	if (n_units < 1 || n_units > ST_PL_MAX_UNITS)
		return st_error(-EINVAL, "plan: %d layer units (must be 1..%d)", n_units, ST_PL_MAX_UNITS);
	in->n_devices = n_devices;
	in->n_units = n_units;
	in->devices = calloc((size_t)n_devices, sizeof *in->devices);
	in->units = calloc((size_t)n_units, sizeof *in->units);
	in->links = calloc((size_t)n_devices * (size_t)n_devices, sizeof *in->links);
	if (!in->devices || !in->units || !in->links) {
		st_pl_instance_free(in);
		return st_error(-ENOMEM, "plan: out of memory for an instance");
	}
	for (int i = 0; i < n_devices * n_devices; i++)
		in->links[i] = def;
	return 0;
}

int st_pl_device_add_ctx(struct st_pl_instance *in, int d, uint32_t context, double **ms)
{
	struct st_pl_device *dv = &in->devices[d];
	if (dv->n_ctx >= ST_PL_MAX_CTX_POINTS)
		return st_error(-E2BIG, "plan: device %s: more than %d decode context points", dv->name,
				ST_PL_MAX_CTX_POINTS);
	int k = dv->n_ctx;
	for (int i = 0; i < dv->n_ctx; i++)
		if (dv->ctx[i] == context)
			return st_error(-EINVAL, "plan: device %s: context %u given twice", dv->name, context);
	while (k > 0 && dv->ctx[k - 1] > context) {
		dv->ctx[k] = dv->ctx[k - 1];
		dv->decode_ms[k] = dv->decode_ms[k - 1];
		k--;
	}
	dv->ctx[k] = context;
	dv->decode_ms[k] = calloc((size_t)in->n_units, sizeof(double));
	dv->n_ctx++;
	if (!dv->decode_ms[k])
		return st_error(-ENOMEM, "plan: out of memory");
	*ms = dv->decode_ms[k];
	return 0;
}

int st_pl_device_add_prefill(struct st_pl_instance *in, int d, uint32_t tokens, double **ms)
{
	struct st_pl_device *dv = &in->devices[d];
	if (dv->n_pf >= ST_PL_MAX_CTX_POINTS)
		return st_error(-E2BIG, "plan: device %s: more than %d prefill points", dv->name, ST_PL_MAX_CTX_POINTS);
	int k = dv->n_pf;
	for (int i = 0; i < dv->n_pf; i++)
		if (dv->pf_tokens[i] == tokens)
			return st_error(-EINVAL, "plan: device %s: prefill of %u tokens given twice", dv->name, tokens);
	while (k > 0 && dv->pf_tokens[k - 1] > tokens) {
		dv->pf_tokens[k] = dv->pf_tokens[k - 1];
		dv->prefill_ms[k] = dv->prefill_ms[k - 1];
		k--;
	}
	dv->pf_tokens[k] = tokens;
	dv->prefill_ms[k] = calloc((size_t)in->n_units, sizeof(double));
	dv->n_pf++;
	if (!dv->prefill_ms[k])
		return st_error(-ENOMEM, "plan: out of memory");
	*ms = dv->prefill_ms[k];
	return 0;
}

void st_pl_instance_free(struct st_pl_instance *in)
{
	if (in->devices)
		for (int d = 0; d < in->n_devices; d++) {
			for (int k = 0; k < in->devices[d].n_ctx; k++)
				free(in->devices[d].decode_ms[k]);
			for (int k = 0; k < in->devices[d].n_pf; k++)
				free(in->devices[d].prefill_ms[k]);
		}
	free(in->devices);
	free(in->units);
	free(in->links);
	memset(in, 0, sizeof *in);
	in->source = -1;
}

int st_pl_instance_copy(struct st_pl_instance *dst, const struct st_pl_instance *src)
{
	int r = st_pl_instance_alloc(dst, src->n_devices, src->n_units, (struct st_pl_link){ 1, 0 });
	if (r)
		return r;
	size_t L = (size_t)src->n_units;
	memcpy(dst->units, src->units, L * sizeof *dst->units);
	memcpy(dst->links, src->links, (size_t)src->n_devices * (size_t)src->n_devices * sizeof *dst->links);
	for (int d = 0; d < src->n_devices; d++) {
		const struct st_pl_device *s = &src->devices[d];
		struct st_pl_device *t = &dst->devices[d];
		memcpy(t->name, s->name, sizeof t->name);
		memcpy(t->kind, s->kind, sizeof t->kind);
		memcpy(t->host, s->host, sizeof t->host);
		t->memory_bytes = s->memory_bytes;
		t->overhead_ms = s->overhead_ms;
		t->peak_gbs = s->peak_gbs;
		for (int k = 0; k < s->n_ctx; k++) {
			double *ms;
			if ((r = st_pl_device_add_ctx(dst, d, s->ctx[k], &ms)))
				goto err;
			memcpy(ms, s->decode_ms[k], L * sizeof *ms);
		}
		for (int k = 0; k < s->n_pf; k++) {
			double *ms;
			if ((r = st_pl_device_add_prefill(dst, d, s->pf_tokens[k], &ms)))
				goto err;
			memcpy(ms, s->prefill_ms[k], L * sizeof *ms);
		}
	}
	dst->activation_bytes = src->activation_bytes;
	dst->output_bytes = src->output_bytes;
	dst->objective = src->objective;
	dst->source = src->source;
	dst->context = src->context;
	dst->batch = src->batch;
	dst->prompt_tokens = src->prompt_tokens;
	return 0;
err:
	st_pl_instance_free(dst);
	return r;
}

int st_pl_device_find(const struct st_pl_instance *in, const char *name)
{
	for (int d = 0; d < in->n_devices; d++)
		if (!strcmp(in->devices[d].name, name))
			return d;
	return -1;
}

int st_pl_instance_validate(const struct st_pl_instance *in)
{
	if (in->n_devices < 1 || in->n_devices > ST_PL_MAX_DEVICES)
		return st_error(-EINVAL, "plan: %d devices (must be 1..%d)", in->n_devices, ST_PL_MAX_DEVICES);
	if (in->n_units < 1 || in->n_units > ST_PL_MAX_UNITS)
		return st_error(-EINVAL, "plan: %d layer units (must be 1..%d)", in->n_units, ST_PL_MAX_UNITS);
	if (in->source < -1 || in->source >= in->n_devices)
		return st_error(-EINVAL, "plan: source device index %d out of range", in->source);
	if (in->batch < 1)
		return st_error(-EINVAL, "plan: batch (sequences in flight) must be >= 1");
	if ((unsigned)in->objective >= ST_PL_N_OBJECTIVES)
		return st_error(-EINVAL, "plan: unknown objective %d", (int)in->objective);
	uint64_t w = 0, kv = 0, t;
	for (int i = 0; i < in->n_units; i++) {
		if (st_add_overflow_u64(w, in->units[i].weight_bytes, &w) ||
		    st_add_overflow_u64(kv, in->units[i].kv_bytes_per_token, &kv))
			return st_error(-EOVERFLOW, "plan: model memory overflows 64 bits at unit %d", i);
	}
	if (st_mul_overflow_u64(kv, in->context, &t) || st_mul_overflow_u64(t, in->batch, &t) ||
	    st_add_overflow_u64(t, w, &t))
		return st_error(-EOVERFLOW, "plan: KV cache of %u tokens x %u sequences overflows 64 bits",
				in->context, in->batch);
	for (int d = 0; d < in->n_devices; d++) {
		const struct st_pl_device *dv = &in->devices[d];
		if (!dv->name[0])
			return st_error(-EINVAL, "plan: device %d has no name", d);
		for (int e = 0; e < d; e++)
			if (!strcmp(in->devices[e].name, dv->name))
				return st_error(-EINVAL, "plan: device name \"%s\" used twice", dv->name);
		if (dv->n_ctx < 1)
			return st_error(-EINVAL, "plan: device %s has no decode costs", dv->name);
		if (!isfinite(dv->overhead_ms) || dv->overhead_ms < 0 || dv->overhead_ms > 1e12)
			return st_error(-EINVAL, "plan: device %s: stage_overhead_ms %g (must be finite, >= 0)", dv->name,
					dv->overhead_ms);
		for (int k = 0; k < dv->n_ctx; k++) {
			if (k && dv->ctx[k] <= dv->ctx[k - 1])
				return st_error(-EINVAL, "plan: device %s: context points not ascending", dv->name);
			for (int i = 0; i < in->n_units; i++)
				if (!isfinite(dv->decode_ms[k][i]) || dv->decode_ms[k][i] < 0 ||
				    dv->decode_ms[k][i] > 1e12)
					return st_error(-EINVAL, "plan: device %s: decode ms of unit %d = %g (must be finite, >= 0)",
							dv->name, i, dv->decode_ms[k][i]);
		}
		if (!isfinite(dv->peak_gbs) || dv->peak_gbs < 0 || dv->peak_gbs > 1e9)
			return st_error(-EINVAL, "plan: device %s: peak_gbs %g (must be finite, >= 0)", dv->name,
					dv->peak_gbs);
		for (int k = 0; k < dv->n_pf; k++) {
			if (k && dv->pf_tokens[k] <= dv->pf_tokens[k - 1])
				return st_error(-EINVAL, "plan: device %s: prefill points not ascending", dv->name);
			if (dv->pf_tokens[k] == 0 && dv->n_pf > 1)
				return st_error(-EINVAL, "plan: device %s: a prefill point without its prompt length "
							 "(tokens 0) must be the only one", dv->name);
			for (int i = 0; i < in->n_units; i++)
				if (!isfinite(dv->prefill_ms[k][i]) || dv->prefill_ms[k][i] < 0 || dv->prefill_ms[k][i] > 1e12)
					return st_error(-EINVAL, "plan: device %s: prefill ms of unit %d at %u tokens = %g",
							dv->name, i, dv->pf_tokens[k], dv->prefill_ms[k][i]);
		}
		for (int e = 0; e < in->n_devices; e++) {
			const struct st_pl_link *l = &in->links[d * in->n_devices + e];
			if (e != d && (!isfinite(l->bandwidth_mbps) || l->bandwidth_mbps <= 0 ||
				       l->bandwidth_mbps > 1e12 || !isfinite(l->rtt_ms) || l->rtt_ms < 0 ||
				       l->rtt_ms > 1e12))
				return st_error(-EINVAL, "plan: link %s -> %s: bandwidth %g Mbps, rtt %g ms (need bandwidth > 0, rtt >= 0)",
						dv->name, in->devices[e].name, l->bandwidth_mbps, l->rtt_ms);
		}
	}
	return 0;
}

double st_pl_unit_ms(const struct st_pl_instance *in, int d, int i)
{
	const struct st_pl_device *dv = &in->devices[d];
	if (dv->n_ctx == 1)
		return dv->decode_ms[0][i];
	int k = 1;
	while (k < dv->n_ctx - 1 && dv->ctx[k] < in->context)
		k++;
	/* Line through points k-1 and k (the bracketing pair, or the nearest
	 * pair outside the profiled range). */
	double x0 = dv->ctx[k - 1], x1 = dv->ctx[k];
	double y0 = dv->decode_ms[k - 1][i], y1 = dv->decode_ms[k][i];
	double y = y0 + (y1 - y0) * (((double)in->context - x0) / (x1 - x0));
	return y > 0 ? y : 0;
}

double st_pl_unit_prefill_ms(const struct st_pl_instance *in, int d, int i, uint32_t n)
{
	const struct st_pl_device *dv = &in->devices[d];
	if (dv->n_pf < 1)
		return 0;
	if (dv->n_pf == 1 || n <= dv->pf_tokens[0])
		return dv->prefill_ms[0][i];
	if (n >= dv->pf_tokens[dv->n_pf - 1])
		return dv->prefill_ms[dv->n_pf - 1][i];
	int k = 1;
	while (dv->pf_tokens[k] < n)
		k++;
	double x0 = dv->pf_tokens[k - 1], x1 = dv->pf_tokens[k];
	double y0 = dv->prefill_ms[k - 1][i], y1 = dv->prefill_ms[k][i];
	return y0 + (y1 - y0) * (((double)n - x0) / (x1 - x0));
}

double st_pl_link_ms(const struct st_pl_instance *in, int from, int to, uint64_t bytes)
{
	if (from == to)
		return 0;
	const struct st_pl_link *l = &in->links[from * in->n_devices + to];
	/* bits / (Mbps * 1e3) = ms */
	return (double)bytes * 8.0 / (l->bandwidth_mbps * 1e3) + l->rtt_ms;
}

/* ---- problem ------------------------------------------------------------- */

void st_pl_problem_free(struct st_pl_problem *pb)
{
	free(pb->pre);
	free(pb->hop);
	free(pb->ret);
	free(pb->fit);
	pb->pre = pb->hop = pb->ret = NULL;
	pb->fit = NULL;
}

static bool link_eq(const struct st_pl_link *a, const struct st_pl_link *b)
{
	return a->bandwidth_mbps == b->bandwidth_mbps && a->rtt_ms == b->rtt_ms;
}

/* Swapping d and e maps the instance onto itself (same costs, memory,
 * links), so the two can be exchanged in any plan. */
static bool swappable(const struct st_pl_instance *in, const struct st_pl_problem *pb, int d, int e)
{
	int D = in->n_devices, L = in->n_units;
	const struct st_pl_link *lk = in->links;
	if (d == in->source || e == in->source)
		return false;
	if (in->devices[d].memory_bytes != in->devices[e].memory_bytes ||
	    in->devices[d].overhead_ms != in->devices[e].overhead_ms)
		return false;
	for (int i = 0; i <= L; i++)
		if (pb->pre[d * (L + 1) + i] != pb->pre[e * (L + 1) + i])
			return false;
	if (!link_eq(&lk[d * D + e], &lk[e * D + d]))
		return false;
	for (int f = 0; f < D; f++) {
		if (f == d || f == e)
			continue;
		if (!link_eq(&lk[d * D + f], &lk[e * D + f]) || !link_eq(&lk[f * D + d], &lk[f * D + e]))
			return false;
	}
	return true;
}

int st_pl_problem_build(const struct st_pl_instance *in, struct st_pl_problem *pb)
{
	int r = st_pl_instance_validate(in);
	memset(pb, 0, sizeof *pb);
	if (r)
		return r;
	int D = in->n_devices, L = in->n_units;
	pb->D = D;
	pb->L = L;
	pb->source = in->source;
	pb->pre = calloc((size_t)D * (size_t)(L + 1), sizeof *pb->pre);
	pb->fit = calloc((size_t)D * (size_t)(L + 1), sizeof *pb->fit);
	pb->hop = calloc((size_t)D * (size_t)D, sizeof *pb->hop);
	pb->ret = calloc((size_t)D * (size_t)D, sizeof *pb->ret);
	uint64_t *mem = calloc((size_t)L + 1, sizeof *mem);
	if (!pb->pre || !pb->fit || !pb->hop || !pb->ret || !mem) {
		free(mem);
		st_pl_problem_free(pb);
		return st_error(-ENOMEM, "plan: out of memory");
	}
	/* Memory prefix: weights + KV * context * batch (overflow ruled out by
	 * validate: the total fits in 64 bits, so every prefix does). */
	for (int i = 0; i < L; i++)
		mem[i + 1] = mem[i] + in->units[i].weight_bytes +
			     in->units[i].kv_bytes_per_token * in->context * in->batch;
	for (int d = 0; d < D; d++) {
		double *p = pb->pre + (size_t)d * (L + 1);
		int *f = pb->fit + (size_t)d * (L + 1);
		pb->ovh[d] = in->devices[d].overhead_ms;
		for (int i = 0; i < L; i++)
			p[i + 1] = p[i] + st_pl_unit_ms(in, d, i);
		int b = 0;
		for (int a = 0; a <= L; a++) {
			if (b < a)
				b = a;
			while (b < L && mem[b + 1] - mem[a] <= in->devices[d].memory_bytes)
				b++;
			f[a] = b;
		}
		for (int e = 0; e < D; e++) {
			pb->hop[d * D + e] = st_pl_link_ms(in, d, e, in->activation_bytes);
			pb->ret[d * D + e] = st_pl_link_ms(in, d, e, in->output_bytes);
		}
	}
	free(mem);
	/* Classes of interchangeable devices (swap-equivalence is an
	 * equivalence relation, so comparing with a representative suffices). */
	for (int d = 0; d < D; d++) {
		int c;
		for (c = 0; c < pb->n_classes; c++)
			if (swappable(in, pb, pb->class_member[c][0], d))
				break;
		if (c == pb->n_classes)
			pb->n_classes++;
		pb->class_of[d] = c;
		pb->class_member[c][pb->class_size[c]++] = d;
	}
	return 0;
}
