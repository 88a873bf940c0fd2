/* gguf_corpus.c: builds hostile GGUF files byte by byte (see gguf_corpus.h).
 *
 * Deliberately written from the GGUF spec with its own constants, not with
 * the runtime's writer or headers, so reader and corpus cannot share a
 * misreading.  Built with -DGGUF_CORPUS_MAIN it is a command that writes the
 * valid files and every hostile case into a directory (fuzzer seeds). */
#include "gguf_corpus.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* GGUF value types and GGML tensor types, from the spec. */
enum { V_U8 = 0, V_I8 = 1, V_U16 = 2, V_I16 = 3, V_U32 = 4, V_I32 = 5, V_F32 = 6,
       V_BOOL = 7, V_STR = 8, V_ARR = 9, V_U64 = 10, V_I64 = 11, V_F64 = 12 };
enum { T_F32 = 0, T_F16 = 1, T_Q4_0 = 2, T_Q8_0 = 8, T_Q4_K = 12, T_F64 = 28 };

#define U64_MAX 18446744073709551615ull

void gc_free(struct gc *b)
{
	free(b->p);
	free(b->m);
	memset(b, 0, sizeof *b);
}

void gc_bytes(struct gc *b, const void *p, size_t n)
{
	if (b->n + n > b->cap) {
		size_t c = b->cap ? b->cap : 256;
		while (c < b->n + n)
			c *= 2;
		uint8_t *q = realloc(b->p, c);
		if (!q)
			abort();        /* test helper: out of memory is fatal */
		b->p = q;
		b->cap = c;
	}
	if (n)
		memcpy(b->p + b->n, p, n);
	b->n += n;
}

static void gc_le(struct gc *b, uint64_t v, unsigned n)
{
	uint8_t t[8];
	for (unsigned i = 0; i < n; i++)
		t[i] = (uint8_t)(v >> (8 * i));
	gc_bytes(b, t, n);
}

void gc_u8(struct gc *b, uint8_t v) { gc_le(b, v, 1); }
void gc_u16(struct gc *b, uint16_t v) { gc_le(b, v, 2); }
void gc_u32(struct gc *b, uint32_t v) { gc_le(b, v, 4); }
void gc_u64(struct gc *b, uint64_t v) { gc_le(b, v, 8); }

void gc_str(struct gc *b, const char *s)
{
	gc_u64(b, strlen(s));
	gc_bytes(b, s, strlen(s));
}

void gc_pad(struct gc *b, size_t align)
{
	while (b->n % align)
		gc_u8(b, 0);
}

void gc_header(struct gc *b, uint32_t version, uint64_t n_tensors, uint64_t n_kv)
{
	gc_bytes(b, "GGUF", 4);
	gc_u32(b, version);
	gc_u64(b, n_tensors);
	gc_u64(b, n_kv);
}

void gc_kv_hdr(struct gc *b, const char *key, uint32_t vtype)
{
	gc_str(b, key);
	gc_u32(b, vtype);
}

void gc_kv_u32(struct gc *b, const char *key, uint32_t v)
{
	gc_kv_hdr(b, key, V_U32);
	gc_u32(b, v);
}

void gc_kv_str(struct gc *b, const char *key, const char *v)
{
	gc_kv_hdr(b, key, V_STR);
	gc_str(b, v);
}

void gc_tensor(struct gc *b, const char *name, uint32_t type, uint32_t n_dims,
	       const uint64_t *ne, uint64_t offset)
{
	gc_str(b, name);
	gc_u32(b, n_dims);
	for (uint32_t d = 0; d < n_dims; d++)
		gc_u64(b, ne[d]);
	gc_u32(b, type);
	gc_u64(b, offset);
}

/* ---- the valid file, with truncation marks ---------------------------------- */

__attribute__((format(printf, 4, 5)))
static void mark(struct gc *b, size_t start, size_t end, const char *fmt, ...)
{
	va_list ap;
	if (start >= end)
		return;
	if (b->nm == b->mcap) {
		b->mcap = b->mcap ? 2 * b->mcap : 64;
		b->m = realloc(b->m, b->mcap * sizeof *b->m);
		if (!b->m)
			abort();
	}
	struct gc_mark *m = &b->m[b->nm++];
	m->start = start;
	m->end = end;
	va_start(ap, fmt);
	vsnprintf(m->expect, sizeof m->expect, fmt, ap);
	va_end(ap);
}

