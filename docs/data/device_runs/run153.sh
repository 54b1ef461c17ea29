#!/bin/bash
# Session 25 (issue 12): the Hopper backward as the default on sm_90 (behind the
# tensor-core backward's probe), with lse and D loaded a step ahead. S = the tree; P = the
# tree of run 152 (f5b6744). Suites on S with the default context (probe included), the
# self-test; the backward grid (d 64/128/256, 1k/4k/16k, causal off/on, fp16 and bf16) by
# default next to torch, attn_bwd_mma (FACL_BWD_WGMMA=0) and P's wgmma kernels in bf16 at
# d 64/128 in the same command.
R=$(pwd)
build() { # build NAME TAR
  rm -rf /tmp/$1 && mkdir /tmp/$1 && tar -xf $R/.device/$2 -C /tmp/$1
  (cd /tmp/$1 && meson setup build -Dbuildtype=release -Dtests=enabled > /tmp/meson$1.log 2>&1 && ninja -C build tools/facl-bench tools/facl-selftest tests/test_bwd >> /tmp/meson$1.log 2>&1) || { echo "build $1 failed"; tail -30 /tmp/meson$1.log; }
}
build S snapS.tar & build P snapP.tar & wait
export FACL_DEVICE=NVIDIA
bench() { # bench TREE LABEL ENV... -- ARGS
  local t=$1 label=$2; shift 2
  local envs=(); while [ "$1" != "--" ]; do envs+=("$1"); shift; done; shift
  echo "== $t $label"
  (cd /tmp/$t && env FACL_CACHE_DIR=/tmp/cc$t "${envs[@]}" timeout 200 ./build/tools/facl-bench --bwd -d NVIDIA "$@" 2>&1 | grep "^fp16\|^bf16\|rror\|FAIL")
}
G="--hdims 64,128,256 --seqlens 1024,4096,16384 --causal off,on"
G2="--hdims 64,128 --seqlens 1024,4096,16384 --causal off,on --dtypes bf16"
{
cd /tmp/S
echo "== test_bwd default"; FACL_CACHE_DIR=/tmp/ccS timeout 200 ./build/tests/test_bwd 2>&1 | grep -E "FAIL|PASSED|FAILED|rror|probe" | head -20
echo "== selftest"; FACL_CACHE_DIR=/tmp/ccS timeout 150 ./build/tools/facl-selftest -d NVIDIA --no-speed --quick 2>&1 | tail -4
bench S "default" -- $G --dtypes fp16,bf16 --json $OUT/bwd_h200_default_run153.json
bench S "attn_bwd_mma (FACL_BWD_WGMMA=0)" FACL_BWD_WGMMA=0 -- $G2 --json $OUT/bwd_h200_mma_bf16_run153.json
bench P "wgmma of run 152 (f5b6744)" FACL_BWD_WGMMA=1 -- $G2 --json $OUT/bwd_h200_prev_bf16_run153.json
echo "== torch"; timeout 200 python3 $R/.device/torch_sdpa.py --bwd --dtypes float16,bfloat16 --hdims 64,128,256 --seqlens 1024,4096,16384 --json $OUT/bwd_h200_torch_run153.json 2>&1 | grep kind=
} > $OUT/bwd_h200_run153.txt 2>&1
tail -30 $OUT/bwd_h200_run153.txt
