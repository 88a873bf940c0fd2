/* load_progress.h: loading progress of a model file on a terminal.
 *
 * Stages that use the mapped file fill the page cache while the first
 * evaluation runs (ioring/prefetch.h), so no loader counts bytes: a thread
 * polls the file's residency (mincore, st_load_cached_fraction) every
 * quarter second and redraws one stderr line, "loading weights  X / Y MiB
 * R MB/s  ETA s", until every page is in or load_progress_stop.  Nothing is
 * printed when stderr is not a terminal, when the file is (nearly) cached
 * already, or before half a second has passed (short loads stay quiet);
 * the line is erased when it stops. */
#ifndef ST_TOOLS_LOAD_PROGRESS_H
#define ST_TOOLS_LOAD_PROGRESS_H

struct load_progress;

/* NULL when there is nothing to show (not a terminal, file cached, no
 * memory, no thread): load_progress_stop(NULL) is a no-op. */
struct load_progress *load_progress_start(const char *path);
void load_progress_stop(struct load_progress *lp);

#endif
