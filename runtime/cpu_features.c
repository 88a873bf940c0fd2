/* cpu_features.c: run-time CPU feature probing (cpuid/xgetbv on x86,
 * getauxval hwcaps on aarch64). */
#include "cpu_features.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif
#if defined(__aarch64__) && defined(__linux__)
#include <sys/auxv.h>
#ifndef HWCAP_ASIMDDP
#define HWCAP_ASIMDDP (1 << 20)
#endif
#ifndef HWCAP_ASIMDHP
#define HWCAP_ASIMDHP (1 << 10)
#endif
#endif

static struct st_cpu_features g_feat;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

#if defined(__x86_64__) || defined(__i386__)
static unsigned long long xgetbv0(void)
{
	unsigned int eax, edx;
	__asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
	return ((unsigned long long)edx << 32) | eax;
}
#endif

static void probe(void)
{
	struct st_cpu_features f;
	memset(&f, 0, sizeof(f));
#if defined(__x86_64__) || defined(__i386__)
	unsigned int a, b, c, d;
	if (__get_cpuid(1, &a, &b, &c, &d)) {
		bool osxsave = c & (1u << 27);
		bool avx = c & (1u << 28);
		f.fma = c & (1u << 12);
		f.f16c = c & (1u << 29);
		unsigned long long xcr0 = osxsave ? xgetbv0() : 0;
		bool ymm_os = (xcr0 & 0x6) == 0x6;          /* XMM and YMM state */
		bool zmm_os = (xcr0 & 0xe6) == 0xe6;        /* + opmask, ZMM hi */
		if (avx && ymm_os && __get_cpuid_count(7, 0, &a, &b, &c, &d)) {
			f.avx2 = b & (1u << 5);
			if (zmm_os) {
				f.avx512f = b & (1u << 16);
				f.avx512bw = b & (1u << 30);
				f.avx512vl = b & (1u << 31);
				f.avx512vnni = c & (1u << 11);
			}
			if (zmm_os && __get_cpuid_count(7, 1, &a, &b, &c, &d))
				f.avx512bf16 = a & (1u << 5);
		}
		if (!ymm_os)
			f.fma = f.f16c = false;
	}
#elif defined(__aarch64__)
	f.neon = true;
#if defined(__linux__)
	unsigned long hw = getauxval(AT_HWCAP);
	f.neon_dotprod = hw & HWCAP_ASIMDDP;
	f.neon_fp16 = hw & HWCAP_ASIMDHP;
#endif
#endif
	g_feat = f;
}

const struct st_cpu_features *st_cpu_features_get(void)
{
	pthread_once(&g_once, probe);
	return &g_feat;
}

bool st_cpu_isa_supported(enum st_isa isa)
{
	const struct st_cpu_features *f = st_cpu_features_get();
	switch (isa) {
	case ST_ISA_SCALAR:
		return true;
#if defined(__x86_64__)
	case ST_ISA_AVX2:
		return f->avx2 && f->fma && f->f16c;
	case ST_ISA_AVX512:
		return f->avx2 && f->fma && f->f16c && f->avx512f && f->avx512bw && f->avx512vl;
	case ST_ISA_AVX512_VNNI:
		return st_cpu_isa_supported(ST_ISA_AVX512) && f->avx512vnni;
#endif
#if defined(__aarch64__)
	case ST_ISA_NEON:
		return f->neon;
	case ST_ISA_NEON_DOTPROD:
		return f->neon && f->neon_dotprod;
#endif
	default:
		return false;
	}
}

static const char *const isa_names[ST_ISA_COUNT] = {
	[ST_ISA_SCALAR] = "scalar", [ST_ISA_AVX2] = "avx2", [ST_ISA_AVX512] = "avx512",
	[ST_ISA_AVX512_VNNI] = "avx512_vnni", [ST_ISA_NEON] = "neon",
	[ST_ISA_NEON_DOTPROD] = "neon_dotprod",
};

const char *st_cpu_isa_name(enum st_isa isa)
{
	return isa >= 0 && isa < ST_ISA_COUNT ? isa_names[isa] : "unknown";
}

enum st_isa st_cpu_isa_best(void)
{
	enum st_isa best = ST_ISA_SCALAR;
	for (int i = ST_ISA_COUNT - 1; i > 0; i--)
		if (st_cpu_isa_supported((enum st_isa)i)) {
			best = (enum st_isa)i;
			break;
		}
	const char *env = getenv("ST_ISA");
	if (env && *env) {
		for (int i = 0; i < ST_ISA_COUNT; i++)
			if (!strcmp(env, isa_names[i]) && i <= (int)best && st_cpu_isa_supported((enum st_isa)i))
				return (enum st_isa)i;
	}
	return best;
}

int st_cpu_count(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	return n >= 1 ? (int)(n > 1024 ? 1024 : n) : 1;
}
