#!/bin/bash
# test_plan_run.sh: --device on strata run / perplexity / bench for every
# device `strata devices` lists (greedy text and perplexity agree with the
# CPU's), bad device names (one line listing the devices, exit 2), and
# strata run --plan FILE (the plan's stages run: --verbose names them) and
# --plan auto (profiles cached under $XDG_CACHE_HOME/strata, predicted vs
# measured printed) on stories260K.  TAP on stdout.
set -u

STRATA="${ST_BUILD_DIR:?ST_BUILD_DIR not set}/tools/strata"
MODELS="${ST_MODELS_DIR:-}"
if [ ! -x "$STRATA" ]; then
	echo "Bail out! $STRATA is not built"
	exit 1
fi
M="$MODELS/stories260K/stories260K.gguf"
TEXT="$MODELS/tinystories/tinystories_val.head200k.txt"
if [ ! -r "$M" ] || [ ! -r "$TEXT" ]; then
	echo "1..0 # SKIP stories260K or the TinyStories text is not in ST_MODELS_DIR ($MODELS)"
	exit 0
fi
TMP=$(mktemp -d "${TMPDIR:-/tmp}/st_planrun_XXXXXX")
trap 'rm -rf "$TMP"' EXIT
export XDG_CACHE_HOME="$TMP/cache"
# Under LeakSanitizer: PoCL and its LLVM keep allocations to process exit
# (the driver's, not strata's); everything else is still checked.
printf 'leak:libpocl\nleak:libLLVM\n' >"$TMP/lsan.supp"
export LSAN_OPTIONS="${LSAN_OPTIONS:+$LSAN_OPTIONS:}suppressions=$TMP/lsan.supp"

. "$(dirname "$0")/tap.sh"
diag() { echo "# $*"; }
run() {
	"$@" >"$TMP/out" 2>"$TMP/err"
	rc=$?
	out=$(cat "$TMP/out")
	err=$(cat "$TMP/err")
}
has() { grep -qF -- "$2" <<<"$1"; }
lines() { [ -z "$1" ] && echo 0 || wc -l <<<"$1"; }

devs=$("$STRATA" devices --json | grep -o '"id": *"[^"]*"' | sed 's/.*"\([^"]*\)"$/\1/')
diag "devices: $(echo $devs)"
has "$devs" cpu; ok $? "strata devices lists cpu"

# the CPU's greedy text and perplexity are the reference
run "$STRATA" run -m "$M" -p "Once upon a time" -n 24 --temp 0
ref_text=$out
ok $rc "run on the CPU (rc $rc)"
run "$STRATA" perplexity -m "$M" -f "$TEXT" --ctx 64 --chunks 2
ref_ppl=$(awk '/^perplexity/ {print $2}' <<<"$out")
ok $rc "perplexity on the CPU: $ref_ppl"

for d in $devs; do
	run "$STRATA" run -m "$M" -p "Once upon a time" -n 24 --temp 0 --device "$d" --verbose
	[ $rc -eq 0 ] && [ "$out" = "$ref_text" ] && has "$err" "stage 0: ${d%%[0-9]*}"
	ok $? "run --device $d: greedy text identical to the CPU's, --verbose names the stage's backend (rc $rc)"
	run "$STRATA" perplexity -m "$M" -f "$TEXT" --ctx 64 --chunks 2 --device "$d"
	ppl=$(awk '/^perplexity/ {print $2}' <<<"$out")
	[ $rc -eq 0 ] && awk -v a="$ppl" -v b="$ref_ppl" 'BEGIN { exit !(a > 0 && (a - b) / b < 1e-3 && (b - a) / b < 1e-3) }'
	ok $? "perplexity --device $d: $ppl (CPU $ref_ppl, within 0.1%)"
	run "$STRATA" bench -m "$M" --device "$d" -p 8 -n 4 -r 1 --bw-mib 8
	[ $rc -eq 0 ] && has "$out" "| tg4"
	ok $? "bench --device $d reports tg4 (rc $rc)"
