/* cmd_devices.c: `strata devices` lists every device of every compiled-in
 * backend, named the way --device and --stages take them (cpu, vulkan0,
 * opencl0, ...), with type, memory, compute units, driver, subgroup size
 * and PCI bus id.  Devices of different backends with the same PCI bus id
 * are one physical device seen through two APIs, and are shown so. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "backend.h"
#include "cli.h"
#include "drm_devices.h"
#include "strata.h"

static const char *type_name(enum st_device_type t)
{
	switch (t) {
	case ST_DEVICE_CPU: return "cpu";
	case ST_DEVICE_INTEGRATED: return "integrated";
	case ST_DEVICE_DISCRETE: return "discrete";
	default: return "other";
	}
}

static const char *bytes(uint64_t n, char *buf, size_t size)
{
	static const char *unit[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	double v = (double)n;
	int u = 0;
	while (v >= 1024 && u < 4) {
		v /= 1024;
		u++;
	}
	snprintf(buf, size, u ? "%.2f %s" : "%.0f %s", v, unit[u]);
	return buf;
}

struct dev {
	char id[48];
	struct st_device_info info;
	const char *drm_node;   /* render node with the same PCI bus id, or NULL */
};

static void json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			fprintf(f, "\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			fprintf(f, "\\u%04x", *s);
		else
			fputc(*s, f);
	}
	fputc('"', f);
}

int cmd_devices(int argc, char **argv)
{
	const struct st_backend_ops *const *list;
	struct dev devs[64];
	int n = 0;
	bool json = false;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--json")) {
			json = true;
		} else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			printf("usage: strata devices [--json]\n"
			       "List every device of every compiled-in backend (CPU, Vulkan, OpenCL) with its\n"
			       "name for --device/--stages, type, memory, compute units, driver, subgroup size\n"
			       "and PCI bus id.  A backend without devices is skipped; Vulkan and OpenCL\n"
			       "devices with the same PCI bus id are the same physical device.  With libdrm,\n"
			       "the physical GPUs (DRM render nodes under /dev/dri) are listed too, each with\n"
			       "the API devices that drive it; no /dev/dri is normal (e.g. CPU-only hosts).\n");
			return 0;
		} else {
			return cli_usage_error("devices", "unknown argument '%s'", argv[i]);
		}
	}
	int nb = st_backend_registry(&list);
	for (int b = 0; b < nb; b++) {
		int nd = st_backend_device_count(list[b]);
		for (int d = 0; d < nd && n < (int)(sizeof devs / sizeof devs[0]); d++) {
			if (st_backend_device_info(list[b], d, &devs[n].info) != 0) {
				fprintf(stderr, "strata devices: %s device %d: %s\n", list[b]->name, d, st_last_error());
				continue;
			}
			if (!strcmp(list[b]->name, "cpu"))
				snprintf(devs[n].id, sizeof devs[n].id, "cpu");
			else
				snprintf(devs[n].id, sizeof devs[n].id, "%s%d", list[b]->name, d);
			if (!strcmp(list[b]->name, "cpu") && d > 0)
				snprintf(devs[n].id, sizeof devs[n].id, "cpu%d", d);
			n++;
		}
	}
	struct st_drm_device drm[32];
	int ndrm = st_drm_devices(drm, 32);
	if (ndrm < 0) {
		fprintf(stderr, "strata devices: %s (listing the API devices only)\n", st_last_error());
		ndrm = 0;
	}
	ndrm = ndrm > 32 ? 32 : ndrm;
	for (int i = 0; i < n; i++)
		for (int k = 0; k < ndrm; k++)
			if (devs[i].info.pci_bus_id[0] && !strcmp(devs[i].info.pci_bus_id, drm[k].pci_bus_id))
				devs[i].drm_node = drm[k].node;
	if (json) {
		printf("[");
		for (int i = 0; i < n; i++) {
			const struct st_device_info *f = &devs[i].info;
			printf("%s\n  {\"id\": ", i ? "," : "");
			json_str(stdout, devs[i].id);
			printf(", \"name\": ");
			json_str(stdout, f->name);
			printf(", \"type\": \"%s\", \"mem_total\": %llu, \"mem_free\": %llu, \"compute_units\": %u, "
			       "\"subgroup_size\": %u, \"unified_memory\": %s, \"driver\": ",
			       type_name(f->type), (unsigned long long)f->mem_total, (unsigned long long)f->mem_free,
			       f->compute_units, f->subgroup_size, f->unified_memory ? "true" : "false");
			json_str(stdout, f->driver);
			printf(", \"pci_bus_id\": ");
			json_str(stdout, f->pci_bus_id);
			printf(", \"drm_node\": ");
			if (devs[i].drm_node)
				json_str(stdout, devs[i].drm_node);
			else
				printf("null");
			printf("}");
		}
		printf("\n]\n");
		return 0;
	}
	for (int i = 0; i < n; i++) {
		const struct st_device_info *f = &devs[i].info;
		char tot[32], fr[32];
		printf("%-9s %s\n", devs[i].id, f->name);
		printf("          type %s%s, memory %s total / %s available, %u compute units, subgroup %u\n",
		       type_name(f->type), f->unified_memory ? " (unified memory)" : "",
		       bytes(f->mem_total, tot, sizeof tot), bytes(f->mem_free, fr, sizeof fr), f->compute_units,
		       f->subgroup_size);
		printf("          driver %s\n", f->driver[0] ? f->driver : "-");
		printf("          pci %s", f->pci_bus_id[0] ? f->pci_bus_id : "- (no PCI bus info)");
		for (int j = 0; j < n; j++)
			if (j != i && f->pci_bus_id[0] && !strcmp(f->pci_bus_id, devs[j].info.pci_bus_id))
				printf(", same physical device as %s", devs[j].id);
		printf("\n");
	}
	if (n == 0)
		printf("no devices\n");
	if (ndrm == 0) {
		printf("physical GPUs: no DRM render nodes (no /dev/dri or no libdrm); API devices are told apart by PCI bus id\n");
		return 0;
	}
	printf("physical GPUs (DRM render nodes):\n");
	for (int k = 0; k < ndrm; k++) {
		printf("  %-22s pci %s  %04x:%04x  driven by:", drm[k].node,
		       drm[k].pci_bus_id[0] ? drm[k].pci_bus_id : "-", drm[k].vendor_id, drm[k].device_id);
		int used = 0;
		for (int i = 0; i < n; i++)
			if (devs[i].drm_node == drm[k].node) {
				printf(" %s", devs[i].id);
				used++;
			}
		printf("%s\n", used ? "" : " (no API device)");
	}
	return 0;
}
