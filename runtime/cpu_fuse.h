/* cpu_fuse.h: the CPU backend runs a one-token (decode) replay of a graph
 * with some ops fused: consecutive matmuls that read the same activations
 * (Q, K, V; gate and up) become one thread-pool task with one activation
 * quantization, and the row-local ops that follow them (RoPE, KV-cache
 * store, SwiGLU, residual add) run on each chunk of rows right after it is
 * computed, on whichever thread computed it (matmul_decode.h).  The
 * results are the bits the ops give one at a time: same kernels, same
 * per-element arithmetic as ops_ref.c. */
#ifndef ST_CPU_FUSE_H
#define ST_CPU_FUSE_H

#include "backend.h"

#define ST_CPU_FUSE_MAX 12

/* An op's tensors resolved to host pointers. */
struct st_cpu_op_ptrs {
	void *dst;
	const void *src[3];
};

/* How many ops from ops[i] on run as one fused step when the graph is
 * replayed for one token (2..ST_CPU_FUSE_MAX), or 1: ops[i] runs alone.
 * Decided from the op list alone (prepare time). */
int st_cpu_fuse_span(const struct st_op *ops, int n_ops, int i);
/* Run a span found by st_cpu_fuse_span (n ops) for a one-token run. */
int st_cpu_fuse_run(const struct st_op *ops, const struct st_cpu_op_ptrs *ptrs, int n,
		    const struct st_graph_run *run);
/* Fused steps run so far in this process (tests check fusion happens). */
uint64_t st_cpu_fuse_count(void);

#endif
