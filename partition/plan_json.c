/* plan_json.c: the planner's JSON: instances in (docs/plan-input.md),
 * plans out, plans back in by device name, and the runtime's stage spec. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "plan.h"
#include "util.h"

/* Reject members not in `allowed` (NULL-terminated): typos must not be
 * silently ignored. */
static int only_keys(const struct st_json *o, const char *what, const char *const *allowed)
{
	if (!o || o->type != ST_JSON_OBJECT)
		return st_error(-EINVAL, "%s: expected an object", what);
	for (size_t i = 0; i < o->u.obj.n; i++) {
		const char *k = o->u.obj.members[i].key;
		bool okk = false;
		for (const char *const *a = allowed; *a; a++)
			if (!strcmp(*a, k))
				okk = true;
		if (!okk)
			return st_error(-EINVAL, "%s at %u:%u: unknown key \"%.60s\"", what,
					o->u.obj.members[i].value.line, o->u.obj.members[i].value.col, k);
	}
	return 0;
}

static int get_name(const struct st_json *o, const char *key, const char *what, char *dst, bool required)
{
	const struct st_json *v = st_json_get(o, key);
	const char *s;
	char w[256];
	snprintf(w, sizeof w, "%.180s.%.60s", what, key);
	if (!v) {
		if (required)
			return st_error(-EINVAL, "%s: missing", w);
		return 0;
	}
	int r = st_json_str(v, w, &s);
	if (r)
		return r;
	if (strlen(s) >= ST_PL_NAME || !s[0] || strlen(s) != v->u.str.len)
		return st_error(-EINVAL, "%s at %u:%u: must be 1..%d characters without NUL", w, v->line, v->col,
				ST_PL_NAME - 1);
	memcpy(dst, s, strlen(s) + 1);
	return 0;
}

static int get_u64(const struct st_json *o, const char *key, const char *what, uint64_t *dst, bool required)
{
	const struct st_json *v = st_json_get(o, key);
	char w[256];
	snprintf(w, sizeof w, "%.180s.%.60s", what, key);
	if (!v)
		return required ? st_error(-EINVAL, "%s: missing", w) : 0;
	return st_json_u64(v, w, dst);
}

static int get_u32(const struct st_json *o, const char *key, const char *what, uint32_t *dst, bool required)
{
	uint64_t x = *dst;
	int r = get_u64(o, key, what, &x, required);
	if (r)
		return r;
	if (x > UINT32_MAX)
		return st_error(-EINVAL, "%s.%s: %llu is too large", what, key, (unsigned long long)x);
	*dst = (uint32_t)x;
	return 0;
}

static int get_ms_array(const struct st_json *v, const char *what, int n, double *dst)
{
	if (!v || v->type != ST_JSON_ARRAY)
		return st_error(-EINVAL, "%s: expected an array of %d numbers", what, n);
	if (v->u.arr.n != (size_t)n)
		return st_error(-EINVAL, "%s at %u:%u: %zu numbers, the model has %d units", what, v->line, v->col,
				v->u.arr.n, n);
	for (int i = 0; i < n; i++) {
		const struct st_json *x = &v->u.arr.items[i];
		int r = st_json_f64(x, what, &dst[i]);
		if (r)
			return r;
		if (dst[i] < 0)
			return st_error(-EINVAL, "%s[%d] at %u:%u: %g ms is negative", what, i, x->line, x->col, dst[i]);
	}
	return 0;
}

static int get_link(const struct st_json *o, const char *what, struct st_pl_link *l)
{
	static const char *const keys[] = { "bandwidth_mbps", "rtt_ms", "from", "to", "directed", NULL };
	char w[160];
	int r = only_keys(o, what, keys);
	if (r)
		return r;
	snprintf(w, sizeof w, "%s.bandwidth_mbps", what);
	if ((r = st_json_f64(st_json_get(o, "bandwidth_mbps"), w, &l->bandwidth_mbps)))
		return r;
	l->rtt_ms = 0;
	if (st_json_get(o, "rtt_ms")) {
		snprintf(w, sizeof w, "%s.rtt_ms", what);
		if ((r = st_json_f64(st_json_get(o, "rtt_ms"), w, &l->rtt_ms)))
			return r;
	}
	if (!(l->bandwidth_mbps > 0) || !(l->rtt_ms >= 0))
		return st_error(-EINVAL, "%s at %u:%u: bandwidth_mbps %g must be > 0 and rtt_ms %g >= 0", what,
				o->line, o->col, l->bandwidth_mbps, l->rtt_ms);
	return 0;
}

