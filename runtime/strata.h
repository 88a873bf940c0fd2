/* strata.h: the public interface of libstrata.
 *
 * Handles are opaque; functions return 0 (or a count) on success and a
 * negative errno-style code on failure, with a message for the calling
 * thread in st_last_error().  Nothing here prints, exits or aborts. */
#ifndef STRATA_H
#define STRATA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define STRATA_VERSION "0.1.0"

/* ---- logging and errors -------------------------------------------- */

enum st_log_level { ST_LOG_DEBUG = 0, ST_LOG_INFO = 1, ST_LOG_WARN = 2, ST_LOG_ERROR = 3 };
typedef void (*st_log_fn)(enum st_log_level level, const char *msg, void *user);

/* Install the one log callback (NULL: silent) and the lowest level passed. */
void st_set_log(st_log_fn fn, void *user, enum st_log_level min_level);
/* The message of the last failure on this thread. */
const char *st_last_error(void);

/* ---- tokenizer -------------------------------------------------------- */

/* ---- model and session ------------------------------------------------ */

/* ---- sampler ---------------------------------------------------------- */

#ifdef __cplusplus
}
#endif
#endif
