/* model.c: a llama model from GGUF: hyperparameters from llama.* keys,
 * every tensor cross-checked against them, weights mapped read-only and
 * used in place. */
#include "model.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "types.h"
#include "util.h"

/* Sanity caps: far above any real llama, low enough that products of
 * them cannot overflow 64 bits. */
#define MAX_DIM     (1u << 20)
#define MAX_LAYERS  4096u
#define MAX_HEADS   4096u
#define MAX_CTX     (1u << 24)

static const uint32_t matrix_types[] = { ST_TYPE_F32, ST_TYPE_F16, ST_TYPE_BF16, ST_TYPE_Q8_0, ST_TYPE_Q4_0,
					 ST_TYPE_Q4_1, ST_TYPE_Q5_0, ST_TYPE_Q5_1, ST_TYPE_Q4_K, ST_TYPE_Q5_K,
					 ST_TYPE_Q6_K };

const struct st_weight *st_layer_weight(const struct st_layer_weights *l, int i)
{
	const struct st_weight *w[ST_LAYER_N_WEIGHTS] = {
		&l->attn_norm, &l->wq, &l->wk, &l->wv, &l->wo, &l->ffn_norm, &l->w1, &l->w2, &l->w3,
	};
	return i >= 0 && i < ST_LAYER_N_WEIGHTS ? w[i] : NULL;
}

/* A required u32 key, bounded. */
static int get_req_u32(const struct st_gguf *g, const char *key, uint32_t max, uint32_t *out)
{
	int rc = st_gguf_get_u32(g, key, out);
	if (rc == -ENOENT)
		return st_error(-EINVAL, "model: key '%s' is missing", key);
	if (rc)
		return rc;
	if (*out == 0 || *out > max)
		return st_error(-EINVAL, "model: %s = %u is outside 1..%u", key, *out, max);
	return 0;
}

static int get_opt_u32(const struct st_gguf *g, const char *key, uint32_t dflt, uint32_t max, uint32_t *out)
{
	int rc = st_gguf_get_u32(g, key, out);
	if (rc == -ENOENT) {
		*out = dflt;
		return 0;
	}
	if (rc)
		return rc;
	if (*out == 0 || *out > max)
		return st_error(-EINVAL, "model: %s = %u is outside 1..%u", key, *out, max);
	return 0;
}

static int get_opt_f32(const struct st_gguf *g, const char *key, float dflt, float *out)
{
	int rc = st_gguf_get_f32(g, key, out);
	if (rc == -ENOENT) {
		*out = dflt;
		return 0;
	}
	if (rc)
		return rc;
	if (!(*out > 0.0f) || *out > 1e30f)
		return st_error(-EINVAL, "model: %s = %g must be a positive number", key, (double)*out);
	return 0;
}

static int supported_list(char *buf, size_t n, bool norm)
{
	size_t o = 0;
	for (size_t i = 0; i < ST_ARRAY_SIZE(matrix_types) && (!norm || i < 3); i++)
		o += (size_t)snprintf(buf + o, n - o, "%s%s", i ? " " : "", st_type_name(matrix_types[i]));
	return 0;
}

/* Find tensor `name`, check its type and shape [ne0, ne1] (ne1 = 0: a
 * vector of ne0), and point w at its data. */
static int bind(struct st_model *m, const char *name, uint64_t ne0, uint64_t ne1, bool norm, bool optional,
		struct st_weight *w)
{
	const struct st_gguf_tensor *t = st_gguf_find_tensor(m->gguf, name);
	const struct st_type_traits *tr;
	bool type_ok = false;
	uint64_t rb, end;
	char list[64];