/* Device cost/memory fields, from the device object or its kind. */
static int device_fields(struct st_pl_instance *in, int d, const struct st_json *o, const char *what,
			 bool *have_mem, bool *have_ms)
{
	struct st_pl_device *dv = &in->devices[d];
	const struct st_json *v;
	char w[160];
	int r;
	if (!*have_mem && st_json_get(o, "memory_bytes")) {
		if ((r = get_u64(o, "memory_bytes", what, &dv->memory_bytes, true)))
			return r;
		*have_mem = true;
	}
	if (!*have_ms && (v = st_json_get(o, "decode_ms"))) {
		double *ms;
		if ((r = st_pl_device_add_ctx(in, d, 0, &ms)))
			return r;
		snprintf(w, sizeof w, "%s.decode_ms", what);
		if ((r = get_ms_array(v, w, in->n_units, ms)))
			return r;
		*have_ms = true;
	}
	if (!*have_ms && (v = st_json_get(o, "decode_ms_at"))) {
		if (v->type != ST_JSON_ARRAY || v->u.arr.n < 1 || v->u.arr.n > ST_PL_MAX_CTX_POINTS)
			return st_error(-EINVAL, "%s.decode_ms_at: expected an array of 1..%d {context, ms}", what,
					ST_PL_MAX_CTX_POINTS);
		for (size_t k = 0; k < v->u.arr.n; k++) {
			static const char *const keys[] = { "context", "ms", NULL };
			const struct st_json *pt = &v->u.arr.items[k];
			uint32_t ctx = 0;
			double *ms;
			snprintf(w, sizeof w, "%s.decode_ms_at[%zu]", what, k);
			if ((r = only_keys(pt, w, keys)) || (r = get_u32(pt, "context", w, &ctx, true)) ||
			    (r = st_pl_device_add_ctx(in, d, ctx, &ms)))
				return r;
			strncat(w, ".ms", sizeof w - strlen(w) - 1);
			if ((r = get_ms_array(st_json_get(pt, "ms"), w, in->n_units, ms)))
				return r;
		}
		*have_ms = true;
	}
	if (!dv->overhead_ms && (v = st_json_get(o, "stage_overhead_ms"))) {
		snprintf(w, sizeof w, "%s.stage_overhead_ms", what);
		if ((r = st_json_f64(v, w, &dv->overhead_ms)))
			return r;
		if (!(dv->overhead_ms >= 0))
			return st_error(-EINVAL, "%s at %u:%u: must be >= 0", w, v->line, v->col);
	}
	if (!dv->n_pf && st_json_get(o, "prefill_ms") && st_json_get(o, "prefill_ms_at"))
		return st_error(-EINVAL, "%s: give prefill_ms or prefill_ms_at, not both", what);
	if (!dv->n_pf && (v = st_json_get(o, "prefill_ms"))) {
		double *ms;
		if ((r = st_pl_device_add_prefill(in, d, 0, &ms)))
			return r;
		snprintf(w, sizeof w, "%s.prefill_ms", what);
		if ((r = get_ms_array(v, w, in->n_units, ms)))
			return r;
	}
	if (!dv->n_pf && (v = st_json_get(o, "prefill_ms_at"))) {
		if (v->type != ST_JSON_ARRAY || v->u.arr.n < 1 || v->u.arr.n > ST_PL_MAX_CTX_POINTS)
			return st_error(-EINVAL, "%s.prefill_ms_at: expected an array of 1..%d {tokens, ms}", what,
					ST_PL_MAX_CTX_POINTS);
		for (size_t k = 0; k < v->u.arr.n; k++) {
			static const char *const keys[] = { "tokens", "ms", NULL };
			const struct st_json *pt = &v->u.arr.items[k];
			uint32_t tokens = 0;
			double *ms;
			snprintf(w, sizeof w, "%s.prefill_ms_at[%zu]", what, k);
			if ((r = only_keys(pt, w, keys)) || (r = get_u32(pt, "tokens", w, &tokens, true)))
				return r;
			if (tokens < 1)
				return st_error(-EINVAL, "%s.tokens: %u (must be >= 1)", w, tokens);
			if ((r = st_pl_device_add_prefill(in, d, tokens, &ms)))
				return r;
			strncat(w, ".ms", sizeof w - strlen(w) - 1);
			if ((r = get_ms_array(st_json_get(pt, "ms"), w, in->n_units, ms)))
				return r;
		}
	}
	if (!dv->peak_gbs && (v = st_json_get(o, "peak_gbs"))) {
		snprintf(w, sizeof w, "%s.peak_gbs", what);
		if ((r = st_json_f64(v, w, &dv->peak_gbs)))
			return r;
		if (!(dv->peak_gbs >= 0))
			return st_error(-EINVAL, "%s at %u:%u: must be >= 0", w, v->line, v->col);
	}
	return 0;
}

