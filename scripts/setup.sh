#!/usr/bin/env bash
# setup.sh: install the Debian packages strata needs (only those missing),
# then configure and build into build/ (or $ST_BUILD if set).
#   scripts/setup.sh [extra meson options]
set -euo pipefail
cd "$(dirname "$0")/.."

# Build: compiler, meson. Runtime: PCRE2 (tokenizer pre-split regexes).
# Accelerators: Vulkan (lavapipe runs it on the CPU), OpenCL (PoCL), libdrm.
# I/O: liburing. Tests: numpy (independent reference), clang + libFuzzer,
# the aarch64 cross compiler and qemu-user (NEON kernels are executed).
PKGS=(build-essential meson ninja-build pkg-config libpcre2-dev liburing-dev
      libvulkan-dev glslang-tools mesa-vulkan-drivers vulkan-validationlayers
      ocl-icd-opencl-dev opencl-headers pocl-opencl-icd libdrm-dev
      python3 python3-numpy clang libclang-rt-14-dev
      gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user)

missing=()
for p in "${PKGS[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	echo "setup: installing Debian packages: ${missing[*]}"
	SUDO=""
	[ "$(id -u)" -eq 0 ] || SUDO="sudo"
	$SUDO apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

BUILD="${ST_BUILD:-build}"
if [ ! -f "$BUILD/build.ninja" ]; then
	meson setup "$BUILD" "$@"
fi
ninja -C "$BUILD"
