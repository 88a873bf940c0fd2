/* test_gguf.c: the GGUF reader and writer.
 *
 *  - round trip: every value type and tensors of many types with odd shapes,
 *    v2 and v3, alignment 32 and 64, streamed in uneven chunks; offsets and
 *    sizes checked against an independent computation from the block table
 *    of the GGML spec, bytes and padding read back with pread;
 *  - the writer's bytes equal a hand-built file (tests/gguf_corpus.c, written
 *    from the spec without the runtime), and its misuse is rejected;
 *  - the typed getters;
 *  - the real files in ../shared/models (stories260K, two vocab-only files);
 *  - the hostile corpus (tests/gguf_corpus.c), file and memory, each asserting
 *    the errno and the field named in st_last_error();
 *  - the valid file truncated at every length, each rejection naming the
 *    field the cut falls in;
 *  - policy: gaps between tensors and unordered tensors are accepted;
 *  - large counts (hash sets, not O(n^2)). */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gguf.h"
#include "gguf_corpus.h"
#include "strata.h"
#include "tap.h"
#include "types.h"
#include "util.h"

typedef unsigned long long ull;

#define EXPECT_ERR(call, code, substr, what)                                                  \
	do {                                                                                  \
		int rc_ = (call);                                                             \
		ok(rc_ == (code) && strstr(st_last_error(), substr), "%s: %d, '%s'", what, rc_, \
		   st_last_error());                                                          \
	} while (0)

static char tmpdir[256];

static const char *tmp_path(const char *name)
{
	static char p[512];
	snprintf(p, sizeof p, "%s/%s", tmpdir, name);
	return p;
}

static int write_bytes(const char *path, const void *p, size_t n)
{
	FILE *f = fopen(path, "wb");
	if (!f)
		return -1;
	size_t w = n ? fwrite(p, 1, n, f) : 0;
	return (fclose(f) == 0 && w == n) ? 0 : -1;
}

