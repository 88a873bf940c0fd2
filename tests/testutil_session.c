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
