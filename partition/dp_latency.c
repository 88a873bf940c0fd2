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
 *  2. Otherwise: a short dive of the search below for an incumbent, then
 *     the Lagrangian dual of "each device at most once": with a penalty
 *     lam[d] >= 0 per stage on d, the relaxed optimum minus sum(lam) is a
 *     lower bound for every lam; subgradient steps (Polyak, with the
 *     incumbent as target) raise it, and relaxed solutions that happen to
 *     use distinct devices improve the incumbent.  When bound meets
 *     incumbent the root is solved.
 *  3. Else branch and bound over (unit, device, set of used devices) with
 *     the larger of the two bounds (both admissible: for a completion that
 *     uses d once and only unused devices, penalties sum to at most lam[d]
 *     plus lam over the unused ones), children visited best-bound first, a
 *     memo of the best cost seen per state (a later visit with a higher
 *     cost cannot do better), and symmetry breaking: of interchangeable
 *     devices only the lowest unused index is tried (any plan maps onto one
 *     that does this).
 * Exact in all cases (tests/test_planner.c compares with the exhaustive
 * oracle); the time depends on the duality gap, small on real-looking
 * profiles (80 units x 16 devices: 1-5 ms).  A node limit turns a
 * pathological search into -E2BIG rather than a hang. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "plan.h"
#include "util.h"

#define NODE_LIMIT 50000000ull

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
	double cap;                     /* no stage, hop or return may exceed this */
	double *h;                      /* [(L+1) * D] relaxed optimum (no penalties) */
	int *hb;                        /* argmin end of the stage */
	double *gmin;                   /* [(L+1) * D]: min_e hop[d][e] + h[b][e] */
	int *ge;
	/* Lagrangian bound: penalties lam[d] per stage on d (>= 0). */
	double *lam, *lam_best;         /* [D] */
	double *hl, *ht;                /* [(L+1) * D]: with lam_best / scratch */
	int *hbt, *get;
	bool use_lag;
	uint64_t soft_limit;            /* incumbent dive: stop quietly here */
	bool stop;
	double best;
	struct st_pl_plan best_plan;
	struct st_pl_stage path[ST_PL_MAX_DEVICES];
	struct child *pool;             /* [D][L * n_classes] children per depth */
	struct memo_ent *memo;
	size_t memo_cap, memo_used;
	uint32_t gen;
	uint64_t nodes;
	int err;
};

static inline double C(const struct lat *s, int d, int a, int b)
{
	const double *p = s->pb->pre + (size_t)d * (s->L + 1);
	return p[b] - p[a] + s->pb->ovh[d];
}

/* Relaxed optimum for every suffix, for the first device s->f: h[j][d]
 * is the least cost of units j..L-1 starting a stage at j on d, where a
 * device may recur (not twice in a row) and each stage on e costs lam[e]
 * extra (lam NULL: 0).  hb/ge record the argmins. */
