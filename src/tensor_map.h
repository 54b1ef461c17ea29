/* Tensor maps for Hopper's tensor copy engine (TMA, cp.async.bulk.tensor).
 *
 * The engine reads a box of a tensor into local memory from a 128-byte tensor map, and
 * only NVIDIA's CUDA driver writes those maps (cuTensorMapEncodeTiled). The library loads
 * that driver (libcuda.so.1, already present wherever NVIDIA's OpenCL driver is) when a
 * context plans the Hopper forward with its copier, retains the primary CUDA context of
 * the same GPU (found by PCI bus; the encoder refuses to work without a current context,
 * tools/probes/tma_probe.c, run 124) and encodes each call's maps with it. The driver's
 * context is pushed only around an encode and popped right after, so a CUDA context the
 * application has current on its thread stays current.
 *
 * A map holds the tensor's device address, which OpenCL does not give the host: maps are
 * encoded with a placeholder address and the kernel tma_maps_fill (attn_fwd_mma.cl) puts
 * the buffers' addresses in with tensormap.replace before the forward reads them.
 *
 * The layout part is pure (tests/test_tensor_map.c); the rest needs the device. */
#ifndef FACL_TENSOR_MAP_H
#define FACL_TENSOR_MAP_H

#include <stdint.h>

#include "facl.h"
#include "fwd_problem.h"

/* Bytes of one encoded map, and the alignment the engine needs for it. */
#define FACL_TENSOR_MAP_BYTES 128

/* Rows and 16-bit values per box: the kernels' 64-key (64-row) tiles, 64 values per row
 * for the 128-byte swizzle (at most 128 bytes per box row). */
#define FACL_TENSOR_MAP_BOX 64

/* A (batch, row, head, dim) view of 16-bit values as the engine sees it: dimension 0 the
 * head dim (contiguous), then rows, heads, batch; strides in bytes. */
typedef struct facl_tensor_map_layout {
    uint64_t dims[4];
    uint64_t strides[3];
    uint64_t offset_bytes; /* of the view's first element from the buffer's start */
} facl_tensor_map_layout;

/* The layout of `v` with `rows` rows, `heads` heads and `batch` sequences of `head_dim`
 * 16-bit values, or NULL when the engine cannot read it: the text says why (every stride
 * and the offset must be a multiple of 16 bytes, strides below 2^40 bytes, dims at most
 * 2^32). A dimension of extent 1 is given a valid stride, whatever the view's is. */
const char *facl_tensor_map_layout_of(const facl_view *v, int head_dim, int64_t rows,
                                      int64_t heads, int64_t batch,
                                      facl_tensor_map_layout *out);

/* The CUDA driver's encoder for one OpenCL device, owned by a context. */
typedef struct facl_tensor_maps facl_tensor_maps;

/* Loads the CUDA driver and retains the primary context of the CUDA device on the same
 * PCI bus as `device`. FACL_ERROR_UNSUPPORTED, with the reason, where there is no such
 * driver or device (not NVIDIA, no libcuda, no matching GPU). */
facl_status facl_tensor_maps_open(cl_device_id device, facl_tensor_maps **out);

/* Releases the retained primary context; NULL is ignored. */
void facl_tensor_maps_close(facl_tensor_maps *maps);

/* Encodes `layout` (16-bit values, bf16 or fp16 by `bf16`) with a placeholder address into
 * `map` (FACL_TENSOR_MAP_BYTES, 64-byte aligned): boxes of 64 values x 64 rows x 1 x 1,
 * the 128-byte swizzle, rows past the tensor read as zeros. Thread-safe. */
facl_status facl_tensor_map_encode(facl_tensor_maps *maps, const facl_tensor_map_layout *layout,
                                   int bf16, void *map);

#endif