static const char *sep(const struct gc *b)
{
	return b->ctx[0] ? ": " : "";
}

static void m_u32(struct gc *b, uint32_t v, const char *what)
{
	size_t s = b->n;
	gc_u32(b, v);
	mark(b, s, b->n, "%s%struncated %s", b->ctx, sep(b), what);
}

static void m_u64(struct gc *b, uint64_t v, const char *what)
{
	size_t s = b->n;
	gc_u64(b, v);
	mark(b, s, b->n, "%s%struncated %s", b->ctx, sep(b), what);
}

/* A length-prefixed string; `what` is the reader's name for it ("key",
 * "name", "string", "array element 1: string"). */
static void m_string(struct gc *b, const char *s, const char *what)
{
	char lw[64];
	snprintf(lw, sizeof lw, "%s length", what);
	m_u64(b, strlen(s), lw);
	size_t st = b->n;
	gc_bytes(b, s, strlen(s));
	mark(b, st, b->n, "%s%s%s %zu exceeds the", b->ctx, sep(b), lw, strlen(s));
}

static void m_key(struct gc *b, unsigned i, const char *key, uint32_t vtype)
{
	snprintf(b->ctx, sizeof b->ctx, "kv %u", i);
	m_string(b, key, "key");
	snprintf(b->ctx, sizeof b->ctx, "kv %u '%s'", i, key);
	m_u32(b, vtype, "value type");
}

static void m_tensor(struct gc *b, unsigned i, const char *name, uint32_t type, uint32_t n_dims,
		     const uint64_t *ne, uint64_t offset)
{
	char what[16];
	snprintf(b->ctx, sizeof b->ctx, "tensor %u", i);
	m_string(b, name, "name");
	snprintf(b->ctx, sizeof b->ctx, "tensor %u '%s'", i, name);
	m_u32(b, n_dims, "n_dims");
	for (uint32_t d = 0; d < n_dims; d++) {
		snprintf(what, sizeof what, "ne[%u]", d);
		m_u64(b, ne[d], what);
	}
	m_u32(b, type, "type");
	m_u64(b, offset, "offset");
}

static void data_bytes(struct gc *b, size_t n, uint8_t seed)
{
	for (size_t i = 0; i < n; i++)
		gc_u8(b, (uint8_t)(seed + 31 * i));
}

void gguf_corpus_valid(struct gc *b, uint32_t version)
{
	const unsigned n_kv = 8, n_t = 2;
	const uint64_t ne_a[2] = { 4, 2 }, ne_b[1] = { 32 };
	memset(b, 0, sizeof *b);
	gc_bytes(b, "GGUF", 4);
	mark(b, 0, 4, "truncated magic");
	m_u32(b, version, "version");
	m_u64(b, n_t, "n_tensors");
	m_u64(b, n_kv, "n_kv");
	/* Too short for the smallest n_kv pairs + n_tensors infos at all. */
	mark(b, 24, 24 + n_kv * 14 + n_t * 33, "at least");

	/* A long first value, so that the pre-check above covers only part of
	 * it and every later field gets its own truncation message. */
	char name[201];
	memset(name, 'n', 200);
	name[200] = 0;
	m_key(b, 0, "general.name", V_STR);
	m_string(b, name, "string");
	m_key(b, 1, "general.architecture", V_STR);
	m_string(b, "llama", "string");
	m_key(b, 2, "x.u32", V_U32);
	m_u32(b, 7, "u32 value");
	m_key(b, 3, "x.i8", V_I8);
	size_t s = b->n;
	gc_u8(b, 0xfb);
	mark(b, s, b->n, "%s: truncated i8 value", b->ctx);
	m_key(b, 4, "x.f64", V_F64);
	m_u64(b, 0x400921fb54442d18ull, "f64 value");
	m_key(b, 5, "x.bool", V_BOOL);
	s = b->n;
	gc_u8(b, 1);
	mark(b, s, b->n, "%s: truncated bool value", b->ctx);
	m_key(b, 6, "x.arr", V_ARR);
	m_u32(b, V_U16, "array element type");
	m_u64(b, 3, "array length");
	s = b->n;
	gc_u16(b, 1), gc_u16(b, 2), gc_u16(b, 3);
	mark(b, s, b->n, "%s: array length 3: 3 u16 elements need 6 bytes", b->ctx);
	m_key(b, 7, "x.strs", V_ARR);
	m_u32(b, V_STR, "array element type");
	m_u64(b, 2, "array length");
	mark(b, b->n, b->n + 16, "%s: array length 2: 2 string elements need at least 16 bytes", b->ctx);
	m_string(b, "a", "array element 0: string");
	m_string(b, "bc", "array element 1: string");

	m_tensor(b, 0, "a", T_F32, 2, ne_a, 0);
	m_tensor(b, 1, "b", T_Q8_0, 1, ne_b, 32);
	b->ctx[0] = 0;
	s = b->n;
	gc_pad(b, 32);
	mark(b, s, b->n, "tensor 0 'a': offset 0: data starts at byte");
	s = b->n;
	data_bytes(b, 32, 1);
	mark(b, s, b->n, "tensor 0 'a': data ends at byte %zu but the file has", s + 32);
	s = b->n;
	data_bytes(b, 34, 2);
	mark(b, s, b->n, "tensor 1 'b': data ends at byte %zu but the file has", s + 34);
}

