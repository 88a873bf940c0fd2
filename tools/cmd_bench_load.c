/* cmd_bench_load.c: `strata bench-load`: load a stage's tensors from a GGUF
 * file through ioring/loader.h and report the throughput. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bench_upload.h"
#include "cli.h"
#include "gguf.h"
#include "gguf_spans.h"
#include "loader.h"
#include "strata.h"
#include "util.h"
#include "weights.h"

static const char *const CMD = "bench-load";

static void usage(FILE *f)
{
	fprintf(f,
		"usage: strata bench-load -m MODEL [--io auto|uring|pread|mmap|readahead] [--stage FIRST-LAST]\n"
		"                         [--cold] [--json] [options]\n"
		"\n"
		"Reads the tensors of one stage (layers FIRST..LAST; token_embd with layer 0, the\n"
		"output head with the last layer; default: the whole model) from a GGUF file into\n"
		"host memory laid out so O_DIRECT reads land in place, and reports bytes, seconds,\n"
		"throughput and peak RSS.  Progress (bytes, MB/s, ETA) goes to a terminal stderr.\n"
		"\n"
		"  -m, --model MODEL     the GGUF file\n"
		"  --io MODE             auto (io_uring, else pread), uring, pread or mmap; or\n"
		"                        readahead: io_uring readahead of the spans into the page\n"
		"                        cache, timed until every page is mapped (the CPU stages'\n"
		"                        default in strata run)\n"
		"  --stage FIRST-LAST    layer range (blk.FIRST .. blk.LAST)\n"
		"  --blocks-only         only blk.N tensors (no embeddings or output head)\n"
		"  --cold                drop the file's page cache before each run\n"
		"                        (posix_fadvise DONTNEED, checked with mincore; as root\n"
		"                        /proc/sys/vm/drop_caches only if pages stayed, or with\n"
		"                        ST_BENCH_DROP_ALL=1)\n"
		"  --repeat N            runs (default 1); each is printed\n"
		"  --qd N                reads in flight (default %u; readahead: requests, default %u)\n"
		"  --chunk BYTES         bytes per read, power of two (default %u; readahead: per\n"
		"                        request, default %u)\n"
		"  --no-direct           no O_DIRECT (buffered io_uring)\n"
		"  --pread-direct        pread with O_DIRECT\n"
		"  --no-fixed            do not register staging buffers with the ring\n"
		"  --fixed-dest          register the destination memory too (READ_FIXED)\n"
		"  --inline-buffered     buffered io_uring reads copy at submission (no io-wq)\n"
		"  --prefault            touch the destination memory before timing\n"
		"  --save-hashes FILE    write each tensor's XXH64 to FILE after loading\n"
		"  --verify FILE         check each tensor against the hashes in FILE\n"
		"  --ttft                time to first token instead: open the model, create a\n"
		"                        session whose stages read their weights with --io (mmap:\n"
		"                        strata's mapped file, read on demand; readahead: mapped,\n"
		"                        with io_uring readahead), evaluate BOS, take the argmax\n"
		"  --overlap             with --ttft: load in the background, each layer of the\n"
		"                        first evaluation starting when its bytes are in\n"
		"  --device D            into a device-local buffer of D (vulkan0, opencl0; forced\n"
		"                        on host-memory drivers), streamed through staging slots\n"
		"  --upload MODE         with --device: overlap (read chunk k+1 while the device\n"
		"                        copies chunk k), serial (wait for each copy) or read-all\n"
		"  --slots N, --slot-size BYTES   with --device: staging slots (default %u of %u)\n"
		"  --json                one JSON object per run on stdout\n"
		"  -v, --verbose         log fallbacks and details (INFO)\n"
		"  -h, --help            this text\n",
		ST_LOAD_DEFAULT_QD, ST_PREFETCH_DEFAULT_DEPTH, ST_LOAD_DEFAULT_CHUNK, ST_PREFETCH_DEFAULT_REQUEST,
		ST_UPLOAD_DEFAULT_SLOTS, ST_UPLOAD_DEFAULT_SLOT);
}

static void log_stderr(enum st_log_level level, const char *msg, void *user)
{
	(void)user;
	fprintf(stderr, "strata %s: %s%s\n", CMD, level >= ST_LOG_WARN ? "warning: " : "", msg);
}

static void progress_tty(void *user, uint64_t done, uint64_t total, double el)
{
	double rate = el > 0 ? (double)done / el : 0;
	double eta = rate > 0 ? (double)(total - done) / rate : 0;
	(void)user;
	fprintf(stderr, "\r  %8.1f / %.1f MiB  %7.1f MB/s  ETA %5.1f s ", (double)done / 1048576.0,
		(double)total / 1048576.0, rate / 1e6, eta);
	if (done == total)
		fprintf(stderr, "\n");
	fflush(stderr);
}

static bool took;   /* the last take() matched an option with a value */

