#!/bin/bash
# Session 15: A = HEAD against D = HEAD with the parked output rows padded (no bank
# conflicts in the warps' merge), alternating; D through the suites.
for x in A D; do
  rm -rf /tmp/$x && mkdir /tmp/$x && tar -xf .device/snap$x.tar -C /tmp/$x
done
(cd /tmp/A && meson setup build -Dbuildtype=release > /tmp/mesonA.log 2>&1 && ninja -C build tools/facl-bench >> /tmp/mesonA.log 2>&1 || echo "build A failed") &
(cd /tmp/D && meson setup build -Dbuildtype=release -Dtests=enabled > /tmp/mesonD.log 2>&1 && ninja -C build tools/facl-bench tools/facl-selftest tests/test_kvcache >> /tmp/mesonD.log 2>&1 || { echo "build D failed"; tail -20 /tmp/mesonD.log; })
wait
A1="--decode -d NVIDIA --dtypes fp16 --copy-gbps 4270 --kv-lens 1024,4096,16384,65536 --pages 0,16 --splits 0 --forward-row off"
{
for x in A D A D; do
  echo "== $x"; (cd /tmp/$x && FACL_CACHE_DIR=/tmp/cc83$x timeout 60 ./build/tools/facl-bench $A1 2>&1 | grep "^fp16\|rror")
done
cd /tmp/D
export FACL_CACHE_DIR=/tmp/cc83D
timeout 150 ./build/tools/facl-selftest -d NVIDIA --no-speed --quick > /tmp/selftest83.txt 2>&1; echo "selftest rc $?"; tail -3 /tmp/selftest83.txt
for shape in "" 2,2,async; do echo "test_kvcache shape '$shape'"; FACL_CACHE_MMA_SHAPE=$shape FACL_DEVICE=NVIDIA timeout 200 ./build/tests/test_kvcache 2>&1 | grep -E "FAILED|PASSED|rror" | head -8; echo "rc ${PIPESTATUS[0]}"; done
} > $OUT/ab_run83.txt 2>&1
cat $OUT/ab_run83.txt