/* ---- the hostile cases ----------------------------------------------------- */

#define CASES(X) \
	X(EMPTY_FILE, -EINVAL, "truncated magic") \
	X(BAD_MAGIC, -EINVAL, "bad magic 47 47 4d 4c") \
	X(VERSION_0, -EINVAL, "version 0 is not supported") \
	X(VERSION_1, -EINVAL, "version 1 is not supported") \
	X(VERSION_4, -EINVAL, "version 4 is not supported") \
	X(VERSION_MAX, -EINVAL, "version 4294967295 is not supported") \
	X(VERSION_BIG_ENDIAN, -EINVAL, "big-endian") \
	X(N_KV_OVERFLOW, -EOVERFLOW, "n_kv 4611686018427387904 x 14 bytes") \
	X(N_KV_HUGE, -EINVAL, "n_kv 1000000 needs at least 14000000 bytes") \
	X(N_TENSORS_OVERFLOW, -EOVERFLOW, "n_tensors 2305843009213693952 x 33 bytes") \
	X(N_TENSORS_HUGE, -EINVAL, "n_tensors 1000000 needs at least 33000000 bytes") \
	X(COUNTS_SUM, -EINVAL, "n_kv 2 and n_tensors 1 need at least 61 bytes") \
	X(KEY_LEN_MAX, -EINVAL, "kv 0: key length 18446744073709551615 exceeds the limit of 256") \
	X(KEY_LEN_PAST_EOF, -EINVAL, "kv 0: key length 200 exceeds the 20 bytes left") \
	X(KEY_TOO_LONG, -EINVAL, "kv 0: key length 300 exceeds the limit of 256") \
	X(KEY_EMPTY, -EINVAL, "kv 0: key is empty") \
	X(KEY_NUL, -EINVAL, "kv 0: key contains a NUL byte at position 2") \
	X(DUP_KEY, -EINVAL, "kv 1 'general.architecture': duplicate key") \
	X(DUP_KEY_ESCAPED, -EINVAL, "kv 1 'x\\x1b[2J\\x5c\\xc3\\xa9': duplicate key") \
	X(VALUE_TYPE_BAD, -EINVAL, "kv 0 'x': unknown value type 13") \
	X(VALUE_TYPE_HUGE, -EINVAL, "kv 0 'x': unknown value type 2147483648") \
	X(BOOL_BAD, -EINVAL, "kv 0 'x.b': bool value 2 is not 0 or 1") \
	X(STRING_LEN_MAX, -EINVAL, "kv 0 'x.s': string length 18446744073709551615 exceeds the") \
	X(STRING_LEN_PAST_EOF, -EINVAL, "kv 0 'x.s': string length 1099511627776 exceeds the 4 bytes left") \
	X(ARRAY_NESTED, -EINVAL, "kv 0 'x.a': nested arrays are not supported") \
	X(ARRAY_ELEM_TYPE_BAD, -EINVAL, "kv 0 'x.a': unknown array element type 13") \
	X(ARRAY_LEN_OVERFLOW_U32, -EOVERFLOW, "kv 0 'x.a': array length 4611686018427387905 x 4 bytes") \
	X(ARRAY_LEN_OVERFLOW_U64, -EOVERFLOW, "kv 0 'x.a': array length 2305843009213693952 x 8 bytes") \
	X(ARRAY_LEN_HUGE, -EINVAL, "kv 0 'x.a': array length 1099511627776: 1099511627776 u8 elements need 1099511627776 bytes") \
	X(ARRAY_LEN_PAST_EOF, -EINVAL, "kv 0 'x.a': array length 100: 100 i32 elements need 400 bytes but only 20") \
	X(ARRAY_STR_OVERFLOW, -EOVERFLOW, "kv 0 'x.a': array length 2305843009213693952 x 8 bytes per string") \
	X(ARRAY_STR_HUGE, -EINVAL, "kv 0 'x.a': array length 1000000: 1000000 string elements need at least 8000000") \
	X(ARRAY_STR_ELEM_LEN, -EINVAL, "kv 0 'x.a': array element 1: string length 18446744073709551615 exceeds") \
	X(ARRAY_BOOL_BAD, -EINVAL, "kv 0 'x.a': bool array element 2 has value 5") \
	X(ALIGN_TYPE, -EINVAL, "'general.alignment': value type must be u32, not u64") \
	X(ALIGN_ZERO, -EINVAL, "'general.alignment': alignment 0 is not a power of two") \
	X(ALIGN_NPOT, -EINVAL, "'general.alignment': alignment 48 is not a power of two") \
	X(ALIGN_HUGE, -EINVAL, "'general.alignment': alignment 1048576 exceeds the limit of 65536") \
	X(ARCH_TYPE, -EINVAL, "'general.architecture': value type must be string, not u32") \
	X(TOKENS_TYPE, -EINVAL, "'tokenizer.ggml.tokens': value type must be an array of string, not an array of u32") \
	X(SCORES_TYPE, -EINVAL, "'tokenizer.ggml.scores': value type must be an array of f32, not f32") \
	X(NAME_EMPTY, -EINVAL, "tensor 0: name is empty") \
	X(NAME_TOO_LONG, -EINVAL, "tensor 0: name length 300 exceeds the limit of 256") \
	X(NAME_LEN_MAX, -EINVAL, "tensor 0: name length 18446744073709551615 exceeds the limit") \
	X(NAME_NUL, -EINVAL, "tensor 0: name contains a NUL byte at position 1") \
	X(DUP_TENSOR, -EINVAL, "tensor 1 'w': duplicate tensor name") \
	X(N_DIMS_0, -EINVAL, "tensor 0 'w': n_dims 0 is out of range") \
	X(N_DIMS_5, -EINVAL, "tensor 0 'w': n_dims 5 is out of range") \
	X(N_DIMS_MAX, -EINVAL, "tensor 0 'w': n_dims 4294967295 is out of range") \
	X(DIM_ZERO, -EINVAL, "tensor 0 'w': ne[1] is 0") \
	X(DIM_GT_INT64_MAX, -EINVAL, "tensor 0 'w': ne[0] = 9223372036854775808 exceeds INT64_MAX") \
	X(ELEMS_OVERFLOW, -EOVERFLOW, "tensor 0 'w': element count overflows") \
	X(ELEMS_OVER_INT64_MAX, -EOVERFLOW, "tensor 0 'w': element count overflows") \
	X(ROW_SIZE_OVERFLOW, -EOVERFLOW, "tensor 0 'w': row size of 4611686018427387904 f32 elements overflows") \
	X(BYTES_OVERFLOW, -EOVERFLOW, "tensor 0 'w': byte size overflows") \
	X(BLOCK_MULTIPLE, -EINVAL, "tensor 0 'w': ne[0] = 33 is not a multiple of the q8_0 block size 32") \
	X(BLOCK_MULTIPLE_K, -EINVAL, "tensor 0 'w': ne[0] = 255 is not a multiple of the q4_K block size 256") \
	X(TYPE_UNKNOWN, -EINVAL, "tensor 0 'w': unknown tensor type id 4") \
	X(TYPE_MAX, -EINVAL, "tensor 0 'w': unknown tensor type id 4294967295") \
	X(OFFSET_MISALIGNED, -EINVAL, "tensor 0 'w': offset 4 is not a multiple of the alignment 32") \
	X(OFFSET_MISALIGNED_64, -EINVAL, "tensor 0 'w': offset 32 is not a multiple of the alignment 64") \
	X(OFFSET_PAST_EOF, -EINVAL, "tensor 0 'w': offset 1099511627776: data starts at byte") \
	X(OFFSET_OVERFLOW, -EOVERFLOW, "tensor 0 'w': data offset 128 + offset 18446744073709551584 overflows") \
	X(DATA_PAST_EOF, -EINVAL, "tensor 0 'w': data ends at byte 192 but the file has 160") \
	X(DATA_END_OVERFLOW, -EOVERFLOW, "tensor 0 'w': data end (byte 128 + 18446744073709551608) overflows") \
	X(NO_DATA_SECTION, -EINVAL, "tensor 0 'w': offset 0: data starts at byte 128") \
	X(OVERLAP, -EINVAL, "tensors 'a' (data bytes 0..64) and 'b' (bytes 32..64) overlap") \
	X(OVERLAP_SAME, -EINVAL, "tensors 'a' (data bytes 0..32) and 'b' (bytes 0..32) overlap") \
	X(OVERLAP_UNORDERED, -EINVAL, "tensors 'a' (data bytes 0..128) and 'b' (bytes 64..96) overlap")

