/* upload.c: streamed weight uploads into device-local buffers (upload.h).
 * Only backend wrappers (runtime/backend.h) are called here, never Vulkan
 * or OpenCL. */
#include "upload.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"
#include "weights.h"

/* Spans nearer than this in the file share a chunk (the gap is read too;
 * GGUF pads tensors to 32 bytes). */
#define UP_GAP ((uint64_t)64 << 10)
#define UP_MAX_SLOT ((uint32_t)1 << 30)

struct up_ord {
	uint64_t off;
	size_t i;
};

static int cmp_ord(const void *a, const void *b)
{
	const struct up_ord *x = a, *y = b;
	return x->off < y->off ? -1 : x->off > y->off;
}

struct up_ctx {
	struct st_backend *be;
	struct st_buffer *dst;
	struct st_upload *u;            /* NULL: host slots and st_buffer_write */
	void *slots[ST_UPLOAD_MAX_SLOTS];
	void *host;                     /* the host slots of the fallback */
	struct st_upload_stats *st;
};

static int up_wait(struct up_ctx *c, int slot)
{
	if (!c->u)
		return 0;
	double t = st_time_now();
	int rc = st_upload_wait(c->be, c->u, slot);
	c->st->wait_s += st_time_now() - t;
	return rc;
}

static int up_submit(struct up_ctx *c, int slot, const struct st_upload_region *r, int n)
{
	int rc = 0;
	if (c->u)
		return st_upload_submit(c->be, c->u, slot, c->dst, r, n);
	double t = st_time_now();
	for (int i = 0; i < n && !rc; i++)
		rc = st_buffer_write(c->be, c->dst, r[i].dst_offset, (const char *)c->slots[slot] + r[i].src_offset,
				     r[i].size);
	c->st->wait_s += st_time_now() - t;
	return rc;
}

static const char *nm(const struct st_upload_span *s)
{
	return s->name ? s->name : "unnamed";
}

/* Spans by file offset, without the empty ones; checks every range. */
static int up_order(const struct st_loader *ld, const struct st_upload_span *spans, size_t n, struct up_ord **out,
		    size_t *m)
{
	const uint64_t fsize = st_loader_file_size(ld);
	struct up_ord *o = malloc((n ? n : 1) * sizeof(*o));
	*m = 0;
	if (!o)
		return st_error(-ENOMEM, "upload: out of memory for %zu spans", n);
	for (size_t i = 0; i < n; i++) {
		const struct st_upload_span *s = &spans[i];
		uint64_t end, dend;
		if (st_add_overflow_u64(s->file_offset, s->nbytes, &end) ||
		    st_add_overflow_u64(s->dst_offset, s->nbytes, &dend) || dend > SIZE_MAX) {
			free(o);
			return st_error(-EINVAL, "upload: span %zu (%s): %llu bytes at file offset %llu / buffer offset %llu "
					"overflow", i, nm(s), (unsigned long long)s->nbytes,
					(unsigned long long)s->file_offset, (unsigned long long)s->dst_offset);
		}
		if (end > fsize) {
			free(o);
			return st_error(-EIO, "upload: span %zu (%s): bytes [%llu, %llu) lie past the end of the file "
					"(%llu bytes): the file is truncated", i, nm(s), (unsigned long long)s->file_offset,
					(unsigned long long)end, (unsigned long long)fsize);
		}
		if (s->nbytes)
			o[(*m)++] = (struct up_ord){ s->file_offset, i };
	}
	qsort(o, *m, sizeof(*o), cmp_ord);
	*out = o;
	return 0;
}

