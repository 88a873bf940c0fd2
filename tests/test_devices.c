/* test_devices: device discovery.  DRM render nodes (libdrm) agree with
 * what /dev/dri holds (none here is the normal case, not an error); every
 * backend's devices describe themselves; `strata devices --json` lists the
 * same devices with their DRM node. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "backend.h"
#include "drm_devices.h"
#include "st_config.h"
#include "strata.h"
#include "tap.h"

static int count_render_nodes(void)
{
	DIR *d = opendir("/dev/dri");
	struct dirent *e;
	int n = 0;
	if (!d)
		return 0;
	while ((e = readdir(d)))
		n += !strncmp(e->d_name, "renderD", 7);
	closedir(d);
	return n;
}

static bool pci_id_ok(const char *s)
{
	/* dddd:bb:dd.f in hex */
	if (strlen(s) != 12 || s[4] != ':' || s[7] != ':' || s[10] != '.')
		return false;
	for (int i = 0; i < 12; i++)
		if (i != 4 && i != 7 && i != 10 && !isxdigit((unsigned char)s[i]))
			return false;
	return true;
}

int main(void)
{
	struct st_drm_device drm[32];
	int n = st_drm_devices(drm, 32);
	int want = ST_HAVE_LIBDRM ? count_render_nodes() : 0;

	ok(n >= 0, "drm enumeration succeeds (%d render nodes)%s", n, n < 0 ? st_last_error() : "");
	ok(n == want, "render nodes match /dev/dri (%d listed, %d expected%s)", n, want,
	   ST_HAVE_LIBDRM ? "" : ", built without libdrm");
	for (int i = 0; i < n && i < 32; i++) {
		struct stat st;
		ok(stat(drm[i].node, &st) == 0 && S_ISCHR(st.st_mode), "%s is a character device", drm[i].node);
		ok(!drm[i].pci_bus_id[0] || pci_id_ok(drm[i].pci_bus_id), "%s pci id '%s' is well formed",
		   drm[i].node, drm[i].pci_bus_id);
	}
	ok(st_drm_devices(drm, 0) == n, "max = 0 still counts the nodes");

	/* Every device of every backend describes itself; PCI ids are well formed. */
	const struct st_backend_ops *const *list;
	int nb = st_backend_registry(&list), total = 0;
	ok(nb >= 1 && !strcmp(list[nb - 1]->name, "cpu"), "registry: %d backends, cpu last", nb);
	for (int b = 0; b < nb; b++) {
		int nd = st_backend_device_count(list[b]);
		for (int d = 0; d < nd; d++, total++) {
			struct st_device_info info;
			int rc = st_backend_device_info(list[b], d, &info);
			ok(rc == 0 && info.name[0] && info.mem_total > 0 && info.compute_units > 0,
			   "%s device %d: '%s', %llu bytes, %u compute units", list[b]->name, d, info.name,
			   (unsigned long long)info.mem_total, info.compute_units);
			ok(!info.pci_bus_id[0] || pci_id_ok(info.pci_bus_id), "%s device %d pci id '%s'",
			   list[b]->name, d, info.pci_bus_id);
		}
		struct st_device_info info;
		int rc = st_backend_device_info(list[b], nd, &info);
		ok(rc == -ENODEV, "%s: device %d does not exist: %s", list[b]->name, nd, st_last_error());
	}

	/* The command lists the same number of devices, each with a drm_node field. */
	char cmd[1200];
	const char *bd = getenv("ST_BUILD_DIR");
	snprintf(cmd, sizeof cmd, "%s/tools/strata devices --json", bd ? bd : ".");
	FILE *p = popen(cmd, "r");
	int ids = 0, nodes = 0;
	char line[2048];
	while (p && fgets(line, sizeof line, p)) {
		ids += strstr(line, "\"id\":") != NULL;
		nodes += strstr(line, "\"drm_node\":") != NULL;
	}
	int st = p ? pclose(p) : -1;
	ok(st == 0 && ids == total && nodes == total, "strata devices --json: %d devices, %d with drm_node (want %d)",
	   ids, nodes, total);
	return tap_done();
}
