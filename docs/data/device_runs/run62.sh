#!/bin/bash
# Session 12: stage_rows with one column piece per work-item (B, working tree) against HEAD
# (A: KV_STAGES=2 + scale fold), alternating; B's suites and PTX.
for x in A B; do
  rm -rf /tmp/$x && mkdir /tmp/$x && tar -xf .device/snap$x.tar -C /tmp/$x
  (cd /tmp/$x && meson setup build -Dbuildtype=release > $OUT/meson$x.log 2>&1 && ninja -C build >> $OUT/meson$x.log 2>&1) || { tail -30 $OUT/meson$x.log; exit 1; }
done
G="-d NVIDIA --dtypes fp16 --seqlens 1024,4096,16384 --baseline off --reps 5 --causal off,on"
{
for r in 1 2; do for x in A B; do
  echo "== $x round $r"; /tmp/$x/build/tools/facl-bench $G 2>&1 | grep "^fp16\|rror"
done; done
echo "== B shape 1,1,32,2"; FACL_FWD_MMA_SHAPE=1,1,32,2 /tmp/B/build/tools/facl-bench $G --hdims 256 2>&1 | grep "^fp16\|rror"
} > $OUT/ab62.txt
cat $OUT/ab62.txt
mkdir -p /tmp/cacheB
(cd /tmp/B && FACL_CACHE_DIR=/tmp/cacheB ./build/tools/facl-bench -d NVIDIA --dtypes fp16 --seqlens 4096 --causal off --baseline off --reps 3 > /dev/null 2>&1)
tar -czf $OUT/cacheB.tgz -C /tmp/cacheB .
cd /tmp/B
FACL_DEVICE=NVIDIA ./build/tests/test_forward > $OUT/test_forward_B.txt 2>&1; echo "test_forward rc $?"; tail -1 $OUT/test_forward_B.txt
FACL_FWD_MMA_SHAPE=1,0,32,1 FACL_DEVICE=NVIDIA ./build/tests/test_forward > $OUT/test_forward_B_regs.txt 2>&1; echo "test_forward q in registers rc $?"; tail -1 $OUT/test_forward_B_regs.txt
