/* plan.h: the planner's data (instance, problem, plan), the cost model,
 * the planners (exact latency and throughput dynamic programs), the
 * baselines and the exhaustive oracle.  Pure computation over plain data.
 *
 * Model of a split (docs/plan-input.md has the full statement):
 *  - the model is a chain of L layer units (embedding, blocks, head);
 *  - a plan is an ordered list of stages; stage s runs units
 *    [first_s, last_s] on device d_s; the stages cover 0..L-1 in order;
 *  - a device appears in at most one stage (as in EdgeShard): the memory
 *    check per stage is then exactly the memory check per device;
 *  - with a source device, stage 1 runs on it (it holds the embedding,
 *    i.e. the prompt) and the output returns to it;
 *  - stage compute: the device's per-unit ms summed + its fixed overhead_ms;
 *  - time per token (latency): sum of stage compute + activation hop
 *    between consecutive stages (bytes*8/(Mbps*1e3) + rtt_ms) + return of
 *    the output from the last stage to the first device (if m > 1);
 *  - bottleneck: max of every stage compute, every hop and the return hop;
 *    tokens/s with k sequences in flight = 1000 * min(k / latency, 1 / bottleneck)
 *    = 1000 / max(latency / k, bottleneck);
 *  - memory of a stage: weights of its units + KV bytes per token of its
 *    units * context * batch, at most the device's budget. */
#ifndef ST_PLAN_H
#define ST_PLAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ST_PL_MAX_DEVICES 64
#define ST_PL_MAX_UNITS 4096
#define ST_PL_MAX_CTX_POINTS 8
#define ST_PL_NAME 64

/* latency: least time per token for one sequence;
 * throughput: least bottleneck (EdgeShard; tokens/s when enough sequences
 * are in flight to keep every stage busy);
 * tokens_per_s: most tokens/s with exactly `batch` sequences in flight,
 * i.e. least max(latency / batch, bottleneck). */
enum st_pl_objective { ST_PL_LATENCY = 0, ST_PL_THROUGHPUT = 1, ST_PL_TOKENS = 2, ST_PL_N_OBJECTIVES = 3 };
const char *st_pl_objective_name(enum st_pl_objective o);
/* "latency", "throughput", "tokens_per_s" -> 0, or -EINVAL. */
int st_pl_objective_parse(const char *s, enum st_pl_objective *o);

struct st_pl_link {
	double bandwidth_mbps;          /* megabits per second, > 0 */
	double rtt_ms;                  /* fixed cost charged per transfer, >= 0 */
};

struct st_pl_device {
	char name[ST_PL_NAME], kind[ST_PL_NAME], host[ST_PL_NAME];
	uint64_t memory_bytes;          /* budget for weights + KV cache */
	int n_ctx;                      /* decode profiles at these context lengths */
	uint32_t ctx[ST_PL_MAX_CTX_POINTS];     /* ascending */
	double *decode_ms[ST_PL_MAX_CTX_POINTS]; /* [n_units] ms per token per unit */
	int n_pf;                       /* prefill profile points (0: no prefill costs) */
	uint32_t pf_tokens[ST_PL_MAX_CTX_POINTS];       /* prompt tokens per eval, ascending
							 * (0: batch not known, a v1 "prefill_ms") */
	double *prefill_ms[ST_PL_MAX_CTX_POINTS];       /* [n_units] ms per prompt token */
	double overhead_ms;             /* fixed ms per token per stage on this device
					 * (dispatch, synchronisation), charged once per stage */
	double peak_gbs;                /* memory read bandwidth the device sees, 1e9 bytes/s
					 * (0: unknown); shown, not used by the planners */
};

struct st_pl_unit {
	char name[ST_PL_NAME];
	uint64_t weight_bytes;
	uint64_t kv_bytes_per_token;    /* 0 for embedding and head */
};

struct st_pl_instance {
	int n_devices, n_units;
	struct st_pl_device *devices;   /* [n_devices] */
	struct st_pl_unit *units;       /* [n_units] */
	struct st_pl_link *links;       /* [n_devices * n_devices], from*n+to */
	uint64_t activation_bytes;      /* sent per hop per token */
	uint64_t output_bytes;          /* returned to the first device per token */
	enum st_pl_objective objective;
	int source;                     /* device index, -1 for none */
	uint32_t context;               /* tokens of KV cache per sequence */
	uint32_t batch;                 /* sequences in flight (k) */
	uint32_t prompt_tokens;         /* for the prefill prediction (0: none) */
};

/* Allocate devices, units, per-unit cost arrays (one context point each,
 * zeroed) and links (all set to def).  Returns 0 or -ENOMEM/-EINVAL. */
int st_pl_instance_alloc(struct st_pl_instance *in, int n_devices, int n_units,
			 struct st_pl_link def);
/* Add a decode profile point for device d (sorted in); allocates ms[]. */
int st_pl_device_add_ctx(struct st_pl_instance *in, int d, uint32_t context, double **ms);
/* Add a prefill profile point (prompt of `tokens` tokens in one eval) for
 * device d (sorted in); allocates ms[] (ms per prompt token per unit). */