/* Stream the ordered spans through the slots. */
static int up_run(struct up_ctx *c, struct st_loader *ld, const struct st_upload_span *spans, const struct up_ord *o,
		  size_t m, uint32_t slot_size, uint32_t n_slots, bool serial)
{
	struct st_upload_region *r = malloc((m ? m : 1) * sizeof(*r));
	size_t k = 0;
	uint64_t pos = 0;              /* bytes of span o[k] already placed */
	int rc = 0;

	if (!r)
		return st_error(-ENOMEM, "upload: out of memory for %zu regions", m);
	for (uint64_t chunk = 0; k < m && !rc; chunk++) {
		const int slot = (int)(chunk % n_slots);
		const size_t first = o[k].i;
		const uint64_t start = spans[first].file_offset + pos;
		const uint64_t c0 = start & ~(uint64_t)(ST_LOAD_ALIGN - 1), cend = c0 + slot_size;
		uint64_t need = start;
		int nr = 0;

		/* the slot's previous copy must be done before the read overwrites it */
		if ((rc = up_wait(c, slot)) != 0)
			break;
		while (k < m) {
			const struct st_upload_span *s = &spans[o[k].i];
			const uint64_t a = s->file_offset + pos;
			if (nr > 0 && (a < c0 || a >= cend || a > need + UP_GAP))
				break;
			const uint64_t take = ST_MIN(s->nbytes - pos, cend - a);
			r[nr++] = (struct st_upload_region){ .src_offset = (size_t)(a - c0),
							     .dst_offset = (size_t)(s->dst_offset + pos), .size = (size_t)take };
			need = ST_MAX(need, a + take);
			pos += take;
			if (pos < s->nbytes)
				break;          /* the slot is full */
			k++;
			pos = 0;
		}
		struct st_load_span ls = { .file_offset = c0, .nbytes = need - c0, .dst = c->slots[slot],
					   .dst_size = slot_size, .name = spans[first].name };
		struct st_load_stats lst;
		double t = st_time_now();
		rc = st_loader_read(ld, &ls, 1, &lst);
		c->st->read_s += st_time_now() - t;
		if (rc) {
			char why[400];
			snprintf(why, sizeof why, "%s", st_last_error());
			rc = st_error(rc, "upload: reading file bytes [%llu, %llu) for %s: %s", (unsigned long long)c0,
				      (unsigned long long)need, nm(&spans[first]), why);
			break;
		}
		c->st->bytes_read += lst.bytes_read;
		c->st->bytes_fixed += lst.bytes_fixed;
		c->st->n_chunks++;
		for (int i = 0; i < nr; i++)
			c->st->bytes += r[i].size;
		rc = up_submit(c, slot, r, nr);
		if (!rc && serial)
			rc = up_wait(c, slot);
	}
	free(r);
	return rc;
}

int st_ioring_upload(struct st_loader *ld, struct st_backend *be, struct st_buffer *dst,
		     const struct st_upload_span *spans, size_t n, const struct st_upload_opts *opts,
		     struct st_upload_stats *stats)
{
	const struct st_upload_opts def = { 0 };
	struct st_upload_stats local;
	struct up_ctx c = { .be = be, .dst = dst };
	struct up_ord *o = NULL;
	size_t m;
	int rc;

