#!/bin/bash
# Session 21 (issue 10): facl_prepare_fwd prepares the Hopper kernel that long sequences
# take; the api suite (prepare included) and the unit tests on the H200 by default.
rm -rf /tmp/S && mkdir /tmp/S && tar -xf .device/snapS.tar -C /tmp/S
cd /tmp/S && meson setup build -Dbuildtype=release -Dtests=enabled > /tmp/mesonS.log 2>&1 && ninja -C build >> /tmp/mesonS.log 2>&1 || { echo "build failed"; tail -30 /tmp/mesonS.log; exit 1; }
export FACL_CACHE_DIR=/tmp/ccS
{
meson test -C build plan tensor_map ptx_patch plan_memo 2>&1 | grep -E "Ok:|Fail:"
echo "== test_api on the H200"
FACL_DEVICE=NVIDIA timeout 400 ./build/tests/test_api 2>&1 | grep -E "PASSED|FAILED|prepare|ERROR|error" | head -20
} > $OUT/api_h200_run132.txt 2>&1
cat $OUT/api_h200_run132.txt