int st_pl_device_add_prefill(struct st_pl_instance *in, int d, uint32_t tokens, double **ms);
void st_pl_instance_free(struct st_pl_instance *in);
/* Deep copy (dst is overwritten). */
int st_pl_instance_copy(struct st_pl_instance *dst, const struct st_pl_instance *src);
/* Check every field (names unique, costs finite and >= 0, bandwidth > 0,
 * source in range...).  0 or -EINVAL with a message naming the field. */
int st_pl_instance_validate(const struct st_pl_instance *in);
int st_pl_device_find(const struct st_pl_instance *in, const char *name);

/* ms per token of unit i on device d at the instance's context: linear
 * interpolation between profile points, clamped-slope extrapolation
 * (linear beyond the last two points, never below 0). */
double st_pl_unit_ms(const struct st_pl_instance *in, int d, int i);
/* ms per prompt token of unit i on device d for a prompt of n tokens:
 * linear interpolation in n between the profiled prompt lengths, the
 * nearest point's value outside them (a longer prompt runs in chunks no
 * faster per token than the longest measured eval); 0 without prefill
 * costs. */
double st_pl_unit_prefill_ms(const struct st_pl_instance *in, int d, int i, uint32_t n);
/* ms to send `bytes` over the link from -> to (0 when from == to). */
double st_pl_link_ms(const struct st_pl_instance *in, int from, int to, uint64_t bytes);

/* ---- plans ------------------------------------------------------------- */

struct st_pl_stage {
	int device;
	int first, last;                /* inclusive unit range */
};

struct st_pl_plan {
	int n_stages;
	struct st_pl_stage stage[ST_PL_MAX_DEVICES];
	double value;                   /* the planner's objective value (ms) */
};

/* What the cost model predicts for a plan. */
struct st_pl_eval {
	bool valid;                     /* structure ok (cover, order, distinct, source) */
	bool fits;                      /* every stage within its device's memory */
	double latency_ms;              /* time per token, one sequence */
	double bottleneck_ms;           /* slowest stage or link */
	double tokens_per_s;            /* with batch sequences in flight */
	double per_token_ms;            /* max(latency / batch, bottleneck) = 1000 / tokens_per_s */
	double prefill_ms;              /* time to first token for a prompt of prompt_tokens:
					 * per stage prompt_tokens x the per-token prefill cost at
					 * that length (st_pl_unit_prefill_ms) + its overhead_ms,
					 * hops of prompt_tokens activations, the return of one
					 * output (0 unless every stage's device has prefill costs) */
	double stage_ms[ST_PL_MAX_DEVICES];
	double hop_ms[ST_PL_MAX_DEVICES];       /* after stage s; [n-1] is the return */
	uint64_t mem_bytes[ST_PL_MAX_DEVICES];  /* per stage */
	char why[160];                  /* reason when !valid or !fits */
};

/* The cost model, straight from the definitions above (sums unit by unit;
 * independent of the planners' prefix sums).  Returns 0; an invalid or
 * non-fitting plan is reported in ev->valid/ev->fits, not as an error. */
int st_pl_evaluate(const struct st_pl_instance *in, const struct st_pl_plan *p,
		   struct st_pl_eval *ev);
/* The objective's value of an evaluation (latency_ms, bottleneck_ms or
 * per_token_ms). */
double st_pl_eval_objective(const struct st_pl_eval *ev, enum st_pl_objective obj);

/* ---- the planners -------------------------------------------------------- */

/* Precomputed arrays shared by the planners. */
struct st_pl_problem {
	int D, L;
	int source;
	double *pre;                    /* [D][L+1] prefix sums of unit ms */
	double ovh[ST_PL_MAX_DEVICES];  /* per-stage overhead ms of each device */
	double *hop;                    /* [D][D] activation transfer ms */
	double *ret;                    /* [D][D] output return ms (0 on the diagonal) */
	int *fit;                       /* [D][L+1]: largest b with [a,b) fitting on d (a if none) */
	int n_classes;
	int class_of[ST_PL_MAX_DEVICES];        /* interchangeable devices share a class */
	int class_size[ST_PL_MAX_DEVICES];
	int class_member[ST_PL_MAX_DEVICES][ST_PL_MAX_DEVICES];
};

int st_pl_problem_build(const struct st_pl_instance *in, struct st_pl_problem *pb);
void st_pl_problem_free(struct st_pl_problem *pb);

/* Statistics of one planner run (for benchmarks and tests). */
struct st_pl_stats {
	uint64_t nodes;                 /* search nodes / DP transitions */
	uint64_t states;
	bool relaxation_exact;          /* latency: relaxed optimum already valid */
};

/* Exact minimum time per token.  0 and *out, or -ENOSPC when no plan fits
 * (message says why), -E2BIG when the search exceeds its limits. */
int st_pl_plan_latency(const struct st_pl_instance *in, struct st_pl_plan *out,
		       struct st_pl_stats *st);
/* Exact minimum bottleneck (EdgeShard's throughput formulation) by a DP
 * over (unit prefix, devices used per class, class of the last device).
 * -E2BIG when that state space exceeds ~2^27 states. */
