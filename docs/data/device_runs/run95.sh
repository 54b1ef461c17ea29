#!/bin/bash
# Session 17: speed of the pipelined wgmma kernel now that ptxas no longer serialises its
# products (run 94): mma.sync, wgmma plain (WS=0), warp-specialised (WS=1) and with
# ping-pong (WS=2), next to torch, fp16, one command.
here=$PWD
cd /tmp/W 2>/dev/null && [ -x build/tools/facl-bench ] || {
  rm -rf /tmp/W && mkdir /tmp/W && tar -xf $here/.device/snapX.tar -C /tmp/W && cd /tmp/W &&
  meson setup build -Dbuildtype=release -Dtests=enabled > /tmp/mesonW.log 2>&1 && ninja -C build tools/facl-bench >> /tmp/mesonW.log 2>&1 || { echo "build failed"; exit 1; }; }
G="-d NVIDIA --dtypes fp16 --baseline off --seqlens 1024,4096,16384 --causal off,on"
{
echo "== mma.sync"; FACL_CACHE_DIR=/tmp/cc95m timeout 120 ./build/tools/facl-bench $G --json $OUT/fwd_h200_mma_run95.json 2>&1 | grep "^fp16\|rror"
for ws in 0 1 2; do
echo "== wgmma WS=$ws"; FACL_FWD_WGMMA=1 FACL_FWD_WGMMA_WS=$ws FACL_CACHE_DIR=/tmp/cc95w$ws timeout 120 ./build/tools/facl-bench $G --json $OUT/fwd_h200_ws${ws}_run95.json 2>&1 | grep "^fp16\|rror"
done
} > $OUT/fwd_run95.txt 2>&1
cat $OUT/fwd_run95.txt
timeout 150 python3 $here/.device/torch_sdpa.py --hdims 64,128,256 --seqlens 1024,4096,16384 --dtypes float16 --json $OUT/fwd_h200_torch_run95.json > $OUT/torch_run95.txt 2>&1; tail -14 $OUT/torch_run95.txt
