/* test_ioring.c: the span loader (ioring/loader.h) on every path (io_uring
 * with O_DIRECT, io_uring buffered, pread, pread with O_DIRECT, mmap) on a
 * real-disk directory and on tmpfs: byte-identical placement for every
 * alignment case, byte counts of a stage, the chunk/progress hooks, XXH64
 * against xxhsum's values, and failure injection (truncated file, file
 * shrinking mid-load, destination too small, io_uring unavailable,
 * short/EAGAIN/EINTR completions, a callback aborting). */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include "gguf.h"
#include "gguf_spans.h"
#include "ioring_shrink.h"
#include "loader.h"
#include "types.h"
#include "weights.h"
#include "strata.h"
#include "tap.h"

/* The expected byte at file position i: tap_file_byte (testutil), written
 * straight from that formula and checked straight from it (independent of
 * the loader). */
#define pat tap_file_byte
#define write_file tap_write_file

/* ---- log capture ------------------------------------------------------------ */


static int count_substr(const char *hay, const char *needle)
{
	int n = 0;
	for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
		n++;
	return n;
}

/* ---- the alignment cases ------------------------------------------------------ */

#define FILE_SIZE (3u * 1024 * 1024 + 1234)  /* not a block multiple */
#define GUARD 64

struct sp { uint64_t off, len; };

static const struct sp cases[] = {
	{ 0, 4096 },                    /* at a boundary, one block */
	{ 4096, 8192 },                 /* aligned, two blocks */
	{ 4000, 200 },                  /* across a boundary, smaller than a block */
	{ 32, 100 },                    /* inside one block */
	{ 4064, 64 },                   /* ends at a boundary */
	{ 8192 + 32, 3 * 4096 },        /* 32-byte aligned, across several */
	{ 12288, 1 },                   /* one byte */
	{ 65536 + 32, 1048576 + 100 },  /* many chunks, unaligned both ends */
	{ 200000, 3 * 4096 - 32 },      /* two file-adjacent spans */
	{ 200000 + 3 * 4096 - 32, 5000 },
	{ 1500000, 0 },                 /* empty */
	{ FILE_SIZE - 5000, 5000 },     /* ends at EOF (file not a block multiple) */
	{ FILE_SIZE - 1, 1 },           /* the last byte */
	{ 2097152, 1048576 },           /* aligned, 1 MiB */
};
#define N_CASES (sizeof cases / sizeof cases[0])

struct dests {
	struct st_load_span spans[N_CASES];
	void *blocks[N_CASES];
	void *arena;
};

/* arena: st_load_layout placement (direct reads land in place);
 * otherwise one allocation per span, misaligned by 7 (all staged). */
static int dests_make(struct dests *d, bool arena)
{
	memset(d, 0, sizeof *d);
	for (size_t i = 0; i < N_CASES; i++)
		d->spans[i] = (struct st_load_span){ .file_offset = cases[i].off, .nbytes = cases[i].len,
			.dst_size = cases[i].len, .name = "case" };
	if (arena) {
		uint64_t off[N_CASES], size;
		if (st_load_layout(d->spans, N_CASES, off, &size) < 0)
			return -1;
		if (posix_memalign(&d->arena, ST_LOAD_ALIGN, size + GUARD))
			return -1;
		memset(d->arena, 0xA5, size + GUARD);
		for (size_t i = 0; i < N_CASES; i++) {
			d->spans[i].dst = (char *)d->arena + off[i];
			if (((uintptr_t)d->spans[i].dst ^ cases[i].off) & (ST_LOAD_ALIGN - 1))
				return -1;
		}
	} else {
		for (size_t i = 0; i < N_CASES; i++) {
			d->blocks[i] = malloc(cases[i].len + 7 + GUARD);
			if (!d->blocks[i])
				return -1;
			memset(d->blocks[i], 0xA5, cases[i].len + 7 + GUARD);
			d->spans[i].dst = (char *)d->blocks[i] + 7;
		}
	}
	return 0;
}

static void dests_free(struct dests *d)
{
	for (size_t i = 0; i < N_CASES; i++)
		free(d->blocks[i]);
	free(d->arena);
}

/* every byte in place; the guard after a separately allocated span intact */
static bool dests_check(const struct dests *d, char *why, size_t whylen)
{
	for (size_t i = 0; i < N_CASES; i++) {
		const unsigned char *p = d->spans[i].dst;
		for (uint64_t k = 0; k < cases[i].len; k++)
			if (p[k] != pat(cases[i].off + k)) {
				snprintf(why, whylen, "case %zu (offset %llu len %llu): byte %llu is %02x, want %02x",
					 i, (unsigned long long)cases[i].off, (unsigned long long)cases[i].len,
					 (unsigned long long)k, p[k], pat(cases[i].off + k));
				return false;
			}
		if (d->blocks[i])
			for (int k = 0; k < GUARD; k++)
				if (p[cases[i].len + k] != 0xA5) {
					snprintf(why, whylen, "case %zu: guard byte %d overwritten", i, k);
					return false;
				}
	}
	return true;
}

/* chunk callback: every byte of every span reported exactly once */
struct cover {
	unsigned char *seen[N_CASES];
	int bad;
};

static int cover_cb(void *user, size_t si, uint64_t off, uint64_t n)
{
	struct cover *c = user;
	if (si >= N_CASES || off + n > cases[si].len) {
		c->bad++;
		return 0;
	}
	for (uint64_t k = off; k < off + n; k++)
		if (c->seen[si][k]++)
			c->bad++;
	return 0;
}

struct progress {
	int calls;
	uint64_t last_done, last_total;
	int backwards;
};

static void progress_cb(void *user, uint64_t done, uint64_t total, double elapsed)
{
	struct progress *p = user;
	(void)elapsed;
	if (done < p->last_done)
		p->backwards++;
	p->calls++;
	p->last_done = done;
	p->last_total = total;
}

struct path_cfg {
	const char *name;
	enum st_io_mode mode;
	unsigned flags;
	enum st_io_mode want_mode;
	int want_direct;            /* 1, 0, or -1: either */
};

static const struct path_cfg paths[] = {
	{ "uring+direct", ST_IO_URING, 0, ST_IO_URING, 1 },
	{ "uring buffered", ST_IO_URING, ST_LOAD_FAIL_DIRECT, ST_IO_URING, 0 },
	{ "pread", ST_IO_PREAD, 0, ST_IO_PREAD, 0 },
	{ "pread+direct", ST_IO_PREAD, ST_LOAD_PREAD_DIRECT, ST_IO_PREAD, 1 },
	{ "mmap", ST_IO_MMAP, 0, ST_IO_MMAP, 0 },
	{ "forced no io_uring", ST_IO_URING, ST_LOAD_FAIL_URING, ST_IO_PREAD, 0 },
};

static uint64_t sum_lens(void)
{
	uint64_t s = 0;
	for (size_t i = 0; i < N_CASES; i++)
		s += cases[i].len;
	return s;
}

static bool have_uring;   /* io_uring works here (else its paths are skipped) */

static bool path_skip(const struct path_cfg *pc)
{
	if (pc->want_mode == ST_IO_URING && !have_uring) {
		tap_skip("%s: io_uring unavailable here", pc->name);
		return true;
	}
	return false;
}

/* strict_direct: O_DIRECT must work in dir (a real disk); tmpfs accepts it
 * only since Linux 6.6. */
/* bytes covered by at least one case */
static uint64_t union_len(void)
{
	static unsigned char cov[FILE_SIZE];
	uint64_t n = 0;
	memset(cov, 0, sizeof cov);
	for (size_t i = 0; i < N_CASES; i++)
		memset(cov + cases[i].off, 1, cases[i].len);
	for (size_t i = 0; i < FILE_SIZE; i++)
		n += cov[i];
	return n;
}

