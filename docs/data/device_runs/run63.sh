#!/bin/bash
# Session 12: exp2 as ex2.approx.ftz (B, working tree) against HEAD (A), forward and the
# tensor-core backward; B's suites and PTX.
for x in A B; do
  rm -rf /tmp/$x && mkdir /tmp/$x && tar -xf .device/snap$x.tar -C /tmp/$x
  (cd /tmp/$x && meson setup build -Dbuildtype=release > $OUT/meson$x.log 2>&1 && ninja -C build >> $OUT/meson$x.log 2>&1) || { tail -30 $OUT/meson$x.log; exit 1; }
done
G="-d NVIDIA --dtypes fp16 --seqlens 1024,4096,16384 --baseline off --reps 5 --causal off,on"
{
for r in 1 2; do for x in A B; do
  echo "== $x round $r"; /tmp/$x/build/tools/facl-bench $G 2>&1 | grep "^fp16\|rror"
done; done
for x in A B; do
  echo "== $x bwd"; /tmp/$x/build/tools/facl-bench --bwd -d NVIDIA --dtypes bf16 --seqlens 4096 --causal off,on --reps 5 2>&1 | grep "^bf16\|rror"
done
} > $OUT/ab63.txt
cat $OUT/ab63.txt
mkdir -p /tmp/cacheB
(cd /tmp/B && FACL_CACHE_DIR=/tmp/cacheB ./build/tools/facl-bench -d NVIDIA --dtypes fp16 --seqlens 4096 --causal off --baseline off --reps 3 > /dev/null 2>&1)
tar -czf $OUT/cacheB.tgz -C /tmp/cacheB .
cd /tmp/B
FACL_DEVICE=NVIDIA ./build/tests/test_forward > $OUT/test_forward_B.txt 2>&1; echo "test_forward rc $?"; tail -1 $OUT/test_forward_B.txt
FACL_DEVICE=NVIDIA timeout 240 ./build/tests/test_bwd > $OUT/test_bwd_B.txt 2>&1; echo "test_bwd rc $?"; tail -1 $OUT/test_bwd_B.txt
