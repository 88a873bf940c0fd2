/* profile_json.c: a planner instance from device profiles (the JSON that
 * `strata profile` writes, docs/plan-input.md "Profiles").  The instance
 * is written as instance JSON and read back through the one strict reader,
 * so profiles get exactly the instance's checks. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "plan.h"
#include "util.h"

static const char *str_or(const struct st_json *v, const char *dflt)
{
	return v && v->type == ST_JSON_STRING ? v->u.str.s : dflt;
}

int st_pl_instance_from_profiles(const struct st_json *const *profiles, int n, const struct st_json *links,
				 const char *source, struct st_pl_instance *in)
{
	struct st_jw w;
	char names[ST_PL_MAX_DEVICES][2 * ST_PL_NAME + 2];
	int r;
	memset(in, 0, sizeof *in);
	in->source = -1;
	if (n < 1 || n > ST_PL_MAX_DEVICES)
		return st_error(-EINVAL, "plan: %d profiles (need 1..%d)", n, ST_PL_MAX_DEVICES);
	const struct st_json *units0 = NULL;
	for (int i = 0; i < n; i++) {
		const struct st_json *p = profiles[i], *dev = st_json_get(p, "device"), *units = st_json_get(p, "units");
		uint64_t version = 0;
		if (!p || p->type != ST_JSON_OBJECT || strcmp(str_or(st_json_get(p, "format"), ""), "strata-profile"))
			return st_error(-EINVAL, "profile %d: not a strata-profile document", i);
		if ((r = st_json_u64(st_json_get(p, "version"), "profile.version", &version)))
			return r;
		/* v1: prefill at one prompt length ("prefill_ms"), no bandwidth;
		 * v2: prefill at several ("prefill_ms_at"), "bandwidth".  Both read. */
		if (version != 1 && version != 2)
			return st_error(-EINVAL, "profile %d: version %llu not supported (this strata reads versions 1 and 2; "
						 "profile again with this strata's `strata profile`)", i,
					(unsigned long long)version);
		if (!dev || dev->type != ST_JSON_OBJECT || !st_json_get(dev, "name"))
			return st_error(-EINVAL, "profile %d: no device.name", i);
		if (!units || units->type != ST_JSON_ARRAY)
			return st_error(-EINVAL, "profile %d: no units array", i);
		if (!units0)
			units0 = units;
		else {
			bool same = units->u.arr.n == units0->u.arr.n;
			for (size_t k = 0; same && k < units->u.arr.n; k++) {
				const struct st_json *a = st_json_get(&units->u.arr.items[k], "weight_bytes"),
						     *b = st_json_get(&units0->u.arr.items[k], "weight_bytes");
				same = a && b && a->type == ST_JSON_NUMBER && b->type == ST_JSON_NUMBER &&
				       a->u.num.len == b->u.num.len && !memcmp(a->u.num.text, b->u.num.text, a->u.num.len);
			}
			if (!same)
				return st_error(-EINVAL, "profile %d (%s): its model units differ from profile 0's "
							 "(profiles of different models?)", i, str_or(st_json_get(dev, "name"), "?"));
		}
		const char *nm = str_or(st_json_get(dev, "name"), ""), *host = str_or(st_json_get(dev, "host"), "");
		snprintf(names[i], sizeof names[i], "%.63s", nm);
		for (int k = 0; k < i; k++)
			if (!strcmp(names[k], names[i]))
				snprintf(names[i], sizeof names[i], "%.63s@%.63s", nm, host);
	}
	st_jw_init(&w, false);
	st_jw_object_begin(&w, NULL);
	st_jw_string(&w, "format", "strata-plan-input");
	st_jw_int(&w, "version", 1);
	st_jw_object_begin(&w, "model");
	st_jw_value(&w, "units", units0);
	st_jw_value(&w, "activation_bytes", st_json_get(profiles[0], "activation_bytes")
						    ? st_json_get(profiles[0], "activation_bytes")
						    : &(struct st_json){ .type = ST_JSON_NULL });
	if (st_json_get(profiles[0], "output_bytes"))
		st_jw_value(&w, "output_bytes", st_json_get(profiles[0], "output_bytes"));
	st_jw_object_end(&w);
	st_jw_array_begin(&w, "devices");
	for (int i = 0; i < n; i++) {
		const struct st_json *p = profiles[i], *dev = st_json_get(p, "device");
		static const char *const copy[] = { "decode_ms", "decode_ms_at", "prefill_ms", "prefill_ms_at",
						    "stage_overhead_ms" };
		const struct st_json *bw = st_json_get(st_json_get(p, "bandwidth"), "peak_read_gbs");
		st_jw_object_begin(&w, NULL);
		st_jw_string(&w, "name", names[i]);
		if (st_json_get(dev, "host"))
			st_jw_value(&w, "host", st_json_get(dev, "host"));
		if (st_json_get(dev, "memory_bytes"))
			st_jw_value(&w, "memory_bytes", st_json_get(dev, "memory_bytes"));
		for (size_t k = 0; k < ST_ARRAY_SIZE(copy); k++)
			if (st_json_get(p, copy[k]))
				st_jw_value(&w, copy[k], st_json_get(p, copy[k]));
		if (bw && bw->type == ST_JSON_NUMBER)
			st_jw_value(&w, "peak_gbs", bw);
		st_jw_object_end(&w);
	}
	st_jw_array_end(&w);
	if (links)
		st_jw_value(&w, "links", links);
	else {
		st_jw_object_begin(&w, "links");
		st_jw_object_begin(&w, "same_host");
		st_jw_number(&w, "bandwidth_mbps", 80000);       /* ~10 GB/s host memory copy */
		st_jw_number(&w, "rtt_ms", 0.02);
		st_jw_object_end(&w);
		st_jw_object_end(&w);
	}
	if (source) {
		st_jw_object_begin(&w, "constraints");
		st_jw_string(&w, "source", source);
		st_jw_object_end(&w);
	}
	st_jw_object_end(&w);
	int err = 0;
	size_t len = 0;
	char *text = st_jw_finish(&w, &len, &err);
	if (!text)
		return st_error(err ? err : -EINVAL, "plan: cannot assemble an instance from the profiles");
	struct st_json_doc *doc;
	r = st_json_parse(text, len, NULL, &doc);
	free(text);
	if (r)
		return r;
	r = st_pl_instance_from_json(st_json_root(doc), in);
	st_json_doc_free(doc);
	if (r) {
		char msg[512];
		snprintf(msg, sizeof msg, "%s", st_last_error());
		st_error(r, "plan: from profiles: %s", msg);
	}
	return r;
}
