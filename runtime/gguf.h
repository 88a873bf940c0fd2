/* gguf.h: GGUF v2/v3 reader (hardened against hostile files) and writer.
 *
 * The reader parses the header, the metadata and the tensor table only; no
 * tensor data is read.  Every count, length, offset and size is checked
 * against the bytes left in the file with overflow-checked arithmetic before
 * anything is allocated.  A rejection returns a negative errno code with a
 * message in st_last_error() that names the field and the numbers.
 *
 * Policy: keys and tensor names are 1..ST_GGUF_MAX_NAME bytes without NUL and
 * unique; bool values must be 0 or 1; general.alignment must be a u32 power of
 * two <= ST_GGUF_MAX_ALIGNMENT; a few keys whose type the spec fixes are
 * checked (general.architecture/name strings, tokenizer.ggml.tokens/merges
 * string arrays, scores f32 array, token_type i32 array).  Tensor data must lie
 * inside the file, at aligned offsets, without overlaps; gaps between tensors
 * and any order of offsets are allowed (as llama.cpp does), and a file with no
 * tensors may end before its aligned data offset (vocab-only files do).
 * Error codes: -EINVAL bad content, -EOVERFLOW arithmetic overflow of a size,
 * -ENOMEM, -errno for I/O. */
#ifndef ST_GGUF_H
#define ST_GGUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum st_gguf_vtype {
	ST_GGUF_U8 = 0, ST_GGUF_I8 = 1, ST_GGUF_U16 = 2, ST_GGUF_I16 = 3,
	ST_GGUF_U32 = 4, ST_GGUF_I32 = 5, ST_GGUF_F32 = 6, ST_GGUF_BOOL = 7,
	ST_GGUF_STRING = 8, ST_GGUF_ARRAY = 9, ST_GGUF_U64 = 10, ST_GGUF_I64 = 11,
	ST_GGUF_F64 = 12, ST_GGUF_VTYPE_COUNT = 13,
};

/* Caps (a hostile file cannot make us allocate more than these imply). */
#define ST_GGUF_MAX_KV        (1u << 20)
#define ST_GGUF_MAX_TENSORS   (1u << 20)
#define ST_GGUF_MAX_STRING    (1u << 24)      /* 16 MiB per string */
#define ST_GGUF_MAX_NAME      256             /* tensor names, keys (bytes) */
#define ST_GGUF_MAX_ARRAY     (1u << 26)      /* elements per array */
#define ST_GGUF_MAX_ALIGNMENT (1u << 16)
#define ST_GGUF_MAX_DIMS      4

struct st_gguf_string {
	uint64_t len;
	char *data;                 /* NUL-terminated copy (may contain NULs) */
};

struct st_gguf_kv {
	char *key;
	uint32_t type;              /* enum st_gguf_vtype */
	union {
		uint64_t u64;       /* all unsigned integer types */
		int64_t i64;        /* all signed integer types */
		double f64;         /* F32 and F64 */
		bool b;
		struct st_gguf_string str;
		struct {
			uint32_t type;      /* element type (never ARRAY) */
			uint64_t n;
			/* STRING: struct st_gguf_string[n] (the strings share
			 * one block owned by element 0); numbers: packed
			 * little-endian elements exactly as in the file. */
			void *data;
		} arr;
	} v;
};

struct st_gguf_tensor {
	char *name;
	uint32_t type;              /* enum st_type; always a known id */
	uint32_t n_dims;
	uint64_t ne[ST_GGUF_MAX_DIMS];  /* ne[0] = contiguous dimension; unused = 1 */
	uint64_t n_elements;
	uint64_t offset;            /* relative to the data section */
	uint64_t file_offset;       /* absolute: data_offset + offset */
	uint64_t nbytes;
};

