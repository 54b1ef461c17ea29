#!/bin/bash
# Session 13: A = 19e70b5 (before the plan memo and 8-warp groups), B = working tree.
# Host cost A/B, forward shapes (MMA_WARPS 8), B's suites.
for x in A B; do
  rm -rf /tmp/$x && mkdir /tmp/$x && tar -xf .device/snap$x.tar -C /tmp/$x
  (cd /tmp/$x && meson setup build -Dbuildtype=release > $OUT/meson$x.log 2>&1 && ninja -C build >> $OUT/meson$x.log 2>&1) || { tail -30 $OUT/meson$x.log; exit 1; }
done
{
for r in 1 2; do for x in A B; do
  echo "== $x round $r"; /tmp/$x/build/tools/facl-bench --host-cost -d NVIDIA 2>&1 | tail -6
done; done
} > $OUT/hostcost65.txt 2>&1
cat $OUT/hostcost65.txt
G="-d NVIDIA --dtypes fp16 --seqlens 1024,4096,16384 --baseline off --reps 5 --causal off,on"
{
for r in 1 2; do
  echo "== A round $r d=256"; /tmp/A/build/tools/facl-bench $G --hdims 256 2>&1 | grep "^fp16\|rror"
  echo "== B round $r d=256 (8 warps)"; /tmp/B/build/tools/facl-bench $G --hdims 256 2>&1 | grep "^fp16\|rror"
done
for sh in 1,1,64,2,8 1,0,64,1,8 1,1,32,2,8; do
  echo "== B d=256 shape $sh"; FACL_FWD_MMA_SHAPE=$sh /tmp/B/build/tools/facl-bench $G --hdims 256 2>&1 | grep "^fp16\|rror"
done
echo "== B d=64,128 default"; /tmp/B/build/tools/facl-bench $G --hdims 64,128 2>&1 | grep "^fp16\|rror"
for sh in 2,1,64,2,8 1,1,64,2,8 2,1,32,2,8; do
  echo "== B d=64,128 shape $sh"; FACL_FWD_MMA_SHAPE=$sh /tmp/B/build/tools/facl-bench $G --hdims 64,128 2>&1 | grep "^fp16\|rror"
done
} > $OUT/ab65.txt 2>&1
cat $OUT/ab65.txt
cd /tmp/B
{
./build/tools/facl-selftest -d NVIDIA --no-speed --quick > $OUT/selftest_run65.txt 2>&1; echo "selftest rc $?"; tail -3 $OUT/selftest_run65.txt
echo "test_forward"; FACL_DEVICE=NVIDIA timeout 300 ./build/tests/test_forward 2>&1 | tail -1
echo "test_forward 2,1,64,2,8"; FACL_FWD_MMA_SHAPE=2,1,64,2,8 FACL_DEVICE=NVIDIA timeout 300 ./build/tests/test_forward 2>&1 | tail -1
for t in test_kvcache test_bwd test_threads test_cache test_launch test_merge; do echo $t; FACL_DEVICE=NVIDIA timeout 200 ./build/tests/$t 2>&1 | tail -1; done
} > $OUT/suites_run65.txt 2>&1
cat $OUT/suites_run65.txt
