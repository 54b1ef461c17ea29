#!/bin/bash
# Session 21 (issue 10): the Hopper kernel (WS + ping-pong through the tensor copy engine)
# as the default where faster, after its probe: selftest's reason, the forward suite with
# the default (and FACL_FWD_TMA=0), threads, the api suite; then the default forward grid
# in fp16 and bf16 next to torch, in one command.
R=$(pwd)
rm -rf /tmp/S && mkdir /tmp/S && tar -xf .device/snapS.tar -C /tmp/S
cd /tmp/S && meson setup build -Dbuildtype=release -Dtests=enabled > /tmp/mesonS.log 2>&1 && ninja -C build >> /tmp/mesonS.log 2>&1 || { echo "build failed"; tail -30 /tmp/mesonS.log; exit 1; }
export FACL_CACHE_DIR=/tmp/ccS
{
meson test -C build plan tensor_map ptx_patch plan_memo 2>&1 | grep -E "Ok:|Fail:"
echo "== selftest (default)"
timeout 120 ./build/tools/facl-selftest -d NVIDIA --no-speed --quick 2>&1 | grep -i "kernel path\|passed\|failed" | head -4
echo "== selftest FACL_FWD_TMA=0"
FACL_FWD_TMA=0 timeout 100 ./build/tools/facl-selftest -d NVIDIA --no-speed --quick 2>&1 | grep -i "kernel path" | head -2
echo "== test_forward default"
FACL_DEVICE=NVIDIA timeout 200 ./build/tests/test_forward 2>&1 | tail -2
echo "== test_threads"
FACL_DEVICE=NVIDIA timeout 200 ./build/tests/test_threads 2>&1 | tail -3
} > $OUT/hopper_default_suites_run130.txt 2>&1
cat $OUT/hopper_default_suites_run130.txt
B="-d NVIDIA --baseline off --seqlens 1024,2048,4096,16384 --causal off,on --hdims 64,128,256"
{
for dt in fp16 bf16; do
  echo "== $dt default"; timeout 100 ./build/tools/facl-bench $B --dtypes $dt --json $OUT/fwd_h200_default_${dt}_run130.json 2>&1 | grep "^$dt\|rror"
done
echo "== torch"; timeout 150 python3 $R/.device/torch_sdpa.py --hdims 64,128,256 --seqlens 1024,2048,4096,16384 --dtypes float16,bfloat16 --json $OUT/fwd_h200_torch_run130.json 2>&1 | grep kind=
} > $OUT/fwd_h200_default_run130.txt 2>&1
cat $OUT/fwd_h200_default_run130.txt
