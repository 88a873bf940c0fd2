/* strata.c: the `strata` command: dispatch to a subcommand. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "strata.h"

struct cmd {
	const char *name;
	st_cmd_fn fn;
	const char *summary;
};

/* Subcommands are added here as they land. */
static const struct cmd commands[] = {
	{ "run", cmd_run, "generate text from a prompt" },
	{ "info", cmd_info, "show a GGUF model's hyperparameters, tensors and tokenizer" },
	{ "mkmodel", cmd_mkmodel, "write a llama GGUF with deterministic random weights" },
	{ "perplexity", cmd_perplexity, "mean negative log-likelihood and perplexity over a text" },
	{ "bench", cmd_bench, "pp/tg tokens/s like llama-bench, with the memory-bandwidth limit" },
	{ "bench-load", cmd_bench_load, "load a stage's weights (io_uring/pread/mmap) and report throughput" },
	{ "devices", cmd_devices, "list every backend's devices (cpu, vulkan0, opencl0, ...)" },
	{ "bench-ops", cmd_bench_ops, "per-op time, GB/s and GFLOP/s of a device, and a stage's dispatch overhead" },
	{ "plan", cmd_plan, "choose devices and cut points for a model (exact DP) vs baselines" },
	{ "profile", cmd_profile, "measure per-layer costs of a model on a device (for plan --profiles)" },
	{ NULL, NULL, NULL },
};

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "strata %s: ", cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, " (see 'strata %s --help')\n", cmd);
	return 2;
}

int cli_fail(const char *cmd, const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "strata %s: ", cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	return 1;
}

bool cli_parse_i64(const char *s, int64_t min, int64_t max, int64_t *out)
{
	char *end;
	long long v;
	if (!s || !*s)
		return false;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || *end || v < min || v > max)
		return false;
	*out = v;
	return true;
}

bool cli_parse_f64(const char *s, double min, double max, double *out)
{
	char *end;
	double v;
	if (!s || !*s)
		return false;
	errno = 0;
	v = strtod(s, &end);
	if (errno || *end || !isfinite(v) || v < min || v > max)
		return false;
	*out = v;
	return true;
}

int cli_take(const char *cmd, int argc, char **argv, int *i, const char *name, const char **val)
{
	const char *a = argv[*i];
	size_t n = strlen(name);
	if (strncmp(a, name, n))
		return 0;
	if (a[n] == '=' && name[1] == '-') {    /* --long=value */
		*val = a + n + 1;
		return 1;
	}
	if (a[n])
		return 0;
	if (*i + 1 >= argc) {
		cli_usage_error(cmd, "option %s needs a value", name);
		return -1;
	}
	*val = argv[++*i];
	return 1;
}

const char *cli_bytes(uint64_t n, char *buf, int size)
{
	static const char *unit[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	double v = (double)n;
	int u = 0;
	while (v >= 1024 && u < 4) {
		v /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(buf, (size_t)size, "%llu B", (unsigned long long)n);
	else
		snprintf(buf, (size_t)size, "%.2f %s", v, unit[u]);
	return buf;
}

static void usage(FILE *f)
{
	fprintf(f, "strata %s: run large language models across the edge devices you own\n\n"
		   "usage: strata COMMAND [OPTIONS]   ('strata COMMAND --help' for each)\n\ncommands:\n",
		STRATA_VERSION);
	for (const struct cmd *c = commands; c->name; c++)
		fprintf(f, "  %-12s %s\n", c->name, c->summary);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(argv[1], "--version")) {
		printf("strata %s\n", STRATA_VERSION);
		return 0;
	}
	for (const struct cmd *c = commands; c->name; c++)
		if (!strcmp(argv[1], c->name))
			return c->fn(argc - 1, argv + 1);
	fprintf(stderr, "strata: unknown command '%s' (see 'strata --help')\n", argv[1]);
	return 2;
}