int st_pl_instance_from_json(const struct st_json *root, struct st_pl_instance *in)
{
	static const char *const top_keys[] = { "format", "version", "comment", "model", "kinds", "devices",
						"links", "objective", "constraints", NULL };
	static const char *const model_keys[] = { "name", "units", "activation_bytes", "output_bytes", NULL };
	static const char *const unit_keys[] = { "name", "weight_bytes", "kv_bytes_per_token", "repeat", NULL };
	static const char *const dev_keys[] = { "name", "kind", "host", "memory_bytes", "decode_ms",
						"decode_ms_at", "prefill_ms", "prefill_ms_at", "stage_overhead_ms",
						"peak_gbs", NULL };
	static const char *const kind_keys[] = { "memory_bytes", "decode_ms", "decode_ms_at", "prefill_ms",
						 "prefill_ms_at", "stage_overhead_ms", "peak_gbs", NULL };
	static const char *const link_keys[] = { "default", "same_host", "pairs", NULL };
	static const char *const con_keys[] = { "source", "context", "batch", "prompt_tokens", NULL };
	const struct st_json *v, *model, *units, *devs, *kinds, *links, *con;
	char w[160];
	uint64_t version = 0;
	int r;
	memset(in, 0, sizeof *in);
	in->source = -1;
	if ((r = only_keys(root, "plan input", top_keys)))
		return r;
	if ((v = st_json_get(root, "format"))) {
		const char *s;
		if ((r = st_json_str(v, "format", &s)))
			return r;
		if (strcmp(s, "strata-plan-input"))
			return st_error(-EINVAL, "format: \"%.60s\" is not \"strata-plan-input\"", s);
	}
	if ((r = get_u64(root, "version", "plan input", &version, true)))
		return r;
	if (version != 1)
		return st_error(-EINVAL, "plan input: version %llu not supported (this strata reads version 1)",
				(unsigned long long)version);
	model = st_json_get(root, "model");
	if ((r = only_keys(model, "model", model_keys)))
		return r;
	units = st_json_get(model, "units");
	devs = st_json_get(root, "devices");
	if (!units || units->type != ST_JSON_ARRAY || !units->u.arr.n)
		return st_error(-EINVAL, "model.units: expected a non-empty array");
	if (!devs || devs->type != ST_JSON_ARRAY || !devs->u.arr.n || devs->u.arr.n > ST_PL_MAX_DEVICES)
		return st_error(-EINVAL, "devices: expected an array of 1..%d devices", ST_PL_MAX_DEVICES);
	uint64_t L = 0;
	for (size_t i = 0; i < units->u.arr.n; i++) {
		uint64_t rep = 1;
		snprintf(w, sizeof w, "model.units[%zu]", i);
		if ((r = only_keys(&units->u.arr.items[i], w, unit_keys)) ||
		    (r = get_u64(&units->u.arr.items[i], "repeat", w, &rep, false)))
			return r;
		if (rep < 1 || rep > ST_PL_MAX_UNITS || (L += rep) > ST_PL_MAX_UNITS)
			return st_error(-EINVAL, "%s: repeat %llu gives more than %d units", w, (unsigned long long)rep,
					ST_PL_MAX_UNITS);
	}
	struct st_pl_link nolink = { NAN, NAN };
	if ((r = st_pl_instance_alloc(in, (int)devs->u.arr.n, (int)L, nolink)))
		return r;
	int u = 0;
	for (size_t i = 0; i < units->u.arr.n; i++) {
		const struct st_json *o = &units->u.arr.items[i];
		uint64_t rep = 1;
		struct st_pl_unit x = { "", 0, 0 };
		snprintf(w, sizeof w, "model.units[%zu]", i);
		if ((r = get_name(o, "name", w, x.name, true)) || (r = get_u64(o, "repeat", w, &rep, false)) ||
		    (r = get_u64(o, "weight_bytes", w, &x.weight_bytes, true)) ||
		    (r = get_u64(o, "kv_bytes_per_token", w, &x.kv_bytes_per_token, false)))
			goto err;
		for (uint64_t k = 0; k < rep; k++) {
			in->units[u] = x;
			if (rep > 1)
				snprintf(in->units[u].name, ST_PL_NAME, "%.40s.%llu", x.name, (unsigned long long)k);
			u++;
		}
	}
	if ((r = get_u64(model, "activation_bytes", "model", &in->activation_bytes, true)) ||
	    (r = get_u64(model, "output_bytes", "model", &in->output_bytes, false)))
		goto err;
	kinds = st_json_get(root, "kinds");
	if (kinds && kinds->type != ST_JSON_OBJECT) {
		r = st_error(-EINVAL, "kinds: expected an object of kind name -> fields");
		goto err;
	}
	for (size_t i = 0; kinds && i < kinds->u.obj.n; i++) {
		snprintf(w, sizeof w, "kinds.%.60s", kinds->u.obj.members[i].key);
		if ((r = only_keys(&kinds->u.obj.members[i].value, w, kind_keys)))
			goto err;
	}
	for (int d = 0; d < in->n_devices; d++) {
		const struct st_json *o = &devs->u.arr.items[d];
		struct st_pl_device *dv = &in->devices[d];
		bool have_mem = false, have_ms = false;
		snprintf(w, sizeof w, "devices[%d]", d);
		if ((r = only_keys(o, w, dev_keys)) || (r = get_name(o, "name", w, dv->name, true)) ||
		    (r = get_name(o, "kind", w, dv->kind, false)) || (r = get_name(o, "host", w, dv->host, false)))
			goto err;
		for (int e = 0; e < d; e++)
			if (!strcmp(in->devices[e].name, dv->name)) {
				r = st_error(-EINVAL, "%s: device name \"%s\" used twice", w, dv->name);
				goto err;
			}
		snprintf(w, sizeof w, "devices[%d] (%s)", d, dv->name);
		if ((r = device_fields(in, d, o, w, &have_mem, &have_ms)))
			goto err;
		if (dv->kind[0]) {
			const struct st_json *k = st_json_get(kinds, dv->kind);
			if (!k && (!have_mem || !have_ms)) {
				r = st_error(-EINVAL, "%s: kind \"%s\" is not in \"kinds\"", w, dv->kind);
				goto err;
			}
			char kw[160];
			snprintf(kw, sizeof kw, "kinds.%s", dv->kind);
			if (k && (r = device_fields(in, d, k, kw, &have_mem, &have_ms)))
				goto err;
		}
		if (!have_mem || !have_ms) {
			r = st_error(-EINVAL, "%s: needs memory_bytes and decode_ms (or decode_ms_at), here or in its kind", w);
			goto err;
		}
		if (!dv->host[0])
			memcpy(dv->host, dv->name, sizeof dv->host);
	}
	/* Links: default, then same_host, then explicit pairs. */
	links = st_json_get(root, "links");
	if (links) {
		const struct st_json *pairs;
		struct st_pl_link l;
		int D = in->n_devices;
		if ((r = only_keys(links, "links", link_keys)))
			goto err;
		if ((v = st_json_get(links, "default"))) {
			if ((r = get_link(v, "links.default", &l)))
				goto err;
			for (int i = 0; i < D * D; i++)
				in->links[i] = l;
		}
		if ((v = st_json_get(links, "same_host"))) {
			if ((r = get_link(v, "links.same_host", &l)))
				goto err;
			for (int a = 0; a < D; a++)
				for (int b = 0; b < D; b++)
					if (!strcmp(in->devices[a].host, in->devices[b].host))
						in->links[a * D + b] = l;
		}
		pairs = st_json_get(links, "pairs");
		if (pairs && pairs->type != ST_JSON_ARRAY) {
			r = st_error(-EINVAL, "links.pairs: expected an array");
			goto err;
		}
		for (size_t i = 0; pairs && i < pairs->u.arr.n; i++) {
			const struct st_json *o = &pairs->u.arr.items[i];
			char from[ST_PL_NAME] = "", to[ST_PL_NAME] = "";
			bool directed = false;
			snprintf(w, sizeof w, "links.pairs[%zu]", i);
			if ((r = get_link(o, w, &l)) || (r = get_name(o, "from", w, from, true)) ||
			    (r = get_name(o, "to", w, to, true)))
				goto err;
			if (st_json_get(o, "directed") && (r = st_json_bool(st_json_get(o, "directed"), w, &directed)))
				goto err;
			int a = st_pl_device_find(in, from), b = st_pl_device_find(in, to);
			if (a < 0 || b < 0 || a == b) {
				r = st_error(-EINVAL, "%s: \"%s\" -> \"%s\" must name two different devices", w, from, to);
				goto err;
			}
			in->links[a * D + b] = l;
			if (!directed)
				in->links[b * D + a] = l;
		}
	}
	for (int a = 0; a < in->n_devices; a++)
		for (int b = 0; b < in->n_devices; b++)
			if (a != b && isnan(in->links[a * in->n_devices + b].bandwidth_mbps)) {
				r = st_error(-EINVAL, "links: no link from %s to %s (give links.default or a pair)",
					     in->devices[a].name, in->devices[b].name);
				goto err;
			}
	in->objective = ST_PL_LATENCY;
	if ((v = st_json_get(root, "objective"))) {
		const char *s;
		if ((r = st_json_str(v, "objective", &s)))
			goto err;
		if ((r = st_pl_objective_parse(s, &in->objective)))
			goto err;
	}
	in->batch = 1;
	if ((con = st_json_get(root, "constraints"))) {
		char src[ST_PL_NAME] = "";
		if ((r = only_keys(con, "constraints", con_keys)) ||
		    (r = get_name(con, "source", "constraints", src, false)) ||
		    (r = get_u32(con, "context", "constraints", &in->context, false)) ||
		    (r = get_u32(con, "batch", "constraints", &in->batch, false)) ||
		    (r = get_u32(con, "prompt_tokens", "constraints", &in->prompt_tokens, false)))
			goto err;
		if (src[0] && (in->source = st_pl_device_find(in, src)) < 0) {
			r = st_error(-EINVAL, "constraints.source: no device named \"%s\"", src);
			goto err;
		}
	}
	if ((r = st_pl_instance_validate(in)))
		goto err;
	return 0;
err:
	st_pl_instance_free(in);
	return r;
}

