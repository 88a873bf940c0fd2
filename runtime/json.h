/* json.h: a small strict JSON (RFC 8259) reader and writer.
 *
 * Reader: parses a whole document into a tree owned by one st_json_doc.
 * Strict: no comments, no trailing commas, no NaN/Infinity, no leading
 * zeros, no duplicate keys in an object, no control characters or invalid
 * UTF-8 in strings, nothing but whitespace after the top-level value.
 * Limits (nesting depth, document size, string length, items per
 * container) are enforced; a hostile document gets a clean error naming
 * line:column, never a crash.  Numbers keep their source text so integers
 * beyond 2^53 can be read exactly (st_json_u64).
 *
 * Writer: builds a document into a growing buffer; pretty-printed or
 * compact.  Errors (NaN, out of memory, unbalanced calls) are sticky and
 * reported by st_jw_finish. */
#ifndef ST_JSON_H
#define ST_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum st_json_type {
	ST_JSON_NULL, ST_JSON_FALSE, ST_JSON_TRUE, ST_JSON_NUMBER,
	ST_JSON_STRING, ST_JSON_ARRAY, ST_JSON_OBJECT,
};

struct st_json_member;

struct st_json {
	enum st_json_type type;
	uint32_t line, col;             /* where the value starts (1-based) */
	union {
		struct { double v; const char *text; size_t len; } num;
		struct { const char *s; size_t len; } str;   /* NUL-terminated, may hold \0 */
		struct { struct st_json *items; size_t n; } arr;
		struct { struct st_json_member *members; size_t n; } obj;
	} u;
};

struct st_json_member {
	const char *key;                /* NUL-terminated */
	size_t key_len;
	struct st_json value;
};

struct st_json_limits {
	size_t max_depth;               /* nesting of arrays/objects; default 64 */
	size_t max_bytes;               /* document size; default 64 MiB */
	size_t max_string;              /* bytes in one string; default 1 MiB */
	size_t max_items;               /* items in one array/object; default 1<<20 */
};

struct st_json_doc;

/* Parse text[0..len).  lim may be NULL (defaults).  On failure returns a
 * negative errno (-EINVAL syntax, -E2BIG limits, -ENOMEM) with a message
 * "json: LINE:COL: ..." in st_last_error(). */
int st_json_parse(const char *text, size_t len, const struct st_json_limits *lim,
		  struct st_json_doc **out);
/* Read and parse a file (same errors; -errno when it cannot be read). */
int st_json_parse_file(const char *path, const struct st_json_limits *lim,
		       struct st_json_doc **out);
const struct st_json *st_json_root(const struct st_json_doc *doc);
void st_json_doc_free(struct st_json_doc *doc);

/* Object member by key, or NULL (also NULL when v is not an object). */
const struct st_json *st_json_get(const struct st_json *v, const char *key);
/* Typed access; return 0 or -EINVAL (wrong type / out of range) with a
 * message naming `what` and the value's line:column. */
int st_json_f64(const struct st_json *v, const char *what, double *out);
int st_json_u64(const struct st_json *v, const char *what, uint64_t *out);
int st_json_i64(const struct st_json *v, const char *what, int64_t *out);
int st_json_str(const struct st_json *v, const char *what, const char **out);
int st_json_bool(const struct st_json *v, const char *what, bool *out);
const char *st_json_type_name(enum st_json_type t);

/* ---- writer ------------------------------------------------------------ */

struct st_jw {
	char *buf;
	size_t len, cap;
	int depth;
	int err;                        /* first error (negative errno) */
	bool pretty;
	bool first[65];                 /* per level: no item written yet */
	bool is_obj[65];
};

void st_jw_init(struct st_jw *w, bool pretty);
/* key: member name inside an object, NULL inside an array / at top level. */
void st_jw_object_begin(struct st_jw *w, const char *key);
void st_jw_object_end(struct st_jw *w);
void st_jw_array_begin(struct st_jw *w, const char *key);
void st_jw_array_end(struct st_jw *w);
void st_jw_string(struct st_jw *w, const char *key, const char *s);
void st_jw_number(struct st_jw *w, const char *key, double v);  /* %.17g; NaN/inf -> error */
void st_jw_int(struct st_jw *w, const char *key, int64_t v);
void st_jw_uint(struct st_jw *w, const char *key, uint64_t v);
void st_jw_bool(struct st_jw *w, const char *key, bool v);
void st_jw_null(struct st_jw *w, const char *key);
/* Copy a parsed value (numbers keep their source text). */
void st_jw_value(struct st_jw *w, const char *key, const struct st_json *v);
/* Returns the NUL-terminated text (caller frees) or NULL with *err set. */
char *st_jw_finish(struct st_jw *w, size_t *len, int *err);
void st_jw_discard(struct st_jw *w);

#endif
