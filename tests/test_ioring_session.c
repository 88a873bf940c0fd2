/* test_ioring_session.c: weights loaded in place into CPU stage buffers
 * (each tensor at its file offset's 4 KiB phase, so O_DIRECT reads land
 * there), destinations registered with the ring (READ_FIXED) and the
 * refused-registration fallback, and the first evaluation overlapping the
 * load (st_session_params.load_weights_async).  Every path must give
 * logits bit-identical to strata's mapped file on stories260K; staging
 * copies must be limited to the unaligned ends of contiguous runs; a file
 * truncated mid-load, a missing file and a session destroyed while loading
 * must end in a clear error or a clean stop, never a hang (ASan for
 * leaks). */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "gguf.h"
#include "gguf_spans.h"
#include "ioring_shrink.h"
#include "loader.h"
#include "model.h"
#include "strata.h"
#include "tap.h"
#include "weights.h"

static const int32_t toks[] = { 1, 403, 407, 261, 378 };
#define NT ((int)(sizeof toks / sizeof toks[0]))

static char model_path[1024];
static struct st_model *model;
static uint32_t n_vocab;
static float *ref;                /* logits of toks from the mapped file */
static bool have_uring, have_direct;
static bool refused_seen;         /* this kernel refused a real registration (announced) */


/* Evaluate toks in a session made with sp; logits into out (NT x n_vocab). */
static int run_session(const struct st_session_params *sp, float *out)
{
	return tap_session_logits(model, sp, toks, NT, out);
}

/* Contiguous runs in the file of the spans of layers first..last (+ ends):
 * with the phase layout, staging copies at most a block at each end of one. */
static int file_runs(int first, int last)
{
	const struct st_model_desc *d = st_model_desc(model);
	struct st_tensor_span sp[256];
	int n = st_model_spans(model, first, last, first == 0, last == (int)d->n_layer - 1, sp, 256), runs = 0;
	for (int i = 0; i < n && n <= 256; i++) {
		bool cont = false;
		for (int j = 0; j < n; j++)
			cont |= sp[j].file_offset + sp[j].nbytes == sp[i].file_offset;
		runs += !cont;
	}
	return runs;
}

struct path_cfg {
	const char *name;
	enum st_io_mode mode;
	unsigned flags;
	bool uring, direct;
};

static const struct path_cfg paths[] = {
	{ "uring+direct", ST_IO_URING, 0, true, true },
	{ "uring+direct, fixed destinations", ST_IO_URING, ST_LOAD_FIXED_DEST, true, true },
	{ "uring+direct, fixed destinations refused", ST_IO_URING, ST_LOAD_FIXED_DEST | ST_LOAD_FAIL_FIXED, true, true },
	{ "uring+direct, no fixed buffers", ST_IO_URING, ST_LOAD_NO_FIXED, true, true },
	{ "uring buffered", ST_IO_URING, ST_LOAD_FAIL_DIRECT, true, false },
	{ "pread", ST_IO_PREAD, 0, false, false },
	{ "mmap", ST_IO_MMAP, 0, false, false },
};

