# aarch64_env.sh: sourced by the qemu-aarch64 kernel tests (simd_qemu.sh,
# kquant_qemu.sh).  Finds Debian's cross compiler and qemu-aarch64, or skips
# the whole test with a reason (TAP "1..0 # SKIP", exit 0: meson reports that
# as a skip, a non-zero status as an error); makes a temporary directory with
# a feature-less st_config.h.  Sets: src, r (runtime/), cc, sysroot, qemu, tmp.
src=${ST_SOURCE_DIR:-$(cd "$(dirname "$0")/.." && pwd)}
r=$src/runtime
cc=aarch64-linux-gnu-gcc
sysroot=/usr/aarch64-linux-gnu
qemu=$(command -v qemu-aarch64 || command -v qemu-aarch64-static || true)
if ! command -v $cc >/dev/null 2>&1; then
	echo "1..0 # SKIP $cc not installed (Debian package gcc-aarch64-linux-gnu)"
	exit 0
fi
if [ -z "$qemu" ]; then
	echo "1..0 # SKIP qemu-aarch64 not installed (Debian package qemu-user)"
	exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cat > "$tmp/st_config.h" <<'H'
#define ST_HAVE_VULKAN 0
#define ST_HAVE_OPENCL 0
#define ST_HAVE_LIBDRM 0
#define ST_HAVE_LIBURING 0
H
