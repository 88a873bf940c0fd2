/* test_upload: streamed weight uploads into device-local buffers
 * (ioring/upload.h) on every accelerator, with device-local weights forced
 * on this machine's host-memory drivers (ST_VULKAN_FORCE_STAGING=1 on
 * lavapipe: a separate, unmapped VkBuffer filled by vkCmdCopyBuffer;
 * ST_OPENCL_NO_WRAP=1 on PoCL: a plain buffer filled by non-blocking
 * writes), and through the CPU backend's buffer_write fallback.
 *  - bytes: spans at awkward offsets (inside a block, across 4 KiB
 *    boundaries, bigger than a slot, ending at the end of a file whose size
 *    is no block multiple) for slot sizes that split them and 1..3 slots,
 *    overlapped and serial, io_uring and pread: the buffer downloaded again
 *    holds exactly the file's bytes where the spans go and the fill pattern
 *    elsewhere (compared with bytes read by plain pread);
 *  - order: with a backend whose copies land only when waited for, the
 *    bytes are still exact (no slot is refilled before its copy is done),
 *    every chunk after the first is read while an earlier copy is in flight
 *    (with 2-3 slots; none with 1 slot or serial);
 *  - failure: a span past the end of the file, and the file truncated
 *    while the upload streams (after its first chunk): a clear error, no
 *    hang, nothing left in flight (ASan's leak check);
 *  - stories260K on vulkan0 / opencl0 with device-local weights streamed
 *    by the session's loader: logits bit-identical to the same device with
 *    the weights in host-visible memory, for prefill and decode; and
 *    `strata run --device D --io uring` (streamed) prints the same text as
 *    --io mmap.
 * With ST_VULKAN_VALIDATION=1 (the *_validation test) the layer must report
 * no error. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend.h"
#include "strata.h"
#include "tap.h"
#include "upload.h"
#include "weights.h"
#if ST_WITH_VULKAN
#include "vk_backend.h"
#endif

#define FILE_SIZE ((size_t)(1u << 20) + 777)
#define BUF_SIZE ((size_t)(1u << 20) + 8192)
#define FILL 0x5a

static int g_no_fixed_announced;      /* "registering ... upload slots ... failed" */

static void log_cb(enum st_log_level level, const char *msg, void *user)
{
	(void)user;
	if (strstr(msg, "upload slots") && strstr(msg, "failed"))
		g_no_fixed_announced++;
	if (level >= ST_LOG_WARN)
		diag("%s: %s", level >= ST_LOG_ERROR ? "error" : "warning", msg);
}

static const struct st_upload_span spans[] = {
	{ 8192, 65536, 0, "aligned" },
	{ 100, 200, 65536 + 256, "inside the first block" },
	{ 4000, 300, 66304, "across a 4 KiB boundary" },
	{ 4300, 3000, 66816, "adjacent to the previous" },
	{ 80001, 400000, 70144, "bigger than a slot" },
	{ 480001, 7, 470272, "tiny" },
	{ 600000, FILE_SIZE - 600000, 470528, "ends at the end of the file" },
};
enum { N_SPANS = sizeof spans / sizeof spans[0] };

static unsigned char *g_file;        /* the file's bytes, read back with pread */
static char g_path[64] = "upload_test_XXXXXX";

static int make_file(void)
{
	int fd = mkstemp(g_path);
	unsigned char *b = malloc(FILE_SIZE);
	uint64_t x = 0x9e3779b97f4a7c15ull;
	if (fd < 0 || !b)
		return -1;
	for (size_t i = 0; i < FILE_SIZE; i++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		b[i] = (unsigned char)x;
	}
	int rc = write(fd, b, FILE_SIZE) == (ssize_t)FILE_SIZE ? 0 : -1;
	close(fd);
	free(b);
	/* the reference: the bytes as plain pread sees them */
	g_file = malloc(FILE_SIZE);
	fd = open(g_path, O_RDONLY);
	if (rc || !g_file || fd < 0 || pread(fd, g_file, FILE_SIZE, 0) != (ssize_t)FILE_SIZE)
		rc = -1;
	if (fd >= 0)
		close(fd);
	return rc;
}

