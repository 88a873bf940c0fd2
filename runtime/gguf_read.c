/* gguf_read.c: the hardened GGUF v2/v3 reader.
 *
 * One reader abstraction (struct rd) serves both a file descriptor (pread
 * through a 4 KiB buffer; the file is never mapped or read whole) and a memory
 * image.  Every count and length is checked against the bytes left in the file
 * with overflow-checked arithmetic before anything is allocated, so a hostile
 * file can make us allocate at most a small multiple of its own size (and
 * never more than the caps in gguf.h imply).
 *
 * Layout (little-endian):
 *   "GGUF" u32 version u64 n_tensors u64 n_kv
 *   n_kv x { u64 len, key bytes, u32 vtype, value }
 *   n_tensors x { u64 len, name bytes, u32 n_dims, u64 ne[n_dims], u32 type, u64 offset }
 *   padding to general.alignment (default 32), then the data section.
 *
 * Policy decisions: gaps between tensors are allowed (llama.cpp tolerates
 * them, and writers pad each tensor to the alignment), overlaps are not; the
 * data section may start past EOF only when there are no tensors (vocab-only
 * files end right after their metadata); tensors may appear in any order. */
#include "gguf.h"
#include "gguf_priv.h"
#include "types.h"
#include "util.h"

#include <fcntl.h>
#include <float.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define RD_BUF 4096
/* Smallest possible encodings, to bound counts before allocating. */
#define MIN_KV_BYTES (8u + 1u + 4u + 1u)                /* len, 1-byte key, vtype, u8 */
#define MIN_TENSOR_BYTES (8u + 1u + 4u + 8u + 4u + 8u)  /* len, name, n_dims, ne[0], type, offset */
#define MIN_STRING_BYTES 8u                             /* an empty string: its length */

typedef unsigned long long ull;

struct rd {
	const char *name;           /* path or "<memory>", for messages */
	int fd;
	const uint8_t *mem;         /* non-NULL: parse memory, else pread(fd) */
	uint64_t size, pos;
	uint64_t buf_off;
	size_t buf_len;
	char ctx[160];              /* "kv 3 'general.name'", "tensor 7 'output.weight'" */
	uint8_t buf[RD_BUF];
};

struct gguf_impl {
	struct st_gguf pub;         /* first: st_gguf pointers are gguf_impl pointers */
	struct st_gguf_hset kv_set, t_set;
};

static const struct st_gguf_names *kv_names(const struct st_gguf *g, struct st_gguf_names *n)
{
	n->base = g->kv;
	n->stride = sizeof(struct st_gguf_kv);
	n->off = offsetof(struct st_gguf_kv, key);
	return n;
}

static const struct st_gguf_names *t_names(const struct st_gguf *g, struct st_gguf_names *n)
{
	n->base = g->tensors;
	n->stride = sizeof(struct st_gguf_tensor);
	n->off = offsetof(struct st_gguf_tensor, name);
	return n;
}

/* ---- hash set ------------------------------------------------------------ */

static uint64_t hash_str(const char *s)
{
	uint64_t h = 1469598103934665603ull;   /* FNV-1a */
	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * 1099511628211ull;
	return h ^ (h >> 29);
}

static const char *name_at(const struct st_gguf_names *a, uint32_t i)
{
	const char *s;
	memcpy(&s, (const char *)a->base + (size_t)i * a->stride + a->off, sizeof s);
	return s;
}

int st_gguf_hset_init(struct st_gguf_hset *h, uint64_t expected)
{
	uint64_t cap = 16;
	while (cap < expected * 2)
		cap <<= 1;
	h->slot = calloc(cap, sizeof *h->slot);
	h->cap = h->slot ? cap : 0;
	h->count = 0;
	return h->slot ? 0 : -ENOMEM;
}

void st_gguf_hset_fini(struct st_gguf_hset *h)
{
	free(h->slot);
	h->slot = NULL;
	h->cap = h->count = 0;
}

int64_t st_gguf_hset_find(const struct st_gguf_hset *h, const struct st_gguf_names *a,
			  const char *name)
{
	if (!h->slot)
		return -1;
	uint64_t mask = h->cap - 1;
	for (uint64_t i = hash_str(name) & mask; h->slot[i]; i = (i + 1) & mask)
		if (!strcmp(name_at(a, h->slot[i] - 1), name))
			return h->slot[i] - 1;
	return -1;
}

static void hset_put(uint32_t *slot, uint64_t cap, const char *name, uint32_t idx)
{
	uint64_t i = hash_str(name) & (cap - 1);
	while (slot[i])
		i = (i + 1) & (cap - 1);
	slot[i] = idx + 1;
}

int st_gguf_hset_insert(struct st_gguf_hset *h, const struct st_gguf_names *a,
			uint32_t idx, uint32_t *dup)
{
	const char *name = name_at(a, idx);
	int64_t prev = st_gguf_hset_find(h, a, name);
	if (prev >= 0) {
		*dup = (uint32_t)prev;
		return 1;
	}
	if (!h->slot || (h->count + 1) * 2 > h->cap) {
		uint64_t cap = h->cap ? h->cap * 2 : 16;
		uint32_t *slot = calloc(cap, sizeof *slot);
		if (!slot)
			return -ENOMEM;
		for (uint64_t i = 0; i < h->cap; i++)
			if (h->slot[i])
				hset_put(slot, cap, name_at(a, h->slot[i] - 1), h->slot[i] - 1);
		free(h->slot);
		h->slot = slot;
		h->cap = cap;
	}
	hset_put(h->slot, h->cap, name, idx);
	h->count++;
	return 0;
}

