#!/bin/bash
# Session 13: attn_bwd_mma's gradients stored as 32-bit pairs (B, working tree) against
# HEAD (A), alternating; B's backward suite on the H200.
for x in A B; do
  rm -rf /tmp/$x && mkdir /tmp/$x && tar -xf .device/snap$x.tar -C /tmp/$x
  (cd /tmp/$x && meson setup build -Dbuildtype=release -Dtests=enabled > $OUT/meson$x.log 2>&1 && ninja -C build tools/facl-bench tests/test_bwd >> $OUT/meson$x.log 2>&1) || { tail -30 $OUT/meson$x.log; exit 1; }
done
G="--bwd -d NVIDIA --dtypes bf16 --hdims 64,128,256 --seqlens 1024,4096 --causal off --reps 5"
{
for r in 1 2; do for x in A B; do
  echo "== $x round $r"; /tmp/$x/build/tools/facl-bench $G 2>&1 | grep "^bf16\|rror"
done; done
echo "== B test_bwd"; (cd /tmp/B && FACL_DEVICE=NVIDIA timeout 150 ./build/tests/test_bwd 2>&1 | tail -1)
} > $OUT/ab69.txt 2>&1
cat $OUT/ab69.txt
