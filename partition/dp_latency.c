/* dp_latency.c: exact minimum time per token.
 *
 * Objective (plan.h): sum of stage compute + hops + the return of the
 * output to the first device; each device used at most once; each stage
 * within its device's memory.
 *
 * Method.  Fix the first device f (the source, or one representative per
 * class of interchangeable devices).
 *  1. Relaxation: drop "each device at most once" (keep per-stage memory
 *     and "consecutive stages on different devices").  Its optimum h[j][d]
 *     (cheapest way to run units j..L-1 starting a stage at j on d, then
 *     return to f) is a DP over (unit, device) in O(L^2 D + L D^2).  Every
 *     real plan is a relaxed plan, so h is a lower bound; when the relaxed
 *     optimum happens to use distinct devices it is the exact optimum.
 *  2. Otherwise, branch and bound over (unit, device, set of used devices)
 *     with g + h as the bound (admissible, so nothing optimal is pruned),
 *     children visited best-bound first, a memo of the best cost seen per
 *     state (a later visit with a higher cost cannot do better), and
 *     symmetry breaking: of interchangeable devices only the lowest unused
 *     index is tried (any plan maps onto one that does this).
 * Exact in all cases; the time depends on how far the relaxation is from
 * the real optimum, which is small when per-unit costs are near-uniform
 * per device (real profiles).  A node limit turns pathological searches
 * into -E2BIG rather than a hang. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "plan.h"
#include "util.h"

#define NODE_LIMIT 200000000ull

struct memo_ent {
	uint64_t mask;
	uint32_t key;                   /* j * 64 + d, + 1 (0 = empty) */
	uint32_t gen;
	double g;
};

struct child {
	double bound, g2;
	int b, e;
};

struct lat {
	const struct st_pl_problem *pb;
	int D, L, f;
	double *h;                      /* [(L+1) * D] */
	int *hb;                        /* argmin end of the stage */
	double *gmin;                   /* [(L+1) * D]: min_e hop[d][e] + h[b][e] */
	int *ge;
	double best;
	struct st_pl_plan best_plan;
	struct st_pl_stage path[ST_PL_MAX_DEVICES];
	struct child *pool;             /* [D][L*D] children per depth */
	struct memo_ent *memo;
	size_t memo_cap, memo_used;
	uint32_t gen;
	uint64_t nodes;
	int err;
};

static inline double C(const struct lat *s, int d, int a, int b)
{
	const double *p = s->pb->pre + (size_t)d * (s->L + 1);
	return p[b] - p[a];
}

/* Relaxed optimum for every suffix, for the first device s->f. */
static void relax(struct lat *s)
{
	int D = s->D, L = s->L;
	const struct st_pl_problem *pb = s->pb;
	for (int d = 0; d < D; d++) {
		s->h[L * D + d] = INFINITY;
		s->gmin[L * D + d] = INFINITY;
	}
	for (int j = L - 1; j >= 0; j--) {
		for (int d = 0; d < D; d++) {
			double best = INFINITY;
			int bb = -1, end = pb->fit[d * (L + 1) + j];
			for (int b = j + 1; b <= end; b++) {
				double v = C(s, d, j, b) + (b == L ? pb->ret[d * D + s->f] : s->gmin[b * D + d]);
				if (v < best)
					best = v, bb = b;
			}
			s->h[j * D + d] = best;
			s->hb[j * D + d] = bb;
		}
		for (int d = 0; d < D; d++) {
			double best = INFINITY;
			int be = -1;
			for (int e = 0; e < D; e++) {
				if (e == d)
					continue;
				double v = pb->hop[d * D + e] + s->h[j * D + e];
				if (v < best)
					best = v, be = e;
			}
			s->gmin[j * D + d] = best;
			s->ge[j * D + d] = be;
		}
	}
}

static int cmp_child(const void *a, const void *b)
{
	double x = ((const struct child *)a)->bound, y = ((const struct child *)b)->bound;
	return x < y ? -1 : x > y;
}

/* true: prune (a state at least this good was already expanded). */
static bool memo_check(struct lat *s, int j, int d, uint64_t mask, double g)
{
	if (!s->memo)
		return false;
	uint32_t key = (uint32_t)j * 64u + (uint32_t)d + 1u;
	uint64_t hsh = (mask ^ ((uint64_t)key * 0x9e3779b97f4a7c15ull)) * 0xff51afd7ed558ccdull;
	size_t i = (size_t)(hsh >> 20) & (s->memo_cap - 1);
	for (;;) {
		struct memo_ent *m = &s->memo[i];
		if (m->gen != s->gen || m->key == 0) {
			if (s->memo_used * 10 >= s->memo_cap * 7)
				return false;   /* full: stay exact, just stop remembering */
			m->gen = s->gen;
			m->key = key;
			m->mask = mask;
			m->g = g;
			s->memo_used++;
			return false;
		}
		if (m->key == key && m->mask == mask) {
			if (m->g <= g)
				return true;
			m->g = g;
			return false;
		}
		i = (i + 1) & (s->memo_cap - 1);
	}
}

/* A stage starts at unit j on device d (depth = its index); g = cost of
 * everything before it (including the hop into d). */