static uint8_t *read_all(const char *path, size_t *n)
{
	struct stat st;
	int fd = open(path, O_RDONLY);
	if (fd < 0 || fstat(fd, &st) < 0) {
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	uint8_t *p = malloc((size_t)st.st_size + 1);
	ssize_t r = p ? pread(fd, p, (size_t)st.st_size, 0) : -1;
	close(fd);
	if (r != st.st_size) {
		free(p);
		return NULL;
	}
	*n = (size_t)st.st_size;
	return p;
}

/* ---- round trip -------------------------------------------------------------- */

/* Bytes per block and elements per block, straight from the GGML spec. */
static uint64_t spec_nbytes(uint32_t type, const uint64_t *ne, uint32_t n_dims)
{
	uint64_t bs, ts, n = 1;
	switch (type) {
	case ST_TYPE_F32: bs = 1, ts = 4; break;
	case ST_TYPE_F16: case ST_TYPE_BF16: bs = 1, ts = 2; break;
	case ST_TYPE_Q8_0: bs = 32, ts = 2 + 32; break;         /* fp16 d + 32 int8 */
	case ST_TYPE_Q4_0: bs = 32, ts = 2 + 16; break;         /* fp16 d + 32 nibbles */
	case ST_TYPE_Q4_K: bs = 256, ts = 2 + 2 + 12 + 128; break;  /* d, dmin, scales, qs */
	case ST_TYPE_Q6_K: bs = 256, ts = 128 + 64 + 16 + 2; break;
	case ST_TYPE_F64: bs = 1, ts = 8; break;
	case ST_TYPE_I8: bs = 1, ts = 1; break;
	default: return 0;
	}
	for (uint32_t d = 1; d < n_dims; d++)
		n *= ne[d];
	return ne[0] / bs * ts * n;
}

struct rt_tensor {
	const char *name;
	uint32_t type, n_dims;
	uint64_t ne[4];
};

static const struct rt_tensor rt_tensors[] = {
	{ "f32.odd", ST_TYPE_F32, 3, { 3, 5, 7 } },
	{ "f16.odd", ST_TYPE_F16, 2, { 7, 3 } },
	{ "bf16.4d", ST_TYPE_BF16, 4, { 5, 1, 2, 3 } },
	{ "blk.0.q8_0", ST_TYPE_Q8_0, 2, { 64, 3 } },
	{ "blk.0.q4_0", ST_TYPE_Q4_0, 3, { 32, 5, 3 } },
	{ "q4_K (unsupported, sized)", ST_TYPE_Q4_K, 2, { 256, 2 } },
	{ "q6_K", ST_TYPE_Q6_K, 1, { 512 } },
	{ "f64", ST_TYPE_F64, 1, { 3 } },
	{ "i8.scalar", ST_TYPE_I8, 1, { 1 } },
};
#define N_RT ST_ARRAY_SIZE(rt_tensors)

static const uint8_t a_u8[] = { 0, 1, 255 };
static const int8_t a_i8[] = { -128, 0, 127 };
static const uint16_t a_u16[] = { 0, 65535, 1234 };
static const int16_t a_i16[] = { -32768, 32767, -1 };
static const uint32_t a_u32[] = { 0, 4294967295u, 77 };
static const int32_t a_i32[] = { INT32_MIN, INT32_MAX, -7 };
static const float a_f32[] = { -0.0f, 1.5f, 3.4e38f, 1e-45f };
static const bool a_bool[] = { true, false, true, true };
static const uint64_t a_u64[] = { 0, UINT64_MAX, 1ull << 40 };
static const int64_t a_i64[] = { INT64_MIN, INT64_MAX, -3 };
static const double a_f64[] = { 3.141592653589793, -1e300, 5e-324 };
static const char *const a_str[] = { "a", "", "\xc3\xbc" "n\xc3\xaf" "code", "two words", "<0x0A>" };

struct rt_arr {
	const char *key;
	uint32_t type;
	const void *data;
	uint64_t n;
};

static const struct rt_arr rt_arrs[] = {
	{ "a.u8", ST_GGUF_U8, a_u8, 3 }, { "a.i8", ST_GGUF_I8, a_i8, 3 },
	{ "a.u16", ST_GGUF_U16, a_u16, 3 }, { "a.i16", ST_GGUF_I16, a_i16, 3 },
	{ "a.u32", ST_GGUF_U32, a_u32, 3 }, { "a.i32", ST_GGUF_I32, a_i32, 3 },
	{ "a.f32", ST_GGUF_F32, a_f32, 4 }, { "a.bool", ST_GGUF_BOOL, a_bool, 4 },
	{ "a.u64", ST_GGUF_U64, a_u64, 3 }, { "a.i64", ST_GGUF_I64, a_i64, 3 },
	{ "a.f64", ST_GGUF_F64, a_f64, 3 }, { "a.str", ST_GGUF_STRING, a_str, 5 },
	{ "a.empty", ST_GGUF_U32, NULL, 0 }, { "a.empty_str", ST_GGUF_STRING, NULL, 0 },
};

static uint8_t pattern(size_t t, uint64_t i)
{
	return (uint8_t)(t * 37 + i * 11 + (i >> 8));
}

static int rt_write(const char *path, uint32_t version, uint32_t align)
{
	struct st_gguf_writer *w;
	int rc = st_gguf_writer_create(&w, version, align);
	if (rc < 0)
		return rc;
	uint8_t u8 = 200;
	int8_t i8 = -100;
	uint16_t u16 = 60000;
	int16_t i16 = -30000;
	uint64_t u64 = (1ull << 63) + 5;
	int64_t i64 = -(1ll << 62);
	double f64 = 2.718281828459045;
	rc |= st_gguf_writer_set_str(w, "general.architecture", "test");
	rc |= st_gguf_writer_set_val(w, "s.u8", ST_GGUF_U8, &u8);
	rc |= st_gguf_writer_set_val(w, "s.i8", ST_GGUF_I8, &i8);
	rc |= st_gguf_writer_set_val(w, "s.u16", ST_GGUF_U16, &u16);
	rc |= st_gguf_writer_set_val(w, "s.i16", ST_GGUF_I16, &i16);
	rc |= st_gguf_writer_set_u32(w, "s.u32", 4000000000u);
	rc |= st_gguf_writer_set_i32(w, "s.i32", -2000000000);
	rc |= st_gguf_writer_set_f32(w, "s.f32", 1e-5f);
	rc |= st_gguf_writer_set_bool(w, "s.bool", true);
	rc |= st_gguf_writer_set_str(w, "s.str", "hello, gguf");
	rc |= st_gguf_writer_set_str(w, "s.empty_str", "");
	rc |= st_gguf_writer_set_val(w, "s.u64", ST_GGUF_U64, &u64);
	rc |= st_gguf_writer_set_val(w, "s.i64", ST_GGUF_I64, &i64);
	rc |= st_gguf_writer_set_val(w, "s.f64", ST_GGUF_F64, &f64);
	for (size_t i = 0; i < ST_ARRAY_SIZE(rt_arrs); i++)
		rc |= st_gguf_writer_set_arr(w, rt_arrs[i].key, rt_arrs[i].type, rt_arrs[i].data, rt_arrs[i].n);
	for (size_t i = 0; i < N_RT; i++)
		rc |= st_gguf_writer_add_tensor(w, rt_tensors[i].name, rt_tensors[i].type,
						rt_tensors[i].n_dims, rt_tensors[i].ne);
	FILE *f = fopen(path, "wb");
	if (rc || !f) {
		if (f)
			fclose(f);
		st_gguf_writer_destroy(w);
		return -EINVAL;
	}
	rc = st_gguf_writer_begin(w, f);
	/* stream each tensor in uneven chunks: 1 byte, 7 bytes, the rest */
	for (size_t t = 0; t < N_RT && rc == 0; t++) {
		uint64_t n = spec_nbytes(rt_tensors[t].type, rt_tensors[t].ne, rt_tensors[t].n_dims);
		uint8_t *d = malloc(n);
		for (uint64_t i = 0; i < n; i++)
			d[i] = pattern(t, i);
		uint64_t c1 = ST_MIN(n, 1), c2 = ST_MIN(n - c1, 7);
		rc = st_gguf_writer_write_data(w, d, c1);
		if (!rc)
			rc = st_gguf_writer_write_data(w, d + c1, c2);
		if (!rc)
			rc = st_gguf_writer_write_data(w, d + c1 + c2, n - c1 - c2);
		free(d);
	}
	if (!rc)
		rc = st_gguf_writer_finish(w);
	st_gguf_writer_destroy(w);
	if (fclose(f) != 0 && !rc)
		rc = -EIO;
	return rc;
}

static int kv_is(const struct st_gguf *g, const char *key, uint32_t type)
{
	const struct st_gguf_kv *kv = st_gguf_find(g, key);
	return kv && kv->type == type;
}

/* Compare every value; returns the number of mismatches. */
static int rt_check_kv(const struct st_gguf *g, uint32_t align)
{
	int bad = 0;
	const struct st_gguf_kv *kv;
	bad += !(kv_is(g, "s.u8", ST_GGUF_U8) && st_gguf_find(g, "s.u8")->v.u64 == 200);
	bad += !(kv_is(g, "s.i8", ST_GGUF_I8) && st_gguf_find(g, "s.i8")->v.i64 == -100);
	bad += !(kv_is(g, "s.u16", ST_GGUF_U16) && st_gguf_find(g, "s.u16")->v.u64 == 60000);
	bad += !(kv_is(g, "s.i16", ST_GGUF_I16) && st_gguf_find(g, "s.i16")->v.i64 == -30000);
	bad += !(kv_is(g, "s.u32", ST_GGUF_U32) && st_gguf_find(g, "s.u32")->v.u64 == 4000000000u);
	bad += !(kv_is(g, "s.i32", ST_GGUF_I32) && st_gguf_find(g, "s.i32")->v.i64 == -2000000000);
	bad += !(kv_is(g, "s.f32", ST_GGUF_F32) && st_gguf_find(g, "s.f32")->v.f64 == (double)1e-5f);
	bad += !(kv_is(g, "s.bool", ST_GGUF_BOOL) && st_gguf_find(g, "s.bool")->v.b);
	bad += !(kv_is(g, "s.u64", ST_GGUF_U64) && st_gguf_find(g, "s.u64")->v.u64 == (1ull << 63) + 5);
	bad += !(kv_is(g, "s.i64", ST_GGUF_I64) && st_gguf_find(g, "s.i64")->v.i64 == -(1ll << 62));
	bad += !(kv_is(g, "s.f64", ST_GGUF_F64) && st_gguf_find(g, "s.f64")->v.f64 == 2.718281828459045);
	kv = st_gguf_find(g, "s.str");
	bad += !(kv && kv->type == ST_GGUF_STRING && kv->v.str.len == 11 && !strcmp(kv->v.str.data, "hello, gguf"));
	kv = st_gguf_find(g, "s.empty_str");
	bad += !(kv && kv->type == ST_GGUF_STRING && kv->v.str.len == 0 && kv->v.str.data && !kv->v.str.data[0]);
	for (size_t i = 0; i < ST_ARRAY_SIZE(rt_arrs); i++) {
		const struct rt_arr *a = &rt_arrs[i];
		kv = st_gguf_find(g, a->key);
		if (!kv || kv->type != ST_GGUF_ARRAY || kv->v.arr.type != a->type || kv->v.arr.n != a->n) {
			diag("array %s: missing or wrong type/length", a->key);
			bad++;
			continue;
		}
		if (a->type == ST_GGUF_STRING) {
			const struct st_gguf_string *s = kv->v.arr.data;
			const char *const *want = a->data;
			for (uint64_t j = 0; j < a->n; j++)
				if (s[j].len != strlen(want[j]) || memcmp(s[j].data, want[j], s[j].len)) {
					diag("array %s: element %llu differs", a->key, (ull)j);
					bad++;
				}
		} else if (a->n && memcmp(kv->v.arr.data, a->data, a->n * (a->type == ST_GGUF_BOOL ? 1 :
				   a->type == ST_GGUF_U8 || a->type == ST_GGUF_I8 ? 1 :
				   a->type == ST_GGUF_U16 || a->type == ST_GGUF_I16 ? 2 :
				   a->type == ST_GGUF_U64 || a->type == ST_GGUF_I64 || a->type == ST_GGUF_F64 ? 8 : 4))) {
			diag("array %s: bytes differ", a->key);
			bad++;
		}
	}
	/* 14 scalars + 14 arrays, plus general.alignment when it is not 32 */
	bad += g->n_kv != 28u + (align != 32);
	if (align != 32)
		bad += !(kv_is(g, "general.alignment", ST_GGUF_U32) && st_gguf_find(g, "general.alignment")->v.u64 == align);
	return bad;
}

static int rt_check_tensors(const struct st_gguf *g, const char *path, uint32_t align)
{
	int bad = 0, fd = open(path, O_RDONLY);
	uint64_t off = 0;
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0 || g->n_tensors != N_RT) {
		if (fd >= 0)
			close(fd);
		return 1;
	}
	bad += g->data_offset % align != 0;
	for (size_t t = 0; t < N_RT; t++) {
		const struct rt_tensor *e = &rt_tensors[t];
		const struct st_gguf_tensor *x = st_gguf_find_tensor(g, e->name);
		uint64_t nb = spec_nbytes(e->type, e->ne, e->n_dims), n = 1;
		for (uint32_t d = 0; d < e->n_dims; d++)
			n *= e->ne[d];
		if (!x || x != &g->tensors[t] || x->type != e->type || x->n_dims != e->n_dims ||
		    memcmp(x->ne, e->ne, e->n_dims * 8) || x->n_elements != n || x->nbytes != nb ||
		    x->offset != off || x->file_offset != g->data_offset + off) {
			diag("tensor %s: metadata differs (offset %llu want %llu, nbytes %llu want %llu)", e->name,
			     x ? (ull)x->offset : 0ull, (ull)off, x ? (ull)x->nbytes : 0ull, (ull)nb);
			bad++;
			continue;
		}
		for (uint32_t d = e->n_dims; d < 4; d++)
			bad += x->ne[d] != 1;
		uint64_t padded = (nb + align - 1) / align * align;
		uint8_t *buf = malloc(padded);
		if (pread(fd, buf, padded, (off_t)x->file_offset) != (ssize_t)padded) {
			bad++;
		} else {
			for (uint64_t i = 0; i < padded; i++)
				if (buf[i] != (i < nb ? pattern(t, i) : 0)) {
					diag("tensor %s: byte %llu differs", e->name, (ull)i);
					bad++;
					break;
				}
		}
		free(buf);
		off += padded;
	}
	if ((uint64_t)st.st_size != g->data_offset + off) {
		diag("file size %llu, want data offset %llu + %llu", (ull)st.st_size, (ull)g->data_offset, (ull)off);
		bad++;
	}
	close(fd);
	return bad;
}

