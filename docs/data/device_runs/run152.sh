#!/bin/bash
# Session 25 (issue 12): the Hopper backward (attn_bwd_wgmma.cl, FACL_BWD_WGMMA=1) on the
# H200: correctness first (test_bwd's default set and its whole grid, both warpgroup
# counts), then the backward grid (d 64/128, 1k/4k/16k, causal off/on) for attn_bwd_mma
# (the default), the wgmma kernels with 2 and 1 warpgroups, and torch, in one command;
# the driver's programs come back for their registers.
R=$(pwd)
rm -rf /tmp/S && mkdir /tmp/S && tar -xf $R/.device/snapS.tar -C /tmp/S
(cd /tmp/S && meson setup build -Dbuildtype=release -Dtests=enabled > /tmp/mesonS.log 2>&1 && ninja -C build tools/facl-bench tools/facl-selftest tests/test_bwd >> /tmp/mesonS.log 2>&1) || { echo "build failed"; tail -30 /tmp/mesonS.log; }
cd /tmp/S; export FACL_DEVICE=NVIDIA
{
echo "== test_bwd, wgmma 2 warpgroups"; FACL_CACHE_DIR=/tmp/cc2 FACL_BWD_WGMMA=1 timeout 200 ./build/tests/test_bwd 2>&1 | grep -E "FAIL|PASSED|FAILED|rror" | head -20
echo "== test_bwd, wgmma 1 warpgroup"; FACL_CACHE_DIR=/tmp/cc1 FACL_BWD_WGMMA=1 FACL_BWD_WGMMA_WARPGROUPS=1 timeout 200 ./build/tests/test_bwd 2>&1 | grep -E "FAIL|PASSED|FAILED|rror" | head -20
bench() { # bench LABEL ENV... -- ARGS
  local label=$1; shift
  local envs=(); while [ "$1" != "--" ]; do envs+=("$1"); shift; done; shift
  echo "== $label"
  env "${envs[@]}" timeout 200 ./build/tools/facl-bench --bwd -d NVIDIA "$@" 2>&1 | grep "^fp16\|^bf16\|rror\|FAIL"
}
G="--hdims 64,128 --seqlens 1024,4096,16384 --causal off,on"
bench "bf16 wgmma 2 warpgroups" FACL_CACHE_DIR=/tmp/cc2 FACL_BWD_WGMMA=1 -- $G --dtypes bf16 --json $OUT/bwd_h200_wgmma2_bf16_run152.json
bench "bf16 attn_bwd_mma (default)" FACL_CACHE_DIR=/tmp/ccm -- $G --dtypes bf16 --json $OUT/bwd_h200_mma_bf16_run152.json
bench "bf16 wgmma 1 warpgroup" FACL_CACHE_DIR=/tmp/cc1 FACL_BWD_WGMMA=1 FACL_BWD_WGMMA_WARPGROUPS=1 -- $G --dtypes bf16 --json $OUT/bwd_h200_wgmma1_bf16_run152.json
bench "fp16 wgmma 2 warpgroups" FACL_CACHE_DIR=/tmp/cc2 FACL_BWD_WGMMA=1 -- $G --dtypes fp16 --json $OUT/bwd_h200_wgmma2_fp16_run152.json
echo "== torch"; timeout 200 python3 $R/.device/torch_sdpa.py --bwd --dtypes float16,bfloat16 --hdims 64,128 --seqlens 1024,4096,16384 --json $OUT/bwd_h200_torch_run152.json 2>&1 | grep kind=
echo "== test_bwd whole grid, wgmma 2 warpgroups"; FACL_CACHE_DIR=/tmp/cc2 FACL_BWD_WGMMA=1 FACL_BWD_ALL=1 timeout 240 ./build/tests/test_bwd 2>&1 | grep -E "FAIL|PASSED|FAILED|rror" | head -20
} > $OUT/bwd_h200_run152.txt 2>&1
tar -czf $OUT/cc_run152.tgz -C /tmp cc2 cc1 2>/dev/null
tail -40 $OUT/bwd_h200_run152.txt
