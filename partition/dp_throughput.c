/* dp_throughput.c: exact minimum bottleneck (slowest stage or link),
 * EdgeShard's throughput formulation, with interchangeable devices grouped.
 *
 * State: (j = units 0..j-1 placed, v = how many devices of each class are
 * used, c = class of the device running the stage that ends at j), for a
 * fixed class of the first device.  Value: the smallest possible maximum
 * over the stages and hops so far.  max() is monotone, so the best value
 * per state is all the future needs (principle of optimality).  Devices of
 * one class are interchangeable (plan.h: same costs, memory and links, see
 * st_pl_problem_build), so which member is used does not matter: members
 * are handed out in order when the plan is rebuilt, the first device being
 * member 0 of its class (the source is always a class of its own).
 *
 * Size: (L+1) * prod(n_c + 1) * C states, each with at most C * L moves:
 * 80 units x 16 devices in 4 classes of 4 = 202,500 states. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "plan.h"
#include "util.h"

#define MAX_STATES ((size_t)1 << 27)

int st_pl_plan_throughput(const struct st_pl_instance *in, struct st_pl_plan *out, struct st_pl_stats *st)
{
	struct st_pl_problem pb;
	int r = st_pl_problem_build(in, &pb);
	if (r)
		return r;
	memset(out, 0, sizeof *out);
	if (st)
		memset(st, 0, sizeof *st);
	int L = pb.L, D = pb.D, C = pb.n_classes;
	size_t stride[ST_PL_MAX_DEVICES + 1], V = 1;
	stride[0] = 1;
	for (int c = 0; c < C; c++) {
		if (st_mul_overflow_size(V, (size_t)pb.class_size[c] + 1, &V) || V > MAX_STATES) {
			st_pl_problem_free(&pb);
			return st_error(-E2BIG, "plan: throughput DP over %d classes of devices is too large "
					"(group identical devices by giving them the same costs, memory and links)", C);
		}
		stride[c + 1] = V;
	}
	size_t n_states;
	if (st_mul_overflow_size(V, (size_t)(L + 1) * (size_t)C, &n_states) || n_states > MAX_STATES) {
		st_pl_problem_free(&pb);
		return st_error(-E2BIG, "plan: throughput DP needs %zu x %d x %d states (limit %zu)", V, L + 1, C,
				MAX_STATES);
	}
	double *dp = malloc(n_states * sizeof *dp);
	int *par_j = malloc(n_states * sizeof *par_j);
	signed char *par_c = malloc(n_states);
	double Hc[ST_PL_MAX_DEVICES][ST_PL_MAX_DEVICES], Rc[ST_PL_MAX_DEVICES][ST_PL_MAX_DEVICES];
	if (!dp || !par_j || !par_c) {
		r = st_error(-ENOMEM, "plan: out of memory for %zu DP states", n_states);
		goto out;
	}
	/* Class-level link times (between distinct members for c == c'). */
	for (int c = 0; c < C; c++)
		for (int c2 = 0; c2 < C; c2++) {
			int a = pb.class_member[c][0], b = pb.class_member[c2][0];
			if (c == c2)
				b = pb.class_size[c] > 1 ? pb.class_member[c][1] : -1;
			Hc[c][c2] = b < 0 ? INFINITY : pb.hop[a * D + b];
			Rc[c][c2] = b < 0 ? INFINITY : pb.ret[a * D + b];
		}
