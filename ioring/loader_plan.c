/* loader_plan.c: turn a list of spans into reads (see loader_impl.h).
 *
 * Spans are sorted by file offset; spans adjacent both in the file and in
 * memory coalesce into one run (st_load_layout() places file-adjacent
 * tensors that way).  With O_DIRECT (alignment A = 4 KiB) a run whose
 * destination has the phase of its file offset modulo A is read in three
 * parts: the A-aligned middle straight into the destination, in chunks; the
 * unaligned head and tail through staging.  A run whose phase differs goes
 * through staging whole.  The staged byte ranges ("needs") are covered by
 * A-aligned extents (touching covers merge, so adjacent runs share their
 * boundary block), cut into chunks.  Without O_DIRECT (A = 1) every run is
 * read straight into its destination. */
#include "loader_impl.h"

#include <stdlib.h>
#include <string.h>

#include "util.h"

static int push_piece(struct ld_plan *p, struct ld_piece pc)
{
	if (p->n_pieces == p->cap_pieces) {
		size_t cap = p->cap_pieces ? p->cap_pieces * 2 : 64;
		struct ld_piece *np = realloc(p->pieces, cap * sizeof *np);
		if (!np)
			return -ENOMEM;
		p->pieces = np;
		p->cap_pieces = cap;
	}
	p->pieces[p->n_pieces++] = pc;
	if (!pc.dst)
		p->n_staged++;
	return 0;
}

static int push_need(struct ld_plan *p, uint64_t x, uint64_t y, size_t span)
{
	if (p->n_needs == p->cap_needs) {
		size_t cap = p->cap_needs ? p->cap_needs * 2 : 64;
		struct ld_need *nn = realloc(p->needs, cap * sizeof *nn);
		if (!nn)
			return -ENOMEM;
		p->needs = nn;
		p->cap_needs = cap;
	}
	p->needs[p->n_needs++] = (struct ld_need){ .x = x, .y = y, .span = span };
	return 0;
}

struct off_idx {
	uint64_t off;
	size_t idx;
};

static int cmp_off_idx(const void *a, const void *b)
{
	const struct off_idx *x = a, *y = b;
	if (x->off != y->off)
		return x->off < y->off ? -1 : 1;
	return x->idx < y->idx ? -1 : x->idx > y->idx;
}

static int cmp_need(const void *a, const void *b)
{
	const struct ld_need *x = a, *y = b;
	if (x->x != y->x)
		return x->x < y->x ? -1 : 1;
	return x->y < y->y ? -1 : x->y > y->y;
}

static int cmp_piece(const void *a, const void *b)
{
	const struct ld_piece *x = a, *y = b;
	return x->off < y->off ? -1 : x->off > y->off;
}

size_t ld_need_lower(const struct ld_plan *p, uint64_t a)
{
	size_t lo = 0, hi = p->n_needs;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (p->needs_maxy[mid] > a)
			hi = mid;
		else
			lo = mid + 1;
	}
	return lo;
}

static int flush_extent(struct ld_plan *p, uint64_t ea, uint64_t eb, uint32_t chunk)
{
	for (uint64_t a = ea; a < eb; a += chunk) {
		uint64_t b = ST_MIN(eb, a + chunk), need_end = a;
		for (size_t i = ld_need_lower(p, a); i < p->n_needs && p->needs[i].x < b; i++)
			if (p->needs[i].y > a)
				need_end = ST_MAX(need_end, ST_MIN(p->needs[i].y, b));
		if (need_end > a &&
		    push_piece(p, (struct ld_piece){ .off = a, .len = (uint32_t)(b - a),
						     .need = (uint32_t)(need_end - a) }))
			return -ENOMEM;
	}
	return 0;
}

void ld_plan_free(struct ld_plan *p)
{
	free(p->pieces);
	free(p->needs);
	free(p->needs_maxy);
	free(p->done);
	free(p->order);
	memset(p, 0, sizeof *p);
}

/* Needs for [x, y) of the run order[k0..k1], split by span. */
static int push_needs(struct ld_plan *p, size_t k0, size_t k1, uint64_t x, uint64_t y)
{
	for (size_t j = k0; j <= k1; j++) {
		const struct st_load_span *s = &p->spans[p->order[j]];
		uint64_t ix = ST_MAX(ST_MAX(x, s->file_offset), p->from), iy = ST_MIN(y, s->file_offset + s->nbytes);
		if (s->file_offset >= y)
			break;
		if (iy > ix && push_need(p, ix, iy, p->order[j]))
			return -ENOMEM;
	}
	return 0;
}