static void test_round_trip(void)
{
	static const uint32_t versions[] = { 2, 3 }, aligns[] = { 32, 64 };
	for (size_t v = 0; v < 2; v++) {
		for (size_t a = 0; a < 2; a++) {
			const char *path = tmp_path("rt.gguf");
			struct st_gguf *g = NULL, *gm = NULL;
			int rc = rt_write(path, versions[v], aligns[a]);
			ok(rc == 0, "v%u align %u: writer streams every value type and %zu tensors (rc %d %s)",
			   versions[v], aligns[a], N_RT, rc, rc ? st_last_error() : "");
			rc = st_gguf_open(path, &g);
			ok(rc == 0 && g && g->version == versions[v] && g->alignment == aligns[a],
			   "v%u align %u: reader opens it (rc %d %s)", versions[v], aligns[a], rc, rc ? st_last_error() : "");
			if (!g)
				continue;
			int bad = rt_check_kv(g, aligns[a]);
			ok(bad == 0, "v%u align %u: every scalar, string and array value reads back (%d mismatches)",
			   versions[v], aligns[a], bad);
			bad = rt_check_tensors(g, path, aligns[a]);
			ok(bad == 0, "v%u align %u: tensor names, types, shapes, offsets, sizes, bytes and zero padding match (%d mismatches)",
			   versions[v], aligns[a], bad);
			size_t n = 0;
			uint8_t *img = read_all(path, &n);
			rc = img ? st_gguf_parse_mem(img, n, &gm) : -EIO;
			bad = rc != 0 || gm->n_kv != g->n_kv || gm->n_tensors != g->n_tensors ||
			      gm->data_offset != g->data_offset || rt_check_kv(gm, aligns[a]);
			for (uint64_t t = 0; !bad && t < g->n_tensors; t++)
				bad = strcmp(gm->tensors[t].name, g->tensors[t].name) ||
				      gm->tensors[t].file_offset != g->tensors[t].file_offset;
			ok(!bad, "v%u align %u: st_gguf_parse_mem agrees with st_gguf_open", versions[v], aligns[a]);
			/* Copy through set_kv: the same metadata bytes come out. */
			if (versions[v] == 3 && aligns[a] == 32) {
				struct st_gguf_writer *w;
				char *buf = NULL;
				size_t len = 0;
				FILE *f = open_memstream(&buf, &len);
				rc = st_gguf_writer_create(&w, 3, 32);
				for (uint64_t k = 0; !rc && k < g->n_kv; k++)
					rc = st_gguf_writer_set_kv(w, &g->kv[k]);
				if (!rc)
					rc = st_gguf_writer_begin(w, f);
				if (!rc)
					rc = st_gguf_writer_finish(w);
				st_gguf_writer_destroy(w);
				fclose(f);
				/* Same magic, version and n_kv; n_tensors (bytes 8..15) is 0. */
				bad = rc != 0 || len < 24 || memcmp(buf, img, 8) || memcmp(buf + 16, img + 16, 8);
				if (!bad) {
					struct st_gguf *g2 = NULL;
					bad = st_gguf_parse_mem(buf, len, &g2) != 0 || rt_check_kv(g2, 32) != 0;
					st_gguf_free(g2);
				}
				ok(!bad, "st_gguf_writer_set_kv copies all %llu key-value pairs of a parsed file (rc %d)",
				   (ull)g->n_kv, rc);
				free(buf);
			}
			free(img);
			st_gguf_free(gm);
			st_gguf_free(g);
		}
	}
}