done

for cmd in "run -m $M -n 4" "perplexity -m $M -f $TEXT --ctx 64 --chunks 1" "bench -m $M -p 8 -n 4 -r 1"; do
	sub=${cmd%% *}
	# shellcheck disable=SC2086
	run "$STRATA" $cmd --device gpu7
	[ $rc -eq 2 ] && [ "$(lines "$err")" -eq 1 ] && has "$err" "no device 'gpu7'" && has "$err" "available:" &&
		has "$err" "cpu"
	ok $? "$sub --device gpu7: one line naming the available devices, exit 2 (rc $rc: $err)"
	# shellcheck disable=SC2086
	run "$STRATA" $cmd --stages cpu:0-1,nope3:2-4
	[ $rc -eq 2 ] && [ "$(lines "$err")" -eq 1 ] && has "$err" "no device 'nope3'"
	ok $? "$sub --stages with an unknown device: one line, exit 2 (rc $rc)"
done
run "$STRATA" run -m "$M" --device cpu --stages cpu:0-4
[ $rc -eq 2 ]; ok $? "run --device with --stages: exit 2"
run "$STRATA" run -m "$M" --objective latency
[ $rc -eq 2 ]; ok $? "run --objective without --plan auto: exit 2"

# --plan FILE: the last accelerator listed (or the CPU) runs layers 2-4
acc=cpu
for d in $devs; do [ "$d" != cpu ] && acc=$d; done
cat >"$TMP/plan.json" <<EOF
{"format": "strata-plan", "version": 1, "objective": "latency", "units": 7,
 "stages": [{"host": "h", "device": "cpu", "first": 0, "last": 2}, {"host": "h", "device": "$acc", "first": 3, "last": 6}],
 "runtime_stages": "cpu:0-1,$acc:2-4",
 "predicted": {"ms_per_token": 1.5, "stage_ms": [0.5, 1.0], "hop_ms": [0.0, 0.0], "context": 12}}
EOF
run "$STRATA" run -m "$M" -p "Once upon a time" -n 24 --temp 0 --plan "$TMP/plan.json" --verbose
[ $rc -eq 0 ] && [ "$out" = "$ref_text" ] && has "$err" "--stages cpu:0-1,$acc:2-4" &&
	has "$err" "stage 0: cpu0 (CPU) layers 0-1" && has "$err" "stage 1: ${acc%%[0-9]*}" && has "$err" "layers 2-4" &&
	has "$err" "per token: predicted 1.5000 ms"
ok $? "run --plan FILE runs its runtime_stages cpu:0-1,$acc:2-4 (--verbose names both), same text, prints the plan's prediction"
# without runtime_stages: units -> layers (embedding with the first stage, head with the last)
sed '/runtime_stages/d' "$TMP/plan.json" >"$TMP/plan2.json"
run "$STRATA" run -m "$M" -n 4 --temp 0 --plan "$TMP/plan2.json" --verbose
[ $rc -eq 0 ] && has "$err" "--stages cpu:0-1,$acc:2-4"
ok $? "run --plan FILE without runtime_stages: units 0-2,3-6 become layers 0-1,2-4 (rc $rc)"
echo '{"format": "strata-plan", "version": 1, "stages": [{"device": "tpu9", "first": 0, "last": 6}]}' >"$TMP/bad.json"
run "$STRATA" run -m "$M" -n 4 --plan "$TMP/bad.json"
[ $rc -eq 2 ] && has "$err" "no device 'tpu9'"
ok $? "run --plan with a device this machine lacks: exit 2 naming it (rc $rc)"
run "$STRATA" run -m "$M" -n 4 --plan "$TMP/missing.json"
[ $rc -eq 1 ] && [ "$(lines "$err")" -eq 1 ]
ok $? "run --plan with a missing file: one line, exit 1 (rc $rc)"

