/* cpu_features.h: which SIMD extensions this CPU (and OS) supports, probed
 * once at run time (cpuid + xgetbv on x86, hwcaps on aarch64), and which
 * kernel path is in use.  One binary serves every x86 CPU: the kernels are
 * compiled per ISA with target attributes and chosen here. */
#ifndef ST_CPU_FEATURES_H
#define ST_CPU_FEATURES_H

#include <stdbool.h>

struct st_cpu_features {
	bool avx2, fma, f16c;               /* x86 AVX2 path needs all three */
	bool avx512f, avx512bw, avx512vl;   /* AVX-512 path needs all three  */
	bool avx512vnni, avx512bf16;
	bool neon, neon_dotprod, neon_fp16; /* aarch64 */
};

/* Kernel paths, slowest first.  ST_ISA_AUTO picks the best available. */
enum st_isa {
	ST_ISA_SCALAR = 0,
	ST_ISA_AVX2,
	ST_ISA_AVX512,
	ST_ISA_AVX512_VNNI,
	ST_ISA_NEON,
	ST_ISA_NEON_DOTPROD,
	ST_ISA_COUNT,
	ST_ISA_AUTO = -1,
};

/* Probed once (thread-safe); never NULL. */
const struct st_cpu_features *st_cpu_features_get(void);
/* True when this build has the path compiled in and the CPU can run it. */
bool st_cpu_isa_supported(enum st_isa isa);
/* The best supported path (the environment variable ST_ISA=scalar|avx2|
 * avx512|avx512_vnni|neon|neon_dotprod lowers it, for testing). */
enum st_isa st_cpu_isa_best(void);
const char *st_cpu_isa_name(enum st_isa isa);
/* Number of online cores (>= 1). */
int st_cpu_count(void);

#endif
