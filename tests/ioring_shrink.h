/* ioring_shrink.h: a loader chunk callback that truncates the file being
 * loaded the first time it runs (the "file shrinks mid-load" failure), for
 * the ioring tests. */
#ifndef ST_TESTS_IORING_SHRINK_H
#define ST_TESTS_IORING_SHRINK_H

#include <errno.h>
#include <stdint.h>
#include <unistd.h>

struct shrink {
	const char *path;
	uint64_t to;            /* new size */
	int calls;
};

static inline int shrink_cb(void *user, size_t si, uint64_t off, uint64_t n)
{
	struct shrink *s = user;
	(void)si, (void)off, (void)n;
	if (s->calls++ == 0 && truncate(s->path, (off_t)s->to) != 0)
		return -errno;
	return 0;
}

#endif