static void test_paths(const char *dir, const char *file, bool strict_direct)
{
	static const uint32_t geoms[][2] = { { 0, 0 }, { 4, 8192 } };  /* defaults; small QD and chunks */
	for (size_t pi = 0; pi < sizeof paths / sizeof paths[0]; pi++) {
		for (size_t g = 0; g < 2; g++) {
			for (int arena = 0; arena < 2; arena++) {
				const struct path_cfg *pc = &paths[pi];
				struct st_load_opts o = { .mode = pc->mode, .flags = pc->flags,
					.queue_depth = geoms[g][0], .chunk_size = geoms[g][1] };
				int want_direct = pc->want_direct == 1 && !strict_direct ? -1 : pc->want_direct;
				struct st_load_stats st;
				struct dests d;
				struct cover cov = { { 0 }, 0 };
				struct progress pr = { 0, 0, 0, 0 };
				char why[256] = "";
				int ret;
				bool good;

				if (path_skip(pc))
					continue;
				if (dests_make(&d, arena) < 0) {
					ok(0, "%s: destinations", pc->name);
					continue;
				}
				for (size_t i = 0; i < N_CASES; i++)
					cov.seen[i] = calloc(1, cases[i].len + 1);
				o.on_chunk = cover_cb;
				o.chunk_user = &cov;
				o.progress = progress_cb;
				o.progress_user = &pr;
				ret = st_load_spans(file, d.spans, N_CASES, &o, &st);
				good = ret == 0 && dests_check(&d, why, sizeof why);
				if (ret)
					snprintf(why, sizeof why, "%s", st_last_error());
				ok(good, "%s on %s (qd %u chunk %u, %s): every alignment case byte-identical%s%s",
				   pc->name, dir, geoms[g][0], geoms[g][1], arena ? "phase-matched arena" : "misaligned buffers",
				   good ? "" : ": ", good ? "" : why);
				ok(st.mode == pc->want_mode && (want_direct < 0 || st.direct == (want_direct == 1)),
				   "%s: path used is %s%s", pc->name, st_io_mode_name(st.mode), st.direct ? "+direct" : "");
				/* byte accounting */
				{
					/* O_DIRECT reads the union of the spans once (they
					 * overlap here), plus 4 KiB padding per extent */
					bool counts = st.bytes_spans == sum_lens() &&
						      st.bytes_direct + st.bytes_copied == st.bytes_spans &&
						      (st.direct ? st.bytes_read >= union_len() &&
								   st.bytes_read <= union_len() + 2 * 4096 * N_CASES
								 : st.bytes_read >= st.bytes_spans);
					if (!st.direct && pc->mode != ST_IO_MMAP)
						counts = counts && st.bytes_read == st.bytes_spans && st.bytes_copied == 0;
					if (st.direct && !arena)
						counts = counts && st.bytes_direct == 0;
					if (st.direct && arena)
						counts = counts && st.bytes_direct > st.bytes_spans / 2;
					ok(counts, "%s: byte counts (spans %llu read %llu direct %llu copied %llu)",
					   pc->name, (unsigned long long)st.bytes_spans, (unsigned long long)st.bytes_read,
					   (unsigned long long)st.bytes_direct, (unsigned long long)st.bytes_copied);
				}
				{
					bool all = cov.bad == 0;
					for (size_t i = 0; i < N_CASES && all; i++)
						for (uint64_t k = 0; k < cases[i].len; k++)
							if (cov.seen[i][k] != 1) {
								all = false;
								break;
							}
					ok(all && pr.calls >= 1 && pr.backwards == 0 && pr.last_done == sum_lens() &&
					   pr.last_total == sum_lens(),
					   "%s: chunk callback covers every byte once (%d bad), progress ends at %llu/%llu",
					   pc->name, cov.bad, (unsigned long long)pr.last_done,
					   (unsigned long long)pr.last_total);
				}
				for (size_t i = 0; i < N_CASES; i++)
					free(cov.seen[i]);
				dests_free(&d);
			}
		}
	}
}

/* ---- a stage of layers 10-19 ------------------------------------------------ */

/* A raw layout like a GGUF data section: 24 layers of 7 tensors with
 * 32-byte-aligned offsets of odd sizes, after a header of odd length. */
#define N_LAYERS 24
#define T_PER_LAYER 7

static void test_stage(const char *dir, const char *file)
{
	static const uint64_t tsize[T_PER_LAYER] = { 4096, 12096, 12096, 12096, 256, 40032, 40032 };
	uint64_t off = 1000 + 24, stage_bytes = 0;   /* "header", 32-aligned */
	struct st_load_span spans[10 * T_PER_LAYER];
	size_t n = 0;
	uint64_t dst_off[10 * T_PER_LAYER], arena_size;
	void *arena;
	uint64_t end;

	off = (off + 31) & ~31ull;
	for (int l = 0; l < N_LAYERS; l++)
		for (int t = 0; t < T_PER_LAYER; t++) {
			if (l >= 10 && l <= 19) {
				spans[n] = (struct st_load_span){ .file_offset = off, .nbytes = tsize[t],
					.dst_size = tsize[t], .name = "blk" };
				stage_bytes += tsize[t];
				n++;
			}
			off = (off + tsize[t] + 31) & ~31ull;
		}
	end = off;
	if (end > FILE_SIZE) {
		ok(0, "stage layout fits the test file");
		return;
	}
	if (st_load_layout(spans, n, dst_off, &arena_size) < 0 ||
	    posix_memalign(&arena, ST_LOAD_ALIGN, arena_size)) {
		ok(0, "stage arena");
		return;
	}
	for (size_t i = 0; i < n; i++)
		spans[i].dst = (char *)arena + dst_off[i];
	for (size_t pi = 0; pi < 5; pi++) {
		struct st_load_opts o = { .mode = paths[pi].mode, .flags = paths[pi].flags };
		struct st_load_stats st;
		bool good;
		if (path_skip(&paths[pi])) {
			tap_skip("(byte count)");
			continue;
		}
		int ret;
		memset(arena, 0, arena_size);
		ret = st_load_spans(file, spans, n, &o, &st);
		good = ret == 0;
		for (size_t i = 0; i < n && good; i++)
			for (uint64_t k = 0; k < spans[i].nbytes; k++)
				if (((unsigned char *)spans[i].dst)[k] != pat(spans[i].file_offset + k)) {
					good = false;
					break;
				}
		ok(good, "%s on %s: layers 10-19 (%zu tensors, %llu bytes) placed correctly%s%s", paths[pi].name,
		   dir, n, (unsigned long long)stage_bytes, ret ? ": " : "", ret ? st_last_error() : "");
		/* only the stage's bytes: exact when buffered, plus at most one
		 * 4 KiB block at each end of the (contiguous) stage with O_DIRECT */
		ok(st.bytes_spans == stage_bytes &&
		   (st.direct ? st.bytes_read >= stage_bytes && st.bytes_read <= stage_bytes + 2 * 4096 + 32 * n
			      : st.bytes_read == stage_bytes),
		   "%s: read %llu bytes for a stage of %llu (file %llu)", paths[pi].name,
		   (unsigned long long)st.bytes_read, (unsigned long long)stage_bytes, (unsigned long long)FILE_SIZE);
	}
	free(arena);
}

/* ---- a stage of a generated GGUF --------------------------------------------- */

static unsigned char tbyte(size_t ti, uint64_t k)
{
	return (unsigned char)(ti * 131u + k * 7u + (k >> 9));
}

