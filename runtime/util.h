/* util.h: errors, logging and checked arithmetic shared by every module.
 *
 * Conventions (DESIGN.md): library functions return 0 or a count, or a
 * negative errno-style code.  Where a failure deserves words, the function
 * calls st_error(code, fmt, ...), which records a message for the calling
 * thread (read it with st_last_error()) and passes it to the log callback,
 * then returns `code` so the call site reads `return st_error(-EINVAL, ...)`.
 * Library code never prints, exits or aborts. */
#ifndef ST_UTIL_H
#define ST_UTIL_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "strata.h"

#if defined(__GNUC__)
#define ST_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define ST_PRINTF(a, b)
#endif

/* Record a message for this thread and log it at ST_LOG_DEBUG; returns code. */
int st_error(int code, const char *fmt, ...) ST_PRINTF(2, 3);
/* Log through the user's callback (default: silent below WARN, stderr above). */
void st_log(enum st_log_level level, const char *fmt, ...) ST_PRINTF(2, 3);

/* Checked arithmetic: return true on overflow (like the builtins). */
static inline bool st_add_overflow_u64(uint64_t a, uint64_t b, uint64_t *r) { return __builtin_add_overflow(a, b, r); }
static inline bool st_mul_overflow_u64(uint64_t a, uint64_t b, uint64_t *r) { return __builtin_mul_overflow(a, b, r); }
static inline bool st_add_overflow_size(size_t a, size_t b, size_t *r) { return __builtin_add_overflow(a, b, r); }
static inline bool st_mul_overflow_size(size_t a, size_t b, size_t *r) { return __builtin_mul_overflow(a, b, r); }

/* Round up to a power-of-two alignment; returns true on overflow. */
static inline bool st_align_up_u64(uint64_t v, uint64_t align, uint64_t *r)
{
	uint64_t t;
	if (__builtin_add_overflow(v, align - 1, &t))
		return true;
	*r = t & ~(align - 1);
	return false;
}

static inline bool st_is_pow2_u64(uint64_t v) { return v && !(v & (v - 1)); }

#define ST_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define ST_MIN(a, b) ((a) < (b) ? (a) : (b))
#define ST_MAX(a, b) ((a) > (b) ? (a) : (b))

/* Monotonic clock in seconds. */
double st_time_now(void);

/* The number after "key:" on its line of a /proc-style text file (e.g.
 * "/proc/meminfo", "MemAvailable" gives the kB count); 0 and *v set, or
 * -ENOENT when the file or the key is missing. */
int st_proc_field_u64(const char *path, const char *key, uint64_t *v);

#endif
