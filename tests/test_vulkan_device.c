/* test_vulkan_device: Vulkan device discovery.  The registry finds the
 * backend (weak symbol + link_whole); every device reports a name, a type,
 * memory, a driver and a subgroup size; lavapipe is recognised as a CPU
 * device with unified host-visible memory; open/close repeat cleanly; and
 * with the loader pointed at no driver (in a fresh process) the backend
 * reports zero devices (not an error) and open fails with a message
 * instead of crashing. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "backend.h"
#include "strata.h"
#include "tap.h"
#include "vk_backend.h"

static const char *type_name(enum st_device_type t)
{
	switch (t) {
	case ST_DEVICE_CPU: return "cpu";
	case ST_DEVICE_INTEGRATED: return "integrated";
	case ST_DEVICE_DISCRETE: return "discrete";
	default: return "other";
	}
}

static void log_cb(enum st_log_level level, const char *msg, void *user)
{
	(void)user;
	if (level >= ST_LOG_WARN)
		diag("%s: %s", level >= ST_LOG_ERROR ? "error" : "warning", msg);
}

/* Child: the loader pointed at a driver that does not exist. */
static int no_driver(void)
{
	const struct st_backend_ops *vk = st_backend_find("vulkan");
	struct st_backend *be = NULL;
	setenv("VK_DRIVER_FILES", "/nonexistent/strata_no_icd.json", 1);
	setenv("VK_ICD_FILENAMES", "/nonexistent/strata_no_icd.json", 1);
	int n0 = st_backend_device_count(vk);
	diag("child with no driver: %d devices", n0);
	if (n0 != 0)
		return 1;
	if (st_backend_open(vk, 0, &be) >= 0 || be)
		return 2;
	diag("child: open failed cleanly: %s", st_last_error());
	return 0;
}

int main(int argc, char **argv)
{
	if (argc > 1 && !strcmp(argv[1], "--no-driver"))
		return no_driver();
	st_set_log(log_cb, NULL, ST_LOG_WARN);
	const struct st_backend_ops *vk = st_backend_find("vulkan");
	const struct st_backend_ops *const *list;
	int n_reg = st_backend_registry(&list);

	if (!vk)
		tap_skip_all("built without Vulkan");
	ok(n_reg >= 2 && !strcmp(list[n_reg - 1]->name, "cpu"), "registry: %d backends, cpu last", n_reg);
	int n = st_backend_device_count(vk);
	if (n == 0)
		tap_skip_all("no Vulkan device (install mesa-vulkan-drivers for lavapipe)");
	ok(n > 0, "%d Vulkan device(s)", n);
	bool saw_lavapipe = false;
	for (int i = 0; i < n; i++) {
		struct st_device_info info;
		int rc = st_backend_device_info(vk, i, &info);
		ok(rc == 0 && info.name[0] && info.driver[0], "vulkan%d: %s, %s", i, info.name, info.driver);
		diag("  type %s, memory %.1f GiB total / %.1f GiB free, %u compute units, subgroup %u, pci '%s', %s",
		     type_name(info.type), info.mem_total / 1073741824.0, info.mem_free / 1073741824.0,
		     info.compute_units, info.subgroup_size, info.pci_bus_id,
		     info.unified_memory ? "unified memory" : "discrete memory");
		ok(info.mem_total > 0 && info.mem_free <= info.mem_total, "vulkan%d: memory %llu free of %llu", i,
		   (unsigned long long)info.mem_free, (unsigned long long)info.mem_total);
		ok(info.subgroup_size >= 1 && (info.subgroup_size & (info.subgroup_size - 1)) == 0,
		   "vulkan%d: subgroup size %u is a power of two", i, info.subgroup_size);
		if (strstr(info.name, "llvmpipe")) {
			saw_lavapipe = true;
			ok(info.type == ST_DEVICE_CPU && info.unified_memory && info.compute_units > 0,
			   "lavapipe: cpu type, unified memory, %u compute units", info.compute_units);
		}
	}
	if (!saw_lavapipe)
		diag("no lavapipe among the devices: lavapipe-specific checks not run");
	ok(st_backend_device_info(vk, n, &(struct st_device_info){ 0 }) < 0, "device %d does not exist", n);

	/* open/close twice: the shared instance is created and torn down again */
	for (int round = 0; round < 2; round++) {
		struct st_backend *be = NULL;
		int rc = st_backend_open(vk, 0, &be);
		ok(rc == 0 && be && be->info.name[0], "open vulkan0, round %d", round);
		if (be) {
			struct st_buffer *b = NULL;
			ok(st_buffer_alloc(be, 1000, 0, &b) == 0, "alloc a 1000-byte buffer");
			if (b) {
				unsigned char w[1000], r[1000];
				for (int i = 0; i < 1000; i++)
					w[i] = (unsigned char)(i * 7);
				ok(st_buffer_write(be, b, 0, w, 1000) == 0 && st_buffer_read(be, b, 0, r, 1000) == 0 &&
				   !memcmp(w, r, 1000), "buffer round trip");
				ok(st_buffer_write(be, b, 999, w, 2) == -EINVAL, "write past the end refused");
				st_buffer_free(be, b);
			}
			ok(st_buffer_alloc(be, 0, 0, &b) < 0 && !b, "zero-byte buffer refused");
			/* wrapping host memory (mapped weights) without a copy */
			unsigned char *host = aligned_alloc(4096, 3 * 4096);
			for (int i = 0; host && i < 3 * 4096; i++)
				host[i] = (unsigned char)(i * 13 + 5);
			int wrc = host ? st_buffer_wrap(be, host, 2 * 4096 + 100, &b) : -ENOMEM;
			if (be->info.unified_memory && wrc == 0) {
				unsigned char r[256];
				ok(st_buffer_read(be, b, 8000, r, 256) == 0 && !memcmp(r, host + 8000, 256),
				   "wrapped host memory reads back in place");
				ok(st_buffer_write(be, b, 0, r, 16) == -EPERM, "wrapped memory is read-only: %s", st_last_error());
				st_buffer_free(be, b);
			} else {
				ok(wrc == -ENOTSUP, "wrap not offered (%d): the caller copies instead", wrc);
			}
			ok(host && st_buffer_wrap(be, host + 8, 4096, &b) == -ENOTSUP && !b,
			   "unaligned host pointer: -ENOTSUP (the caller copies)");
			free(host);
			st_backend_close(be);
		}
	}

	/* no driver: zero devices, not an error.  The instance lives as long as
	 * the process, so this runs in a fresh one (this program, re-executed). */
	pid_t pid = fork();
	if (pid == 0) {
		execl("/proc/self/exe", "test_vulkan_device", "--no-driver", (char *)NULL);
		_exit(127);
	}
	int status = -1;
	if (pid > 0)
		waitpid(pid, &status, 0);
	ok(pid > 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0,
	   "with no driver: zero devices, open fails cleanly (child exit %d)", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
	ok(st_vk_validation_error_count() == 0, "no validation errors");
	return tap_done();
}