enum {
#define X_ENUM(id, err, expect) C_##id,
	CASES(X_ENUM)
	C_COUNT
};

static const struct {
	const char *name;
	int err;
	const char *expect;
} case_meta[] = {
#define X_META(id, err, expect) { #id, err, expect },
	CASES(X_META)
};

int gguf_corpus_count(void)
{
	return C_COUNT;
}

/* A file whose one key-value pair is being attacked: header + key + type. */
static void one_kv(struct gc *b, const char *key, uint32_t vtype)
{
	gc_header(b, 3, 0, 1);
	gc_kv_hdr(b, key, vtype);
}

/* header, general.architecture, then n_t tensor infos follow. */
static void with_tensors(struct gc *b, uint64_t n_t)
{
	gc_header(b, 3, n_t, 1);
	gc_kv_str(b, "general.architecture", "llama");
}

/* One tensor 'w', then padding and `data` bytes of data. */
static void one_tensor(struct gc *b, uint32_t type, uint32_t n_dims, const uint64_t *ne,
		       uint64_t offset, size_t data)
{
	with_tensors(b, 1);
	gc_tensor(b, "w", type, n_dims, ne, offset);
	gc_pad(b, 32);
	data_bytes(b, data, 3);
}

static void filler(struct gc *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		gc_u8(b, 0);
}

