#!/bin/bash
# Session 13: attn_fwd_mma's output staged through local memory and stored in 16-byte
# pieces (B, working tree) against HEAD (A), alternating; B's suites on the H200.
for x in A B; do
  rm -rf /tmp/$x && mkdir /tmp/$x && tar -xf .device/snap$x.tar -C /tmp/$x
  (cd /tmp/$x && meson setup build -Dbuildtype=release > $OUT/meson$x.log 2>&1 && ninja -C build >> $OUT/meson$x.log 2>&1) || { tail -30 $OUT/meson$x.log; exit 1; }
done
G="-d NVIDIA --dtypes fp16 --seqlens 512,1024,4096,16384 --baseline off --reps 5 --causal off,on"
{
for r in 1 2; do for x in A B; do
  echo "== $x round $r"; /tmp/$x/build/tools/facl-bench $G 2>&1 | grep "^fp16\|rror"
done; done
echo "== B bf16"; /tmp/B/build/tools/facl-bench -d NVIDIA --dtypes bf16 --seqlens 512,1024,4096,16384 --baseline off --reps 5 --causal off,on 2>&1 | grep "^bf16\|rror"
} > $OUT/ab67.txt 2>&1
cat $OUT/ab67.txt
cd /tmp/B
{
./build/tools/facl-selftest -d NVIDIA --no-speed --quick > $OUT/selftest_run67.txt 2>&1; echo "selftest rc $?"; tail -3 $OUT/selftest_run67.txt
echo "test_forward"; FACL_DEVICE=NVIDIA timeout 300 ./build/tests/test_forward 2>&1 | tail -1
echo "test_forward q in registers 1,0,64,1"; FACL_FWD_MMA_SHAPE=1,0,64,1 FACL_DEVICE=NVIDIA timeout 300 ./build/tests/test_forward 2>&1 | tail -1
echo "test_forward 2,1,64,1"; FACL_FWD_MMA_SHAPE=2,1,64,1 FACL_DEVICE=NVIDIA timeout 300 ./build/tests/test_forward 2>&1 | tail -1
echo "test_forward wgmma"; FACL_FWD_WGMMA=1 FACL_DEVICE=NVIDIA timeout 300 ./build/tests/test_forward 2>&1 | tail -1
for t in test_kvcache test_bwd test_threads test_api; do echo $t; FACL_DEVICE=NVIDIA timeout 200 ./build/tests/$t 2>&1 | tail -1; done
} > $OUT/suites_run67.txt 2>&1
cat $OUT/suites_run67.txt