static void test_paths(void)
{
	static const char *const splits[] = { NULL, "cpu:0-2,cpu:3-4" };
	float *got = malloc((size_t)NT * n_vocab * sizeof *got);
	for (size_t pi = 0; got && pi < sizeof paths / sizeof paths[0]; pi++) {
		const struct path_cfg *pc = &paths[pi];
		if ((pc->uring && !have_uring) || (pc->direct && !have_direct)) {
			tap_skip("%s: unavailable here", pc->name);
			continue;
		}
		for (int async = 0; async < 2; async++)
			for (int sk = 0; sk < 2; sk++) {
				struct st_ioring_weights w = { .path = model_path };
				struct st_session_params sp;
				const int n_stages = sk ? 2 : 1;
				const int runs = sk ? file_runs(0, 2) + file_runs(3, 4) : file_runs(0, 4);
				bool same, copies_ok, fixed_ok;
				int r;

				st_session_params_default(&sp);
				sp.n_ctx = 64;
				sp.stages = splits[sk];
				w.opts.mode = pc->mode;
				w.opts.flags = pc->flags;
				if (async)
					sp.load_weights_async = st_ioring_load_weights_async;
				else
					sp.load_weights = st_ioring_load_weights;
				sp.load_user = &w;
				tap_logbuf[0] = 0;
				r = run_session(&sp, got);
				same = r == 0 && !memcmp(ref, got, (size_t)NT * n_vocab * sizeof *got);
				copies_ok = !pc->direct || w.stats.bytes_copied <= (uint64_t)runs * 2 * ST_LOAD_ALIGN;
				/* destinations registered unless refused (the simulation) or
				 * told not to; a real refusal is announced and tolerated */
				if (!pc->uring || !pc->direct)
					fixed_ok = true;
				else if (pc->flags & (ST_LOAD_FAIL_FIXED | ST_LOAD_NO_FIXED) || !(pc->flags & ST_LOAD_FIXED_DEST))
					fixed_ok = !w.stats.fixed_dest && w.stats.bytes_fixed == 0;
				else {
					refused_seen |= strstr(tap_logbuf, "registering") != NULL;
					fixed_ok = (w.stats.fixed_dest && w.stats.bytes_fixed == w.stats.bytes_direct) ||
						   refused_seen;
				}
				ok(same && w.n_loads == n_stages && copies_ok && fixed_ok,
				   "%s%s, %d stage(s): logits bit-identical to the mapped file (%d loads, %llu bytes, %llu"
				   " through staging for %d runs, %llu read fixed)%s%s",
				   pc->name, async ? ", overlapped" : "", n_stages, w.n_loads,
				   (unsigned long long)w.stats.bytes_spans, (unsigned long long)w.stats.bytes_copied, runs,
				   (unsigned long long)w.stats.bytes_fixed, r ? ": " : "", r ? st_last_error() : "");
			}
	}
	free(got);
}

/* The refused registration is announced once, as the loader documents. */
static void test_fixed_announce(void)
{
	struct st_ioring_weights w = { .path = model_path };
	struct st_session_params sp;
	float *got = malloc((size_t)NT * n_vocab * sizeof *got);
	if (!have_uring || !have_direct || !got) {
		tap_skip("io_uring with O_DIRECT unavailable");
		free(got);
		return;
	}
	st_session_params_default(&sp);
	sp.n_ctx = 64;
	sp.load_weights = st_ioring_load_weights;
	sp.load_user = &w;
	w.opts.mode = ST_IO_URING;
	w.opts.flags = ST_LOAD_FIXED_DEST;
	tap_logbuf[0] = 0;
	setenv("ST_IO_NO_FIXED", "1", 1);
	(void)run_session(&sp, got);
	(void)run_session(&sp, got);
	unsetenv("ST_IO_NO_FIXED");
	/* test_paths already announced it once in this process: none again */
	ok(!w.stats.fixed_dest && w.stats.bytes_fixed == 0 && !strstr(tap_logbuf, "registering") &&
	   !memcmp(ref, got, (size_t)NT * n_vocab * sizeof *got),
	   "ST_IO_NO_FIXED=1: plain reads, logits identical, the fallback announced only once per process");
	free(got);
}

/* ---- a loader of our own: the stage really waits per layer ---------------- */

struct slow {
	atomic_bool go, cancelled, finished;
	int n_published;
	uint64_t last_mark;
	bool monotonic;
};

static int cmp_span_off(const void *a, const void *b)
{
	const struct st_weight_span *x = a, *y = b;
	return x->file_offset < y->file_offset ? -1 : x->file_offset > y->file_offset;
}

/* pread each span in file order, publishing after each; starts only when
 * the test says go (after st_session_create returned), so the evaluation
 * is sure to begin before the bytes are in. */
