#!/bin/bash
# Session 26 (issue 12): attn_bwd_wgmma's atomic-dq variant as committed: the form of run
# 156 (dq's product after dv's and dk's are awaited; the whole group adds the staged
# chunks) with 16-byte additions (red.global.add.v4.f32) where the workspace's
# accumulator rows are 16-byte aligned. test_bwd by default (deterministic kernels; the
# probe) and with the opt-in FACL_BWD_DQ_ATOMIC=1 (atomic variant for deterministic = 0;
# the probe runs it too), then the grid at d 64/128 (1k/4k/16k, causal off/on, fp16 and
# bf16), atomic and deterministic kernels, in one command.
R=$(pwd)
rm -rf /tmp/S && mkdir /tmp/S && tar -xf $R/.device/snapS.tar -C /tmp/S
(cd /tmp/S && meson setup build -Dbuildtype=release -Dtests=enabled > /tmp/mesonS.log 2>&1 && ninja -C build tools/facl-bench tests/test_bwd >> /tmp/mesonS.log 2>&1) || { echo "build failed"; tail -30 /tmp/mesonS.log; }
export FACL_DEVICE=NVIDIA FACL_CACHE_DIR=/tmp/ccS
cd /tmp/S
G="--hdims 64,128 --seqlens 1024,4096,16384 --causal off,on --dtypes fp16,bf16"
{
echo "== test_bwd default"; timeout 150 ./build/tests/test_bwd 2>&1 | grep -E "FAIL|PASSED|FAILED|rror|probe" | head -20
echo "== test_bwd, atomic opt-in"; FACL_BWD_DQ_ATOMIC=1 timeout 150 ./build/tests/test_bwd 2>&1 | grep -E "FAIL|PASSED|FAILED|rror|probe" | head -20
echo "== atomic"; FACL_BWD_DQ_ATOMIC=1 timeout 100 ./build/tools/facl-bench --bwd -d NVIDIA $G --json $OUT/bwd_h200_atomic_run158.json 2>&1 | grep "^fp16\|^bf16\|rror\|FAIL"
echo "== deterministic kernels"; timeout 100 ./build/tools/facl-bench --bwd -d NVIDIA $G --json $OUT/bwd_h200_default_run158.json 2>&1 | grep "^fp16\|^bf16\|rror\|FAIL"
} > $OUT/bwd_h200_run158.txt 2>&1
tar -czf $OUT/cc_run158.tgz -C /tmp ccS 2>/dev/null
tail -60 $OUT/bwd_h200_run158.txt
