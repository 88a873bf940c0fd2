/* testutil_session.c: test helpers that need the whole runtime (sessions);
 * apart from testutil.c, which the qemu cross-builds link with a few
 * runtime files only. */
#include "tap.h"

#include <errno.h>
#include <string.h>

#include "strata.h"

int tap_session_logits(struct st_model *m, const struct st_session_params *sp, const int32_t *toks, int nt,
		       float *out)
{
	const uint32_t nv = st_model_desc(m)->n_vocab;
	struct st_session *s = NULL;
	int r = st_session_create(m, sp, &s);
	if (r < 0)
		return r;
	r = st_session_eval(s, toks, nt, true);
	for (int t = 0; r == nt && t < nt; t++)
		memcpy(out + (size_t)t * nv, st_session_logits(s, t), nv * sizeof(float));
	st_session_destroy(s);
	return r == nt ? 0 : (r < 0 ? r : -EIO);
}

char tap_logbuf[8192];

static void tap_log_cb(enum st_log_level level, const char *msg, void *user)
{
	(void)user;
	if (level >= ST_LOG_INFO && strlen(tap_logbuf) + strlen(msg) + 2 < sizeof tap_logbuf) {
		strcat(tap_logbuf, msg);
		strcat(tap_logbuf, "\n");
	}
}

void tap_log_capture(void)
{
	st_set_log(tap_log_cb, NULL, ST_LOG_INFO);
}
