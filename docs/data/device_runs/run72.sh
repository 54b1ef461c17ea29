#!/bin/bash
# Session 14: the decode kernel's shapes beyond the 48 KiB NVIDIA reports (warps x stages),
# with forced split counts; test_forward at HEAD's kernels (run 71 was cut off); test_kvcache
# on the larger shapes; the cache kernel's PTX for ptxas -v here.
x=B; rm -rf /tmp/$x && mkdir /tmp/$x && tar -xf .device/snap$x.tar -C /tmp/$x
(cd /tmp/$x && meson setup build -Dbuildtype=release -Dtests=enabled > $OUT/meson$x.log 2>&1 && ninja -C build tools/facl-bench tests/test_forward tests/test_kvcache >> $OUT/meson$x.log 2>&1) || { tail -30 $OUT/meson$x.log; exit 1; }
here=$PWD
cd /tmp/B
export FACL_CACHE_DIR=/tmp/ccache72
{
for sh in 2,2 2,3 2,4 4,2 4,3 1,4 1,3; do
  echo "== shape $sh"
  FACL_CACHE_MMA_SHAPE=$sh ./build/tools/facl-bench --decode -d NVIDIA --dtypes fp16 --copy-gbps 4270 --kv-lens 1024,4096,16384,65536 --pages 0 --splits 0,2,3,4,6,8 --forward-row off 2>&1 | grep "^fp16\|rror\|kernel"
done
} > $OUT/decode_shapes_run72.txt 2>&1
python3 $here/.device/torch_sdpa.py --decode > $OUT/decode_torch_run72.txt 2>&1
{
echo "test_forward"; FACL_DEVICE=NVIDIA timeout 200 ./build/tests/test_forward 2>&1 | tail -1
for sh in 2,4 4,3 1,4; do echo "test_kvcache $sh"; FACL_CACHE_MMA_SHAPE=$sh FACL_DEVICE=NVIDIA timeout 100 ./build/tests/test_kvcache 2>&1 | tail -1; done
} > $OUT/suites_run72.txt 2>&1
tar -czf $OUT/ccache72.tgz -C /tmp ccache72
cat $OUT/suites_run72.txt; cat $OUT/decode_shapes_run72.txt; tail -8 $OUT/decode_torch_run72.txt
