/* testutil.c: small helpers shared by the TAP test programs. */
#include "tap.h"

#include <math.h>
#include <sys/stat.h>

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