/* The buffer holds the spans' file bytes and FILL elsewhere. */
static bool check_buffer(struct st_backend *be, struct st_buffer *buf, const char *what)
{
	unsigned char *got = malloc(BUF_SIZE), *want = malloc(BUF_SIZE);
	bool good = got && want && st_buffer_read(be, buf, 0, got, BUF_SIZE) == 0;
	if (good) {
		memset(want, FILL, BUF_SIZE);
		for (int i = 0; i < N_SPANS; i++)
			memcpy(want + spans[i].dst_offset, g_file + spans[i].file_offset, spans[i].nbytes);
		for (size_t i = 0; i < BUF_SIZE && good; i++)
			if (got[i] != want[i]) {
				diag("%s: byte %zu is 0x%02x, expected 0x%02x", what, i, got[i], want[i]);
				good = false;
			}
	}
	free(got);
	free(want);
	return good;
}

static int fill(struct st_backend *be, struct st_buffer *buf)
{
	unsigned char *f = malloc(BUF_SIZE);
	int rc = f ? 0 : -ENOMEM;
	if (f) {
		memset(f, FILL, BUF_SIZE);
		rc = st_buffer_write(be, buf, 0, f, BUF_SIZE);
	}
	free(f);
	return rc;
}

static int truncate_after_first(void *user, size_t span, uint64_t off, uint64_t n)
{
	int *calls = user;
	(void)span, (void)off, (void)n;
	if ((*calls)++ == 0 && truncate(g_path, 300000) != 0)
		return -errno;
	return 0;
}

