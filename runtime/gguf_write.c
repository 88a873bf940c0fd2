/* gguf_write.c: the streaming GGUF v3 (or v2) writer.
 *
 * Phase 1 declares metadata (serialized at once into a byte buffer) and
 * tensors (name, type, shape; offsets assigned in declaration order, each
 * aligned).  Phase 2, st_gguf_writer_begin(), writes header + metadata +
 * tensor table + padding to the stream; then the tensors' bytes arrive in
 * declaration order, in as many chunks as the caller likes, and the writer
 * pads each tensor to the alignment (after the last one too, like gguf-py and
 * llama.cpp).  st_gguf_writer_finish() checks that every tensor got exactly
 * its bytes.  The layout is the standard one, so llama.cpp and gguf-py read
 * the files. */
#include "gguf.h"
#include "gguf_priv.h"
#include "types.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

typedef unsigned long long ull;

struct wkey {
	char *key;
};

struct wtensor {
	char *name;
	uint32_t type, n_dims;
	uint64_t ne[ST_GGUF_MAX_DIMS];
	uint64_t nbytes, offset;
};

enum { W_DECLARE, W_DATA, W_DONE, W_FAILED };

struct st_gguf_writer {
	uint32_t version, alignment;
	int state;
	uint8_t *meta;              /* serialized key-value pairs */
	size_t meta_len, meta_cap;
	struct wkey *keys;
	uint64_t n_kv, keys_cap;
	struct wtensor *t;
	uint64_t n_t, t_cap;
	struct st_gguf_hset kset, tset;
	uint64_t data_size;         /* aligned size of the data section so far */
	FILE *f;
	uint64_t cur, cur_done;     /* tensor being written, its bytes so far */
};

static const struct st_gguf_names *wkey_names(const struct st_gguf_writer *w, struct st_gguf_names *n)
{
	n->base = w->keys;
	n->stride = sizeof(struct wkey);
	n->off = offsetof(struct wkey, key);
	return n;
}

static const struct st_gguf_names *wt_names(const struct st_gguf_writer *w, struct st_gguf_names *n)
{
	n->base = w->t;
	n->stride = sizeof(struct wtensor);
	n->off = offsetof(struct wtensor, name);
	return n;
}

/* Grow an array to hold at least `need` elements of `size` bytes. */
static int grow(void **p, uint64_t *cap, uint64_t need, size_t size)
{
	if (need <= *cap)
		return 0;
	uint64_t c = *cap ? *cap : 16, bytes;
	while (c < need)
		c *= 2;
	if (st_mul_overflow_u64(c, size, &bytes) || bytes > SIZE_MAX)
		return -ENOMEM;
	void *q = realloc(*p, (size_t)bytes);
	if (!q)
		return -ENOMEM;
	*p = q;
	*cap = c;
	return 0;
}

static int meta_put(struct st_gguf_writer *w, const void *src, uint64_t n)
{
	uint64_t need, cap = w->meta_cap;
	if (st_add_overflow_u64(w->meta_len, n, &need) || grow((void **)&w->meta, &cap, need, 1) < 0)
		return st_error(-ENOMEM, "gguf writer: out of memory for %llu bytes of metadata", (ull)need);
	w->meta_cap = (size_t)cap;
	if (n)
		memcpy(w->meta + w->meta_len, src, (size_t)n);
	w->meta_len += (size_t)n;
	return 0;
}

static void le_put(uint8_t *b, uint64_t v, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		b[i] = (uint8_t)(v >> (8 * i));
}

static int meta_u32(struct st_gguf_writer *w, uint32_t v)
{
	uint8_t b[4];
	le_put(b, v, 4);
	return meta_put(w, b, 4);
}

static int meta_u64(struct st_gguf_writer *w, uint64_t v)
{
	uint8_t b[8];
	le_put(b, v, 8);
	return meta_put(w, b, 8);
}

static int meta_str(struct st_gguf_writer *w, const char *s, uint64_t len)
{
	int rc = meta_u64(w, len);
	return rc < 0 ? rc : meta_put(w, s, len);
}