/* ---- value types ----------------------------------------------------------- */

static const char *const vtype_names[ST_GGUF_VTYPE_COUNT] = {
	"u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "string", "array",
	"u64", "i64", "f64",
};

const char *st_gguf_vtype_name(uint32_t vtype)
{
	return vtype < ST_GGUF_VTYPE_COUNT ? vtype_names[vtype] : "unknown";
}

size_t st_gguf_vtype_size(uint32_t vtype)
{
	switch (vtype) {
	case ST_GGUF_U8: case ST_GGUF_I8: case ST_GGUF_BOOL: return 1;
	case ST_GGUF_U16: case ST_GGUF_I16: return 2;
	case ST_GGUF_U32: case ST_GGUF_I32: case ST_GGUF_F32: return 4;
	case ST_GGUF_U64: case ST_GGUF_I64: case ST_GGUF_F64: return 8;
	default: return 0;
	}
}

static bool vtype_signed(uint32_t t)
{
	return t == ST_GGUF_I8 || t == ST_GGUF_I16 || t == ST_GGUF_I32 || t == ST_GGUF_I64;
}

static bool vtype_unsigned(uint32_t t)
{
	return t == ST_GGUF_U8 || t == ST_GGUF_U16 || t == ST_GGUF_U32 || t == ST_GGUF_U64;
}

/* ---- the reader ------------------------------------------------------------- */

ST_PRINTF(3, 4) static int rd_fail(const struct rd *r, int code, const char *fmt, ...)
{
	char msg[320];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (r->ctx[0])
		return st_error(code, "gguf %.96s: %s: %s", r->name, r->ctx, msg);
	return st_error(code, "gguf %.96s: %s", r->name, msg);
}

/* A key or tensor name for a message: printable ASCII kept, every other
 * byte (control characters, escape sequences, UTF-8) as \xNN, at most ~80
 * characters, so a hostile name cannot garble a terminal. */
static const char *safe_name(char *dst, size_t n, const char *s)
{
	size_t k = 0;
	for (; *s && k + 5 < n; s++) {
		unsigned char c = (unsigned char)*s;
		if (c >= 0x20 && c < 0x7f && c != '\\')
			dst[k++] = (char)c;
		else
			k += (size_t)snprintf(dst + k, n - k, "\\x%02x", c);
	}
	if (*s && k + 4 <= n)
		memcpy(dst + k, "...", 3), k += 3;
	dst[k] = 0;
	return dst;
}

static void set_ctx(struct rd *r, const char *what, uint64_t i, const char *name)
{
	char nm[88];
	if (name)
		snprintf(r->ctx, sizeof r->ctx, "%s %llu '%s'", what, (ull)i, safe_name(nm, sizeof nm, name));
	else
		snprintf(r->ctx, sizeof r->ctx, "%s %llu", what, (ull)i);
}

static uint64_t rd_left(const struct rd *r)
{
	return r->size - r->pos;
}

static int rd_pread(struct rd *r, uint8_t *dst, uint64_t off, uint64_t n)
{
	while (n) {
		size_t chunk = n > (1u << 30) ? (1u << 30) : (size_t)n;
		ssize_t k = pread(r->fd, dst, chunk, (off_t)off);
		if (k < 0) {
			int e = errno;
			if (e == EINTR)
				continue;
			return rd_fail(r, -e, "read of %zu bytes at offset %llu failed: %s",
				       chunk, (ull)off, strerror(e));
		}
		if (k == 0)
			return rd_fail(r, -EIO, "unexpected end of file at offset %llu (did the file shrink while being read?)",
				       (ull)off);
		dst += k;
		off += (uint64_t)k;
		n -= (uint64_t)k;
	}
	return 0;
}

/* Read n bytes of field `what`; a short file is a -EINVAL "truncated" error. */
static int rd_bytes(struct rd *r, void *dst, uint64_t n, const char *what)
{
	uint8_t *d = dst;
	int rc;
	if (n > rd_left(r))
		return rd_fail(r, -EINVAL, "truncated %s: needs %llu bytes at offset %llu but the file has %llu",
			       what, (ull)n, (ull)r->pos, (ull)r->size);
	if (!n)
		return 0;
	if (r->mem) {
		memcpy(d, r->mem + r->pos, n);
		r->pos += n;
		return 0;
	}
	while (n) {
		if (r->pos >= r->buf_off && r->pos < r->buf_off + r->buf_len) {
			uint64_t k = ST_MIN(n, r->buf_off + r->buf_len - r->pos);
			memcpy(d, r->buf + (r->pos - r->buf_off), k);
			d += k;
			r->pos += k;
			n -= k;
			continue;
		}
		if (n >= RD_BUF) {              /* big strings/arrays: straight in */
			if ((rc = rd_pread(r, d, r->pos, n)) < 0)
				return rc;
			r->pos += n;
			return 0;
		}
		size_t want = (size_t)ST_MIN((uint64_t)RD_BUF, rd_left(r));
		if ((rc = rd_pread(r, r->buf, r->pos, want)) < 0)
			return rc;
		r->buf_off = r->pos;
		r->buf_len = want;
	}
	return 0;
}

