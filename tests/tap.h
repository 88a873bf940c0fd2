/* tap.h: a tiny TAP producer for the test programs (meson protocol: 'tap').
 *   tap_plan(n) or tap_plan_lazy() ... tap_done();
 *   ok(cond, fmt, ...), tap_skip_all(reason), diag(fmt, ...)
 * Exit status: 0 when every test passed, 1 otherwise.  tap_skip_all() exits
 * 0 after the plan "1..0 # SKIP reason": meson's TAP parser reports that as
 * a skip, while a non-zero status would count as an error. */
#ifndef ST_TAP_H
#define ST_TAP_H

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

static int tap_n, tap_failed, tap_planned = -1;

static inline void tap_plan(int n) { tap_planned = n; printf("1..%d\n", n); fflush(stdout); }

__attribute__((format(printf, 1, 2))) static inline void diag(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	printf("# ");
	vprintf(fmt, ap);
	printf("\n");
	va_end(ap);
	fflush(stdout);
}

/* The description stays on its line (captured command output often ends
 * with a newline; TAP would read the rest as unknown lines). */
__attribute__((format(printf, 2, 3))) static inline int ok(int cond, const char *fmt, ...)
{
	char msg[4096];
	va_list ap;
	tap_n++;
	if (!cond)
		tap_failed++;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	for (char *c = msg; *c; c++)
		if (*c == '\n' || *c == '\r')
			*c = ' ';
	printf("%sok %d - %s\n", cond ? "" : "not ", tap_n, msg);
	fflush(stdout);
	return cond;
}

__attribute__((format(printf, 1, 2))) static inline void tap_skip(const char *fmt, ...)
{
	va_list ap;
	tap_n++;
	printf("ok %d # SKIP ", tap_n);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
}

__attribute__((noreturn, format(printf, 1, 2))) static inline void tap_skip_all(const char *fmt, ...)
{
	va_list ap;
	printf("1..0 # SKIP ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
	exit(0);
}

/* Ends the test: prints the plan if none was given, returns the exit code. */
static inline int tap_done(void)
{
	if (tap_planned < 0)
		printf("1..%d\n", tap_n);
	else if (tap_planned != tap_n) {
		printf("# planned %d tests but ran %d\n", tap_planned, tap_n);
		tap_failed++;
	}
	fflush(stdout);
	return tap_failed ? 1 : 0;
}

/* Normalized mean squared error sum((ref-got)^2) / sum(ref^2) (or the bare
 * sum when ref is all zero); INFINITY when either side holds a NaN, so NaN
 * always fails a threshold. */
double tap_nmse(const float *ref, const float *got, size_t n);
/* Index of the largest element (the first on ties). */
int tap_argmax(const float *x, size_t n);
/* Median of v[0..n-1] (n >= 1; sorts v in place). */
double tap_median(double *v, int n);

/* Path to ../shared/models (env ST_MODELS_DIR overrides), or NULL. */
const char *tap_models_dir(void);

/* A test file's byte at position i (a fixed pattern that does not repeat
 * with any power-of-two period below 16 MiB), and a file of size bytes of
 * it, flushed to the disk (fsync); 0 or -1. */
unsigned char tap_file_byte(uint64_t i);
int tap_write_file(const char *path, uint64_t size);

/* Library log messages of level INFO and up, one per line, appended to
 * tap_logbuf (set it to "" to start over) once tap_log_capture() ran. */
extern char tap_logbuf[8192];
void tap_log_capture(void);

/* Evaluate nt tokens in a new session of m made with sp and copy the logits
 * of every token to out (nt x n_vocab); 0 or a negative code. */
struct st_model;
struct st_session_params;
int tap_session_logits(struct st_model *m, const struct st_session_params *sp, const int32_t *toks, int nt,
		       float *out);

#endif
