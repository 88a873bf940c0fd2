/* json.c: strict JSON reader (recursive descent with a depth limit, every
 * allocation from one arena) and a small buffered writer. */
#include "json.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

/* ---- arena --------------------------------------------------------------- */

struct chunk {
	struct chunk *next;
	size_t used, cap;
	max_align_t data[];
};

struct st_json_doc {
	struct chunk *chunks;
	struct st_json root;
};

static void *arena_alloc(struct st_json_doc *d, size_t n)
{
	struct chunk *c = d->chunks;
	n = (n + 15) & ~(size_t)15;
	if (!c || c->cap - c->used < n) {
		size_t cap = n > 65536 ? n : 65536;
		c = malloc(sizeof *c + cap);
		if (!c)
			return NULL;
		c->used = 0;
		c->cap = cap;
		c->next = d->chunks;
		d->chunks = c;
	}
	void *p = (char *)c->data + c->used;
	c->used += n;
	return p;
}

void st_json_doc_free(struct st_json_doc *d)
{
	if (!d)
		return;
	for (struct chunk *c = d->chunks, *n; c; c = n) {
		n = c->next;
		free(c);
	}
	free(d);
}

const struct st_json *st_json_root(const struct st_json_doc *d) { return d ? &d->root : NULL; }

/* ---- parser -------------------------------------------------------------- */

struct parser {
	const char *p, *end, *line_start;
	uint32_t line;
	size_t depth;
	struct st_json_limits lim;
	struct st_json_doc *doc;
	int err;
	uint32_t err_line, err_col;
};

static uint32_t col_of(const struct parser *ps, const char *at)
{
	size_t c = (size_t)(at - ps->line_start) + 1;
	return c > UINT32_MAX ? UINT32_MAX : (uint32_t)c;
}

ST_PRINTF(3, 4) static int fail(struct parser *ps, int code, const char *fmt, ...)
{
	char msg[256];
	va_list ap;
	if (ps->err)
		return ps->err;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	ps->err = code;
	ps->err_line = ps->line;
	ps->err_col = col_of(ps, ps->p);
	return st_error(code, "json: %u:%u: %s", ps->err_line, ps->err_col, msg);
}

static void skip_ws(struct parser *ps)
{
	while (ps->p < ps->end) {
		char c = *ps->p;
		if (c == '\n') {
			ps->line++;
			ps->line_start = ps->p + 1;
		} else if (c != ' ' && c != '\t' && c != '\r')
			return;
		ps->p++;
	}
}

static const char *describe(struct parser *ps)
{
	static _Thread_local char buf[32];
	if (ps->p >= ps->end)
		return "end of input";
	unsigned char c = (unsigned char)*ps->p;
	if (c >= 0x20 && c < 0x7f)
		snprintf(buf, sizeof buf, "'%c'", c);
	else
		snprintf(buf, sizeof buf, "byte 0x%02x", c);
	return buf;
}

static int parse_value(struct parser *ps, struct st_json *v);

static int hex4(struct parser *ps, uint32_t *out)
{
	uint32_t v = 0;
	if (ps->end - ps->p < 4)
		return fail(ps, -EINVAL, "truncated \\u escape");
	for (int i = 0; i < 4; i++) {
		char c = ps->p[i];
		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= (uint32_t)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v |= (uint32_t)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			v |= (uint32_t)(c - 'A' + 10);
		else
			return fail(ps, -EINVAL, "bad hex digit in \\u escape");
	}
	ps->p += 4;
	*out = v;
	return 0;
}

/* Length of a valid UTF-8 sequence at p (strict: no overlongs, surrogates,
 * or code points above U+10FFFF), 0 if invalid. */