int st_pl_instance_load(const char *path, struct st_pl_instance *in)
{
	struct st_json_doc *doc;
	int r = st_json_parse_file(path, NULL, &doc);
	memset(in, 0, sizeof *in);
	in->source = -1;
	if (r)
		return r;
	r = st_pl_instance_from_json(st_json_root(doc), in);
	if (r) {
		char msg[512];
		snprintf(msg, sizeof msg, "%s", st_last_error());
		st_error(r, "%s: %s", path, msg);
	}
	st_json_doc_free(doc);
	return r;
}

static void link_obj(struct st_jw *w, const char *key, const struct st_pl_link *l)
{
	st_jw_object_begin(w, key);
	st_jw_number(w, "bandwidth_mbps", l->bandwidth_mbps);
	st_jw_number(w, "rtt_ms", l->rtt_ms);
	st_jw_object_end(w);
}

char *st_pl_instance_to_json(const struct st_pl_instance *in, bool pretty)
{
	struct st_jw w;
	int D = in->n_devices;
	st_jw_init(&w, pretty);
	st_jw_object_begin(&w, NULL);
	st_jw_string(&w, "format", "strata-plan-input");
	st_jw_int(&w, "version", 1);
	st_jw_object_begin(&w, "model");
	st_jw_array_begin(&w, "units");
	for (int i = 0; i < in->n_units; i++) {
		st_jw_object_begin(&w, NULL);
		st_jw_string(&w, "name", in->units[i].name);
		st_jw_uint(&w, "weight_bytes", in->units[i].weight_bytes);
		st_jw_uint(&w, "kv_bytes_per_token", in->units[i].kv_bytes_per_token);
		st_jw_object_end(&w);
	}
	st_jw_array_end(&w);
	st_jw_uint(&w, "activation_bytes", in->activation_bytes);
	st_jw_uint(&w, "output_bytes", in->output_bytes);
	st_jw_object_end(&w);
	st_jw_array_begin(&w, "devices");
	for (int d = 0; d < D; d++) {
		const struct st_pl_device *dv = &in->devices[d];
		st_jw_object_begin(&w, NULL);
		st_jw_string(&w, "name", dv->name);
		if (dv->kind[0])
			st_jw_string(&w, "kind", dv->kind);
		st_jw_string(&w, "host", dv->host);
		st_jw_uint(&w, "memory_bytes", dv->memory_bytes);
		if (dv->overhead_ms > 0)
			st_jw_number(&w, "stage_overhead_ms", dv->overhead_ms);
		st_jw_array_begin(&w, "decode_ms_at");
		for (int k = 0; k < dv->n_ctx; k++) {
			st_jw_object_begin(&w, NULL);
			st_jw_uint(&w, "context", dv->ctx[k]);
			st_jw_array_begin(&w, "ms");
			for (int i = 0; i < in->n_units; i++)
				st_jw_number(&w, NULL, dv->decode_ms[k][i]);
			st_jw_array_end(&w);
			st_jw_object_end(&w);
		}
		st_jw_array_end(&w);
		if (dv->peak_gbs > 0)
			st_jw_number(&w, "peak_gbs", dv->peak_gbs);
		if (dv->n_pf == 1 && dv->pf_tokens[0] == 0) {
			st_jw_array_begin(&w, "prefill_ms");
			for (int i = 0; i < in->n_units; i++)
				st_jw_number(&w, NULL, dv->prefill_ms[0][i]);
			st_jw_array_end(&w);
		} else if (dv->n_pf) {
			st_jw_array_begin(&w, "prefill_ms_at");
			for (int k = 0; k < dv->n_pf; k++) {
				st_jw_object_begin(&w, NULL);
				st_jw_uint(&w, "tokens", dv->pf_tokens[k]);
				st_jw_array_begin(&w, "ms");
				for (int i = 0; i < in->n_units; i++)
					st_jw_number(&w, NULL, dv->prefill_ms[k][i]);
				st_jw_array_end(&w);
				st_jw_object_end(&w);
			}
			st_jw_array_end(&w);
		}
		st_jw_object_end(&w);
	}
	st_jw_array_end(&w);
	st_jw_object_begin(&w, "links");
	if (D > 1)
		link_obj(&w, "default", &in->links[1]);
	st_jw_array_begin(&w, "pairs");
	for (int a = 0; a < D; a++)
		for (int b = 0; b < D; b++) {
			if (a == b || (D > 1 && !memcmp(&in->links[a * D + b], &in->links[1], sizeof in->links[1])))
				continue;
			st_jw_object_begin(&w, NULL);
			st_jw_string(&w, "from", in->devices[a].name);
			st_jw_string(&w, "to", in->devices[b].name);
			st_jw_number(&w, "bandwidth_mbps", in->links[a * D + b].bandwidth_mbps);
			st_jw_number(&w, "rtt_ms", in->links[a * D + b].rtt_ms);
			st_jw_bool(&w, "directed", true);
			st_jw_object_end(&w);
		}
	st_jw_array_end(&w);
	st_jw_object_end(&w);
	st_jw_string(&w, "objective", st_pl_objective_name(in->objective));
	st_jw_object_begin(&w, "constraints");
	if (in->source >= 0)
		st_jw_string(&w, "source", in->devices[in->source].name);
	st_jw_uint(&w, "context", in->context);
	st_jw_uint(&w, "batch", in->batch);
	st_jw_uint(&w, "prompt_tokens", in->prompt_tokens);
	st_jw_object_end(&w);
	st_jw_object_end(&w);
	int err;
	char *s = st_jw_finish(&w, NULL, &err);
	if (!s)
		st_error(err, "plan: cannot write the instance as JSON");
	return s;
}

