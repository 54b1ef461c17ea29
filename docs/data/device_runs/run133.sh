#!/bin/bash
# Session 21 (issue 10): what the Hopper default costs a context: creation time (cold disk
# cache, then warm) and the device memory the process holds, default vs FACL_FWD_TMA=0.
rm -rf /tmp/S && mkdir /tmp/S && tar -xf .device/snapH.tar -C /tmp/S
cd /tmp/S && meson setup build -Dbuildtype=release > /tmp/mesonS.log 2>&1 && ninja -C build >> /tmp/mesonS.log 2>&1 || { echo "build failed"; tail -30 /tmp/mesonS.log; exit 1; }
cat > /tmp/ctx.c <<'C'
#include <stdio.h>
#include <time.h>
#include <unistd.h>
#include "facl.h"
int main(void) {
  struct timespec a, b; clock_gettime(CLOCK_MONOTONIC, &a);
  facl_context *ctx = NULL;
  if (facl_context_create("NVIDIA", &ctx) != FACL_SUCCESS) { printf("create: %s\n", facl_last_error()); return 1; }
  clock_gettime(CLOCK_MONOTONIC, &b);
  facl_device_info info = FACL_DEVICE_INFO_INIT; facl_context_device_info(ctx, &info);
  printf("create %.2f s; reason: %s\n", (b.tv_sec - a.tv_sec) + 1e-9 * (b.tv_nsec - a.tv_nsec), info.kernel_path_reason);
  fflush(stdout); sleep(4); facl_context_free(ctx); return 0; }
C
cc -O2 -Iinclude -o /tmp/ctx /tmp/ctx.c -Lbuild -lfacl -Wl,-rpath,$PWD/build || exit 1
{
for mode in default tma0; do
  for cache in cold warm; do
    [ $cache = cold ] && rm -rf /tmp/cc133
    if [ $mode = tma0 ]; then export FACL_FWD_TMA=0; else unset FACL_FWD_TMA; fi
    echo "== $mode, $cache disk cache"
    FACL_CACHE_DIR=/tmp/cc133 /tmp/ctx > /tmp/ctx.out 2>&1 & pid=$!
    for i in $(seq 1 600); do grep -q "create" /tmp/ctx.out && break; sleep 0.1; done
    sleep 1; nvidia-smi --query-compute-apps=pid,used_memory --format=csv,noheader 2>&1 | head -3
    wait $pid; cat /tmp/ctx.out
  done
done
} > $OUT/context_cost_run133.txt 2>&1
cat $OUT/context_cost_run133.txt
