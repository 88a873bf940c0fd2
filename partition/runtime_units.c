/* runtime_units.c: an instance whose units are the runtime's layers.
 *
 * `strata profile` writes units "embedding", blocks, "head"; the runtime
 * places the embedding with the first stage and the head with the last, so
 * a plan with a stage of only the embedding or only the head cannot run
 * (st_pl_plan_runtime_stages gives -ENOTSUP).  Folding the embedding into
 * the first block and the head into the last (costs, weights and KV bytes
 * added) gives an instance whose every plan runs, with unit i = layer i and
 * the same cost for the same placement; planning on it is exact for what
 * the runtime can do. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "plan.h"
#include "util.h"

int st_pl_instance_fold_ends(struct st_pl_instance *in)
{
	int L = in->n_units;
	if (L < 3 || strcmp(in->units[0].name, "embedding") || strcmp(in->units[L - 1].name, "head"))
		return st_error(-ENOTSUP, "instance units: expected embedding, blocks, head (got %d units, first '%.20s')",
				L, L ? in->units[0].name : "");
	for (int d = 0; d < in->n_devices; d++) {
		struct st_pl_device *dv = &in->devices[d];
		double *arrs[2 * ST_PL_MAX_CTX_POINTS];
		int na = 0;
		for (int k = 0; k < dv->n_ctx; k++)
			arrs[na++] = dv->decode_ms[k];
		for (int k = 0; k < dv->n_pf; k++)
			arrs[na++] = dv->prefill_ms[k];
		for (int a = 0; a < na; a++) {
			double *ms = arrs[a];
			ms[1] += ms[0];
			ms[L - 2] += ms[L - 1];
			memmove(ms, ms + 1, (size_t)(L - 2) * sizeof *ms);
		}
	}
	in->units[1].weight_bytes += in->units[0].weight_bytes;
	in->units[1].kv_bytes_per_token += in->units[0].kv_bytes_per_token;
	in->units[L - 2].weight_bytes += in->units[L - 1].weight_bytes;
	in->units[L - 2].kv_bytes_per_token += in->units[L - 1].kv_bytes_per_token;
	memmove(in->units, in->units + 1, (size_t)(L - 2) * sizeof *in->units);
	for (int i = 0; i < L - 2; i++)
		snprintf(in->units[i].name, sizeof in->units[i].name, "layer.%d", i);
	in->n_units = L - 2;
	return 0;
}

int st_pl_plan_layer_stages(const struct st_pl_instance *in, const struct st_pl_plan *p, char *buf, size_t size)
{
	size_t off = 0;
	buf[0] = 0;
	for (int s = 0; s < p->n_stages; s++) {
		int n = snprintf(buf + off, size - off, "%s%s:%d-%d", s ? "," : "", in->devices[p->stage[s].device].name,
				 p->stage[s].first, p->stage[s].last);
		if (n < 0 || (size_t)n >= size - off)
			return st_error(-ENOSPC, "stage spec longer than %zu bytes", size);
		off += (size_t)n;
	}
	return 0;
}
