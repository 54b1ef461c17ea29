#!/bin/bash
# Session 13 review: store_value_pair shared by attn_fwd_mma and attn_bwd_mma (working tree): suites on the H200.
x=B; rm -rf /tmp/$x && mkdir /tmp/$x && tar -xf .device/snap$x.tar -C /tmp/$x
(cd /tmp/$x && meson setup build -Dbuildtype=release -Dtests=enabled > $OUT/meson$x.log 2>&1 && ninja -C build tests/test_forward tests/test_bwd >> $OUT/meson$x.log 2>&1) || { tail -30 $OUT/meson$x.log; exit 1; }
cd /tmp/B
echo "test_forward"; FACL_DEVICE=NVIDIA timeout 90 ./build/tests/test_forward 2>&1 | tail -1
echo "test_bwd"; FACL_DEVICE=NVIDIA timeout 60 ./build/tests/test_bwd 2>&1 | tail -1
