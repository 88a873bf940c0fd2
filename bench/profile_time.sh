#!/bin/bash
# profile_time.sh: wall time of `strata profile` full vs --quick on one
# model and device, alternated R times (a burst of load hits both), and how
# far the quick profile's per-block decode estimates are from the full
# profile's measurements of the same round.  One JSON line per run, then a
# summary line with the medians.
#   bench/profile_time.sh STRATA MODEL [DEVICE=cpu] [R=3] [THREADS=0]
set -eu
STRATA=${1:?usage: profile_time.sh STRATA MODEL [DEVICE] [R] [THREADS]}
MODEL=${2:?model}
DEV=${3:-cpu}
R=${4:-3}
T=${5:-0}
TMP=$(mktemp -d "${TMPDIR:-/tmp}/st_proftime_XXXXXX")
trap 'rm -rf "$TMP"' EXIT
for r in $(seq 1 "$R"); do
	for mode in full quick; do
		flag=""
		[ $mode = quick ] && flag=--quick
		t0=$(date +%s.%N)
		"$STRATA" profile -m "$MODEL" -d "$DEV" -t "$T" $flag -o "$TMP/$mode-$r.json" >/dev/null 2>"$TMP/$mode-$r.err"
		t1=$(date +%s.%N)
		echo "$mode $r $(echo "$t1 - $t0" | bc)" >>"$TMP/times"
	done
done
python3 - "$TMP" "$R" "$(uptime | sed 's/.*load average: //')" <<'EOF'
import json, statistics, sys
tmp, R, load = sys.argv[1], int(sys.argv[2]), sys.argv[3]
times = {}
for line in open(tmp + "/times"):
    mode, r, s = line.split()
    times[(mode, int(r))] = float(s)
devs = []
for r in range(1, R + 1):
    f = json.load(open(f"{tmp}/full-{r}.json"))
    q = json.load(open(f"{tmp}/quick-{r}.json"))
    # decode at context 0 (both have it): per block quick / full
    fm, qm = f["decode_ms_at"][0]["ms"], q["decode_ms_at"][0]["ms"]
    ratios = [qm[i] / fm[i] for i in range(1, len(fm) - 1)]
    med = statistics.median(ratios)
    devs.append(abs(med - 1))
    print(json.dumps({"run": r, "full_s": round(times[("full", r)], 2), "quick_s": round(times[("quick", r)], 2),
                      "quick_blocks": q["measured"]["blocks"], "weight_mixes": q["measured"]["weight_mixes"],
                      "block_ratio_median": round(med, 3), "block_ratio_min": round(min(ratios), 3),
                      "block_ratio_max": round(max(ratios), 3),
                      "full_sum_ms": round(sum(fm), 3), "quick_sum_ms": round(sum(qm), 3),
                      "peak_read_gbs": round(f["bandwidth"]["peak_read_gbs"], 2),
                      "decode_weight_gbs": round(f["bandwidth"]["decode_weight_gbs"], 2)}))
print(json.dumps({"summary": True, "runs": R,
                  "full_s_median": round(statistics.median(times[("full", r)] for r in range(1, R + 1)), 2),
                  "quick_s_median": round(statistics.median(times[("quick", r)] for r in range(1, R + 1)), 2),
                  "block_ratio_dev_median": round(statistics.median(devs), 3), "load_after": load}))
EOF
