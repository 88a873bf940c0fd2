/* profile.h: one device profile of a model (cmd_profile.c), for `strata
 * profile` and `strata run --plan auto` (plan_run.c). */
#ifndef ST_TOOLS_PROFILE_H
#define ST_TOOLS_PROFILE_H

#include <stdbool.h>
#include <stddef.h>

struct profile_req {
	const char *model;              /* GGUF path */
	const char *device;             /* "cpu", "vulkan0", ... */
	const char *output;             /* NULL: $XDG_CACHE_HOME/strata/profile-MODEL-DEVICE.json */
	const char *contexts;           /* "0,64,256" or NULL (default) */
	const char *prefill;            /* prompt lengths "8,32,128" or NULL (default) */
	int runs;                       /* decode tokens per context (0: default) */
	int threads;                    /* CPU threads (0: all) */
	bool quick;                     /* measure a few blocks, estimate the rest */
};

/* Measure and write the profile (progress on stderr).  0 and the file's
 * path in path; 1 (failure) or 2 (bad request) with a one-line reason in
 * why.  A device listed in the environment variable ST_PROFILE_FAIL
 * (comma-separated ids) fails on purpose, for tests of callers. */
int profile_write(const struct profile_req *rq, char *path, size_t psize, char *why, size_t wsize);

#endif
