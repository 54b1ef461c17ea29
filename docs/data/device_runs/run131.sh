#!/bin/bash
# Session 21 (issue 10), EXPERIMENT (run131_blocks_per_group.patch on 07c5d64): the Hopper
# kernel (WS + ping-pong through the engine) with k row blocks per work-group (the copier
# running ahead into the next block's q, k and v), k = 1, 2, 4; fp16, 1k-4k keys.
rm -rf /tmp/B && mkdir /tmp/B && tar -xf .device/snapB.tar -C /tmp/B
cd /tmp/B && meson setup build -Dbuildtype=release > /tmp/mesonB.log 2>&1 && ninja -C build tools/facl-bench >> /tmp/mesonB.log 2>&1 || { echo "build failed"; tail -30 /tmp/mesonB.log; exit 1; }
export FACL_CACHE_DIR=/tmp/ccB
B="-d NVIDIA --baseline off --seqlens 1024,2048,4096 --causal off,on --hdims 64,128,256 --dtypes fp16"
{
for k in 1 2 4 1; do
  echo "== blocks per group $k"; FACL_FWD_WGMMA=1 FACL_FWD_WGMMA_WS=2 FACL_EXP_BLOCKS_PER_GROUP=$k timeout 120 ./build/tools/facl-bench $B 2>&1 | grep "^fp16\|rror"
done
} > $OUT/blocks_per_group_run131.txt 2>&1
cat $OUT/blocks_per_group_run131.txt