/* 24 layers of (attn_norm F32, attn_q Q8_0, ffn_up Q4_0) + token_embd,
 * output_norm, output: the spans of layers 10-19 are exactly those 30
 * tensors and reading them reads only their bytes. */
static void test_gguf_stage(const char *dir)
{
	char path[2200];
	struct st_gguf_writer *w = NULL;
	struct st_gguf *g = NULL;
	struct st_load_span *spans = NULL;
	size_t n = 0, nt = 0;
	uint64_t ne_norm[1] = { 96 }, ne_q[2] = { 96, 96 }, ne_up[2] = { 96, 200 }, ne_emb[2] = { 96, 100 };
	FILE *f;
	bool good = true;
	uint32_t n_layer = 0;

	snprintf(path, sizeof path, "%s/stage.gguf", dir);
	f = fopen(path, "wb");
	if (!f || st_gguf_writer_create(&w, 3, 32) < 0) {
		ok(0, "gguf writer: %s", st_last_error());
		if (f)
			fclose(f);
		return;
	}
	st_gguf_writer_set_str(w, "general.architecture", "llama");
	st_gguf_writer_set_u32(w, "llama.block_count", 24);
	st_gguf_writer_add_tensor(w, "token_embd.weight", ST_TYPE_Q8_0, 2, ne_emb);
	for (int l = 0; l < 24; l++) {
		char name[64];
		snprintf(name, sizeof name, "blk.%d.attn_norm.weight", l);
		st_gguf_writer_add_tensor(w, name, ST_TYPE_F32, 1, ne_norm);
		snprintf(name, sizeof name, "blk.%d.attn_q.weight", l);
		st_gguf_writer_add_tensor(w, name, ST_TYPE_Q8_0, 2, ne_q);
		snprintf(name, sizeof name, "blk.%d.ffn_up.weight", l);
		st_gguf_writer_add_tensor(w, name, ST_TYPE_Q4_0, 2, ne_up);
	}
	st_gguf_writer_add_tensor(w, "output_norm.weight", ST_TYPE_F32, 1, ne_norm);
	st_gguf_writer_add_tensor(w, "output.weight", ST_TYPE_Q8_0, 2, ne_emb);
	good = st_gguf_writer_begin(w, f) == 0;
	nt = 3 + 24 * 3;
	for (size_t ti = 0; ti < nt && good; ti++) {
		static const uint64_t sizes_blk[3] = { 96 * 4, 96 * 96 / 32 * 34, 96 * 200 / 32 * 18 };
		uint64_t sz = ti == 0 || ti == nt - 1 ? 96 * 100 / 32 * 34 : ti == nt - 2 ? 96 * 4 : sizes_blk[(ti - 1) % 3];
		unsigned char *buf = malloc(sz);
		for (uint64_t k = 0; buf && k < sz; k++)
			buf[k] = tbyte(ti, k);
		good = buf && st_gguf_writer_write_data(w, buf, sz) == 0;
		free(buf);
	}
	good = good && st_gguf_writer_finish(w) == 0;
	st_gguf_writer_destroy(w);
	good = (fclose(f) == 0) && good;
	if (!good || st_gguf_open(path, &g) < 0) {
		ok(0, "generated GGUF opens: %s", st_last_error());
		unlink(path);
		return;
	}
	st_load_gguf_layers(g, &n_layer);
	ok(n_layer == 24, "layer count from llama.block_count: %u", n_layer);
	good = st_load_gguf_stage_spans(g, 10, 19, 0, &spans, &n) == 0;
	ok(good && n == 30, "layers 10-19: %zu spans (want 30)", n);
	for (size_t i = 0; i < n; i++) {
		long l = strtol(spans[i].name + 4, NULL, 10);
		good = good && !strncmp(spans[i].name, "blk.", 4) && l >= 10 && l <= 19;
	}
	ok(good, "every span of the stage is a blk.10..19 tensor");
	{
		uint64_t *off = calloc(n, sizeof *off), size = 0, stage_bytes = 0;
		void *arena = NULL;
		if (off && st_load_layout(spans, n, off, &size) == 0 && !posix_memalign(&arena, ST_LOAD_ALIGN, size)) {
			for (size_t i = 0; i < n; i++) {
				spans[i].dst = (char *)arena + off[i];
				spans[i].dst_size = spans[i].nbytes;
				stage_bytes += spans[i].nbytes;
			}
			for (size_t pi = 0; pi < 5; pi++) {
				struct st_load_opts o = { .mode = paths[pi].mode, .flags = paths[pi].flags };
				struct st_load_stats st;
				int ret;
				if (path_skip(&paths[pi]))
					continue;
				memset(arena, 0, size);
				ret = st_load_spans(path, spans, n, &o, &st);
				good = ret == 0;
				for (size_t i = 0; i < n && good; i++) {
					size_t ti = 0;
					while (ti < g->n_tensors && strcmp(g->tensors[ti].name, spans[i].name))
						ti++;
					for (uint64_t k = 0; k < spans[i].nbytes && good; k++)
						good = ((unsigned char *)spans[i].dst)[k] == tbyte(ti, k);
				}
				ok(good && st.bytes_spans == stage_bytes &&
				   (st.direct ? st.bytes_read <= stage_bytes + 2 * 4096 : st.bytes_read == stage_bytes),
				   "%s: GGUF layers 10-19: bytes placed, read %llu for a stage of %llu (file %llu)%s%s",
				   paths[pi].name, (unsigned long long)st.bytes_read, (unsigned long long)stage_bytes,
				   (unsigned long long)g->file_size, ret ? ": " : "", ret ? st_last_error() : "");
			}
		} else {
			ok(0, "stage arena");
		}
		free(arena);
		free(off);
	}
	free(spans);
	good = st_load_gguf_stage_spans(g, 0, 0, 0, &spans, &n) == 0;
	ok(good && n == 4 && !strcmp(spans[0].name, "token_embd.weight"), "layer 0 takes token_embd too (%zu spans)", n);
	free(spans);
	good = st_load_gguf_stage_spans(g, 23, 23, 0, &spans, &n) == 0;
	ok(good && n == 5, "the last layer takes output_norm and output too (%zu spans)", n);
	free(spans);
	ok(st_load_gguf_stage_spans(g, 20, 24, 0, &spans, &n) == -EINVAL, "layers 20-24 of 24 rejected (%s)",
	   st_last_error());
	st_gguf_free(g);
	unlink(path);
}

/* ---- failure injection ---------------------------------------------------------- */


static int abort_cb(void *user, size_t si, uint64_t off, uint64_t n)
{
	int *calls = user;
	(void)si, (void)off, (void)n;
	return ++*calls == 3 ? -ECANCELED : 0;
}