static uint64_t le_get(const uint8_t *b, unsigned n)
{
	uint64_t v = 0;
	for (unsigned i = 0; i < n; i++)
		v |= (uint64_t)b[i] << (8 * i);
	return v;
}

static int rd_u32(struct rd *r, uint32_t *v, const char *what)
{
	uint8_t b[4];
	int rc = rd_bytes(r, b, 4, what);
	*v = rc == 0 ? (uint32_t)le_get(b, 4) : 0;
	return rc;
}

static int rd_u64(struct rd *r, uint64_t *v, const char *what)
{
	uint8_t b[8];
	int rc = rd_bytes(r, b, 8, what);
	*v = rc == 0 ? le_get(b, 8) : 0;
	return rc;
}

/* A key or tensor name: 1..ST_GGUF_MAX_NAME bytes, no NUL. */
static int rd_name(struct rd *r, char **out, const char *what)
{
	char lw[32];
	uint64_t len;
	int rc;
	snprintf(lw, sizeof lw, "%s length", what);
	if ((rc = rd_u64(r, &len, lw)) < 0)
		return rc;
	if (len == 0)
		return rd_fail(r, -EINVAL, "%s is empty (%s 0)", what, lw);
	if (len > ST_GGUF_MAX_NAME)
		return rd_fail(r, -EINVAL, "%s %llu exceeds the limit of %u bytes", lw, (ull)len, ST_GGUF_MAX_NAME);
	if (len > rd_left(r))
		return rd_fail(r, -EINVAL, "%s %llu exceeds the %llu bytes left in the file (offset %llu)",
			       lw, (ull)len, (ull)rd_left(r), (ull)r->pos);
	char *s = malloc(len + 1);
	if (!s)
		return rd_fail(r, -ENOMEM, "out of memory for a %llu-byte %s", (ull)len, what);
	if ((rc = rd_bytes(r, s, len, what)) < 0) {
		free(s);
		return rc;
	}
	s[len] = 0;
	const char *nul = memchr(s, 0, len);
	if (nul) {
		rc = rd_fail(r, -EINVAL, "%s contains a NUL byte at position %zu of %llu", what,
			     (size_t)(nul - s), (ull)len);
		free(s);
		return rc;
	}
	*out = s;
	return 0;
}

static void str_what(char *buf, size_t n, int64_t idx)
{
	if (idx >= 0)
		snprintf(buf, n, "array element %lld: string length", (long long)idx);
	else
		snprintf(buf, n, "string length");
}

/* A string's length, checked against the file and the cap; idx >= 0 names
 * the element of a string array (messages are formatted only on error). */
static int rd_str_len(struct rd *r, int64_t idx, uint64_t *len)
{
	char lw[64];
	uint8_t b[8];
	if (rd_left(r) < 8) {
		str_what(lw, sizeof lw, idx);
		return rd_bytes(r, b, 8, lw);
	}
	int rc = rd_bytes(r, b, 8, "string length");
	if (rc < 0)
		return rc;
	*len = le_get(b, 8);
	if (*len > rd_left(r)) {
		str_what(lw, sizeof lw, idx);
		return rd_fail(r, -EINVAL, "%s %llu exceeds the %llu bytes left in the file (offset %llu)",
			       lw, (ull)*len, (ull)rd_left(r), (ull)r->pos);
	}
	if (*len > ST_GGUF_MAX_STRING) {
		str_what(lw, sizeof lw, idx);
		return rd_fail(r, -EINVAL, "%s %llu exceeds the limit of %u bytes", lw, (ull)*len, ST_GGUF_MAX_STRING);
	}
	return 0;
}

static int rd_string(struct rd *r, struct st_gguf_string *s)
{
	uint64_t len;
	int rc = rd_str_len(r, -1, &len);
	if (rc < 0)
		return rc;
	s->data = malloc(len + 1);
	if (!s->data)
		return rd_fail(r, -ENOMEM, "out of memory for a %llu-byte string", (ull)len);
	if ((rc = rd_bytes(r, s->data, len, "string")) < 0)
		return rc;          /* the caller frees s->data */
	s->data[len] = 0;
	s->len = len;
	return 0;
}

/* The n strings of an array go into one block (a[0].data owns it): one
 * allocation instead of n, and at most ~2x the file's bytes even for a
 * million empty strings. */
static int rd_string_array(struct rd *r, struct st_gguf_string *a, uint64_t n)
{
	char *arena = NULL;
	uint64_t used = 0, cap = 0, len;
	int rc = 0;
	for (uint64_t i = 0; i < n; i++) {
		if ((rc = rd_str_len(r, (int64_t)i, &len)) < 0)
			goto fail;
		/* used + len + 1 <= bytes read so far + n: cannot overflow */
		if (used + len + 1 > cap) {
			uint64_t c = ST_MAX(ST_MAX(cap * 2, used + len + 1), (uint64_t)256);
			char *p = c <= SIZE_MAX ? realloc(arena, (size_t)c) : NULL;
			if (!p) {
				rc = rd_fail(r, -ENOMEM, "out of memory for %llu bytes of array strings", (ull)c);
				goto fail;
			}
			arena = p;
			cap = c;
		}
		if ((rc = rd_bytes(r, arena + used, len, "array string")) < 0)
			goto fail;
		arena[used + len] = 0;
		a[i].len = len;
		used += len + 1;
	}
	used = 0;
	for (uint64_t i = 0; i < n; i++) {
		a[i].data = arena + used;
		used += a[i].len + 1;
	}
	return 0;
fail:
	free(arena);
	return rc;
}