int st_gguf_writer_create(struct st_gguf_writer **out, uint32_t version, uint32_t alignment)
{
	if (!out)
		return st_error(-EINVAL, "gguf writer: out is NULL");
	*out = NULL;
	if (version == 0)
		version = 3;
	if (version != 2 && version != 3)
		return st_error(-EINVAL, "gguf writer: version %u is not supported (2 or 3)", version);
	if (alignment == 0)
		alignment = 32;
	if (!st_is_pow2_u64(alignment) || alignment > ST_GGUF_MAX_ALIGNMENT)
		return st_error(-EINVAL, "gguf writer: alignment %u must be a power of two <= %u",
				alignment, ST_GGUF_MAX_ALIGNMENT);
	struct st_gguf_writer *w = calloc(1, sizeof *w);
	if (!w)
		return st_error(-ENOMEM, "gguf writer: out of memory");
	w->version = version;
	w->alignment = alignment;
	if (st_gguf_hset_init(&w->kset, 16) < 0 || st_gguf_hset_init(&w->tset, 16) < 0) {
		st_gguf_writer_destroy(w);
		return st_error(-ENOMEM, "gguf writer: out of memory");
	}
	if (alignment != 32) {
		int rc = st_gguf_writer_set_u32(w, "general.alignment", alignment);
		if (rc < 0) {
			st_gguf_writer_destroy(w);
			return rc;
		}
	}
	*out = w;
	return 0;
}

void st_gguf_writer_destroy(struct st_gguf_writer *w)
{
	if (!w)
		return;
	for (uint64_t i = 0; i < w->n_kv; i++)
		free(w->keys[i].key);
	for (uint64_t i = 0; i < w->n_t; i++)
		free(w->t[i].name);
	free(w->keys);
	free(w->t);
	free(w->meta);
	st_gguf_hset_fini(&w->kset);
	st_gguf_hset_fini(&w->tset);
	free(w);
}

static int check_name(const char *what, const char *name)
{
	if (!name)
		return st_error(-EINVAL, "gguf writer: %s is NULL", what);
	size_t len = strlen(name);
	if (len == 0 || len > ST_GGUF_MAX_NAME)
		return st_error(-EINVAL, "gguf writer: %s '%.100s' has length %zu (must be 1..%u)",
				what, name, len, ST_GGUF_MAX_NAME);
	return 0;
}

/* Validate and register a key, then write its name and value type.  On a
 * later failure the metadata is inconsistent, so the writer is poisoned. */
static int key_begin(struct st_gguf_writer *w, const char *key, uint32_t vtype)
{
	struct st_gguf_names nm;
	uint32_t dup;
	int rc;
	if (w->state != W_DECLARE)
		return st_error(-EINVAL, "gguf writer: key '%.100s' set after st_gguf_writer_begin()", key ? key : "(null)");
	if ((rc = check_name("key", key)) < 0)
		return rc;
	if (!strcmp(key, "general.alignment") && vtype != ST_GGUF_U32)
		return st_error(-EINVAL, "gguf writer: general.alignment must be a u32 (and is best left to st_gguf_writer_create())");
	if (w->n_kv >= ST_GGUF_MAX_KV)
		return st_error(-EINVAL, "gguf writer: more than %u keys", ST_GGUF_MAX_KV);
	if (grow((void **)&w->keys, &w->keys_cap, w->n_kv + 1, sizeof *w->keys) < 0 ||
	    !(w->keys[w->n_kv].key = strdup(key)))
		return st_error(-ENOMEM, "gguf writer: out of memory");
	rc = st_gguf_hset_insert(&w->kset, wkey_names(w, &nm), (uint32_t)w->n_kv, &dup);
	if (rc != 0) {
		free(w->keys[w->n_kv].key);
		if (rc < 0)
			return st_error(-ENOMEM, "gguf writer: out of memory");
		return st_error(-EINVAL, "gguf writer: duplicate key '%.100s'", key);
	}
	w->n_kv++;
	if ((rc = meta_str(w, key, strlen(key))) < 0 || (rc = meta_u32(w, vtype)) < 0)
		w->state = W_FAILED;
	return rc;
}

static int key_end(struct st_gguf_writer *w, int rc)
{
	if (rc < 0)
		w->state = W_FAILED;
	return rc;
}