static void test_failures(const char *dir, const char *file)
{
	char path[4200];
	unsigned char *buf = malloc(FILE_SIZE);
	struct st_load_stats st;
	int ret;

	snprintf(path, sizeof path, "%s/shrink.bin", dir);

	/* truncated file: a span past the end */
	for (size_t pi = 0; pi < 5; pi++) {
		struct st_load_opts o = { .mode = paths[pi].mode, .flags = paths[pi].flags };
		struct st_load_span s = { FILE_SIZE - 100, 200, buf, FILE_SIZE, 0, "output.weight" };
		if (path_skip(&paths[pi]))
			continue;
		ret = st_load_spans(file, &s, 1, &o, &st);
		ok(ret == -EIO && strstr(st_last_error(), "truncated") && strstr(st_last_error(), "output.weight"),
		   "%s: span past EOF -> -EIO naming the span (%d: %s)", paths[pi].name, ret, st_last_error());
	}
	/* destination too small */
	{
		struct st_load_span s = { 4096, 10000, buf, 9999, 0, "blk.3.ffn_up.weight" };
		ret = st_load_spans(file, &s, 1, NULL, &st);
		ok(ret == -EINVAL && strstr(st_last_error(), "destination holds 9999") &&
		   strstr(st_last_error(), "blk.3.ffn_up.weight"),
		   "destination too small -> -EINVAL (%s)", st_last_error());
		s.dst = NULL;
		s.dst_size = 10000;
		ret = st_load_spans(file, &s, 1, NULL, &st);
		ok(ret == -EINVAL, "no destination -> -EINVAL (%s)", st_last_error());
		s = (struct st_load_span){ UINT64_MAX - 10, 100, buf, 100, 0, NULL };
		ret = st_load_spans(file, &s, 1, NULL, &st);
		ok(ret == -EINVAL && strstr(st_last_error(), "overflows"), "offset overflow -> -EINVAL (%s)",
		   st_last_error());
	}
	/* the file shrinks while loading: truncate it from the first chunk
	 * callback; with one read in flight the later reads find EOF */
	for (size_t pi = 0; pi < 5; pi++) {
		struct st_load_opts o = { .mode = paths[pi].mode, .flags = paths[pi].flags,
			.queue_depth = 1, .chunk_size = 8192 };
		struct shrink sh = { path, 300000, 0 };
		struct st_load_span s[2] = { { 0, 100000, buf, 100000, 0, "first" },
					     { 100000 + 32, 500000, buf + 100032, 500000, 0, "second" } };
		if (path_skip(&paths[pi]))
			continue;
		if (paths[pi].mode == ST_IO_MMAP) {
			/* a mapping cannot survive truncation inside a span (SIGBUS);
			 * the loader checks the size before each span */
			sh.to = 50000;
			s[0].nbytes = 8000;
		}
		if (write_file(path, FILE_SIZE)) {
			ok(0, "write %s", path);
			continue;
		}
		o.on_chunk = shrink_cb;
		o.chunk_user = &sh;
		ret = st_load_spans(path, s, 2, &o, &st);
		ok(ret == -EIO && strstr(st_last_error(), "shrank") && strstr(st_last_error(), "second"),
		   "%s: file shrinking mid-load -> -EIO naming the span (%d: %s)", paths[pi].name, ret,
		   st_last_error());
	}
	unlink(path);

	/* simulated short reads, -EAGAIN, -EINTR: resubmitted, data intact */
	{
		static const enum st_load_fault faults[] = { ST_LOAD_FAULT_SHORT, ST_LOAD_FAULT_EAGAIN,
							     ST_LOAD_FAULT_EINTR };
		static const char *const fname[] = { "short reads", "-EAGAIN", "-EINTR" };
		for (size_t pi = 0; pi < 4; pi++)
			for (size_t f = 0; f < 3; f++) {
				struct st_load_opts o = { .mode = paths[pi].mode, .flags = paths[pi].flags,
					.queue_depth = 4, .chunk_size = 16384, .fault = faults[f], .fault_every = 3 };
				struct dests d;
				char why[256] = "";
				bool good;
				if (path_skip(&paths[pi]))
					continue;
				if (dests_make(&d, pi % 2 == 0) < 0)
					continue;
				ret = st_load_spans(file, d.spans, N_CASES, &o, &st);
				good = ret == 0 && dests_check(&d, why, sizeof why) &&
				       (f == 0 ? st.n_short > 0 : st.n_retries > 0);
				ok(good, "%s: every 3rd completion %s: resubmitted (%llu short, %llu retries) %s%s",
				   paths[pi].name, fname[f], (unsigned long long)st.n_short,
				   (unsigned long long)st.n_retries, ret ? st_last_error() : "", why);
				dests_free(&d);
			}
	}
	/* destinations that O_DIRECT cannot target: restart, all staged */
	for (size_t pi = 0; pi < 4; pi += 3) {
		struct st_load_opts o = { .mode = paths[pi].mode, .flags = paths[pi].flags,
			.fault = ST_LOAD_FAULT_EFAULT_DIRECT };
		struct dests d;
		char why[256] = "";
		bool good;
		if (path_skip(&paths[pi]))
			continue;
		if (dests_make(&d, true) < 0)
			continue;
		ret = st_load_spans(file, d.spans, N_CASES, &o, &st);
		good = ret == 0 && dests_check(&d, why, sizeof why) && st.bytes_direct == 0 &&
		       st.bytes_copied == st.bytes_spans;
		ok(good, "%s: EFAULT into the destinations -> restarted through staging, data intact (%s%s)",
		   paths[pi].name, ret ? st_last_error() : "", why);
		dests_free(&d);
	}
	/* endless -EAGAIN gives up with a message */
	{
		struct st_load_opts o = { .fault = ST_LOAD_FAULT_EAGAIN, .fault_every = 1 };
		struct st_load_span s = { 0, 10000, buf, 10000, 0, NULL };
		ret = st_load_spans(file, &s, 1, &o, &st);
		ok(ret == -EIO && strstr(st_last_error(), "times in a row"), "endless -EAGAIN -> -EIO (%s)",
		   st_last_error());
	}
	/* a callback stopping the load, with reads in flight */
	for (size_t pi = 0; pi < 5; pi++) {
		int calls = 0;
		struct st_load_opts o = { .mode = paths[pi].mode, .flags = paths[pi].flags,
			.chunk_size = 8192, .on_chunk = abort_cb, .chunk_user = &calls };
		struct st_load_span s = { 32, 1000000, buf, 1000000, 0, NULL };
		if (path_skip(&paths[pi]))
			continue;
		ret = st_load_spans(file, &s, 1, &o, &st);
		ok(ret == -ECANCELED && calls == 3, "%s: chunk callback returning -ECANCELED stops the load (%d)",
		   paths[pi].name, ret);
	}
	free(buf);
}

/* ---- the watermark under the EFAULT restart and ST_LOAD_VERIFY ---------------- */

/* The destination of a one-span load, mapped at file offset 0's phase: the
 * on_ready hook write-protects every page below each mark it is given, a
 * SIGSEGV handler counts writes that hit them (and lifts the protection so
 * the load can go on): a byte below a published mark written again is a
 * write a consumer on another thread could race with. */
static unsigned char *wm_arena;
static size_t wm_size;
static volatile sig_atomic_t wm_writes;

static void wm_segv(int sig, siginfo_t *si, void *uc)
{
	unsigned char *a = si->si_addr;
	(void)uc;
	if (!wm_arena || a < wm_arena || a >= wm_arena + wm_size) {
		signal(sig, SIG_DFL);           /* a real crash: let it happen */
		return;
	}
	wm_writes++;
	mprotect(wm_arena, wm_size, PROT_READ | PROT_WRITE);
}

struct wm_ready {
	uint64_t end;                   /* file offset where the span ends */
	uint64_t first, last;           /* marks seen */
	uint64_t before_fault;          /* the mark the reads before the fault give */
	int calls, lower, hit;
};

static int wm_ready_cb(void *user, uint64_t mark)
{
	struct wm_ready *r = user;
	uint64_t below = mark < r->end ? mark : r->end;
	if (r->calls && mark < r->last)
		r->lower++;
	if (!r->calls)
		r->first = mark;
	r->calls++;
	r->last = mark;
	r->hit += mark == r->before_fault;
	below &= ~(uint64_t)(ST_LOAD_ALIGN - 1);        /* whole pages (arena = file offset 0) */
	if (below)
		mprotect(wm_arena, below, PROT_READ);
	return 0;
}