static int slow_load(void *user, const struct st_weight_span *spans, int n, struct st_weight_ready *ready)
{
	struct slow *sl = user;
	struct st_weight_span *s = malloc((size_t)(n ? n : 1) * sizeof *s);
	int fd = open(model_path, O_RDONLY | O_CLOEXEC), rc = 0;
	if (!s || fd < 0) {
		free(s);
		if (fd >= 0)
			close(fd);
		return -ENOMEM;
	}
	memcpy(s, spans, (size_t)n * sizeof *s);
	qsort(s, (size_t)n, sizeof *s, cmp_span_off);
	while (!atomic_load(&sl->go) && !rc) {
		rc = st_weight_ready_publish(ready, 0);     /* 0 never raises the mark; tells a cancel */
		usleep(1000);
	}
	for (int i = 0; i < n && !rc; i++) {
		if (pread(fd, s[i].dst, s[i].nbytes, (off_t)s[i].file_offset) != (ssize_t)s[i].nbytes) {
			rc = -EIO;
			break;
		}
		usleep(500);
		if (s[i].file_offset + s[i].nbytes < sl->last_mark)
			sl->monotonic = false;
		sl->last_mark = s[i].file_offset + s[i].nbytes;
		rc = st_weight_ready_publish(ready, sl->last_mark);
		sl->n_published++;
	}
	if (rc == -ECANCELED)
		atomic_store(&sl->cancelled, true);
	atomic_store(&sl->finished, true);
	close(fd);
	free(s);
	return rc;
}

static void test_overlap_waits(void)
{
	struct slow sl = { .monotonic = true };
	struct st_session_params sp;
	struct st_session *s = NULL;
	bool same = false, done_before;
	int r;

	st_session_params_default(&sp);
	sp.n_ctx = 64;
	sp.load_weights_async = slow_load;
	sp.load_user = &sl;
	r = st_session_create(model, &sp, &s);
	done_before = atomic_load(&sl.finished);
	atomic_store(&sl.go, true);
	if (r == 0)
		r = st_session_eval(s, toks, NT, true);
	for (int t = 0; r == NT && t < NT; t++)
		same = !memcmp(ref + (size_t)t * n_vocab, st_session_logits(s, t), n_vocab * sizeof(float)) &&
		       (t == 0 || same);
	ok(r == NT && same && !done_before && sl.n_published > 10 && sl.monotonic,
	   "a loader that starts after session_create: the first evaluation waits layer by layer and its logits"
	   " are bit-identical (%d watermarks published)", sl.n_published);
	/* once loaded, later evaluations do not wait */
	if (r == NT) {
		st_session_reset(s);
		r = st_session_eval(s, toks, 1, false);
		ok(r == 1 && !memcmp(ref, st_session_logits(s, -1), n_vocab * sizeof(float)),
		   "a second evaluation after the load: same logits");
	} else {
		ok(0, "a second evaluation after the load (%s)", st_last_error());
	}
	st_session_destroy(s);

	/* destroyed while the loader has not started: it is told to stop */
	memset(&sl, 0, sizeof sl);
	s = NULL;
	r = st_session_create(model, &sp, &s);
	st_session_destroy(s);
	ok(r == 0 && atomic_load(&sl.cancelled) && atomic_load(&sl.finished),
	   "a session destroyed while its weights load: the loader sees -ECANCELED and destroy waits for it");
}

/* ---- failures with the overlap -------------------------------------------------- */

static int copy_file(const char *from, const char *to)
{
	char buf[65536];
	FILE *a = fopen(from, "rb"), *b = fopen(to, "wb");
	size_t n;
	int rc = 0;
	if (!a || !b)
		rc = -1;
	while (!rc && (n = fread(buf, 1, sizeof buf, a)) > 0)
		if (fwrite(buf, 1, n, b) != n)
			rc = -1;
	if (a)
		fclose(a);
	if (b && fclose(b) != 0)
		rc = -1;
	return rc;
}