/* A scalar from its C representation (uint8_t ... double, bool). */
static int put_scalar(struct st_gguf_writer *w, uint32_t vtype, const void *v)
{
	uint8_t b[8];
	uint64_t u = 0;
	switch (vtype) {
	case ST_GGUF_U8: u = *(const uint8_t *)v; break;
	case ST_GGUF_I8: u = (uint8_t)*(const int8_t *)v; break;
	case ST_GGUF_U16: u = *(const uint16_t *)v; break;
	case ST_GGUF_I16: u = (uint16_t)*(const int16_t *)v; break;
	case ST_GGUF_U32: u = *(const uint32_t *)v; break;
	case ST_GGUF_I32: u = (uint32_t)*(const int32_t *)v; break;
	case ST_GGUF_U64: u = *(const uint64_t *)v; break;
	case ST_GGUF_I64: u = (uint64_t)*(const int64_t *)v; break;
	case ST_GGUF_BOOL: u = *(const bool *)v ? 1 : 0; break;
	case ST_GGUF_F32: { uint32_t x; memcpy(&x, v, 4); u = x; break; }
	case ST_GGUF_F64: memcpy(&u, v, 8); break;
	default: return -EINVAL;
	}
	unsigned n = (unsigned)st_gguf_vtype_size(vtype);
	le_put(b, u, n);
	return meta_put(w, b, n);
}

int st_gguf_writer_set_val(struct st_gguf_writer *w, const char *key, uint32_t vtype, const void *v)
{
	int rc;
	if (!w || !v)
		return st_error(-EINVAL, "gguf writer: set '%.100s': NULL argument", key ? key : "(null)");
	if (vtype == ST_GGUF_STRING)
		return st_gguf_writer_set_str(w, key, v);
	if (vtype == ST_GGUF_ARRAY || vtype >= ST_GGUF_VTYPE_COUNT)
		return st_error(-EINVAL, "gguf writer: key '%.100s': value type %u is not a scalar", key ? key : "(null)", vtype);
	if (key && !strcmp(key, "general.alignment") && vtype == ST_GGUF_U32 && *(const uint32_t *)v != w->alignment)
		return st_error(-EINVAL, "gguf writer: general.alignment %u differs from the alignment %u given to st_gguf_writer_create()",
				*(const uint32_t *)v, w->alignment);
	if ((rc = key_begin(w, key, vtype)) < 0)
		return rc;
	return key_end(w, put_scalar(w, vtype, v));
}

int st_gguf_writer_set_u32(struct st_gguf_writer *w, const char *key, uint32_t v)
{
	return st_gguf_writer_set_val(w, key, ST_GGUF_U32, &v);
}

int st_gguf_writer_set_i32(struct st_gguf_writer *w, const char *key, int32_t v)
{
	return st_gguf_writer_set_val(w, key, ST_GGUF_I32, &v);
}

int st_gguf_writer_set_f32(struct st_gguf_writer *w, const char *key, float v)
{
	return st_gguf_writer_set_val(w, key, ST_GGUF_F32, &v);
}

int st_gguf_writer_set_bool(struct st_gguf_writer *w, const char *key, bool v)
{
	return st_gguf_writer_set_val(w, key, ST_GGUF_BOOL, &v);
}

int st_gguf_writer_set_str(struct st_gguf_writer *w, const char *key, const char *v)
{
	int rc;
	if (!w || !v)
		return st_error(-EINVAL, "gguf writer: set '%.100s': NULL argument", key ? key : "(null)");
	size_t len = strlen(v);
	if (len > ST_GGUF_MAX_STRING)
		return st_error(-EINVAL, "gguf writer: key '%.100s': string of %zu bytes exceeds the limit %u",
				key ? key : "(null)", len, ST_GGUF_MAX_STRING);
	if ((rc = key_begin(w, key, ST_GGUF_STRING)) < 0)
		return rc;
	return key_end(w, meta_str(w, v, len));
}

