/* baselines.c: the splits other systems use, for comparison.
 *  solo:    the single best device (EdgeShard's Edge-Solo; with a source
 *           device that is the source itself);
 *  even:    units split evenly over all devices (distributed-llama);
 *  memory:  units split in proportion to memory budgets (llama.cpp, exo);
 *  two-way: the best split over two devices (cloud-edge style).
 * Device order for even/memory: the source first, then the rest in input
 * order.  Even and memory plans may not fit: st_pl_evaluate says so. */
#include <errno.h>
#include <math.h>
#include <string.h>

#include "plan.h"
#include "util.h"

const char *st_pl_baseline_name(enum st_pl_baseline b)
{
	static const char *const n[] = { "solo", "even", "memory", "two-way" };
	return (unsigned)b < ST_PL_BASE_COUNT ? n[b] : "?";
}

static void order(const struct st_pl_instance *in, int *ord)
{
	int n = 0;
	if (in->source >= 0)
		ord[n++] = in->source;
	for (int d = 0; d < in->n_devices; d++)
		if (d != in->source)
			ord[n++] = d;
}

/* Stages from unit counts per device in `ord` order (zero counts skipped). */
static void from_counts(const int *ord, const int *cnt, int n, struct st_pl_plan *p)
{
	int next = 0;
	p->n_stages = 0;
	for (int i = 0; i < n; i++) {
		if (!cnt[i])
			continue;
		p->stage[p->n_stages++] = (struct st_pl_stage){ ord[i], next, next + cnt[i] - 1 };
		next += cnt[i];
	}
}

static bool better(const struct st_pl_instance *in, const struct st_pl_plan *p, double *best)
{
	struct st_pl_eval ev;
	st_pl_evaluate(in, p, &ev);
	if (!ev.valid || !ev.fits)
		return false;
	double v = st_pl_eval_objective(&ev, in->objective);
	if (v < *best) {
		*best = v;
		return true;
	}
	return false;
}

int st_pl_baseline(const struct st_pl_instance *in, enum st_pl_baseline b, struct st_pl_plan *out)
{
	int r = st_pl_instance_validate(in);
	int D = in->n_devices, L = in->n_units;
	int ord[ST_PL_MAX_DEVICES], cnt[ST_PL_MAX_DEVICES] = { 0 };
	double best = INFINITY;
	struct st_pl_plan p;
	if (r)
		return r;
	memset(out, 0, sizeof *out);
	order(in, ord);
	switch (b) {
	case ST_PL_BASE_SOLO:
		for (int d = 0; d < D; d++) {
			if (in->source >= 0 && d != in->source)
				continue;
			p.n_stages = 1;
			p.stage[0] = (struct st_pl_stage){ d, 0, L - 1 };
			if (better(in, &p, &best))
				*out = p;
		}
		if (!isfinite(best))
			return st_error(-ENOSPC, "plan: solo: the model does not fit on %s",
					in->source >= 0 ? "the source device" : "any single device");
		break;
	case ST_PL_BASE_EVEN: {
		int n = D < L ? D : L;
		for (int i = 0; i < n; i++)
			cnt[i] = L / n + (i < L % n);
		from_counts(ord, cnt, n, out);
		break;
	}
	case ST_PL_BASE_MEMORY: {
		/* Largest remainder apportionment of L units by memory budget. */
		double total = 0, rem[ST_PL_MAX_DEVICES];
		int given = 0;
		for (int i = 0; i < D; i++)
			total += (double)in->devices[ord[i]].memory_bytes;
		for (int i = 0; i < D; i++) {
			double share = total > 0 ? L * (double)in->devices[ord[i]].memory_bytes / total : (double)L / D;
			cnt[i] = (int)floor(share);
			rem[i] = share - cnt[i];
			given += cnt[i];
		}
		while (given < L) {
			int k = 0;
			for (int i = 1; i < D; i++)
				if (rem[i] > rem[k])
					k = i;
			cnt[k]++;
			rem[k] = -1;
			given++;
		}
		if (in->source >= 0 && cnt[0] == 0) {
			int k = 1;
			for (int i = 2; i < D; i++)
				if (cnt[i] > cnt[k])
					k = i;
			cnt[k]--;
			cnt[0]++;
		}
		from_counts(ord, cnt, D, out);
		break;
	}
	case ST_PL_BASE_TWO_WAY:
		for (int a = 0; a < D; a++) {
			if (in->source >= 0 && a != in->source)
				continue;
			for (int e = 0; e < D; e++) {
				if (e == a)
					continue;
				for (int c = 1; c < L; c++) {
					p.n_stages = 2;
					p.stage[0] = (struct st_pl_stage){ a, 0, c - 1 };
					p.stage[1] = (struct st_pl_stage){ e, c, L - 1 };
					if (better(in, &p, &best))
						*out = p;
				}
			}
		}
		if (!isfinite(best))
			return st_error(-ENOSPC, "plan: two-way: no split over two devices fits");
		break;
	default:
		return st_error(-EINVAL, "plan: unknown baseline %d", (int)b);
	}
	struct st_pl_eval ev;
	st_pl_evaluate(in, out, &ev);
	out->value = st_pl_eval_objective(&ev, in->objective);
	return 0;
}