/* Byte-exact uploads and failures on one backend (device-local buffer). */
static void bytes_on(const char *backend, bool want_streamed)
{
	const struct st_backend_ops *ops = st_backend_find(backend);
	struct st_backend *be = NULL;
	struct st_buffer *buf = NULL;
	struct st_loader *ld = NULL;

	if (!ops || st_backend_device_count(ops) == 0) {
		tap_skip("%s: no device", backend);
		return;
	}
	if (!ok(st_backend_open(ops, 0, &be) == 0, "%s: opens", backend)) {
		diag("%s", st_last_error());
		return;
	}
	if (!ok(st_buffer_alloc(be, BUF_SIZE, ST_BUF_WEIGHTS, &buf) == 0 && fill(be, buf) == 0, "%s: device buffer",
		backend)) {
		diag("%s", st_last_error());
		st_backend_close(be);
		return;
	}
	if (want_streamed)
		ok(st_buffer_map(be, buf) == NULL, "%s: the weight buffer is device-local (not mappable)", backend);

	static const uint32_t slot_sizes[] = { 4096, 16384, 65536, 1u << 20 };
	static const enum st_io_mode modes[] = { ST_IO_URING, ST_IO_PREAD };
	for (size_t mi = 0; mi < 2; mi++) {
		struct st_load_opts lo = { .mode = modes[mi] };
		if (st_loader_open(g_path, &lo, &ld) != 0) {
			ok(0, "%s: loader opens: %s", backend, st_last_error());
			continue;
		}
		for (size_t si = 0; si < 4; si++)
			for (uint32_t ns = 1; ns <= 3; ns++)
				for (int serial = 0; serial < 2; serial++) {
					/* every combination with io_uring; a sample with pread */
					if (mi == 1 && (si != 1 || serial))
						continue;
					struct st_upload_opts uo = { .slot_size = slot_sizes[si], .n_slots = ns,
								     .serial = serial };
					struct st_upload_stats st;
					char what[160];
					snprintf(what, sizeof what, "%s %s: %u slot(s) of %u KiB%s", backend,
						 st_io_mode_name(modes[mi]), ns, slot_sizes[si] >> 10, serial ? ", serial" : "");
					int rc = fill(be, buf);
					rc = rc ? rc : st_ioring_upload(ld, be, buf, spans, N_SPANS, &uo, &st);
					if (!ok(rc == 0, "%s: uploads", what)) {
						diag("%s", st_last_error());
						continue;
					}
					uint64_t total = 0;
					for (int i = 0; i < N_SPANS; i++)
						total += spans[i].nbytes;
					ok(check_buffer(be, buf, what) && st.bytes == total && st.streamed == want_streamed &&
					   st.n_chunks >= (total + slot_sizes[si] - 1) / slot_sizes[si],
					   "%s: downloaded bytes match the file (%llu bytes, %llu chunks, read %.3f s, wait %.3f s)",
					   what, (unsigned long long)st.bytes, (unsigned long long)st.n_chunks, st.read_s,
					   st.wait_s);
					/* io_uring: the slots are registered, reads into them are READ_FIXED */
					const bool want_fixed = st_loader_mode(ld) == ST_IO_URING;
					ok(st.fixed == want_fixed && (want_fixed ? st.bytes_fixed > 0 && st.bytes_fixed <= st.bytes_read
										 : st.bytes_fixed == 0),
					   "%s: slots %sregistered with the ring, %llu of %llu bytes read with READ_FIXED", what,
					   st.fixed ? "" : "not ", (unsigned long long)st.bytes_fixed,
					   (unsigned long long)st.bytes_read);
				}
		st_loader_close(ld);
		ld = NULL;
	}

	/* registration refused (as RLIMIT_MEMLOCK would): plain reads, the
	 * same bytes, announced once per process */
	{
		struct st_load_opts lo = { .mode = ST_IO_URING };
		static const struct st_upload_opts uo[] = { { 16384, 2, false }, { 1u << 20, 3, false } };
		setenv("ST_IO_NO_FIXED", "1", 1);
		if (st_loader_open(g_path, &lo, &ld) == 0) {
			for (size_t k = 0; k < 2; k++) {
				struct st_upload_stats st;
				int rc = fill(be, buf);
				rc = rc ? rc : st_ioring_upload(ld, be, buf, spans, N_SPANS, &uo[k], &st);
				ok(rc == 0 && check_buffer(be, buf, "registration refused") && !st.fixed && st.bytes_fixed == 0 &&
				   (st_loader_mode(ld) != ST_IO_URING || g_no_fixed_announced == 1),
				   "%s, ST_IO_NO_FIXED=1, %u slot(s) of %u KiB: plain reads, bytes match the file, "
				   "announced once (%d)", backend, uo[k].n_slots, uo[k].slot_size >> 10, g_no_fixed_announced);
			}
			st_loader_close(ld);
			ld = NULL;
		} else {
			ok(0, "%s: loader opens: %s", backend, st_last_error());
		}
		unsetenv("ST_IO_NO_FIXED");
	}

	/* a span past the end of the file: refused before anything moves */
	struct st_upload_span bad[2] = { spans[0], { FILE_SIZE - 100, 200, 4096, "past the end" } };
	if (st_loader_open(g_path, NULL, &ld) == 0) {
		int rc = st_ioring_upload(ld, be, buf, bad, 2, NULL, NULL);
		ok(rc < 0 && strstr(st_last_error(), "past the end") && strstr(st_last_error(), "truncated"),
		   "%s: a span past the end of the file fails: %s", backend, st_last_error());
		st_loader_close(ld);
		ld = NULL;
	}
	/* the file truncated while the upload streams (after its first read) */
	int calls = 0;
	struct st_load_opts lo = { .mode = ST_IO_URING, .on_chunk = truncate_after_first, .chunk_user = &calls };
	if (ok(st_loader_open(g_path, &lo, &ld) == 0, "%s: loader for the truncation", backend)) {
		struct st_upload_opts uo = { .slot_size = 16384, .n_slots = 2 };
		int rc = st_ioring_upload(ld, be, buf, spans, N_SPANS, &uo, NULL);
		ok(rc < 0 && calls > 0 && strstr(st_last_error(), "truncated"),
		   "%s: the file truncated mid-stream fails cleanly: %s", backend, st_last_error());
		st_loader_close(ld);
		/* the file back as it was, for the next backend */
		int fd = open(g_path, O_WRONLY);
		ok(fd >= 0 && pwrite(fd, g_file, FILE_SIZE, 0) == (ssize_t)FILE_SIZE, "file restored");
		if (fd >= 0)
			close(fd);
	}
	st_buffer_free(be, buf);
	st_backend_close(be);
}

/* A backend whose copies are asynchronous for real: upload_submit only
 * records the regions, and the bytes move when upload_wait (or close) is
 * called, as a DMA engine's would have by then.  A slot refilled before
 * its copy was waited for would upload the wrong bytes; the event log
 * shows whether chunk k+1 was read and submitted while chunk k's copy was
 * still outstanding (the overlap) or not (serial). */
struct st_buffer {
	unsigned char *p;
	size_t size;
};
struct st_upload {
	unsigned char *slots;
	size_t slot_size;
	int n_slots;
	struct st_buffer *dst[ST_UPLOAD_MAX_SLOTS];
	struct st_upload_region *r[ST_UPLOAD_MAX_SLOTS];
	int n[ST_UPLOAD_MAX_SLOTS];
};
static struct {
	int submits, overlapped, reuse_busy, max_outstanding, outstanding;
} g_fake;

