#!/bin/bash
# Session 15: which of run 81's three kernel changes moved the decode: A = HEAD, E = the
# work-group merge epilogue only, P = the L2 hints at the start only, L = every stage issued
# before Q (refill at the end of a step) only, B = all three; T = B traced. Driver PTX kept.
for x in A E P L B T; do
  rm -rf /tmp/$x && mkdir /tmp/$x && tar -xf .device/snap$x.tar -C /tmp/$x
  (cd /tmp/$x && meson setup build -Dbuildtype=release > /tmp/meson$x.log 2>&1 && ninja -C build tools/facl-bench >> /tmp/meson$x.log 2>&1 || echo "build $x failed") &
done
wait
A1="--decode -d NVIDIA --dtypes fp16 --copy-gbps 4270 --kv-lens 1024,4096,16384,65536 --pages 0,16 --splits 0 --forward-row off"
{
for x in A E P L B A B; do
  echo "== $x"; (cd /tmp/$x && FACL_CACHE_DIR=/tmp/cc82$x timeout 60 ./build/tools/facl-bench $A1 2>&1 | grep "^fp16\|rror")
done
} > $OUT/ab_run82.txt 2>&1
cat $OUT/ab_run82.txt
mkdir -p /tmp/trace
(cd /tmp/T && FACL_KERNEL_PATH=nvidia-mma FACL_CACHE_DIR=/tmp/cc82t FACL_CACHE_TRACE=/tmp/trace timeout 60 ./build/tools/facl-bench --decode -d NVIDIA --dtypes fp16 --kv-lens 1024,16384 --pages 0 --splits 0 --forward-row off --no-verify > /tmp/trace/run.txt 2>&1; grep "^fp16" /tmp/trace/run.txt)
tar -czf $OUT/trace_ptx_run82.tgz -C /tmp trace cc82A cc82B