static void relax(struct lat *s, const double *lam, double *h, int *hb, int *ge)
{
	int D = s->D, L = s->L;
	const struct st_pl_problem *pb = s->pb;
	for (int d = 0; d < D; d++) {
		h[L * D + d] = INFINITY;
		s->gmin[L * D + d] = INFINITY;
	}
	for (int j = L - 1; j >= 0; j--) {
		for (int d = 0; d < D; d++) {
			double best = INFINITY;
			int bb = -1, end = pb->fit[d * (L + 1) + j];
			for (int b = j + 1; b <= end; b++) {
				double cc = C(s, d, j, b);
				if (cc > s->cap)
					break;          /* costs are >= 0: longer stages cost more */
				if (b == L && pb->ret[d * D + s->f] > s->cap)
					continue;
				double v = cc + (b == L ? pb->ret[d * D + s->f] : s->gmin[b * D + d]);
				if (v < best)
					best = v, bb = b;
			}
			h[j * D + d] = best + (lam ? lam[d] : 0);
			hb[j * D + d] = bb;
		}
		for (int d = 0; d < D; d++) {
			double best = INFINITY;
			int be = -1;
			for (int e = 0; e < D; e++) {
				if (e == d || pb->hop[d * D + e] > s->cap)
					continue;
				double v = pb->hop[d * D + e] + h[j * D + e];
				if (v < best)
					best = v, be = e;
			}
			s->gmin[j * D + d] = best;
			ge[j * D + d] = be;
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
/* Lower bound on the cost of finishing from a stage at j on d, given
 * `free` = sum of lam_best over devices not yet used (d excluded): a real
 * completion uses d once and only unused devices, so its penalties sum to
 * at most lam_best[d] + free. */
static inline double bound_rest(const struct lat *s, int j, int d, double free)
{
	double b0 = s->h[j * s->D + d];
	if (!s->use_lag)
		return b0;
	double bl = s->hl[j * s->D + d] - s->lam_best[d] - free;
	return bl > b0 ? bl : b0;
}

static void dfs(struct lat *s, int depth, int j, int d, uint64_t mask, double g, double free)
{
	const struct st_pl_problem *pb = s->pb;
	int D = s->D, L = s->L;
	if (s->err || s->stop)
		return;
	if (++s->nodes > NODE_LIMIT) {
		s->err = st_error(-E2BIG, "plan: latency search exceeded %llu nodes (%d devices, %d units)",
				  NODE_LIMIT, D, L);
		return;
	}
	if (s->soft_limit && s->nodes > s->soft_limit) {
		s->stop = true;
		return;
	}
	if (g + bound_rest(s, j, d, free) >= s->best)
		return;
	if (memo_check(s, j, d, mask, g))
		return;
	s->path[depth].device = d;
	s->path[depth].first = j;
	struct child *ch = s->pool + (size_t)depth * (size_t)L * (size_t)pb->n_classes;
	int n = 0, end = pb->fit[d * (L + 1) + j];
	for (int b = j + 1; b <= end; b++) {
		double cc = C(s, d, j, b);
		if (cc > s->cap)
			break;
		double c = g + cc;
		if (b == L) {
			double rt = depth ? pb->ret[d * D + s->f] : 0;
			if (rt > s->cap)
				continue;
			double total = c + rt;
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
			if (e < 0 || pb->hop[d * D + e] > s->cap)
				continue;
			double g2 = c + pb->hop[d * D + e];
			double bound = g2 + bound_rest(s, b, e, free - (s->use_lag ? s->lam_best[e] : 0));
			if (bound < s->best)
				ch[n++] = (struct child){ bound, g2, b, e };
		}
	}
	qsort(ch, (size_t)n, sizeof *ch, cmp_child);
	for (int i = 0; i < n && !s->err; i++) {
		if (ch[i].bound >= s->best)
			break;
		s->path[depth].last = ch[i].b - 1;
		dfs(s, depth + 1, ch[i].b, ch[i].e, mask | 1ull << ch[i].e, ch[i].g2,
		    free - (s->use_lag ? s->lam_best[ch[i].e] : 0));
	}
}

static int lat_init(struct lat *s, const struct st_pl_problem *pb)
{
	memset(s, 0, sizeof *s);
	s->pb = pb;
	s->D = pb->D;
	s->L = pb->L;
	size_t n = (size_t)(s->L + 1) * (size_t)s->D;
	s->h = malloc(n * sizeof *s->h);
	s->gmin = malloc(n * sizeof *s->gmin);
	s->hb = malloc(n * sizeof *s->hb);
	s->ge = malloc(n * sizeof *s->ge);
	s->hl = malloc(n * sizeof *s->hl);
	s->ht = malloc(n * sizeof *s->ht);
	s->hbt = malloc(n * sizeof *s->hbt);
	s->get = malloc(n * sizeof *s->get);
	s->lam = calloc((size_t)s->D, sizeof *s->lam);
	s->lam_best = calloc((size_t)s->D, sizeof *s->lam_best);
	if (!s->h || !s->gmin || !s->hb || !s->ge || !s->hl || !s->ht || !s->hbt || !s->get || !s->lam ||
	    !s->lam_best)
		return st_error(-ENOMEM, "plan: out of memory");
	return 0;
}

static void lat_fini(struct lat *s)
{
	free(s->h);
	free(s->gmin);
	free(s->hb);
	free(s->ge);
	free(s->hl);
	free(s->ht);
	free(s->hbt);
	free(s->get);
	free(s->lam);
	free(s->lam_best);
	free(s->pool);
	free(s->memo);
}

/* Follow the argmins of a relaxed solution from (0, f) into *p; counts
 * stages per device in uses[] and returns the plan's real cost (no
 * penalties), or INFINITY when there is no solution. */
static double walk(const struct lat *s, const int *hb, const int *ge, int *uses, struct st_pl_plan *p)
{
	const struct st_pl_problem *pb = s->pb;
	int D = s->D, L = s->L, j = 0, d = s->f;
	double cost = 0;
	memset(uses, 0, (size_t)D * sizeof *uses);
	p->n_stages = 0;
	for (;;) {
		int b = hb[j * D + d];
		if (b < 0 || p->n_stages >= ST_PL_MAX_DEVICES)
			return INFINITY;
		uses[d]++;
		p->stage[p->n_stages++] = (struct st_pl_stage){ d, j, b - 1 };
		cost += C(s, d, j, b);
		if (b == L)
			return cost + (p->n_stages > 1 ? pb->ret[d * D + s->f] : 0);
		int e = ge[b * D + d];
		if (e < 0)
			return INFINITY;
		cost += pb->hop[d * D + e];
		d = e;
		j = b;
	}
}

/* Subgradient ascent on the Lagrangian dual of "each device at most
 * once": L(lam) = relaxed optimum with a penalty lam[d] per stage on d,
 * minus sum(lam), is a lower bound for every lam >= 0.  Keeps the best
 * lam (and its h in s->hl); relaxed solutions that happen to use distinct
 * devices improve the incumbent.  Returns the best bound. */
static double lagrange(struct lat *s)
{
	int D = s->D, f = s->f, uses[ST_PL_MAX_DEVICES], stall = 0;
	double best_lb = -INFINITY, theta = 1.0;
	struct st_pl_plan p;
	memset(s->lam, 0, (size_t)D * sizeof *s->lam);
	for (int it = 0; it < 60; it++) {
		relax(s, s->lam, s->ht, s->hbt, s->get);
		double sum = 0;
		for (int d = 0; d < D; d++)
			sum += s->lam[d];
		double lb = s->ht[f] - sum;
		if (!isfinite(lb))
			break;
		if (lb > best_lb) {
			best_lb = lb;
			memcpy(s->lam_best, s->lam, (size_t)D * sizeof *s->lam);
			memcpy(s->hl, s->ht, (size_t)(s->L + 1) * (size_t)D * sizeof *s->hl);
			stall = 0;
		} else if (++stall >= 4) {
			theta *= 0.5;
			stall = 0;
		}
		double cost = walk(s, s->hbt, s->get, uses, &p);
		bool distinct = true;
		double norm = 0;
		for (int d = 0; d < D; d++) {
			double gd = uses[d] - 1.0;
			if (uses[d] > 1)
				distinct = false;
			if (gd < 0 && s->lam[d] == 0)
				gd = 0;         /* projected: lam cannot go below 0 */
			norm += gd * gd;
		}
		if (distinct && cost < s->best) {
			s->best = cost;
			s->best_plan = p;
		}
		if (best_lb >= s->best * (1 - 1e-12) || norm == 0 || theta < 1e-4)
			break;
		double gap = isfinite(s->best) ? s->best - lb : (lb > 1 ? lb : 1) * 0.1;
		double step = theta * gap / norm;
		for (int d = 0; d < D; d++) {
			s->lam[d] += step * (uses[d] - 1.0);
			if (s->lam[d] < 0)
				s->lam[d] = 0;
		}
	}
	return best_lb;
}

/* Minimum time per token over plans whose every stage, hop and return is
 * at most cap and whose time is below `below` (INFINITY: no limit; a
 * finite limit lets the search prune from the start).  On return
 * s->best_plan.n_stages == 0 when there is no such plan. */
static int solve(struct lat *s, double cap, double below, bool *relax_exact)
{
	const struct st_pl_problem *pb = s->pb;
	int uses[ST_PL_MAX_DEVICES];
	s->cap = cap;
	s->best = below;
	memset(&s->best_plan, 0, sizeof s->best_plan);
	*relax_exact = true;
	for (int c = 0; c < pb->n_classes; c++) {
		int f = pb->class_member[c][0];
		if (pb->source >= 0 && f != pb->source)
			continue;
		s->f = f;
		s->use_lag = false;
		relax(s, NULL, s->h, s->hb, s->ge);
		double lb = s->h[f];            /* h[0][f] */
		if (!(lb < s->best))
			continue;
		/* If the relaxed optimum uses distinct devices it is a real plan
		 * and, being optimal for the relaxation, exact. */
		struct st_pl_plan rp;
		double cost = walk(s, s->hb, s->ge, uses, &rp);
		bool distinct = isfinite(cost);
		for (int d = 0; d < s->D; d++)
			distinct = distinct && uses[d] <= 1;
		if (distinct) {
			s->best = lb;
			s->best_plan = rp;
			continue;
		}
		*relax_exact = false;
		if (!s->pool) {
			/* children of one node: at most L ends x one device per class */
			s->pool = malloc((size_t)s->D * (size_t)s->L * (size_t)pb->n_classes * sizeof *s->pool);
			s->memo_cap = (size_t)1 << 18;
			s->memo = calloc(s->memo_cap, sizeof *s->memo);
			if (!s->pool || !s->memo)
				return st_error(-ENOMEM, "plan: out of memory");
		}
		/* 1. a quick dive for an incumbent (memo discarded afterwards:
		 *    a truncated expansion proves nothing); */
		s->gen++;
		s->memo_used = 0;
		s->soft_limit = s->nodes + 2000;
		s->stop = false;
		dfs(s, 0, 0, f, 1ull << f, 0.0, 0.0);
		s->soft_limit = 0;
		s->stop = false;
		if (s->err)
			return s->err;
		/* 2. the Lagrangian bound, which may already close the gap; */
		double llb = lagrange(s);
		if (llb >= s->best * (1 - 1e-12))
			continue;
		/* 3. exact branch and bound with both bounds. */
		s->use_lag = isfinite(llb);
		double free = 0;
		for (int d = 0; d < s->D; d++)
			if (d != f)
				free += s->lam_best[d];
		s->gen++;
		s->memo_used = 0;
		dfs(s, 0, 0, f, 1ull << f, 0.0, s->use_lag ? free : 0.0);
		s->use_lag = false;
		if (s->err)
			return s->err;
	}
	return 0;
}

static int no_fit(const struct st_pl_problem *pb)
{
	return st_error(-ENOSPC, "plan: no plan fits: the model's %d units do not fit in the memory of the %d devices%s",
			pb->L, pb->D, pb->source >= 0 ? " with the first unit on the source device" : "");
}

int st_pl_plan_latency(const struct st_pl_instance *in, struct st_pl_plan *out, struct st_pl_stats *st)
{
	struct st_pl_problem pb;
	struct lat s;
	bool exact = false;
	int r = st_pl_problem_build(in, &pb);
	if (r)
		return r;
	memset(out, 0, sizeof *out);
	if (st)
		memset(st, 0, sizeof *st);
	if (!(r = lat_init(&s, &pb)) && !(r = solve(&s, INFINITY, INFINITY, &exact))) {
		if (st) {
			st->nodes = s.nodes;
			st->relaxation_exact = exact;
		}
		if (!s.best_plan.n_stages)
			r = no_fit(&pb);
		else {
			*out = s.best_plan;
			out->value = s.best;
		}
	}
	lat_fini(&s);
	st_pl_problem_free(&pb);
	return r;
}

/* max(T/k, B) of a plan, from the problem's arrays. */
static double plan_F(const struct st_pl_problem *pb, const struct st_pl_plan *p, double k)
{
	int L = pb->L, D = pb->D;
	double T = 0, B = 0;
	for (int i = 0; i < p->n_stages; i++) {
		const struct st_pl_stage *g = &p->stage[i];
		const double *pre = pb->pre + (size_t)g->device * (L + 1);
		double c = pre[g->last + 1] - pre[g->first] + pb->ovh[g->device];
		double h = i + 1 < p->n_stages ? pb->hop[g->device * D + p->stage[i + 1].device]
					       : (p->n_stages > 1 ? pb->ret[g->device * D + p->stage[0].device] : 0);
		T += c + h;
		B = B > c ? B : c;
		B = B > h ? B : h;
	}
	return T / k > B ? T / k : B;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* Most tokens/s with k = batch sequences in flight: minimise
 * F(plan) = max(T/k, B) (T time per token, B bottleneck).  Let T(tau) be
 * the least T over plans with B <= tau (the capped latency search) and
 * tau range over every value a stage, hop or return can take (B_opt of the
 * optimal plan is one of them, and T(B_opt)/k <= T_opt/k, so min over tau of
 * max(T(tau)/k, tau) is the optimum).  T(tau)/k is non-increasing and tau
 * increasing, so the minimum sits where they cross: binary search for the
 * first tau_i with T(tau_i)/k <= tau_i; the answer is the better of tau_i
 * and T(tau_{i-1})/k.  About log2(#values) + 1 capped searches. */
int st_pl_plan_tokens(const struct st_pl_instance *in, struct st_pl_plan *out, struct st_pl_stats *st)
{
	struct st_pl_problem pb;
	struct lat s;
	bool exact;
	double *cand = NULL, k = in->batch ? in->batch : 1;
	int r = st_pl_problem_build(in, &pb);
	if (r)
		return r;
	memset(out, 0, sizeof *out);
	if (st)
		memset(st, 0, sizeof *st);
	int D = pb.D, L = pb.L;
	size_t n = 0, cap = 2 * (size_t)D * (size_t)D;
	for (int d = 0; d < D; d++)
		for (int a = 0; a < L; a++)
			cap += (size_t)(pb.fit[d * (L + 1) + a] - a);
	if (!(r = lat_init(&s, &pb)) && !(cand = malloc(cap * sizeof *cand)))
		r = st_error(-ENOMEM, "plan: out of memory for %zu candidate bottlenecks", cap);
	if (r)
		goto out;
	for (int d = 0; d < D; d++) {
		const double *p = pb.pre + (size_t)d * (L + 1);
		for (int a = 0; a < L; a++)
			for (int b = a + 1; b <= pb.fit[d * (L + 1) + a]; b++)
				cand[n++] = p[b] - p[a] + pb.ovh[d];
		for (int e = 0; e < D; e++)
			if (e != d) {
				cand[n++] = pb.hop[d * D + e];
				cand[n++] = pb.ret[d * D + e];
			}
	}
	qsort(cand, n, sizeof *cand, cmp_double);
	size_t u = 0;
	for (size_t i = 0; i < n; i++)
		if (!u || cand[i] != cand[u - 1])
			cand[u++] = cand[i];
	n = u;
	if (!n) {
		r = no_fit(&pb);
		goto out;
	}
	/* Predicate P(i): T(tau_i)/k <= tau_i (monotone in i), decided by a
	 * search for a plan with T <= k tau_i (a bound that prunes at once). */
	size_t lo = 0, hi = n;          /* first true index in [lo, hi], n = none */
	double best = INFINITY;
	struct st_pl_plan bp = { 0 };
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if ((r = solve(&s, cand[mid], nextafter(k * cand[mid], INFINITY), &exact)))
			goto out;
		if (s.best_plan.n_stages) {
			if (cand[mid] < best)
				best = cand[mid], bp = s.best_plan;
			hi = mid;
		} else
			lo = mid + 1;
	}
	/* Left of the crossing F = T(tau)/k, least at tau_{lo-1}: worth it
	 * only if below the best so far; with no crossing at all, T is the
	 * unconstrained latency optimum. */
	if (lo > 0 || lo == n) {
		if ((r = solve(&s, lo > 0 ? cand[lo - 1] : INFINITY, k * best, &exact)))
			goto out;
		if (s.best_plan.n_stages && plan_F(&pb, &s.best_plan, k) < best)
			best = plan_F(&pb, &s.best_plan, k), bp = s.best_plan;
	}
	if (!isfinite(best)) {
		r = no_fit(&pb);
		goto out;
	}
	*out = bp;
	out->value = plan_F(&pb, &bp, k);       /* its bottleneck may be below the cap */
	if (st)
		st->nodes = s.nodes;
out:
	free(cand);
	lat_fini(&s);
	st_pl_problem_free(&pb);
	return r;
}

int st_pl_plan(const struct st_pl_instance *in, struct st_pl_plan *out, struct st_pl_stats *st)
{
	switch (in->objective) {
	case ST_PL_THROUGHPUT: return st_pl_plan_throughput(in, out, st);
	case ST_PL_TOKENS: return st_pl_plan_tokens(in, out, st);
	default: return st_pl_plan_latency(in, out, st);
	}
}
