/* gguf_corpus.h: a hand-rolled GGUF byte builder (independent of the
 * runtime's writer) and the corpus of hostile GGUF files built with it.
 *
 * Each corpus case is one published GGUF-parser vulnerability class or one
 * malformed field: count/length overflows, nested arrays, bad type ids,
 * tensor shape/size/offset abuse, duplicates, bad alignment, bad magic and
 * versions.  gguf_corpus_valid() builds a valid file and records, for every
 * byte range, the error text a reader must give when the file is truncated
 * inside that range (first matching mark wins). */
#ifndef ST_GGUF_CORPUS_H
#define ST_GGUF_CORPUS_H

#include <stddef.h>
#include <stdint.h>

struct gc_mark {
	size_t start, end;          /* truncating at a length in [start, end) */
	char expect[112];           /* must give an error containing this */
};

struct gc {
	uint8_t *p;
	size_t n, cap;
	struct gc_mark *m;
	size_t nm, mcap;
	char ctx[64];               /* "kv 1 'x.u32'": the reader's context */
};

void gc_free(struct gc *b);
void gc_bytes(struct gc *b, const void *p, size_t n);
void gc_u8(struct gc *b, uint8_t v);
void gc_u16(struct gc *b, uint16_t v);
void gc_u32(struct gc *b, uint32_t v);
void gc_u64(struct gc *b, uint64_t v);
void gc_str(struct gc *b, const char *s);           /* u64 length + bytes */
void gc_pad(struct gc *b, size_t align);            /* zeros up to a multiple */
void gc_header(struct gc *b, uint32_t version, uint64_t n_tensors, uint64_t n_kv);
void gc_kv_hdr(struct gc *b, const char *key, uint32_t vtype);
void gc_kv_u32(struct gc *b, const char *key, uint32_t v);
void gc_kv_str(struct gc *b, const char *key, const char *v);
void gc_tensor(struct gc *b, const char *name, uint32_t type, uint32_t n_dims,
	       const uint64_t *ne, uint64_t offset);

struct gguf_case {
	const char *name;
	int err;                    /* expected negative errno */
	const char *expect;         /* substring of st_last_error() */
	struct gc b;                /* the file */
};

int gguf_corpus_count(void);
/* Build case i (0 <= i < count) into c; free with gc_free(&c->b). */
void gguf_corpus_build(int i, struct gguf_case *c);

/* A valid v3 (or v2) file with every section, two tensors (f32 and q8_0),
 * ending right after the last tensor's bytes, with truncation marks. */
void gguf_corpus_valid(struct gc *b, uint32_t version);

#endif