void gguf_corpus_build(int i, struct gguf_case *c)
{
	struct gc *b = &c->b;
	memset(c, 0, sizeof *c);
	if (i < 0 || i >= C_COUNT)
		return;
	c->name = case_meta[i].name;
	c->err = case_meta[i].err;
	c->expect = case_meta[i].expect;
	switch (i) {
	case C_EMPTY_FILE:
		break;
	case C_BAD_MAGIC:
		gc_bytes(b, "GGML", 4), gc_u32(b, 3), gc_u64(b, 0), gc_u64(b, 0);
		break;
	case C_VERSION_0: gc_header(b, 0, 0, 0); break;
	case C_VERSION_1: gc_header(b, 1, 0, 0); break;
	case C_VERSION_4: gc_header(b, 4, 0, 0); break;
	case C_VERSION_MAX: gc_header(b, 0xffffffffu, 0, 0); break;
	case C_VERSION_BIG_ENDIAN: gc_header(b, 0x03000000u, 0, 0); break;
	case C_N_KV_OVERFLOW: gc_header(b, 3, 0, 1ull << 62), filler(b, 100); break;
	case C_N_KV_HUGE: gc_header(b, 3, 0, 1000000), filler(b, 100); break;
	case C_N_TENSORS_OVERFLOW: gc_header(b, 3, 1ull << 61, 0), filler(b, 100); break;
	case C_N_TENSORS_HUGE: gc_header(b, 3, 1000000, 0), filler(b, 100); break;
	case C_COUNTS_SUM: gc_header(b, 3, 1, 2), filler(b, 50); break;
	case C_KEY_LEN_MAX: gc_header(b, 3, 0, 1), gc_u64(b, U64_MAX), filler(b, 20); break;
	case C_KEY_LEN_PAST_EOF: gc_header(b, 3, 0, 1), gc_u64(b, 200), filler(b, 20); break;
	case C_KEY_TOO_LONG: {
		char k[301];
		memset(k, 'k', 300);
		k[300] = 0;
		gc_header(b, 3, 0, 1), gc_kv_u32(b, k, 1);
		break;
	}
	case C_KEY_EMPTY: gc_header(b, 3, 0, 1), gc_kv_u32(b, "", 1); break;
	case C_KEY_NUL:
		gc_header(b, 3, 0, 1), gc_u64(b, 5), gc_bytes(b, "ab\0cd", 5), gc_u32(b, V_U32), gc_u32(b, 1);
		break;
	case C_DUP_KEY:
		gc_header(b, 3, 0, 2);
		gc_kv_str(b, "general.architecture", "llama");
		gc_kv_str(b, "general.architecture", "gpt2");
		break;
	case C_DUP_KEY_ESCAPED:     /* a terminal escape, a backslash and UTF-8 */
		gc_header(b, 3, 0, 2);
		gc_kv_u32(b, "x\x1b[2J\\\xc3\xa9", 1);
		gc_kv_u32(b, "x\x1b[2J\\\xc3\xa9", 2);
		break;
	case C_VALUE_TYPE_BAD: one_kv(b, "x", 13), gc_u64(b, 0); break;
	case C_VALUE_TYPE_HUGE: one_kv(b, "x", 0x80000000u), gc_u64(b, 0); break;
	case C_BOOL_BAD: one_kv(b, "x.b", V_BOOL), gc_u8(b, 2); break;
	case C_STRING_LEN_MAX: one_kv(b, "x.s", V_STR), gc_u64(b, U64_MAX), filler(b, 4); break;
	case C_STRING_LEN_PAST_EOF: one_kv(b, "x.s", V_STR), gc_u64(b, 1ull << 40), filler(b, 4); break;
	case C_ARRAY_NESTED:
		one_kv(b, "x.a", V_ARR), gc_u32(b, V_ARR), gc_u64(b, 1), gc_u32(b, V_U8), gc_u64(b, 1), gc_u8(b, 0);
		break;
	case C_ARRAY_ELEM_TYPE_BAD: one_kv(b, "x.a", V_ARR), gc_u32(b, 13), gc_u64(b, 1), gc_u64(b, 0); break;
	case C_ARRAY_LEN_OVERFLOW_U32:
		one_kv(b, "x.a", V_ARR), gc_u32(b, V_U32), gc_u64(b, (1ull << 62) + 1), filler(b, 16);
		break;
	case C_ARRAY_LEN_OVERFLOW_U64:
		one_kv(b, "x.a", V_ARR), gc_u32(b, V_U64), gc_u64(b, 1ull << 61), filler(b, 16);
		break;
	case C_ARRAY_LEN_HUGE: one_kv(b, "x.a", V_ARR), gc_u32(b, V_U8), gc_u64(b, 1ull << 40), filler(b, 16); break;
	case C_ARRAY_LEN_PAST_EOF: one_kv(b, "x.a", V_ARR), gc_u32(b, V_I32), gc_u64(b, 100), filler(b, 20); break;
	case C_ARRAY_STR_OVERFLOW: one_kv(b, "x.a", V_ARR), gc_u32(b, V_STR), gc_u64(b, 1ull << 61), filler(b, 16); break;
	case C_ARRAY_STR_HUGE: one_kv(b, "x.a", V_ARR), gc_u32(b, V_STR), gc_u64(b, 1000000), filler(b, 16); break;
	case C_ARRAY_STR_ELEM_LEN:
		one_kv(b, "x.a", V_ARR), gc_u32(b, V_STR), gc_u64(b, 2), gc_str(b, "ok"), gc_u64(b, U64_MAX), filler(b, 8);
		break;
	case C_ARRAY_BOOL_BAD:
		one_kv(b, "x.a", V_ARR), gc_u32(b, V_BOOL), gc_u64(b, 3), gc_u8(b, 0), gc_u8(b, 1), gc_u8(b, 5);
		break;
	case C_ALIGN_TYPE: one_kv(b, "general.alignment", V_U64), gc_u64(b, 32); break;
	case C_ALIGN_ZERO: gc_header(b, 3, 0, 1), gc_kv_u32(b, "general.alignment", 0); break;
	case C_ALIGN_NPOT: gc_header(b, 3, 0, 1), gc_kv_u32(b, "general.alignment", 48); break;
	case C_ALIGN_HUGE: gc_header(b, 3, 0, 1), gc_kv_u32(b, "general.alignment", 1u << 20); break;
	case C_ARCH_TYPE: gc_header(b, 3, 0, 1), gc_kv_u32(b, "general.architecture", 1); break;
	case C_TOKENS_TYPE:
		one_kv(b, "tokenizer.ggml.tokens", V_ARR), gc_u32(b, V_U32), gc_u64(b, 1), gc_u32(b, 7);
		break;
	case C_SCORES_TYPE: one_kv(b, "tokenizer.ggml.scores", V_F32), gc_u32(b, 0); break;
	case C_NAME_EMPTY: {
		const uint64_t ne[1] = { 8 };
		with_tensors(b, 1), gc_tensor(b, "", T_F32, 1, ne, 0), gc_pad(b, 32), filler(b, 32);
		break;
	}
	case C_NAME_TOO_LONG: {
		const uint64_t ne[1] = { 8 };
		char n[301];
		memset(n, 'n', 300);
		n[300] = 0;
		with_tensors(b, 1), gc_tensor(b, n, T_F32, 1, ne, 0), gc_pad(b, 32), filler(b, 32);
		break;
	}
	case C_NAME_LEN_MAX: with_tensors(b, 1), gc_u64(b, U64_MAX), filler(b, 64); break;
	case C_NAME_NUL:
		with_tensors(b, 1), gc_u64(b, 3), gc_bytes(b, "w\0x", 3), gc_u32(b, 1), gc_u64(b, 8);
		gc_u32(b, T_F32), gc_u64(b, 0), gc_pad(b, 32), filler(b, 32);
		break;
	case C_DUP_TENSOR: {
		const uint64_t ne[1] = { 8 };
		with_tensors(b, 2), gc_tensor(b, "w", T_F32, 1, ne, 0), gc_tensor(b, "w", T_F32, 1, ne, 32);
		gc_pad(b, 32), filler(b, 64);
		break;
	}
	case C_N_DIMS_0: one_tensor(b, T_F32, 0, NULL, 0, 32); break;
	case C_N_DIMS_5: {
		const uint64_t ne[5] = { 1, 1, 1, 1, 1 };
		one_tensor(b, T_F32, 5, ne, 0, 32);
		break;
	}
	case C_N_DIMS_MAX:
		with_tensors(b, 1), gc_str(b, "w"), gc_u32(b, 0xffffffffu), filler(b, 64);
		break;
	case C_DIM_ZERO: { const uint64_t ne[2] = { 4, 0 }; one_tensor(b, T_F32, 2, ne, 0, 32); break; }
	case C_DIM_GT_INT64_MAX: { const uint64_t ne[1] = { 1ull << 63 }; one_tensor(b, T_F32, 1, ne, 0, 32); break; }
	case C_ELEMS_OVERFLOW: { const uint64_t ne[2] = { 1ull << 32, 1ull << 32 }; one_tensor(b, T_F32, 2, ne, 0, 32); break; }
	case C_ELEMS_OVER_INT64_MAX: { const uint64_t ne[2] = { 1ull << 31, 1ull << 32 }; one_tensor(b, T_F32, 2, ne, 0, 32); break; }
	case C_ROW_SIZE_OVERFLOW: { const uint64_t ne[1] = { 1ull << 62 }; one_tensor(b, T_F32, 1, ne, 0, 32); break; }
	case C_BYTES_OVERFLOW: { const uint64_t ne[2] = { 1ull << 31, 1ull << 31 }; one_tensor(b, T_F32, 2, ne, 0, 32); break; }
	case C_BLOCK_MULTIPLE: { const uint64_t ne[1] = { 33 }; one_tensor(b, T_Q8_0, 1, ne, 0, 64); break; }
	case C_BLOCK_MULTIPLE_K: { const uint64_t ne[2] = { 255, 2 }; one_tensor(b, T_Q4_K, 2, ne, 0, 512); break; }
	case C_TYPE_UNKNOWN: { const uint64_t ne[1] = { 8 }; one_tensor(b, 4, 1, ne, 0, 32); break; }
	case C_TYPE_MAX: { const uint64_t ne[1] = { 8 }; one_tensor(b, 0xffffffffu, 1, ne, 0, 32); break; }
	case C_OFFSET_MISALIGNED: { const uint64_t ne[1] = { 8 }; one_tensor(b, T_F32, 1, ne, 4, 64); break; }
	case C_OFFSET_MISALIGNED_64: {
		const uint64_t ne[1] = { 8 };
		gc_header(b, 3, 1, 1), gc_kv_u32(b, "general.alignment", 64);
		gc_tensor(b, "w", T_F32, 1, ne, 32), gc_pad(b, 64), filler(b, 128);
		break;
	}
	case C_OFFSET_PAST_EOF: { const uint64_t ne[1] = { 8 }; one_tensor(b, T_F32, 1, ne, 1ull << 40, 32); break; }
	case C_OFFSET_OVERFLOW: { const uint64_t ne[1] = { 8 }; one_tensor(b, T_F32, 1, ne, U64_MAX - 31, 32); break; }
	case C_DATA_PAST_EOF: { const uint64_t ne[1] = { 16 }; one_tensor(b, T_F32, 1, ne, 0, 32); break; }
	case C_DATA_END_OVERFLOW: {
		const uint64_t ne[1] = { (1ull << 61) - 1 };
		one_tensor(b, T_F64, 1, ne, 0, 32);
		break;
	}
	case C_NO_DATA_SECTION: { const uint64_t ne[1] = { 8 }; with_tensors(b, 1), gc_tensor(b, "w", T_F32, 1, ne, 0); break; }
	case C_OVERLAP: {
		const uint64_t ne16[1] = { 16 }, ne8[1] = { 8 };
		with_tensors(b, 2), gc_tensor(b, "a", T_F32, 1, ne16, 0), gc_tensor(b, "b", T_F32, 1, ne8, 32);
		gc_pad(b, 32), filler(b, 64);
		break;
	}
	case C_OVERLAP_SAME: {
		const uint64_t ne8[1] = { 8 };
		with_tensors(b, 2), gc_tensor(b, "a", T_F32, 1, ne8, 0), gc_tensor(b, "b", T_F32, 1, ne8, 0);
		gc_pad(b, 32), filler(b, 32);
		break;
	}
	case C_OVERLAP_UNORDERED: {
		const uint64_t ne32[1] = { 32 }, ne8[1] = { 8 };
		with_tensors(b, 3), gc_tensor(b, "c", T_F32, 1, ne8, 128), gc_tensor(b, "b", T_F32, 1, ne8, 64);
		gc_tensor(b, "a", T_F32, 1, ne32, 0);
		gc_pad(b, 32), filler(b, 160);
		break;
	}
	}
}

#ifdef GGUF_CORPUS_MAIN
/* gguf_corpus DIR: write valid-v3.gguf, valid-v2.gguf and every case. */
static int write_file(const char *dir, const char *name, const struct gc *b)
{
	char path[4096];
	snprintf(path, sizeof path, "%s/%s.gguf", dir, name);
	FILE *f = fopen(path, "wb");
	if (!f || (b->n && fwrite(b->p, 1, b->n, f) != b->n) || fclose(f) != 0) {
		fprintf(stderr, "gguf_corpus: cannot write %s\n", path);
		return 1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct gc b;
	int bad = 0;
	if (argc != 2) {
		fprintf(stderr, "usage: %s DIR\n", argv[0]);
		return 2;
	}
	gguf_corpus_valid(&b, 3);
	bad |= write_file(argv[1], "valid-v3", &b);
	gc_free(&b);
	gguf_corpus_valid(&b, 2);
	bad |= write_file(argv[1], "valid-v2", &b);
	gc_free(&b);
	for (int i = 0; i < gguf_corpus_count(); i++) {
		struct gguf_case c;
		gguf_corpus_build(i, &c);
		bad |= write_file(argv[1], c.name, &c.b);
		gc_free(&c.b);
	}
	return bad;
}
#endif