int st_pl_plan_throughput(const struct st_pl_instance *in, struct st_pl_plan *out,
			  struct st_pl_stats *st);
/* Exact most tokens/s with in->batch sequences in flight (least
 * max(latency/batch, bottleneck)): capped latency searches over the
 * candidate bottleneck values, binary searched (dp_latency.c). */
int st_pl_plan_tokens(const struct st_pl_instance *in, struct st_pl_plan *out, struct st_pl_stats *st);
/* Dispatch on in->objective. */
int st_pl_plan(const struct st_pl_instance *in, struct st_pl_plan *out, struct st_pl_stats *st);

/* ---- baselines and oracle ----------------------------------------------- */

enum st_pl_baseline {
	ST_PL_BASE_SOLO,                /* single best device (Edge-Solo) */
	ST_PL_BASE_EVEN,                /* units split evenly over all devices */
	ST_PL_BASE_MEMORY,              /* split proportional to memory (llama.cpp/exo) */
	ST_PL_BASE_TWO_WAY,             /* best split over two devices (cloud-edge) */
	ST_PL_BASE_COUNT,
};
const char *st_pl_baseline_name(enum st_pl_baseline b);
/* Build the baseline's plan for the instance's objective.  0 (the plan may
 * not fit: check st_pl_evaluate), or -ENOSPC when the baseline has no
 * plan at all (e.g. no single device holds the model). */
int st_pl_baseline(const struct st_pl_instance *in, enum st_pl_baseline b, struct st_pl_plan *out);

/* Enumerate every plan (every ordered choice of distinct devices and every
 * cut); the best plan for each objective in best[objective].  -ENOSPC
 * when none fits, -E2BIG after max_leaves complete plans (0: no limit). */
int st_pl_oracle(const struct st_pl_instance *in, uint64_t max_leaves,
		 struct st_pl_plan best[ST_PL_N_OBJECTIVES]);

/* ---- JSON ---------------------------------------------------------------- */

struct st_json;
/* Instance from a parsed document / a file (schema: docs/plan-input.md). */
int st_pl_instance_from_json(const struct st_json *root, struct st_pl_instance *in);
int st_pl_instance_load(const char *path, struct st_pl_instance *in);
/* Instance as JSON (caller frees). */
char *st_pl_instance_to_json(const struct st_pl_instance *in, bool pretty);
/* Plan (+ its evaluation) as JSON (caller frees); NULL on error. */
char *st_pl_plan_to_json(const struct st_pl_instance *in, const struct st_pl_plan *p, bool pretty);
/* "dev:first-last,dev:first-last" in planner units; 0 or -ENOSPC. */
int st_pl_plan_stages_spec(const struct st_pl_instance *in, const struct st_pl_plan *p,
			   char *buf, size_t size);
/* The same plan as the runtime's --stages spec over transformer layers
 * (st_session_params.stages): valid when the units are "embedding", the
 * blocks, "head" (as `strata profile` writes them); unit b+1 is layer b,
 * the embedding goes with the first stage and the head with the last.
 * -ENOTSUP when the units are not in that shape or a stage holds only the
 * embedding or the head (the runtime cannot place those alone). */
int st_pl_plan_runtime_stages(const struct st_pl_instance *in, const struct st_pl_plan *p,
			      char *buf, size_t size);

/* An instance from device profiles (`strata profile` output, format
 * "strata-profile", one per device; the model's units must agree) and a
 * links object in the instance schema (NULL: every pair of devices on one
 * host gets same_host_default, other pairs need `links`).  Device names
 * are the profiles' device.name, made unique with "@host" when needed.
 * source: device name or NULL.  Errors name the profile (index) and field. */
int st_pl_instance_from_profiles(const struct st_json *const *profiles, int n, const struct st_json *links,
				 const char *source, struct st_pl_instance *in);

/* Fold the embedding unit into the first block and the head into the last
 * (runtime_units.c): unit i becomes layer i, so every plan of the result
 * runs in the runtime (which places the embedding with the first stage and
 * the head with the last) at the same predicted cost.  -ENOTSUP unless the
 * units are embedding, blocks, head. */
int st_pl_instance_fold_ends(struct st_pl_instance *in);
/* "dev:first-last,..." of a plan on a folded instance: the runtime's
 * --stages spec (units are layers). */
int st_pl_plan_layer_stages(const struct st_pl_instance *in, const struct st_pl_plan *p, char *buf, size_t size);

/* A plan read back from JSON, by device names (for `strata run --plan`). */
struct st_pl_plan_file {
	int n_stages;
	struct { char host[ST_PL_NAME], device[ST_PL_NAME]; int first, last; } stage[ST_PL_MAX_DEVICES];
	int n_units;
};
int st_pl_plan_file_from_json(const struct st_json *root, struct st_pl_plan_file *pf);
/* Resolve names against an instance into a plan (-EINVAL for unknown). */
int st_pl_plan_file_resolve(const struct st_pl_plan_file *pf, const struct st_pl_instance *in,
			    struct st_pl_plan *p);

#endif
