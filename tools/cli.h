/* cli.h: what the `strata` subcommands share.  Only tools/ prints. */
#ifndef ST_CLI_H
#define ST_CLI_H

#include <stdbool.h>
#include <stdint.h>

/* Every subcommand: int cmd_x(int argc, char **argv) with argv[0] = "x";
 * returns the process exit code (0 ok, 1 failure, 2 bad arguments). */
typedef int (*st_cmd_fn)(int argc, char **argv);

/* Print "strata CMD: MSG" to stderr and return 2 (bad arguments). */
int cli_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Print "strata CMD: MSG" to stderr and return 1 (the work failed). */
int cli_fail(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Strict number parsing: the whole string, in range; false on junk. */
bool cli_parse_i64(const char *s, int64_t min, int64_t max, int64_t *out);
bool cli_parse_f64(const char *s, double min, double max, double *out);
/* Option matching: if argv[*i] is `name` ("--x VALUE" or "--x=VALUE"),
 * set *val, step *i past the value and return 1; 0 if argv[*i] is another
 * option; -1 after printing a usage error when the value is missing. */
int cli_take(const char *cmd, int argc, char **argv, int *i, const char *name, const char **val);
/* Format a byte count as "1.23 MiB" into buf. */
const char *cli_bytes(uint64_t n, char *buf, int size);

/* Subcommands (one file each). */
int cmd_run(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_mkmodel(int argc, char **argv);
int cmd_perplexity(int argc, char **argv);
int cmd_plan(int argc, char **argv);
int cmd_profile(int argc, char **argv);
int cmd_bench_load(int argc, char **argv);
int cmd_devices(int argc, char **argv);
int cmd_bench_ops(int argc, char **argv);

#endif
