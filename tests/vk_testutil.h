/* vk_testutil.h: what the Vulkan tests share (include once per program).
 *
 * Leak checking: lavapipe's LLVM JIT leaks a few hundred bytes per
 * compiled pipeline inside libLLVM, and the loader unloads the driver when
 * the last instance goes, which leaves those stacks without a module name.
 * vk_test_pin_driver() keeps the driver and LLVM mapped for the whole
 * process so the leaks stay attributable, and the
 * suppressions below name only those libraries: a leak in strata's own
 * code is still reported. */
#ifndef ST_VK_TESTUTIL_H
#define ST_VK_TESTUTIL_H

#include <dlfcn.h>
#include <string.h>

const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
	return "leak:libLLVM\nleak:libvulkan_lvp\nleak:libVkLayer_khronos_validation\nleak:libvulkan.so\n";
}

/* Call first thing in main(), before any Vulkan call: maps lavapipe (and
 * with it libLLVM) and the validation layer for the whole process, so the
 * loader's dlclose at instance teardown never unmaps them. */
static inline void vk_test_pin_driver(void)
{
	static const char *const libs[] = { "libvulkan_lvp.so", "libVkLayer_khronos_validation.so" };
	for (size_t i = 0; i < sizeof libs / sizeof libs[0]; i++)
		(void)dlopen(libs[i], RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
}

#endif
