#!/bin/bash
# Session 16: p's registers tied to the wait for p.v (run 90's suite failures); the suites
# through every wgmma form, then mma.sync / WS / WS+ping-pong and torch in one command (fp16).
here=$PWD
rm -rf /tmp/W && mkdir /tmp/W && tar -xf .device/snapW.tar -C /tmp/W
cd /tmp/W
meson setup build -Dbuildtype=release -Dtests=enabled > /tmp/mesonW.log 2>&1 && ninja -C build tools/facl-bench tests/test_forward >> /tmp/mesonW.log 2>&1 || { echo "build failed"; tail -30 /tmp/mesonW.log; exit 1; }
G="-d NVIDIA --dtypes fp16 --baseline off --seqlens 1024,4096,16384 --causal off,on"
rm -rf /tmp/cc91*
{
for ws in 0 1 2; do
  echo "== test_forward WGMMA WS=$ws"
  FACL_FWD_WGMMA=1 FACL_FWD_WGMMA_WS=$ws FACL_CACHE_DIR=/tmp/cc91t$ws FACL_DEVICE=NVIDIA timeout 300 ./build/tests/test_forward > $OUT/test_forward_ws$ws.txt 2>&1; echo "rc $?"; tail -1 $OUT/test_forward_ws$ws.txt; grep -m3 "^ERROR" $OUT/test_forward_ws$ws.txt
done
echo "== mma.sync"; FACL_CACHE_DIR=/tmp/cc91m timeout 150 ./build/tools/facl-bench $G --json $OUT/fwd_h200_mma_run91.json 2>&1 | grep "^fp16\|rror"
for ws in 1 2; do
  echo "== wgmma WS=$ws d=64,128 (2,1,3)"; FACL_FWD_WGMMA=1 FACL_FWD_WGMMA_WS=$ws FACL_CACHE_DIR=/tmp/cc91w$ws timeout 120 ./build/tools/facl-bench $G --hdims 64,128 --json $OUT/fwd_h200_ws${ws}_run91.json 2>&1 | grep "^fp16\|rror"
  echo "== wgmma WS=$ws d=256 (2,0,2)"; FACL_FWD_WGMMA=1 FACL_FWD_WGMMA_WS=$ws FACL_FWD_WGMMA_SHAPE=2,0,2 FACL_CACHE_DIR=/tmp/cc91w$ws timeout 120 ./build/tools/facl-bench $G --hdims 256 --json $OUT/fwd_h200_ws${ws}_d256_run91.json 2>&1 | grep "^fp16\|rror"
done
} > $OUT/ws_run91.txt 2>&1
cat $OUT/ws_run91.txt
timeout 200 python3 $here/.device/torch_sdpa.py --hdims 64,128,256 --seqlens 1024,4096,16384 --dtypes float16 --json $OUT/fwd_h200_torch_run91.json > /tmp/torch91.txt 2>&1; grep -c tflops /tmp/torch91.txt
