#!/bin/bash
# Session 17: bf16 next to fp16's run 95: mma.sync and WS + ping-pong next to torch, HEAD.
here=$PWD
rm -rf /tmp/H && mkdir /tmp/H && tar -xf .device/snapH.tar -C /tmp/H && cd /tmp/H
meson setup build -Dbuildtype=release > /tmp/mH.log 2>&1 && ninja -C build tools/facl-bench >> /tmp/mH.log 2>&1 || { echo "build failed"; tail -20 /tmp/mH.log; exit 1; }
G="-d NVIDIA --dtypes bf16 --baseline off --seqlens 1024,4096,16384 --causal off,on"
{
echo "== mma.sync"; FACL_CACHE_DIR=/tmp/cc100m timeout 120 ./build/tools/facl-bench $G --json $OUT/fwd_h200_mma_bf16_run100.json 2>&1 | grep "^bf16\|rror"
echo "== wgmma WS=2"; FACL_FWD_WGMMA=1 FACL_FWD_WGMMA_WS=2 FACL_CACHE_DIR=/tmp/cc100w timeout 120 ./build/tools/facl-bench $G --json $OUT/fwd_h200_ws2_bf16_run100.json 2>&1 | grep "^bf16\|rror"
} > $OUT/fwd_bf16_run100.txt 2>&1
timeout 150 python3 $here/.device/torch_sdpa.py --hdims 64,128,256 --seqlens 1024,4096,16384 --dtypes bfloat16 --json $OUT/fwd_h200_torch_bf16_run100.json > /tmp/t100.txt 2>&1; tail -2 /tmp/t100.txt
