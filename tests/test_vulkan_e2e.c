/* test_vulkan_e2e: stories260K end to end on the Vulkan backend against the
 * CPU backend: a prompt prefilled in one call, then greedy decoding one
 * token at a time; the generated tokens must be identical and the logits
 * of every step within NMSE 1e-6 of the CPU's.  Runs all layers on
 * vulkan0, a CPU/Vulkan split, and an f16 KV cache, under the validation
 * layer (no error may be reported). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "strata.h"
#include "tap.h"
#include "vk_backend.h"

enum { N_PROMPT = 9, N_GEN = 40 };

static void log_cb(enum st_log_level level, const char *msg, void *user)
{
	(void)user;
	if (level >= ST_LOG_WARN)
		diag("%s: %s", level >= ST_LOG_ERROR ? "error" : "warning", msg);
}

/* Greedy generation; logits of the prefill's last row and each decode
 * step go to logits[step * n_vocab]. */
static int generate(struct st_model *m, const char *stages, uint32_t kv_type, int32_t *out_tokens, float *logits)
{
	const struct st_model_desc *d = st_model_desc(m);
	struct st_session_params p;
	struct st_session *s = NULL;
	int32_t prompt[N_PROMPT];
	int rc;

	st_session_params_default(&p);
	p.stages = stages;
	p.kv_type = kv_type;
	p.n_ctx = 128;
	if ((rc = st_session_create(m, &p, &s)) != 0)
		return rc;
	for (int i = 0; i < N_PROMPT; i++)
		prompt[i] = (int32_t)(1 + (i * 37 + 11) % (d->n_vocab - 1));
	rc = st_session_eval(s, prompt, N_PROMPT, false);
	for (int step = 0; step < N_GEN && rc >= 0; step++) {
		const float *l = st_session_logits(s, -1);
		memcpy(logits + (size_t)step * d->n_vocab, l, d->n_vocab * sizeof(float));
		out_tokens[step] = tap_argmax(l, d->n_vocab);
		if (step + 1 < N_GEN)
			rc = st_session_eval(s, &out_tokens[step], 1, false);
	}
	st_session_destroy(s);
	return rc < 0 ? rc : 0;
}

int main(void)
{
	const struct st_backend_ops *vk = st_backend_find("vulkan");
	const char *dir = tap_models_dir();
	char path[1024];
	struct st_model *m = NULL;

	st_set_log(log_cb, NULL, ST_LOG_WARN);
	if (!getenv("ST_VULKAN_VALIDATION"))
		setenv("ST_VULKAN_VALIDATION", "1", 1);
	if (!vk)
		tap_skip_all("built without Vulkan");
	if (st_backend_device_count(vk) == 0)
		tap_skip_all("no Vulkan device (install mesa-vulkan-drivers for lavapipe)");
	if (!dir)
		tap_skip_all("models directory not found (ST_MODELS_DIR)");
	snprintf(path, sizeof path, "%s/stories260K/stories260K.gguf", dir);
	if (st_model_open(path, &m) != 0)
		tap_skip_all("cannot open %s: %s", path, st_last_error());
	const struct st_model_desc *d = st_model_desc(m);
	char all_cpu[64], all_vk[64], split[64];
	snprintf(all_cpu, sizeof all_cpu, "cpu:0-%u", d->n_layer - 1);
	snprintf(all_vk, sizeof all_vk, "vulkan0:0-%u", d->n_layer - 1);
	snprintf(split, sizeof split, "cpu:0-%u,vulkan0:%u-%u", d->n_layer / 2 - 1, d->n_layer / 2, d->n_layer - 1);

	/* the last run copies the weights into Vulkan memory instead of
	 * importing the mapped file (VK_EXT_external_memory_host) */
	const struct { const char *stages; uint32_t kv; bool copy; } runs[] = {
		{ all_vk, ST_KV_F32, false }, { split, ST_KV_F32, false }, { all_vk, ST_KV_F16, false },
		{ all_vk, ST_KV_F32, true },
	};
	for (size_t r = 0; r < sizeof runs / sizeof runs[0]; r++) {
		if (runs[r].copy)
			setenv("ST_VULKAN_NO_HOST_IMPORT", "1", 1);
		int32_t ref_tok[N_GEN], tok[N_GEN];
		float *ref = malloc((size_t)N_GEN * d->n_vocab * sizeof(float));
		float *got = malloc((size_t)N_GEN * d->n_vocab * sizeof(float));
		int rc = generate(m, all_cpu, runs[r].kv, ref_tok, ref);
		ok(rc == 0, "cpu reference (%s kv): %s", runs[r].kv == ST_KV_F16 ? "f16" : "f32", rc ? st_last_error() : "ok");
		rc = generate(m, runs[r].stages, runs[r].kv, tok, got);
		if (!ok(rc == 0, "%s (%s kv) runs: %s", runs[r].stages, runs[r].kv == ST_KV_F16 ? "f16" : "f32",
			rc ? st_last_error() : "ok")) {
			free(ref), free(got);
			continue;
		}
		int same = 0;
		double worst = 0;
		for (int i = 0; i < N_GEN; i++) {
			same += tok[i] == ref_tok[i];
			double e = tap_nmse(ref + (size_t)i * d->n_vocab, got + (size_t)i * d->n_vocab, d->n_vocab);
			if (!(e <= worst))
				worst = e;
		}
		ok(same == N_GEN, "%s%s: %d of %d greedy tokens identical to the cpu's", runs[r].stages,
		   runs[r].copy ? " (weights copied)" : "", same, N_GEN);
		ok(worst <= 1e-6, "%s: worst logits NMSE over prefill + %d decode steps %.3g (max 1e-6)", runs[r].stages,
		   N_GEN - 1, worst);
		free(ref), free(got);
		unsetenv("ST_VULKAN_NO_HOST_IMPORT");
	}
	st_model_close(m);
	ok(st_vk_validation_error_count() == 0, "validation layer: %llu errors",
	   (unsigned long long)st_vk_validation_error_count());
	return tap_done();
}
