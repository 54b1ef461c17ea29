#!/bin/bash
# Session 24 (issue 10): several row blocks per Hopper work-group (row_block_at, Q_AHEAD,
# plan.c's wgmma_blocks_per_group). H = HEAD 02cd838 (one block per group), S = the working
# tree, S2 = S without q's early release (q staged at d = 256: released at the block's end,
# as in H). d = 256 non-causal (run 145 saw 0.93-0.98x there), d = 64 at 1k-2k against
# attn_fwd_mma (the threshold), d = 128 H against S.
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
  (cd /tmp/$1 && meson setup build -Dbuildtype=release -Dtests=enabled > /tmp/meson$1.log 2>&1 && ninja -C build tools/facl-bench tests/test_forward >> /tmp/meson$1.log 2>&1) || { echo "build $1 failed"; tail -20 /tmp/meson$1.log; }
}
build H snapH.tar & build S snapS.tar & build S2 snapS.tar & wait
bench() { # bench TREE LABEL ENV... -- ARGS
  local t=$1 label=$2; shift 2
  local envs=(); while [ "$1" != "--" ]; do envs+=("$1"); shift; done; shift
  echo "== $t $label"
  (cd /tmp/$t && env FACL_CACHE_DIR=/tmp/cc$t "${envs[@]}" timeout 120 ./build/tools/facl-bench -d NVIDIA --baseline off "$@" 2>&1 | grep "^fp16\|^bf16\|rror")
}
W="FACL_FWD_WGMMA=1"
D256="--seqlens 1024,2048,4096,16384 --causal off --hdims 256 --dtypes fp16"
{
for rep in 1 2; do
  bench H "d256 rep $rep" $W -- $D256
  bench S "d256 rule rep $rep" $W -- $D256
  bench S2 "d256 rule rep $rep" $W -- $D256
  bench S "d256 k=1 rep $rep" $W FACL_FWD_BLOCKS_PER_GROUP=1 -- $D256
  bench S2 "d256 k=1 rep $rep" $W FACL_FWD_BLOCKS_PER_GROUP=1 -- $D256
done
for rep in 1 2; do
  bench S "d64 default rep $rep" -- --seqlens 1024,2048 --causal off,on --hdims 64 --dtypes fp16,bf16
  bench S "d64 attn_fwd_mma rep $rep" FACL_FWD_WGMMA=0 -- --seqlens 1024,2048 --causal off,on --hdims 64 --dtypes fp16,bf16
done
bench H "d128 rep 1" $W -- --seqlens 1024,2048,4096,16384 --causal off,on --hdims 128 --dtypes fp16
bench S "d128 rule rep 1" $W -- --seqlens 1024,2048,4096,16384 --causal off,on --hdims 128 --dtypes fp16
echo "== test_forward S default"; (cd /tmp/S && FACL_CACHE_DIR=/tmp/ccS FACL_DEVICE=NVIDIA timeout 120 ./build/tests/test_forward 2>&1 | tail -2)
echo "== test_forward S2 forced WS k=2"; (cd /tmp/S2 && FACL_CACHE_DIR=/tmp/ccS2 FACL_DEVICE=NVIDIA FACL_KERNEL_PATH=nvidia-mma $W FACL_FWD_WGMMA_WS=1 FACL_FWD_BLOCKS_PER_GROUP=2 timeout 120 ./build/tests/test_forward 2>&1 | tail -2)
} > $OUT/blocks_rule_run147.txt 2>&1
cat $OUT/blocks_rule_run147.txt