/* ---- the writer against hand-built bytes, and its misuse ---------------------- */

static void test_writer_bytes(void)
{
	struct gc b = { 0 };
	const uint64_t ne_a[2] = { 4, 2 }, ne_b[1] = { 32 };
	uint8_t da[32], db[34];
	for (int i = 0; i < 32; i++)
		da[i] = (uint8_t)(i + 1);
	for (int i = 0; i < 34; i++)
		db[i] = (uint8_t)(200 - i);
	/* general.alignment by hand must agree with create() */
	struct st_gguf_writer *w;
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	const char *strs[2] = { "a", "bc" };
	int rc = st_gguf_writer_create(&w, 3, 32);
	rc |= st_gguf_writer_set_str(w, "general.architecture", "llama");
	rc |= st_gguf_writer_set_arr(w, "x.arr", ST_GGUF_STRING, strs, 2);
	EXPECT_ERR(st_gguf_writer_set_u32(w, "general.alignment", 64), -EINVAL, "general.alignment 64 differs from the alignment 32",
		   "general.alignment must agree with create()");
	EXPECT_ERR(st_gguf_writer_set_str(w, "general.alignment", "32"), -EINVAL, "general.alignment must be a u32",
		   "general.alignment must be a u32");
	rc |= st_gguf_writer_set_u32(w, "general.alignment", 32);
	st_gguf_writer_destroy(w);
	ok(rc == 0, "general.alignment = 32 may be set by hand when create() used 32");

	/* By hand from the spec, and with the writer: compare exactly. */
	gc_header(&b, 3, 2, 2);
	gc_kv_str(&b, "general.architecture", "llama");
	gc_kv_hdr(&b, "x.arr", ST_GGUF_ARRAY);
	gc_u32(&b, ST_GGUF_STRING), gc_u64(&b, 2), gc_str(&b, "a"), gc_str(&b, "bc");
	gc_tensor(&b, "a", ST_TYPE_F32, 2, ne_a, 0);
	gc_tensor(&b, "b", ST_TYPE_Q8_0, 1, ne_b, 32);
	gc_pad(&b, 32);
	gc_bytes(&b, da, 32), gc_pad(&b, 32);
	gc_bytes(&b, db, 34), gc_pad(&b, 32);
	rc = st_gguf_writer_create(&w, 3, 32);
	rc |= st_gguf_writer_set_str(w, "general.architecture", "llama");
	rc |= st_gguf_writer_set_arr(w, "x.arr", ST_GGUF_STRING, strs, 2);
	rc |= st_gguf_writer_add_tensor(w, "a", ST_TYPE_F32, 2, ne_a);
	rc |= st_gguf_writer_add_tensor(w, "b", ST_TYPE_Q8_0, 1, ne_b);
	rc |= st_gguf_writer_begin(w, f);
	rc |= st_gguf_writer_write_data(w, da, 32);
	rc |= st_gguf_writer_write_data(w, db, 34);
	rc |= st_gguf_writer_finish(w);
	st_gguf_writer_destroy(w);
	fclose(f);
	ok(rc == 0 && len == b.n && !memcmp(buf, b.p, b.n),
	   "writer output is byte-identical to a file built by hand from the spec (%zu vs %zu bytes)", len, b.n);
	free(buf);
	gc_free(&b);

	/* v2, alignment 64: general.alignment is written by create() first. */
	gc_header(&b, 2, 1, 2);
	gc_kv_u32(&b, "general.alignment", 64);
	gc_kv_str(&b, "general.architecture", "llama");
	gc_tensor(&b, "b", ST_TYPE_Q8_0, 1, ne_b, 0);
	gc_pad(&b, 64);
	gc_bytes(&b, db, 34), gc_pad(&b, 64);
	buf = NULL, len = 0;
	f = open_memstream(&buf, &len);
	rc = st_gguf_writer_create(&w, 2, 64);
	rc |= st_gguf_writer_set_str(w, "general.architecture", "llama");
	rc |= st_gguf_writer_add_tensor(w, "b", ST_TYPE_Q8_0, 1, ne_b);
	rc |= st_gguf_writer_begin(w, f);
	rc |= st_gguf_writer_write_data(w, db, 34);
	rc |= st_gguf_writer_finish(w);
	st_gguf_writer_destroy(w);
	fclose(f);
	ok(rc == 0 && len == b.n && !memcmp(buf, b.p, b.n),
	   "v2 alignment 64: writer output equals the hand-built file (%zu vs %zu bytes)", len, b.n);
	free(buf);
	gc_free(&b);
}