/* Array from packed numbers or from counted strings (strs) or C strings (cstr). */
static int set_arr(struct st_gguf_writer *w, const char *key, uint32_t et, const void *data,
		   uint64_t n, const struct st_gguf_string *strs)
{
	const char *k = key ? key : "(null)";
	uint64_t bytes = 0;
	int rc;
	if (!w)
		return st_error(-EINVAL, "gguf writer: set '%.100s': NULL writer", k);
	if (et == ST_GGUF_ARRAY || et >= ST_GGUF_VTYPE_COUNT)
		return st_error(-EINVAL, "gguf writer: key '%.100s': array element type %u is not allowed", k, et);
	if (n > ST_GGUF_MAX_ARRAY)
		return st_error(-EINVAL, "gguf writer: key '%.100s': %llu elements exceed the limit %u", k, (ull)n, ST_GGUF_MAX_ARRAY);
	if (n && !data && !strs)
		return st_error(-EINVAL, "gguf writer: key '%.100s': data is NULL for %llu elements", k, (ull)n);
	if (et == ST_GGUF_STRING) {
		const char *const *cs = data;
		for (uint64_t i = 0; i < n; i++) {
			uint64_t len = strs ? strs[i].len : (cs[i] ? strlen(cs[i]) : UINT64_MAX);
			if (len > ST_GGUF_MAX_STRING || (strs && !strs[i].data && len))
				return st_error(-EINVAL, "gguf writer: key '%.100s': array string %llu is NULL or longer than %u bytes",
						k, (ull)i, ST_GGUF_MAX_STRING);
		}
	} else {
		bytes = n * st_gguf_vtype_size(et);     /* n <= 2^26: no overflow */
		if (et == ST_GGUF_BOOL)
			for (uint64_t i = 0; i < n; i++)
				if (((const uint8_t *)data)[i] > 1)
					return st_error(-EINVAL, "gguf writer: key '%.100s': bool element %llu is not 0 or 1", k, (ull)i);
	}
	if ((rc = key_begin(w, key, ST_GGUF_ARRAY)) < 0)
		return rc;
	if ((rc = meta_u32(w, et)) < 0 || (rc = meta_u64(w, n)) < 0)
		return key_end(w, rc);
	if (et != ST_GGUF_STRING)
		return key_end(w, meta_put(w, data, bytes));
	for (uint64_t i = 0; i < n && rc == 0; i++) {
		if (strs)
			rc = meta_str(w, strs[i].data, strs[i].len);
		else
			rc = meta_str(w, ((const char *const *)data)[i], strlen(((const char *const *)data)[i]));
	}
	return key_end(w, rc);
}

int st_gguf_writer_set_arr(struct st_gguf_writer *w, const char *key, uint32_t elem_type,
			   const void *data, uint64_t n)
{
	return set_arr(w, key, elem_type, data, n, NULL);
}

int st_gguf_writer_set_kv(struct st_gguf_writer *w, const struct st_gguf_kv *kv)
{
	int rc;
	if (!w || !kv)
		return st_error(-EINVAL, "gguf writer: set_kv: NULL argument");
	switch (kv->type) {
	case ST_GGUF_STRING:
		if (kv->v.str.len > ST_GGUF_MAX_STRING || (kv->v.str.len && !kv->v.str.data))
			return st_error(-EINVAL, "gguf writer: key '%.100s': bad string", kv->key ? kv->key : "(null)");
		if ((rc = key_begin(w, kv->key, ST_GGUF_STRING)) < 0)
			return rc;
		return key_end(w, meta_str(w, kv->v.str.data, kv->v.str.len));
	case ST_GGUF_ARRAY:
		if (kv->v.arr.type == ST_GGUF_STRING)
			return set_arr(w, kv->key, ST_GGUF_STRING, NULL, kv->v.arr.n, kv->v.arr.data);
		return set_arr(w, kv->key, kv->v.arr.type, kv->v.arr.data, kv->v.arr.n, NULL);
	case ST_GGUF_U8: { uint8_t x = (uint8_t)kv->v.u64; return st_gguf_writer_set_val(w, kv->key, kv->type, &x); }
	case ST_GGUF_U16: { uint16_t x = (uint16_t)kv->v.u64; return st_gguf_writer_set_val(w, kv->key, kv->type, &x); }
	case ST_GGUF_U32: { uint32_t x = (uint32_t)kv->v.u64; return st_gguf_writer_set_val(w, kv->key, kv->type, &x); }
	case ST_GGUF_U64: return st_gguf_writer_set_val(w, kv->key, kv->type, &kv->v.u64);
	case ST_GGUF_I8: { int8_t x = (int8_t)kv->v.i64; return st_gguf_writer_set_val(w, kv->key, kv->type, &x); }
	case ST_GGUF_I16: { int16_t x = (int16_t)kv->v.i64; return st_gguf_writer_set_val(w, kv->key, kv->type, &x); }
	case ST_GGUF_I32: { int32_t x = (int32_t)kv->v.i64; return st_gguf_writer_set_val(w, kv->key, kv->type, &x); }
	case ST_GGUF_I64: return st_gguf_writer_set_val(w, kv->key, kv->type, &kv->v.i64);
	case ST_GGUF_F32: { float x = (float)kv->v.f64; return st_gguf_writer_set_val(w, kv->key, kv->type, &x); }
	case ST_GGUF_F64: return st_gguf_writer_set_val(w, kv->key, kv->type, &kv->v.f64);
	case ST_GGUF_BOOL: return st_gguf_writer_set_val(w, kv->key, kv->type, &kv->v.b);
	default:
		return st_error(-EINVAL, "gguf writer: key '%.100s': unknown value type %u",
				kv->key ? kv->key : "(null)", kv->type);
	}
}

