#!/bin/bash
# Session 16: the committed form (rescale as before: serialised wgmma; p kept to the
# wait; WS planned at d > 128 as 2,0,2): the suites through every wgmma form, then
# mma.sync / WS / WS + ping-pong next to torch, fp16 and bf16, in one command.
here=$PWD
rm -rf /tmp/W && mkdir /tmp/W && tar -xf .device/snapW.tar -C /tmp/W
cd /tmp/W
meson setup build -Dbuildtype=release -Dtests=enabled > /tmp/mesonW.log 2>&1 && ninja -C build tools/facl-bench tests/test_forward >> /tmp/mesonW.log 2>&1 || { echo "build failed"; tail -30 /tmp/mesonW.log; exit 1; }
G="-d NVIDIA --dtypes fp16,bf16 --baseline off --seqlens 1024,4096,16384 --causal off,on"
rm -rf /tmp/cc93*
{
for ws in 0 1 2; do
  echo "== test_forward WGMMA WS=$ws"
  FACL_FWD_WGMMA=1 FACL_FWD_WGMMA_WS=$ws FACL_CACHE_DIR=/tmp/cc93t$ws FACL_DEVICE=NVIDIA timeout 300 ./build/tests/test_forward > /tmp/tf$ws.txt 2>&1; echo "rc $?"; tail -1 /tmp/tf$ws.txt; grep -m3 "^ERROR" /tmp/tf$ws.txt
done
echo "== default path test_forward"; FACL_CACHE_DIR=/tmp/cc93d FACL_DEVICE=NVIDIA timeout 200 ./build/tests/test_forward > /tmp/tfd.txt 2>&1; echo "rc $?"; tail -1 /tmp/tfd.txt
echo "== mma.sync"; FACL_CACHE_DIR=/tmp/cc93m timeout 200 ./build/tools/facl-bench $G --json $OUT/fwd_h200_mma_run93.json 2>&1 | grep "^fp16\|^bf16\|rror"
echo "== wgmma WS=2"; FACL_FWD_WGMMA=1 FACL_FWD_WGMMA_WS=2 FACL_CACHE_DIR=/tmp/cc93w timeout 200 ./build/tools/facl-bench $G --json $OUT/fwd_h200_ws2_run93.json 2>&1 | grep "^fp16\|^bf16\|rror"
echo "== wgmma WS=1 fp16"; FACL_FWD_WGMMA=1 FACL_FWD_WGMMA_WS=1 FACL_CACHE_DIR=/tmp/cc93v timeout 120 ./build/tools/facl-bench $G --dtypes fp16 --json $OUT/fwd_h200_ws1_run93.json 2>&1 | grep "^fp16\|rror"
} > $OUT/ws_run93.txt 2>&1
cat $OUT/ws_run93.txt
timeout 200 python3 $here/.device/torch_sdpa.py --hdims 64,128,256 --seqlens 1024,4096,16384 --json $OUT/fwd_h200_torch_run93.json > /tmp/torch93.txt 2>&1; grep -c tflops /tmp/torch93.txt