static void test_writer_errors(void)
{
	struct st_gguf_writer *w = NULL;
	const uint64_t ne8[1] = { 8 }, ne33[1] = { 33 }, ne0[2] = { 4, 0 };
	uint8_t d[64] = { 0 };
	char *buf = NULL;
	size_t len = 0;

	EXPECT_ERR(st_gguf_writer_create(&w, 1, 32), -EINVAL, "version 1", "create rejects version 1");
	EXPECT_ERR(st_gguf_writer_create(&w, 3, 48), -EINVAL, "alignment 48", "create rejects alignment 48");
	EXPECT_ERR(st_gguf_writer_create(&w, 3, 1u << 20), -EINVAL, "alignment 1048576", "create rejects alignment 2^20");
	ok(st_gguf_writer_create(&w, 3, 64) == 0, "create v3 alignment 64");
	EXPECT_ERR(st_gguf_writer_set_u32(w, "general.alignment", 32), -EINVAL, "general.alignment 32 differs",
		   "general.alignment is owned by create()");
	EXPECT_ERR(st_gguf_writer_set_u32(w, "general.alignment", 64), -EINVAL, "duplicate key 'general.alignment'",
		   "create() already wrote general.alignment");
	ok(st_gguf_writer_set_u32(w, "k", 1) == 0, "set k");
	EXPECT_ERR(st_gguf_writer_set_u32(w, "k", 2), -EINVAL, "duplicate key 'k'", "duplicate key");
	EXPECT_ERR(st_gguf_writer_set_str(w, "", "x"), -EINVAL, "length 0", "empty key");
	EXPECT_ERR(st_gguf_writer_set_arr(w, "n", ST_GGUF_ARRAY, d, 1), -EINVAL, "element type 9",
		   "nested array");
	ok(st_gguf_writer_add_tensor(w, "t", ST_TYPE_F32, 1, ne8) == 0, "add tensor t");
	EXPECT_ERR(st_gguf_writer_add_tensor(w, "t", ST_TYPE_F32, 1, ne8), -EINVAL, "duplicate tensor name 't'",
		   "duplicate tensor");
	EXPECT_ERR(st_gguf_writer_add_tensor(w, "q", ST_TYPE_Q8_0, 1, ne33), -EINVAL, "block size 32",
		   "q8_0 ne[0]=33");
	EXPECT_ERR(st_gguf_writer_add_tensor(w, "z", ST_TYPE_F32, 2, ne0), -EINVAL, "ne[1] = 0", "zero dim");
	EXPECT_ERR(st_gguf_writer_add_tensor(w, "u", 4, 1, ne8), -EINVAL, "unknown type id 4", "unknown type");
	EXPECT_ERR(st_gguf_writer_add_tensor(w, "d", ST_TYPE_F32, 5, ne8), -EINVAL, "n_dims 5", "n_dims 5");
	ok(st_gguf_writer_add_tensor(w, "t2", ST_TYPE_F32, 1, ne8) == 0, "add tensor t2");
	EXPECT_ERR(st_gguf_writer_finish(w), -EINVAL, "without begin", "finish before begin");
	FILE *f = open_memstream(&buf, &len);
	ok(st_gguf_writer_begin(w, f) == 0, "begin");
	EXPECT_ERR(st_gguf_writer_set_u32(w, "late", 1), -EINVAL, "after st_gguf_writer_begin", "set after begin");
	EXPECT_ERR(st_gguf_writer_write_data(w, d, 33), -EINVAL, "tensor 't' has only 32 of 32 bytes left",
		   "write past a tensor's end");
	ok(st_gguf_writer_write_data(w, d, 32) == 0 && st_gguf_writer_write_data(w, d, 10) == 0,
	   "write t, then 10 bytes of t2");
	EXPECT_ERR(st_gguf_writer_finish(w), -EINVAL, "tensor 't2' got 10 of its 32 bytes", "finish with t2 short");
	ok(st_gguf_writer_write_data(w, d, 22) == 0 && st_gguf_writer_finish(w) == 0, "complete t2 and finish");
	EXPECT_ERR(st_gguf_writer_write_data(w, d, 1), -EINVAL, "outside begin", "write after finish");
	st_gguf_writer_destroy(w);
	fclose(f);
	struct st_gguf *g = NULL;
	int rc = st_gguf_parse_mem(buf, len, &g);
	ok(rc == 0 && g->n_tensors == 2 && g->tensors[1].offset == 64 && len == g->data_offset + 128,
	   "the file written around the errors is valid (alignment 64, %zu bytes)", len);
	st_gguf_free(g);
	free(buf);

	/* a full disk: the error surfaces as -ENOSPC from write_data or finish */
	f = fopen("/dev/full", "wb");
	if (!f) {
		tap_skip("/dev/full is not available");
		return;
	}
	static uint8_t big[1 << 20];
	const uint64_t ne_big[1] = { sizeof big };
	int rc1, rc2 = 0;
	rc = st_gguf_writer_create(&w, 3, 32);
	rc |= st_gguf_writer_add_tensor(w, "big", ST_TYPE_I8, 1, ne_big);
	rc |= st_gguf_writer_begin(w, f);
	rc1 = st_gguf_writer_write_data(w, big, sizeof big);
	if (rc1 == 0)
		rc2 = st_gguf_writer_finish(w);
	ok(rc == 0 && (rc1 == -ENOSPC || (rc1 == 0 && rc2 == -ENOSPC)) && strstr(st_last_error(), "gguf writer"),
	   "writing to /dev/full fails with -ENOSPC (write_data %d, finish %d: %s)", rc1, rc2, st_last_error());
	EXPECT_ERR(st_gguf_writer_finish(w), -EIO, "earlier write failed", "finish after a failed write");
	st_gguf_writer_destroy(w);
	fclose(f);
}

/* ---- getters ----------------------------------------------------------------- */

static void test_getters(void)
{
	struct st_gguf_writer *w;
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	uint8_t u8 = 7;
	int64_t neg = -1, big = 1ll << 40;
	double dbig = 1e300, dpi = 3.25;
	const uint32_t arr[2] = { 1, 2 };
	int rc = st_gguf_writer_create(&w, 3, 32);
	rc |= st_gguf_writer_set_val(w, "u8", ST_GGUF_U8, &u8);
	rc |= st_gguf_writer_set_val(w, "neg", ST_GGUF_I64, &neg);
	rc |= st_gguf_writer_set_val(w, "big", ST_GGUF_I64, &big);
	rc |= st_gguf_writer_set_val(w, "dbig", ST_GGUF_F64, &dbig);
	rc |= st_gguf_writer_set_val(w, "dpi", ST_GGUF_F64, &dpi);
	rc |= st_gguf_writer_set_str(w, "s", "str");
	rc |= st_gguf_writer_set_bool(w, "b", false);
	rc |= st_gguf_writer_set_arr(w, "arr", ST_GGUF_U32, arr, 2);
	rc |= st_gguf_writer_begin(w, f) | st_gguf_writer_finish(w);
	st_gguf_writer_destroy(w);
	fclose(f);
	struct st_gguf *g = NULL;
	rc |= st_gguf_parse_mem(buf, len, &g);
	ok(rc == 0, "getter file parses");
	if (!g) {
		free(buf);
		return;
	}
	uint32_t u32 = 0;
	uint64_t u64 = 0, n = 0;
	float fl = 0;
	bool bl = true;
	const char *s = NULL;
	const void *data = NULL;
	ok(st_gguf_get_u32(g, "u8", &u32) == 0 && u32 == 7, "get_u32 widens a u8");
	ok(st_gguf_get_u64(g, "big", &u64) == 0 && u64 == 1ull << 40, "get_u64 takes a non-negative i64");
	EXPECT_ERR(st_gguf_get_u32(g, "big", &u32), -EINVAL, "'big': value 1099511627776 does not fit in u32",
		   "get_u32 of 2^40");
	EXPECT_ERR(st_gguf_get_u64(g, "neg", &u64), -EINVAL, "'neg': value -1 does not fit in u64", "get_u64 of -1");
	EXPECT_ERR(st_gguf_get_u32(g, "s", &u32), -EINVAL, "'s': expected an integer (u32), found string",
		   "get_u32 of a string");
	ok(st_gguf_get_u32(g, "absent", &u32) == -ENOENT, "absent key: -ENOENT");
	ok(st_gguf_get_f32(g, "dpi", &fl) == 0 && fl == 3.25f, "get_f32 narrows an f64");
	EXPECT_ERR(st_gguf_get_f32(g, "dbig", &fl), -EINVAL, "'dbig': value 1e+300 does not fit in f32", "get_f32 of 1e300");
	EXPECT_ERR(st_gguf_get_f32(g, "u8", &fl), -EINVAL, "'u8': expected f32, found u8", "get_f32 of a u8");
	ok(st_gguf_get_bool(g, "b", &bl) == 0 && !bl, "get_bool");
	EXPECT_ERR(st_gguf_get_bool(g, "u8", &bl), -EINVAL, "'u8': expected bool, found u8", "get_bool of a u8");
	ok(st_gguf_get_str(g, "s", &s) == 0 && !strcmp(s, "str"), "get_str");
	EXPECT_ERR(st_gguf_get_str(g, "arr", &s), -EINVAL, "'arr': expected string, found an array of u32",
		   "get_str of an array");
	ok(st_gguf_get_arr(g, "arr", ST_GGUF_U32, &n, &data) == 0 && n == 2 && !memcmp(data, arr, 8), "get_arr");
	EXPECT_ERR(st_gguf_get_arr(g, "arr", ST_GGUF_I32, &n, &data), -EINVAL,
		   "'arr': expected an array of i32, found an array of u32", "get_arr with the wrong element type");
	ok(st_gguf_find_tensor(g, "nope") == NULL && st_gguf_find(g, "nope") == NULL, "find of absent names");
	ok(!strcmp(st_gguf_vtype_name(ST_GGUF_F64), "f64") && !strcmp(st_gguf_vtype_name(99), "unknown"),
	   "vtype names");
	st_gguf_free(g);
	free(buf);
}