static bool take(int argc, char **argv, int *i, const char *name, const char **val)
{
	size_t n = strlen(name);
	took = false;
	if (strncmp(argv[*i], name, n))
		return false;
	if (argv[*i][n] == '=') {
		*val = argv[*i] + n + 1;
		took = true;
		return true;
	}
	if (argv[*i][n])
		return false;
	*val = *i + 1 < argc ? argv[++*i] : NULL;
	took = true;
	return true;
}

/* Drop the file's cached pages; the whole page cache too (as root) only
 * when that did not empty it, or with ST_BENCH_DROP_ALL=1 (dropping
 * everything also makes other programs on the machine cold). */
static void drop_cache(const char *path, bool *dropped_all)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	const char *all = getenv("ST_BENCH_DROP_ALL");
	bool need_all = all && *all && strcmp(all, "0") != 0;
	FILE *f;
	sync();
	if (fd >= 0) {
		double left = 1;
		(void)posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
		close(fd);
		if (st_load_cached_fraction(path, 0, 0, &left) < 0 || left > 0.001)
			need_all = true;
	} else {
		need_all = true;
	}
	*dropped_all = false;
	if (need_all && geteuid() == 0 && (f = fopen("/proc/sys/vm/drop_caches", "w"))) {
		*dropped_all = fputs("3\n", f) >= 0;
		*dropped_all = (fclose(f) == 0) && *dropped_all;
	}
}

