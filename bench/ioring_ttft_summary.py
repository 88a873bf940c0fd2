#!/usr/bin/env python3
"""ioring_ttft_summary.py < ttft.jsonl: per mode, median and range of the
cold time to first token, load and eval parts, staging copies, peak RSS,
the first tokens seen and the load average (Markdown table)."""
import json, statistics, sys

rows = {}
for line in sys.stdin:
    line = line.strip()
    if line.startswith('{'):
        r = json.loads(line)
        rows.setdefault(r['mode'], []).append(r)
print('| weights | runs | median TTFT s | min-max s | loader s (median) | session s | eval s | '
      'KiB via staging | peak RSS MiB | first token | load avg |')
print('|---|---|---|---|---|---|---|---|---|---|---|')
for mode, rs in rows.items():
    med = lambda k: statistics.median(r[k] for r in rs)
    t = [r['ttft_seconds'] for r in rs]
    la = [r['loadavg'] for r in rs]
    print(f"| {mode} | {len(rs)} | {statistics.median(t):.2f} | {min(t):.2f}-{max(t):.2f} | "
          f"{med('load_seconds'):.2f} | {med('session_seconds'):.2f} | {med('eval_seconds'):.2f} | "
          f"{med('bytes_copied') / 1024:.0f} | {med('peak_rss_bytes') / 2**20:.0f} | "
          f"{sorted(set(r['first_token'] for r in rs))} | {min(la):.1f}-{max(la):.1f} |")