	if (!opts)
		opts = &def;
	if (!stats)
		stats = &local;
	memset(stats, 0, sizeof(*stats));
	c.st = stats;
	const uint32_t slot_size = opts->slot_size ? opts->slot_size : ST_UPLOAD_DEFAULT_SLOT;
	const uint32_t n_slots = opts->n_slots ? opts->n_slots : ST_UPLOAD_DEFAULT_SLOTS;
	if (!ld || !be || !dst || (n && !spans))
		return st_error(-EINVAL, "upload: no loader, backend, buffer or spans");
	if (slot_size % ST_LOAD_ALIGN || slot_size > UP_MAX_SLOT || n_slots > ST_UPLOAD_MAX_SLOTS)
		return st_error(-EINVAL, "upload: %u slots of %u bytes (1..%d slots of a multiple of %u bytes up to 1 GiB)",
				n_slots, slot_size, ST_UPLOAD_MAX_SLOTS, ST_LOAD_ALIGN);
	double t0 = st_time_now();
	if ((rc = up_order(ld, spans, n, &o, &m)) != 0)
		return rc;
	if (m == 0)
		goto out;
	rc = st_upload_open(be, slot_size, (int)n_slots, c.slots, &c.u);
	if (rc == -ENOTSUP) {
		/* no upload ops: the same chunks through host memory */
		size_t bytes = (size_t)slot_size * n_slots;
		if (posix_memalign(&c.host, ST_LOAD_ALIGN, bytes)) {
			rc = st_error(-ENOMEM, "upload: %u host slots of %u bytes: out of memory", n_slots, slot_size);
			goto out;
		}
		for (uint32_t i = 0; i < n_slots; i++)
			c.slots[i] = (char *)c.host + (size_t)i * slot_size;
		rc = 0;
	}
	if (rc)
		goto out;
	stats->streamed = c.u != NULL;
	/* every chunk is read into one of the slots: register them once */
	rc = st_loader_register_buffers(ld, c.slots, n_slots, slot_size, "upload slots");
	stats->fixed = rc > 0;
	if (rc >= 0)
		rc = up_run(&c, ld, spans, o, m, slot_size, n_slots, opts->serial);
	/* every copy in flight finishes before the slots go */
	for (uint32_t i = 0; i < n_slots; i++) {
		int r = up_wait(&c, (int)i);
		if (!rc)
			rc = r;
	}
	st_loader_unregister_buffers(ld);
	st_upload_close(be, c.u);
	free(c.host);
out:
	free(o);
	stats->seconds = st_time_now() - t0;
	return rc;
}

int st_ioring_upload_weights(struct st_ioring_weights *w, const struct st_weight_span *spans, int n)
{
	struct st_upload_span *us = NULL;
	struct st_loader *ld = NULL;
	struct st_load_opts o;
	int rc = 0;

	if (!w || n <= 0 || !spans)
		return 0;
	/* one destination buffer per stage; group by buffer all the same */
	for (int i = 0; i < n && !rc; i++) {
		bool seen = spans[i].dst || !spans[i].buf;
		for (int j = 0; j < i && !seen; j++)
			seen = !spans[j].dst && spans[j].buf == spans[i].buf;
		if (seen)
			continue;
		struct st_backend *be = spans[i].be;
		struct st_buffer *buf = spans[i].buf;
		size_t m = 0;
		if (!be)
			return st_error(-EINVAL, "ioring weights: span %d (%s) names a buffer but no backend", i,
					spans[i].name ? spans[i].name : "unnamed");
		if (!us && !(us = calloc((size_t)n, sizeof(*us))))
			return st_error(-ENOMEM, "ioring weights: out of memory for %d spans", n);
		for (int j = i; j < n; j++)
			if (!spans[j].dst && spans[j].buf == buf)
				us[m++] = (struct st_upload_span){ spans[j].file_offset, spans[j].nbytes, spans[j].buf_offset,
								   spans[j].name };
		if (!ld) {
			/* the session's io settings, without its per-load callbacks */
			o = (struct st_load_opts){ .mode = w->opts.mode, .flags = w->opts.flags,
						   .queue_depth = w->opts.queue_depth, .chunk_size = w->opts.chunk_size,
						   .fault_every = w->opts.fault_every, .fault = w->opts.fault };
			if ((rc = st_loader_open(w->path, &o, &ld)) != 0)
				break;
		}
		struct st_upload_stats st;
		rc = st_ioring_upload(ld, be, buf, us, m, &w->upload, &st);
		if (rc)
			break;
		w->upload_stats.streamed = st.streamed;
		w->upload_stats.fixed = st.fixed;
		w->upload_stats.bytes_fixed += st.bytes_fixed;
		w->upload_stats.bytes += st.bytes;
		w->upload_stats.bytes_read += st.bytes_read;
		w->upload_stats.n_chunks += st.n_chunks;
		w->upload_stats.seconds += st.seconds;
		w->upload_stats.read_s += st.read_s;
		w->upload_stats.wait_s += st.wait_s;
	}
	st_loader_close(ld);
	free(us);
	return rc;
}
