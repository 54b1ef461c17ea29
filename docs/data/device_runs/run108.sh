#!/bin/bash
# Session 18: test_kvcache's paged cases (pages of 1, 24, 16, 256) on the H200 at HEAD,
# with the planner's shapes and with 2,2,async; the whole suite once.
rm -rf /tmp/F && mkdir /tmp/F && tar -xf .device/snapF.tar -C /tmp/F
cd /tmp/F
meson setup build -Dbuildtype=release -Dtests=enabled > /tmp/mesonF.log 2>&1 && ninja -C build tests/test_kvcache >> /tmp/mesonF.log 2>&1 || { echo "build F failed"; tail -20 /tmp/mesonF.log; exit 1; }
export FACL_CACHE_DIR=/tmp/cc108 FACL_DEVICE=NVIDIA
{
echo "== whole suite, planner's shapes"; timeout 200 ./build/tests/test_kvcache 2>&1 | grep -E "FAILED|PASSED|rror" | head -8; echo "rc ${PIPESTATUS[0]}"
for shape in 2,2,async 8,2,bulk; do echo "== paged cases, shape $shape"; FACL_TEST_FILTER='paged*' FACL_CACHE_MMA_SHAPE=$shape timeout 100 ./build/tests/test_kvcache 2>&1 | grep -E "FAILED|PASSED|rror" | head -8; echo "rc ${PIPESTATUS[0]}"; done
} > $OUT/suites_run108.txt 2>&1
cat $OUT/suites_run108.txt