static void test_efault_watermark(const char *file)
{
	const uint64_t off = 100, len = 600000;
	struct sigaction sa, old;

	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = wm_segv;
	sa.sa_flags = SA_SIGINFO;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGSEGV, &sa, &old);
	wm_size = (size_t)((off + len + ST_LOAD_ALIGN - 1) & ~(uint64_t)(ST_LOAD_ALIGN - 1));
	for (size_t pi = 0; pi < 4; pi += 3) {
		/* one read in flight: the staged head and three 16 KiB reads
		 * straight into the destination complete, the fifth completion
		 * (a direct read) fails with EFAULT */
		struct st_load_opts o = { .mode = paths[pi].mode, .flags = paths[pi].flags, .queue_depth = 1,
			.chunk_size = 16384, .fault = ST_LOAD_FAULT_EFAULT_DIRECT, .fault_every = 5 };
		struct wm_ready r = { .end = off + len, .before_fault = 4096 + 3 * 16384 };
		struct st_load_stats st;
		struct st_load_span s;
		uint64_t bad = UINT64_MAX;
		int ret;

		if (path_skip(&paths[pi]))
			continue;
		wm_arena = mmap(NULL, wm_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (wm_arena == MAP_FAILED) {
			wm_arena = NULL;
			ok(0, "%s: mmap of the destination", paths[pi].name);
			continue;
		}
		wm_writes = 0;
		s = (struct st_load_span){ off, len, wm_arena + off, len, 0, "blk.0.ffn_down.weight" };
		o.on_ready = wm_ready_cb;
		o.ready_user = &r;
		ret = st_load_spans(file, &s, 1, &o, &st);
		mprotect(wm_arena, wm_size, PROT_READ | PROT_WRITE);
		for (uint64_t k = 0; k < len && bad == UINT64_MAX; k++)
			if (wm_arena[off + k] != pat(off + k))
				bad = k;
		ok(ret == 0 && bad == UINT64_MAX && st.direct,
		   "%s: EFAULT after 4 reads with on_ready: restarted, bytes identical to the file (%s, first bad byte %lld)",
		   paths[pi].name, ret ? st_last_error() : "ok", bad == UINT64_MAX ? -1LL : (long long)bad);
		ok(wm_writes == 0 && r.first == 4096 && r.hit == 1 && r.last == UINT64_MAX && r.lower == 0,
		   "%s: no byte below a published mark written again (%d writes; marks from %llu, %s %llu before the fault, %d calls, %d lower)",
		   paths[pi].name, (int)wm_writes, (unsigned long long)r.first, r.hit ? "reached" : "NOT",
		   (unsigned long long)r.before_fault, r.calls, r.lower);
		ok(st.bytes_direct >= 3 * 16384 && st.bytes_direct + st.bytes_copied == st.bytes_spans &&
		   st.bytes_read < len + 4 * 16384,
		   "%s: the reads before the fault are kept (direct %llu copied %llu read %llu of %llu)",
		   paths[pi].name, (unsigned long long)st.bytes_direct, (unsigned long long)st.bytes_copied,
		   (unsigned long long)st.bytes_read, (unsigned long long)len);
		munmap(wm_arena, wm_size);
		wm_arena = NULL;
	}
	sigaction(SIGSEGV, &old, NULL);
}

/* Spans of the pattern with their hashes from the formula (not the loader). */
#define VR_N 46
#define VR_LEN 65536u

struct vr_ready {
	const struct st_load_span *s;   /* by file offset */
	size_t n;
	int calls, cancel_at, lower, off_span, unverified;
	uint64_t last;
	size_t checked;                 /* spans below the marks so far, checked */
};

/* marks only at span starts (or the end), never over a wrong hash */
static int vr_ready_cb(void *user, uint64_t mark)
{
	struct vr_ready *r = user;
	bool at_start = mark == UINT64_MAX;
	if (r->calls && mark < r->last)
		r->lower++;
	r->last = mark;
	for (size_t i = 0; i < r->n; i++)
		at_start = at_start || r->s[i].file_offset == mark;
	for (; r->checked < r->n && r->s[r->checked].file_offset + r->s[r->checked].nbytes <= mark; r->checked++) {
		const struct st_load_span *s = &r->s[r->checked];
		const unsigned char *p = s->dst;
		for (uint64_t k = 0; k < s->nbytes; k++)
			if (p[k] != pat(s->file_offset + k)) {
				r->unverified++;
				break;
			}
	}
	r->off_span += !at_start;
	return ++r->calls == r->cancel_at ? -ECANCELED : 0;
}

static void test_verify_ready(const char *file)
{
	/* the destinations have the phase of their file offsets: O_DIRECT
	 * reads land in place */
	static unsigned char store[VR_N * VR_LEN + 2 * ST_LOAD_ALIGN] __attribute__((aligned(ST_LOAD_ALIGN)));
	unsigned char *const buf = store + 32;
	const size_t vr_bytes = (size_t)VR_N * VR_LEN;
	struct st_load_span s[VR_N];
	struct st_load_stats st;
	const uint64_t base = 4096 + 32;
	int ret;

	for (size_t i = 0; i < VR_N; i++) {
		unsigned char *p = buf + i * VR_LEN;
		for (uint32_t k = 0; k < VR_LEN; k++)
			p[k] = pat(base + i * VR_LEN + k);
		s[i] = (struct st_load_span){ base + i * VR_LEN, VR_LEN, p, VR_LEN, st_hash64(p, VR_LEN, 0),
					      i == 20 ? "blk.5.attn_k.weight" : "t" };
	}
	for (size_t pi = 0; pi < 5; pi++) {
		const struct path_cfg *pc = &paths[pi];
		struct st_load_opts o = { .mode = pc->mode, .flags = pc->flags | ST_LOAD_VERIFY, .queue_depth = 2,
			.chunk_size = 16384, .on_ready = vr_ready_cb };
		struct vr_ready r = { .s = s, .n = VR_N };
		bool same;

		if (path_skip(pc))
			continue;
		/* all in: the mark rises over verified spans only, to the end */
		memset(buf, 0, vr_bytes);
		o.ready_user = &r;
		ret = st_load_spans(file, s, VR_N, &o, &st);
		same = true;
		for (size_t i = 0; i < VR_N && same; i++)
			same = st_hash64(s[i].dst, VR_LEN, 0) == s[i].hash;
		ok(ret == 0 && same && r.last == UINT64_MAX && r.calls > VR_N / 2 && !r.lower && !r.off_span &&
		   !r.unverified,
		   "%s: verified load with on_ready: %d calls, marks at span starts (%d not), none over an unchecked span (%d), ends at the end (%s)",
		   pc->name, r.calls, r.off_span, r.unverified, ret ? st_last_error() : "ok");

		/* cancelled by the hook's third call: stops early */
		memset(buf, 0, vr_bytes);
		r = (struct vr_ready){ .s = s, .n = VR_N, .cancel_at = 3 };
		ret = st_load_spans(file, s, VR_N, &o, &st);
		ok(ret == -ECANCELED && r.calls == 3 && st.bytes_read < vr_bytes / 4 && !r.unverified,
		   "%s: verified load cancelled by on_ready -> -ECANCELED after %llu of %zu bytes (%d: %s)",
		   pc->name, (unsigned long long)st.bytes_read, vr_bytes, ret, st_last_error());

		/* one big span: cancelled while its bytes arrive (the hook is
		 * called with the mark unchanged) */
		{
			struct st_load_span big = { base, vr_bytes, buf, vr_bytes, s[0].hash, "token_embd.weight" };
			r = (struct vr_ready){ .s = &big, .n = 1, .cancel_at = 2 };
			ret = st_load_spans(file, &big, 1, &o, &st);
			ok(ret == -ECANCELED && r.calls == 2 && r.last == base && st.bytes_read < vr_bytes / 4,
			   "%s: verified load of one %zu-byte span cancelled while it arrives after %llu bytes (%d)",
			   pc->name, vr_bytes, (unsigned long long)st.bytes_read, ret);
		}

		/* a wrong hash: -EBADMSG naming the span, no mark over it */
		memset(buf, 0, vr_bytes);
		s[20].hash ^= 1;
		r = (struct vr_ready){ .s = s, .n = VR_N };
		ret = st_load_spans(file, s, VR_N, &o, &st);
		ok(ret == -EBADMSG && strstr(st_last_error(), "blk.5.attn_k.weight") && r.last <= s[20].file_offset &&
		   !r.unverified,
		   "%s: verified load with on_ready, a wrong hash -> -EBADMSG naming the tensor, last mark %llu <= %llu (%s)",
		   pc->name, (unsigned long long)r.last, (unsigned long long)s[20].file_offset, st_last_error());
		s[20].hash ^= 1;

		/* EFAULT into the destinations after 9 reads (the staged head and
		 * 8 x 16 KiB direct: spans 0 and 1 in and checked): the restart
		 * keeps the verified prefix (its 8 direct reads count), the marks
		 * still rise over checked spans only */
		if (pc->flags & ST_LOAD_FAIL_DIRECT || pc->mode == ST_IO_MMAP || (pc->mode == ST_IO_PREAD &&
										  !(pc->flags & ST_LOAD_PREAD_DIRECT)))
			continue;
		memset(buf, 0, vr_bytes);
		r = (struct vr_ready){ .s = s, .n = VR_N };
		o.queue_depth = 1;
		o.fault = ST_LOAD_FAULT_EFAULT_DIRECT;
		o.fault_every = 10;
		ret = st_load_spans(file, s, VR_N, &o, &st);
		same = true;
		for (size_t i = 0; i < VR_N && same; i++)
			same = st_hash64(s[i].dst, VR_LEN, 0) == s[i].hash;
		ok(ret == 0 && same && st.direct && st.bytes_direct == 8 * 16384 && r.last == UINT64_MAX && !r.lower &&
		   !r.off_span && !r.unverified,
		   "%s: verified load with on_ready and an EFAULT restart: bytes identical, marks over checked spans only (%s; same %d direct %d/%llu last %llx lower %d off %d unverified %d)",
		   pc->name, ret ? st_last_error() : "ok", same, st.direct, (unsigned long long)st.bytes_direct,
		   (unsigned long long)r.last, r.lower, r.off_span, r.unverified);
	}
}

