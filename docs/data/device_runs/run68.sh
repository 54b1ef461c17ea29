#!/bin/bash
# Session 13 final: d = 256 with 32-bit pair stores (B, working tree) against HEAD (A); the
# forward grid (fp16, bf16) next to torch in one command; B's suites on the H200.
for x in A B; do
  rm -rf /tmp/$x && mkdir /tmp/$x && tar -xf .device/snap$x.tar -C /tmp/$x
  (cd /tmp/$x && meson setup build -Dbuildtype=release > $OUT/meson$x.log 2>&1 && ninja -C build >> $OUT/meson$x.log 2>&1) || { tail -30 $OUT/meson$x.log; exit 1; }
done
here=$PWD
G="-d NVIDIA --dtypes fp16 --hdims 256 --seqlens 512,1024,4096,16384 --baseline off --reps 5 --causal off,on"
{
for r in 1 2; do for x in A B; do
  echo "== $x round $r"; /tmp/$x/build/tools/facl-bench $G 2>&1 | grep "^fp16\|rror"
done; done
} > $OUT/ab68.txt 2>&1
cat $OUT/ab68.txt
cd /tmp/B
./build/tools/facl-bench -d NVIDIA --dtypes fp16,bf16 --baseline off --json $OUT/fwd_h200_run68.json > $OUT/fwd_h200_run68.txt 2>&1
python3 $here/.device/torch_sdpa.py --json $OUT/fwd_h200_torch_run68.json > $OUT/fwd_h200_torch_run68.txt 2>&1
tail -2 $OUT/fwd_h200_run68.txt $OUT/fwd_h200_torch_run68.txt
{
./build/tools/facl-selftest -d NVIDIA --no-speed --quick > $OUT/selftest_run68.txt 2>&1; echo "selftest rc $?"; tail -3 $OUT/selftest_run68.txt
echo "test_forward"; FACL_DEVICE=NVIDIA timeout 200 ./build/tests/test_forward 2>&1 | tail -1
echo "test_forward q in registers 1,0,64,1"; FACL_FWD_MMA_SHAPE=1,0,64,1 FACL_DEVICE=NVIDIA timeout 200 ./build/tests/test_forward 2>&1 | tail -1
} > $OUT/suites_run68.txt 2>&1
cat $OUT/suites_run68.txt
