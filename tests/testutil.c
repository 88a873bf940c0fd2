/* testutil.c: small helpers shared by the TAP test programs. */
#include "tap.h"

#include <sys/stat.h>

const char *tap_models_dir(void)
{
	const char *d = getenv("ST_MODELS_DIR");
	struct stat st;
	if (!d || stat(d, &st) != 0 || !S_ISDIR(st.st_mode))
		return NULL;
	return d;
}
