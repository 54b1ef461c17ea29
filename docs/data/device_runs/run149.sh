#!/bin/bash
# Session 24 (issue 10): the default forward grid (d 64/128/256, 512..16k keys, causal
# off/on, fp16 and bf16) next to torch in one command, S = the working tree (row blocks per
# Hopper work-group where keys x d <= 2^20, plan.c's wgmma_blocks_per_group; the Hopper
# kernel from 1k keys at every d); H = HEAD 02cd838 in fp16 for the before/after; S2 = S
# without q's early release (q staged at d = 256: released at its block's end, as in H),
# against H and S at d = 256 (run 145: S 0.93-0.98x H there with one block per group);
# the Hopper kernel forced at 512 keys (the threshold); the driver's programs (registers).
R=$(pwd)
build() { # build NAME TAR
  rm -rf /tmp/$1 && mkdir /tmp/$1 && tar -xf $R/.device/$2 -C /tmp/$1
  if [ $1 = S2 ]; then
    python3 - /tmp/S2/cl_kernels/attn_fwd_mma.cl <<'PY'
import sys
p = sys.argv[1]; s = open(p).read()
a = "if (tile0 + BLOCK_N >= block_end) ws_release(ws_bars + WS_Q_EMPTY);"
b = "if (block_lo >= block_end) ws_release(ws_bars + WS_Q_EMPTY);"
assert a in s and b in s
s = s.replace(a, "").replace(b, "ws_release(ws_bars + WS_Q_EMPTY);")
open(p, "w").write(s)
PY
  fi
  (cd /tmp/$1 && meson setup build -Dbuildtype=release -Dtests=enabled > /tmp/meson$1.log 2>&1 && ninja -C build tools/facl-bench tools/facl-selftest tests/test_forward >> /tmp/meson$1.log 2>&1) || { echo "build $1 failed"; tail -20 /tmp/meson$1.log; }
}
build H snapH.tar & build S snapS.tar & build S2 snapS.tar & wait
bench() { # bench TREE LABEL ENV... -- ARGS
  local t=$1 label=$2; shift 2
  local envs=(); while [ "$1" != "--" ]; do envs+=("$1"); shift; done; shift
  echo "== $t $label"
  (cd /tmp/$t && env FACL_CACHE_DIR=/tmp/cc$t "${envs[@]}" timeout 150 ./build/tools/facl-bench -d NVIDIA --baseline off "$@" 2>&1 | grep "^fp16\|^bf16\|rror")
}
G="--seqlens 512,1024,2048,4096,8192,16384 --causal off,on --hdims 64,128,256"
{
bench S "fp16 default" -- $G --dtypes fp16 --json $OUT/fwd_h200_default_fp16_run149.json
bench S "bf16 default" -- $G --dtypes bf16 --json $OUT/fwd_h200_default_bf16_run149.json
bench H "fp16 default (02cd838)" -- $G --dtypes fp16 --json $OUT/fwd_h200_head_fp16_run149.json
bench S "fp16 attn_fwd_mma (FACL_FWD_WGMMA=0)" FACL_FWD_WGMMA=0 -- $G --dtypes fp16 --json $OUT/fwd_h200_mma_fp16_run149.json
echo "== torch"; timeout 200 python3 $R/.device/torch_sdpa.py --hdims 64,128,256 --seqlens 512,1024,2048,4096,8192,16384 --dtypes float16,bfloat16 --json $OUT/fwd_h200_torch_run149.json 2>&1 | grep kind=
D="--seqlens 1024,2048,4096,8192 --causal off,on --hdims 256 --dtypes fp16"
for rep in 1 2; do
  bench H "d256 rep $rep" -- $D
  bench S "d256 rep $rep" -- $D
  bench S2 "d256 rep $rep" -- $D
  bench S "d256 k=1 rep $rep" FACL_FWD_BLOCKS_PER_GROUP=1 -- $D
  bench S2 "d256 k=1 rep $rep" FACL_FWD_BLOCKS_PER_GROUP=1 -- $D
done
bench S2 "d256 fp16+bf16 default" -- --seqlens 512,1024,2048,4096,8192,16384 --causal off,on --hdims 256 --dtypes fp16,bf16 --json $OUT/fwd_h200_s2_d256_run149.json
bench S "Hopper forced (WS, engine) at 512" FACL_FWD_WGMMA=1 FACL_FWD_WGMMA_WS=2 -- --seqlens 512 --causal off,on --hdims 64,128,256 --dtypes fp16,bf16
echo "== test_forward S2 forced WS k=2"; (cd /tmp/S2 && FACL_CACHE_DIR=/tmp/ccS2 FACL_DEVICE=NVIDIA FACL_KERNEL_PATH=nvidia-mma FACL_FWD_WGMMA=1 FACL_FWD_WGMMA_WS=2 FACL_FWD_BLOCKS_PER_GROUP=2 timeout 150 ./build/tests/test_forward 2>&1 | tail -2)
echo "== test_forward S default"; (cd /tmp/S && FACL_CACHE_DIR=/tmp/ccS FACL_DEVICE=NVIDIA timeout 150 ./build/tests/test_forward 2>&1 | tail -2)
} > $OUT/fwd_h200_default_run149.txt 2>&1
cd /tmp && tar -czf $OUT/driver_programs_run149.tgz ccH ccS ccS2
cat $OUT/fwd_h200_default_run149.txt
