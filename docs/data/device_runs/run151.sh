#!/bin/bash
# Session 24 (issue 10): row blocks per Hopper work-group at short lengths (512 and 1k
# rows and keys), where the default is furthest below torch: the Hopper kernel in its
# default form forced (WS + ping-pong + engine) with 1, 2, 3 and 4 blocks per group, and
# attn_fwd_mma, fp16, tree dea2d41 (H).
R=$(pwd)
rm -rf /tmp/H && mkdir /tmp/H && tar -xf $R/.device/snapH.tar -C /tmp/H
(cd /tmp/H && meson setup build -Dbuildtype=release > /tmp/mesonH.log 2>&1 && ninja -C build tools/facl-bench >> /tmp/mesonH.log 2>&1) || { echo "build failed"; tail -20 /tmp/mesonH.log; exit 1; }
cd /tmp/H; export FACL_CACHE_DIR=/tmp/ccH
A="-d NVIDIA --baseline off --seqlens 512,1024 --causal off,on --hdims 64,128,256 --dtypes fp16"
{
for rep in 1 2; do
  for k in 1 2 4; do
    echo "== Hopper k=$k rep $rep"; FACL_FWD_WGMMA=1 FACL_FWD_WGMMA_WS=2 FACL_FWD_BLOCKS_PER_GROUP=$k timeout 60 ./build/tools/facl-bench $A 2>&1 | grep "^fp16\|rror"
  done
  [ $rep = 2 ] && break
  echo "== Hopper k=3 rep $rep"; FACL_FWD_WGMMA=1 FACL_FWD_WGMMA_WS=2 FACL_FWD_BLOCKS_PER_GROUP=3 timeout 60 ./build/tools/facl-bench $A 2>&1 | grep "^fp16\|rror"
  echo "== attn_fwd_mma rep $rep"; FACL_FWD_WGMMA=0 timeout 60 ./build/tools/facl-bench $A 2>&1 | grep "^fp16\|rror"
done
} > $OUT/short_blocks_run151.txt 2>&1
cat $OUT/short_blocks_run151.txt