static double st_time_now_tool(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static uint64_t peak_rss_bytes(void)
{
	struct rusage ru;
	if (getrusage(RUSAGE_SELF, &ru) != 0)
		return 0;
	return (uint64_t)ru.ru_maxrss * 1024;
}

/* Bytes this process (every thread, io_uring's workers included) made the
 * kernel fetch from storage so far (/proc/self/io read_bytes); 0 if unknown. */
static uint64_t storage_read_bytes(void)
{
	uint64_t v = 0;
	return st_proc_field_u64("/proc/self/io", "read_bytes", &v) == 0 ? v : 0;
}

static int save_hashes(const char *file, struct st_load_span *s, size_t n)
{
	return st_load_hashes_write(file, s, n) < 0 ? cli_fail(CMD, "%s", st_last_error()) : 0;
}

static int load_hashes(const char *file, struct st_load_span *s, size_t n)
{
	return st_load_hashes_read(file, s, n) < 0 ? cli_fail(CMD, "%s", st_last_error()) : 0;
}

/* Time from nothing to the first generated token: open, create a session
 * (its stages load their weights), evaluate BOS, argmax. */
static int run_ttft(const char *model, const struct st_load_opts *o, bool readahead, bool cold, bool overlap,
		    bool json)
{
	const char *ra_label;
	struct st_model *m = NULL;
	struct st_session *sess = NULL;
	struct st_session_params sp;
	struct st_ioring_weights w = { .path = model, .opts = *o };
	struct st_tokenizer *tok;
	const float *logits;
	bool dropped_all = false;
	int32_t bos = 1, best = 0;
	double t0, t_open, t_sess, t1;
	uint32_t n_vocab;
	int r;

	if (cold)
		drop_cache(model, &dropped_all);
	w.opts.progress = NULL;
	t0 = st_time_now_tool();
	r = st_model_open(model, &m);
	if (r < 0)
		return cli_fail(CMD, "%s", st_last_error());
	t_open = st_time_now_tool();
	st_session_params_default(&sp);
	sp.n_ctx = 256;
	if (readahead) {
		w.prefetch.depth = o->queue_depth;
		w.prefetch.request = o->chunk_size;
		sp.prefetch_weights = st_ioring_prefetch_weights;
		sp.load_user = &w;
	} else if (o->mode != ST_IO_MMAP) {
		if (overlap)
			sp.load_weights_async = st_ioring_load_weights_async;
		else
			sp.load_weights = st_ioring_load_weights;
		sp.load_user = &w;
	}
	r = st_session_create(m, &sp, &sess);
	if (r < 0) {
		st_model_close(m);
		return cli_fail(CMD, "session: %s", st_last_error());
	}
	t_sess = st_time_now_tool();
	tok = st_model_tokenizer(m);
	if (tok && st_tokenizer_bos(tok) >= 0)
		bos = st_tokenizer_bos(tok);
	r = st_session_eval(sess, &bos, 1, false);
	logits = r > 0 ? st_session_logits(sess, -1) : NULL;
	if (!logits) {
		st_session_destroy(sess);
		st_model_close(m);
		return cli_fail(CMD, "eval: %s", st_last_error());
	}
	n_vocab = st_model_desc(m)->n_vocab;
	for (uint32_t i = 1; i < n_vocab; i++)
		if (logits[i] > logits[best])
			best = (int32_t)i;
	t1 = st_time_now_tool();
	overlap = overlap && o->mode != ST_IO_MMAP && !readahead;
	/* background loads add their statistics when they end; destroying
	 * the session waits for them */
	st_session_destroy(sess);
	sess = NULL;
	ra_label = w.n_prefetches && w.n_cached == w.n_prefetches ? "mapped file, already cached: nothing read ahead"
		   : w.prefetch_stats.uring ? "mapped file + io_uring readahead"
					    : "mapped file + posix_fadvise readahead";
	if (json)
		printf("{\"io\":\"%s\",\"loader\":\"%s\",\"overlap\":%s,\"direct\":%s,\"fixed_dest\":%s,"
		       "\"ttft_seconds\":%.6f,\"open_seconds\":%.6f,"
		       "\"session_seconds\":%.6f,\"eval_seconds\":%.6f,\"load_seconds\":%.6f,\"bytes\":%" PRIu64
		       ",\"bytes_copied\":%" PRIu64 ",\"bytes_fixed\":%" PRIu64
		       ",\"first_token\":%d,\"peak_rss_bytes\":%" PRIu64 ",\"cold\":%s}\n",
		       readahead ? "readahead" : o->mode == ST_IO_MMAP ? "mmap" : st_io_mode_name(w.stats.mode),
		       readahead ? ra_label : o->mode == ST_IO_MMAP ? "mapped file, read on demand" : "ioring span loader",
		       overlap ? "true" : "false", w.stats.direct ? "true" : "false",
		       w.stats.fixed_dest ? "true" : "false", t1 - t0, t_open - t0, t_sess - t_open, t1 - t_sess,
		       readahead ? w.prefetch_stats.seconds : w.stats.seconds,
		       readahead ? w.prefetch_stats.bytes_advised : w.stats.bytes_spans, w.stats.bytes_copied,
		       w.stats.bytes_fixed, best,
		       peak_rss_bytes(), cold ? "true" : "false");
	else
		printf("%s%s%s%s%s%s: first token %d after %.3f s (open %.3f s, session %.3f s, eval %.3f s; loader %.3f s,"
		       " %.1f MiB, %.1f KiB through staging); peak RSS %.1f MiB%s\n",
		       readahead ? "readahead (" : "", readahead ? ra_label
				 : o->mode == ST_IO_MMAP ? "mmap (mapped file, read on demand)" : st_io_mode_name(w.stats.mode),
		       readahead ? ")" : "",
		       w.stats.direct ? "+direct" : "", w.stats.fixed_dest ? "+fixed" : "",
		       overlap ? " overlapped" : "", best, t1 - t0, t_open - t0, t_sess - t_open, t1 - t_sess,
		       readahead ? w.prefetch_stats.seconds : w.stats.seconds,
		       (double)(readahead ? w.prefetch_stats.bytes_advised : w.stats.bytes_spans) / 1048576.0,
		       (double)w.stats.bytes_copied / 1024.0,
		       (double)peak_rss_bytes() / 1048576.0, cold ? ", cold" : "");
	fflush(stdout);
	st_model_close(m);
	return 0;
}

struct ra_job {
	const char *model;
	struct st_prefetch_opts o;
	const struct st_load_span *spans;
	size_t n;
	struct st_prefetch_stats st;
	int rc;
	char msg[256];
};

static void *ra_thread(void *arg)
{
	struct ra_job *j = arg;
	j->rc = st_prefetch_spans(j->model, j->spans, j->n, &j->o, &j->st);
	if (j->rc)
		snprintf(j->msg, sizeof j->msg, "%s", st_last_error());
	return NULL;
}

/* --io readahead without --ttft: the spans are requested into the page
 * cache with io_uring readahead on one thread while this one touches every
 * page of them through a mapping of the file, as an evaluation would; the
 * time is until the last page is mapped.  The mapping is the destination
 * (spans[i].dst points into it for --verify / --save-hashes). */
static int run_readahead(const char *model, const struct st_load_opts *lo, struct st_load_span *spans, size_t n,
			 int64_t first, int64_t last, int64_t repeat, bool cold, bool json, const char *verify,
			 const char *save)
{
	const long page = sysconf(_SC_PAGESIZE);
	struct stat sb;
	int fd = open(model, O_RDONLY | O_CLOEXEC);
	const char *map;
	int ret = 1;

	if (fd < 0 || fstat(fd, &sb) < 0) {
		ret = cli_fail(CMD, "cannot open %s: %s", model, strerror(errno));
		if (fd >= 0)
			close(fd);
		return ret;
	}
	map = sb.st_size ? mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_SHARED, fd, 0) : MAP_FAILED;
	close(fd);
	if (map == MAP_FAILED)
		return cli_fail(CMD, "cannot map %s: %s", model, strerror(errno));
	for (size_t i = 0; i < n; i++) {
		if (spans[i].file_offset + spans[i].nbytes > (uint64_t)sb.st_size) {
			ret = cli_fail(CMD, "tensor %s ends past the end of the file (%jd bytes)",
				       spans[i].name ? spans[i].name : "?", (intmax_t)sb.st_size);
			goto out;
		}
		spans[i].dst = (void *)(map + spans[i].file_offset);
		spans[i].dst_size = spans[i].nbytes;
	}
	for (int64_t run = 0; run < repeat; run++) {
		struct ra_job j = { .model = model, .spans = spans, .n = n,
				    .o = { .depth = lo->queue_depth, .request = lo->chunk_size } };
		bool dropped_all = false;
		volatile unsigned char sink = 0;
		pthread_t th;
		double t0, t1, rate;
		int rc;
		uint64_t io0;
		if (cold)
			drop_cache(model, &dropped_all);
		io0 = storage_read_bytes();
		t0 = st_time_now_tool();
		rc = pthread_create(&th, NULL, ra_thread, &j);
		if (rc) {
			ret = cli_fail(CMD, "cannot start a thread: %s", strerror(rc));
			goto out;
		}
		for (size_t i = 0; i < n; i++) {
			const unsigned char *p = spans[i].dst;
			for (uint64_t k = 0; k < spans[i].nbytes; k += (uint64_t)page - ((uintptr_t)(p + k) % (uint64_t)page))
				sink ^= p[k];
			if (spans[i].nbytes)
				sink ^= p[spans[i].nbytes - 1];
		}
		t1 = st_time_now_tool();
		pthread_join(th, NULL);
		if (j.rc) {
			ret = cli_fail(CMD, "readahead: %s", j.msg);
			goto out;
		}
		rate = t1 > t0 ? (double)j.st.bytes_spans / (t1 - t0) : 0;
		if (json)
			printf("{\"io\":\"readahead\",\"uring\":%s,\"bytes\":%" PRIu64 ",\"storage_read_bytes\":%" PRIu64
			       ",\"bytes_advised\":%" PRIu64
			       ",\"requests\":%" PRIu64 ",\"seconds\":%.6f,\"issue_seconds\":%.6f,\"bytes_per_s\":%.0f"
			       ",\"peak_rss_bytes\":%" PRIu64 ",\"tensors\":%zu,\"stage\":[%" PRId64 ",%" PRId64
			       "],\"cold\":%s,\"verified\":%s}\n",
			       j.st.uring ? "true" : "false", j.st.bytes_spans, storage_read_bytes() - io0,
			       j.st.bytes_advised, j.st.n_requests,
			       t1 - t0, j.st.seconds, rate, peak_rss_bytes(), n, first, last, cold ? "true" : "false",
			       verify ? "true" : "false");
		else
			printf("readahead (%s): %zu tensors of layers %" PRId64 "-%" PRId64 ", %.1f MiB mapped in %.3f s"
			       " = %.1f MB/s (%" PRIu64 " requests issued in %.3f s; %.1f MiB read from storage);"
			       " peak RSS %.1f MiB%s\n",
			       j.st.uring ? "io_uring" : "posix_fadvise", n, first, last,
			       (double)j.st.bytes_spans / 1048576.0, t1 - t0, rate / 1e6, j.st.n_requests, j.st.seconds,
			       (double)(storage_read_bytes() - io0) / 1048576.0,
			       (double)peak_rss_bytes() / 1048576.0,
			       cold ? (dropped_all ? ", cold (caches dropped)" : ", cold (file pages dropped)") : "");
		fflush(stdout);
		(void)sink;
	}
	if (verify && st_load_verify(spans, n) < 0) {
		ret = cli_fail(CMD, "%s", st_last_error());
		goto out;
	}
	ret = save ? save_hashes(save, spans, n) : 0;
out:
	munmap((void *)map, (size_t)sb.st_size);
	return ret;
}

