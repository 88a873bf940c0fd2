/* oracle.c: exhaustive enumeration of every plan (ordered distinct devices,
 * every cut), for tests on small instances.  Deliberately simple: no
 * bounds, no symmetry, no shared code with the planners; the only pruning
 * is that a stage which does not fit cannot fit when extended. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "plan.h"
#include "util.h"

struct orc {
	const struct st_pl_instance *in;
	uint64_t leaves, max_leaves;
	struct st_pl_stage path[ST_PL_MAX_DEVICES];
	struct st_pl_plan *best;        /* [ST_PL_N_OBJECTIVES] */
	double val[ST_PL_N_OBJECTIVES];
	bool over;
};

static void record(struct orc *o, int m, double lat, double bot)
{
	o->leaves++;
	if (o->max_leaves && o->leaves > o->max_leaves)
		o->over = true;
	double k = o->in->batch;
	double v[ST_PL_N_OBJECTIVES] = { lat, bot, lat / k > bot ? lat / k : bot };
	for (int i = 0; i < ST_PL_N_OBJECTIVES; i++)
		if (v[i] < o->val[i]) {
			o->val[i] = v[i];
			o->best[i].n_stages = m;
			memcpy(o->best[i].stage, o->path, (size_t)m * sizeof o->path[0]);
			o->best[i].value = v[i];
		}
}

static void walk(struct orc *o, int depth, int j, int d, uint64_t mask, double lat, double bot)
{
	const struct st_pl_instance *in = o->in;
	int L = in->n_units, D = in->n_devices;
	double ms = in->devices[d].overhead_ms;
	uint64_t mem = 0;
	o->path[depth].device = d;
	o->path[depth].first = j;
	for (int b = j + 1; b <= L && !o->over; b++) {
		const struct st_pl_unit *u = &in->units[b - 1];
		mem += u->weight_bytes + u->kv_bytes_per_token * in->context * in->batch;
		if (mem > in->devices[d].memory_bytes)
			break;
		ms += st_pl_unit_ms(in, d, b - 1);
		o->path[depth].last = b - 1;
		double l2 = lat + ms, b2 = bot > ms ? bot : ms;
		if (b == L) {
			if (depth > 0) {
				double rt = st_pl_link_ms(in, d, o->path[0].device, in->output_bytes);
				l2 += rt;
				b2 = b2 > rt ? b2 : rt;
			}
			record(o, depth + 1, l2, b2);
			break;
		}
		for (int e = 0; e < D; e++) {
			if (mask >> e & 1)
				continue;
			double hp = st_pl_link_ms(in, d, e, in->activation_bytes);
			walk(o, depth + 1, b, e, mask | 1ull << e, l2 + hp, b2 > hp ? b2 : hp);
			o->path[depth].last = b - 1;
		}
	}
}

int st_pl_oracle(const struct st_pl_instance *in, uint64_t max_leaves, struct st_pl_plan best[ST_PL_N_OBJECTIVES])
{
	int r = st_pl_instance_validate(in);
	if (r)
		return r;
	struct orc o = { .in = in, .max_leaves = max_leaves, .best = best };
	for (int i = 0; i < ST_PL_N_OBJECTIVES; i++) {
		o.val[i] = INFINITY;
		memset(&best[i], 0, sizeof best[i]);
	}
	for (int d = 0; d < in->n_devices && !o.over; d++) {
		if (in->source >= 0 && d != in->source)
			continue;
		walk(&o, 0, 0, d, 1ull << d, 0, 0);
	}
	if (o.over)
		return st_error(-E2BIG, "plan: oracle stopped after %llu plans", (unsigned long long)max_leaves);
	if (!isfinite(o.val[0]))
		return st_error(-ENOSPC, "plan: oracle: no plan fits");
	return 0;
}
