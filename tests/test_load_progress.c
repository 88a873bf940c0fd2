/* test_load_progress.c: the loading progress line of `strata run`
 * (tools/load_progress.h) on a pseudo-terminal.  A file whose pages were
 * dropped is read slowly by the test while the progress thread watches its
 * residency: the line must appear (after half a second), count up to the
 * file's size in MiB, and be erased when stopped; a cached file and a
 * stderr that is not a terminal show nothing. */
#include <errno.h>
#include <fcntl.h>
#include <pty.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../tools/load_progress.h"
#include "loader.h"
#include "tap.h"

#define MiB (1024u * 1024u)
#define SIZE (64u * MiB)

static char path[1200];

static int make_file(void)
{
	int fd, rc = tap_write_file(path, SIZE);
	if (rc)
		return rc;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	rc = fd < 0 ? -1 : posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
	if (fd >= 0)
		close(fd);
	return rc;
}

int main(void)
{
	const char *build = getenv("ST_BUILD_DIR");
	int master = -1, slave = -1, saved, fd;
	double f = 1;
	char *out = calloc(1, 1 << 16), *buf = malloc(4 * MiB);
	size_t n_out = 0;
	struct load_progress *lp;

	snprintf(path, sizeof path, "%s/load-progress-%d.bin", build ? build : ".", (int)getpid());
	if (!out || !buf || make_file() != 0)
		tap_skip_all("cannot write %s", path);
	if (st_load_cached_fraction(path, 0, 0, &f) < 0 || f > 0.01) {
		unlink(path);
		tap_skip_all("the page cache of %s cannot be dropped here (%.2f cached)", path, f);
	}
	if (openpty(&master, &slave, NULL, NULL, NULL) < 0) {
		unlink(path);
		tap_skip_all("no pseudo-terminal: %s", strerror(errno));
	}
	fflush(stderr);
	saved = dup(2);
	dup2(slave, 2);
	lp = load_progress_start(path);
	/* read the file slowly: 16 x 4 MiB over about a second */
	fd = open(path, O_RDONLY | O_CLOEXEC);
	for (int i = 0; fd >= 0 && i < 16; i++) {
		if (read(fd, buf, 4 * MiB) != (ssize_t)(4 * MiB))
			break;
		nanosleep(&(struct timespec){ 0, 70 * 1000 * 1000 }, NULL);
	}
	nanosleep(&(struct timespec){ 0, 300 * 1000 * 1000 }, NULL);
	load_progress_stop(lp);
	if (fd >= 0)
		close(fd);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	close(slave);
	fcntl(master, F_SETFL, O_NONBLOCK);
	for (ssize_t r; (r = read(master, out + n_out, (1 << 16) - 1 - n_out)) > 0;)
		n_out += (size_t)r;
	out[n_out] = 0;
	close(master);

	ok(lp != NULL, "a cold file on a terminal: progress starts");
	ok(strstr(out, "loading weights") && strstr(out, "/ 64.0 MiB"), "the line names the weights and the size: %.80s",
	   out + (n_out > 80 ? n_out - 80 : 0));
	{
		/* the MiB counts drawn: at least two, rising, the last one 64.0 */
		double prev = -1, last = -1;
		int draws = 0, rising = 1;
		for (const char *p = out; (p = strstr(p, "loading weights")) != NULL; p++) {
			double v = -1;
			if (sscanf(p, "loading weights %lf", &v) == 1) {
				rising &= v >= prev - 2.0;     /* a page or two reclaimed meanwhile */
				prev = last = v;
				draws++;
			}
		}
		/* most of the file (reclaim here may page a little of it out meanwhile) */
		ok(draws >= 2 && rising && last > 48.0, "%d draws, counting up to %.1f MiB", draws, last);
	}
	ok(n_out >= 4 && !memcmp(out + n_out - 4, "\r\033[K", 4), "the line is erased at the end");
	/* cached now: nothing to show, on a terminal or not.  Read it through
	 * again first: this VM's reclaim (DAMON) may have paged some out */
	for (int i = 0; i < 5 && (st_load_cached_fraction(path, 0, 0, &f) < 0 || f < 0.995); i++) {
		int rfd = open(path, O_RDONLY | O_CLOEXEC);
		while (rfd >= 0 && read(rfd, buf, 4 * MiB) > 0)
			;
		if (rfd >= 0)
			close(rfd);
	}
	if (openpty(&master, &slave, NULL, NULL, NULL) == 0) {
		saved = dup(2);
		dup2(slave, 2);
		lp = load_progress_start(path);
		dup2(saved, 2);
		close(saved);
		close(slave);
		close(master);
		ok(lp == NULL, "a cached file on a terminal: no progress");
		load_progress_stop(lp);
	} else {
		tap_skip("no second pseudo-terminal");
	}
	if (make_file() == 0 && (fd = open("/dev/null", O_WRONLY | O_CLOEXEC)) >= 0) {
		saved = dup(2);
		dup2(fd, 2);
		close(fd);
		lp = load_progress_start(path);
		dup2(saved, 2);
		close(saved);
		ok(lp == NULL, "a cold file, stderr not a terminal: no progress");
		load_progress_stop(lp);
	} else {
		tap_skip("cannot rewrite %s", path);
	}
	unlink(path);
	free(buf);
	free(out);
	return tap_done();
}