static int check_bools(struct rd *r, const uint8_t *b, uint64_t n, bool array)
{
	for (uint64_t i = 0; i < n; i++) {
		if (b[i] <= 1)
			continue;
		if (array)
			return rd_fail(r, -EINVAL, "bool array element %llu has value %u (must be 0 or 1)",
				       (ull)i, b[i]);
		return rd_fail(r, -EINVAL, "bool value %u is not 0 or 1", b[i]);
	}
	return 0;
}

static int rd_array(struct rd *r, struct st_gguf_kv *kv)
{
	uint32_t et;
	uint64_t n, need;
	int rc;
	if ((rc = rd_u32(r, &et, "array element type")) < 0)
		return rc;
	if (et == ST_GGUF_ARRAY)
		return rd_fail(r, -EINVAL, "nested arrays are not supported (array element type %u = array)", et);
	if (et >= ST_GGUF_VTYPE_COUNT)
		return rd_fail(r, -EINVAL, "unknown array element type %u (valid: 0..%u)", et, ST_GGUF_VTYPE_COUNT - 1);
	kv->v.arr.type = et;
	if ((rc = rd_u64(r, &n, "array length")) < 0)
		return rc;
	size_t es = et == ST_GGUF_STRING ? MIN_STRING_BYTES : st_gguf_vtype_size(et);
	if (st_mul_overflow_u64(n, es, &need))
		return rd_fail(r, -EOVERFLOW, "array length %llu x %zu bytes per %s element overflows",
			       (ull)n, es, st_gguf_vtype_name(et));
	if (need > rd_left(r))
		return rd_fail(r, -EINVAL, "array length %llu: %llu %s elements need %s%llu bytes but only %llu are left in the file",
			       (ull)n, (ull)n, st_gguf_vtype_name(et), et == ST_GGUF_STRING ? "at least " : "",
			       (ull)need, (ull)rd_left(r));
	if (n > ST_GGUF_MAX_ARRAY)
		return rd_fail(r, -EINVAL, "array length %llu exceeds the limit of %u elements", (ull)n, ST_GGUF_MAX_ARRAY);
	if (et == ST_GGUF_STRING) {
		struct st_gguf_string *a = calloc(n ? n : 1, sizeof *a);
		if (!a)
			return rd_fail(r, -ENOMEM, "out of memory for %llu strings", (ull)n);
		kv->v.arr.data = a;
		kv->v.arr.n = n;    /* data pointers stay NULL until all are read */
		return rd_string_array(r, a, n);
	}
	void *d = malloc(need ? need : 1);
	if (!d)
		return rd_fail(r, -ENOMEM, "out of memory for %llu bytes of array data", (ull)need);
	kv->v.arr.data = d;
	kv->v.arr.n = n;
	if ((rc = rd_bytes(r, d, need, "array data")) < 0)
		return rc;
	if (et == ST_GGUF_BOOL)
		return check_bools(r, d, n, true);
	return 0;
}

static int rd_value(struct rd *r, struct st_gguf_kv *kv)
{
	uint8_t b[8];
	char what[32];
	int rc;
	uint32_t t = kv->type;
	if (t == ST_GGUF_STRING)
		return rd_string(r, &kv->v.str);
	if (t == ST_GGUF_ARRAY)
		return rd_array(r, kv);
	unsigned n = (unsigned)st_gguf_vtype_size(t);
	snprintf(what, sizeof what, "%s value", st_gguf_vtype_name(t));
	if ((rc = rd_bytes(r, b, n, what)) < 0)
		return rc;
	uint64_t u = le_get(b, n);
	if (vtype_unsigned(t)) {
		kv->v.u64 = u;
	} else if (vtype_signed(t)) {
		/* sign-extend from n bytes */
		unsigned sh = 64 - 8 * n;
		kv->v.i64 = (int64_t)(u << sh) >> sh;
	} else if (t == ST_GGUF_F32) {
		float f;
		uint32_t u32 = (uint32_t)u;
		memcpy(&f, &u32, 4);
		kv->v.f64 = f;
	} else if (t == ST_GGUF_F64) {
		memcpy(&kv->v.f64, &u, 8);
	} else {                            /* BOOL */
		if ((rc = check_bools(r, b, 1, false)) < 0)
			return rc;
		kv->v.b = b[0];
	}
	return 0;
}

/* Keys whose value type the GGUF spec fixes. */
static const struct {
	const char *key;
	uint32_t type, elem;
} known_keys[] = {
	{ "general.architecture", ST_GGUF_STRING, 0 },
	{ "general.alignment", ST_GGUF_U32, 0 },
	{ "general.name", ST_GGUF_STRING, 0 },
	{ "general.quantization_version", ST_GGUF_U32, 0 },
	{ "tokenizer.ggml.model", ST_GGUF_STRING, 0 },
	{ "tokenizer.ggml.tokens", ST_GGUF_ARRAY, ST_GGUF_STRING },
	{ "tokenizer.ggml.merges", ST_GGUF_ARRAY, ST_GGUF_STRING },
	{ "tokenizer.ggml.scores", ST_GGUF_ARRAY, ST_GGUF_F32 },
	{ "tokenizer.ggml.token_type", ST_GGUF_ARRAY, ST_GGUF_I32 },
};