	memset(w, 0, sizeof(*w));
	if (!t) {
		if (optional)
			return -ENOENT;
		return st_error(-EINVAL, "model: tensor '%s' is missing", name);
	}
	tr = st_type_traits(t->type);
	for (size_t i = 0; i < ST_ARRAY_SIZE(matrix_types) && (!norm || i < 3); i++)
		type_ok |= t->type == matrix_types[i];
	if (!type_ok || !tr || !tr->supported) {
		supported_list(list, sizeof(list), norm);
		return st_error(-ENOTSUP, "model: tensor '%s' has type %s, not supported yet (supported: %s)", name,
				st_type_name(t->type), list);
	}
	if (ne1 == 0) {
		if (t->n_elements != ne0 || t->ne[0] != ne0)
			return st_error(-EINVAL, "model: tensor '%s' has shape [%llu, %llu], expected [%llu]", name,
					(unsigned long long)t->ne[0], (unsigned long long)t->ne[1], (unsigned long long)ne0);
	} else if (t->ne[0] != ne0 || t->ne[1] != ne1 || t->ne[2] != 1 || t->ne[3] != 1) {
		return st_error(-EINVAL, "model: tensor '%s' has shape [%llu, %llu, %llu], expected [%llu, %llu]", name,
				(unsigned long long)t->ne[0], (unsigned long long)t->ne[1], (unsigned long long)t->ne[2],
				(unsigned long long)ne0, (unsigned long long)ne1);
	}
	if (st_type_row_size(t->type, ne0, &rb) != 0)
		return st_error(-EINVAL, "model: tensor '%s': rows of %llu elements are not whole %s blocks of %u", name,
				(unsigned long long)ne0, tr->name, tr->block_size);
	if (st_add_overflow_u64(t->file_offset, t->nbytes, &end) || end > m->map_size)
		return st_error(-EINVAL, "model: tensor '%s' data (%llu bytes at %llu) is past the end of the file (%zu)",
				name, (unsigned long long)t->nbytes, (unsigned long long)t->file_offset, m->map_size);
	if (t->nbytes < rb * (ne1 ? ne1 : 1))
		return st_error(-EINVAL, "model: tensor '%s' holds %llu bytes, needs %llu", name,
				(unsigned long long)t->nbytes, (unsigned long long)(rb * (ne1 ? ne1 : 1)));
	w->data = (const char *)m->map + t->file_offset;
	w->type = t->type;
	w->ne0 = (int64_t)ne0;
	w->ne1 = ne1 ? (int64_t)ne1 : 1;
	w->nb1 = (size_t)rb;
	w->file_offset = t->file_offset;
	w->nbytes = t->nbytes;
	w->name = t->name;
	return 0;
}

static int read_hparams(struct st_model *m)
{
	const struct st_gguf *g = m->gguf;
	struct st_model_desc *d = &m->desc;
	const char *arch = NULL, *name = NULL;
	int rc;

	rc = st_gguf_get_str(g, "general.architecture", &arch);
	if (rc == -ENOENT)
		return st_error(-EINVAL, "model: key 'general.architecture' is missing");
	if (rc)
		return rc;
	if (strcmp(arch, "llama") != 0)
		return st_error(-ENOTSUP, "model: architecture '%.64s' is not supported (only 'llama')", arch);
	snprintf(d->arch, sizeof(d->arch), "%s", arch);
	if (st_gguf_get_str(g, "general.name", &name) == 0)
		snprintf(d->name, sizeof(d->name), "%s", name);

	if ((rc = get_req_u32(g, "llama.embedding_length", MAX_DIM, &d->n_embd)) ||
	    (rc = get_req_u32(g, "llama.feed_forward_length", 4 * MAX_DIM, &d->n_ff)) ||
	    (rc = get_req_u32(g, "llama.block_count", MAX_LAYERS, &d->n_layer)) ||
	    (rc = get_req_u32(g, "llama.attention.head_count", MAX_HEADS, &d->n_head)) ||
	    (rc = get_opt_u32(g, "llama.attention.head_count_kv", d->n_head, MAX_HEADS, &d->n_head_kv)) ||
	    (rc = get_req_u32(g, "llama.context_length", MAX_CTX, &d->n_ctx_train)))
		return rc;
	if (d->n_embd % d->n_head)
		return st_error(-EINVAL, "model: embedding_length %u is not a multiple of head_count %u", d->n_embd,
				d->n_head);
	if (d->n_head % d->n_head_kv)
		return st_error(-EINVAL, "model: head_count %u is not a multiple of head_count_kv %u", d->n_head,
				d->n_head_kv);
	d->head_dim = d->n_embd / d->n_head;
	if (d->head_dim % 2)
		return st_error(-EINVAL, "model: head dimension %u (= %u / %u) is odd; RoPE needs pairs", d->head_dim,
				d->n_embd, d->n_head);
	if ((rc = get_opt_u32(g, "llama.rope.dimension_count", d->head_dim, MAX_DIM, &d->rope_dim)))
		return rc;
	if (d->rope_dim > d->head_dim || d->rope_dim % 2)
		return st_error(-EINVAL, "model: rope.dimension_count %u must be even and <= head dimension %u",
				d->rope_dim, d->head_dim);
	if ((rc = get_opt_f32(g, "llama.attention.layer_norm_rms_epsilon", 1e-5f, &d->rms_eps)) ||
	    (rc = get_opt_f32(g, "llama.rope.freq_base", 10000.0f, &d->rope_theta)))
		return rc;
	return 0;
}

