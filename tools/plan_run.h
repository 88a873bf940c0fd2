/* plan_run.h: --device / --stages checking for run, perplexity and bench,
 * and `strata run --plan FILE|auto` (plan_run.c). */
#ifndef ST_PLAN_RUN_H
#define ST_PLAN_RUN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct st_model;
struct st_session;

/* The session's stage spec from --device D (every layer on D) or --stages
 * SPEC (its device names checked), into buf ("" for neither: the CPU).
 * 0, or 2 after printing a one-line usage error that lists the available
 * devices (bad name, or both options given). */
int cli_stages_resolve(const char *cmd, const char *device, const char *stages, const struct st_model *m,
		       char *buf, size_t size);

struct plan_run;
/* --plan FILE (a `strata plan --json` document: its runtime_stages) or
 * --plan auto (profile each device or read matching cached profiles from
 * $XDG_CACHE_HOME/strata/, plan for `objective` (NULL: latency) at
 * `context`, print the plan on stderr).  0 and *out, or the exit code. */
int plan_run_prepare(const char *cmd, const char *arg, const char *model, struct st_model *m,
		     const char *objective, int threads, uint32_t context, bool verbose, struct plan_run **out);
const char *plan_run_stages(const struct plan_run *pr);
/* Call after the prompt: measurement of decode tokens starts here. */
void plan_run_begin(struct plan_run *pr, struct st_session *s);
/* Predicted vs measured ms per stage and per token, on stderr. */
void plan_run_report(struct plan_run *pr, struct st_session *s);
void plan_run_free(struct plan_run *pr);

#endif