static int check_known_key(struct rd *r, struct st_gguf *g, const struct st_gguf_kv *kv)
{
	for (size_t i = 0; i < ST_ARRAY_SIZE(known_keys); i++) {
		if (strcmp(kv->key, known_keys[i].key))
			continue;
		uint32_t want = known_keys[i].type;
		if (kv->type != want)
			return rd_fail(r, -EINVAL, "value type must be %s%s, not %s",
				       want == ST_GGUF_ARRAY ? "an array of " : "",
				       st_gguf_vtype_name(want == ST_GGUF_ARRAY ? known_keys[i].elem : want),
				       st_gguf_vtype_name(kv->type));
		if (want == ST_GGUF_ARRAY && kv->v.arr.type != known_keys[i].elem)
			return rd_fail(r, -EINVAL, "value type must be an array of %s, not an array of %s",
				       st_gguf_vtype_name(known_keys[i].elem), st_gguf_vtype_name(kv->v.arr.type));
		break;
	}
	if (!strcmp(kv->key, "general.alignment")) {
		uint64_t a = kv->v.u64;
		if (!st_is_pow2_u64(a))
			return rd_fail(r, -EINVAL, "alignment %llu is not a power of two", (ull)a);
		if (a > ST_GGUF_MAX_ALIGNMENT)
			return rd_fail(r, -EINVAL, "alignment %llu exceeds the limit of %u", (ull)a, ST_GGUF_MAX_ALIGNMENT);
		g->alignment = (uint32_t)a;
	}
	return 0;
}

static int rd_kv(struct rd *r, struct gguf_impl *im, uint64_t i)
{
	struct st_gguf *g = &im->pub;
	struct st_gguf_kv *kv = &g->kv[i];
	struct st_gguf_names nm;
	uint32_t type, dup;
	int rc;
	set_ctx(r, "kv", i, NULL);
	if ((rc = rd_name(r, &kv->key, "key")) < 0)
		return rc;
	set_ctx(r, "kv", i, kv->key);
	rc = st_gguf_hset_insert(&im->kv_set, kv_names(g, &nm), (uint32_t)i, &dup);
	if (rc < 0)
		return rd_fail(r, rc, "out of memory for the key index");
	if (rc > 0)
		return rd_fail(r, -EINVAL, "duplicate key (kv %u has the same key)", dup);
	if ((rc = rd_u32(r, &type, "value type")) < 0)
		return rc;
	if (type >= ST_GGUF_VTYPE_COUNT)
		return rd_fail(r, -EINVAL, "unknown value type %u (valid: 0..%u)", type, ST_GGUF_VTYPE_COUNT - 1);
	kv->type = type;
	if ((rc = rd_value(r, kv)) < 0)
		return rc;
	return check_known_key(r, g, kv);
}

static int rd_tensor(struct rd *r, struct gguf_impl *im, uint64_t i)
{
	struct st_gguf *g = &im->pub;
	struct st_gguf_tensor *t = &g->tensors[i];
	struct st_gguf_names nm;
	char what[16];
	uint32_t dup;
	int rc;
	set_ctx(r, "tensor", i, NULL);
	if ((rc = rd_name(r, &t->name, "name")) < 0)
		return rc;
	set_ctx(r, "tensor", i, t->name);
	rc = st_gguf_hset_insert(&im->t_set, t_names(g, &nm), (uint32_t)i, &dup);
	if (rc < 0)
		return rd_fail(r, rc, "out of memory for the tensor index");
	if (rc > 0)
		return rd_fail(r, -EINVAL, "duplicate tensor name (tensor %u has the same name)", dup);
	if ((rc = rd_u32(r, &t->n_dims, "n_dims")) < 0)
		return rc;
	if (t->n_dims < 1 || t->n_dims > ST_GGUF_MAX_DIMS)
		return rd_fail(r, -EINVAL, "n_dims %u is out of range (1..%u)", t->n_dims, ST_GGUF_MAX_DIMS);
	for (uint32_t d = 0; d < ST_GGUF_MAX_DIMS; d++)
		t->ne[d] = 1;
	for (uint32_t d = 0; d < t->n_dims; d++) {
		snprintf(what, sizeof what, "ne[%u]", d);
		if ((rc = rd_u64(r, &t->ne[d], what)) < 0)
			return rc;
		if (t->ne[d] == 0)
			return rd_fail(r, -EINVAL, "%s is 0 (every dimension must be at least 1)", what);
		if (t->ne[d] > (uint64_t)INT64_MAX)
			return rd_fail(r, -EINVAL, "%s = %llu exceeds INT64_MAX", what, (ull)t->ne[d]);
	}
	if ((rc = rd_u32(r, &t->type, "type")) < 0)
		return rc;
	const struct st_type_traits *tr = st_type_traits(t->type);
	if (!tr)
		return rd_fail(r, -EINVAL, "unknown tensor type id %u", t->type);
	if ((rc = rd_u64(r, &t->offset, "offset")) < 0)
		return rc;

	uint64_t n = 1, rows = 1, row;
	for (uint32_t d = 0; d < ST_GGUF_MAX_DIMS; d++)
		if (st_mul_overflow_u64(n, t->ne[d], &n) || n > (uint64_t)INT64_MAX)
			return rd_fail(r, -EOVERFLOW, "element count overflows (ne = %llu x %llu x %llu x %llu)",
				       (ull)t->ne[0], (ull)t->ne[1], (ull)t->ne[2], (ull)t->ne[3]);
	t->n_elements = n;
	rc = st_type_row_size(t->type, t->ne[0], &row);
	if (rc == -EINVAL)
		return rd_fail(r, -EINVAL, "ne[0] = %llu is not a multiple of the %s block size %u",
			       (ull)t->ne[0], tr->name, tr->block_size);
	if (rc < 0)
		return rd_fail(r, -EOVERFLOW, "row size of %llu %s elements overflows", (ull)t->ne[0], tr->name);
	rows = t->ne[1] * t->ne[2] * t->ne[3];  /* <= n_elements: cannot overflow */
	if (st_mul_overflow_u64(row, rows, &t->nbytes))
		return rd_fail(r, -EOVERFLOW, "byte size overflows (%llu rows of %llu bytes, %s)",
			       (ull)rows, (ull)row, tr->name);
	return 0;
}

