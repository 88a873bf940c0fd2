/* test_accel_e2e: whole models on the accelerator backends against the CPU
 * backend.
 *  - stories260K: greedy generation (prompt prefilled in one call, then one
 *    token at a time) on opencl0 alone, with an f16 KV cache, and split
 *    three ways cpu / vulkan0 / opencl0: tokens identical to the CPU's and
 *    logits NMSE <= 1e-6 at every step.
 *  - stories260K on opencl0 with its weights placed three ways: the mapped
 *    file wrapped in place (CL_MEM_USE_HOST_PTR, the default on host-memory
 *    devices), copied into a device buffer (ST_OPENCL_NO_WRAP), and read
 *    by the io_uring loader straight into the mapped buffer.
 *  - mkmodel models of every weight type on every accelerator: logits of
 *    every prefill row and of decode steps NMSE <= 1e-6 against the CPU.
 * The CPU reference is the scalar reference forward pass (forward_ref): the
 * CPU backend's SIMD kernels quantize activations to 8-bit blocks for
 * quantized weights (as llama.cpp does), while the accelerators and the
 * reference compute in f32, so the reference is the like-for-like check. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <unistd.h>

#include "backend.h"
#include "mkmodel.h"
#include "weights.h"
#include "strata.h"
#include "tap.h"
#include "types.h"

enum { N_PROMPT = 9, N_GEN = 32 };

/* When set, sessions read their weights through the io_uring loader. */
static struct st_ioring_weights *g_loader;

static void log_cb(enum st_log_level level, const char *msg, void *user)
{
	(void)user;
	if (level >= ST_LOG_WARN)
		diag("%s: %s", level >= ST_LOG_ERROR ? "error" : "warning", msg);
}

/* Prefill N_PROMPT tokens keeping every row's logits, then n_gen greedy
 * steps.  logits gets (N_PROMPT + n_gen) rows; tokens gets n_gen ids. */
static int generate(struct st_model *m, const char *stages, uint32_t kv_type, int n_gen,
		    int32_t *tokens, float *logits)
{
	const struct st_model_desc *d = st_model_desc(m);
	struct st_session_params p;
	struct st_session *s = NULL;
	int32_t prompt[N_PROMPT];
	int rc;

	st_session_params_default(&p);
	p.stages = stages;
	p.reference = stages == NULL;
	if (g_loader && stages) {
		p.load_weights = st_ioring_load_weights;
		p.load_user = g_loader;
	}
	p.kv_type = kv_type;
	p.n_ctx = 96;
	if ((rc = st_session_create(m, &p, &s)) != 0)
		return rc;
	for (int i = 0; i < N_PROMPT; i++)
		prompt[i] = (int32_t)(1 + (i * 37 + 11) % (d->n_vocab - 1));
	rc = st_session_eval(s, prompt, N_PROMPT, true);
	for (int i = 0; i < N_PROMPT && rc >= 0; i++)
		memcpy(logits + (size_t)i * d->n_vocab, st_session_logits(s, i), d->n_vocab * sizeof(float));
	for (int step = 0; step < n_gen && rc >= 0; step++) {
		const float *l = st_session_logits(s, -1);
		if (step > 0)
			memcpy(logits + (size_t)(N_PROMPT + step - 1) * d->n_vocab, l, d->n_vocab * sizeof(float));
		tokens[step] = tap_argmax(l, d->n_vocab);
		rc = st_session_eval(s, &tokens[step], 1, false);
	}
	if (rc >= 0)
		memcpy(logits + (size_t)(N_PROMPT + n_gen - 1) * d->n_vocab, st_session_logits(s, -1),
		       d->n_vocab * sizeof(float));
	st_session_destroy(s);
	return rc < 0 ? rc : 0;
}

