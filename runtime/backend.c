/* backend.c: the backend registry and the st_backend_* / st_buffer_* /
 * st_graph_* wrappers (callers never touch ->ops directly). */
#include "backend.h"

#include <errno.h>
#include <string.h>

#include "types.h"
#include "util.h"

/* Compiled-in accelerator backends define these; they are weak here so
 * the runtime links without them.  A backend living in its own static
 * library must be linked whole (meson link_whole) or call
 * st_backend_register() for the registry to see it. */
extern const struct st_backend_ops st_backend_vulkan __attribute__((weak));
extern const struct st_backend_ops st_backend_opencl __attribute__((weak));

#define ST_MAX_BACKENDS 8

static const struct st_backend_ops *registered[ST_MAX_BACKENDS];
static int n_registered;
static const struct st_backend_ops *reg_list[ST_MAX_BACKENDS + 3];

int st_backend_register(const struct st_backend_ops *ops)
{
	if (!ops || !ops->name)
		return st_error(-EINVAL, "backend register: NULL ops or name");
	for (int i = 0; i < n_registered; i++)
		if (registered[i] == ops || !strcmp(registered[i]->name, ops->name))
			return 0;
	if (n_registered >= ST_MAX_BACKENDS)
		return st_error(-ENOSPC, "backend register: more than %d backends", ST_MAX_BACKENDS);
	registered[n_registered++] = ops;
	return 0;
}

int st_backend_registry(const struct st_backend_ops *const **list)
{
	int n = 0;
	const struct st_backend_ops *weak[2] = { &st_backend_vulkan, &st_backend_opencl };
	for (int i = 0; i < 2; i++) {
		bool dup = false;
		if (!weak[i])
			continue;
		for (int j = 0; j < n_registered; j++)
			dup |= registered[j] == weak[i];
		if (!dup)
			reg_list[n++] = weak[i];
	}
	for (int i = 0; i < n_registered; i++)
		if (registered[i] != &st_backend_cpu)
			reg_list[n++] = registered[i];
	reg_list[n++] = &st_backend_cpu;      /* always present, always last */
	*list = reg_list;
	return n;
}

const struct st_backend_ops *st_backend_find(const char *name)
{
	const struct st_backend_ops *const *list;
	int n = st_backend_registry(&list);
	for (int i = 0; i < n; i++)
		if (!strcmp(list[i]->name, name))
			return list[i];
	return NULL;
}

int st_backend_device_count(const struct st_backend_ops *ops)
{
	if (!ops->device_count)
		return 0;
	int n = ops->device_count();
	return n < 0 ? 0 : n;     /* a backend with no usable device is skipped */
}

int st_backend_device_info(const struct st_backend_ops *ops, int index, struct st_device_info *info)
{
	if (index < 0 || index >= st_backend_device_count(ops))
		return st_error(-ENODEV, "backend %s has no device %d", ops->name, index);
	if (!ops->device_info)
		return st_error(-ENOTSUP, "backend %s: no device_info", ops->name);
	memset(info, 0, sizeof(*info));
	return ops->device_info(index, info);
}

int st_backend_open(const struct st_backend_ops *ops, int index, struct st_backend **out)
{
	*out = NULL;
	if (index < 0 || index >= st_backend_device_count(ops))
		return st_error(-ENODEV, "backend %s has no device %d (it has %d)", ops->name, index,
				st_backend_device_count(ops));
	if (!ops->open)
		return st_error(-ENOTSUP, "backend %s: no open", ops->name);
	return ops->open(index, out);
}

void st_backend_close(struct st_backend *be)
{
	if (be && be->ops->close)
		be->ops->close(be);
}

int st_buffer_alloc(struct st_backend *be, size_t size, unsigned flags, struct st_buffer **out)
{
	*out = NULL;
	if (!be->ops->buffer_alloc)
		return st_error(-ENOTSUP, "backend %s: no buffer_alloc", be->ops->name);
	return be->ops->buffer_alloc(be, size, flags, out);
}

int st_buffer_wrap(struct st_backend *be, void *ptr, size_t size, struct st_buffer **out)
{
	*out = NULL;
	if (!be->ops->buffer_wrap)
		return -ENOTSUP;        /* optional: the caller allocates and copies */
	return be->ops->buffer_wrap(be, ptr, size, out);
}

void st_buffer_free(struct st_backend *be, struct st_buffer *buf)
{
	if (buf && be->ops->buffer_free)
		be->ops->buffer_free(buf);
}

void *st_buffer_map(struct st_backend *be, struct st_buffer *buf)
{
	if (!be->ops->buffer_map)
		return NULL;
	return be->ops->buffer_map(buf);
}

int st_buffer_write(struct st_backend *be, struct st_buffer *buf, size_t off, const void *src, size_t n)
{
	if (!be->ops->buffer_write)
		return st_error(-ENOTSUP, "backend %s: no buffer_write", be->ops->name);
	return be->ops->buffer_write(buf, off, src, n);
}

int st_buffer_read(struct st_backend *be, struct st_buffer *buf, size_t off, void *dst, size_t n)
{
	if (!be->ops->buffer_read)
		return st_error(-ENOTSUP, "backend %s: no buffer_read", be->ops->name);
	return be->ops->buffer_read(buf, off, dst, n);
}

