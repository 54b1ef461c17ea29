#!/bin/bash
# Session 24 (issue 10): the default forward grid as committed (d 64/128/256, 512..16k
# keys, causal off/on, fp16 and bf16) next to torch in one command. S = the working tree:
# row blocks per Hopper work-group where keys x d <= 2^20 (plan.c's
# wgmma_blocks_per_group), q's tile released at its block's end (run 149), the Hopper
# kernel from 1k keys at d <= 64 and 512 above; H = HEAD 02cd838 in fp16 (before);
# attn_fwd_mma in fp16 (FACL_FWD_WGMMA=0). Then the forward suite (default; the Hopper
# kernel forced with 2 blocks per group) and the self-test.
R=$(pwd)
build() { # build NAME TAR
  rm -rf /tmp/$1 && mkdir /tmp/$1 && tar -xf $R/.device/$2 -C /tmp/$1
  (cd /tmp/$1 && meson setup build -Dbuildtype=release -Dtests=enabled > /tmp/meson$1.log 2>&1 && ninja -C build tools/facl-bench tools/facl-selftest tests/test_forward >> /tmp/meson$1.log 2>&1) || { echo "build $1 failed"; tail -20 /tmp/meson$1.log; }
}
build H snapH.tar & build S snapS.tar & wait
bench() { # bench TREE LABEL ENV... -- ARGS
  local t=$1 label=$2; shift 2
  local envs=(); while [ "$1" != "--" ]; do envs+=("$1"); shift; done; shift
  echo "== $t $label"
  (cd /tmp/$t && env FACL_CACHE_DIR=/tmp/cc$t "${envs[@]}" timeout 150 ./build/tools/facl-bench -d NVIDIA --baseline off "$@" 2>&1 | grep "^fp16\|^bf16\|rror")
}
G="--seqlens 512,1024,2048,4096,8192,16384 --causal off,on --hdims 64,128,256"
{
bench S "fp16 default" -- $G --dtypes fp16 --json $OUT/fwd_h200_default_fp16_run150.json
bench S "bf16 default" -- $G --dtypes bf16 --json $OUT/fwd_h200_default_bf16_run150.json
bench H "fp16 default (02cd838)" -- $G --dtypes fp16 --json $OUT/fwd_h200_head_fp16_run150.json
bench S "fp16 attn_fwd_mma (FACL_FWD_WGMMA=0)" FACL_FWD_WGMMA=0 -- $G --dtypes fp16 --json $OUT/fwd_h200_mma_fp16_run150.json
echo "== torch"; timeout 200 python3 $R/.device/torch_sdpa.py --hdims 64,128,256 --seqlens 512,1024,2048,4096,8192,16384 --dtypes float16,bfloat16 --json $OUT/fwd_h200_torch_run150.json 2>&1 | grep kind=
cd /tmp/S; export FACL_CACHE_DIR=/tmp/ccS FACL_DEVICE=NVIDIA
echo "== test_forward default"; timeout 150 ./build/tests/test_forward 2>&1 | tail -2
echo "== test_forward Hopper forced, WS + engine, 2 blocks per group"; FACL_KERNEL_PATH=nvidia-mma FACL_FWD_WGMMA=1 FACL_FWD_WGMMA_WS=2 FACL_FWD_BLOCKS_PER_GROUP=2 timeout 150 ./build/tests/test_forward 2>&1 | tail -2
echo "== selftest"; timeout 150 ./build/tools/facl-selftest -d NVIDIA --no-speed --quick 2>&1 | tail -3
} > $OUT/fwd_h200_default_run150.txt 2>&1
tail -12 $OUT/fwd_h200_default_run150.txt
