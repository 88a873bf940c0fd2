/* fuzz_gguf.c: libFuzzer target for the GGUF reader (and, through a
 * re-serialisation, the writer).  Built by tests/fuzz_gguf.sh with
 *   clang -fsanitize=fuzzer,address,undefined
 * over runtime/gguf_*.c runtime/util.c runtime/types.c.
 *
 * For every input:
 *  - st_gguf_parse_mem() must return 0 or a negative errno with *out NULL;
 *  - the pread path (st_gguf_open on a memfd) must agree with it;
 *  - an accepted file must satisfy the invariants the reader promises
 *    (every tensor inside the file, aligned, non-overlapping, sizes
 *    consistent, look-ups find every key and tensor), every getter must be
 *    callable on every key;
 *  - writing it back with the writer (set_kv + add_tensor + its bytes) must
 *    give a file that parses to the same keys, tensors and bytes.
 * A violated property calls __builtin_trap(), which libFuzzer reports. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "gguf.h"
#include "types.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c) do { if (!(c)) __builtin_trap(); } while (0)

static void check_getters(const struct st_gguf *g)
{
	for (uint64_t i = 0; i < g->n_kv; i++) {
		const struct st_gguf_kv *kv = &g->kv[i];
		uint32_t u32;
		uint64_t u64, n;
		float f;
		bool b;
		const char *s;
		const void *d;
		CHECK(st_gguf_find(g, kv->key) == kv);
		(void)st_gguf_get_u32(g, kv->key, &u32);
		(void)st_gguf_get_u64(g, kv->key, &u64);
		(void)st_gguf_get_f32(g, kv->key, &f);
		(void)st_gguf_get_bool(g, kv->key, &b);
		if (st_gguf_get_str(g, kv->key, &s) == 0)
			CHECK(kv->type == ST_GGUF_STRING && s[kv->v.str.len] == 0);
		for (uint32_t t = 0; t < ST_GGUF_VTYPE_COUNT; t++)
			if (st_gguf_get_arr(g, kv->key, t, &n, &d) == 0)
				CHECK(kv->type == ST_GGUF_ARRAY && t != ST_GGUF_ARRAY && n == kv->v.arr.n);
	}
}

static void check_tensors(const struct st_gguf *g, size_t size)
{
	CHECK(g->alignment && !(g->alignment & (g->alignment - 1)));
	CHECK(g->data_offset % g->alignment == 0);
	for (uint64_t i = 0; i < g->n_tensors; i++) {
		const struct st_gguf_tensor *t = &g->tensors[i];
		const struct st_type_traits *tr = st_type_traits(t->type);
		uint64_t n = 1;
		CHECK(tr && t->n_dims >= 1 && t->n_dims <= ST_GGUF_MAX_DIMS);
		for (uint32_t d = 0; d < ST_GGUF_MAX_DIMS; d++) {
			CHECK(t->ne[d] >= 1);
			n *= t->ne[d];
		}
		CHECK(n == t->n_elements);
		CHECK(t->ne[0] % tr->block_size == 0);
		CHECK(t->nbytes == t->n_elements / tr->block_size * tr->type_size);
		CHECK(t->offset % g->alignment == 0);
		CHECK(t->file_offset == g->data_offset + t->offset);
		CHECK(t->file_offset <= size && t->nbytes <= size - t->file_offset);
		CHECK(st_gguf_find_tensor(g, t->name) == t);
		for (uint64_t j = 0; j < i && j < 64; j++) {     /* spot-check overlaps */
			const struct st_gguf_tensor *u = &g->tensors[j];
			CHECK(t->offset >= u->offset + u->nbytes || u->offset >= t->offset + t->nbytes);
		}
	}
}