/* ---- plans --------------------------------------------------------------- */

int st_pl_plan_stages_spec(const struct st_pl_instance *in, const struct st_pl_plan *p, char *buf, size_t size)
{
	size_t n = 0;
	if (size)
		buf[0] = 0;
	for (int s = 0; s < p->n_stages; s++) {
		int k = snprintf(buf + n, size - n, "%s%s:%d-%d", s ? "," : "", in->devices[p->stage[s].device].name,
				 p->stage[s].first, p->stage[s].last);
		if (k < 0 || (size_t)k >= size - n)
			return st_error(-ENOSPC, "plan: stage spec longer than %zu bytes", size);
		n += (size_t)k;
	}
	return 0;
}

int st_pl_plan_runtime_stages(const struct st_pl_instance *in, const struct st_pl_plan *p, char *buf, size_t size)
{
	int L = in->n_units;
	size_t n = 0;
	if (size)
		buf[0] = 0;
	/* Folded by st_pl_instance_fold_ends: units are the layers. */
	if (L >= 1 && !strncmp(in->units[0].name, "layer.", 6))
		return st_pl_plan_layer_stages(in, p, buf, size);
	if (L < 3 || strcmp(in->units[0].name, "embedding") || strcmp(in->units[L - 1].name, "head"))
		return st_error(-ENOTSUP, "plan: units are not embedding, blocks, head: no runtime stage spec");
	for (int s = 0; s < p->n_stages; s++) {
		int a = p->stage[s].first < 1 ? 1 : p->stage[s].first, b = p->stage[s].last > L - 2 ? L - 2 : p->stage[s].last;
		if (a > b)
			return st_error(-ENOTSUP, "plan: stage %d (%s) holds only the %s, which the runtime cannot place alone",
					s, in->devices[p->stage[s].device].name, p->stage[s].first == 0 ? "embedding" : "head");
		int k = snprintf(buf + n, size - n, "%s%s:%d-%d", s ? "," : "", in->devices[p->stage[s].device].name,
				 a - 1, b - 1);
		if (k < 0 || (size_t)k >= size - n)
			return st_error(-ENOSPC, "plan: stage spec longer than %zu bytes", size);
		n += (size_t)k;
	}
	return 0;
}

