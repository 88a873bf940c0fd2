/* cpu_kernels.c: the CPU backend's matmul and attention on the SIMD kernels
 * (matmul.c: cpuid-dispatched AVX2/AVX-512/VNNI or NEON, Q8 activations for
 * quantized weights) and the persistent thread pool.
 *
 * One kernel context serves the process: the pool is not reentrant, so
 * calls are serialized by a mutex (stages on the CPU run one op at a time
 * anyway; the pool's threads are the parallelism).  The thread count is
 * st_cpu_kernels_set_threads() (session params n_threads), default = cores.
 * Attention runs on the SIMD helpers for an F32 or F16 cache. */
#include "cpu_kernels.h"

#include <pthread.h>

#include "matmul.h"
#include "ops_ref.h"
#include "types.h"
#include "util.h"

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static struct st_matmul_ctx *g_ctx;
static int g_threads;          /* requested; 0 = all cores */
static enum st_isa g_isa = ST_ISA_AUTO;

/* Called with g_lock held. */
static int ctx_get(struct st_matmul_ctx **out)
{
	if (!g_ctx) {
		int rc = st_matmul_ctx_create(g_threads, g_isa, &g_ctx);
		if (rc)
			return rc;
	}
	*out = g_ctx;
	return 0;
}

int st_cpu_kernels_set_threads(int n_threads)
{
	if (n_threads < 0 || n_threads > 512)
		return st_error(-EINVAL, "cpu kernels: %d threads (0 = all cores, at most 512)", n_threads);
	pthread_mutex_lock(&g_lock);
	int cur = g_ctx ? st_threadpool_n_threads(st_matmul_ctx_pool(g_ctx)) : -1;
	int want = n_threads ? n_threads : st_cpu_count();
	if (g_ctx && cur != want) {
		st_matmul_ctx_destroy(g_ctx);
		g_ctx = NULL;
	}
	g_threads = n_threads;
	pthread_mutex_unlock(&g_lock);
	return 0;
}

int st_cpu_kernels_set_isa(enum st_isa isa)
{
	if (isa != ST_ISA_AUTO && !st_cpu_isa_supported(isa))
		return st_error(-ENOTSUP, "cpu kernels: path '%s' is not supported on this CPU/build",
				st_cpu_isa_name(isa));
	pthread_mutex_lock(&g_lock);
	if (g_ctx && isa != g_isa) {
		st_matmul_ctx_destroy(g_ctx);
		g_ctx = NULL;
	}
	g_isa = isa;
	pthread_mutex_unlock(&g_lock);
	return 0;
}

int st_cpu_kernels_threads(void)
{
	return g_threads ? g_threads : st_cpu_count();
}

int st_cpu_matmul(uint32_t type, const void *W, int64_t rows, int64_t cols, size_t nb_w,
		  const float *x, int64_t ldx, int64_t n_tokens, float *y, int64_t ldy)
{
	struct st_matmul_ctx *ctx;
	if (ldx < 0 || ldy < 0)
		return st_error(-EINVAL, "cpu matmul: negative stride ldx=%lld ldy=%lld", (long long)ldx,
				(long long)ldy);
	pthread_mutex_lock(&g_lock);
	int rc = ctx_get(&ctx);
	if (!rc)
		rc = st_matmul(ctx, type, W, nb_w, rows, cols, x, (size_t)ldx, n_tokens, y, (size_t)ldy);
	pthread_mutex_unlock(&g_lock);
	return rc;
}

int st_cpu_matmul_decode(const struct st_mm_part *parts, int n_parts, int64_t cols, const float *x,
			 int64_t align, bool lockstep, st_mm_epilogue_fn epi, void *user)
{
	struct st_matmul_ctx *ctx;
	pthread_mutex_lock(&g_lock);
	int rc = ctx_get(&ctx);
	if (!rc)
		rc = st_matmul_decode(ctx, parts, n_parts, cols, x, align, lockstep, epi, user);
	pthread_mutex_unlock(&g_lock);
	return rc;
}

int st_cpu_attn(const float *q, int64_t ldq, const void *k, const void *v, uint32_t cache_type,
		size_t nb_kv, float *out, int64_t ldo, int64_t n_tokens, int64_t pos0,
		uint32_t n_head, uint32_t n_head_kv, uint32_t head_dim, float scale)
{
	const size_t esz = cache_type == ST_TYPE_F16 ? 2 : sizeof(float);
	if ((cache_type != ST_TYPE_F32 && cache_type != ST_TYPE_F16) || nb_kv % esz || ldq < 0 || ldo < 0 ||
	    n_head > INT32_MAX || n_head_kv > INT32_MAX || head_dim > INT32_MAX)
		return st_ref_attn(q, ldq, k, v, cache_type, nb_kv, out, ldo, n_tokens, pos0, n_head,
				   n_head_kv, head_dim, scale);
	struct st_matmul_ctx *ctx;
	pthread_mutex_lock(&g_lock);
	int rc = ctx_get(&ctx);
	if (!rc)
		rc = st_attention_kv(ctx, cache_type, q, (size_t)ldq, n_tokens, pos0, k, v, nb_kv / esz,
				     (int)n_head, (int)n_head_kv, (int)head_dim, scale, out, (size_t)ldo);
	pthread_mutex_unlock(&g_lock);
	return rc;
}