static void dfs(struct lat *s, int depth, int j, int d, uint64_t mask, double g)
{
	const struct st_pl_problem *pb = s->pb;
	int D = s->D, L = s->L;
	if (s->err)
		return;
	if (++s->nodes > NODE_LIMIT) {
		s->err = st_error(-E2BIG, "plan: latency search exceeded %llu nodes (%d devices, %d units)",
				  NODE_LIMIT, D, L);
		return;
	}
	if (g + s->h[j * D + d] >= s->best)
		return;
	if (memo_check(s, j, d, mask, g))
		return;
	s->path[depth].device = d;
	s->path[depth].first = j;
	struct child *ch = s->pool + (size_t)depth * (size_t)L * (size_t)D;
	int n = 0, end = pb->fit[d * (L + 1) + j];
	for (int b = j + 1; b <= end; b++) {
		double c = g + C(s, d, j, b);
		if (b == L) {
			double total = c + (depth ? pb->ret[d * D + s->f] : 0);
			if (total < s->best) {
				s->best = total;
				s->path[depth].last = L - 1;
				s->best_plan.n_stages = depth + 1;
				memcpy(s->best_plan.stage, s->path, (size_t)(depth + 1) * sizeof s->path[0]);
			}
			continue;
		}
		for (int cl = 0; cl < pb->n_classes; cl++) {
			int e = -1;
			for (int k = 0; k < pb->class_size[cl]; k++)
				if (!(mask >> pb->class_member[cl][k] & 1)) {
					e = pb->class_member[cl][k];
					break;
				}
			if (e < 0)
				continue;
			double g2 = c + pb->hop[d * D + e];
			double bound = g2 + s->h[b * D + e];
			if (bound < s->best)
				ch[n++] = (struct child){ bound, g2, b, e };
		}
	}
	qsort(ch, (size_t)n, sizeof *ch, cmp_child);
	for (int i = 0; i < n && !s->err; i++) {
		if (ch[i].bound >= s->best)
			break;
		s->path[depth].last = ch[i].b - 1;
		dfs(s, depth + 1, ch[i].b, ch[i].e, mask | 1ull << ch[i].e, ch[i].g2);
	}
}

int st_pl_plan_latency(const struct st_pl_instance *in, struct st_pl_plan *out, struct st_pl_stats *st)
{
	struct st_pl_problem pb;
	struct lat s;
	int r = st_pl_problem_build(in, &pb);
	if (r)
		return r;
	memset(&s, 0, sizeof s);
	memset(out, 0, sizeof *out);
	if (st)
		memset(st, 0, sizeof *st);
	s.pb = &pb;
	s.D = pb.D;
	s.L = pb.L;
	size_t n = (size_t)(s.L + 1) * (size_t)s.D;
	s.h = malloc(n * sizeof *s.h);
	s.gmin = malloc(n * sizeof *s.gmin);
	s.hb = malloc(n * sizeof *s.hb);
	s.ge = malloc(n * sizeof *s.ge);
	if (!s.h || !s.gmin || !s.hb || !s.ge) {
		r = st_error(-ENOMEM, "plan: out of memory");
		goto out;
	}
	s.best = INFINITY;
	bool all_exact = true;
	for (int c = 0; c < pb.n_classes; c++) {
		int f = pb.class_member[c][0];
		if (pb.source >= 0 && f != pb.source)
			continue;
		s.f = f;
		relax(&s);
		double lb = s.h[f];             /* h[0][f] */
		if (!(lb < s.best))
			continue;
		/* Walk the relaxed optimum; if its devices are distinct it is a
		 * real plan and, being optimal for the relaxation, exact. */
		struct st_pl_plan rp = { 0 };
		uint64_t used = 0;
		bool distinct = true;
		int j = 0, d = f;
		for (;;) {
			int b = s.hb[j * s.D + d];
			if (rp.n_stages >= ST_PL_MAX_DEVICES || (used >> d & 1)) {
				distinct = false;
				break;
			}
			used |= 1ull << d;
			rp.stage[rp.n_stages++] = (struct st_pl_stage){ d, j, b - 1 };
			if (b == s.L)
				break;
			d = s.ge[b * s.D + d];
			j = b;
		}
		if (distinct) {
			s.best = lb;
			s.best_plan = rp;
			continue;
		}
		all_exact = false;
		if (!s.pool) {
			s.pool = malloc((size_t)s.D * (size_t)s.L * (size_t)s.D * sizeof *s.pool);
			s.memo_cap = (size_t)1 << 18;
			s.memo = calloc(s.memo_cap, sizeof *s.memo);
			if (!s.pool || !s.memo) {
				r = st_error(-ENOMEM, "plan: out of memory");
				goto out;
			}
		}
		s.gen++;
		s.memo_used = 0;
		dfs(&s, 0, 0, f, 1ull << f, 0.0);
		if (s.err) {
			r = s.err;
			goto out;
		}
	}
	if (st) {
		st->nodes = s.nodes;
		st->relaxation_exact = all_exact;
	}
	if (!isfinite(s.best)) {
		r = st_error(-ENOSPC, "plan: no plan fits: the model's %d units do not fit in the memory of the %d devices%s",
			     s.L, s.D, pb.source >= 0 ? " with the first unit on the source device" : "");
		goto out;
	}
	*out = s.best_plan;
	out->value = s.best;
out:
	free(s.h);
	free(s.gmin);
	free(s.hb);
	free(s.ge);
	free(s.pool);
	free(s.memo);
	st_pl_problem_free(&pb);
	return r;
}

int st_pl_plan(const struct st_pl_instance *in, struct st_pl_plan *out, struct st_pl_stats *st)
{
	return in->objective == ST_PL_THROUGHPUT ? st_pl_plan_throughput(in, out, st)
						 : st_pl_plan_latency(in, out, st);
}