static size_t utf8_len(const unsigned char *p, const unsigned char *end)
{
	size_t n;
	uint32_t cp;
	if (p[0] < 0x80)
		return 1;
	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		n = 2, cp = p[0] & 0x1f;
	else if (p[0] >= 0xe0 && p[0] <= 0xef)
		n = 3, cp = p[0] & 0x0f;
	else if (p[0] >= 0xf0 && p[0] <= 0xf4)
		n = 4, cp = p[0] & 0x07;
	else
		return 0;
	if ((size_t)(end - p) < n)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (p[i] & 0x3f);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

static size_t put_utf8(char *o, uint32_t cp)
{
	if (cp < 0x80) {
		o[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		o[0] = (char)(0xc0 | (cp >> 6));
		o[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		o[0] = (char)(0xe0 | (cp >> 12));
		o[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		o[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	o[0] = (char)(0xf0 | (cp >> 18));
	o[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
	o[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
	o[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

/* At the opening quote.  Decoded text never exceeds the raw text, so the
 * output buffer is sized by a first scan to the closing quote. */
static int parse_string(struct parser *ps, const char **out, size_t *out_len)
{
	const char *start = ++ps->p, *q = start;
	while (q < ps->end && *q != '"') {
		if (*q == '\\' && q + 1 < ps->end)
			q++;
		q++;
	}
	if (q >= ps->end)
		return fail(ps, -EINVAL, "unterminated string");
	size_t raw = (size_t)(q - start);
	if (raw > ps->lim.max_string)
		return fail(ps, -E2BIG, "string of %zu bytes exceeds the limit of %zu", raw,
			    ps->lim.max_string);
	char *o = arena_alloc(ps->doc, raw + 1);
	if (!o)
		return fail(ps, -ENOMEM, "out of memory");
	size_t n = 0;
	while (*ps->p != '"') {
		unsigned char c = (unsigned char)*ps->p;
		if (c < 0x20)
			return fail(ps, -EINVAL, "control character 0x%02x in string (escape it)", c);
		if (c == '\\') {
			ps->p++;
			char e = *ps->p++;
			uint32_t cp, lo;
			switch (e) {
			case '"': o[n++] = '"'; break;
			case '\\': o[n++] = '\\'; break;
			case '/': o[n++] = '/'; break;
			case 'b': o[n++] = '\b'; break;
			case 'f': o[n++] = '\f'; break;
			case 'n': o[n++] = '\n'; break;
			case 'r': o[n++] = '\r'; break;
			case 't': o[n++] = '\t'; break;
			case 'u':
				if (hex4(ps, &cp))
					return ps->err;
				if (cp >= 0xdc00 && cp <= 0xdfff)
					return fail(ps, -EINVAL, "lone low surrogate \\u%04x", cp);
				if (cp >= 0xd800 && cp <= 0xdbff) {
					if (ps->end - ps->p < 2 || ps->p[0] != '\\' || ps->p[1] != 'u')
						return fail(ps, -EINVAL, "high surrogate \\u%04x not followed by a low one", cp);
					ps->p += 2;
					if (hex4(ps, &lo))
						return ps->err;
					if (lo < 0xdc00 || lo > 0xdfff)
						return fail(ps, -EINVAL, "high surrogate \\u%04x followed by \\u%04x", cp, lo);
					cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
				}
				n += put_utf8(o + n, cp);
				break;
			default:
				ps->p--;
				return fail(ps, -EINVAL, "invalid escape '\\%c'", (e >= 0x20 && e < 0x7f) ? e : '?');
			}
			continue;
		}
		size_t l = utf8_len((const unsigned char *)ps->p, (const unsigned char *)q);
		if (!l)
			return fail(ps, -EINVAL, "invalid UTF-8 in string");
		memcpy(o + n, ps->p, l);
		n += l;
		ps->p += l;
	}
	ps->p++;
	o[n] = 0;
	*out = o;
	*out_len = n;
	return 0;
}

static int parse_number(struct parser *ps, struct st_json *v)
{
	const char *s = ps->p, *p = s;
	if (p < ps->end && *p == '-')
		p++;
	if (p >= ps->end || *p < '0' || *p > '9') {
		ps->p = p;
		return fail(ps, -EINVAL, "expected a digit, got %s", describe(ps));
	}
	if (*p == '0') {
		p++;
		if (p < ps->end && *p >= '0' && *p <= '9') {
			ps->p = p;
			return fail(ps, -EINVAL, "leading zero in number");
		}
	} else
		while (p < ps->end && *p >= '0' && *p <= '9')
			p++;
	if (p < ps->end && *p == '.') {
		p++;
		if (p >= ps->end || *p < '0' || *p > '9') {
			ps->p = p;
			return fail(ps, -EINVAL, "expected a digit after '.'");
		}
		while (p < ps->end && *p >= '0' && *p <= '9')
			p++;
	}
	if (p < ps->end && (*p == 'e' || *p == 'E')) {
		p++;
		if (p < ps->end && (*p == '+' || *p == '-'))
			p++;
		if (p >= ps->end || *p < '0' || *p > '9') {
			ps->p = p;
			return fail(ps, -EINVAL, "expected a digit in exponent");
		}
		while (p < ps->end && *p >= '0' && *p <= '9')
			p++;
	}
	size_t len = (size_t)(p - s);
	if (len > 512)
		return fail(ps, -E2BIG, "number with %zu characters is too long", len);
	char tmp[520];
	memcpy(tmp, s, len);
	tmp[len] = 0;
	errno = 0;
	double d = strtod(tmp, NULL);
	if (!isfinite(d))
		return fail(ps, -ERANGE, "number %.40s out of range", tmp);
	char *text = arena_alloc(ps->doc, len + 1);
	if (!text)
		return fail(ps, -ENOMEM, "out of memory");
	memcpy(text, tmp, len + 1);
	v->type = ST_JSON_NUMBER;
	v->u.num.v = d;
	v->u.num.text = text;
	v->u.num.len = len;
	ps->p = p;
	return 0;
}

static int literal(struct parser *ps, const char *word, enum st_json_type t, struct st_json *v)
{
	size_t n = strlen(word);
	if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, word, n))
		return fail(ps, -EINVAL, "unexpected %s", describe(ps));
	ps->p += n;
	v->type = t;
	return 0;
}

/* Temporary growable vector for a container's items. */
static int grow(struct parser *ps, void **buf, size_t *cap, size_t n, size_t elem)
{
	if (n >= ps->lim.max_items)
		return fail(ps, -E2BIG, "more than %zu items in one container", ps->lim.max_items);
	if (n < *cap)
		return 0;
	size_t nc = *cap ? *cap * 2 : 8;
	void *nb = realloc(*buf, nc * elem);
	if (!nb)
		return fail(ps, -ENOMEM, "out of memory");
	*buf = nb;
	*cap = nc;
	return 0;
}

static int parse_array(struct parser *ps, struct st_json *v)
{
	struct st_json *items = NULL;
	size_t n = 0, cap = 0;
	ps->p++;
	skip_ws(ps);
	if (ps->p < ps->end && *ps->p == ']')
		ps->p++;
	else
		for (;;) {
			if (grow(ps, (void **)&items, &cap, n, sizeof *items))
				goto err;
			if (parse_value(ps, &items[n]))
				goto err;
			n++;
			skip_ws(ps);
			if (ps->p < ps->end && *ps->p == ',') {
				ps->p++;
				skip_ws(ps);
				if (ps->p < ps->end && *ps->p == ']') {
					fail(ps, -EINVAL, "trailing comma in array");
					goto err;
				}
				continue;
			}
			if (ps->p < ps->end && *ps->p == ']') {
				ps->p++;
				break;
			}
			fail(ps, -EINVAL, "expected ',' or ']' in array, got %s", describe(ps));
			goto err;
		}
	v->type = ST_JSON_ARRAY;
	v->u.arr.n = n;
	v->u.arr.items = NULL;
	if (n) {
		v->u.arr.items = arena_alloc(ps->doc, n * sizeof *items);
		if (!v->u.arr.items) {
			fail(ps, -ENOMEM, "out of memory");
			goto err;
		}
		memcpy(v->u.arr.items, items, n * sizeof *items);
	}
	free(items);
	return 0;
err:
	free(items);
	return ps->err;
}

static int parse_object(struct parser *ps, struct st_json *v)
{
	struct st_json_member *m = NULL;
	size_t n = 0, cap = 0;
	ps->p++;
	skip_ws(ps);
	if (ps->p < ps->end && *ps->p == '}')
		ps->p++;
	else
		for (;;) {
			if (ps->p >= ps->end || *ps->p != '"') {
				fail(ps, -EINVAL, "expected a string key in object, got %s", describe(ps));
				goto err;
			}
			if (grow(ps, (void **)&m, &cap, n, sizeof *m))
				goto err;
			const char *key_at = ps->p;
			if (parse_string(ps, &m[n].key, &m[n].key_len))
				goto err;
			/* Duplicate keys are ambiguous: reject.  Quadratic only up
			 * to a modest size; beyond that compare sorted copies. */
			for (size_t i = 0; i < n; i++)
				if (m[i].key_len == m[n].key_len && !memcmp(m[i].key, m[n].key, m[n].key_len)) {
					ps->p = key_at;
					fail(ps, -EINVAL, "duplicate key \"%.60s\" in object", m[n].key);
					goto err;
				}
			skip_ws(ps);
			if (ps->p >= ps->end || *ps->p != ':') {
				fail(ps, -EINVAL, "expected ':' after key, got %s", describe(ps));
				goto err;
			}
			ps->p++;
			if (parse_value(ps, &m[n].value))
				goto err;
			n++;
			skip_ws(ps);
			if (ps->p < ps->end && *ps->p == ',') {
				ps->p++;
				skip_ws(ps);
				if (ps->p < ps->end && *ps->p == '}') {
					fail(ps, -EINVAL, "trailing comma in object");
					goto err;
				}
				continue;
			}
			if (ps->p < ps->end && *ps->p == '}') {
				ps->p++;
				break;
			}
			fail(ps, -EINVAL, "expected ',' or '}' in object, got %s", describe(ps));
			goto err;
		}
	v->type = ST_JSON_OBJECT;
	v->u.obj.n = n;
	v->u.obj.members = NULL;
	if (n) {
		v->u.obj.members = arena_alloc(ps->doc, n * sizeof *m);
		if (!v->u.obj.members) {
			fail(ps, -ENOMEM, "out of memory");
			goto err;
		}
		memcpy(v->u.obj.members, m, n * sizeof *m);
	}
	free(m);
	return 0;
err:
	free(m);
	return ps->err;
}

static int parse_value(struct parser *ps, struct st_json *v)
{
	int r;
	skip_ws(ps);
	memset(v, 0, sizeof *v);
	v->line = ps->line;
	v->col = col_of(ps, ps->p);
	if (ps->p >= ps->end)
		return fail(ps, -EINVAL, "unexpected end of input, expected a value");
	switch (*ps->p) {
	case '{':
	case '[':
		if (++ps->depth > ps->lim.max_depth)
			return fail(ps, -E2BIG, "nesting deeper than %zu", ps->lim.max_depth);
		r = *ps->p == '{' ? parse_object(ps, v) : parse_array(ps, v);
		ps->depth--;
		return r;
	case '"':
		v->type = ST_JSON_STRING;
		return parse_string(ps, &v->u.str.s, &v->u.str.len);
	case 't': return literal(ps, "true", ST_JSON_TRUE, v);
	case 'f': return literal(ps, "false", ST_JSON_FALSE, v);
	case 'n': return literal(ps, "null", ST_JSON_NULL, v);
	default:
		if (*ps->p == '-' || (*ps->p >= '0' && *ps->p <= '9'))
			return parse_number(ps, v);
		return fail(ps, -EINVAL, "unexpected %s, expected a value", describe(ps));
	}
}

int st_json_parse(const char *text, size_t len, const struct st_json_limits *lim,
		  struct st_json_doc **out)
{
	struct parser ps = { 0 };
	*out = NULL;
	ps.lim.max_depth = 64;
	ps.lim.max_bytes = (size_t)64 << 20;
	ps.lim.max_string = (size_t)1 << 20;
	ps.lim.max_items = (size_t)1 << 20;
	if (lim) {
		if (lim->max_depth)
			ps.lim.max_depth = lim->max_depth;
		if (lim->max_bytes)
			ps.lim.max_bytes = lim->max_bytes;
		if (lim->max_string)
			ps.lim.max_string = lim->max_string;
		if (lim->max_items)
			ps.lim.max_items = lim->max_items;
	}
	if (ps.lim.max_depth > 1000)
		ps.lim.max_depth = 1000;        /* recursion stays bounded */
	if (!text && len)
		return st_error(-EINVAL, "json: NULL text");
	if (len > ps.lim.max_bytes)
		return st_error(-E2BIG, "json: document of %zu bytes exceeds the limit of %zu", len,
				ps.lim.max_bytes);
	ps.doc = calloc(1, sizeof *ps.doc);
	if (!ps.doc)
		return st_error(-ENOMEM, "json: out of memory");
	ps.p = ps.line_start = text ? text : "";
	ps.end = ps.p + len;
	ps.line = 1;
	/* A UTF-8 byte order mark is tolerated (RFC 8259 8.1 allows ignoring it). */
	if (len >= 3 && !memcmp(ps.p, "\xef\xbb\xbf", 3))
		ps.p += 3, ps.line_start = ps.p;
	if (parse_value(&ps, &ps.doc->root) == 0) {
		skip_ws(&ps);
		if (ps.p < ps.end)
			fail(&ps, -EINVAL, "trailing %s after the document", describe(&ps));
	}
	if (ps.err) {
		st_json_doc_free(ps.doc);
		return ps.err;
	}
	*out = ps.doc;
	return 0;
}

int st_json_parse_file(const char *path, const struct st_json_limits *lim, struct st_json_doc **out)
{
	size_t max = lim && lim->max_bytes ? lim->max_bytes : (size_t)64 << 20;
	FILE *f = fopen(path, "rb");
	*out = NULL;
	if (!f)
		return st_error(-errno, "json: cannot open %s: %s", path, strerror(errno));
	size_t cap = 65536, n = 0;
	char *buf = malloc(cap);
	int r = 0;
	if (!buf) {
		fclose(f);
		return st_error(-ENOMEM, "json: out of memory reading %s", path);
	}
	for (;;) {
		if (n == cap) {
			if (cap > max) {
				r = st_error(-E2BIG, "json: %s is larger than the limit of %zu bytes", path, max);
				break;
			}
			char *nb = realloc(buf, cap * 2);
			if (!nb) {
				r = st_error(-ENOMEM, "json: out of memory reading %s", path);
				break;
			}
			buf = nb;
			cap *= 2;
		}
		size_t got = fread(buf + n, 1, cap - n, f);
		n += got;
		if (got == 0) {
			if (ferror(f))
				r = st_error(-EIO, "json: read error on %s", path);
			break;
		}
	}
	fclose(f);
	if (!r) {
		r = st_json_parse(buf, n, lim, out);
		if (r) {
			char msg[512];
			snprintf(msg, sizeof msg, "%s", st_last_error());
			st_error(r, "%s: %s", path, msg);
		}
	}
	free(buf);
	return r;
}

/* ---- access -------------------------------------------------------------- */

const char *st_json_type_name(enum st_json_type t)
{
	static const char *const n[] = { "null", "false", "true", "number", "string", "array", "object" };
	return (unsigned)t < ST_ARRAY_SIZE(n) ? n[t] : "?";
}

const struct st_json *st_json_get(const struct st_json *v, const char *key)
{
	if (!v || v->type != ST_JSON_OBJECT)
		return NULL;
	for (size_t i = 0; i < v->u.obj.n; i++)
		if (!strcmp(v->u.obj.members[i].key, key))
			return &v->u.obj.members[i].value;
	return NULL;
}

static int want(const struct st_json *v, const char *what, enum st_json_type t)
{
	if (!v)
		return st_error(-EINVAL, "%s: missing (expected a %s)", what, st_json_type_name(t));
	if (v->type != t)
		return st_error(-EINVAL, "%s at %u:%u: expected a %s, got a %s", what, v->line, v->col,
				st_json_type_name(t), st_json_type_name(v->type));
	return 0;
}

int st_json_f64(const struct st_json *v, const char *what, double *out)
{
	int r = want(v, what, ST_JSON_NUMBER);
	if (!r)
		*out = v->u.num.v;
	return r;
}

int st_json_u64(const struct st_json *v, const char *what, uint64_t *out)
{
	int r = want(v, what, ST_JSON_NUMBER);
	if (r)
		return r;
	const char *s = v->u.num.text;
	uint64_t x = 0;
	size_t i = 0;
	for (; i < v->u.num.len && s[i] >= '0' && s[i] <= '9'; i++)
		if (st_mul_overflow_u64(x, 10, &x) || st_add_overflow_u64(x, (uint64_t)(s[i] - '0'), &x))
			return st_error(-EINVAL, "%s at %u:%u: %s does not fit in 64 bits", what, v->line,
					v->col, s);
	if (i != v->u.num.len || i == 0)
		return st_error(-EINVAL, "%s at %u:%u: expected a non-negative integer, got %s", what,
				v->line, v->col, s);
	*out = x;
	return 0;
}

int st_json_i64(const struct st_json *v, const char *what, int64_t *out)
{
	int r = want(v, what, ST_JSON_NUMBER);
	if (r)
		return r;
	const char *s = v->u.num.text;
	bool neg = s[0] == '-';
	uint64_t x = 0;
	size_t i = neg;
	for (; i < v->u.num.len && s[i] >= '0' && s[i] <= '9'; i++)
		if (st_mul_overflow_u64(x, 10, &x) || st_add_overflow_u64(x, (uint64_t)(s[i] - '0'), &x) ||
		    x > (uint64_t)INT64_MAX + neg)
			return st_error(-EINVAL, "%s at %u:%u: %s does not fit in 64 bits", what, v->line,
					v->col, s);
	if (i != v->u.num.len || i == (size_t)neg)
		return st_error(-EINVAL, "%s at %u:%u: expected an integer, got %s", what, v->line,
				v->col, s);
	*out = neg ? (x == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)x) : (int64_t)x;
	return 0;
}

int st_json_str(const struct st_json *v, const char *what, const char **out)
{
	int r = want(v, what, ST_JSON_STRING);
	if (!r)
		*out = v->u.str.s;
	return r;
}

int st_json_bool(const struct st_json *v, const char *what, bool *out)
{
	if (v && (v->type == ST_JSON_TRUE || v->type == ST_JSON_FALSE)) {
		*out = v->type == ST_JSON_TRUE;
		return 0;
	}
	if (!v)
		return st_error(-EINVAL, "%s: missing (expected true or false)", what);
	return st_error(-EINVAL, "%s at %u:%u: expected true or false, got a %s", what, v->line,
			v->col, st_json_type_name(v->type));
}

/* ---- writer -------------------------------------------------------------- */

void st_jw_init(struct st_jw *w, bool pretty)
{
	memset(w, 0, sizeof *w);
	w->pretty = pretty;
	w->first[0] = true;
}

static void put(struct st_jw *w, const char *s, size_t n)
{
	if (w->err)
		return;
	if (w->cap - w->len <= n) {
		size_t nc = w->cap ? w->cap : 256;
		while (nc - w->len <= n) {
			if (nc > SIZE_MAX / 2) {
				w->err = -ENOMEM;
				return;
			}
			nc *= 2;
		}
		char *nb = realloc(w->buf, nc);
		if (!nb) {
			w->err = -ENOMEM;
			return;
		}
		w->buf = nb;
		w->cap = nc;
	}
	memcpy(w->buf + w->len, s, n);
	w->len += n;
	w->buf[w->len] = 0;
}

static void puts_(struct st_jw *w, const char *s) { put(w, s, strlen(s)); }

static void newline(struct st_jw *w)
{
	if (!w->pretty)
		return;
	put(w, "\n", 1);
	for (int i = 0; i < w->depth; i++)
		put(w, "  ", 2);
}

static void put_string(struct st_jw *w, const char *s)
{
	put(w, "\"", 1);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		char e[8];
		switch (*p) {
		case '"': puts_(w, "\\\""); break;
		case '\\': puts_(w, "\\\\"); break;
		case '\n': puts_(w, "\\n"); break;
		case '\r': puts_(w, "\\r"); break;
		case '\t': puts_(w, "\\t"); break;
		default:
			if (*p < 0x20) {
				snprintf(e, sizeof e, "\\u%04x", *p);
				puts_(w, e);
			} else
				put(w, (const char *)p, 1);
		}
	}
	put(w, "\"", 1);
}

/* Separator, indentation and key before a value. */
static void item(struct st_jw *w, const char *key)
{
	if (w->err)
		return;
	if (w->depth == 0 && !w->first[0]) {
		w->err = -EINVAL;               /* a second top-level value */
		return;
	}
	if (w->depth > 0 && w->is_obj[w->depth] != (key != NULL)) {
		w->err = -EINVAL;               /* key in array or missing key in object */
		return;
	}
	if (!w->first[w->depth])
		put(w, ",", 1);
	w->first[w->depth] = false;
	if (w->depth > 0)
		newline(w);
	if (key) {
		put_string(w, key);
		put(w, w->pretty ? ": " : ":", w->pretty ? 2 : 1);
	}
}

static void open_(struct st_jw *w, const char *key, bool obj)
{
	item(w, key);
	if (w->err)
		return;
	if (w->depth >= 64) {
		w->err = -E2BIG;
		return;
	}
	put(w, obj ? "{" : "[", 1);
	w->depth++;
	w->first[w->depth] = true;
	w->is_obj[w->depth] = obj;
}

static void close_(struct st_jw *w, bool obj)
{
	if (w->err)
		return;
	if (w->depth == 0 || w->is_obj[w->depth] != obj) {
		w->err = -EINVAL;
		return;
	}
	bool empty = w->first[w->depth];
	w->depth--;
	if (!empty)
		newline(w);
	put(w, obj ? "}" : "]", 1);
}

void st_jw_object_begin(struct st_jw *w, const char *key) { open_(w, key, true); }
void st_jw_object_end(struct st_jw *w) { close_(w, true); }
void st_jw_array_begin(struct st_jw *w, const char *key) { open_(w, key, false); }
void st_jw_array_end(struct st_jw *w) { close_(w, false); }

void st_jw_string(struct st_jw *w, const char *key, const char *s)
{
	item(w, key);
	put_string(w, s ? s : "");
}

void st_jw_number(struct st_jw *w, const char *key, double v)
{
	char b[40];
	if (!isfinite(v)) {
		if (!w->err)
			w->err = -EDOM;
		return;
	}
	item(w, key);
	snprintf(b, sizeof b, "%.17g", v);
	/* Prefer the shortest form that reads back exactly. */
	for (int prec = 1; prec < 17; prec++) {
		char t[40];
		snprintf(t, sizeof t, "%.*g", prec, v);
		if (strtod(t, NULL) == v) {
			memcpy(b, t, sizeof t);
			break;
		}
	}
	puts_(w, b);
}

void st_jw_int(struct st_jw *w, const char *key, int64_t v)
{
	char b[32];
	item(w, key);
	snprintf(b, sizeof b, "%" PRId64, v);
	puts_(w, b);
}

void st_jw_uint(struct st_jw *w, const char *key, uint64_t v)
{
	char b[32];
	item(w, key);
	snprintf(b, sizeof b, "%" PRIu64, v);
	puts_(w, b);
}

void st_jw_bool(struct st_jw *w, const char *key, bool v)
{
	item(w, key);
	puts_(w, v ? "true" : "false");
}

void st_jw_null(struct st_jw *w, const char *key)
{
	item(w, key);
	puts_(w, "null");
}

void st_jw_value(struct st_jw *w, const char *key, const struct st_json *v)
{
	switch (v->type) {
	case ST_JSON_NULL: st_jw_null(w, key); break;
	case ST_JSON_FALSE: st_jw_bool(w, key, false); break;
	case ST_JSON_TRUE: st_jw_bool(w, key, true); break;
	case ST_JSON_NUMBER:
		item(w, key);
		put(w, v->u.num.text, v->u.num.len);
		break;
	case ST_JSON_STRING:
		/* strings with NUL bytes cannot be copied through a C string */
		if (strlen(v->u.str.s) != v->u.str.len) {
			if (!w->err)
				w->err = -EINVAL;
			break;
		}
		st_jw_string(w, key, v->u.str.s);
		break;
	case ST_JSON_ARRAY:
		st_jw_array_begin(w, key);
		for (size_t i = 0; i < v->u.arr.n; i++)
			st_jw_value(w, NULL, &v->u.arr.items[i]);
		st_jw_array_end(w);
		break;
	case ST_JSON_OBJECT:
		st_jw_object_begin(w, key);
		for (size_t i = 0; i < v->u.obj.n; i++)
			st_jw_value(w, v->u.obj.members[i].key, &v->u.obj.members[i].value);
		st_jw_object_end(w);
		break;
	}
}

char *st_jw_finish(struct st_jw *w, size_t *len, int *err)
{
	if (!w->err && (w->depth != 0 || w->first[0]))
		w->err = -EINVAL;               /* unbalanced or empty */
	if (!w->err && w->pretty)
		put(w, "\n", 1);
	if (w->err) {
		if (err)
			*err = w->err;
		st_jw_discard(w);
		return NULL;
	}
	char *b = w->buf;
	if (len)
		*len = w->len;
	if (err)
		*err = 0;
	w->buf = NULL;
	w->len = w->cap = 0;
	return b;
}

void st_jw_discard(struct st_jw *w)
{
	free(w->buf);
	w->buf = NULL;
	w->len = w->cap = 0;
}