static int bind_all(struct st_model *m)
{
	struct st_model_desc *d = &m->desc;
	const struct st_gguf_tensor *te = st_gguf_find_tensor(m->gguf, "token_embd.weight");
	const uint64_t dim = d->n_embd, qd = (uint64_t)d->n_head * d->head_dim,
		       kvd = (uint64_t)d->n_head_kv * d->head_dim, ff = d->n_ff;
	uint32_t vocab_key;
	char name[96];
	int rc;

	if (!te)
		return st_error(-EINVAL, "model: tensor 'token_embd.weight' is missing");
	if (te->ne[1] == 0 || te->ne[1] > (1u << 24))
		return st_error(-EINVAL, "model: token_embd.weight has %llu rows (vocabulary size)",
				(unsigned long long)te->ne[1]);
	d->n_vocab = (uint32_t)te->ne[1];
	if (st_gguf_get_u32(m->gguf, "llama.vocab_size", &vocab_key) == 0 && vocab_key != d->n_vocab)
		return st_error(-EINVAL, "model: llama.vocab_size %u != %u rows of token_embd.weight", vocab_key,
				d->n_vocab);
	if ((rc = bind(m, "token_embd.weight", dim, d->n_vocab, false, false, &m->tok_embd)) ||
	    (rc = bind(m, "output_norm.weight", dim, 0, true, false, &m->output_norm)))
		return rc;
	rc = bind(m, "output.weight", dim, d->n_vocab, false, true, &m->output);
	if (rc == -ENOENT) {
		m->output = m->tok_embd;
		d->tied_output = true;
	} else if (rc) {
		return rc;
	}
	m->layers = calloc(d->n_layer, sizeof(*m->layers));
	if (!m->layers)
		return st_error(-ENOMEM, "model: out of memory");
	for (uint32_t l = 0; l < d->n_layer; l++) {
		struct st_layer_weights *L = &m->layers[l];
		static const char *const names[ST_LAYER_N_WEIGHTS] = {
			"attn_norm", "attn_q", "attn_k", "attn_v", "attn_output", "ffn_norm", "ffn_gate", "ffn_down", "ffn_up",
		};
		const uint64_t shapes[ST_LAYER_N_WEIGHTS][2] = {
			{ dim, 0 }, { dim, qd }, { dim, kvd }, { dim, kvd }, { qd, dim },
			{ dim, 0 }, { dim, ff }, { ff, dim }, { dim, ff },
		};
		for (int i = 0; i < ST_LAYER_N_WEIGHTS; i++) {
			snprintf(name, sizeof(name), "blk.%u.%s.weight", l, names[i]);
			rc = bind(m, name, shapes[i][0], shapes[i][1], shapes[i][1] == 0, false,
				  (struct st_weight *)st_layer_weight(L, i));
			if (rc)
				return rc;
		}
	}
	/* totals, and the most common matrix type (by bytes) */
	uint64_t by_type[ST_TYPE_COUNT] = { 0 };
	for (uint64_t i = 0; i < m->gguf->n_tensors; i++) {
		const struct st_gguf_tensor *t = &m->gguf->tensors[i];
		d->n_params += t->n_elements;
		d->weight_bytes += t->nbytes;
		if (t->n_dims >= 2 && t->type < ST_TYPE_COUNT)
			by_type[t->type] += t->nbytes;
	}
	d->weight_type = m->tok_embd.type;
	for (uint32_t t = 0; t < ST_TYPE_COUNT; t++)
		if (by_type[t] > by_type[d->weight_type])
			d->weight_type = t;
	return 0;
}

void st_model_close(struct st_model *m)
{
	if (!m)
		return;
	if (m->tok)
		st_tokenizer_free(m->tok);
	if (m->map)
		munmap(m->map, m->map_size);
	st_gguf_free(m->gguf);
	free(m->layers);
	free(m);
}

