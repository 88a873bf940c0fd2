/* util.c: per-thread error messages and the one log callback. */
#include "util.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static _Thread_local char st_errbuf[512];
static st_log_fn st_log_cb;
static void *st_log_user;
static enum st_log_level st_log_min = ST_LOG_WARN;

void st_set_log(st_log_fn fn, void *user, enum st_log_level min_level)
{
	st_log_cb = fn;
	st_log_user = user;
	st_log_min = min_level;
}

const char *st_last_error(void)
{
	return st_errbuf[0] ? st_errbuf : "no error recorded";
}

static void st_vlog(enum st_log_level level, const char *fmt, va_list ap)
{
	char msg[1024];
	if (level < st_log_min)
		return;
	vsnprintf(msg, sizeof msg, fmt, ap);
	if (st_log_cb)
		st_log_cb(level, msg, st_log_user);
}

void st_log(enum st_log_level level, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	st_vlog(level, fmt, ap);
	va_end(ap);
}

int st_error(int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(st_errbuf, sizeof st_errbuf, fmt, ap);
	va_end(ap);
	st_log(ST_LOG_DEBUG, "%s", st_errbuf);
	return code;
}

double st_time_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int st_proc_field_u64(const char *path, const char *key, uint64_t *v)
{
	FILE *f = fopen(path, "r");
	const size_t kl = strlen(key);
	char line[256];
	int rc = -ENOENT;
	if (!f)
		return -ENOENT;
	while (rc && fgets(line, sizeof line, f)) {
		unsigned long long x;
		if (!strncmp(line, key, kl) && line[kl] == ':' && sscanf(line + kl + 1, "%llu", &x) == 1) {
			*v = (uint64_t)x;
			rc = 0;
		}
	}
	fclose(f);
	return rc;
}