static void test_failures(const char *dir)
{
	char copy[1300];
	struct st_session_params sp;

	snprintf(copy, sizeof copy, "%s/model-copy.gguf", dir);
	for (int pi = 0; pi < 3; pi++) {
		static const struct { const char *name; enum st_io_mode mode; unsigned flags; } fp[] = {
			{ "uring+direct", ST_IO_URING, 0 },
			{ "uring buffered", ST_IO_URING, ST_LOAD_FAIL_DIRECT },
			{ "pread", ST_IO_PREAD, 0 },
		};
		struct shrink tc = { .path = copy, .to = 300000 };
		struct st_ioring_weights w = { .path = copy };
		struct st_session *s = NULL;
		int r, r2 = 0;
		if (fp[pi].mode == ST_IO_URING && !have_uring) {
			tap_skip("%s: io_uring unavailable", fp[pi].name);
			continue;
		}
		if (copy_file(model_path, copy) != 0) {
			ok(0, "copy %s to %s", model_path, copy);
			continue;
		}
		st_session_params_default(&sp);
		sp.n_ctx = 64;
		sp.load_weights_async = st_ioring_load_weights_async;
		sp.load_user = &w;
		w.opts.mode = fp[pi].mode;
		w.opts.flags = fp[pi].flags;
		w.opts.queue_depth = 2;
		w.opts.chunk_size = 64 << 10;        /* many reads: the file shrinks under some */
		w.opts.on_chunk = shrink_cb;
		w.opts.chunk_user = &tc;
		r = st_session_create(model, &sp, &s);
		if (r == 0) {
			r = st_session_eval(s, toks, NT, true);
			if (r < 0)
				r2 = st_session_eval(s, toks, 1, false);
		}
		ok(r < 0 && r2 < 0 && strstr(st_last_error(), "loading its weights failed") &&
		   strstr(st_last_error(), "truncated"),
		   "%s, overlapped: the file truncated mid-load fails the evaluation, and the next, with the loader's"
		   " message (%d: %s)", fp[pi].name, r, st_last_error());
		st_session_destroy(s);
		unlink(copy);
	}
	{
		struct st_ioring_weights w = { .path = "/nonexistent/model.gguf" };
		struct st_session *s = NULL;
		int r;
		st_session_params_default(&sp);
		sp.load_weights_async = st_ioring_load_weights_async;
		sp.load_user = &w;
		r = st_session_create(model, &sp, &s);
		if (r == 0)
			r = st_session_eval(s, toks, 1, false);
		ok(r < 0 && strstr(st_last_error(), "cannot open"),
		   "overlapped, the file cannot be opened: the evaluation fails naming it (%s)", st_last_error());
		st_session_destroy(s);
	}
}

/* Residency (mincore). */
static void test_cached_fraction(const char *dir)
{
	char copy[1300], buf[65536];
	double cold = -1, warm = -1;
	int fd;
	snprintf(copy, sizeof copy, "%s/cached.gguf", dir);
	if (copy_file(model_path, copy) != 0 || (fd = open(copy, O_RDONLY)) < 0) {
		ok(0, "copy %s", model_path);
		return;
	}
	fsync(fd);
	(void)posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
	(void)st_load_cached_fraction(copy, 0, 0, &cold);
	while (read(fd, buf, sizeof buf) > 0)
		;
	(void)st_load_cached_fraction(copy, 0, 0, &warm);
	close(fd);
	if (cold > 0.5)
		diag("the page cache kept %.0f%% of the file after POSIX_FADV_DONTNEED (tmpfs?)", 100 * cold);
	ok(warm >= 0.99 && (cold > 0.5 || cold < 0.1),     /* reclaim here may take a page at once */
	   "st_load_cached_fraction: %.2f after DONTNEED, %.2f after reading", cold, warm);
	ok(st_load_cached_fraction("/nonexistent/x", 0, 0, &cold) < 0, "a missing file: an error, not a fraction");
	unlink(copy);
}

/* `strata run --io`: the same story whatever the weight path; a bad mode
 * is a usage error. */
