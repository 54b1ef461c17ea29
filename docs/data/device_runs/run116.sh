#!/bin/bash
# Session 19: on run 115's machine (torch 4.21 TB/s at 16k), HEAD's decode with more copies
# in flight: the planner's 8 warps x 2 stages against 8 x 3 and 4 x 3 (copy engine), then torch.
cd /tmp/H || exit 1
export FACL_CACHE_DIR=/tmp/cc116
{
for shape in "" 8,3,bulk 4,3,bulk ""; do
  echo "== shape '$shape'"; FACL_CACHE_MMA_SHAPE=$shape timeout 60 ./build/tools/facl-bench --decode -d NVIDIA --copy-gbps 4270 --kv-lens 4096,16384,65536 --pages 0 --forward-row off --dtypes fp16 2>&1 | grep "^fp16\|rror"
done
echo "== torch"; timeout 60 python3 tools/torch_decode.py --kv-lens 4096,16384,65536 --dtypes float16 --kv-orders shd 2>&1 | grep -v "^#"
} > $OUT/decode_h200_shapes_run116.txt 2>&1
cat $OUT/decode_h200_shapes_run116.txt