struct st_gguf {
	uint32_t version;           /* 2 or 3 */
	uint64_t n_kv;
	struct st_gguf_kv *kv;
	uint64_t n_tensors;
	struct st_gguf_tensor *tensors;
	uint32_t alignment;         /* general.alignment or 32 */
	uint64_t data_offset;       /* start of the tensor data section */
	uint64_t file_size;
};

/* Parse a file (read with pread; nothing is mapped) or a memory image. */
int st_gguf_open(const char *path, struct st_gguf **out);
int st_gguf_parse_mem(const void *data, size_t size, struct st_gguf **out);
void st_gguf_free(struct st_gguf *g);

/* Look-ups.  The typed getters return -ENOENT (no message) when the key is
 * absent, and -EINVAL with a message naming the key when its value has the
 * wrong type or does not fit; integer getters accept any integer type whose
 * value fits. */
const struct st_gguf_kv *st_gguf_find(const struct st_gguf *g, const char *key);
int st_gguf_get_u32(const struct st_gguf *g, const char *key, uint32_t *out);
int st_gguf_get_u64(const struct st_gguf *g, const char *key, uint64_t *out);
int st_gguf_get_f32(const struct st_gguf *g, const char *key, float *out);
int st_gguf_get_bool(const struct st_gguf *g, const char *key, bool *out);
int st_gguf_get_str(const struct st_gguf *g, const char *key, const char **out);
/* An array whose elements have type elem_type (-EINVAL otherwise). */
int st_gguf_get_arr(const struct st_gguf *g, const char *key, uint32_t elem_type,
		    uint64_t *n, const void **data);
const struct st_gguf_tensor *st_gguf_find_tensor(const struct st_gguf *g, const char *name);
const char *st_gguf_vtype_name(uint32_t vtype);

/* ---- writer ------------------------------------------------------------
 * Two phases, so multi-gigabyte files stream: declare metadata and tensors
 * (name, type, shape), then st_gguf_writer_begin() writes the header to the
 * stream and each tensor's bytes follow in declaration order through
 * st_gguf_writer_write_data(); the writer inserts the alignment padding. */
struct st_gguf_writer;
int st_gguf_writer_create(struct st_gguf_writer **out, uint32_t version, uint32_t alignment);
void st_gguf_writer_destroy(struct st_gguf_writer *w);
int st_gguf_writer_set_u32(struct st_gguf_writer *w, const char *key, uint32_t v);
int st_gguf_writer_set_i32(struct st_gguf_writer *w, const char *key, int32_t v);
int st_gguf_writer_set_f32(struct st_gguf_writer *w, const char *key, float v);
int st_gguf_writer_set_bool(struct st_gguf_writer *w, const char *key, bool v);
int st_gguf_writer_set_str(struct st_gguf_writer *w, const char *key, const char *v);
/* Array of numbers (elem_type a numeric vtype, data packed) or strings
 * (elem_type ST_GGUF_STRING, data = const char *const[n]). */
int st_gguf_writer_set_arr(struct st_gguf_writer *w, const char *key, uint32_t elem_type,
			   const void *data, uint64_t n);
/* Added: any scalar from its C representation (uint8_t, int8_t, ... uint64_t,
 * int64_t, float for F32, double for F64, bool; STRING: v is the const char *
 * itself), and a copy of a parsed key-value pair (strings may hold NULs), so
 * tools can carry a file's metadata over. */
int st_gguf_writer_set_val(struct st_gguf_writer *w, const char *key, uint32_t vtype, const void *v);
int st_gguf_writer_set_kv(struct st_gguf_writer *w, const struct st_gguf_kv *kv);
int st_gguf_writer_add_tensor(struct st_gguf_writer *w, const char *name, uint32_t type,
			      uint32_t n_dims, const uint64_t *ne);
int st_gguf_writer_begin(struct st_gguf_writer *w, FILE *f);
int st_gguf_writer_write_data(struct st_gguf_writer *w, const void *data, uint64_t nbytes);
int st_gguf_writer_finish(struct st_gguf_writer *w);   /* all tensors written? */

#endif
