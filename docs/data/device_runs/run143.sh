#!/bin/bash
# Session 22 (issue 10), experiment (docs/data/device_runs/run143_snake_qstaged.patch, not
# landed): the Hopper kernel with q staged by the copier up to d = 128 (shape 2,0,3),
# released after the block's last scores, and two row blocks per work-group in snake order
# (the copier fetches the next block's q, k and v while the warpgroups finish this one).
R=$(pwd)
rm -rf /tmp/T && mkdir /tmp/T && tar -xf .device/snapT.tar -C /tmp/T
cd /tmp/T && meson setup build -Dbuildtype=release -Dtests=enabled > /tmp/mesonT.log 2>&1 && ninja -C build tools/facl-bench tools/facl-selftest tests/test_forward >> /tmp/mesonT.log 2>&1 || { echo "build failed"; tail -30 /tmp/mesonT.log; exit 1; }
export FACL_CACHE_DIR=/tmp/ccT
W="FACL_FWD_WGMMA=1 FACL_FWD_WGMMA_WS=2"
S="-d NVIDIA --baseline off --seqlens 1024,2048,4096 --causal off,on --dtypes fp16"
{
timeout 100 ./build/tools/facl-selftest -d NVIDIA --no-speed --quick 2>&1 | grep -i "kernel path" | head -2
for rep in 1 2; do
echo "== V1 q in registers, one block per group rep $rep"; env $W timeout 100 ./build/tools/facl-bench $S --hdims 64,128,256 2>&1 | grep "^fp16\|rror"
echo "== V3 q staged, two blocks per group rep $rep"; env $W FACL_FWD_WGMMA_SHAPE=2,0,3 FACL_EXP_BLOCKS_PER_GROUP=2 timeout 100 ./build/tools/facl-bench $S --hdims 64,128 2>&1 | grep "^fp16\|rror"
[ $rep = 2 ] && break
echo "== V2 q staged, one block per group rep $rep"; env $W FACL_FWD_WGMMA_SHAPE=2,0,3 timeout 100 ./build/tools/facl-bench $S --hdims 64,128 2>&1 | grep "^fp16\|rror"
echo "== V4 q in registers (d <= 128), two blocks per group rep $rep"; env $W FACL_EXP_BLOCKS_PER_GROUP=2 timeout 100 ./build/tools/facl-bench $S --hdims 64,128,256 2>&1 | grep "^fp16\|rror"
done
echo "== test_forward V3"; env $W FACL_FWD_WGMMA_SHAPE=2,0,3 FACL_EXP_BLOCKS_PER_GROUP=2 FACL_DEVICE=NVIDIA timeout 120 ./build/tests/test_forward 2>&1 | tail -2
echo "== test_forward V4"; env $W FACL_EXP_BLOCKS_PER_GROUP=2 FACL_DEVICE=NVIDIA timeout 120 ./build/tests/test_forward 2>&1 | tail -2
} > $OUT/snake_qstaged_run143.txt 2>&1
cat $OUT/snake_qstaged_run143.txt
