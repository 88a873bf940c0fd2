/* test_json.c: the strict JSON reader accepts what RFC 8259 allows and
 * decodes it right (escapes, surrogate pairs, numbers, exact 64-bit
 * integers), rejects hostile or malformed input cleanly with line:column
 * (deep nesting, huge numbers, bad escapes, invalid UTF-8, truncation,
 * trailing junk, duplicate keys, limits), survives every truncation and
 * random byte mutation of a valid document, and the writer round-trips. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "tap.h"
#include "util.h"

static int parse(const char *s, struct st_json_doc **d)
{
	return st_json_parse(s, strlen(s), NULL, d);
}

static int rejects(const char *s, int want, const char *needle)
{
	struct st_json_doc *d = NULL;
	int r = parse(s, &d);
	if (r == 0) {
		st_json_doc_free(d);
		return 0;
	}
	if (want && r != want)
		return 0;
	return !needle || strstr(st_last_error(), needle) != NULL;
}

int main(void)
{
	struct st_json_doc *d;
	const struct st_json *v;

	/* ---- valid documents decode right ---- */
	ok(parse("{\"a\": [1, -2.5e3, true, false, null, \"x\"], \"b\": {}}", &d) == 0, "simple document parses");
	v = st_json_root(d);
	ok(v->type == ST_JSON_OBJECT && v->u.obj.n == 2, "root object with 2 members");
	const struct st_json *a = st_json_get(v, "a");
	ok(a && a->type == ST_JSON_ARRAY && a->u.arr.n == 6 && a->u.arr.items[1].u.num.v == -2500.0 &&
	       a->u.arr.items[2].type == ST_JSON_TRUE && a->u.arr.items[4].type == ST_JSON_NULL &&
	       !strcmp(a->u.arr.items[5].u.str.s, "x"),
	   "array items decoded");
	ok(a->line == 1 && a->col == 7, "value position recorded (1:%u)", a->col);
	st_json_doc_free(d);

	ok(parse("\"\\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9\\u20ac\\ud83d\\ude00\"", &d) == 0, "escapes parse");
	v = st_json_root(d);
	ok(v->u.str.len == 17 && !memcmp(v->u.str.s, "\"\\/\b\f\n\r\t\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 17),
	   "escapes and surrogate pair decode to UTF-8 (%zu bytes)", v->u.str.len);
	st_json_doc_free(d);

	ok(parse("\"a\\u0000b\"", &d) == 0 && st_json_root(d)->u.str.len == 3, "\\u0000 kept with explicit length");
	st_json_doc_free(d);

	ok(parse("18446744073709551615", &d) == 0, "2^64-1 parses");
	uint64_t u = 0;
	ok(st_json_u64(st_json_root(d), "n", &u) == 0 && u == UINT64_MAX, "read exactly as u64");
	st_json_doc_free(d);
	ok(parse("18446744073709551616", &d) == 0 && st_json_u64(st_json_root(d), "n", &u) == -EINVAL &&
	       strstr(st_last_error(), "64 bits"),
	   "2^64 rejected as u64 with a message");
	st_json_doc_free(d);
	int64_t i64 = 0;
	ok(parse("-9223372036854775808", &d) == 0 && st_json_i64(st_json_root(d), "n", &i64) == 0 && i64 == INT64_MIN,
	   "INT64_MIN read exactly");
	st_json_doc_free(d);
	ok(parse("1.5", &d) == 0 && st_json_u64(st_json_root(d), "n", &u) == -EINVAL, "1.5 is not an integer");
	st_json_doc_free(d);
	ok(parse(" \t\r\n[ ]\n ", &d) == 0 && st_json_root(d)->u.arr.n == 0, "whitespace around an empty array");
	st_json_doc_free(d);
	ok(parse("\xef\xbb\xbf{}", &d) == 0, "UTF-8 BOM tolerated");
	st_json_doc_free(d);
	ok(parse("0.1e-2", &d) == 0 && fabs(st_json_root(d)->u.num.v - 0.001) < 1e-18, "0.1e-2");
	st_json_doc_free(d);
	ok(parse("1e-400", &d) == 0 && st_json_root(d)->u.num.v == 0.0, "underflow to 0 is fine");
	st_json_doc_free(d);
	ok(parse("\"\xf0\x9f\x98\x80 \xc3\xa9\"", &d) == 0, "raw UTF-8 accepted");
	st_json_doc_free(d);

	/* ---- hostile and malformed input ---- */
	{
		size_t n = 100000;
		char *deep = malloc(n * 2 + 1);
		memset(deep, '[', n);
		memset(deep + n, ']', n);
		deep[2 * n] = 0;
		ok(rejects(deep, -E2BIG, "nesting deeper than 64"), "100,000 nested arrays rejected (%s)", st_last_error());
		for (size_t i = 0; i < n; i++)
			deep[i] = (i % 2) ? '[' : '{';
		deep[n] = 0;
		ok(rejects(deep, 0, NULL), "deep mixed nesting rejected, no crash");
		free(deep);
		char ok64[200] = "", bad65[200] = "";
		for (int i = 0; i < 64; i++)
			strcat(ok64, "[");
		for (int i = 0; i < 64; i++)
			strcat(ok64, "]");
		ok(parse(ok64, &d) == 0, "64 levels accepted");
		st_json_doc_free(d);
		for (int i = 0; i < 65; i++)
			strcat(bad65, "[");
		for (int i = 0; i < 65; i++)
			strcat(bad65, "]");
		ok(rejects(bad65, -E2BIG, NULL), "65 levels rejected");
	}
	ok(rejects("1e999", -ERANGE, "out of range"), "1e999 rejected (%s)", st_last_error());
	ok(rejects("-1e400", -ERANGE, NULL), "-1e400 rejected");
	{
		char big[700];
		memset(big, '9', 699);
		big[699] = 0;
		ok(rejects(big, -E2BIG, "too long"), "699-digit number rejected");
	}
	ok(rejects("\"\\x\"", -EINVAL, "invalid escape"), "bad escape \\x (%s)", st_last_error());
	ok(rejects("\"\\u12G4\"", -EINVAL, "hex"), "bad hex in \\u");
	ok(rejects("\"\\ud800\"", -EINVAL, "surrogate"), "lone high surrogate");
	ok(rejects("\"\\udc00\"", -EINVAL, "surrogate"), "lone low surrogate");
	ok(rejects("\"\\ud800\\u0041\"", -EINVAL, "surrogate"), "high surrogate + non-surrogate");
	ok(rejects("\"\\u12", -EINVAL, NULL), "truncated \\u");
	ok(rejects("\"abc", -EINVAL, "unterminated"), "unterminated string");
	ok(rejects("\"a\nb\"", -EINVAL, "control character"), "raw newline in string");
	ok(rejects("\"\xc3\x28\"", -EINVAL, "UTF-8"), "invalid UTF-8");
	ok(rejects("\"\xc0\xaf\"", -EINVAL, "UTF-8"), "overlong UTF-8");
	ok(rejects("\"\xed\xa0\x80\"", -EINVAL, "UTF-8"), "UTF-8 encoded surrogate");
	ok(rejects("\"\xf4\x90\x80\x80\"", -EINVAL, "UTF-8"), "code point above U+10FFFF");
	ok(rejects("{\"a\": 1", -EINVAL, "end of input"), "truncated object (%s)", st_last_error());
	ok(rejects("[1, 2", -EINVAL, NULL), "truncated array");
	ok(rejects("", -EINVAL, "end of input"), "empty document");
	ok(rejects("{} x", -EINVAL, "trailing"), "trailing junk (%s)", st_last_error());
	ok(rejects("{}{}", -EINVAL, "trailing"), "two documents");
	ok(rejects("[1,]", -EINVAL, "trailing comma"), "trailing comma in array");
	ok(rejects("{\"a\":1,}", -EINVAL, "trailing comma"), "trailing comma in object");
	ok(rejects("{\"a\":1,\"a\":2}", -EINVAL, "duplicate key"), "duplicate key");
	ok(rejects("{a:1}", -EINVAL, "string key"), "unquoted key");
	ok(rejects("[01]", -EINVAL, "leading zero"), "leading zero");
	ok(rejects("[1.]", -EINVAL, NULL), "1.");
	ok(rejects("[.5]", -EINVAL, NULL), ".5");
	ok(rejects("[+1]", -EINVAL, NULL), "+1");
	ok(rejects("[1e]", -EINVAL, "exponent"), "1e");
	ok(rejects("[NaN]", -EINVAL, NULL), "NaN");
	ok(rejects("[Infinity]", -EINVAL, NULL), "Infinity");
	ok(rejects("[tru]", -EINVAL, NULL), "tru");
	ok(rejects("// c\n{}", -EINVAL, NULL), "comments");
	ok(rejects("['a']", -EINVAL, NULL), "single quotes");
	ok(rejects("{\"a\" 1}", -EINVAL, "':'"), "missing colon");
	ok(rejects("[1 2]", -EINVAL, "','"), "missing comma");
	{
		struct st_json_doc *dd;
		int r = st_json_parse("[1,\n 2,\n  x]", 12, NULL, &dd);
		ok(r == -EINVAL && strstr(st_last_error(), "3:3"), "error names line:column 3:3 (%s)", st_last_error());
		r = st_json_parse("[1]\0[2]", 7, NULL, &dd);
		ok(r == -EINVAL, "NUL byte after the document rejected");
	}
	{
		struct st_json_limits lim = { .max_bytes = 10 };
		ok(st_json_parse("[1,2,3,4,5,6]", 13, &lim, &d) == -E2BIG, "document size limit");
		struct st_json_limits lim2 = { .max_string = 3 };
		ok(st_json_parse("\"abcd\"", 6, &lim2, &d) == -E2BIG, "string size limit");
		struct st_json_limits lim3 = { .max_items = 3 };
		ok(st_json_parse("[1,2,3,4]", 9, &lim3, &d) == -E2BIG, "items limit");
		ok(st_json_parse("[1,2,3]", 7, &lim3, &d) == 0, "items at the limit accepted");
		st_json_doc_free(d);
	}
	{
		struct st_json_doc *dd;
		ok(st_json_parse_file("/nonexistent/x.json", NULL, &dd) == -ENOENT, "missing file: -ENOENT");
	}

	/* ---- robustness: every truncation and random mutations ---- */
	{
		const char *doc = "{\"devices\": [{\"name\": \"a\\u00e9\", \"ms\": [1.5, 2e-3, -0, 12345678901234567890]},"
				  " {\"k\": [true, false, null, {\"x\": \"\\ud83d\\ude00\"}]}], \"n\": -7}";
		size_t n = strlen(doc);
		int valid = 0, crashes = 0;
		ok(parse(doc, &d) == 0, "reference document parses");
		st_json_doc_free(d);
		for (size_t k = 0; k < n; k++) {
			struct st_json_doc *dd = NULL;
			if (st_json_parse(doc, k, NULL, &dd) == 0)
				valid++;
			st_json_doc_free(dd);
		}
		ok(valid == 0, "every strict prefix of the document is rejected (%d accepted)", valid);
		char *buf = malloc(n);
		uint64_t s = 12345;
		for (int it = 0; it < 20000; it++) {
			memcpy(buf, doc, n);
			for (int m = 0; m < 1 + it % 4; m++) {
				s = s * 6364136223846793005ull + 1442695040888963407ull;
				buf[(s >> 33) % n] = (char)(s >> 13);
			}
			struct st_json_doc *dd = NULL;
			int r = st_json_parse(buf, n, NULL, &dd);
			if (r != 0 && r != -EINVAL && r != -E2BIG && r != -ERANGE)
				crashes++;
			st_json_doc_free(dd);
		}
		free(buf);
		ok(crashes == 0, "20,000 random mutations: only clean accept/reject (%d odd codes)", crashes);
	}

	/* ---- writer ---- */
	{
		struct st_jw w;
		st_jw_init(&w, true);
		st_jw_object_begin(&w, NULL);
		st_jw_string(&w, "s", "q\"\\\n\x01\xc3\xa9");
		st_jw_number(&w, "pi", 3.141592653589793);
		st_jw_number(&w, "tenth", 0.1);
		st_jw_uint(&w, "big", UINT64_MAX);
		st_jw_int(&w, "neg", INT64_MIN);
		st_jw_array_begin(&w, "arr");
		st_jw_bool(&w, NULL, true);
		st_jw_null(&w, NULL);
		st_jw_object_begin(&w, NULL);
		st_jw_object_end(&w);
		st_jw_array_end(&w);
		st_jw_object_end(&w);
		size_t len;
		int err;
		char *text = st_jw_finish(&w, &len, &err);
		ok(text && err == 0, "writer finishes");
		ok(text && parse(text, &d) == 0, "writer output parses back");
		v = st_json_root(d);
		const struct st_json *sv = st_json_get(v, "s");
		ok(sv && sv->u.str.len == 7 && !memcmp(sv->u.str.s, "q\"\\\n\x01\xc3\xa9", 7), "string round-trips");
		ok(st_json_get(v, "pi")->u.num.v == 3.141592653589793 && st_json_get(v, "tenth")->u.num.v == 0.1,
		   "doubles round-trip exactly");
		ok(strstr(text, "\"tenth\": 0.1") != NULL, "shortest exact form written (0.1)");
		ok(st_json_u64(st_json_get(v, "big"), "big", &u) == 0 && u == UINT64_MAX, "u64 round-trips");
		ok(st_json_i64(st_json_get(v, "neg"), "neg", &i64) == 0 && i64 == INT64_MIN, "i64 round-trips");
		st_json_doc_free(d);
		free(text);

		st_jw_init(&w, false);
		st_jw_array_begin(&w, NULL);
		st_jw_number(&w, NULL, NAN);
		st_jw_array_end(&w);
		ok(st_jw_finish(&w, NULL, &err) == NULL && err == -EDOM, "NaN refused by the writer");
		st_jw_init(&w, false);
		st_jw_array_begin(&w, NULL);
		ok(st_jw_finish(&w, NULL, &err) == NULL && err == -EINVAL, "unbalanced document refused");
		st_jw_init(&w, false);
		st_jw_object_begin(&w, NULL);
		st_jw_int(&w, NULL, 1);
		st_jw_object_end(&w);
		ok(st_jw_finish(&w, NULL, &err) == NULL && err == -EINVAL, "member without a key refused");
	}
	return tap_done();
}