static void test_run_io(void)
{
	static const char *const modes[] = { "mmap", "uring", "pread", "auto", "direct" };
	const char *build = getenv("ST_BUILD_DIR");
	char strata[1200], cmd[6000], out[5][2048];
	int rc;
	snprintf(strata, sizeof strata, "%s/tools/strata", build ? build : ".");
	if (!build || access(strata, X_OK) != 0) {
		tap_skip("strata not built (ST_BUILD_DIR)");
		tap_skip("strata not built (ST_BUILD_DIR)");
		tap_skip("strata not built (ST_BUILD_DIR)");
		tap_skip("strata not built (ST_BUILD_DIR)");
		tap_skip("strata not built (ST_BUILD_DIR)");
		return;
	}
	for (int i = 0; i < 5; i++) {
		FILE *f;
		size_t n;
		snprintf(cmd, sizeof cmd, "'%s' run -m '%s' -p 'Once upon a time' -n 24 --temp 0 --io %s 2>/dev/null",
			 strata, model_path, modes[i]);
		f = popen(cmd, "r");
		n = f ? fread(out[i], 1, sizeof out[i] - 1, f) : 0;
		out[i][n] = 0;
		if (f)
			pclose(f);
	}
	ok(strlen(out[0]) > 30 && !strcmp(out[0], out[1]) && !strcmp(out[0], out[2]) && !strcmp(out[0], out[3]) &&
		   !strcmp(out[0], out[4]),
	   "strata run --io mmap|uring|pread|auto|direct: the same text (%zu bytes, '%.30s...')", strlen(out[0]),
	   out[0]);
	snprintf(cmd, sizeof cmd, "'%s' run -m '%s' --io dma >/dev/null 2>&1", strata, model_path);
	rc = system(cmd);
	ok(WIFEXITED(rc) && WEXITSTATUS(rc) == 2, "strata run --io dma: usage error (exit 2)");

	/* --verify against the hashes bench-load saved: the same text; a
	 * changed hash stops the run before any text, naming the tensor */
	{
		char hashes[1300], vout[2048];
		FILE *f;
		size_t n;
		snprintf(hashes, sizeof hashes, "%s/run-verify-%d.hashes", build, (int)getpid());
		snprintf(cmd, sizeof cmd, "'%s' bench-load -m '%s' --save-hashes '%s' >/dev/null 2>&1", strata, model_path,
			 hashes);
		rc = system(cmd);
		snprintf(cmd, sizeof cmd,
			 "'%s' run -m '%s' -p 'Once upon a time' -n 24 --temp 0 --verify '%s' 2>/dev/null", strata,
			 model_path, hashes);
		f = rc == 0 ? popen(cmd, "r") : NULL;
		n = f ? fread(vout, 1, sizeof vout - 1, f) : 0;
		vout[n] = 0;
		rc = f ? pclose(f) : -1;
		ok(rc == 0 && !strcmp(vout, out[0]), "strata run --verify with the saved hashes: the same text");
		/* flip the first hex digit of the 5th tensor's hash */
		snprintf(cmd, sizeof cmd,
			 "sed -i '6s/^0/X/;6s/^[1-9a-f]/0/;6s/^X/1/' '%s' && '%s' run -m '%s' -p 'Once' -n 4 --verify '%s' 2>&1",
			 hashes, strata, model_path, hashes);
		f = popen(cmd, "r");
		n = f ? fread(vout, 1, sizeof vout - 1, f) : 0;
		vout[n] = 0;
		rc = f ? pclose(f) : -1;
		ok(WIFEXITED(rc) && WEXITSTATUS(rc) == 1 && strstr(vout, "--verify") && strstr(vout, "hash") &&
			   !strstr(vout, "Once upon"),
		   "strata run --verify with a changed hash: exit 1 before any text (%.200s)", vout);
		snprintf(cmd, sizeof cmd, "'%s' run -m '%s' -p 'Once' -n 4 --verify /nonexistent/h 2>&1", strata,
			 model_path);
		f = popen(cmd, "r");
		n = f ? fread(vout, 1, sizeof vout - 1, f) : 0;
		vout[n] = 0;
		rc = f ? pclose(f) : -1;
		ok(WIFEXITED(rc) && WEXITSTATUS(rc) == 1 && strstr(vout, "cannot read /nonexistent/h"),
		   "strata run --verify with a missing file: exit 1 naming it (%.200s)", vout);
		unlink(hashes);
	}
}

/* The loader alone: stage spans laid out by st_load_layout in page-aligned
 * memory land in place, byte-identical to the file, registered or not. */