/* io_uring unavailable: forced by flag and by the environment; announced once */
static void test_fallback_announce(const char *file)
{
	unsigned char buf[5000];
	struct st_load_span s = { 4000, sizeof buf, buf, sizeof buf, 0, NULL };
	struct st_load_opts o = { .mode = ST_IO_AUTO, .flags = ST_LOAD_FAIL_URING };
	struct st_load_stats st;
	bool good = true;
	int ret;

	ret = st_load_spans(file, &s, 1, &o, &st);
	for (size_t k = 0; k < sizeof buf; k++)
		good = good && buf[k] == pat(4000 + k);
	ok(ret == 0 && st.mode == ST_IO_PREAD && good, "ST_LOAD_FAIL_URING: falls back to pread, data intact");
	setenv("ST_IO_URING_DISABLE", "1", 1);
	memset(buf, 0, sizeof buf);
	ret = st_load_spans(file, &s, 1, NULL, &st);
	unsetenv("ST_IO_URING_DISABLE");
	good = true;
	for (size_t k = 0; k < sizeof buf; k++)
		good = good && buf[k] == pat(4000 + k);
	ok(ret == 0 && st.mode == ST_IO_PREAD && good, "ST_IO_URING_DISABLE=1: falls back to pread");
	o.flags = ST_LOAD_FAIL_DIRECT;
	ret = st_load_spans(file, &s, 1, &o, &st);
	ret |= st_load_spans(file, &s, 1, &o, &st);
	/* this runs before any other forced fallback in the process */
	ok(ret == 0 && count_substr(tap_logbuf, "io_uring unavailable") == 1 &&
	   (!have_uring || count_substr(tap_logbuf, "O_DIRECT unavailable") == 1),
	   "each fallback is announced once at INFO (io_uring %d, O_DIRECT %d)",
	   count_substr(tap_logbuf, "io_uring unavailable"), count_substr(tap_logbuf, "O_DIRECT unavailable"));
	st_set_log(NULL, NULL, ST_LOG_WARN);
	o = (struct st_load_opts){ .mode = ST_IO_URING };
	ret = st_load_spans(file, &s, 1, &o, &st);
	if (!have_uring)
		tap_skip("io_uring unavailable on this machine");
	else
		ok(ret == 0 && st.mode == ST_IO_URING && st.direct,
	   "without forcing, this machine loads with io_uring+O_DIRECT (%s%s)", st_io_mode_name(st.mode),
	   st.direct ? "+direct" : "");
}

/* ST_IO_AUTO reads through the page cache when it holds the bytes, and
 * around it (O_DIRECT) when it does not. */
static void test_auto_cache(const char *dir)
{
	char path[2200];
	unsigned char *buf = malloc(600000);
	struct st_load_span s = { 100032, 600000, buf, 600000, 0, "t" };
	struct st_load_stats st;
	bool good = true;
	int fd, ret;

	snprintf(path, sizeof path, "%s/auto.bin", dir);
	if (!have_uring) {
		tap_skip("io_uring unavailable");
		tap_skip("io_uring unavailable");
		free(buf);
		return;
	}
	if (!buf || write_file(path, 1000000)) {
		ok(0, "write %s", path);
		free(buf);
		return;
	}
	ret = st_load_spans(path, &s, 1, NULL, &st);
	for (uint64_t k = 0; k < s.nbytes && good; k++)
		good = buf[k] == pat(s.file_offset + k);
	ok(ret == 0 && good && st.mode == ST_IO_URING && !st.direct && st.bytes_read == s.nbytes,
	   "auto, file in the page cache: buffered io_uring (direct %d, read %llu)", st.direct,
	   (unsigned long long)st.bytes_read);
	fd = open(path, O_RDONLY);
	if (fd >= 0) {
		fsync(fd);
		posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
		close(fd);
	}
	memset(buf, 0, 600000);
	ret = st_load_spans(path, &s, 1, NULL, &st);
	good = true;
	for (uint64_t k = 0; k < s.nbytes && good; k++)
		good = buf[k] == pat(s.file_offset + k);
	ok(ret == 0 && good && st.mode == ST_IO_URING && st.direct,
	   "auto, pages dropped: io_uring with O_DIRECT (direct %d)", st.direct);
	unlink(path);
	free(buf);
}

/* Hash files: written and read back (a name with a space, a long comment
 * line, "-" for an unnamed span); a malformed line, a conflicting second
 * hash, a tensor without a line and a directory are errors. */