struct span {
	uint64_t off, end;
	uint64_t idx;
};

static int span_cmp(const void *a, const void *b)
{
	const struct span *x = a, *y = b;
	if (x->off != y->off)
		return x->off < y->off ? -1 : 1;
	return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* Offsets, bounds and overlaps, once the data section's start is known. */
static int check_tensor_data(struct rd *r, struct st_gguf *g)
{
	uint64_t nt = g->n_tensors;
	char n1[88], n2[88];
	r->ctx[0] = 0;
	/* the context is formatted only when a tensor fails */
#define TFAIL(...) (set_ctx(r, "tensor", i, t->name), rd_fail(r, __VA_ARGS__))
	for (uint64_t i = 0; i < nt; i++) {
		struct st_gguf_tensor *t = &g->tensors[i];
		uint64_t end;
		if (t->offset % g->alignment)
			return TFAIL(-EINVAL, "offset %llu is not a multiple of the alignment %u",
				     (ull)t->offset, g->alignment);
		if (st_add_overflow_u64(g->data_offset, t->offset, &t->file_offset))
			return TFAIL(-EOVERFLOW, "data offset %llu + offset %llu overflows",
				     (ull)g->data_offset, (ull)t->offset);
		if (t->file_offset > g->file_size)
			return TFAIL(-EINVAL, "offset %llu: data starts at byte %llu, past the end of the file (%llu bytes)",
				     (ull)t->offset, (ull)t->file_offset, (ull)g->file_size);
		if (st_add_overflow_u64(t->file_offset, t->nbytes, &end))
			return TFAIL(-EOVERFLOW, "data end (byte %llu + %llu) overflows",
				     (ull)t->file_offset, (ull)t->nbytes);
		if (end > g->file_size)
			return TFAIL(-EINVAL, "data ends at byte %llu but the file has %llu",
				     (ull)end, (ull)g->file_size);
	}
#undef TFAIL
	r->ctx[0] = 0;
	if (nt < 2)
		return 0;
	struct span *s = malloc(nt * sizeof *s);   /* nt <= MAX_TENSORS: no overflow */
	if (!s)
		return rd_fail(r, -ENOMEM, "out of memory sorting %llu tensors", (ull)nt);
	for (uint64_t i = 0; i < nt; i++)
		s[i] = (struct span){ g->tensors[i].offset, g->tensors[i].offset + g->tensors[i].nbytes, i };
	qsort(s, nt, sizeof *s, span_cmp);
	int rc = 0;
	for (uint64_t i = 1; i < nt && !rc; i++)
		if (s[i].off < s[i - 1].end)
			rc = rd_fail(r, -EINVAL, "tensors '%s' (data bytes %llu..%llu) and '%s' (bytes %llu..%llu) overlap",
				     safe_name(n1, sizeof n1, g->tensors[s[i - 1].idx].name), (ull)s[i - 1].off,
				     (ull)s[i - 1].end, safe_name(n2, sizeof n2, g->tensors[s[i].idx].name),
				     (ull)s[i].off, (ull)s[i].end);
	free(s);
	return rc;
}

static int bound_count(struct rd *r, const char *what, uint64_t n, unsigned min_bytes,
		       uint32_t cap, uint64_t *need)
{
	if (st_mul_overflow_u64(n, min_bytes, need))
		return rd_fail(r, -EOVERFLOW, "%s %llu x %u bytes (the smallest entry) overflows",
			       what, (ull)n, min_bytes);
	if (*need > rd_left(r))
		return rd_fail(r, -EINVAL, "%s %llu needs at least %llu bytes but only %llu are left in the file",
			       what, (ull)n, (ull)*need, (ull)rd_left(r));
	if (n > cap)
		return rd_fail(r, -EINVAL, "%s %llu exceeds the limit of %u", what, (ull)n, cap);
	return 0;
}

static int parse(struct rd *r, struct st_gguf **out)
{
	struct gguf_impl *im = calloc(1, sizeof *im);
	struct st_gguf *g = &im->pub;
	uint8_t magic[4];
	uint64_t n_tensors, n_kv, kv_need, t_need;
	int rc;
	*out = NULL;
	if (!im)
		return st_error(-ENOMEM, "gguf %.96s: out of memory", r->name);
	g->file_size = r->size;
	g->alignment = 32;
	if ((rc = rd_bytes(r, magic, 4, "magic")) < 0)
		goto err;
	if (memcmp(magic, "GGUF", 4)) {
		rc = rd_fail(r, -EINVAL, "bad magic %02x %02x %02x %02x (expected \"GGUF\"): not a GGUF file",
			     magic[0], magic[1], magic[2], magic[3]);
		goto err;
	}
	if ((rc = rd_u32(r, &g->version, "version")) < 0)
		goto err;
	if (g->version == 1) {
		rc = rd_fail(r, -EINVAL, "version 1 is not supported (GGUF v1 used 32-bit counts; only v2 and v3 are read)");
		goto err;
	}
	if (g->version != 2 && g->version != 3) {
		uint32_t sw = __builtin_bswap32(g->version);
		if (sw >= 1 && sw <= 3)
			rc = rd_fail(r, -EINVAL, "version 0x%08x is big-endian GGUF v%u; only little-endian files are supported",
				     g->version, sw);
		else
			rc = rd_fail(r, -EINVAL, "version %u is not supported (only GGUF v2 and v3)", g->version);
		goto err;
	}
	if ((rc = rd_u64(r, &n_tensors, "n_tensors")) < 0 || (rc = rd_u64(r, &n_kv, "n_kv")) < 0)
		goto err;
	if ((rc = bound_count(r, "n_kv", n_kv, MIN_KV_BYTES, ST_GGUF_MAX_KV, &kv_need)) < 0 ||
	    (rc = bound_count(r, "n_tensors", n_tensors, MIN_TENSOR_BYTES, ST_GGUF_MAX_TENSORS, &t_need)) < 0)
		goto err;
	if (kv_need + t_need > rd_left(r)) {     /* both < 2^64 / 2: no overflow */
		rc = rd_fail(r, -EINVAL, "n_kv %llu and n_tensors %llu need at least %llu bytes but only %llu are left in the file",
			     (ull)n_kv, (ull)n_tensors, (ull)(kv_need + t_need), (ull)rd_left(r));
		goto err;
	}

	g->kv = calloc(n_kv ? n_kv : 1, sizeof *g->kv);
	g->tensors = calloc(n_tensors ? n_tensors : 1, sizeof *g->tensors);
	if (!g->kv || !g->tensors || st_gguf_hset_init(&im->kv_set, n_kv) < 0 ||
	    st_gguf_hset_init(&im->t_set, n_tensors) < 0) {
		rc = rd_fail(r, -ENOMEM, "out of memory for %llu key-value pairs and %llu tensors",
			     (ull)n_kv, (ull)n_tensors);
		goto err;
	}
	g->n_kv = n_kv;
	g->n_tensors = n_tensors;
	for (uint64_t i = 0; i < n_kv; i++)
		if ((rc = rd_kv(r, im, i)) < 0)
			goto err;
	for (uint64_t i = 0; i < n_tensors; i++)
		if ((rc = rd_tensor(r, im, i)) < 0)
			goto err;
	r->ctx[0] = 0;
	st_align_up_u64(r->pos, g->alignment, &g->data_offset);    /* pos <= size: no overflow */
	if ((rc = check_tensor_data(r, g)) < 0)
		goto err;
	*out = g;
	return 0;
err:
	st_gguf_free(g);
	return rc;
}

int st_gguf_open(const char *path, struct st_gguf **out)
{
	struct stat st;
	int rc;
	if (!out)
		return st_error(-EINVAL, "st_gguf_open: out is NULL");
	*out = NULL;
	if (!path)
		return st_error(-EINVAL, "st_gguf_open: path is NULL");
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;
		return st_error(-e, "gguf %.200s: cannot open: %s", path, strerror(e));
	}
	if (fstat(fd, &st) < 0) {
		int e = errno;
		close(fd);
		return st_error(-e, "gguf %.200s: fstat failed: %s", path, strerror(e));
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		return st_error(-EINVAL, "gguf %.200s: not a regular file", path);
	}
	struct rd *r = calloc(1, sizeof *r);
	if (!r) {
		close(fd);
		return st_error(-ENOMEM, "gguf %.200s: out of memory", path);
	}
	r->name = path;
	r->fd = fd;
	r->size = (uint64_t)st.st_size;
	rc = parse(r, out);
	free(r);
	close(fd);
	return rc;
}

