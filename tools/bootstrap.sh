#!/bin/sh
# Set up a fresh Debian/Ubuntu machine (installing only what is missing), build, and
# either run the self-test on the default OpenCL device or run the default test suite.
#   tools/bootstrap.sh selftest    release build in build/, then facl-selftest
#   tools/bootstrap.sh test        sanitizer build in build-test/, then meson test
# On a machine without a GPU the OpenCL device is PoCL on the CPU.
set -eu
cd "$(dirname "$0")/.."
mode=${1:-selftest}

packages="meson ninja-build pkg-config cmake gcc libc6-dev ocl-icd-opencl-dev opencl-c-headers \
pocl-opencl-icd libcmocka-dev libclblast-dev gnuplot-nox python3 oclgrind \
python3-pyopencl python3-numpy python3-pytest python3-venv python3-pip"
missing=""
for p in $packages; do
    dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
done
if [ -n "$missing" ]; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo=sudo
    echo "bootstrap: installing:$missing"
    $sudo apt-get update -q
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends $missing
fi

setup() { # setup DIR OPTIONS...
    dir=$1
    shift
    if [ -d "$dir/meson-private" ]; then meson setup --reconfigure "$dir" "$@"; else meson setup "$dir" "$@"; fi
}

case "$mode" in
selftest)
    setup build --buildtype=release
    ninja -C build
    exec ./build/tools/facl-selftest --quick
    ;;
test)
    setup build-test -Db_sanitize=address,undefined -Db_lundef=false
    ninja -C build-test
    exec meson test -C build-test --print-errorlogs --num-processes 2
    ;;
*)
    echo "usage: $0 selftest|test" >&2
    exit 2
    ;;
esac
