#!/bin/bash
# Session 12: where attn_fwd_mma's time goes (A: HEAD with experiment switches that drop one
# part of the loop each, results wrong, timing only) and the scale folded into the
# exponent (B), alternating.
for x in A B; do
  rm -rf /tmp/$x && mkdir /tmp/$x && tar -xf .device/snap$x.tar -C /tmp/$x
  (cd /tmp/$x && meson setup build -Dbuildtype=release > $OUT/meson$x.log 2>&1 && ninja -C build >> $OUT/meson$x.log 2>&1) || { tail -30 $OUT/meson$x.log; exit 1; }
done
G="-d NVIDIA --dtypes fp16 --seqlens 4096,16384 --baseline off --reps 5"
for e in "" "-DEXP_NO_COPY" "-DEXP_NO_BARRIER" "-DEXP_NO_SOFTMAX" "-DEXP_NO_PV" "-DEXP_NO_SOFTMAX -DEXP_NO_PV" "-DEXP_NO_SOFTMAX -DEXP_NO_COPY -DEXP_NO_BARRIER"; do
  echo "== A exp '$e'"
  FACL_EXP_OPTS="$e" /tmp/A/build/tools/facl-bench $G --causal off --no-verify 2>&1 | grep "^fp16"
done > $OUT/exp59.txt
for r in 1 2; do
  for x in A B; do echo "== $x round $r"; /tmp/$x/build/tools/facl-bench $G --causal off,on 2>&1 | grep "^fp16"; done
done > $OUT/ab59.txt
cat $OUT/exp59.txt $OUT/ab59.txt
mkdir -p /tmp/cacheB
(cd /tmp/B && FACL_CACHE_DIR=/tmp/cacheB ./build/tools/facl-bench -d NVIDIA --dtypes fp16 --seqlens 4096 --causal off --baseline off --reps 3 > /dev/null 2>&1; tar -czf $OUT/cacheB.tgz -C /tmp/cacheB .)
cd /tmp/B && FACL_DEVICE=NVIDIA ./build/tests/test_forward > $OUT/test_forward_B.txt 2>&1; echo "test_forward rc $?"; tail -3 $OUT/test_forward_B.txt