/* Run `stages` and the all-CPU reference; compare tokens and logits. */
static void compare(struct st_model *m, const char *label, const char *stages, uint32_t kv, int n_gen, bool want_tokens)
{
	const struct st_model_desc *d = st_model_desc(m);
	size_t rows = (size_t)N_PROMPT + (size_t)n_gen;
	float *ref = malloc(rows * d->n_vocab * sizeof(float)), *got = malloc(rows * d->n_vocab * sizeof(float));
	int32_t ref_tok[N_GEN], tok[N_GEN];
	int rc = generate(m, NULL, kv, n_gen, ref_tok, ref);
	int rc2 = rc ? rc : generate(m, stages, kv, n_gen, tok, got);
	if (!ok(rc == 0 && rc2 == 0, "%s: %s runs (%s KV): %s", label, stages, kv == ST_KV_F16 ? "f16" : "f32",
		rc || rc2 ? st_last_error() : "ok"))
		goto out;
	int same = 0;
	double worst = 0;
	for (int i = 0; i < n_gen; i++)
		same += tok[i] == ref_tok[i];
	for (size_t r = 0; r < rows; r++) {
		double e = tap_nmse(ref + r * d->n_vocab, got + r * d->n_vocab, d->n_vocab);
		if (!(e <= worst))
			worst = e;
	}
	if (want_tokens)
		ok(same == n_gen, "%s: %d of %d greedy tokens identical to the cpu reference's", label, same, n_gen);
	ok(worst <= 1e-6, "%s: worst logits NMSE over %d prefill rows + %d decode steps: %.3g (max 1e-6)", label,
	   N_PROMPT, n_gen, worst);
out:
	free(ref);
	free(got);
}

static bool have(const char *backend)
{
	const struct st_backend_ops *b = st_backend_find(backend);
	return b && st_backend_device_count(b) > 0;
}

/* OpenCL buffers: wrapping host memory computes from it in place (a change
 * to the host bytes is seen through the buffer); a mapped buffer's host
 * writes are there once a read unmaps it; reads and writes out of range
 * are refused. */
static void opencl_buffers(void)
{
	const struct st_backend_ops *cl = st_backend_find("opencl");
	struct st_backend *be = NULL;
	struct st_buffer *w = NULL, *b = NULL;
	static float host[1024] __attribute__((aligned(4096)));
	float back[1024];

	if (!ok(st_backend_open(cl, 0, &be) == 0, "opencl0 opens"))
		return;
	for (int i = 0; i < 1024; i++)
		host[i] = (float)i * 0.5f;
	int rc = st_buffer_wrap(be, host, sizeof host, &w);
	if (be->info.unified_memory) {
		ok(rc == 0, "host-memory device: wrap succeeds (%s)", rc ? st_last_error() : "ok");
		host[7] = -3.0f;        /* in place: the buffer sees the host's bytes */
		ok(w && st_buffer_read(be, w, 0, back, sizeof back) == 0 && back[7] == -3.0f && back[1023] == 511.5f,
		   "wrapped buffer reads the host bytes in place");
	} else {
		ok(rc == -ENOTSUP, "device memory: wrap declines (%d), the caller copies", rc);
	}
	ok(st_buffer_alloc(be, sizeof host, ST_BUF_WEIGHTS | ST_BUF_HOST_VISIBLE, &b) == 0, "alloc");
	float *m = b ? st_buffer_map(be, b) : NULL;
	if (ok(m != NULL, "buffer_map gives a host pointer")) {
		for (int i = 0; i < 1024; i++)
			m[i] = (float)(1024 - i);
		ok(st_buffer_read(be, b, 0, back, sizeof back) == 0 && back[0] == 1024.0f && back[1023] == 1.0f,
		   "host writes through the mapping are in the buffer after it is unmapped");
	}
	rc = st_buffer_read(be, b, sizeof host - 4, back, 8);
	ok(rc < 0, "read past the end refused: %s", st_last_error());
	st_buffer_free(be, b);
	st_buffer_free(be, w);
	st_backend_close(be);
}

