#!/bin/bash
# Session 21 (issue 10): the Hopper forward's copier through the tensor copy engine, as
# committed (src/tensor_map.c, attn_fwd_mma.cl WS_TMA): its unit tests and the forward
# suite with the engine (WS 1 and 2), with cp.async (FACL_FWD_TMA=0), the plain Hopper
# kernel, and selftest's reason line.
R=$(pwd)
rm -rf /tmp/S && mkdir /tmp/S && tar -xf .device/snapS.tar -C /tmp/S
cd /tmp/S && meson setup build -Dbuildtype=release -Dtests=enabled > /tmp/mesonS.log 2>&1 && ninja -C build >> /tmp/mesonS.log 2>&1 || { echo "build failed"; tail -30 /tmp/mesonS.log; exit 1; }
export FACL_CACHE_DIR=/tmp/ccS
{
meson test -C build plan tensor_map ptx_patch plan_memo 2>&1 | grep -E "^ *[0-9]+/|Ok:|Fail:"
for v in "1 1" "2 1" "1 0"; do
  set -- $v
  echo "== test_forward WS=$1 TMA=$2"
  FACL_KERNEL_PATH=nvidia-mma FACL_FWD_WGMMA=1 FACL_FWD_WGMMA_WS=$1 FACL_FWD_TMA=$2 timeout 170 ./build/tests/test_forward 2>&1 | tail -3
done
echo "== selftest reason"
FACL_FWD_WGMMA=1 FACL_FWD_WGMMA_WS=2 timeout 100 ./build/tools/facl-selftest -d NVIDIA --no-speed --quick 2>&1 | grep -i "reason\|path\|pass\|fail" | head -8
} > $OUT/tma_suites_run126.txt 2>&1
cat $OUT/tma_suites_run126.txt