static void test_hash_files(const char *dir)
{
	static unsigned char data[3][100];
	struct st_load_span sp[3] = {
		{ .file_offset = 0, .nbytes = 100, .dst = data[0], .name = "blk.0.attn q" },
		{ .file_offset = 100, .nbytes = 100, .dst = data[1], .name = "blk.0.ffn" },
		{ .file_offset = 200, .nbytes = 100, .dst = data[2], .name = NULL },
	};
	struct st_load_span rd[3];
	char path[2300], longc[700];
	FILE *f;
	int r;
	for (int i = 0; i < 3; i++)
		for (int k = 0; k < 100; k++)
			data[i][k] = (unsigned char)(i * 31 + k);
	snprintf(path, sizeof path, "%s/h.txt", dir);
	r = st_load_hashes_write(path, sp, 3);
	memcpy(rd, sp, sizeof rd);
	for (int i = 0; i < 3; i++)
		rd[i].hash = 0;
	memset(longc, 'x', sizeof longc - 1);
	longc[0] = '#';
	longc[sizeof longc - 1] = 0;
	f = fopen(path, "a");
	if (f) {
		fprintf(f, "%s\n\n", longc);
		fclose(f);
	}
	r = r ? r : st_load_hashes_read(path, rd, 3);
	ok(r == 0 && rd[0].hash == st_hash64(data[0], 100, 0) && rd[1].hash == st_hash64(data[1], 100, 0) &&
		   rd[2].hash == st_hash64(data[2], 100, 0),
	   "hash file round trip: a name with a space, an unnamed span, a 700-char comment (%s)",
	   r ? st_last_error() : "ok");
	f = fopen(path, "a");
	if (f) {
		fprintf(f, "%016llx 100 100 blk.0.ffn\n", (unsigned long long)(rd[1].hash ^ 1));
		fclose(f);
	}
	r = st_load_hashes_read(path, rd, 3);
	ok(r == -EINVAL && strstr(st_last_error(), "second, different hash for blk.0.ffn"),
	   "a conflicting second hash for a tensor is an error (%s)", st_last_error());
	f = fopen(path, "w");
	if (f) {
		fprintf(f, "# strata tensor hashes v1\n0123 0 100\n");
		fclose(f);
	}
	r = st_load_hashes_read(path, rd, 3);
	ok(r == -EINVAL && strstr(st_last_error(), ":2: malformed"), "a line without a name is malformed, with its number (%s)",
	   st_last_error());
	f = fopen(path, "w");
	if (f) {
		fprintf(f, "%016llx 0 100 blk.0.attn q\n", (unsigned long long)rd[0].hash);
		fclose(f);
	}
	r = st_load_hashes_read(path, rd, 3);
	ok(r == -ENOENT && strstr(st_last_error(), "hashes for 1 of the 3") && strstr(st_last_error(), "blk.0.ffn"),
	   "a tensor without a line names it (%s)", st_last_error());
	r = st_load_hashes_read(dir, rd, 3);
	ok(r < 0 && r != -ENOENT, "a directory is an error, not an empty file (%s)", st_last_error());
	unlink(path);
}

static void test_hash_and_verify(const char *file)
{
	static const struct { const char *s; uint64_t h; } vec[] = {
		/* from xxhsum -H1 (xxHash 0.8.1) */
		{ "", 0xef46db3751d8e999ull },
		{ "a", 0xd24ec4f1a98c6e5bull },
		{ "abc", 0x44bc2cf5ad770999ull },
		{ "The quick brown fox jumps over the lazy dog, 0123456789 times.", 0x1fddfa27f9f6e335ull },
	};
	unsigned char big[1000], buf[3][3000];
	struct st_load_span s[3];
	struct st_load_opts o = { .flags = ST_LOAD_VERIFY };
	int ret;

	for (size_t i = 0; i < sizeof vec / sizeof vec[0]; i++)
		ok(st_hash64(vec[i].s, strlen(vec[i].s), 0) == vec[i].h, "XXH64(\"%.10s...\") matches xxhsum",
		   vec[i].s);
	for (int i = 0; i < 1000; i++)
		big[i] = (unsigned char)((i * 31 + 7) & 255);
	ok(st_hash64(big, sizeof big, 0) == 0x99594f4828043d35ull, "XXH64 of 1000 bytes matches xxhsum");

	for (int i = 0; i < 3; i++) {
		s[i] = (struct st_load_span){ (uint64_t)i * 70000 + 32, sizeof buf[i], buf[i], sizeof buf[i], 0,
					      i == 1 ? "blk.0.attn_q.weight" : "t" };
		for (size_t k = 0; k < sizeof buf[i]; k++)
			buf[i][k] = pat(s[i].file_offset + k);
	}
	st_load_hash_spans(s, 3);
	ok(st_load_verify(s, 3) == 0, "verify passes on the right bytes");
	memset(buf, 0, sizeof buf);
	ret = st_load_spans(file, s, 3, &o, NULL);
	ok(ret == 0, "load with ST_LOAD_VERIFY passes (%s)", ret ? st_last_error() : "");
	s[1].hash ^= 1;
	ret = st_load_spans(file, s, 3, &o, NULL);
	ok(ret == -EBADMSG && strstr(st_last_error(), "blk.0.attn_q.weight"),
	   "a wrong hash -> -EBADMSG naming the tensor (%s)", st_last_error());
}

static void test_args(const char *file)
{
	struct st_loader *ld;
	struct st_load_opts o = { .chunk_size = 5000 };
	enum st_io_mode m;
	ok(st_loader_open(file, &o, &ld) == -EINVAL && ld == NULL, "chunk size 5000 rejected (%s)",
	   st_last_error());
	o = (struct st_load_opts){ .queue_depth = 100000 };
	ok(st_loader_open(file, &o, &ld) == -EINVAL, "queue depth 100000 rejected");
	ok(st_loader_open("/nonexistent/x.gguf", NULL, &ld) == -ENOENT, "missing file -> -ENOENT (%s)",
	   st_last_error());
	ok(st_io_mode_parse("mmap", &m) == 0 && m == ST_IO_MMAP && st_io_mode_parse("dma", &m) == -EINVAL,
	   "io mode names parse");
}

/* ---- the session hook and the command ------------------------------------------ */

/* Logits of a few tokens of stories260K with the weights from the mapped
 * file (strata's default) and through st_ioring_load_weights on every path,
 * over a two-stage split: they must be bit-identical (same bytes in). */
static void test_session_hook(void)
{
	const char *dir = tap_models_dir();
	char path[1024];
	struct st_model *m = NULL;
	static const int32_t toks[] = { 1, 403, 407, 261, 378 };
	const int nt = (int)(sizeof toks / sizeof toks[0]);
	float *ref = NULL;
	uint32_t nv = 0;

	if (!dir) {
		tap_skip("no models dir (ST_MODELS_DIR): session hook not tested");
		return;
	}
	snprintf(path, sizeof path, "%s/stories260K/stories260K.gguf", dir);
	if (st_model_open(path, &m) < 0) {
		ok(0, "open %s: %s", path, st_last_error());
		return;
	}
	nv = st_model_desc(m)->n_vocab;
	for (int pi = -1; pi < 5; pi++) {
		struct st_session_params sp;
		struct st_session *sess = NULL;
		struct st_ioring_weights w = { .path = path };
		bool same = true;
		int r;
		st_session_params_default(&sp);
		sp.n_ctx = 64;
		sp.stages = "cpu:0-2,cpu:3-4";
		if (pi >= 0) {
			if (path_skip(&paths[pi]))
				continue;
			w.opts.mode = paths[pi].mode;
			w.opts.flags = paths[pi].flags;
			sp.load_weights = st_ioring_load_weights;
			sp.load_user = &w;
		}
		r = st_session_create(m, &sp, &sess);
		if (r < 0) {
			ok(0, "session (%s): %s", pi < 0 ? "mapped" : paths[pi].name, st_last_error());
			continue;
		}
		r = st_session_eval(sess, toks, nt, true);
		if (r != nt) {
			ok(0, "eval (%s): %d %s", pi < 0 ? "mapped" : paths[pi].name, r, st_last_error());
			st_session_destroy(sess);
			continue;
		}
		if (pi < 0) {
			ref = malloc((size_t)nt * nv * sizeof *ref);
			for (int t = 0; ref && t < nt; t++)
				memcpy(ref + (size_t)t * nv, st_session_logits(sess, t), nv * sizeof *ref);
			ok(ref != NULL, "reference logits from the mapped file (%d tokens x %u)", nt, nv);
		} else {
			for (int t = 0; ref && t < nt && same; t++)
				same = !memcmp(ref + (size_t)t * nv, st_session_logits(sess, t), nv * sizeof *ref);
			ok(ref && same && w.n_loads == 2 && w.stats.mode == paths[pi].want_mode,
			   "%s: session weights through the loader (%d stage loads, %llu bytes): logits bit-identical",
			   paths[pi].name, w.n_loads, (unsigned long long)w.stats.bytes_spans);
		}
		st_session_destroy(sess);
	}
	{
		struct st_session_params sp;
		struct st_session *sess = NULL;
		struct st_ioring_weights w = { .path = "/nonexistent/model.gguf" };
		int r;
		st_session_params_default(&sp);
		sp.load_weights = st_ioring_load_weights;
		sp.load_user = &w;
		r = st_session_create(m, &sp, &sess);
		ok(r < 0 && sess == NULL, "a loader that cannot open the file fails session_create (%d: %s)", r,
		   st_last_error());
		if (sess)
			st_session_destroy(sess);
	}
	free(ref);
	st_model_close(m);
}