static const struct st_backend_ops fake_ops;
static int fake_count(void) { return 1; }
static int fake_open(int index, struct st_backend **out)
{
	(void)index;
	*out = calloc(1, sizeof(struct st_backend));
	if (!*out)
		return -ENOMEM;
	(*out)->ops = &fake_ops;
	return 0;
}
static void fake_close(struct st_backend *be) { free(be); }
static int fake_alloc(struct st_backend *be, size_t size, unsigned flags, struct st_buffer **out)
{
	(void)be, (void)flags;
	struct st_buffer *b = calloc(1, sizeof(*b));
	if (!b || !(b->p = malloc(size))) {
		free(b);
		return -ENOMEM;
	}
	b->size = size;
	*out = b;
	return 0;
}
static void fake_free(struct st_buffer *b)
{
	if (b)
		free(b->p);
	free(b);
}
static int fake_write(struct st_buffer *b, size_t off, const void *src, size_t n)
{
	memcpy(b->p + off, src, n);
	return 0;
}
static int fake_read(struct st_buffer *b, size_t off, void *dst, size_t n)
{
	memcpy(dst, b->p + off, n);
	return 0;
}
static int fake_upload_open(struct st_backend *be, size_t slot_size, int n_slots, void **slots, struct st_upload **out)
{
	(void)be;
	struct st_upload *u = calloc(1, sizeof(*u));
	if (!u || posix_memalign((void **)&u->slots, ST_UPLOAD_ALIGN, slot_size * (size_t)n_slots)) {
		free(u);
		return -ENOMEM;
	}
	u->slot_size = slot_size;
	u->n_slots = n_slots;
	for (int i = 0; i < n_slots; i++)
		slots[i] = u->slots + (size_t)i * slot_size;
	*out = u;
	return 0;
}
static int fake_upload_wait(struct st_upload *u, int slot)
{
	if (!u->r[slot])
		return 0;
	for (int i = 0; i < u->n[slot]; i++)
		memcpy(u->dst[slot]->p + u->r[slot][i].dst_offset,
		       u->slots + (size_t)slot * u->slot_size + u->r[slot][i].src_offset, u->r[slot][i].size);
	free(u->r[slot]);
	u->r[slot] = NULL;
	g_fake.outstanding--;
	return 0;
}
static int fake_upload_submit(struct st_upload *u, int slot, struct st_buffer *dst, const struct st_upload_region *r,
			      int n)
{
	if (u->r[slot]) {
		g_fake.reuse_busy++;            /* the caller must have waited */
		fake_upload_wait(u, slot);
	}
	if (!(u->r[slot] = malloc((size_t)n * sizeof(*r))))
		return -ENOMEM;
	memcpy(u->r[slot], r, (size_t)n * sizeof(*r));
	u->n[slot] = n;
	u->dst[slot] = dst;
	if (g_fake.outstanding > 0)
		g_fake.overlapped++;            /* an earlier copy is still in flight */
	g_fake.outstanding++;
	g_fake.max_outstanding = g_fake.outstanding > g_fake.max_outstanding ? g_fake.outstanding : g_fake.max_outstanding;
	g_fake.submits++;
	return 0;
}
static void fake_upload_close(struct st_upload *u)
{
	for (int i = 0; i < u->n_slots; i++)
		fake_upload_wait(u, i);
	free(u->slots);
	free(u);
}
static const struct st_backend_ops fake_ops = {
	.name = "fake-dma", .device_count = fake_count, .open = fake_open, .close = fake_close,
	.buffer_alloc = fake_alloc, .buffer_free = fake_free, .buffer_write = fake_write, .buffer_read = fake_read,
	.upload_open = fake_upload_open, .upload_submit = fake_upload_submit, .upload_wait = fake_upload_wait,
	.upload_close = fake_upload_close,
};