int st_model_from_gguf(struct st_gguf *g, void *map, size_t map_size, struct st_model **out)
{
	struct st_model *m = calloc(1, sizeof(*m));
	int rc;
	*out = NULL;
	if (!m)
		return st_error(-ENOMEM, "model: out of memory");
	m->gguf = g;
	m->map = map;
	m->map_size = map_size;
	m->desc.file_size = map_size;
	rc = read_hparams(m);
	if (!rc)
		rc = bind_all(m);
	if (rc) {
		/* the caller keeps g and map on failure */
		m->gguf = NULL;
		m->map = NULL;
		st_model_close(m);
		return rc;
	}
	if (st_gguf_find(g, "tokenizer.ggml.model")) {
		rc = st_tokenizer_from_gguf(g, &m->tok);
		if (rc) {
			st_log(ST_LOG_WARN, "model: tokenizer not loaded: %s", st_last_error());
			m->tok = NULL;
		}
	}
	*out = m;
	return 0;
}

int st_model_open(const char *path, struct st_model **out)
{
	struct st_gguf *g = NULL;
	struct stat st;
	void *map;
	int fd, rc;

	*out = NULL;
	if (!path)
		return st_error(-EINVAL, "model: NULL path");
	rc = st_gguf_open(path, &g);
	if (rc)
		return rc;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		rc = -errno;
		st_gguf_free(g);
		return st_error(rc, "model: cannot open '%s': %s", path, strerror(-rc));
	}
	if (fstat(fd, &st) != 0 || (uint64_t)st.st_size != g->file_size || st.st_size == 0) {
		close(fd);
		st_gguf_free(g);
		return st_error(-EIO, "model: '%s' changed size while opening", path);
	}
	map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	rc = -errno;
	close(fd);
	if (map == MAP_FAILED) {
		st_gguf_free(g);
		return st_error(rc, "model: cannot map '%s' (%lld bytes): %s", path, (long long)st.st_size,
				strerror(-rc));
	}
	rc = st_model_from_gguf(g, map, (size_t)st.st_size, out);
	if (rc) {
		munmap(map, (size_t)st.st_size);
		st_gguf_free(g);
	}
	return rc;
}

const struct st_model_desc *st_model_desc(const struct st_model *m)
{
	return &m->desc;
}

struct st_tokenizer *st_model_tokenizer(const struct st_model *m)
{
	return m->tok;
}

int st_model_spans(const struct st_model *m, int first, int last, bool with_embd, bool with_head,
		   struct st_tensor_span *spans, int max)
{
	int n = 0;
#define ADD(wp, lay) do { \
		if (spans && n < max) \
			spans[n] = (struct st_tensor_span){ (wp)->file_offset, (wp)->nbytes, (wp), (lay) }; \
		n++; \
	} while (0)
	if (first < 0 || last >= (int)m->desc.n_layer || first > last + 1)
		return st_error(-EINVAL, "model spans: layers %d..%d outside 0..%u", first, last, m->desc.n_layer - 1);
	if (with_embd)
		ADD(&m->tok_embd, -1);
	for (int l = first; l <= last; l++)
		for (int i = 0; i < ST_LAYER_N_WEIGHTS; i++)
			ADD(st_layer_weight(&m->layers[l], i), l);
	if (with_head) {
		ADD(&m->output_norm, -2);
		if (!m->desc.tied_output || !with_embd)
			ADD(&m->output, -2);
	}
#undef ADD
	return n;
}

int st_model_layer_bytes(const struct st_model *m, int layer, uint64_t *bytes)
{
	*bytes = 0;
	if (layer == -1) {
		*bytes = m->tok_embd.nbytes;
	} else if (layer == -2) {
		*bytes = m->output_norm.nbytes + (m->desc.tied_output ? 0 : m->output.nbytes);
	} else if (layer >= 0 && layer < (int)m->desc.n_layer) {
		for (int i = 0; i < ST_LAYER_N_WEIGHTS; i++)
			*bytes += st_layer_weight(&m->layers[layer], i)->nbytes;
	} else {
		return st_error(-EINVAL, "model: layer %d outside -2..%u", layer, m->desc.n_layer - 1);
	}
	return 0;
}