/* ---- real files -------------------------------------------------------------- */

static void test_real_files(void)
{
	const char *dir = tap_models_dir();
	char path[1024];
	struct st_gguf *g = NULL;
	if (!dir) {
		for (int i = 0; i < 7; i++)
			tap_skip("models dir absent (set ST_MODELS_DIR to ../shared/models)");
		return;
	}
	snprintf(path, sizeof path, "%s/stories260K/stories260K.gguf", dir);
	int rc = st_gguf_open(path, &g);
	ok(rc == 0 && g->version == 3 && g->n_kv == 19 && g->n_tensors == 48 && g->data_offset == 14176 &&
	   g->alignment == 32,
	   "stories260K.gguf: v3, 19 KV, 48 tensors, data at 14176 as its README says (rc %d %s)", rc,
	   rc ? st_last_error() : "");
	if (g) {
		const char *arch = NULL;
		uint32_t nl = 0, emb = 0;
		float eps = 0;
		uint64_t n = 0;
		const void *toks = NULL;
		const struct st_gguf_tensor *t = st_gguf_find_tensor(g, "blk.4.ffn_down.weight");
		const struct st_gguf_tensor *e = st_gguf_find_tensor(g, "token_embd.weight");
		int good = st_gguf_get_str(g, "general.architecture", &arch) == 0 && !strcmp(arch, "llama") &&
			   st_gguf_get_u32(g, "llama.block_count", &nl) == 0 && nl == 5 &&
			   st_gguf_get_u32(g, "llama.embedding_length", &emb) == 0 && emb == 64 &&
			   st_gguf_get_f32(g, "llama.attention.layer_norm_rms_epsilon", &eps) == 0 && eps == 1e-5f &&
			   st_gguf_get_arr(g, "tokenizer.ggml.tokens", ST_GGUF_STRING, &n, &toks) == 0 && n == 512 &&
			   !strcmp(((const struct st_gguf_string *)toks)[1].data, "<s>") &&
			   t && t->type == ST_TYPE_F32 && t->ne[0] == 172 && t->ne[1] == 64 && t->nbytes == 172 * 64 * 4 &&
			   e && e->ne[0] == 64 && e->ne[1] == 512;
		ok(good, "stories260K.gguf: hyperparameters, 512 tokens ('<s>' = 1), shapes of ffn_down and token_embd");
		/* the same through memory */
		size_t len = 0;
		uint8_t *img = read_all(path, &len);
		struct st_gguf *gm = NULL;
		rc = img ? st_gguf_parse_mem(img, len, &gm) : -EIO;
		good = rc == 0 && gm->n_tensors == 48;
		for (uint64_t i = 0; good && i < 48; i++)
			good = gm->tensors[i].file_offset == g->tensors[i].file_offset &&
			       gm->tensors[i].nbytes == g->tensors[i].nbytes;
		ok(good, "stories260K.gguf: st_gguf_parse_mem gives the same tensor table");
		st_gguf_free(gm);
		free(img);
		st_gguf_free(g);
	} else {
		tap_skip("stories260K did not parse");
		tap_skip("stories260K did not parse");
	}
	static const char *const vocab[2][2] = {
		{ "llama2-tokenizer/ggml-vocab-llama-spm.gguf", "32000" },
		{ "gpt2-tokenizer/ggml-vocab-gpt-2.gguf", "50257" },
	};
	for (int i = 0; i < 2; i++) {
		uint64_t n = 0;
		const void *d;
		snprintf(path, sizeof path, "%s/%s", dir, vocab[i][0]);
		g = NULL;
		rc = st_gguf_open(path, &g);
		ok(rc == 0 && g->n_tensors == 0 && g->data_offset > g->file_size &&
		   st_gguf_get_arr(g, "tokenizer.ggml.tokens", ST_GGUF_STRING, &n, &d) == 0 &&
		   n == strtoull(vocab[i][1], NULL, 10),
		   "%s: vocab-only, 0 tensors, ends before its aligned data offset, %s tokens (rc %d %s)",
		   vocab[i][0], vocab[i][1], rc, rc ? st_last_error() : "");
		size_t len = 0;
		uint8_t *img = read_all(path, &len);
		struct st_gguf *gm = NULL;
		int same = img && g && st_gguf_parse_mem(img, len, &gm) == 0 && gm->n_kv == g->n_kv;
		for (uint64_t k = 0; same && k < g->n_kv; k++) {
			const struct st_gguf_kv *a = &g->kv[k], *c = &gm->kv[k];
			same = !strcmp(a->key, c->key) && a->type == c->type;
			if (same && a->type == ST_GGUF_ARRAY && a->v.arr.type == ST_GGUF_STRING) {
				const struct st_gguf_string *x = a->v.arr.data, *y = c->v.arr.data;
				for (uint64_t j = 0; same && j < a->v.arr.n; j++)
					same = x[j].len == y[j].len && !memcmp(x[j].data, y[j].data, x[j].len);
			}
		}
		ok(same, "%s: the pread path and the memory path give the same keys and strings", vocab[i][0]);
		st_gguf_free(gm);
		free(img);
		st_gguf_free(g);
	}
}

/* ---- the hostile corpus ---------------------------------------------------------- */