char *st_pl_plan_to_json(const struct st_pl_instance *in, const struct st_pl_plan *p, bool pretty)
{
	struct st_pl_eval ev;
	struct st_jw w;
	char spec[4096];
	st_pl_evaluate(in, p, &ev);
	if (!ev.valid) {
		st_error(-EINVAL, "plan: not a valid plan: %s", ev.why);
		return NULL;
	}
	if (st_pl_plan_stages_spec(in, p, spec, sizeof spec))
		spec[0] = 0;
	st_jw_init(&w, pretty);
	st_jw_object_begin(&w, NULL);
	st_jw_string(&w, "format", "strata-plan");
	st_jw_int(&w, "version", 1);
	st_jw_string(&w, "objective", st_pl_objective_name(in->objective));
	st_jw_int(&w, "units", in->n_units);
	st_jw_array_begin(&w, "stages");
	for (int s = 0; s < p->n_stages; s++) {
		const struct st_pl_device *dv = &in->devices[p->stage[s].device];
		st_jw_object_begin(&w, NULL);
		st_jw_string(&w, "host", dv->host);
		st_jw_string(&w, "device", dv->name);
		st_jw_int(&w, "first", p->stage[s].first);
		st_jw_int(&w, "last", p->stage[s].last);
		st_jw_object_end(&w);
	}
	st_jw_array_end(&w);
	st_jw_string(&w, "stages_spec", spec);
	if (st_pl_plan_runtime_stages(in, p, spec, sizeof spec) == 0)
		st_jw_string(&w, "runtime_stages", spec);
	st_jw_object_begin(&w, "predicted");
	st_jw_number(&w, "ms_per_token", ev.latency_ms);
	st_jw_number(&w, "bottleneck_ms", ev.bottleneck_ms);
	st_jw_number(&w, "tokens_per_s", ev.tokens_per_s);
	if (ev.prefill_ms > 0) {
		st_jw_number(&w, "prefill_ms", ev.prefill_ms);
		st_jw_uint(&w, "prompt_tokens", in->prompt_tokens);
	}
	st_jw_uint(&w, "context", in->context);
	st_jw_uint(&w, "batch", in->batch);
	st_jw_bool(&w, "fits", ev.fits);
	st_jw_array_begin(&w, "stage_ms");
	for (int s = 0; s < p->n_stages; s++)
		st_jw_number(&w, NULL, ev.stage_ms[s]);
	st_jw_array_end(&w);
	st_jw_array_begin(&w, "hop_ms");
	for (int s = 0; s + 1 < p->n_stages; s++)
		st_jw_number(&w, NULL, ev.hop_ms[s]);
	st_jw_array_end(&w);
	st_jw_number(&w, "return_ms", p->n_stages > 1 ? ev.hop_ms[p->n_stages - 1] : 0.0);
	st_jw_array_begin(&w, "memory");
	for (int s = 0; s < p->n_stages; s++) {
		st_jw_object_begin(&w, NULL);
		st_jw_string(&w, "device", in->devices[p->stage[s].device].name);
		st_jw_uint(&w, "bytes", ev.mem_bytes[s]);
		st_jw_uint(&w, "budget", in->devices[p->stage[s].device].memory_bytes);
		st_jw_object_end(&w);
	}
	st_jw_array_end(&w);
	st_jw_object_end(&w);
	st_jw_object_end(&w);
	int err;
	char *s = st_jw_finish(&w, NULL, &err);
	if (!s)
		st_error(err, "plan: cannot write the plan as JSON");
	return s;
}

