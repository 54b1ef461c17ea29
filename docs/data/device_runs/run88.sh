#!/bin/bash
# Session 16: WG_WS with a copier warpgroup and setmaxnreg (40 / 232, entry .maxnreg 168):
# smoke, the forward suite, the driver's registers, then the kernels side by side.
here=$PWD
rm -rf /tmp/W && mkdir /tmp/W && tar -xf .device/snapW.tar -C /tmp/W
cd /tmp/W
meson setup build -Dbuildtype=release -Dtests=enabled > /tmp/mesonW.log 2>&1 && ninja -C build tools/facl-bench tests/test_forward >> /tmp/mesonW.log 2>&1 || { echo "build failed"; tail -30 /tmp/mesonW.log; exit 1; }
G="-d NVIDIA --dtypes fp16 --baseline off --seqlens 1024,4096,16384 --causal off,on"
WS="FACL_FWD_WGMMA=1 FACL_FWD_WGMMA_WS=1 FACL_EXPERIMENT_NO_WG_CHECK=1"
rm -rf /tmp/ccWS /tmp/ccWS2 /tmp/ccWS3
{
echo "== smoke WS d=128 4k"
env $WS FACL_CACHE_DIR=/tmp/ccWS timeout 90 ./build/tools/facl-bench $G --hdims 128 --seqlens 4096 --causal off 2>&1 | tail -2
echo "== driver registers"; python3 tools/driver_ptx_regs.py /tmp/ccWS attn_fwd_wgmma 2>&1 | tail -4
echo "== test_forward WS"
env $WS FACL_CACHE_DIR=/tmp/ccWS FACL_DEVICE=NVIDIA timeout 300 ./build/tests/test_forward > $OUT/test_forward_ws.txt 2>&1; echo "rc $?"; grep -E "FAILED|PASSED" $OUT/test_forward_ws.txt | head; tail -2 $OUT/test_forward_ws.txt

echo "== wgmma WS pipe3 d=64,128"; env $WS FACL_CACHE_DIR=/tmp/ccWS timeout 120 ./build/tools/facl-bench $G --hdims 64,128 2>&1 | grep "^fp16\|rror"
echo "== wgmma WS pipe2 d=64,128"; env $WS FACL_FWD_WGMMA_SHAPE=2,1,2 FACL_CACHE_DIR=/tmp/ccWS2 timeout 120 ./build/tools/facl-bench $G --hdims 64,128 2>&1 | grep "^fp16\|rror"

echo "== wgmma WS 2,0,2 d=256"; env $WS FACL_FWD_WGMMA_SHAPE=2,0,2 FACL_CACHE_DIR=/tmp/ccWS3 timeout 120 ./build/tools/facl-bench $G --hdims 256 2>&1 | grep "^fp16\|rror"
echo "== driver registers all WS"; python3 tools/driver_ptx_regs.py /tmp/ccWS2 attn_fwd_wgmma 2>&1 | tail -3; python3 tools/driver_ptx_regs.py /tmp/ccWS3 attn_fwd_wgmma 2>&1 | tail -3
} > $OUT/ws_run88.txt 2>&1
cat $OUT/ws_run88.txt
