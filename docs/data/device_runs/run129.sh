#!/bin/bash
# Session 21 (issue 10): where the Hopper kernel (WS + ping-pong through the tensor copy
# engine) overtakes attn_fwd_mma, for the planner's choice: the grid's lengths between
# run 127's (512, 2048, 8192), fp16, both kernels in one command. Tree: HEAD 36545df's code.
rm -rf /tmp/S && mkdir /tmp/S && tar -xf .device/snapH.tar -C /tmp/S
cd /tmp/S && meson setup build -Dbuildtype=release > /tmp/mesonS.log 2>&1 && ninja -C build tools/facl-bench >> /tmp/mesonS.log 2>&1 || { echo "build failed"; tail -30 /tmp/mesonS.log; exit 1; }
export FACL_CACHE_DIR=/tmp/ccS
B="-d NVIDIA --baseline off --seqlens 512,2048,8192 --causal off,on --hdims 64,128,256 --dtypes fp16"
{
echo "== TMA"; FACL_FWD_WGMMA=1 FACL_FWD_WGMMA_WS=2 timeout 200 ./build/tools/facl-bench $B --json $OUT/fwd_h200_tma_mid_run129.json 2>&1 | grep "^fp16\|rror"
echo "== mma.sync"; timeout 150 ./build/tools/facl-bench $B --json $OUT/fwd_h200_mma_mid_run129.json 2>&1 | grep "^fp16\|rror"
} > $OUT/fwd_h200_mid_run129.txt 2>&1
cat $OUT/fwd_h200_mid_run129.txt
