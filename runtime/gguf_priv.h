/* gguf_priv.h: internals shared by the GGUF reader and writer (not public). */
#ifndef ST_GGUF_PRIV_H
#define ST_GGUF_PRIV_H

#include <stddef.h>
#include <stdint.h>

#include "gguf.h"

/* An open-addressing hash set of indices into an array of structs that each
 * hold a `char *` name at byte offset `off` (stride `stride`).  Callers pass
 * the array on every call, so it may be reallocated between calls. */
struct st_gguf_hset {
	uint32_t *slot;             /* index + 1, 0 = empty */
	uint64_t cap;               /* power of two */
	uint64_t count;
};

struct st_gguf_names {
	const void *base;
	size_t stride, off;
};

int st_gguf_hset_init(struct st_gguf_hset *h, uint64_t expected);
void st_gguf_hset_fini(struct st_gguf_hset *h);
/* Look a name up: returns its index or -1. */
int64_t st_gguf_hset_find(const struct st_gguf_hset *h, const struct st_gguf_names *a,
			  const char *name);
/* Insert index idx (its name read from a).  Returns 0, 1 when the name is
 * already present (*dup = the earlier index), or -ENOMEM when growing fails. */
int st_gguf_hset_insert(struct st_gguf_hset *h, const struct st_gguf_names *a,
			uint32_t idx, uint32_t *dup);

/* Bytes per element of a numeric value type; 0 for STRING/ARRAY/unknown. */
size_t st_gguf_vtype_size(uint32_t vtype);

#endif