int st_graph_prepare(struct st_backend *be, const struct st_op *ops, int n_ops, struct st_graph **out)
{
	*out = NULL;
	if (n_ops <= 0)
		return st_error(-EINVAL, "graph_prepare: %d ops", n_ops);
	if (!be->ops->graph_prepare)
		return st_error(-ENOTSUP, "backend %s: no graph_prepare", be->ops->name);
	return be->ops->graph_prepare(be, ops, n_ops, out);
}

int st_graph_run(struct st_backend *be, struct st_graph *g, const struct st_graph_run *run)
{
	if (!be->ops->graph_run)
		return st_error(-ENOTSUP, "backend %s: no graph_run", be->ops->name);
	if (run->n_tokens <= 0 || run->pos0 < 0)
		return st_error(-EINVAL, "graph_run: n_tokens=%lld pos0=%lld", (long long)run->n_tokens,
				(long long)run->pos0);
	return be->ops->graph_run(g, run);
}

void st_graph_free(struct st_backend *be, struct st_graph *g)
{
	if (g && be->ops->graph_free)
		be->ops->graph_free(g);
}

int st_backend_synchronize(struct st_backend *be)
{
	if (!be->ops->synchronize)
		return 0;
	return be->ops->synchronize(be);
}

int st_graph_op_times(struct st_backend *be, struct st_graph *g, double *seconds, int n_ops)
{
	if (!be->ops->graph_op_times)
		return -ENOTSUP;
	return be->ops->graph_op_times(g, seconds, n_ops);
}

int st_upload_open(struct st_backend *be, size_t slot_size, int n_slots, void **slots, struct st_upload **out)
{
	*out = NULL;
	if (!be->ops->upload_open)
		return -ENOTSUP;        /* optional: the caller writes with buffer_write */
	if (slot_size == 0 || slot_size % ST_UPLOAD_ALIGN || n_slots < 1 || n_slots > ST_UPLOAD_MAX_SLOTS ||
	    slot_size > (SIZE_MAX - ST_UPLOAD_ALIGN) / (size_t)n_slots)
		return st_error(-EINVAL, "upload_open: %d slots of %zu bytes (1..%d slots, multiples of %u bytes)",
				n_slots, slot_size, ST_UPLOAD_MAX_SLOTS, ST_UPLOAD_ALIGN);
	return be->ops->upload_open(be, slot_size, n_slots, slots, out);
}

int st_upload_submit(struct st_backend *be, struct st_upload *u, int slot, struct st_buffer *dst,
		     const struct st_upload_region *r, int n)
{
	if (!be->ops->upload_submit)
		return st_error(-ENOTSUP, "backend %s: no upload_submit", be->ops->name);
	if (n < 0 || (n > 0 && !r))
		return st_error(-EINVAL, "upload_submit: %d regions", n);
	return be->ops->upload_submit(u, slot, dst, r, n);
}

int st_upload_wait(struct st_backend *be, struct st_upload *u, int slot)
{
	if (!be->ops->upload_wait)
		return st_error(-ENOTSUP, "backend %s: no upload_wait", be->ops->name);
	return be->ops->upload_wait(u, slot);
}

void st_upload_close(struct st_backend *be, struct st_upload *u)
{
	if (u && be->ops->upload_close)
		be->ops->upload_close(u);
}

int st_upload_check_regions(const struct st_upload_region *r, int n, size_t slot_size, size_t dst_size,
			    const char *who)
{
	for (int i = 0; i < n; i++) {
		size_t s_end, d_end;
		if (r[i].size == 0 || st_add_overflow_size(r[i].src_offset, r[i].size, &s_end) || s_end > slot_size ||
		    st_add_overflow_size(r[i].dst_offset, r[i].size, &d_end) || d_end > dst_size)
			return st_error(-EINVAL, "%s upload: region %d (%zu bytes from slot offset %zu to %zu) is outside the "
					"%zu-byte slot or the %zu-byte buffer", who, i, r[i].size, r[i].src_offset,
					r[i].dst_offset, slot_size, dst_size);
	}
	return 0;
}

int st_tensor_check_bounds(const struct st_tensor *t, size_t buf_size, const char *what)
{
	uint64_t row, end;
	if (t->ne0 <= 0 || t->ne1 <= 0)
		return st_error(-EINVAL, "%s: shape [%lld, %lld]", what, (long long)t->ne0, (long long)t->ne1);
	if (st_type_row_size(t->type, (uint64_t)t->ne0, &row) != 0)
		return st_error(-EINVAL, "%s: %lld elements of type %u do not make whole blocks", what,
				(long long)t->ne0, t->type);
	if (st_mul_overflow_u64((uint64_t)(t->ne1 - 1), t->nb1, &end) || st_add_overflow_u64(end, row, &end) ||
	    st_add_overflow_u64(end, t->offset, &end) || end > buf_size)
		return st_error(-EINVAL, "%s: [%lld, %lld] at offset %zu (row stride %zu) overruns its buffer of %zu bytes",
				what, (long long)t->ne0, (long long)t->ne1, t->offset, t->nb1, buf_size);
	return 0;
}
