#!/bin/bash
# Session 22 (issue 10), trace experiment 2 (the start) (docs/data/device_runs/run140_trace.patch, not
# landed): the Hopper forward's work-groups timed with %globaltimer, d = 128 (and 64),
# 1k/4k/16k keys, causal off and on.
R=$(pwd)
rm -rf /tmp/T && mkdir /tmp/T && tar -xf .device/snapT.tar -C /tmp/T
cd /tmp/T && meson setup build -Dbuildtype=release > /tmp/mesonT.log 2>&1 && ninja -C build tools/facl-bench >> /tmp/mesonT.log 2>&1 || { echo "build failed"; tail -30 /tmp/mesonT.log; exit 1; }
export FACL_CACHE_DIR=/tmp/ccT
mkdir -p /tmp/trace
{
FACL_FWD_WGMMA=1 FACL_FWD_WGMMA_WS=2 FACL_TRACE_OUT=/tmp/trace timeout 200 ./build/tools/facl-bench -d NVIDIA --baseline off --no-verify --seqlens 1024,4096 --causal off,on --hdims 128,256 --dtypes fp16 2>&1 | grep "^fp16\|rror"
python3 $R/.device/fwd_trace_an2.py /tmp/trace/*.bin
} > $OUT/fwd_trace_run140.txt 2>&1
cat $OUT/fwd_trace_run140.txt
