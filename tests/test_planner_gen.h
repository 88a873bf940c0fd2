/* test_planner_gen.h: seeded random planner instances for the planner
 * tests (static functions; included by test_planner*.c only). */
#ifndef ST_TEST_PLANNER_GEN_H
#define ST_TEST_PLANNER_GEN_H

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "plan.h"

static uint64_t gen_state = 0x9e3779b97f4a7c15ull;

static void gen_seed(uint64_t s) { gen_state = s * 0x9e3779b97f4a7c15ull + 1; }

static uint64_t gen_u64(void)
{
	/* splitmix64 */
	uint64_t z = (gen_state += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static double gen_unif(double a, double b) { return a + (b - a) * (double)(gen_u64() >> 11) / 9007199254740992.0; }
static int gen_int(int a, int b) { return a + (int)(gen_u64() % (uint64_t)(b - a + 1)); }

/* A random instance with D devices and L units.  Some devices are exact
 * copies of others (so classes form) when links allow; links are uniform,
 * per host, or random per pair; memory is sometimes too small for any
 * plan. */
__attribute__((unused)) static int gen_instance(struct st_pl_instance *in, int D, int L)
{
	struct st_pl_link def = { gen_unif(1, 1000), gen_unif(0, 5) };
	int r = st_pl_instance_alloc(in, D, L, def);
	if (r)
		return r;
	int link_mode = gen_int(0, 2);          /* 0 uniform, 1 per host, 2 random */
	int cost_mode = gen_int(0, 2);          /* 0 near-uniform, 1 random, 2 two-level */
	uint64_t total = 0;
	in->context = (uint32_t)gen_int(0, 64);
	in->batch = (uint32_t)gen_int(1, 4);
	in->activation_bytes = (uint64_t)gen_int(100, 200000);
	in->output_bytes = (uint64_t)gen_int(100, 800000);
	for (int i = 0; i < L; i++) {
		snprintf(in->units[i].name, ST_PL_NAME, "u%d", i);
		in->units[i].weight_bytes = (uint64_t)gen_int(1, 100);
		in->units[i].kv_bytes_per_token = (i == 0 || i == L - 1) ? 0 : (uint64_t)gen_int(0, 2);
		total += in->units[i].weight_bytes + in->units[i].kv_bytes_per_token * in->context * in->batch;
	}
	for (int d = 0; d < D; d++) {
		struct st_pl_device *dv = &in->devices[d];
		double *ms;
		snprintf(dv->name, ST_PL_NAME, "dev%d", d);
		snprintf(dv->host, ST_PL_NAME, "host%d", link_mode == 1 ? d / 2 : d);
		if ((r = st_pl_device_add_ctx(in, d, 0, &ms)))
			return r;
		if (d > 0 && gen_int(0, 2) == 0) {
			/* an identical copy of an earlier device */
			int src = gen_int(0, d - 1);
			memcpy(ms, in->devices[src].decode_ms[0], (size_t)L * sizeof *ms);
			dv->memory_bytes = in->devices[src].memory_bytes;
			dv->overhead_ms = in->devices[src].overhead_ms;
			snprintf(dv->kind, ST_PL_NAME, "%s", in->devices[src].kind);
			continue;
		}
		snprintf(dv->kind, ST_PL_NAME, "kind%d", d);
		double speed = gen_unif(0.2, 5);
		for (int i = 0; i < L; i++) {
			if (cost_mode == 0)
				ms[i] = speed * gen_unif(0.9, 1.1);
			else if (cost_mode == 1)
				ms[i] = gen_unif(0, 10);
			else
				ms[i] = speed * (gen_int(0, 1) ? 1 : 4);
		}
		dv->overhead_ms = gen_int(0, 2) == 0 ? gen_unif(0, 3) : 0;
		double frac = gen_unif(0.05, 1.3);
		dv->memory_bytes = (uint64_t)(frac * (double)total);
	}
	for (int a = 0; a < D; a++)
		for (int b = 0; b < D; b++) {
			if (a == b)
				continue;
			struct st_pl_link *l = &in->links[a * D + b];
			if (link_mode == 1 && a / 2 == b / 2)
				*l = (struct st_pl_link){ def.bandwidth_mbps * 100, 0 };
			else if (link_mode == 2)
				*l = (struct st_pl_link){ gen_unif(1, 1000), gen_unif(0, 5) };
		}
	in->source = gen_int(0, 1) ? gen_int(0, D - 1) : -1;
	return 0;
}

__attribute__((unused)) static int rel_eq(double a, double b)
{
	double m = fabs(a) > fabs(b) ? fabs(a) : fabs(b);
	return fabs(a - b) <= 1e-9 * (m > 1 ? m : 1);
}

#endif
