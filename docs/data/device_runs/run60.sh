#!/bin/bash
# Session 12: run 59's experiments again with the path forced (the context probe had rejected
# the experiment builds, whose results are wrong, and fallen back to the portable kernel).
for x in A; do
  rm -rf /tmp/$x && mkdir /tmp/$x && tar -xf .device/snap$x.tar -C /tmp/$x
  (cd /tmp/$x && meson setup build -Dbuildtype=release > $OUT/meson$x.log 2>&1 && ninja -C build >> $OUT/meson$x.log 2>&1) || { tail -30 $OUT/meson$x.log; exit 1; }
done
G="-d NVIDIA --dtypes fp16 --seqlens 4096,16384 --baseline off --reps 5"
for e in "" "-DEXP_NO_COPY" "-DEXP_NO_BARRIER" "-DEXP_NO_SOFTMAX" "-DEXP_NO_EXP" "-DEXP_NO_PV" "-DEXP_NO_SOFTMAX -DEXP_NO_PV" "-DEXP_NO_SOFTMAX -DEXP_NO_COPY -DEXP_NO_BARRIER"; do
  echo "== A exp '$e'"
  FACL_KERNEL_PATH=nvidia-mma FACL_EXP_OPTS="$e" /tmp/A/build/tools/facl-bench $G --causal off --no-verify 2>&1 | grep "^fp16\|rror"
done > $OUT/exp60.txt
cat $OUT/exp60.txt
mkdir -p /tmp/cacheA
(cd /tmp/A && FACL_CACHE_DIR=/tmp/cacheA ./build/tools/facl-bench -d NVIDIA --dtypes fp16 --seqlens 4096 --causal off --baseline off --reps 3 > /dev/null 2>&1; tar -czf $OUT/cacheA.tgz -C /tmp/cacheA .)
