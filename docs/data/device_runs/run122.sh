#!/bin/bash
# Session 20: the timestamp trace (run117_trace.patch on 4dab277, probe skipped) from both
# L2 states: where the time of a call goes when it starts from clean lines.
rm -rf /tmp/T && mkdir /tmp/T && tar -xf .device/snapT.tar -C /tmp/T
cd /tmp/T && (meson setup build -Dbuildtype=release > /tmp/mesonT.log 2>&1 && ninja -C build tools/facl-bench >> /tmp/mesonT.log 2>&1) || { echo "build failed"; tail -20 /tmp/mesonT.log; exit 1; }
export FACL_KERNEL_PATH=nvidia-mma FACL_CACHE_DIR=/tmp/cc122
A="--decode -d NVIDIA --copy-gbps 4270 --forward-row off --kv-lens 1024,4096,16384,65536 --pages 0,16 --dtypes fp16 --no-verify"
mkdir -p /tmp/tr/dirty /tmp/tr/clean
{
echo "== dirty"; FACL_TRACE_OUT=/tmp/tr/dirty timeout 120 ./build/tools/facl-bench $A 2>&1 | grep "^fp16\|rror\|empty"
echo "== clean"; FACL_TRACE_OUT=/tmp/tr/clean timeout 120 ./build/tools/facl-bench $A --flush-read on 2>&1 | grep "^fp16\|rror\|empty"
for s in dirty clean; do echo "== trace $s"; python3 $OLDPWD/.device/trace_an.py /tmp/tr/$s/*.bin; done
} > $OUT/decode_h200_trace_run122.txt 2>&1
cat $OUT/decode_h200_trace_run122.txt
tar -czf $OUT/trace_run122.tgz -C /tmp tr
