/* testutil.c: small helpers shared by the TAP test programs. */
#include "tap.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

const char *tap_models_dir(void)
{
	const char *d = getenv("ST_MODELS_DIR");
	struct stat st;
	if (!d || stat(d, &st) != 0 || !S_ISDIR(st.st_mode))
		return NULL;
	return d;
}

double tap_nmse(const float *ref, const float *got, size_t n)
{
	double num = 0, den = 0;
	for (size_t i = 0; i < n; i++) {
		if (isnan(ref[i]) || isnan(got[i]))
			return INFINITY;
		num += ((double)ref[i] - got[i]) * ((double)ref[i] - got[i]);
		den += (double)ref[i] * ref[i];
	}
	return den > 0 ? num / den : num;
}

int tap_argmax(const float *x, size_t n)
{
	size_t best = 0;
	for (size_t i = 1; i < n; i++)
		if (x[i] > x[best])
			best = i;
	return (int)best;
}

static int tap_cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

double tap_median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof *v, tap_cmp_double);
	return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

unsigned char tap_file_byte(uint64_t i)
{
	return (unsigned char)(((uint32_t)i * 0x9E3779B1u) >> 24) ^ (unsigned char)(i >> 12);
}

int tap_write_file(const char *path, uint64_t size)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	unsigned char buf[65536];
	int rc = fd < 0 ? -1 : 0;
	for (uint64_t off = 0; off < size && !rc;) {
		size_t n = (size_t)(size - off < sizeof buf ? size - off : sizeof buf);
		for (size_t i = 0; i < n; i++)
			buf[i] = tap_file_byte(off + i);
		rc = write(fd, buf, n) == (ssize_t)n ? 0 : -1;
		off += n;
	}
	if (!rc)
		rc = fsync(fd);
	if (fd >= 0 && close(fd) != 0)
		rc = -1;
	return rc;
}
