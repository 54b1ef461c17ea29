#!/bin/bash
# Session 24 (issue 10): the default forward grid (d 64/128/256, 512..16k keys, causal
# off/on, fp16 and bf16) with several row blocks per Hopper work-group (S = the working
# tree: row_block_at, Q_AHEAD, plan.c's wgmma_blocks_per_group, the Hopper kernel from 1k
# keys at every d), next to torch in one command; H = HEAD 02cd838 (one block per group,
# the Hopper kernel from 2k keys at d <= 64) in fp16 for the before/after; then the forward
# suite with the default, with 3 blocks per group forced through the engine and 2 through
# cp.async, and the self-test.
R=$(pwd)
build() { # build NAME TAR
  rm -rf /tmp/$1 && mkdir /tmp/$1 && tar -xf $R/.device/$2 -C /tmp/$1
  (cd /tmp/$1 && meson setup build -Dbuildtype=release -Dtests=enabled > /tmp/meson$1.log 2>&1 && ninja -C build tools/facl-bench tools/facl-selftest tests/test_forward >> /tmp/meson$1.log 2>&1) || { echo "build $1 failed"; tail -20 /tmp/meson$1.log; }
}
build H snapH.tar & build S snapS.tar & wait
G="-d NVIDIA --baseline off --seqlens 512,1024,2048,4096,8192,16384 --causal off,on --hdims 64,128,256"
{
for dt in fp16 bf16; do
  echo "== S $dt default"; (cd /tmp/S && FACL_CACHE_DIR=/tmp/ccS timeout 150 ./build/tools/facl-bench $G --dtypes $dt --json $OUT/fwd_h200_default_${dt}_run148.json 2>&1 | grep "^$dt\|rror")
done
echo "== H fp16 default (02cd838)"; (cd /tmp/H && FACL_CACHE_DIR=/tmp/ccH timeout 150 ./build/tools/facl-bench $G --dtypes fp16 --json $OUT/fwd_h200_head_fp16_run148.json 2>&1 | grep "^fp16\|rror")
echo "== S fp16 attn_fwd_mma (FACL_FWD_WGMMA=0)"; (cd /tmp/S && FACL_CACHE_DIR=/tmp/ccS FACL_FWD_WGMMA=0 timeout 150 ./build/tools/facl-bench $G --dtypes fp16 --json $OUT/fwd_h200_mma_fp16_run148.json 2>&1 | grep "^fp16\|rror")
echo "== torch"; timeout 200 python3 $R/.device/torch_sdpa.py --hdims 64,128,256 --seqlens 512,1024,2048,4096,8192,16384 --dtypes float16,bfloat16 --json $OUT/fwd_h200_torch_run148.json 2>&1 | grep kind=
cd /tmp/S; export FACL_CACHE_DIR=/tmp/ccS FACL_DEVICE=NVIDIA
echo "== test_forward default"; timeout 150 ./build/tests/test_forward 2>&1 | tail -2
echo "== test_forward Hopper forced, WS + engine, 3 blocks per group"; FACL_KERNEL_PATH=nvidia-mma FACL_FWD_WGMMA=1 FACL_FWD_WGMMA_WS=2 FACL_FWD_BLOCKS_PER_GROUP=3 timeout 150 ./build/tests/test_forward 2>&1 | tail -2
echo "== test_forward Hopper forced, WS + cp.async, 2 blocks per group"; FACL_KERNEL_PATH=nvidia-mma FACL_FWD_WGMMA=1 FACL_FWD_WGMMA_WS=1 FACL_FWD_TMA=0 FACL_FWD_BLOCKS_PER_GROUP=2 timeout 150 ./build/tests/test_forward 2>&1 | tail -2
echo "== selftest"; timeout 150 ./build/tools/facl-selftest -d NVIDIA --no-speed --quick 2>&1 | tail -4
} > $OUT/fwd_h200_default_run148.txt 2>&1
cat $OUT/fwd_h200_default_run148.txt