/* The pipeline's order and slot reuse, with copies that finish late. */
static void ordering(void)
{
	struct st_backend *be = NULL;
	struct st_buffer *buf = NULL;
	struct st_loader *ld = NULL;
	if (!ok(st_backend_open(&fake_ops, 0, &be) == 0 && st_buffer_alloc(be, BUF_SIZE, ST_BUF_WEIGHTS, &buf) == 0 &&
		st_loader_open(g_path, NULL, &ld) == 0, "deferred-copy backend and loader"))
		return;
	for (uint32_t ns = 1; ns <= 3; ns++)
		for (int serial = 0; serial < 2; serial++) {
			struct st_upload_opts uo = { .slot_size = 16384, .n_slots = ns, .serial = serial };
			struct st_upload_stats st;
			memset(&g_fake, 0, sizeof g_fake);
			int rc = fill(be, buf);
			rc = rc ? rc : st_ioring_upload(ld, be, buf, spans, N_SPANS, &uo, &st);
			const bool want_overlap = ns > 1 && !serial;
			ok(rc == 0 && check_buffer(be, buf, "deferred copies") && g_fake.reuse_busy == 0 &&
			   g_fake.outstanding == 0 && st.streamed,
			   "deferred copies, %u slot(s)%s: bytes exact, no slot refilled before its copy was waited for", ns,
			   serial ? ", serial" : "");
			ok(want_overlap ? g_fake.overlapped == g_fake.submits - 1 && g_fake.max_outstanding == (int)ns
					: g_fake.overlapped == 0 && g_fake.max_outstanding == 1,
			   "%u slot(s)%s: %d of %d chunks read while an earlier copy was in flight, at most %d in flight",
			   ns, serial ? ", serial" : "", g_fake.overlapped, g_fake.submits, g_fake.max_outstanding);
		}
	st_loader_close(ld);
	st_buffer_free(be, buf);
	st_backend_close(be);
}

/* stories260K: device-local weights streamed by the session's loader give
 * logits bit-identical to host-visible weights on the same device. */
enum { N_PROMPT = 7, N_GEN = 6 };

static const char *g_model_path;

static int run_session(struct st_model *m, const char *stages, bool device, const struct st_upload_opts *uo,
		       float *logits, struct st_upload_stats *ust)
{
	const struct st_model_desc *d = st_model_desc(m);
	struct st_ioring_weights w = { .path = NULL, .opts = { .mode = ST_IO_AUTO } };
	struct st_session_params p;
	struct st_session *s = NULL;
	int32_t prompt[N_PROMPT], tok;
	int rc;

	w.path = g_model_path;
	w.upload = *uo;
	st_session_params_default(&p);
	p.stages = stages;
	p.n_ctx = 64;
	p.load_weights = st_ioring_load_weights;
	p.load_user = &w;
	p.load_device = device;
	if ((rc = st_session_create(m, &p, &s)) != 0)
		return rc;
	for (int i = 0; i < N_PROMPT; i++)
		prompt[i] = (int32_t)(1 + (i * 41 + 5) % (d->n_vocab - 1));
	rc = st_session_eval(s, prompt, N_PROMPT, true);
	for (int i = 0; i < N_PROMPT && rc >= 0; i++)
		memcpy(logits + (size_t)i * d->n_vocab, st_session_logits(s, i), d->n_vocab * sizeof(float));
	for (int step = 0; step < N_GEN && rc >= 0; step++) {
		const float *l = st_session_logits(s, -1);
		tok = tap_argmax(l, d->n_vocab);
		rc = st_session_eval(s, &tok, 1, false);
		if (rc >= 0)
			memcpy(logits + (size_t)(N_PROMPT + step) * d->n_vocab, st_session_logits(s, -1),
			       d->n_vocab * sizeof(float));
	}
	st_session_destroy(s);
	*ust = w.upload_stats;
	return rc < 0 ? rc : 0;
}

static void model_on(struct st_model *m, const char *backend)
{
	const struct st_backend_ops *ops = st_backend_find(backend);
	const struct st_model_desc *d = st_model_desc(m);
	const size_t n = (size_t)(N_PROMPT + N_GEN) * d->n_vocab;
	char stages[64];
	float *host = calloc(n, sizeof(float)), *dev = calloc(n, sizeof(float));
	struct st_upload_stats ust;
	uint64_t weight_bytes = 0, b;

	if (!ops || st_backend_device_count(ops) == 0) {
		tap_skip("stories260K on %s: no device", backend);
		goto out;
	}
	for (int l = -2; l < (int)d->n_layer; l++)
		if (st_model_layer_bytes(m, l, &b) == 0)
			weight_bytes += b;
	snprintf(stages, sizeof stages, "%s0:0-%u", backend, d->n_layer - 1);
	const struct st_upload_opts def = { 0 };
	if (!ok(host && dev && run_session(m, stages, false, &def, host, &ust) == 0 && ust.bytes == 0,
		"stories260K %s: weights in host-visible memory (the reference)", backend)) {
		diag("%s", st_last_error());
		goto out;
	}
	static const struct st_upload_opts cases[] = {
		{ 0, 0, false },             /* defaults: one chunk per slot-full */
		{ 16384, 1, false },         /* the embedding table (128 KiB) split in 8 */
		{ 8192, 2, false },
		{ 4096, 3, false },
		{ 65536, 3, true },
	};
	for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
		memset(dev, 0, n * sizeof(float));
		int rc = run_session(m, stages, true, &cases[c], dev, &ust);
		if (!ok(rc == 0, "stories260K %s, device-local: %u slot(s) of %u KiB%s: runs", backend, cases[c].n_slots,
			cases[c].slot_size >> 10, cases[c].serial ? ", serial" : "")) {
			diag("%s", st_last_error());
			continue;
		}
		ok(ust.streamed && ust.bytes >= weight_bytes && ust.n_chunks > 0,
		   "the weights were streamed: %llu bytes (model %llu) in %llu chunks", (unsigned long long)ust.bytes,
		   (unsigned long long)weight_bytes, (unsigned long long)ust.n_chunks);
		ok(memcmp(host, dev, n * sizeof(float)) == 0, "logits of %d prefill rows and %d decode steps bit-identical",
		   N_PROMPT, N_GEN);
	}