int main(void)
{
	const char *dir = tap_models_dir();
	bool cl = have("opencl"), vk = have("vulkan");
	char path[1024];

	st_set_log(log_cb, NULL, ST_LOG_WARN);
	if (!cl && !vk)
		tap_skip_all("no OpenCL or Vulkan device (install pocl-opencl-icd and mesa-vulkan-drivers)");

	if (cl)
		opencl_buffers();

	/* stories260K: 5 layers. */
	if (!dir) {
		tap_skip("stories260K: models directory not found (ST_MODELS_DIR)");
	} else {
		struct st_model *m = NULL;
		snprintf(path, sizeof path, "%s/stories260K/stories260K.gguf", dir);
		if (!ok(st_model_open(path, &m) == 0, "open %s", path)) {
			diag("%s", st_last_error());
		} else {
			if (cl) {
				compare(m, "stories260K opencl", "opencl0:0-4", ST_KV_F32, N_GEN, true);
				compare(m, "stories260K opencl f16 KV", "opencl0:0-4", ST_KV_F16, N_GEN, true);
				setenv("ST_OPENCL_NO_WRAP", "1", 1);
				compare(m, "stories260K opencl, weights copied", "opencl0:0-4", ST_KV_F32, 8, true);
				unsetenv("ST_OPENCL_NO_WRAP");
				struct st_ioring_weights w = { .path = path, .opts = { .mode = ST_IO_AUTO } };
				g_loader = &w;
				compare(m, "stories260K opencl, io_uring loader into mapped buffer", "opencl0:0-4",
					ST_KV_F32, 8, true);
				g_loader = NULL;
				ok(w.n_loads >= 1 && w.stats.bytes_spans > 0, "the loader read %llu bytes in %d load(s)",
				   (unsigned long long)w.stats.bytes_spans, w.n_loads);
			} else {
				tap_skip("stories260K on opencl0: no OpenCL device");
			}
			if (cl && vk)
				compare(m, "stories260K three-way", "cpu:0-1,vulkan0:2-3,opencl0:4-4", ST_KV_F32, N_GEN, true);
			else
				tap_skip("three-way cpu/vulkan/opencl split: needs both a Vulkan and an OpenCL device");
			st_model_close(m);
		}
	}

	/* mkmodel models of every weight type. */
	const uint32_t types[] = { ST_TYPE_F32, ST_TYPE_F16, ST_TYPE_BF16, ST_TYPE_Q8_0, ST_TYPE_Q4_0,
				   ST_TYPE_Q4_K, ST_TYPE_Q5_K, ST_TYPE_Q6_K, ST_TYPE_Q4_1, ST_TYPE_Q5_0, ST_TYPE_Q5_1 };
	for (size_t k = 0; k < sizeof types / sizeof types[0]; k++) {
		struct st_mkmodel_params p;
		struct st_model *m = NULL;
		st_mkmodel_preset("tiny", &p);
		p.type = types[k];
		if (st_type_traits(types[k])->block_size == 256) {
			p.n_embd = 256;     /* K-quant rows: whole blocks of 256 (tiny's 64 would fall back) */
			p.n_ff = 512;
		}
		p.seed = 7;
		snprintf(path, sizeof path, "%s/accel_e2e_%s_%d.gguf", getenv("ST_BUILD_DIR") ? getenv("ST_BUILD_DIR") : ".",
			 st_type_name(types[k]), (int)getpid());
		if (!ok(st_mkmodel_write(&p, path, NULL, NULL) == 0 && st_model_open(path, &m) == 0,
			"mkmodel tiny %s", st_type_name(types[k]))) {
			diag("%s", st_last_error());
			unlink(path);
			continue;
		}
		const struct st_model_desc *d = st_model_desc(m);
		char stages[64], label[64];
		if (cl) {
			snprintf(stages, sizeof stages, "opencl0:0-%u", d->n_layer - 1);
			snprintf(label, sizeof label, "tiny %s opencl", st_type_name(types[k]));
			compare(m, label, stages, ST_KV_F32, 8, false);
		}
		if (vk) {
			snprintf(stages, sizeof stages, "vulkan0:0-%u", d->n_layer - 1);
			snprintf(label, sizeof label, "tiny %s vulkan", st_type_name(types[k]));
			compare(m, label, stages, ST_KV_F32, 8, false);
		}
		st_model_close(m);
		unlink(path);
	}
	return tap_done();
}
