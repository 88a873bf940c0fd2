/* cmd_info.c: `strata info`: what a GGUF model file holds. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "gguf.h"
#include "strata.h"
#include "types.h"

static const char *const CMD = "info";

static void usage(FILE *f)
{
	fprintf(f,
		"usage: strata info -m MODEL [--tensors]\n"
		"\n"
		"Prints what a GGUF file holds: file version, alignment and sizes, the\n"
		"architecture's hyperparameters, the tensors (a summary by type: count, elements\n"
		"and bytes; every tensor's name, type, shape and bytes with --tensors), the total\n"
		"size, and the tokenizer (model kind, vocabulary size, bos/eos ids, add_bos).\n"
		"Reads the header only (no weights).\n"
		"\n"
		"  -m, --model MODEL   the GGUF file\n"
		"  --tensors           list every tensor\n"
		"  -h, --help          this text\n");
}

static void print_u32(const struct st_gguf *g, const char *arch, const char *key, const char *label)
{
	char full[160];
	uint32_t v;
	snprintf(full, sizeof(full), "%s.%s", arch, key);
	if (st_gguf_get_u32(g, full, &v) == 0)
		printf("  %-24s %" PRIu32 "\n", label, v);
}

static void print_f32(const struct st_gguf *g, const char *arch, const char *key, const char *label)
{
	char full[160];
	float v;
	snprintf(full, sizeof(full), "%s.%s", arch, key);
	if (st_gguf_get_f32(g, full, &v) == 0)
		printf("  %-24s %g\n", label, (double)v);
}

static void shape_str(const struct st_gguf_tensor *t, char *buf, size_t size)
{
	size_t o = 0;
	buf[0] = 0;
	for (uint32_t d = 0; d < t->n_dims && o < size; d++)
		o += (size_t)snprintf(buf + o, size - o, "%s%" PRIu64, d ? " x " : "", t->ne[d]);
}

int cmd_info(int argc, char **argv)
{
	const char *model = NULL, *v, *arch = "llama", *s;
	bool list = false;
	struct st_gguf *g = NULL;
	struct st_tokenizer *tok = NULL;
	char b[32];
	int rc;

	for (int i = 1; i < argc; i++) {
		int r;
		if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			usage(stdout);
			return 0;
		}
		if ((r = cli_take(CMD, argc, argv, &i, "-m", &v)) ||
		    (r = cli_take(CMD, argc, argv, &i, "--model", &v))) {
			if (r < 0)
				return 2;
			model = v;
			continue;
		}
		if (!strcmp(argv[i], "--tensors")) {
			list = true;
			continue;
		}
		if (argv[i][0] == '-')
			return cli_usage_error(CMD, "unknown option '%s'", argv[i]);
		return cli_usage_error(CMD, "unexpected argument '%s'", argv[i]);
	}
	if (!model)
		return cli_usage_error(CMD, "missing -m MODEL");

	rc = st_gguf_open(model, &g);
	if (rc < 0)
		return cli_fail(CMD, "%s: %s", model, st_last_error());

	printf("file: %s\n", model);
	printf("  %-24s GGUF v%" PRIu32 "\n", "format", g->version);
	printf("  %-24s %s\n", "file size", cli_bytes(g->file_size, b, sizeof(b)));
	printf("  %-24s %" PRIu64 "\n", "metadata keys", g->n_kv);
	printf("  %-24s %" PRIu32 "\n", "alignment", g->alignment);
	printf("  %-24s %" PRIu64 "\n", "data offset", g->data_offset);
	if (st_gguf_get_str(g, "general.architecture", &s) == 0)
		arch = s;
	if (st_gguf_get_str(g, "general.name", &s) == 0)
		printf("  %-24s %s\n", "name", s);

	printf("hyperparameters (%s):\n", arch);
	print_u32(g, arch, "block_count", "layers");
	print_u32(g, arch, "embedding_length", "dim");
	print_u32(g, arch, "feed_forward_length", "ff");
	print_u32(g, arch, "attention.head_count", "heads");
	print_u32(g, arch, "attention.head_count_kv", "kv heads");
	print_u32(g, arch, "rope.dimension_count", "rope dims");
	print_f32(g, arch, "rope.freq_base", "rope theta");
	print_f32(g, arch, "attention.layer_norm_rms_epsilon", "rms eps");
	print_u32(g, arch, "context_length", "context (trained)");
	print_u32(g, arch, "vocab_size", "vocab");

	{
		uint64_t count[ST_TYPE_COUNT] = { 0 }, bytes[ST_TYPE_COUNT] = { 0 }, elems[ST_TYPE_COUNT] = { 0 };
		uint64_t total = 0, n_el = 0;
		char sh[96];
		printf("tensors: %" PRIu64 "\n", g->n_tensors);
		for (uint64_t i = 0; i < g->n_tensors; i++) {
			const struct st_gguf_tensor *t = &g->tensors[i];
			if (t->type < ST_TYPE_COUNT) {
				count[t->type]++;
				bytes[t->type] += t->nbytes;
				elems[t->type] += t->n_elements;
			}
			total += t->nbytes;
			n_el += t->n_elements;
			if (list) {
				shape_str(t, sh, sizeof(sh));
				printf("  %-32s %-5s %-20s %12" PRIu64 " bytes\n", t->name, st_type_name(t->type),
				       sh, t->nbytes);
			}
		}
		printf("by type:\n");
		for (int ty = 0; ty < ST_TYPE_COUNT; ty++)
			if (count[ty])
				printf("  %-6s %5" PRIu64 " tensors %14" PRIu64 " elements %12s\n",
				       st_type_name((uint32_t)ty), count[ty], elems[ty],
				       cli_bytes(bytes[ty], b, sizeof(b)));
		printf("total: %" PRIu64 " elements, %s (%" PRIu64 " bytes)\n", n_el,
		       cli_bytes(total, b, sizeof(b)), total);
	}

	if (!st_gguf_find(g, "tokenizer.ggml.model")) {
		printf("tokenizer: none\n");
	} else if ((rc = st_tokenizer_from_gguf(g, &tok)) < 0) {
		printf("tokenizer: unusable: %s\n", st_last_error());
	} else {
		int32_t bos = st_tokenizer_bos(tok), eos = st_tokenizer_eos(tok);
		const char *kind = st_tokenizer_kind(tok) == ST_TOKENIZER_SPM ? "spm (llama)" :
				   st_tokenizer_kind(tok) == ST_TOKENIZER_BPE ? "bpe (gpt2)" : "?";
		printf("tokenizer:\n");
		printf("  %-24s %s\n", "model", kind);
		printf("  %-24s %" PRIu32 "\n", "vocab size", st_tokenizer_n_vocab(tok));
		printf("  %-24s %d %s\n", "bos", (int)bos, bos >= 0 ? st_tokenizer_token_text(tok, bos) : "");
		printf("  %-24s %d %s\n", "eos", (int)eos, eos >= 0 ? st_tokenizer_token_text(tok, eos) : "");
		printf("  %-24s %s\n", "add_bos", st_tokenizer_add_bos(tok) ? "true" : "false");
		st_tokenizer_free(tok);
	}
	st_gguf_free(g);

	/* can strata run it?  (validates every tensor against the
	 * hyperparameters and maps the weights) */
	{
		struct st_model *m = NULL;
		if (st_model_open(model, &m) < 0) {
			printf("strata: cannot run it: %s\n", st_last_error());
		} else {
			printf("strata: loads (%s weights, %llu parameters)\n",
			       st_type_name(st_model_desc(m)->weight_type),
			       (unsigned long long)st_model_desc(m)->n_params);
			st_model_close(m);
		}
	}
	return 0;
}
