#!/bin/bash
# Session 26 (issue 12): attn_bwd_wgmma's atomic-dq variant (DQ_ATOMIC=1), its staged dq
# chunks now added by the copy engine's bulk reductions (cp.reduce.async.bulk ... add.f32,
# a row at a time, issued by warp 0) where the workspace's accumulator rows are 16-byte
# aligned; run 156 had every work-item add floats (red.global.add.f32).
#   S = ab11416: dq's product after dv's and dk's have been awaited;
#   B = S with dq's first chunk issued in the same batch as dv and dk (the dS barrier
#       before that batch; fb473f7, reverted after this run).
# test_bwd on B with the opt-in FACL_BWD_DQ_ATOMIC=1 (its workspace cases, 3 floats into
# their buffer, take the per-float form), then the grid at d 64/128 (1k/4k/16k, causal
# off/on, fp16 and bf16): S and B atomic, the deterministic kernels, torch, in one command;
# registers from the disk caches.
R=$(pwd)
build() { # build NAME TAR
  rm -rf /tmp/$1 && mkdir /tmp/$1 && tar -xf $R/.device/$2 -C /tmp/$1
  (cd /tmp/$1 && meson setup build -Dbuildtype=release -Dtests=enabled > /tmp/meson$1.log 2>&1 && ninja -C build tools/facl-bench tests/test_bwd >> /tmp/meson$1.log 2>&1) || { echo "build $1 failed"; tail -30 /tmp/meson$1.log; }
}
build S snapS.tar & build B snapB.tar & wait
export FACL_DEVICE=NVIDIA
G="--hdims 64,128 --seqlens 1024,4096,16384 --causal off,on --dtypes fp16,bf16"
bench() { # bench TREE LABEL ENV... -- ARGS
  local t=$1 label=$2; shift 2
  local envs=(); while [ "$1" != "--" ]; do envs+=("$1"); shift; done; shift
  echo "== $t $label"
  (cd /tmp/$t && env FACL_CACHE_DIR=/tmp/cc$t "${envs[@]}" timeout 120 ./build/tools/facl-bench --bwd -d NVIDIA "$@" 2>&1 | grep "^fp16\|^bf16\|rror\|FAIL")
}
{
for t in B; do
  echo "== $t test_bwd, atomic opt-in"; (cd /tmp/$t && FACL_CACHE_DIR=/tmp/cc$t FACL_BWD_DQ_ATOMIC=1 timeout 100 ./build/tests/test_bwd 2>&1 | grep -E "FAIL|PASSED|FAILED|rror|probe" | head -20)
done
bench S atomic FACL_BWD_DQ_ATOMIC=1 -- $G --json $OUT/bwd_h200_atomicS_run157.json
bench B atomic FACL_BWD_DQ_ATOMIC=1 -- $G --json $OUT/bwd_h200_atomicB_run157.json
bench S deterministic-kernels -- $G --json $OUT/bwd_h200_default_run157.json
echo "== torch"; timeout 100 python3 $R/.device/torch_sdpa.py --bwd --dtypes float16,bfloat16 --hdims 64,128 --seqlens 1024,4096,16384 --json $OUT/bwd_h200_torch_run157.json 2>&1 | grep kind=
} > $OUT/bwd_h200_run157.txt 2>&1
tar -czf $OUT/cc_run157.tgz -C /tmp ccS ccB 2>/dev/null
grep -v '^kind=' $OUT/bwd_h200_run157.txt | tail -120