#define IDX(j, v, c) (((size_t)(j) * V + (v)) * (size_t)C + (size_t)(c))
	double best = INFINITY;
	int best_fc = -1, best_c = -1, best_single = -1;
	size_t best_v = 0;
	uint64_t moves = 0;
	for (int fc = 0; fc < C; fc++) {
		int f = pb.class_member[fc][0];
		if (pb.source >= 0 && f != pb.source)
			continue;
		for (size_t i = 0; i < n_states; i++)
			dp[i] = INFINITY;
		const double *pf = pb.pre + (size_t)f * (L + 1);
		int end = pb.fit[f * (L + 1)];
		for (int b = 1; b <= end; b++) {
			double val = pf[b] - pf[0] + pb.ovh[f];
			if (b == L) {
				if (val < best)
					best = val, best_fc = fc, best_single = f, best_c = -1;
			} else {
				size_t k = IDX(b, stride[fc], fc);
				dp[k] = val;
				par_j[k] = 0;
				par_c[k] = -1;
			}
		}
		for (int j = 1; j < L; j++)
			for (size_t v = 0; v < V; v++)
				for (int c = 0; c < C; c++) {
					double x = dp[IDX(j, v, c)];
					if (!(x < best))
						continue;       /* cannot lead to a better plan */
					for (int c2 = 0; c2 < C; c2++) {
						size_t used = v / stride[c2] % ((size_t)pb.class_size[c2] + 1);
						if (used >= (size_t)pb.class_size[c2])
							continue;
						double base = x > Hc[c][c2] ? x : Hc[c][c2];
						if (!(base < best))
							continue;
						int d2 = pb.class_member[c2][0];
						const double *p2 = pb.pre + (size_t)d2 * (L + 1);
						int e2 = pb.fit[d2 * (L + 1) + j];
						size_t v2 = v + stride[c2];
						for (int b = j + 1; b <= e2; b++) {
							double cc = p2[b] - p2[j] + pb.ovh[d2];
							double val = base > cc ? base : cc;
							if (b == L) {
								val = val > Rc[c2][fc] ? val : Rc[c2][fc];
								if (val < best)
									best = val, best_fc = fc, best_v = v2, best_c = c2,
									best_single = -1;
								/* also kept as a state for the rebuild */
							}
							size_t k = IDX(b, v2, c2);
							if (val < dp[k]) {
								dp[k] = val;
								par_j[k] = j;
								par_c[k] = (signed char)c;
							}
						}
						moves += (uint64_t)(e2 - j);
					}
				}
		/* Rebuild now if this first class produced the best plan: dp is
		 * overwritten by the next first class. */
		if (best_fc == fc && best_single < 0 && isfinite(best)) {
			int cls[ST_PL_MAX_DEVICES + 1], starts[ST_PL_MAX_DEVICES + 1], m = 0;
			size_t v = best_v;
			int j = L, c = best_c;
			while (c >= 0) {
				size_t k = IDX(j, v, c);
				if (m >= ST_PL_MAX_DEVICES) {
					r = st_error(-EFAULT, "plan: throughput DP rebuild ran away");
					goto out;
				}
				cls[m] = c;
				starts[m] = par_j[k];
				m++;
				int pc = par_c[k];
				v -= stride[c];
				j = par_j[k];
				c = pc;
			}
			int next[ST_PL_MAX_DEVICES] = { 0 };
			out->n_stages = m;
			for (int s = 0; s < m; s++) {
				int cl = cls[m - 1 - s];
				out->stage[s].device = pb.class_member[cl][next[cl]++];
				out->stage[s].first = starts[m - 1 - s];
				out->stage[s].last = (s + 1 < m ? starts[m - 2 - s] : L) - 1;
			}
		}
	}
#undef IDX
	if (st) {
		st->nodes = moves;
		st->states = n_states;
	}
	if (!isfinite(best)) {
		r = st_error(-ENOSPC, "plan: no plan fits: the model's %d units do not fit in the memory of the %d devices%s",
			     L, D, pb.source >= 0 ? " with the first unit on the source device" : "");
		goto out;
	}
	if (best_single >= 0) {
		out->n_stages = 1;
		out->stage[0] = (struct st_pl_stage){ best_single, 0, L - 1 };
	}
	out->value = best;
out:
	free(dp);
	free(par_j);
	free(par_c);
	st_pl_problem_free(&pb);
	return r;
}