int st_gguf_parse_mem(const void *data, size_t size, struct st_gguf **out)
{
	static const uint8_t empty[1];
	if (!out)
		return st_error(-EINVAL, "st_gguf_parse_mem: out is NULL");
	*out = NULL;
	if (!data && size)
		return st_error(-EINVAL, "st_gguf_parse_mem: data is NULL but size is %zu", size);
	struct rd *r = calloc(1, sizeof *r);
	if (!r)
		return st_error(-ENOMEM, "gguf <memory>: out of memory");
	r->name = "<memory>";
	r->fd = -1;
	r->mem = data ? data : empty;
	r->size = size;
	int rc = parse(r, out);
	free(r);
	return rc;
}

static void kv_free(struct st_gguf_kv *kv)
{
	free(kv->key);
	if (kv->type == ST_GGUF_STRING) {
		free(kv->v.str.data);
	} else if (kv->type == ST_GGUF_ARRAY) {
		if (kv->v.arr.type == ST_GGUF_STRING && kv->v.arr.data && kv->v.arr.n)
			free(((struct st_gguf_string *)kv->v.arr.data)[0].data);   /* the block */
		free(kv->v.arr.data);
	}
}

void st_gguf_free(struct st_gguf *g)
{
	if (!g)
		return;
	struct gguf_impl *im = (struct gguf_impl *)g;
	if (g->kv)
		for (uint64_t i = 0; i < g->n_kv; i++)
			kv_free(&g->kv[i]);
	if (g->tensors)
		for (uint64_t i = 0; i < g->n_tensors; i++)
			free(g->tensors[i].name);
	free(g->kv);
	free(g->tensors);
	st_gguf_hset_fini(&im->kv_set);
	st_gguf_hset_fini(&im->t_set);
	free(im);
}

