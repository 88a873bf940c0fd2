/* cost.c: the cost model.  Evaluates a plan unit by unit, straight from
 * the definitions in plan.h, sharing no arithmetic with the planners (their
 * prefix sums and precomputed matrices) so tests can check one against the
 * other. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "plan.h"
#include "util.h"

double st_pl_eval_objective(const struct st_pl_eval *ev, enum st_pl_objective obj)
{
	switch (obj) {
	case ST_PL_THROUGHPUT: return ev->bottleneck_ms;
	case ST_PL_TOKENS: return ev->per_token_ms;
	default: return ev->latency_ms;
	}
}

const char *st_pl_objective_name(enum st_pl_objective o)
{
	static const char *const n[] = { "latency", "throughput", "tokens_per_s" };
	return (unsigned)o < ST_PL_N_OBJECTIVES ? n[o] : "?";
}

int st_pl_objective_parse(const char *s, enum st_pl_objective *o)
{
	for (int i = 0; i < ST_PL_N_OBJECTIVES; i++)
		if (!strcmp(s, st_pl_objective_name((enum st_pl_objective)i))) {
			*o = (enum st_pl_objective)i;
			return 0;
		}
	return st_error(-EINVAL, "objective \"%.60s\": expected latency, throughput or tokens_per_s", s);
}

int st_pl_evaluate(const struct st_pl_instance *in, const struct st_pl_plan *p, struct st_pl_eval *ev)
{
	memset(ev, 0, sizeof *ev);
	int m = p->n_stages, L = in->n_units;
	bool used[ST_PL_MAX_DEVICES] = { false };
	if (m < 1 || m > ST_PL_MAX_DEVICES || m > in->n_devices) {
		snprintf(ev->why, sizeof ev->why, "%d stages (need 1..%d)", m, in->n_devices);
		return 0;
	}
	int next = 0;
	for (int s = 0; s < m; s++) {
		const struct st_pl_stage *st = &p->stage[s];
		if (st->device < 0 || st->device >= in->n_devices) {
			snprintf(ev->why, sizeof ev->why, "stage %d: device index %d out of range", s, st->device);
			return 0;
		}
		if (used[st->device]) {
			snprintf(ev->why, sizeof ev->why, "stage %d: device %.40s already used", s,
				 in->devices[st->device].name);
			return 0;
		}
		used[st->device] = true;
		if (st->first != next || st->last < st->first || st->last >= L) {
			snprintf(ev->why, sizeof ev->why, "stage %d: units %d-%d (expected to start at %d, within 0-%d)",
				 s, st->first, st->last, next, L - 1);
			return 0;
		}
		next = st->last + 1;
	}
	if (next != L) {
		snprintf(ev->why, sizeof ev->why, "stages cover units 0-%d of 0-%d", next - 1, L - 1);
		return 0;
	}
	if (in->source >= 0 && p->stage[0].device != in->source) {
		snprintf(ev->why, sizeof ev->why, "first stage on %.40s, not on the source %.40s",
			 in->devices[p->stage[0].device].name, in->devices[in->source].name);
		return 0;
	}
	ev->valid = true;
	ev->fits = true;
	bool have_prefill = in->prompt_tokens > 0;
	for (int s = 0; s < m; s++)
		have_prefill = have_prefill && in->devices[p->stage[s].device].n_pf > 0;
	for (int s = 0; s < m; s++) {
		const struct st_pl_stage *st = &p->stage[s];
		const struct st_pl_device *dv = &in->devices[st->device];
		double ms = dv->overhead_ms, pf = 0;
		const uint32_t np = in->prompt_tokens;
		uint64_t bytes = 0;
		for (int i = st->first; i <= st->last; i++) {
			ms += st_pl_unit_ms(in, st->device, i);
			if (np)
				pf += st_pl_unit_prefill_ms(in, st->device, i, np);
			/* validate() proved the whole model's total fits in 64 bits. */
			bytes += in->units[i].weight_bytes +
				 in->units[i].kv_bytes_per_token * in->context * in->batch;
		}
		ev->stage_ms[s] = ms;
		ev->mem_bytes[s] = bytes;
		if (bytes > dv->memory_bytes && ev->fits) {
			ev->fits = false;
			snprintf(ev->why, sizeof ev->why, "stage %d on %.40s needs %llu bytes, budget %llu", s,
				 dv->name, (unsigned long long)bytes, (unsigned long long)dv->memory_bytes);
		}
		/* Hop to the next stage, or the return of the output to the first device. */
		if (s + 1 < m)
			ev->hop_ms[s] = st_pl_link_ms(in, st->device, p->stage[s + 1].device, in->activation_bytes);
		else
			ev->hop_ms[s] = st_pl_link_ms(in, st->device, p->stage[0].device, in->output_bytes);
		ev->latency_ms += ms + ev->hop_ms[s];
		if (ms > ev->bottleneck_ms)
			ev->bottleneck_ms = ms;
		if (ev->hop_ms[s] > ev->bottleneck_ms)
			ev->bottleneck_ms = ev->hop_ms[s];
		/* The prompt: every token through this stage in one eval (its
		 * overhead once), the prompt's activations to the next stage, and
		 * the first output back to the first device. */
		ev->prefill_ms += pf * np + dv->overhead_ms;
		if (s + 1 < m && np)
			ev->prefill_ms += st_pl_link_ms(in, st->device, p->stage[s + 1].device,
							in->activation_bytes * np);
	}
	if (m > 1)
		ev->prefill_ms += ev->hop_ms[m - 1];
	if (!have_prefill)
		ev->prefill_ms = 0;     /* unknown unless every stage's device has prefill costs */
	double k = in->batch;
	ev->per_token_ms = ev->latency_ms / k > ev->bottleneck_ms ? ev->latency_ms / k : ev->bottleneck_ms;
	ev->tokens_per_s = ev->per_token_ms > 0 ? 1000.0 / ev->per_token_ms : 0;
	return 0;
}