static void test_corpus(void)
{
	const char *path = tmp_path("case.gguf");
	int n = gguf_corpus_count();
	ok(n >= 40, "the corpus has %d hostile files (>= 40)", n);
	for (int i = 0; i < n; i++) {
		struct gguf_case c;
		struct st_gguf *g = (struct st_gguf *)&c;   /* must be reset to NULL */
		char mem_err[512], file_err[512];
		gguf_corpus_build(i, &c);
		int rm = st_gguf_parse_mem(c.b.p, c.b.n, &g);
		snprintf(mem_err, sizeof mem_err, "%s", st_last_error());
		int good = rm == c.err && g == NULL && strstr(mem_err, c.expect);
		g = (struct st_gguf *)&c;
		int rf = write_bytes(path, c.b.p, c.b.n) == 0 ? st_gguf_open(path, &g) : -EIO;
		snprintf(file_err, sizeof file_err, "%s", st_last_error());
		good = good && rf == c.err && g == NULL && strstr(file_err, c.expect) && strstr(file_err, path);
		ok(good, "%s: rejected from memory and file with %d naming the field", c.name, c.err);
		if (!good)
			diag("want %d '%s'; memory gave %d '%s'; file gave %d '%s'", c.err, c.expect, rm, mem_err,
			     rf, file_err);
		gc_free(&c.b);
	}
}

static void test_truncation(uint32_t version)
{
	struct gc b;
	struct st_gguf *g = NULL;
	const char *path = tmp_path("trunc.gguf");
	gguf_corpus_valid(&b, version);
	int rc = st_gguf_parse_mem(b.p, b.n, &g);
	ok(rc == 0 && g->n_kv == 8 && g->n_tensors == 2 && g->file_size == b.n &&
	   g->tensors[1].file_offset + g->tensors[1].nbytes == b.n,
	   "v%u: the valid corpus file parses and ends right after its last tensor (rc %d %s)", version, rc,
	   rc ? st_last_error() : "");
	st_gguf_free(g);
	if (version != 3) {
		gc_free(&b);
		return;
	}
	/* Every length 0..n-1, from memory and from a file: the first mark that
	 * covers the cut names the field. */
	int *fails = calloc(b.nm, sizeof *fails), *count = calloc(b.nm, sizeof *count);
	int unmarked = 0;
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || write(fd, b.p, b.n) != (ssize_t)b.n)
		unmarked++;
	for (size_t len = b.n; len-- > 0;) {
		size_t m = 0;
		while (m < b.nm && !(len >= b.m[m].start && len < b.m[m].end))
			m++;
		if (m == b.nm) {
			diag("length %zu is not covered by any mark", len);
			unmarked++;
			continue;
		}
		count[m]++;
		g = NULL;
		rc = st_gguf_parse_mem(b.p, len, &g);
		int bad = rc != -EINVAL || g || !strstr(st_last_error(), b.m[m].expect);
		if (bad)
			diag("memory, length %zu: want '%s', got %d '%s'", len, b.m[m].expect, rc, st_last_error());
		g = NULL;
		if (ftruncate(fd, (off_t)len) == 0)
			rc = st_gguf_open(path, &g);
		else
			rc = 0;
		if (rc != -EINVAL || g || !strstr(st_last_error(), b.m[m].expect)) {
			diag("file, length %zu: want '%s', got %d '%s'", len, b.m[m].expect, rc, st_last_error());
			bad = 1;
		}
		st_gguf_free(g);
		fails[m] += bad;
	}
	if (fd >= 0)
		close(fd);
	int fields = 0;
	for (size_t m = 0; m < b.nm; m++) {
		if (!count[m])
			continue;
		fields++;
		ok(fails[m] == 0, "truncated inside bytes %zu..%zu: all %d lengths rejected with '%s'",
		   b.m[m].start, b.m[m].end, count[m], b.m[m].expect);
	}
	ok(unmarked == 0 && fields >= 40, "every one of the %zu truncation lengths falls in one of %d named fields",
	   b.n, fields);
	free(fails);
	free(count);
	gc_free(&b);
}

/* ---- policy: gaps, order, no padding after the last tensor ------------------------ */

static void test_policy(void)
{
	struct gc b = { 0 };
	struct st_gguf *g = NULL;
	const uint64_t ne8[1] = { 8 };
	/* b at 96 (gap of 64 bytes after a), a at 0, declared out of order */
	gc_header(&b, 3, 2, 1);
	gc_kv_str(&b, "general.architecture", "llama");
	gc_tensor(&b, "b", ST_TYPE_F32, 1, ne8, 96);
	gc_tensor(&b, "a", ST_TYPE_F32, 1, ne8, 0);
	gc_pad(&b, 32);
	size_t data = b.n;
	for (int i = 0; i < 128; i++)
		gc_u8(&b, (uint8_t)i);
	int rc = st_gguf_parse_mem(b.p, b.n, &g);
	ok(rc == 0 && g->tensors[0].file_offset == data + 96 && g->tensors[1].file_offset == data,
	   "gaps between tensors and out-of-order offsets are accepted (policy, like llama.cpp) (rc %d %s)", rc,
	   rc ? st_last_error() : "");
	st_gguf_free(g);
	gc_free(&b);
	/* a vocab-only file: 0 tensors, ends right after its metadata, unaligned */
	gc_header(&b, 3, 0, 1);
	gc_kv_str(&b, "general.architecture", "llama!");
	g = NULL;
	rc = st_gguf_parse_mem(b.p, b.n, &g);
	ok(rc == 0 && b.n % 32 != 0 && g->data_offset == (b.n + 31) / 32 * 32,
	   "0 tensors and no padding after the metadata: accepted (rc %d)", rc);
	st_gguf_free(g);
	gc_free(&b);
	/* NULL arguments */
	ok(st_gguf_parse_mem(NULL, 4, &g) == -EINVAL && g == NULL, "parse_mem(NULL, 4) is -EINVAL");
	ok(st_gguf_open(tmp_path("does-not-exist.gguf"), &g) == -ENOENT && strstr(st_last_error(), "does-not-exist"),
	   "open of a missing file: -ENOENT naming the path");
	ok(st_gguf_open(tmpdir, &g) == -EINVAL && strstr(st_last_error(), "not a regular file"),
	   "open of a directory: -EINVAL");
}

/* ---- the pread path: fields across the 4 KiB buffer, reads larger than it -- */

