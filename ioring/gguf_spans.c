/* gguf_spans.c: the spans of the tensors one stage (a layer range) needs,
 * from a parsed GGUF tensor table. */
#include "gguf_spans.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

/* Layer index of "blk.N.<rest>", or -1 for a non-block tensor. */
static long block_of(const char *name)
{
	char *end;
	unsigned long v;
	if (strncmp(name, "blk.", 4) || name[4] < '0' || name[4] > '9')
		return -1;
	v = strtoul(name + 4, &end, 10);
	if (*end != '.' || v > 1000000)
		return -1;
	return (long)v;
}

int st_load_gguf_layers(const struct st_gguf *g, uint32_t *n_layer)
{
	const char *arch = NULL;
	long top = -1;
	*n_layer = 0;
	if (st_gguf_get_str(g, "general.architecture", &arch) == 0 && arch) {
		char key[128];
		uint32_t v;
		snprintf(key, sizeof key, "%s.block_count", arch);
		if (st_gguf_get_u32(g, key, &v) == 0) {
			*n_layer = v;
			return 0;
		}
	}
	for (uint64_t i = 0; i < g->n_tensors; i++)
		top = ST_MAX(top, block_of(g->tensors[i].name));
	*n_layer = (uint32_t)(top + 1);
	return 0;
}

int st_load_gguf_stage_spans(const struct st_gguf *g, int first, int last, unsigned flags,
			     struct st_load_span **out, size_t *n_out)
{
	struct st_load_span *spans;
	uint32_t n_layer;
	size_t n = 0;

	*out = NULL;
	*n_out = 0;
	st_load_gguf_layers(g, &n_layer);
	if (first < 0 || last < first || (uint32_t)last >= n_layer)
		return st_error(-EINVAL, "stage layers %d-%d: the model has layers 0-%d", first, last,
				(int)n_layer - 1);
	spans = calloc(g->n_tensors ? g->n_tensors : 1, sizeof *spans);
	if (!spans)
		return st_error(-ENOMEM, "stage spans: out of memory for %llu tensors",
				(unsigned long long)g->n_tensors);
	for (uint64_t i = 0; i < g->n_tensors; i++) {
		const struct st_gguf_tensor *t = &g->tensors[i];
		long b = block_of(t->name);
		bool take;
		if (b >= 0)
			take = b >= first && b <= last;
		else if (flags & ST_LOAD_GGUF_BLOCKS_ONLY)
			take = false;
		else if (!strncmp(t->name, "token_embd", 10))
			take = first == 0;
		else
			take = (uint32_t)last == n_layer - 1;
		if (!take)
			continue;
		spans[n++] = (struct st_load_span){ .file_offset = t->file_offset, .nbytes = t->nbytes,
						    .name = t->name };
	}
	*out = spans;
	*n_out = n;
	return 0;
}