# --plan auto: profile every device (cached), plan, run, predicted vs measured
run "$STRATA" run -m "$M" -p "Once upon a time" -n 24 --temp 0 --plan auto -t 1
[ $rc -eq 0 ] && [ "$out" = "$ref_text" ] && has "$err" "profiling (--quick)" && has "$err" "plan (latency" &&
	has "$err" "predicted vs measured" && has "$err" "per token: predicted" && has "$err" "ms to the first token"
ok $? "run --plan auto: profiles, plans, same text, predicted vs measured per token and for the prompt (rc $rc)"
grep -F "strata run:   " "$TMP/err" | sed 's/^/# /'
np=$(ls "$XDG_CACHE_HOME"/strata/profile-*.json 2>/dev/null | wc -l)
nd=$(wc -w <<<"$devs")
[ "$np" -eq "$nd" ]; ok $? "one cached profile per device under \$XDG_CACHE_HOME/strata ($np of $nd)"
run "$STRATA" run -m "$M" -n 8 --plan auto --objective throughput --verbose
[ $rc -eq 0 ] && [ "$(grep -c "cached profile" <<<"$err")" -eq "$nd" ] && has "$err" "plan (throughput" &&
	has "$err" "baseline solo" && has "$err" "predicted vs measured"
ok $? "run --plan auto again: cached profiles only, --objective throughput, --verbose lists devices and baselines (rc $rc)"

# --plan auto with a device whose profiling fails (ST_PROFILE_FAIL makes
# `strata profile` fail for the devices it lists): skipped with one warning
# line naming it and the reason, planning goes on with the others; with no
# device left, an error.
bad=$acc
[ "$bad" = cpu ] && bad=none
export XDG_CACHE_HOME="$TMP/cache2"
if [ "$bad" != none ]; then
	ST_PROFILE_FAIL=$bad run "$STRATA" run -m "$M" -p "Once upon a time" -n 24 --temp 0 --plan auto -t 1
	warn=$(grep -F "warning: skipping device" <<<"$err")
	[ $rc -eq 0 ] && [ "$out" = "$ref_text" ] && [ "$(lines "$warn")" -eq 1 ] && has "$warn" "device $bad:" &&
		has "$warn" "ST_PROFILE_FAIL" && ! has "$(grep -F "plan (latency" <<<"$err")" "$bad" &&
		! has "$(grep -F -- "--stages" <<<"$err")" "$bad"
	ok $? "run --plan auto with $bad failing to profile: one warning naming it and the reason, planned and ran without it (rc $rc: $warn)"
else
	echo "ok $((n += 1)) # SKIP only the CPU: no second device to lose"
fi
all=$(tr '\n' ',' <<<"$devs")
export XDG_CACHE_HOME="$TMP/cache2b"    # nothing cached
ST_PROFILE_FAIL=$all run "$STRATA" run -m "$M" -n 4 --plan auto -t 1
[ $rc -eq 1 ] && has "$err" "no device could be profiled" && [ "$(grep -c "warning: skipping device" <<<"$err")" -eq "$nd" ]
ok $? "run --plan auto with every device failing: a warning per device, then an error, exit 1 (rc $rc)"
# a cached version-1 profile is not used: profiled again (version 2)
export XDG_CACHE_HOME="$TMP/cache3"
run "$STRATA" profile -m "$M" -d cpu -t 1 --quick --contexts 0,8 --prefill 8
sed -i 's/"version": 2/"version": 1/' "$out"
ST_PROFILE_FAIL=$(tr '\n' ',' <<<"$devs" | sed 's/cpu,//') run "$STRATA" run -m "$M" -n 4 --plan auto -t 1
[ $rc -eq 0 ] && has "$err" "cpu: profiling (--quick)" && grep -q '"version": 2' "$XDG_CACHE_HOME"/strata/profile-*-cpu.json
ok $? "run --plan auto re-profiles over a cached version-1 profile (rc $rc)"

tap_done
