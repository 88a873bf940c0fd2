#!/bin/bash
# simd_qemu.sh: cross-compile the SIMD kernel test (tests/test_simd.c and
# the kernel sources) for aarch64 with Debian's gcc-aarch64-linux-gnu and run
# it under qemu-aarch64, so the NEON and NEON dotprod paths are executed and
# checked against the scalar reference, not just compiled.
# Needs: gcc-aarch64-linux-gnu, qemu-user (skips with a reason otherwise).
set -u
. "$(dirname "$0")/aarch64_env.sh"
# -std=c11 also means -ffp-contract=off, which the exact quantized rule needs.
if ! $cc -std=c11 -ffp-contract=off -O2 -D_GNU_SOURCE -Wall -Wextra -Wno-unused-parameter \
	-I"$r" -I"$src/tests" -I"$tmp" -o "$tmp/test_simd" \
	"$src/tests/test_simd.c" "$src/tests/testutil.c" "$r/util.c" "$r/types.c" "$r/cpu_features.c" \
	"$r/threadpool.c" "$r/quant_dot.c" "$r/matmul.c" "$r/simd_x86.c" "$r/simd_arm.c" "$r/attn_f16.c" \
	"$r/kquant.c" "$r/kquant_dot.c" "$r/kquant_x86.c" "$r/kquant_arm.c" "$r/kquant_arm_row4.c" \
	"$r/quant_legacy.c" "$r/quant_legacy_x86.c" "$r/quant_legacy_arm.c" \
	"$r/gemm.c" "$r/gemm_x86.c" \
	-lm -lpthread > "$tmp/cc.log" 2>&1; then
	echo "1..1"
	echo "not ok 1 - cross-compile the kernel test for aarch64"
	sed 's/^/# /' "$tmp/cc.log"
	exit 1
fi
# qemu's default CPU model ('max') has NEON and the dot-product extension,
# so both aarch64 paths run.
exec "$qemu" -L "$sysroot" "$tmp/test_simd"
