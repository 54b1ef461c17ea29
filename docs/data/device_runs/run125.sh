#!/bin/bash
# Session 21 (issue 10), EXPERIMENT (docs/data/device_runs/run125_tma.patch on 7e9b24e):
# attn_fwd_wgmma's copier through the tensor copy engine (TMA, maps by value from
# libcuda, tiles in the 128-byte swizzle), FACL_EXP_TMA=1. Correctness (test_forward with
# the Hopper kernel forced, WS + ping-pong, TMA on; bench verification), then speed next to
# the same kernel with cp.async, mma.sync and torch.
R=$(pwd)
rm -rf /tmp/T && mkdir /tmp/T && tar -xf .device/snapT.tar -C /tmp/T
cd /tmp/T && meson setup build -Dbuildtype=release -Dtests=enabled > /tmp/mesonT.log 2>&1 && ninja -C build tools/facl-bench tests/test_forward >> /tmp/mesonT.log 2>&1 || { echo "build failed"; tail -30 /tmp/mesonT.log; exit 1; }
export FACL_CACHE_DIR=/tmp/ccT
W="FACL_FWD_WGMMA=1 FACL_FWD_WGMMA_WS=2"
B="-d NVIDIA --dtypes fp16 --baseline off --seqlens 1024,4096,16384 --causal off,on --hdims 64,128,256"
{
echo "== quick check d128 s4096"
env $W FACL_EXP_TMA=1 timeout 120 ./build/tools/facl-bench $B --hdims 128 --seqlens 4096 --causal off 2>&1 | tail -5
echo "== test_forward, TMA"
env $W FACL_EXP_TMA=1 timeout 240 ./build/tests/test_forward 2>&1 | tail -6
} > $OUT/tma_check_run125.txt 2>&1
cat $OUT/tma_check_run125.txt
{
echo "== TMA"; env $W FACL_EXP_TMA=1 timeout 150 ./build/tools/facl-bench $B --json $OUT/fwd_h200_ws_tma_run125.json 2>&1 | grep -v "^#" | tail -20
echo "== cp.async"; env $W timeout 150 ./build/tools/facl-bench $B --json $OUT/fwd_h200_ws_cp_run125.json 2>&1 | grep -v "^#" | tail -20
echo "== mma.sync"; timeout 150 ./build/tools/facl-bench $B --json $OUT/fwd_h200_mma_run125.json 2>&1 | grep -v "^#" | tail -20
echo "== torch"; timeout 150 python3 $R/.device/torch_sdpa.py --hdims 64,128,256 --seqlens 1024,4096,16384 --dtypes float16 --json $OUT/fwd_h200_torch_run125.json 2>&1 | tail -20
} > $OUT/tma_speed_run125.txt 2>&1
tail -80 $OUT/tma_speed_run125.txt
