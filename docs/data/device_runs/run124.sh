#!/bin/bash
# Session 21 (issue 10): tools/probes/tma_probe.c, the tensor copy engine (TMA) from
# OpenCL with a map encoded by libcuda; wgmma on its 128-byte swizzled tiles; TMA and
# cp.async streaming rates. Then (issue 9) test_kvcache's q-unaligned cases on the H200.
cc -O2 -std=c11 -Iinclude -Isrc -o /tmp/tma_probe tools/probes/tma_probe.c src/ptx_patch.c src/status.c -lOpenCL -ldl -lm > /tmp/cc.log 2>&1 || { grep -v "pragma\|cl_version" /tmp/cc.log | head -20; }
timeout 120 /tmp/tma_probe tools/probes/tma_probe.cl > $OUT/tma_probe_run124.txt 2>&1; echo "probe rc $?" >> $OUT/tma_probe_run124.txt
cat $OUT/tma_probe_run124.txt
meson setup /tmp/b -Dbuildtype=release -Dtests=enabled > /tmp/meson.log 2>&1 && ninja -C /tmp/b tests/test_kvcache >> /tmp/meson.log 2>&1 || { echo "build failed"; tail -20 /tmp/meson.log; }
FACL_TEST_FILTER="q-unaligned*" FACL_CACHE_DIR=/tmp/cc124 timeout 200 /tmp/b/tests/test_kvcache > $OUT/kvcache_q_unaligned_run124.txt 2>&1; echo "rc $?" >> $OUT/kvcache_q_unaligned_run124.txt
tail -8 $OUT/kvcache_q_unaligned_run124.txt