int st_pl_plan_file_from_json(const struct st_json *root, struct st_pl_plan_file *pf)
{
	const struct st_json *v, *stages;
	const char *s;
	uint64_t version = 0, units = 0;
	int r;
	memset(pf, 0, sizeof *pf);
	if (!root || root->type != ST_JSON_OBJECT)
		return st_error(-EINVAL, "plan: expected an object");
	if ((v = st_json_get(root, "format"))) {
		if ((r = st_json_str(v, "plan.format", &s)))
			return r;
		if (strcmp(s, "strata-plan"))
			return st_error(-EINVAL, "plan.format: \"%.60s\" is not \"strata-plan\"", s);
	}
	if ((r = get_u64(root, "version", "plan", &version, true)))
		return r;
	if (version != 1)
		return st_error(-EINVAL, "plan: version %llu not supported", (unsigned long long)version);
	if ((r = get_u64(root, "units", "plan", &units, false)))
		return r;
	if (units > ST_PL_MAX_UNITS)
		return st_error(-EINVAL, "plan.units: %llu is too many", (unsigned long long)units);
	stages = st_json_get(root, "stages");
	if (!stages || stages->type != ST_JSON_ARRAY || !stages->u.arr.n || stages->u.arr.n > ST_PL_MAX_DEVICES)
		return st_error(-EINVAL, "plan.stages: expected an array of 1..%d stages", ST_PL_MAX_DEVICES);
	int next = 0;
	for (size_t i = 0; i < stages->u.arr.n; i++) {
		static const char *const keys[] = { "host", "device", "first", "last", NULL };
		const struct st_json *o = &stages->u.arr.items[i];
		char w[64];
		uint32_t first = 0, last = 0;
		snprintf(w, sizeof w, "plan.stages[%zu]", i);
		if ((r = only_keys(o, w, keys)) || (r = get_name(o, "device", w, pf->stage[i].device, true)) ||
		    (r = get_name(o, "host", w, pf->stage[i].host, false)) ||
		    (r = get_u32(o, "first", w, &first, true)) || (r = get_u32(o, "last", w, &last, true)))
			return r;
		if ((int)first != next || last < first || last >= ST_PL_MAX_UNITS)
			return st_error(-EINVAL, "%s: units %u-%u (expected to start at %d)", w, first, last, next);
		pf->stage[i].first = (int)first;
		pf->stage[i].last = (int)last;
		next = (int)last + 1;
	}
	if (units && (uint64_t)next != units)
		return st_error(-EINVAL, "plan: stages cover %d units, plan.units says %llu", next,
				(unsigned long long)units);
	pf->n_stages = (int)stages->u.arr.n;
	pf->n_units = next;
	return 0;
}

int st_pl_plan_file_resolve(const struct st_pl_plan_file *pf, const struct st_pl_instance *in, struct st_pl_plan *p)
{
	memset(p, 0, sizeof *p);
	if (pf->n_units != in->n_units)
		return st_error(-EINVAL, "plan: covers %d units, the model has %d", pf->n_units, in->n_units);
	for (int s = 0; s < pf->n_stages; s++) {
		int d = st_pl_device_find(in, pf->stage[s].device);
		if (d < 0)
			return st_error(-EINVAL, "plan: stage %d: no device named \"%s\"", s, pf->stage[s].device);
		p->stage[s] = (struct st_pl_stage){ d, pf->stage[s].first, pf->stage[s].last };
	}
	p->n_stages = pf->n_stages;
	struct st_pl_eval ev;
	st_pl_evaluate(in, p, &ev);
	if (!ev.valid)
		return st_error(-EINVAL, "plan: %s", ev.why);
	p->value = st_pl_eval_objective(&ev, in->objective);
	return 0;
}