static void test_pread_boundaries(void)
{
	static const size_t lens[] = { 4000, 95, 1, 4095, 4096, 4097, 10000, 0, 70000 };
	const size_t nl = ST_ARRAY_SIZE(lens);
	struct gc b = { 0 };
	char key[32];
	gc_header(&b, 3, 0, nl + 1);
	for (size_t i = 0; i < nl; i++) {
		char *v = malloc(lens[i] + 1);
		for (size_t j = 0; j < lens[i]; j++)
			v[j] = (char)('a' + (i * 7 + j) % 26);
		v[lens[i]] = 0;
		snprintf(key, sizeof key, "s.%zu", i);
		gc_kv_str(&b, key, v);
		free(v);
	}
	gc_kv_hdr(&b, "a.u32", ST_GGUF_ARRAY);       /* 20000 bytes of numbers */
	gc_u32(&b, ST_GGUF_U32), gc_u64(&b, 5000);
	for (uint32_t i = 0; i < 5000; i++)
		gc_u32(&b, i * 2654435761u);
	struct st_gguf *gf = NULL, *gm = NULL;
	const char *path = tmp_path("pread.gguf");
	int rc = write_bytes(path, b.p, b.n) == 0 ? st_gguf_open(path, &gf) : -EIO;
	int rm = st_gguf_parse_mem(b.p, b.n, &gm);
	int bad = rc != 0 || rm != 0;
	for (size_t i = 0; !bad && i < nl; i++) {
		snprintf(key, sizeof key, "s.%zu", i);
		const struct st_gguf_kv *a = st_gguf_find(gf, key), *c = st_gguf_find(gm, key);
		bad = !a || !c || a->v.str.len != lens[i] || c->v.str.len != lens[i] ||
		      memcmp(a->v.str.data, c->v.str.data, lens[i]) || a->v.str.data[lens[i]] ||
		      (lens[i] && a->v.str.data[lens[i] - 1] != (char)('a' + (i * 7 + lens[i] - 1) % 26));
	}
	if (!bad) {
		const struct st_gguf_kv *a = st_gguf_find(gf, "a.u32");
		const uint32_t *u = a ? a->v.arr.data : NULL;
		bad = !u || a->v.arr.n != 5000 || u[4999] != 4999u * 2654435761u || u[1234] != 1234u * 2654435761u;
	}
	ok(!bad, "strings of 0..70000 bytes across and beyond the 4 KiB read buffer: file and memory agree (rc %d %d)",
	   rc, rm);
	st_gguf_free(gf);
	st_gguf_free(gm);
	unlink(path);
	gc_free(&b);
}

/* ---- large counts ----------------------------------------------------------------- */

static void test_large_counts(void)
{
	const uint64_t nkv = 300000, nt = 100000, ne1[1] = { 1 };
	struct gc b = { 0 };
	struct st_gguf *g = NULL;
	char key[32];
	gc_header(&b, 3, 0, nkv);
	for (uint64_t i = 0; i < nkv; i++) {
		snprintf(key, sizeof key, "k.%llu", (ull)i);
		gc_kv_hdr(&b, key, ST_GGUF_U8);
		gc_u8(&b, (uint8_t)i);
	}
	double t0 = st_time_now();
	int rc = st_gguf_parse_mem(b.p, b.n, &g);
	double dt = st_time_now() - t0;
	const struct st_gguf_kv *kv = g ? st_gguf_find(g, "k.299999") : NULL;
	ok(rc == 0 && kv && kv->v.u64 == (uint8_t)299999, "%llu keys parse and look up in %.3f s", (ull)nkv, dt);
	st_gguf_free(g);
	/* the same with the last key a duplicate of the first */
	size_t last = b.n - (8 + 8 + 4 + 1);     /* "k.299999" is 8 bytes */
	memcpy(b.p + last + 8, "k.0\0\0\0\0\0", 8);
	b.p[last] = 3;
	memmove(b.p + last + 8 + 3, b.p + last + 16, 5);
	b.n -= 5;
	g = NULL;
	rc = st_gguf_parse_mem(b.p, b.n, &g);
	ok(rc == -EINVAL && strstr(st_last_error(), "kv 299999 'k.0': duplicate key (kv 0"),
	   "a duplicate among %llu keys is found (%s)", (ull)nkv, st_last_error());
	gc_free(&b);
	/* a million empty strings: one block, not a million allocations */
	gc_header(&b, 3, 0, 1);
	gc_kv_hdr(&b, "tokenizer.ggml.tokens", ST_GGUF_ARRAY);
	gc_u32(&b, ST_GGUF_STRING), gc_u64(&b, 1000000);
	for (int i = 0; i < 1000000; i++)
		gc_u64(&b, i == 999999 ? 3 : 0);
	gc_bytes(&b, "end", 3);
	g = NULL;
	t0 = st_time_now();
	rc = st_gguf_parse_mem(b.p, b.n, &g);
	dt = st_time_now() - t0;
	{
		uint64_t n = 0;
		const void *d = NULL;
		const struct st_gguf_string *s = NULL;
		int good = rc == 0 && st_gguf_get_arr(g, "tokenizer.ggml.tokens", ST_GGUF_STRING, &n, &d) == 0 &&
			   n == 1000000;
		s = d;
		good = good && s[0].len == 0 && !s[0].data[0] && s[500000].len == 0 && !strcmp(s[999999].data, "end");
		ok(good, "an array of 1000000 strings (all empty but the last) parses in %.3f s", dt);
	}
	st_gguf_free(g);
	gc_free(&b);
	gc_header(&b, 3, nt, 0);
	for (uint64_t i = 0; i < nt; i++) {
		snprintf(key, sizeof key, "t.%llu", (ull)(i == nt - 1 ? 5 : i));
		gc_tensor(&b, key, ST_TYPE_I8, 1, ne1, i * 32);
	}
	gc_pad(&b, 32);
	for (uint64_t i = 0; i < nt * 32; i++)
		gc_u8(&b, 0);
	g = NULL;
	t0 = st_time_now();
	rc = st_gguf_parse_mem(b.p, b.n, &g);
	dt = st_time_now() - t0;
	ok(rc == -EINVAL && strstr(st_last_error(), "tensor 99999 't.5': duplicate tensor name (tensor 5"),
	   "a duplicate among %llu tensor names is found in %.3f s (%s)", (ull)nt, dt, st_last_error());
	gc_free(&b);
}

int main(void)
{
	const char *base = getenv("TMPDIR");
	snprintf(tmpdir, sizeof tmpdir, "%s/test_gguf.XXXXXX", base && *base ? base : "/tmp");
	if (!mkdtemp(tmpdir))
		tap_skip_all("cannot create a temporary directory");
	test_round_trip();
	test_writer_bytes();
	test_writer_errors();
	test_getters();
	test_real_files();
	test_corpus();
	test_truncation(3);
	test_truncation(2);
	test_policy();
	test_pread_boundaries();
	test_large_counts();
	unlink(tmp_path("rt.gguf"));
	unlink(tmp_path("case.gguf"));
	unlink(tmp_path("trunc.gguf"));
	rmdir(tmpdir);
	return tap_done();
}
