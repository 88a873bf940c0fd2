/* hash.c: XXH64 (written from the xxHash specification), span
 * verification for the loader's --verify, and hash files. */
#include "loader.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

#define P1 0x9E3779B185EBCA87ull
#define P2 0xC2B2AE3D27D4EB4Full
#define P3 0x165667B19E3779F9ull
#define P4 0x85EBCA77C2B2AE63ull
#define P5 0x27D4EB2F165667C5ull

static inline uint64_t rotl64(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }

static inline uint64_t read64(const unsigned char *p)
{
	uint64_t v;
	memcpy(&v, p, 8);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
	v = __builtin_bswap64(v);
#endif
	return v;
}

static inline uint32_t read32(const unsigned char *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
	v = __builtin_bswap32(v);
#endif
	return v;
}

static inline uint64_t xxh_round(uint64_t acc, uint64_t in)
{
	acc += in * P2;
	acc = rotl64(acc, 31);
	return acc * P1;
}

static inline uint64_t xxh_merge(uint64_t acc, uint64_t v)
{
	acc ^= xxh_round(0, v);
	return acc * P1 + P4;
}

uint64_t st_hash64(const void *data, size_t n, uint64_t seed)
{
	const unsigned char *p = data, *end = p + n;
	uint64_t h;

	if (n >= 32) {
		uint64_t v1 = seed + P1 + P2, v2 = seed + P2, v3 = seed, v4 = seed - P1;
		const unsigned char *limit = end - 32;
		do {
			v1 = xxh_round(v1, read64(p));
			v2 = xxh_round(v2, read64(p + 8));
			v3 = xxh_round(v3, read64(p + 16));
			v4 = xxh_round(v4, read64(p + 24));
			p += 32;
		} while (p <= limit);
		h = rotl64(v1, 1) + rotl64(v2, 7) + rotl64(v3, 12) + rotl64(v4, 18);
		h = xxh_merge(h, v1);
		h = xxh_merge(h, v2);
		h = xxh_merge(h, v3);
		h = xxh_merge(h, v4);
	} else {
		h = seed + P5;
	}
	h += (uint64_t)n;
	while (end - p >= 8) {
		h ^= xxh_round(0, read64(p));
		h = rotl64(h, 27) * P1 + P4;
		p += 8;
	}
	if (end - p >= 4) {
		h ^= (uint64_t)read32(p) * P1;
		h = rotl64(h, 23) * P2 + P3;
		p += 4;
	}
	while (p < end) {
		h ^= (uint64_t)*p * P5;
		h = rotl64(h, 11) * P1;
		p++;
	}
	h ^= h >> 33;
	h *= P2;
	h ^= h >> 29;
	h *= P3;
	h ^= h >> 32;
	return h;
}

void st_load_hash_spans(struct st_load_span *spans, size_t n)
{
	for (size_t i = 0; i < n; i++)
		spans[i].hash = spans[i].nbytes ? st_hash64(spans[i].dst, (size_t)spans[i].nbytes, 0)
						: st_hash64("", 0, 0);
}

int st_load_verify(const struct st_load_span *spans, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const struct st_load_span *s = &spans[i];
		uint64_t h = s->nbytes ? st_hash64(s->dst, (size_t)s->nbytes, 0) : st_hash64("", 0, 0);
		if (h != s->hash)
			return st_error(-EBADMSG,
					"verify: span %zu (%s) at file offset %llu, %llu bytes: hash %016llx, expected %016llx",
					i, s->name ? s->name : "unnamed", (unsigned long long)s->file_offset,
					(unsigned long long)s->nbytes, (unsigned long long)h,
					(unsigned long long)s->hash);
	}
	return 0;
}

int st_load_hashes_write(const char *path, struct st_load_span *spans, size_t n)
{
	FILE *f;
	int bad;
	st_load_hash_spans(spans, n);
	f = fopen(path, "w");
	if (!f)
		return st_error(-errno, "cannot write %s: %s", path, strerror(errno));
	fprintf(f, "# strata tensor hashes v1: xxh64 file_offset nbytes name\n");
	for (size_t i = 0; i < n; i++)
		fprintf(f, "%016" PRIx64 " %" PRIu64 " %" PRIu64 " %s\n", spans[i].hash, spans[i].file_offset,
			spans[i].nbytes, spans[i].name && *spans[i].name ? spans[i].name : "-");
	bad = ferror(f);
	if (fclose(f) != 0 || bad)
		return st_error(-EIO, "writing %s failed", path);
	return 0;
}

/* The name as the file writes it: the span's, or "-". */
static const char *hash_name(const struct st_load_span *s)
{
	return s->name && *s->name ? s->name : "-";
}

int st_load_hashes_read(const char *path, struct st_load_span *spans, size_t n)
{
	FILE *f = fopen(path, "r");
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;
	bool *seen;
	size_t found = 0;
	int lineno = 0, rc = 0;
	if (!f)
		return st_error(-errno, "cannot read %s: %s", path, strerror(errno));
	seen = calloc(n ? n : 1, sizeof *seen);
	if (!seen) {
		fclose(f);
		return st_error(-ENOMEM, "out of memory reading %s", path);
	}
	while (!rc && (len = getline(&line, &cap, f)) >= 0) {
		uint64_t h, off, nb;
		int name_at = -1;
		lineno++;
		while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
			line[--len] = 0;
		if (len == 0 || line[0] == '#')
			continue;
		/* the name is the rest of the line (it may hold spaces) */
		if (sscanf(line, "%" SCNx64 " %" SCNu64 " %" SCNu64 " %n", &h, &off, &nb, &name_at) != 3 || name_at < 0 ||
		    !line[name_at]) {
			rc = st_error(-EINVAL, "%s:%d: malformed line (expected: xxh64 file_offset nbytes name)", path,
				      lineno);
			break;
		}
		for (size_t i = 0; i < n && !rc; i++) {
			if (spans[i].file_offset != off || spans[i].nbytes != nb || strcmp(hash_name(&spans[i]), line + name_at))
				continue;
			if (seen[i] && spans[i].hash != h)
				rc = st_error(-EINVAL, "%s:%d: a second, different hash for %s", path, lineno, line + name_at);
			spans[i].hash = h;
			found += !seen[i];
			seen[i] = true;
		}
	}
	if (!rc && ferror(f))
		rc = st_error(-EIO, "reading %s failed (a directory, or an I/O error)", path);
	for (size_t i = 0; !rc && i < n; i++)
		if (!seen[i])
			rc = st_error(-ENOENT, "%s has hashes for %zu of the %zu tensors; none for %s (offset %llu, %llu bytes)",
				      path, found, n, hash_name(&spans[i]), (unsigned long long)spans[i].file_offset,
				      (unsigned long long)spans[i].nbytes);
	free(line);
	free(seen);
	fclose(f);
	return rc;
}