out:
	free(host);
	free(dev);
}

/* strata run --device D --io uring streams the weights into device-local
 * memory and generates the same text as --io mmap (the mapped file copied
 * with buffer_write). */
static void cli_on(const char *model, const char *dev)
{
	const char *bdir = getenv("ST_BUILD_DIR");
	char cmd[2048], out[2][4096];
	const struct st_backend_ops *ops = st_backend_find(strncmp(dev, "vulkan", 6) ? "opencl" : "vulkan");

	if (!bdir || !ops || st_backend_device_count(ops) == 0) {
		tap_skip("strata run --device %s --io uring: no build dir (ST_BUILD_DIR) or no device", dev);
		return;
	}
	for (int k = 0; k < 2; k++) {
		snprintf(cmd, sizeof cmd, "'%s/tools/strata' run -m '%s' --device %s --io %s -p 'Once upon a time' -n 24 "
			 "--temp 0 --verbose 2>&1", bdir, model, dev, k ? "uring" : "mmap");
		FILE *f = popen(cmd, "r");
		size_t n = f ? fread(out[k], 1, sizeof out[k] - 1, f) : 0;
		out[k][n] = 0;
		if (f)
			pclose(f);
	}
	/* the text is the line that starts with the prompt */
	const char *t0 = strstr(out[0], "Once upon a time"), *t1 = strstr(out[1], "Once upon a time");
	size_t l0 = t0 ? strcspn(t0, "\n") : 0, l1 = t1 ? strcspn(t1, "\n") : 0;
	ok(t0 && t1 && l0 > 40 && l0 == l1 && !memcmp(t0, t1, l0) && strstr(out[1], "upload: 3 staging slots"),
	   "strata run --device %s --io uring: streamed into device memory, same text as --io mmap (%.*s)", dev,
	   (int)l1, t1 ? t1 : "");
}

int main(void)
{
	const char *dir = tap_models_dir();
	char path[1024];

	st_set_log(log_cb, NULL, ST_LOG_INFO);
	/* device-local weights on host-memory drivers (read when a device opens) */
	setenv("ST_VULKAN_FORCE_STAGING", "1", 1);
	setenv("ST_OPENCL_NO_WRAP", "1", 1);
	if (!ok(make_file() == 0, "test file %s", g_path))
		return tap_done();
	bytes_on("vulkan", true);
	bytes_on("opencl", true);
	bytes_on("cpu", false);
	ordering();
	unlink(g_path);
	free(g_file);

	if (!dir) {
		tap_skip("stories260K: models directory not found (ST_MODELS_DIR)");
	} else {
		struct st_model *m = NULL;
		snprintf(path, sizeof path, "%s/stories260K/stories260K.gguf", dir);
		g_model_path = path;
		if (ok(st_model_open(path, &m) == 0, "open %s", path)) {
			model_on(m, "vulkan");
			model_on(m, "opencl");
			cli_on(path, "vulkan0");
			cli_on(path, "opencl0");
			st_model_close(m);
		} else {
			diag("%s", st_last_error());
		}
	}
#if ST_WITH_VULKAN
	if (st_vk_validation_enabled())
		ok(st_vk_validation_error_count() == 0, "the Vulkan validation layer reported %llu error(s)",
		   (unsigned long long)st_vk_validation_error_count());
#endif
	return tap_done();
}