/* ---- look-ups ----------------------------------------------------------------- */

const struct st_gguf_kv *st_gguf_find(const struct st_gguf *g, const char *key)
{
	struct st_gguf_names nm;
	if (!g || !key)
		return NULL;
	int64_t i = st_gguf_hset_find(&((const struct gguf_impl *)g)->kv_set, kv_names(g, &nm), key);
	return i < 0 ? NULL : &g->kv[i];
}

const struct st_gguf_tensor *st_gguf_find_tensor(const struct st_gguf *g, const char *name)
{
	struct st_gguf_names nm;
	if (!g || !name)
		return NULL;
	int64_t i = st_gguf_hset_find(&((const struct gguf_impl *)g)->t_set, t_names(g, &nm), name);
	return i < 0 ? NULL : &g->tensors[i];
}

static const char *kv_type_desc(const struct st_gguf_kv *kv, char *buf, size_t n)
{
	if (kv->type == ST_GGUF_ARRAY)
		snprintf(buf, n, "an array of %s", st_gguf_vtype_name(kv->v.arr.type));
	else
		snprintf(buf, n, "%s", st_gguf_vtype_name(kv->type));
	return buf;
}

static int get_uint(const struct st_gguf *g, const char *key, uint64_t max, const char *tname,
		    uint64_t *out)
{
	const struct st_gguf_kv *kv = st_gguf_find(g, key);
	char buf[40];
	if (!kv)
		return -ENOENT;
	if (vtype_unsigned(kv->type)) {
		if (kv->v.u64 > max)
			return st_error(-EINVAL, "gguf key '%.100s': value %llu does not fit in %s",
					key, (ull)kv->v.u64, tname);
		*out = kv->v.u64;
		return 0;
	}
	if (vtype_signed(kv->type)) {
		if (kv->v.i64 < 0 || (uint64_t)kv->v.i64 > max)
			return st_error(-EINVAL, "gguf key '%.100s': value %lld does not fit in %s",
					key, (long long)kv->v.i64, tname);
		*out = (uint64_t)kv->v.i64;
		return 0;
	}
	return st_error(-EINVAL, "gguf key '%.100s': expected an integer (%s), found %s",
			key, tname, kv_type_desc(kv, buf, sizeof buf));
}

int st_gguf_get_u32(const struct st_gguf *g, const char *key, uint32_t *out)
{
	uint64_t v = 0;
	int rc = get_uint(g, key, UINT32_MAX, "u32", &v);
	if (rc == 0)
		*out = (uint32_t)v;
	return rc;
}

int st_gguf_get_u64(const struct st_gguf *g, const char *key, uint64_t *out)
{
	return get_uint(g, key, UINT64_MAX, "u64", out);
}

int st_gguf_get_f32(const struct st_gguf *g, const char *key, float *out)
{
	const struct st_gguf_kv *kv = st_gguf_find(g, key);
	char buf[40];
	if (!kv)
		return -ENOENT;
	if (kv->type != ST_GGUF_F32 && kv->type != ST_GGUF_F64)
		return st_error(-EINVAL, "gguf key '%.100s': expected f32, found %s", key,
				kv_type_desc(kv, buf, sizeof buf));
	double d = kv->v.f64;
	if (d == d && (d > FLT_MAX || d < -FLT_MAX) && d - d == 0)  /* finite, out of range */
		return st_error(-EINVAL, "gguf key '%.100s': value %g does not fit in f32", key, d);
	*out = (float)d;
	return 0;
}

int st_gguf_get_bool(const struct st_gguf *g, const char *key, bool *out)
{
	const struct st_gguf_kv *kv = st_gguf_find(g, key);
	char buf[40];
	if (!kv)
		return -ENOENT;
	if (kv->type != ST_GGUF_BOOL)
		return st_error(-EINVAL, "gguf key '%.100s': expected bool, found %s", key,
				kv_type_desc(kv, buf, sizeof buf));
	*out = kv->v.b;
	return 0;
}

int st_gguf_get_str(const struct st_gguf *g, const char *key, const char **out)
{
	const struct st_gguf_kv *kv = st_gguf_find(g, key);
	char buf[40];
	if (!kv)
		return -ENOENT;
	if (kv->type != ST_GGUF_STRING)
		return st_error(-EINVAL, "gguf key '%.100s': expected string, found %s", key,
				kv_type_desc(kv, buf, sizeof buf));
	*out = kv->v.str.data;
	return 0;
}

int st_gguf_get_arr(const struct st_gguf *g, const char *key, uint32_t elem_type,
		    uint64_t *n, const void **data)
{
	const struct st_gguf_kv *kv = st_gguf_find(g, key);
	char buf[40];
	if (!kv)
		return -ENOENT;
	if (kv->type != ST_GGUF_ARRAY || kv->v.arr.type != elem_type)
		return st_error(-EINVAL, "gguf key '%.100s': expected an array of %s, found %s", key,
				st_gguf_vtype_name(elem_type), kv_type_desc(kv, buf, sizeof buf));
	*n = kv->v.arr.n;
	*data = kv->v.arr.data;
	return 0;
}