/* `strata bench-load`: JSON output, hashes saved then verified, a wrong
 * hash and bad arguments rejected with the documented exit codes. */
static void test_command(const char *dir)
{
	const char *build = getenv("ST_BUILD_DIR"), *mdir = tap_models_dir();
	char strata[1200], model[1200], hashes[2300], cmd[12000], out[4096];
	FILE *f;
	size_t n;
	int rc;

	if (!build || !mdir) {
		tap_skip("ST_BUILD_DIR or the models dir unset: command not tested");
		return;
	}
	snprintf(strata, sizeof strata, "%s/tools/strata", build);
	snprintf(model, sizeof model, "%s/stories260K/stories260K.gguf", mdir);
	snprintf(hashes, sizeof hashes, "%s/hashes.txt", dir);
	if (access(strata, X_OK) != 0) {
		tap_skip("%s not built", strata);
		return;
	}
	snprintf(cmd, sizeof cmd, "'%s' bench-load -m '%s' --stage 1-3 --io pread --json --save-hashes '%s'", strata,
		 model, hashes);
	f = popen(cmd, "r");
	n = f ? fread(out, 1, sizeof out - 1, f) : 0;
	out[n] = 0;
	rc = f ? pclose(f) : -1;
	ok(rc == 0 && strstr(out, "\"io\":\"pread\"") && strstr(out, "\"bytes\":") && strstr(out, "\"seconds\":") &&
	   strstr(out, "\"bytes_per_s\":") && strstr(out, "\"peak_rss_bytes\":") && strstr(out, "\"stage\":[1,3]"),
	   "bench-load --json prints io, bytes, seconds, bytes_per_s, peak_rss_bytes (%s)", out);
	snprintf(cmd, sizeof cmd, "'%s' bench-load -m '%s' --stage 1-3 --verify '%s' >/dev/null 2>&1", strata, model,
		 hashes);
	ok(system(cmd) == 0, "bench-load --verify accepts the hashes it saved");
	snprintf(cmd, sizeof cmd, "sed -i '2s/^./%s/' '%s' && '%s' bench-load -m '%s' --stage 1-3 --verify '%s' >/dev/null 2>&1",
		 "x", hashes, strata, model, hashes);
	/* 'x' is not hex: a malformed line; then a flipped digit */
	rc = system(cmd);
	ok(WIFEXITED(rc) && WEXITSTATUS(rc) == 1, "bench-load --verify rejects a malformed hash file (exit %d)",
	   WIFEXITED(rc) ? WEXITSTATUS(rc) : -1);
	snprintf(cmd, sizeof cmd,
		 "'%s' bench-load -m '%s' --stage 1-3 --save-hashes '%s' >/dev/null 2>&1 && "
		 "sed -i '2s/^0/X/;2s/^[1-9a-f]/0/;2s/^X/1/' '%s' && '%s' bench-load -m '%s' --stage 1-3 --verify '%s' 2>&1",
		 strata, model, hashes, hashes, strata, model, hashes);
	f = popen(cmd, "r");
	n = f ? fread(out, 1, sizeof out - 1, f) : 0;
	out[n] = 0;
	rc = f ? pclose(f) : -1;
	ok(WIFEXITED(rc) && WEXITSTATUS(rc) == 1 && strstr(out, "verify: span 0 (blk.1."),
	   "bench-load --verify fails on a changed hash, naming it (%s)", out);
	unlink(hashes);
	snprintf(cmd, sizeof cmd, "'%s' bench-load -m '%s' --io dma >/dev/null 2>&1", strata, model);
	rc = system(cmd);
	ok(WIFEXITED(rc) && WEXITSTATUS(rc) == 2, "bench-load --io dma: usage error (exit 2)");
	snprintf(cmd, sizeof cmd, "'%s' bench-load -m '%s' --stage 3-9 >/dev/null 2>&1", strata, model);
	rc = system(cmd);
	ok(WIFEXITED(rc) && WEXITSTATUS(rc) == 1, "bench-load --stage 3-9 of 5 layers: fails (exit 1)");
}

static bool make_dir(char *out, size_t n, const char *base)
{
	snprintf(out, n, "%s/ioring-test-XXXXXX", base);
	return mkdtemp(out) != NULL;
}

int main(void)
{
	const char *build = getenv("ST_BUILD_DIR");
	char disk[2048], shm[2048], file[2200];
	struct statfs sf;
	bool have_shm;

	if (!make_dir(disk, sizeof disk, build ? build : "."))
		tap_skip_all("cannot create a directory under %s", build ? build : ".");
	if (statfs(disk, &sf) == 0 && sf.f_type == 0x01021994)
		diag("%s is on tmpfs: the 'real disk' case is tmpfs too", disk);
	have_shm = make_dir(shm, sizeof shm, "/dev/shm");

	snprintf(file, sizeof file, "%s/data.bin", disk);
	if (write_file(file, FILE_SIZE) != 0)
		tap_skip_all("cannot write %s", file);
	{
		struct st_loader *ld;
		/* capture the fallback announcements from the start */
		tap_log_capture();
		if (st_loader_open(file, NULL, &ld) == 0) {
			have_uring = st_loader_mode(ld) == ST_IO_URING;
			st_loader_close(ld);
		}
		if (!have_uring)
			diag("io_uring unavailable here: its paths are skipped");
	}
	test_fallback_announce(file);
	test_args(file);
	test_hash_and_verify(file);
	test_hash_files(disk);
	test_paths(disk, file, true);
	test_stage(disk, file);
	test_gguf_stage(disk);
	test_auto_cache(disk);
	test_session_hook();
	test_command(disk);
	test_failures(disk, file);
	test_efault_watermark(file);
	test_verify_ready(file);
	unlink(file);
	rmdir(disk);

	if (have_shm) {
		/* tmpfs: refuses O_DIRECT before Linux 6.6, accepts it after;
		 * either way each path must give the same bytes */
		snprintf(file, sizeof file, "%s/data.bin", shm);
		if (write_file(file, FILE_SIZE) == 0) {
			test_paths(shm, file, false);
			test_stage(shm, file);
			unlink(file);
		} else {
			tap_skip("cannot write %s", file);
		}
		rmdir(shm);
	} else {
		tap_skip("no /dev/shm");
	}
	return tap_done();
}
