#!/usr/bin/env python3
"""ioring_summary.py: medians of bench/ioring_bench.sh output (JSON lines on stdin)."""
import json
import statistics
import sys

rows = {}
for line in sys.stdin:
    line = line.strip()
    if not line.startswith('{'):
        continue
    d = json.loads(line)
    rows.setdefault((d['cold'], d['io']), []).append(d)
dd = [d['bytes_per_s'] for (c, io), v in rows.items() if io == 'dd-direct' for d in v]
ddm = statistics.median(dd) if dd else None
print('| cache | io | runs | median MB/s | min-max MB/s | vs dd | median s | peak RSS MiB |')
print('|---|---|---|---|---|---|---|---|')
for (cold, io), v in sorted(rows.items(), key=lambda kv: (not kv[0][0], kv[0][1])):
    bps = [d['bytes_per_s'] for d in v]
    med = statistics.median(bps)
    rss = [d.get('peak_rss_bytes', 0) for d in v]
    print('| %s | %s | %d | %.0f | %.0f-%.0f | %s | %.3f | %s |' % (
        'cold' if cold else 'warm', io, len(v), med / 1e6, min(bps) / 1e6, max(bps) / 1e6,
        '%.0f%%' % (100 * med / ddm) if ddm and cold else '-',
        statistics.median(d['seconds'] for d in v),
        '%.0f' % (statistics.median(rss) / 1048576) if any(rss) else '-'))