int st_gguf_writer_add_tensor(struct st_gguf_writer *w, const char *name, uint32_t type,
			      uint32_t n_dims, const uint64_t *ne)
{
	struct st_gguf_names nm;
	struct wtensor t = { .type = type, .n_dims = n_dims, .offset = 0 };
	uint64_t n = 1, row, end;
	uint32_t dup;
	int rc;
	if (!w || !ne)
		return st_error(-EINVAL, "gguf writer: add_tensor: NULL argument");
	if (w->state != W_DECLARE)
		return st_error(-EINVAL, "gguf writer: tensor '%.100s' added after st_gguf_writer_begin()", name ? name : "(null)");
	if ((rc = check_name("tensor name", name)) < 0)
		return rc;
	const struct st_type_traits *tr = st_type_traits(type);
	if (!tr)
		return st_error(-EINVAL, "gguf writer: tensor '%.100s': unknown type id %u", name, type);
	if (n_dims < 1 || n_dims > ST_GGUF_MAX_DIMS)
		return st_error(-EINVAL, "gguf writer: tensor '%.100s': n_dims %u is out of range (1..%u)",
				name, n_dims, ST_GGUF_MAX_DIMS);
	for (uint32_t d = 0; d < ST_GGUF_MAX_DIMS; d++) {
		t.ne[d] = d < n_dims ? ne[d] : 1;
		if (t.ne[d] == 0 || t.ne[d] > (uint64_t)INT64_MAX)
			return st_error(-EINVAL, "gguf writer: tensor '%.100s': ne[%u] = %llu is out of range",
					name, d, (ull)t.ne[d]);
		if (st_mul_overflow_u64(n, t.ne[d], &n) || n > (uint64_t)INT64_MAX)
			return st_error(-EOVERFLOW, "gguf writer: tensor '%.100s': element count overflows", name);
	}
	rc = st_type_row_size(type, t.ne[0], &row);
	if (rc == -EINVAL)
		return st_error(-EINVAL, "gguf writer: tensor '%.100s': ne[0] = %llu is not a multiple of the %s block size %u",
				name, (ull)t.ne[0], tr->name, tr->block_size);
	if (rc < 0 || st_mul_overflow_u64(row, t.ne[1] * t.ne[2] * t.ne[3], &t.nbytes))
		return st_error(-EOVERFLOW, "gguf writer: tensor '%.100s': byte size overflows", name);
	t.offset = w->data_size;
	if (st_add_overflow_u64(t.offset, t.nbytes, &end) || st_align_up_u64(end, w->alignment, &end))
		return st_error(-EOVERFLOW, "gguf writer: tensor '%.100s': data section size overflows", name);
	if (w->n_t >= ST_GGUF_MAX_TENSORS)
		return st_error(-EINVAL, "gguf writer: more than %u tensors", ST_GGUF_MAX_TENSORS);
	if (grow((void **)&w->t, &w->t_cap, w->n_t + 1, sizeof *w->t) < 0 || !(t.name = strdup(name)))
		return st_error(-ENOMEM, "gguf writer: out of memory");
	w->t[w->n_t] = t;
	rc = st_gguf_hset_insert(&w->tset, wt_names(w, &nm), (uint32_t)w->n_t, &dup);
	if (rc != 0) {
		free(t.name);
		if (rc < 0)
			return st_error(-ENOMEM, "gguf writer: out of memory");
		return st_error(-EINVAL, "gguf writer: duplicate tensor name '%.100s'", name);
	}
	w->n_t++;
	w->data_size = end;
	return 0;
}

static int w_put(struct st_gguf_writer *w, const void *p, size_t n)
{
	errno = 0;
	if (n && fwrite(p, 1, n, w->f) != n) {
		int e = errno ? errno : EIO;
		w->state = W_FAILED;
		return st_error(-e, "gguf writer: write of %zu bytes failed: %s", n, strerror(e));
	}
	return 0;
}

static int w_pad(struct st_gguf_writer *w, uint64_t n)
{
	static const uint8_t zeros[64];
	int rc = 0;
	while (n && rc == 0) {
		size_t k = (size_t)ST_MIN(n, sizeof zeros);
		rc = w_put(w, zeros, k);
		n -= k;
	}
	return rc;
}

