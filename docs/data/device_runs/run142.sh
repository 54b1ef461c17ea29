#!/bin/bash
# Session 22 (issue 10): attn_fwd_mma's unstaged output (above d = 128, or without
# Q_LOCAL) through the quad-transposed 16-byte stores instead of 32-bit pairs, against
# 50d454b: the mma.sync grid (FACL_FWD_WGMMA=0) alternating, then the forward suite on it.
R=$(pwd)
for t in A S; do
  rm -rf /tmp/$t && mkdir /tmp/$t && tar -xf .device/snap$t.tar -C /tmp/$t
  (cd /tmp/$t && meson setup build -Dbuildtype=release -Dtests=enabled > /tmp/meson$t.log 2>&1 && ninja -C build tools/facl-bench tests/test_forward >> /tmp/meson$t.log 2>&1) || { echo "build $t failed"; tail -20 /tmp/meson$t.log; exit 1; }
done
S="-d NVIDIA --baseline off --seqlens 1024,2048,4096,16384 --causal off,on --hdims 64,128,256 --dtypes fp16"
{
for rep in 1 2; do
for t in A S; do
  cd /tmp/$t; export FACL_CACHE_DIR=/tmp/cc$t
  echo "== $t mma.sync rep $rep"; FACL_FWD_WGMMA=0 timeout 100 ./build/tools/facl-bench $S $([ $rep = 2 ] && echo --json $OUT/mq_$t.json) 2>&1 | grep "^fp16\|rror"
done
done
cd /tmp/S; export FACL_CACHE_DIR=/tmp/ccS
echo "== test_forward FACL_FWD_WGMMA=0"; FACL_FWD_WGMMA=0 FACL_DEVICE=NVIDIA timeout 150 ./build/tests/test_forward 2>&1 | tail -2
} > $OUT/mma_quads_run142.txt 2>&1
cat $OUT/mma_quads_run142.txt
