#!/bin/bash
# Session 17: more k/v buffers for the warp-specialised kernel (the copier runs further
# ahead): FACL_FWD_WGMMA_SHAPE=2,1,3 (planned) vs 2,1,4 vs 2,1,5, WS + ping-pong, fp16,
# d = 64 and 128. Experiment build (pipe 4-5 allowed), not committed.
rm -rf /tmp/EB && mkdir /tmp/EB && tar -xf .device/snapB.tar -C /tmp/EB && cd /tmp/EB
meson setup build -Dbuildtype=release -Dtests=enabled > /tmp/mB.log 2>&1 && ninja -C build tools/facl-bench tests/test_forward >> /tmp/mB.log 2>&1 || { echo "build failed"; tail -20 /tmp/mB.log; exit 1; }
G="-d NVIDIA --dtypes fp16 --baseline off --hdims 64,128 --seqlens 4096,16384 --causal off,on"
{
for s in 3 4 5; do
  echo "== pipe $s"; FACL_FWD_WGMMA=1 FACL_FWD_WGMMA_WS=2 FACL_FWD_WGMMA_SHAPE=2,1,$s FACL_CACHE_DIR=/tmp/cc99$s timeout 100 ./build/tools/facl-bench $G 2>&1 | grep "^fp16\|rror"
done
echo "== test_forward pipe 5"; FACL_FWD_WGMMA=1 FACL_FWD_WGMMA_WS=2 FACL_FWD_WGMMA_SHAPE=2,1,5 FACL_CACHE_DIR=/tmp/cc99t FACL_DEVICE=NVIDIA timeout 200 ./build/tests/test_forward 2>&1 | tail -1
} | tee $OUT/wgmma_buffers_run99.txt