int st_gguf_writer_begin(struct st_gguf_writer *w, FILE *f)
{
	uint8_t b[8 + 4 + 8 + 8 + 4 * 8 + 4 + 8];
	uint64_t pos = 0, aligned = 0;
	int rc;
	if (!w || !f)
		return st_error(-EINVAL, "gguf writer: begin: NULL argument");
	if (w->state != W_DECLARE)
		return st_error(-EINVAL, "gguf writer: begin called twice or after a failure");
	w->f = f;
	memcpy(b, "GGUF", 4);
	le_put(b + 4, w->version, 4);
	le_put(b + 8, w->n_t, 8);
	le_put(b + 16, w->n_kv, 8);
	if ((rc = w_put(w, b, 24)) < 0 || (rc = w_put(w, w->meta, w->meta_len)) < 0)
		return rc;
	pos = 24 + w->meta_len;
	for (uint64_t i = 0; i < w->n_t; i++) {
		const struct wtensor *t = &w->t[i];
		size_t len = strlen(t->name), k = 0;
		le_put(b, len, 8);
		if ((rc = w_put(w, b, 8)) < 0 || (rc = w_put(w, t->name, len)) < 0)
			return rc;
		le_put(b + k, t->n_dims, 4), k += 4;
		for (uint32_t d = 0; d < t->n_dims; d++)
			le_put(b + k, t->ne[d], 8), k += 8;
		le_put(b + k, t->type, 4), k += 4;
		le_put(b + k, t->offset, 8), k += 8;
		if ((rc = w_put(w, b, k)) < 0)
			return rc;
		pos += 8 + len + k;
	}
	st_align_up_u64(pos, w->alignment, &aligned);
	if ((rc = w_pad(w, aligned - pos)) < 0)
		return rc;
	w->state = W_DATA;
	w->cur = 0;
	w->cur_done = 0;
	return 0;
}

int st_gguf_writer_write_data(struct st_gguf_writer *w, const void *data, uint64_t nbytes)
{
	int rc;
	if (!w || (!data && nbytes))
		return st_error(-EINVAL, "gguf writer: write_data: NULL argument");
	if (w->state != W_DATA)
		return st_error(w->state == W_FAILED ? -EIO : -EINVAL,
				"gguf writer: write_data outside begin()..finish()%s",
				w->state == W_FAILED ? " (an earlier write failed)" : "");
	if (w->cur >= w->n_t) {
		if (!nbytes)
			return 0;
		return st_error(-EINVAL, "gguf writer: %llu bytes written past the last tensor", (ull)nbytes);
	}
	struct wtensor *t = &w->t[w->cur];
	uint64_t left = t->nbytes - w->cur_done;
	if (nbytes > left)
		return st_error(-EINVAL, "gguf writer: write of %llu bytes but tensor '%.100s' has only %llu of %llu bytes left",
				(ull)nbytes, t->name, (ull)left, (ull)t->nbytes);
	if ((rc = w_put(w, data, (size_t)nbytes)) < 0)
		return rc;
	w->cur_done += nbytes;
	if (w->cur_done == t->nbytes) {
		uint64_t aligned = 0;
		st_align_up_u64(t->nbytes, w->alignment, &aligned);  /* checked in add_tensor */
		if ((rc = w_pad(w, aligned - t->nbytes)) < 0)
			return rc;
		w->cur++;
		w->cur_done = 0;
	}
	return 0;
}

int st_gguf_writer_finish(struct st_gguf_writer *w)
{
	if (!w)
		return st_error(-EINVAL, "gguf writer: finish: NULL writer");
	if (w->state != W_DATA)
		return st_error(w->state == W_FAILED ? -EIO : -EINVAL,
				"gguf writer: finish without begin()%s",
				w->state == W_FAILED ? " (an earlier write failed)" : "");
	if (w->cur < w->n_t) {
		const struct wtensor *t = &w->t[w->cur];
		return st_error(-EINVAL, "gguf writer: tensor '%.100s' got %llu of its %llu bytes (%llu of %llu tensors complete)",
				t->name, (ull)w->cur_done, (ull)t->nbytes, (ull)w->cur, (ull)w->n_t);
	}
	errno = 0;
	if (fflush(w->f) != 0 || ferror(w->f)) {
		int e = errno ? errno : EIO;
		w->state = W_FAILED;
		return st_error(-e, "gguf writer: flush failed: %s", strerror(e));
	}
	w->state = W_DONE;
	return 0;
}
