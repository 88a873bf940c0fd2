/* stream.c: STREAM-style memory *read* bandwidth with N threads, the limit
 * a decode step runs into (every weight byte is read once per token).
 *
 * Each thread sums its share of a buffer far larger than the last-level
 * cache (default 1 GiB, 32x a 32 MiB L3) with wide loads;
 * the best of several passes is reported, like STREAM.  `strata bench`
 * links this file for its bandwidth-limit column; built alone it is a
 * small program:
 *   cc -O2 -DST_STREAM_MAIN bench/stream.c -o stream -lpthread
 *   ./stream [-t THREADS] [-m MIB] [-r REPEATS] [--json] */
#include "stream.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

struct stream_arg {
	const uint64_t *p;
	size_t n;               /* uint64 words */
	uint64_t sum;
	pthread_barrier_t *bar;
	int reps;
	double *secs;           /* per pass (thread 0 writes) */
};

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

#if defined(__x86_64__)
__attribute__((target("avx2"))) static uint64_t sum_avx2(const uint64_t *p, size_t n)
{
	__m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
	size_t i = 0;
	for (; i + 16 <= n; i += 16) {
		a0 = _mm256_add_epi64(a0, _mm256_load_si256((const __m256i *)(p + i)));
		a1 = _mm256_add_epi64(a1, _mm256_load_si256((const __m256i *)(p + i + 4)));
		a2 = _mm256_add_epi64(a2, _mm256_load_si256((const __m256i *)(p + i + 8)));
		a3 = _mm256_add_epi64(a3, _mm256_load_si256((const __m256i *)(p + i + 12)));
	}
	a0 = _mm256_add_epi64(_mm256_add_epi64(a0, a1), _mm256_add_epi64(a2, a3));
	uint64_t t[4];
	_mm256_storeu_si256((__m256i *)t, a0);
	uint64_t s = t[0] + t[1] + t[2] + t[3];
	for (; i < n; i++)
		s += p[i];
	return s;
}
#endif

static uint64_t sum_plain(const uint64_t *p, size_t n)
{
	uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
	size_t i = 0;
	for (; i + 4 <= n; i += 4) {
		s0 += p[i];
		s1 += p[i + 1];
		s2 += p[i + 2];
		s3 += p[i + 3];
	}
	for (; i < n; i++)
		s0 += p[i];
	return s0 + s1 + s2 + s3;
}

static uint64_t sum_words(const uint64_t *p, size_t n)
{
#if defined(__x86_64__)
	if (__builtin_cpu_supports("avx2"))
		return sum_avx2(p, n);
#endif
	return sum_plain(p, n);
}

static void *stream_thread(void *v)
{
	struct stream_arg *a = v;
	for (int r = 0; r < a->reps; r++) {
		pthread_barrier_wait(a->bar);
		double t0 = now();
		a->sum += sum_words(a->p, a->n);
		pthread_barrier_wait(a->bar);
		if (a->secs)
			a->secs[r] = now() - t0;
	}
	return NULL;
}

int st_stream_read(int n_threads, size_t bytes, int reps, struct st_stream_result *res)
{
	memset(res, 0, sizeof(*res));
	if (n_threads < 1 || n_threads > 256 || reps < 1 || reps > 1000 || bytes < ((size_t)1 << 20))
		return -1;
	size_t words = bytes / 8 / (size_t)(64 * n_threads) * (size_t)(64 * n_threads);
	uint64_t *buf = NULL;
	if (posix_memalign((void **)&buf, 4096, words * 8))
		return -1;
	for (size_t i = 0; i < words; i++)      /* touch every page: no zero-page reads */
		buf[i] = i;
	pthread_barrier_t bar;
	pthread_barrier_init(&bar, NULL, (unsigned)n_threads);
	struct stream_arg *args = calloc((size_t)n_threads, sizeof(*args));
	pthread_t *th = calloc((size_t)n_threads, sizeof(*th));
	double *secs = calloc((size_t)reps, sizeof(double));
	if (!args || !th || !secs) {
		free(args);
		free(th);
		free(secs);
		free(buf);
		return -1;
	}
	const size_t per = words / (size_t)n_threads;
	for (int i = 0; i < n_threads; i++) {
		args[i] = (struct stream_arg){ .p = buf + (size_t)i * per, .n = per, .bar = &bar, .reps = reps,
					       .secs = i == 0 ? secs : NULL };
		if (i > 0)
			pthread_create(&th[i], NULL, stream_thread, &args[i]);
	}
	stream_thread(&args[0]);
	uint64_t check = 0;
	for (int i = 0; i < n_threads; i++) {
		if (i > 0)
			pthread_join(th[i], NULL);
		check += args[i].sum;
	}
	pthread_barrier_destroy(&bar);
	double best = 1e30, worst = 0;
	for (int r = 0; r < reps; r++) {
		best = secs[r] < best ? secs[r] : best;
		worst = secs[r] > worst ? secs[r] : worst;
	}
	res->bytes = words * 8;
	res->threads = n_threads;
	res->best_gbs = (double)res->bytes / best / 1e9;
	res->worst_gbs = (double)res->bytes / worst / 1e9;
	res->checksum = check;
	free(args);
	free(th);
	free(secs);
	free(buf);
	return 0;
}

#ifdef ST_STREAM_MAIN
int main(int argc, char **argv)
{
	int threads = 1, reps = 5, json = 0;
	long mib = 1024;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-t") && i + 1 < argc)
			threads = atoi(argv[++i]);
		else if (!strcmp(argv[i], "-m") && i + 1 < argc)
			mib = atol(argv[++i]);
		else if (!strcmp(argv[i], "-r") && i + 1 < argc)
			reps = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--json"))
			json = 1;
		else {
			fprintf(stderr, "usage: stream [-t THREADS] [-m MIB] [-r REPEATS] [--json]\n");
			return 2;
		}
	}
	struct st_stream_result r;
	if (st_stream_read(threads, (size_t)mib << 20, reps, &r)) {
		fprintf(stderr, "stream: bad arguments or out of memory\n");
		return 1;
	}
	if (json)
		printf("{\"test\":\"stream_read\",\"threads\":%d,\"bytes\":%zu,\"best_gbs\":%.3f,\"worst_gbs\":%.3f}\n",
		       r.threads, r.bytes, r.best_gbs, r.worst_gbs);
	else
		printf("read bandwidth, %d thread(s), %zu MiB: best %.2f GB/s, worst %.2f GB/s\n", r.threads,
		       r.bytes >> 20, r.best_gbs, r.worst_gbs);
	return 0;
}
#endif
