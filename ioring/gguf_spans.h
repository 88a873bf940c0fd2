/* gguf_spans.h: which bytes of a GGUF file a stage needs. */
#ifndef ST_IORING_GGUF_SPANS_H
#define ST_IORING_GGUF_SPANS_H

#include "gguf.h"
#include "loader.h"

enum { ST_LOAD_GGUF_BLOCKS_ONLY = 1u << 0 };  /* leave out embeddings and the output head */

/* Layer count: <arch>.block_count, else 1 + the highest blk.N index. */
int st_load_gguf_layers(const struct st_gguf *g, uint32_t *n_layer);

/* The spans (file_offset, nbytes, name; dst NULL) of the tensors of layers
 * first..last: blk.N.* for N in range, token_embd.* when first == 0, every
 * other non-block tensor (output_norm, output, rope_freqs) when last is the
 * last layer.  Names point into g.  Free *out with free(). */
int st_load_gguf_stage_spans(const struct st_gguf *g, int first, int last, unsigned flags,
			     struct st_load_span **out, size_t *n_out);

#endif