static void test_layout_bytes(void)
{
	struct st_gguf *g = NULL;
	struct st_load_span *spans = NULL;
	uint64_t *off = NULL, size = 0;
	size_t n = 0;
	unsigned char *arena = MAP_FAILED, *want = NULL;
	int fd = -1;

	if (!have_uring || !have_direct) {
		tap_skip("io_uring with O_DIRECT unavailable");
		return;
	}
	if (st_gguf_open(model_path, &g) < 0 || st_load_gguf_stage_spans(g, 0, 4, 0, &spans, &n) < 0 ||
	    !(off = calloc(n, sizeof *off)) || st_load_layout(spans, n, off, &size) < 0 ||
	    (arena = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)) == MAP_FAILED ||
	    !(want = malloc(size)) || (fd = open(model_path, O_RDONLY)) < 0) {
		ok(0, "set up the layout test: %s", st_last_error());
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		spans[i].dst = arena + off[i];
		spans[i].dst_size = spans[i].nbytes;
	}
	for (int k = 0; k < 3; k++) {
		static const unsigned fl[] = { ST_LOAD_FIXED_DEST, ST_LOAD_FIXED_DEST | ST_LOAD_FAIL_FIXED, ST_LOAD_NO_FIXED };
		struct st_load_opts o = { .mode = ST_IO_URING, .flags = fl[k], .chunk_size = 64 << 10 };
		struct st_load_stats st;
		bool same = true;
		int r;
		memset(arena, 0xA5, size);
		r = st_load_spans(model_path, spans, n, &o, &st);
		for (size_t i = 0; r == 0 && i < n && same; i++)
			same = pread(fd, want, spans[i].nbytes, (off_t)spans[i].file_offset) == (ssize_t)spans[i].nbytes &&
			       !memcmp(want, spans[i].dst, spans[i].nbytes);
		ok(r == 0 && same && st.direct && st.bytes_copied <= 2 * ST_LOAD_ALIGN &&
		   st.bytes_direct + st.bytes_copied == st.bytes_spans &&
		   (k == 0 ? st.bytes_fixed == st.bytes_direct || refused_seen : st.bytes_fixed == 0),
		   "layout in place, %s: %zu tensors byte-identical, %llu of %llu bytes through staging, %llu read"
		   " fixed", k == 0 ? "fixed destinations" : k == 1 ? "registration refused" : "no fixed buffers", n,
		   (unsigned long long)st.bytes_copied, (unsigned long long)st.bytes_spans,
		   (unsigned long long)st.bytes_fixed);
	}
out:
	if (fd >= 0)
		close(fd);
	free(want);
	if (arena != MAP_FAILED)
		munmap(arena, size);
	free(off);
	free(spans);
	st_gguf_free(g);
}

int main(void)
{
	const char *mdir = tap_models_dir(), *build = getenv("ST_BUILD_DIR");
	char dir[1200];
	struct st_session_params sp;
	struct st_loader *ld;

	if (!mdir)
		tap_skip_all("no models dir (ST_MODELS_DIR)");
	snprintf(model_path, sizeof model_path, "%s/stories260K/stories260K.gguf", mdir);
	if (access(model_path, R_OK) != 0)
		tap_skip_all("%s missing", model_path);
	snprintf(dir, sizeof dir, "%s/ioring-session-XXXXXX", build ? build : ".");
	if (!mkdtemp(dir))
		tap_skip_all("cannot create a directory under %s", build ? build : ".");
	tap_log_capture();
	if (st_loader_open(model_path, NULL, &ld) == 0) {
		have_uring = st_loader_mode(ld) == ST_IO_URING;
		have_direct = st_loader_direct(ld);
		st_loader_close(ld);
	}
	if (!have_uring || !have_direct)
		diag("io_uring %s, O_DIRECT %s on the models dir: those paths are skipped",
		     have_uring ? "works" : "unavailable", have_direct ? "works" : "unavailable");
	if (st_model_open(model_path, &model) < 0)
		tap_skip_all("cannot open %s: %s", model_path, st_last_error());
	n_vocab = st_model_desc(model)->n_vocab;
	ref = malloc((size_t)NT * n_vocab * sizeof *ref);
	st_session_params_default(&sp);
	sp.n_ctx = 64;
	if (!ok(ref && run_session(&sp, ref) == 0, "reference logits from the mapped file"))
		return tap_done();

	test_paths();
	test_fixed_announce();
	test_overlap_waits();
	test_failures(dir);
	test_cached_fraction(dir);
	test_run_io();
	test_layout_bytes();

	free(ref);
	st_model_close(model);
	rmdir(dir);
	return tap_done();
}
