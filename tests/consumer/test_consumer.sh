#!/bin/sh
# The installed library as applications see it, run by meson (suite 'install'):
#   sh test_consumer.sh MESON BUILD_DIR SOURCE_DIR PREFIX VERSION B_SANITIZE CC
# installs BUILD_DIR with `meson install --destdir` into a temporary staging tree, then
# builds consumer.c against that tree twice, with CMake (find_package(facl), the shared
# and the static target) and with pkg-config, and runs every build: each must link the
# staged libfacl and compute a correct forward on the default device.
# B_SANITIZE is meson's b_sanitize: a sanitizer build installs an instrumented library,
# which only links into a program built with the same -fsanitize.
set -u

meson=$1
build=$2
src=$3
prefix=$4
version=$5
sanitize=$6
cc=$7

tmp=$(mktemp -d "${FACL_TEST_TMPDIR:-${TMPDIR:-/tmp}}/facl-consumer.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT INT TERM
stage=$tmp/stage
root=$stage$prefix
failures=0

fail() {
    echo "FAIL: $*"
    failures=$((failures + 1))
}

# Runs "$@" with its output in $tmp/log, shown only when it fails.
quiet() {
    if "$@" >"$tmp/log" 2>&1; then return 0; fi
    cat "$tmp/log"
    return 1
}

# The program must resolve libfacl inside the staged tree, not a system copy.
check_run() { # check_run NAME PROGRAM
    where=$(ldd "$2" | grep 'libfacl\.so' || true)
    case "$where" in
    *"=> $stage/"*) ;;
    *) fail "$1: libfacl does not come from the staged tree: ${where:-not linked}"; return ;;
    esac
    if "$2"; then echo "ok:   $1"; else fail "$1: the consumer failed"; fi
}

check_static() { # the static build must not need libfacl.so at all
    if ldd "$1" | grep -q 'libfacl\.so'; then fail "cmake static: links libfacl.so"; return; fi
    if "$1"; then echo "ok:   cmake static"; else fail "cmake static: the consumer failed"; fi
}

sanflags=""
[ "$sanitize" = none ] || sanflags="-fsanitize=$sanitize"

if ! quiet "$meson" install -C "$build" --no-rebuild --destdir "$stage"; then
    echo "FAIL: meson install --destdir"
    exit 1
fi

# pkg-config: the sysroot maps the .pc file's /usr/local/... paths into the staging tree
# (a tree installed with -Dpkgconfig.relocatable=true would not need it).
pcdir=$(dirname "$(find "$stage" -name facl.pc | head -n 1)")
libdir=$(dirname "$(find "$stage" -name libfacl.so | head -n 1)")
if flags=$(PKG_CONFIG_PATH=$pcdir PKG_CONFIG_SYSROOT_DIR=$stage \
        pkg-config --cflags --libs facl); then
    # OpenCL is facl's private dependency; the consumer calls OpenCL itself.
    ocl=$(pkg-config --libs OpenCL 2>/dev/null || echo -lOpenCL)
    # shellcheck disable=SC2086 # word splitting of the flags is wanted
    if quiet "$cc" -std=c11 $sanflags "$src/consumer.c" -o "$tmp/consumer-pc" $flags $ocl -lm \
        "-Wl,-rpath,$libdir"; then
        check_run pkg-config "$tmp/consumer-pc"
    else
        fail "pkg-config: the consumer does not build"
    fi
else
    fail "pkg-config does not find facl in $pcdir"
fi

# No cmake is a failure, not a skip: the CMake package is half of what this test checks
# (tools/bootstrap.sh installs cmake).
if ! command -v cmake >/dev/null 2>&1; then
    echo "cmake is not installed (tools/bootstrap.sh installs it): the CMake package is unchecked"
    exit 1
fi
# Ninja: the build needs it anyway, while make may be missing.
if quiet cmake -S "$src" -B "$tmp/cmake" -G Ninja -DCMAKE_BUILD_TYPE=Debug \
        -DCMAKE_PREFIX_PATH="$root" -DCMAKE_C_COMPILER="$cc" -DCMAKE_C_FLAGS="$sanflags" \
        -DFACL_STAGE="$stage" -DFACL_WANT_VERSION="$version" &&
    quiet cmake --build "$tmp/cmake"; then
    check_run "cmake shared" "$tmp/cmake/consumer-shared"
    check_static "$tmp/cmake/consumer-static"
else
    fail "cmake: find_package(facl) or the consumer build"
fi

[ "$failures" -eq 0 ] || { echo "$failures failure(s)"; exit 1; }
echo "all consumers pass"
