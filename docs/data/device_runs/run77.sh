#!/bin/bash
# Session 14: the decode call's fixed part. The launch floor of each timer (facl-bench's empty
# kernel; do_bench of a one-element torch add, the way torch_sdpa.py times torch), a 16-key
# call, and the in-kernel merge against cache_combine at 1k-4k, with the new defaults.
x=B; rm -rf /tmp/$x && mkdir /tmp/$x && tar -xf .device/snap$x.tar -C /tmp/$x
(cd /tmp/$x && meson setup build -Dbuildtype=release -Dtests=disabled > $OUT/meson$x.log 2>&1 && ninja -C build tools/facl-bench >> $OUT/meson$x.log 2>&1) || { tail -30 $OUT/meson$x.log; exit 1; }
cd /tmp/B
export FACL_CACHE_DIR=/tmp/ccache77
B="--decode -d NVIDIA --dtypes fp16 --copy-gbps 4270 --pages 0 --forward-row off"
{
echo "== torch floor (do_bench, median ms)"
python3 -c "
import torch, triton
x = torch.zeros(1, device='cuda')
for i in range(3): print('add_ 1 element', triton.testing.do_bench(lambda: x.add_(1), warmup=25, rep=100, return_mode='median'))
"
echo "== facl default, 16 to 4k keys, splits auto/1/2"
./build/tools/facl-bench $B --kv-lens 16,256,1024,4096 --splits 0,1,2 2>&1 | grep "^fp16\|empty\|rror"
echo "== facl, merged by cache_combine"
FACL_CACHE_SPLIT_MERGE=combine ./build/tools/facl-bench $B --kv-lens 1024,4096 --splits 0 2>&1 | grep "^fp16\|rror"
} > $OUT/decode_fixed_run77.txt 2>&1
cat $OUT/decode_fixed_run77.txt
