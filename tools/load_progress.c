/* load_progress.c: see load_progress.h. */
#include "load_progress.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "loader.h"
#include "strata.h"
#include "util.h"

struct load_progress {
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool stop;
	char *path;
	double size;
	double f0;            /* cached fraction at the start */
};

static void *poll_thread(void *arg)
{
	struct load_progress *lp = arg;
	const double t0 = st_time_now();
	bool drawn = false;
	for (;;) {
		struct timespec until;
		double f = 0, el;
		bool stop;
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_nsec += 250 * 1000 * 1000;
		if (until.tv_nsec >= 1000000000L) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000L;
		}
		pthread_mutex_lock(&lp->mu);
		if (!lp->stop)
			pthread_cond_timedwait(&lp->cv, &lp->mu, &until);
		stop = lp->stop;
		pthread_mutex_unlock(&lp->mu);
		/* drawn without the lock: a terminal that blocks output must not
		 * block load_progress_stop's signal (it still waits in join) */
		if (stop || st_load_cached_fraction(lp->path, 0, 0, &f) < 0)
			break;
		el = st_time_now() - t0;
		if (el < 0.5)
			continue;
		{
			const double done = f * lp->size, rate = (f - lp->f0) * lp->size / el;
			const double eta = rate > 0 ? (1 - f) * lp->size / rate : 0;
			fprintf(stderr, "\r  loading weights %8.1f / %.1f MiB  %7.1f MB/s  ETA %5.1f s ", done / 1048576.0,
				lp->size / 1048576.0, rate / 1e6, eta);
			fflush(stderr);
			drawn = true;
		}
		if (f >= 1.0)
			break;
	}
	if (drawn) {
		fprintf(stderr, "\r\033[K");
		fflush(stderr);
	}
	return NULL;
}

struct load_progress *load_progress_start(const char *path)
{
	struct load_progress *lp;
	struct stat sb;
	double f = 0;
	if (!isatty(2) || !path || stat(path, &sb) < 0 || st_load_cached_fraction(path, 0, 0, &f) < 0 || f >= 0.99)
		return NULL;
	lp = calloc(1, sizeof *lp);
	if (!lp)
		return NULL;
	lp->path = malloc(strlen(path) + 1);
	if (!lp->path) {
		free(lp);
		return NULL;
	}
	strcpy(lp->path, path);
	lp->size = (double)sb.st_size;
	lp->f0 = f;
	pthread_mutex_init(&lp->mu, NULL);
	pthread_cond_init(&lp->cv, NULL);
	if (pthread_create(&lp->thread, NULL, poll_thread, lp)) {
		pthread_cond_destroy(&lp->cv);
		pthread_mutex_destroy(&lp->mu);
		free(lp->path);
		free(lp);
		return NULL;
	}
	return lp;
}

void load_progress_stop(struct load_progress *lp)
{
	if (!lp)
		return;
	pthread_mutex_lock(&lp->mu);
	lp->stop = true;
	pthread_cond_signal(&lp->cv);
	pthread_mutex_unlock(&lp->mu);
	pthread_join(lp->thread, NULL);
	pthread_cond_destroy(&lp->cv);
	pthread_mutex_destroy(&lp->mu);
	free(lp->path);
	free(lp);
}
