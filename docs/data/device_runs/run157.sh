#!/bin/bash
# Session 26 (issue 12): attn_bwd_wgmma's atomic-dq variant (DQ_ATOMIC=1), its staged dq
# chunks now added by the copy engine's bulk reductions (cp.reduce.async.bulk ... add.f32,
# a row at a time, issued by warp 0) where the workspace's accumulator rows are 16-byte
# aligned; run 156 had every work-item add floats (red.global.add.f32). test_bwd with the
# opt-in FACL_BWD_DQ_ATOMIC=1 (its workspace cases, 3 floats into their buffer, take the
# per-float form), then the grid at d 64/128 (1k/4k/16k, causal off/on, fp16 and bf16):
# atomic, then the deterministic kernels, in one command; registers from the disk cache.
R=$(pwd)
rm -rf /tmp/S && mkdir /tmp/S && tar -xf $R/.device/snapS.tar -C /tmp/S
(cd /tmp/S && meson setup build -Dbuildtype=release -Dtests=enabled > /tmp/mesonS.log 2>&1 && ninja -C build tools/facl-bench tests/test_bwd >> /tmp/mesonS.log 2>&1) || { echo "build failed"; tail -30 /tmp/mesonS.log; }
export FACL_DEVICE=NVIDIA FACL_CACHE_DIR=/tmp/ccS
cd /tmp/S
G="--hdims 64,128 --seqlens 1024,4096,16384 --causal off,on --dtypes fp16,bf16"
{
echo "== test_bwd, atomic opt-in"; FACL_BWD_DQ_ATOMIC=1 timeout 120 ./build/tests/test_bwd 2>&1 | grep -E "FAIL|PASSED|FAILED|rror|probe" | head -20
echo "== atomic"; FACL_BWD_DQ_ATOMIC=1 timeout 120 ./build/tools/facl-bench --bwd -d NVIDIA $G --json $OUT/bwd_h200_atomic_run157.json 2>&1 | grep "^fp16\|^bf16\|rror\|FAIL"
echo "== deterministic kernels"; timeout 120 ./build/tools/facl-bench --bwd -d NVIDIA $G --json $OUT/bwd_h200_default_run157.json 2>&1 | grep "^fp16\|^bf16\|rror\|FAIL"
} > $OUT/bwd_h200_run157.txt 2>&1
tar -czf $OUT/cc_run157.tgz -C /tmp ccS 2>/dev/null
grep -v "^kind=" $OUT/bwd_h200_run157.txt | tail -60