int cmd_bench_load(int argc, char **argv)
{
	const char *model = NULL, *stage = NULL, *io = "auto", *save = NULL, *verify = NULL, *v = NULL;
	bool cold = false, json = false, verbose = false, blocks_only = false, prefault = false, ttft = false;
	bool overlap = false, readahead = false;
	int64_t repeat = 1, qd = 0, chunk = 0, first = -1, last = -1;
	struct st_load_opts o = { 0 };
	struct bench_upload dev = { 0 };
	struct st_gguf *g = NULL;
	struct st_load_span *spans = NULL;
	uint64_t *dst_off = NULL, arena_size = 0;
	void *arena = MAP_FAILED;
	size_t n = 0;
	uint32_t n_layer = 0;
	int ret = 1, r;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			usage(stdout);
			return 0;
		} else if (take(argc, argv, &i, "-m", &v) || take(argc, argv, &i, "--model", &v)) {
			model = v;
		} else if (take(argc, argv, &i, "--io", &v)) {
			io = v;
		} else if (take(argc, argv, &i, "--stage", &v)) {
			stage = v;
		} else if (take(argc, argv, &i, "--repeat", &v)) {
			if (!v || !cli_parse_i64(v, 1, 1000, &repeat))
				return cli_usage_error(CMD, "--repeat needs a count in 1..1000");
		} else if (take(argc, argv, &i, "--qd", &v)) {
			if (!v || !cli_parse_i64(v, 1, ST_LOAD_MAX_QD, &qd))
				return cli_usage_error(CMD, "--qd needs a number in 1..%u", ST_LOAD_MAX_QD);
		} else if (take(argc, argv, &i, "--chunk", &v)) {
			if (!v || !cli_parse_i64(v, ST_LOAD_ALIGN, ST_LOAD_MAX_CHUNK, &chunk) || (chunk & (chunk - 1)))
				return cli_usage_error(CMD, "--chunk needs a power of two in %u..%u", ST_LOAD_ALIGN,
						       ST_LOAD_MAX_CHUNK);
		} else if (take(argc, argv, &i, "--save-hashes", &v)) {
			save = v;
		} else if (take(argc, argv, &i, "--verify", &v)) {
			verify = v;
		} else if (!strcmp(a, "--cold")) {
			cold = true;
		} else if (!strcmp(a, "--json")) {
			json = true;
		} else if (!strcmp(a, "--ttft")) {
			ttft = true;
		} else if (!strcmp(a, "--overlap")) {
			overlap = true;
		} else if (!strcmp(a, "--prefault")) {
			prefault = true;
		} else if (!strcmp(a, "--blocks-only")) {
			blocks_only = true;
		} else if (!strcmp(a, "--no-direct")) {
			o.flags |= ST_LOAD_NO_DIRECT;
		} else if (!strcmp(a, "--pread-direct")) {
			o.flags |= ST_LOAD_PREAD_DIRECT;
		} else if (!strcmp(a, "--inline-buffered")) {
			o.flags |= ST_LOAD_INLINE_BUFFERED;
		} else if (!strcmp(a, "--no-fixed")) {
			o.flags |= ST_LOAD_NO_FIXED;
		} else if (!strcmp(a, "--fixed-dest")) {
			o.flags |= ST_LOAD_FIXED_DEST;
		} else if (!strcmp(a, "-v") || !strcmp(a, "--verbose")) {
			verbose = true;
		} else if ((r = bench_upload_take(argc, argv, &i, &dev)) != 0) {
			if (r < 0)
				return 2;
		} else {
			return cli_usage_error(CMD, "unknown argument '%s'", a);
		}
		if (took && !v)
			return cli_usage_error(CMD, "option %s needs a value", a);
		took = false;
		v = NULL;
	}
	if (!model)
		return cli_usage_error(CMD, "no model (-m MODEL)");
	readahead = io && !strcmp(io, "readahead");
	if (readahead)
		o.mode = ST_IO_MMAP;
	else if (!io || st_io_mode_parse(io, &o.mode) < 0)
		return cli_usage_error(CMD, "--io: expected auto, uring, pread, mmap or readahead");
	if (readahead && qd > ST_PREFETCH_MAX_DEPTH)
		return cli_usage_error(CMD, "--qd: readahead takes at most %u requests in flight", ST_PREFETCH_MAX_DEPTH);
	if (readahead && (overlap || dev.device || prefault))
		return cli_usage_error(CMD, "--io readahead reads into the page cache: no --overlap, --device or --prefault");
	if (stage) {
		char *end;
		first = strtol(stage, &end, 10);
		if (end == stage || *end != '-' || !end[1])
			return cli_usage_error(CMD, "--stage: expected FIRST-LAST, got '%s'", stage);
		if (!cli_parse_i64(end + 1, 0, 1 << 20, &last) || first < 0 || last < first)
			return cli_usage_error(CMD, "--stage: expected FIRST-LAST, got '%s'", stage);
	}
	o.queue_depth = (uint32_t)qd;
	o.chunk_size = (uint32_t)chunk;
	if (verify)
		o.flags |= ST_LOAD_VERIFY;
	st_set_log(log_stderr, NULL, verbose ? ST_LOG_INFO : ST_LOG_WARN);
	if (ttft) {
		for (int64_t run = 0; run < repeat; run++)
			if (run_ttft(model, &o, readahead, cold, overlap, json))
				return 1;
		return 0;
	}

	r = st_gguf_open(model, &g);
	if (r < 0)
		return cli_fail(CMD, "%s", st_last_error());
	st_load_gguf_layers(g, &n_layer);
	if (!stage) {
		first = 0;
		last = (int64_t)n_layer - 1;
	}
	if (n_layer == 0 && !blocks_only) {
		/* no blocks at all: every tensor */
		spans = calloc(g->n_tensors ? g->n_tensors : 1, sizeof *spans);
		for (uint64_t i = 0; spans && i < g->n_tensors; i++)
			spans[n++] = (struct st_load_span){ .file_offset = g->tensors[i].file_offset,
				.nbytes = g->tensors[i].nbytes, .name = g->tensors[i].name };
		r = spans ? 0 : -ENOMEM;
	} else {
		r = st_load_gguf_stage_spans(g, (int)first, (int)last, blocks_only ? ST_LOAD_GGUF_BLOCKS_ONLY : 0,
					     &spans, &n);
	}
	if (r < 0) {
		ret = cli_fail(CMD, "%s", r == -ENOMEM ? "out of memory" : st_last_error());
		goto out;
	}
	dst_off = calloc(n ? n : 1, sizeof *dst_off);
	if (!dst_off || st_load_layout(spans, n, dst_off, &arena_size) < 0) {
		ret = cli_fail(CMD, "layout: %s", st_last_error());
		goto out;
	}
	/* the destination: anonymous memory (as a CPU backend buffer would be),
	 * 4 KiB aligned, transparent huge pages where available */
	arena = mmap(NULL, arena_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (arena == MAP_FAILED) {
		ret = cli_fail(CMD, "cannot allocate %" PRIu64 " bytes: %s", arena_size, strerror(errno));
		goto out;
	}
	if (getenv("ST_BENCH_THP"))
		(void)madvise(arena, arena_size, MADV_HUGEPAGE);
	if (prefault)
		memset(arena, 0, arena_size);
	for (size_t i = 0; i < n; i++) {
		spans[i].dst = (char *)arena + dst_off[i];
		spans[i].dst_size = spans[i].nbytes;
	}
	if (verify && load_hashes(verify, spans, n))
		goto out;
	if (dev.device) {
		ret = bench_upload_run(&dev, model, spans, dst_off, n, arena_size, &o, repeat, cold, json, drop_cache);
		goto out;
	}
	if (readahead) {
		ret = run_readahead(model, &o, spans, n, first, last, repeat, cold, json, verify, save);
		goto out;
	}
	if (!json && isatty(2)) {
		o.progress = progress_tty;
		o.progress_interval_s = 0.25;
	}

	for (int64_t run = 0; run < repeat; run++) {
		struct st_load_stats st;
		bool dropped_all = false;
		double rate;
		uint64_t io0;
		if (cold)
			drop_cache(model, &dropped_all);
		io0 = storage_read_bytes();
		r = st_load_spans(model, spans, n, &o, &st);
		if (r < 0) {
			if (o.progress)
				fprintf(stderr, "\n");
			ret = cli_fail(CMD, "%s", st_last_error());
			goto out;
		}
		rate = st.seconds > 0 ? (double)st.bytes_spans / st.seconds : 0;
		if (json) {
			printf("{\"io\":\"%s\",\"direct\":%s,\"fixed_buffers\":%s,\"bytes\":%" PRIu64
			       ",\"storage_read_bytes\":%" PRIu64 ",\"bytes_read\":%" PRIu64 ",\"bytes_direct\":%" PRIu64 ",\"bytes_copied\":%" PRIu64
			       ",\"seconds\":%.6f,\"bytes_per_s\":%.0f,\"peak_rss_bytes\":%" PRIu64
			       ",\"tensors\":%zu,\"stage\":[%" PRId64 ",%" PRId64 "],\"qd\":%u,\"chunk\":%u,\"cold\":%s,"
			       "\"verified\":%s}\n",
			       st_io_mode_name(st.mode), st.direct ? "true" : "false",
			       st.fixed_buffers ? "true" : "false", st.bytes_spans, storage_read_bytes() - io0, st.bytes_read,
			       st.bytes_direct,
			       st.bytes_copied, st.seconds, rate, peak_rss_bytes(), n, first, last,
			       qd ? (unsigned)qd : ST_LOAD_DEFAULT_QD, chunk ? (unsigned)chunk : ST_LOAD_DEFAULT_CHUNK,
			       cold ? "true" : "false", verify ? "true" : "false");
		} else {
			printf("%s%s%s: %zu tensors of layers %" PRId64 "-%" PRId64 ", %.1f MiB in %.3f s = %.1f MB/s"
			       " (read %.1f MiB, %.1f%% in place, %.1f%% copied); peak RSS %.1f MiB%s%s\n",
			       st_io_mode_name(st.mode), st.direct ? "+direct" : "",
			       st.fixed_buffers ? "+fixed" : "", n, first, last, (double)st.bytes_spans / 1048576.0,
			       st.seconds, rate / 1e6, (double)st.bytes_read / 1048576.0,
			       st.bytes_spans ? 100.0 * (double)st.bytes_direct / (double)st.bytes_spans : 0.0,
			       st.bytes_spans ? 100.0 * (double)st.bytes_copied / (double)st.bytes_spans : 0.0,
			       (double)peak_rss_bytes() / 1048576.0,
			       cold ? (dropped_all ? ", cold (caches dropped)" : ", cold (file pages dropped)") : "",
			       verify ? ", verified" : "");
		}
		fflush(stdout);
	}
	if (save && save_hashes(save, spans, n))
		goto out;
	ret = 0;
out:
	if (arena != MAP_FAILED)
		munmap(arena, arena_size);
	free(dst_off);
	free(spans);
	st_gguf_free(g);
	return ret;
}
