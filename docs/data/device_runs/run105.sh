#!/bin/bash
# Session 18: the page index as a shift by a constant (D: -DPAGE_SHIFT from the plan)
# against HEAD (C), alternating twice; the suites on D.
here=$PWD
for x in C D; do rm -rf /tmp/$x && mkdir /tmp/$x && tar -xf .device/snap$x.tar -C /tmp/$x; done
(cd /tmp/C && meson setup build -Dbuildtype=release > /tmp/mesonC.log 2>&1 && ninja -C build tools/facl-bench >> /tmp/mesonC.log 2>&1 || echo "build C failed") &
(cd /tmp/D && meson setup build -Dbuildtype=release -Dtests=enabled > /tmp/mesonD.log 2>&1 && ninja -C build tools/facl-bench tools/facl-selftest tests/test_kvcache >> /tmp/mesonD.log 2>&1 || { echo "build D failed"; tail -20 /tmp/mesonD.log; })
wait
B1="--decode -d NVIDIA --copy-gbps 4270 --forward-row off --dtypes fp16 --kv-lens 1024,4096,16384,65536 --pages 0,16,256"
{
for x in C D C D; do
  echo "== $x"
  (cd /tmp/$x && FACL_CACHE_DIR=/tmp/cc105$x timeout 90 ./build/tools/facl-bench $B1 2>&1 | grep "^fp16\|rror")
done
} > $OUT/pageshift_ab_run105.txt 2>&1
cat $OUT/pageshift_ab_run105.txt
cd /tmp/D
{
export FACL_CACHE_DIR=/tmp/cc105S
timeout 150 ./build/tools/facl-selftest -d NVIDIA --no-speed --quick > /tmp/selftest105.txt 2>&1; echo "selftest rc $?"; tail -3 /tmp/selftest105.txt
for shape in "" 2,2,async; do echo "test_kvcache shape '$shape'"; FACL_CACHE_MMA_SHAPE=$shape FACL_DEVICE=NVIDIA timeout 200 ./build/tests/test_kvcache 2>&1 | grep -E "FAILED|PASSED|rror" | head -8; echo "rc ${PIPESTATUS[0]}"; done
} > $OUT/suites_run105.txt 2>&1
cat $OUT/suites_run105.txt
