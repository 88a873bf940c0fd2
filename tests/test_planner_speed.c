/* test_planner_speed.c: the planners at the benchmark sizes.
 *  latency DP:    80 units x 16 distinct devices (per-unit costs near-uniform
 *                 per device, as real profiles are; budgets such that the
 *                 model needs several devices; uniform and per-pair links);
 *  throughput DP: 80 units x 16 devices in 4 kinds.
 * As a test it checks the plans (valid, fit, no worse than any baseline)
 * and prints one timing; with --bench it prints the median of 21 runs of
 * each (single-threaded) for BENCHMARKS.md.  Not a timed test: the
 * assertions hold on any machine. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tap.h"
#include "test_planner_gen.h"
#include "util.h"

enum shape { LAT_UNIFORM_LINKS, LAT_PAIR_LINKS, LAT_RANDOM_COSTS, THR_4_KINDS, TOK_PAIR_LINKS, N_SHAPES };

static void build(struct st_pl_instance *in, enum shape sh, uint64_t seed)
{
	int D = 16, L = 80;
	gen_seed(seed);
	st_pl_instance_alloc(in, D, L, (struct st_pl_link){ 1000, 0.2 });
	uint64_t total = 0;
	for (int i = 0; i < L; i++) {
		snprintf(in->units[i].name, ST_PL_NAME, "u%d", i);
		in->units[i].weight_bytes = (i == 0 || i == L - 1) ? 250u << 20 : 200u << 20;
		in->units[i].kv_bytes_per_token = (i == 0 || i == L - 1) ? 0 : 16384;
		total += in->units[i].weight_bytes + in->units[i].kv_bytes_per_token * 2048;
	}
	in->activation_bytes = 16384;
	in->output_bytes = 4;
	in->context = 2048;
	in->batch = 1;
	in->source = 0;
	double kspeed[4] = { 1.0, 0.6, 2.5, 0.25 };
	uint64_t kmem[4] = { total / 5, total / 8, total / 3, total / 4 };
	for (int d = 0; d < D; d++) {
		double *ms, speed = gen_unif(0.2, 3);
		uint64_t mem = (uint64_t)(gen_unif(0.08, 0.35) * (double)total);
		int kind = d % 4;
		if (sh == THR_4_KINDS)
			speed = kspeed[kind], mem = kmem[kind];
		snprintf(in->devices[d].name, ST_PL_NAME, "dev%d", d);
		snprintf(in->devices[d].host, ST_PL_NAME, "host%d", d);
		in->devices[d].memory_bytes = mem;
		st_pl_device_add_ctx(in, d, 0, &ms);
		for (int i = 0; i < L; i++) {
			double base = (i == 0) ? 0.1 : (i == L - 1) ? 2.0 : 1.0;
			ms[i] = sh == LAT_RANDOM_COSTS ? speed * gen_unif(0.2, 2) : sh == THR_4_KINDS ? speed * base
												 : speed * base * gen_unif(0.97, 1.03);
		}
	}
	if (sh == LAT_PAIR_LINKS || sh == LAT_RANDOM_COSTS || sh == TOK_PAIR_LINKS)
		for (int a = 0; a < D; a++)
			for (int b = 0; b < D; b++)
				if (a != b)
					in->links[a * D + b] = (struct st_pl_link){ gen_unif(100, 10000), gen_unif(0.05, 1) };
	in->objective = sh == THR_4_KINDS ? ST_PL_THROUGHPUT : sh == TOK_PAIR_LINKS ? ST_PL_TOKENS : ST_PL_LATENCY;
	if (sh == TOK_PAIR_LINKS)
		in->batch = 4;
}

/* CPU time of this thread: the machine is shared, wall time is noisy. */
static double cpu_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static const char *names[] = { "latency DP, 80 units x 16 devices, uniform links",
			       "latency DP, 80 units x 16 devices, per-pair links",
			       "latency DP, 80 units x 16 devices, random per-unit costs",
			       "throughput DP, 80 units x 16 devices (4 kinds)",
			       "tokens/s with 4 in flight, 80 units x 16 devices, per-pair links" };

int main(int argc, char **argv)
{
	int runs = (argc > 1 && !strcmp(argv[1], "--bench")) ? 21 : 1;
	for (int sh = 0; sh < N_SHAPES; sh++) {
		struct st_pl_instance in;
		struct st_pl_plan p;
		struct st_pl_stats st;
		double t[21], w[21];
		int r = 0;
		build(&in, (enum shape)sh, 42 + (uint64_t)sh);
		for (int k = 0; k < runs && !r; k++) {
			double w0 = st_time_now(), t0 = cpu_now();
			r = st_pl_plan(&in, &p, &st);
			t[k] = cpu_now() - t0;
			w[k] = st_time_now() - w0;
		}
		qsort(t, (size_t)runs, sizeof t[0], cmp);
		qsort(w, (size_t)runs, sizeof w[0], cmp);
		if (!ok(r == 0, "%s: planned (%s)", names[sh], r ? st_last_error() : "ok")) {
			st_pl_instance_free(&in);
			continue;
		}
		struct st_pl_eval ev;
		st_pl_evaluate(&in, &p, &ev);
		int beaten = 0;
		for (int b = 0; b < ST_PL_BASE_COUNT; b++) {
			struct st_pl_plan bp;
			struct st_pl_eval be;
			if (st_pl_baseline(&in, (enum st_pl_baseline)b, &bp))
				continue;
			st_pl_evaluate(&in, &bp, &be);
			if (be.fits && st_pl_eval_objective(&be, in.objective) < p.value * (1 - 1e-9))
				beaten++;
		}
		ok(ev.valid && ev.fits && fabs(st_pl_eval_objective(&ev, in.objective) - p.value) <= 1e-9 * p.value &&
			   beaten == 0,
		   "%s: %d stages, value %.4f ms, valid, fits, no baseline better", names[sh], p.n_stages, p.value);
		diag("%s: median %.3f ms CPU over %d run(s) (min %.3f, max %.3f; wall median %.3f, min %.3f); "
		     "%llu search nodes/moves%s", names[sh], t[runs / 2] * 1e3, runs, t[0] * 1e3, t[runs - 1] * 1e3,
		     w[runs / 2] * 1e3, w[0] * 1e3, (unsigned long long)st.nodes,
		     sh < 3 ? (st.relaxation_exact ? ", relaxation exact" : ", Lagrangian bound / branch and bound used") : "");
		st_pl_instance_free(&in);
	}
	return tap_done();
}