int ld_plan_build(const struct st_load_span *spans, size_t n, uint32_t align, uint32_t chunk,
		  bool staged_only, uint64_t from, struct ld_plan *p)
{
	const uint64_t A = align;
	struct off_idx *order = NULL;

	memset(p, 0, sizeof *p);
	p->spans = spans;
	p->from = staged_only ? from : 0;
	order = malloc((n ? n : 1) * sizeof *order);
	p->order = malloc((n ? n : 1) * sizeof *p->order);
	if (!order || !p->order)
		goto fail;
	for (size_t i = 0; i < n; i++)
		if (spans[i].nbytes) {
			order[p->n_order++] = (struct off_idx){ spans[i].file_offset, i };
			p->total += spans[i].nbytes;
		}
	qsort(order, p->n_order, sizeof *order, cmp_off_idx);
	for (size_t k = 0; k < p->n_order; k++)
		p->order[k] = order[k].idx;
	free(order);
	order = NULL;

	for (size_t k = 0; k < p->n_order;) {
		const struct st_load_span *s = &spans[p->order[k]];
		size_t k0 = k, j;
		uint64_t roff = s->file_offset, rend = roff + s->nbytes, m0, m1;
		unsigned char *rdst = s->dst;

		/* coalesce spans adjacent in the file and in memory */
		while (k + 1 < p->n_order) {
			const struct st_load_span *t = &spans[p->order[k + 1]];
			if (t->file_offset != rend || (unsigned char *)t->dst != rdst + (rend - roff))
				break;
			rend += t->nbytes;
			k++;
		}
		m0 = roff;
		m1 = rend;
		if (A > 1) {
			bool phase = !staged_only && (((uintptr_t)rdst - (uintptr_t)roff) & (A - 1)) == 0;
			m0 = (roff + A - 1) & ~(A - 1);
			m1 = rend & ~(A - 1);
			if (!phase || m1 <= m0)
				m0 = m1 = rend;          /* the whole run is staged */
		}
		if (m0 > roff && push_needs(p, k0, k, roff, m0))
			goto fail;
		j = k0;
		for (uint64_t a = m0; a < m1; a += chunk) {
			uint64_t len = ST_MIN(chunk, m1 - a);
			while (spans[p->order[j]].file_offset + spans[p->order[j]].nbytes <= a)
				j++;
			if (push_piece(p, (struct ld_piece){ .off = a, .len = (uint32_t)len, .need = (uint32_t)len,
							     .dst = rdst + (a - roff), .span = j, .span_end = k + 1 }))
				goto fail;
		}
		if (m1 < rend && m0 < m1) {
			while (j < k && spans[p->order[j]].file_offset + spans[p->order[j]].nbytes <= m1)
				j++;
			if (push_needs(p, j, k, m1, rend))
				goto fail;
		}
		k++;
	}

	if (p->n_needs) {
		uint64_t ea, eb;
		qsort(p->needs, p->n_needs, sizeof *p->needs, cmp_need);
		p->needs_maxy = malloc(p->n_needs * sizeof *p->needs_maxy);
		if (!p->needs_maxy)
			goto fail;
		for (size_t i = 0; i < p->n_needs; i++)
			p->needs_maxy[i] = ST_MAX(p->needs[i].y, i ? p->needs_maxy[i - 1] : 0);
		ea = p->needs[0].x & ~(A - 1);
		eb = (p->needs[0].y + A - 1) & ~(A - 1);
		for (size_t i = 1; i < p->n_needs; i++) {
			uint64_t na = p->needs[i].x & ~(A - 1), nb = (p->needs[i].y + A - 1) & ~(A - 1);
			if (na <= eb) {
				eb = ST_MAX(eb, nb);
				continue;
			}
			if (flush_extent(p, ea, eb, chunk))
				goto fail;
			ea = na;
			eb = nb;
		}
		if (flush_extent(p, ea, eb, chunk))
			goto fail;
	}
	qsort(p->pieces, p->n_pieces, sizeof *p->pieces, cmp_piece);
	return 0;
fail:
	free(order);
	ld_plan_free(p);
	return st_error(-ENOMEM, "loader: out of memory planning %zu spans", n);
}

int st_load_layout(const struct st_load_span *spans, size_t n, uint64_t *dst_offset,
		   uint64_t *arena_size)
{
	struct off_idx *order = malloc((n ? n : 1) * sizeof *order);
	uint64_t cursor = 0;
	if (!order)
		return st_error(-ENOMEM, "loader: out of memory laying out %zu spans", n);
	for (size_t i = 0; i < n; i++)
		order[i] = (struct off_idx){ spans[i].file_offset, i };
	qsort(order, n, sizeof *order, cmp_off_idx);
	for (size_t k = 0; k < n; k++) {
		const struct st_load_span *s = &spans[order[k].idx];
		/* the next position with the file offset's phase: file-adjacent
		 * spans stay adjacent */
		uint64_t pos = cursor + ((s->file_offset - cursor) & (ST_LOAD_ALIGN - 1));
		if (st_add_overflow_u64(pos, s->nbytes, &cursor)) {
			size_t idx = order[k].idx;
			free(order);
			return st_error(-EINVAL, "loader: layout of span %zu (%s) overflows", idx,
					spans[idx].name ? spans[idx].name : "unnamed");
		}
		dst_offset[order[k].idx] = pos;
	}
	free(order);
	if (st_align_up_u64(cursor, ST_LOAD_ALIGN, arena_size))
		return st_error(-EINVAL, "loader: layout size overflows");
	if (*arena_size == 0)
		*arena_size = ST_LOAD_ALIGN;
	return 0;
}