/* The pread path must agree with the memory path. */
static void check_file_path(const uint8_t *data, size_t size, int rc_mem, const struct st_gguf *gm)
{
	char path[64];
	struct st_gguf *g = (struct st_gguf *)1;
	int fd = memfd_create("fuzz_gguf", MFD_CLOEXEC);
	if (fd < 0)
		return;
	if (size && write(fd, data, size) != (ssize_t)size) {
		close(fd);
		return;
	}
	snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
	int rc = st_gguf_open(path, &g);
	CHECK(rc == rc_mem);
	CHECK(rc == 0 ? g != NULL : g == NULL);
	if (rc == 0) {
		CHECK(g->n_kv == gm->n_kv && g->n_tensors == gm->n_tensors && g->data_offset == gm->data_offset);
		for (uint64_t i = 0; i < g->n_tensors; i++)
			CHECK(g->tensors[i].file_offset == gm->tensors[i].file_offset);
	}
	st_gguf_free(g);
	close(fd);
}

/* Write an accepted file back out and parse it again. */
static void check_rewrite(const struct st_gguf *g, const uint8_t *data)
{
	struct st_gguf_writer *w = NULL;
	char *buf = NULL;
	size_t len = 0;
	int rc = st_gguf_writer_create(&w, g->version, g->alignment);
	CHECK(rc == 0);
	for (uint64_t i = 0; i < g->n_kv && rc == 0; i++) {
		if (g->alignment != 32 && !strcmp(g->kv[i].key, "general.alignment"))
			continue;   /* create() wrote it */
		rc = st_gguf_writer_set_kv(w, &g->kv[i]);
	}
	for (uint64_t i = 0; i < g->n_tensors && rc == 0; i++)
		rc = st_gguf_writer_add_tensor(w, g->tensors[i].name, g->tensors[i].type,
					       g->tensors[i].n_dims, g->tensors[i].ne);
	CHECK(rc == 0);
	FILE *f = open_memstream(&buf, &len);
	CHECK(f != NULL);
	rc = st_gguf_writer_begin(w, f);
	for (uint64_t i = 0; i < g->n_tensors && rc == 0; i++)
		rc = st_gguf_writer_write_data(w, data + g->tensors[i].file_offset, g->tensors[i].nbytes);
	if (rc == 0)
		rc = st_gguf_writer_finish(w);
	CHECK(rc == 0);
	st_gguf_writer_destroy(w);
	fclose(f);
	struct st_gguf *g2 = NULL;
	CHECK(st_gguf_parse_mem(buf, len, &g2) == 0);
	CHECK(g2->n_kv == g->n_kv && g2->n_tensors == g->n_tensors && g2->alignment == g->alignment);
	for (uint64_t i = 0; i < g->n_kv; i++) {
		const struct st_gguf_kv *a = &g->kv[i], *b = st_gguf_find(g2, a->key);
		CHECK(b && b->type == a->type);
		if (a->type == ST_GGUF_STRING)
			CHECK(a->v.str.len == b->v.str.len && !memcmp(a->v.str.data, b->v.str.data, a->v.str.len));
		else if (a->type == ST_GGUF_ARRAY)
			CHECK(a->v.arr.type == b->v.arr.type && a->v.arr.n == b->v.arr.n);
		else if (a->type != ST_GGUF_F32 && a->type != ST_GGUF_F64)
			CHECK(a->v.u64 == b->v.u64);    /* NaN payloads aside, floats: bits differ only via f64 */
	}
	for (uint64_t i = 0; i < g->n_tensors; i++) {
		const struct st_gguf_tensor *a = &g->tensors[i], *b = &g2->tensors[i];
		CHECK(!strcmp(a->name, b->name) && a->type == b->type && a->nbytes == b->nbytes);
		CHECK(!memcmp(data + a->file_offset, buf + b->file_offset, a->nbytes));
	}
	st_gguf_free(g2);
	free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct st_gguf *g = (struct st_gguf *)1;
	int rc = st_gguf_parse_mem(data, size, &g);
	CHECK(rc <= 0);
	if (rc < 0) {
		CHECK(g == NULL);
		CHECK(rc == -EINVAL || rc == -EOVERFLOW || rc == -ENOMEM);
		check_file_path(data, size, rc, NULL);
		return 0;
	}
	CHECK(g && g->file_size == size);
	check_getters(g);
	check_tensors(g, size);
	check_file_path(data, size, rc, g);
	check_rewrite(g, data);
	st_gguf_free(g);
	return 0;
}
