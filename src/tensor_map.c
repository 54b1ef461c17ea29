/* Tensor maps through the CUDA driver (tensor_map.h). */
#include "tensor_map.h"

#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>

#include "status.h"

/* NVIDIA's OpenCL device attributes (cl_nv_device_attribute_query). */
#define CL_DEVICE_PCI_BUS_ID_NV 0x4008
#define CL_DEVICE_PCI_DOMAIN_ID_NV 0x400A

/* The CUDA driver API as far as used here, declared by hand (no CUDA headers at build
 * time): results are CUresult (0 = success), enums ints, handles pointers. */
enum {
    CU_DEVICE_ATTRIBUTE_PCI_BUS_ID = 33,
    CU_DEVICE_ATTRIBUTE_PCI_DOMAIN_ID = 50,
    CU_TENSOR_MAP_DATA_TYPE_FLOAT16 = 6,
    CU_TENSOR_MAP_DATA_TYPE_BFLOAT16 = 9,
    CU_TENSOR_MAP_INTERLEAVE_NONE = 0,
    CU_TENSOR_MAP_SWIZZLE_128B = 3,
    CU_TENSOR_MAP_L2_PROMOTION_L2_128B = 2,
    CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE = 0 /* zeros */
};
typedef int (*cu_init_fn)(unsigned flags);
typedef int (*cu_device_get_count_fn)(int *count);
typedef int (*cu_device_get_fn)(int *device, int ordinal);
typedef int (*cu_device_get_attribute_fn)(int *value, int attribute, int device);
typedef int (*cu_primary_ctx_retain_fn)(void **context, int device);
typedef int (*cu_primary_ctx_release_fn)(int device);
typedef int (*cu_ctx_push_fn)(void *context);
typedef int (*cu_ctx_pop_fn)(void **context);
typedef int (*cu_encode_tiled_fn)(void *map, int dtype, uint32_t rank, void *address,
                                  const uint64_t *dims, const uint64_t *strides,
                                  const uint32_t *box, const uint32_t *element_strides,
                                  int interleave, int swizzle, int l2_promotion, int oob_fill);

struct facl_tensor_maps {
    void *library;
    int device;     /* the CUDA ordinal of the context's GPU */
    void *context;  /* its primary context, retained */
    cu_primary_ctx_release_fn release;
    cu_ctx_push_fn push;
    cu_ctx_pop_fn pop;
    cu_encode_tiled_fn encode;
};

/* The engine's limits (CUDA driver API, cuTensorMapEncodeTiled): strides multiples of 16
 * bytes below 2^40, each dimension at most 2^32. */
#define MAX_STRIDE ((uint64_t)1 << 40)
#define MAX_DIM ((uint64_t)1 << 32)

const char *facl_tensor_map_layout_of(const facl_view *v, int head_dim, int64_t rows,
                                      int64_t heads, int64_t batch,
                                      facl_tensor_map_layout *out)
{
    const int64_t extent[4] = {head_dim, rows, heads, batch};
    const int64_t stride[3] = {v->ss, v->sh, v->sb};
    for (int i = 0; i < 4; ++i)
        if (extent[i] < 1 || (uint64_t)extent[i] > MAX_DIM) return "a dimension outside 1 .. 2^32";
    if (v->offset < 0 || (v->offset * 2) % 16 != 0) return "the view's offset is not a multiple of 16 bytes";
    for (int i = 0; i < 4; ++i) out->dims[i] = (uint64_t)extent[i];
    for (int i = 0; i < 3; ++i) {
        /* a dimension the box never steps along may have any stride (a single row, head
         * or sequence): give the engine a valid one */
        if (extent[i + 1] == 1) {
            out->strides[i] = 16;
            continue;
        }
        if (stride[i] <= 0) return "a stride of zero or below (broadcast) along a dimension of extent 2 or more";
        const uint64_t bytes = (uint64_t)stride[i] * 2;
        if (bytes % 16 != 0) return "a stride that is not a multiple of 16 bytes";
        if (bytes >= MAX_STRIDE) return "a stride of 2^40 bytes or more";
        out->strides[i] = bytes;
    }
    out->offset_bytes = (uint64_t)v->offset * 2;
    return NULL;
}

static facl_status unsupported(void *library, const char *why)
{
    if (library) dlclose(library);
    return facl_fail(FACL_ERROR_UNSUPPORTED, "the tensor copy engine's maps: %s", why);
}

facl_status facl_tensor_maps_open(cl_device_id device, facl_tensor_maps **out)
{
    *out = NULL;
    cl_uint bus = 0, domain = 0;
    if (!device || clGetDeviceInfo(device, CL_DEVICE_PCI_BUS_ID_NV, sizeof bus, &bus, NULL) != CL_SUCCESS)
        return unsupported(NULL, "the device reports no NVIDIA PCI bus (not NVIDIA's OpenCL driver)");
    const int has_domain =
        clGetDeviceInfo(device, CL_DEVICE_PCI_DOMAIN_ID_NV, sizeof domain, &domain, NULL) == CL_SUCCESS;
    void *library = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!library) return unsupported(NULL, "libcuda.so.1 (NVIDIA's CUDA driver) not found");
    cu_init_fn init;
    cu_device_get_count_fn count_of;
    cu_device_get_fn device_get;
    cu_device_get_attribute_fn attribute;
    cu_primary_ctx_retain_fn retain;
    facl_tensor_maps m = {library, -1, NULL, NULL, NULL, NULL, NULL};
    /* function pointers from dlsym's object pointers, through memcpy (ISO C has no cast;
     * POSIX makes the representations agree) */
    void *s[9] = {dlsym(library, "cuInit"), dlsym(library, "cuDeviceGetCount"),
                  dlsym(library, "cuDeviceGet"), dlsym(library, "cuDeviceGetAttribute"),
                  dlsym(library, "cuDevicePrimaryCtxRetain"), dlsym(library, "cuDevicePrimaryCtxRelease_v2"),
                  dlsym(library, "cuCtxPushCurrent_v2"), dlsym(library, "cuCtxPopCurrent_v2"),
                  dlsym(library, "cuTensorMapEncodeTiled")};
    for (int i = 0; i < 9; ++i)
        if (!s[i]) return unsupported(library, "libcuda.so.1 lacks a call it needs (a driver before CUDA 12)");
    memcpy(&init, &s[0], sizeof init);
    memcpy(&count_of, &s[1], sizeof count_of);
    memcpy(&device_get, &s[2], sizeof device_get);
    memcpy(&attribute, &s[3], sizeof attribute);
    memcpy(&retain, &s[4], sizeof retain);
    memcpy(&m.release, &s[5], sizeof m.release);
    memcpy(&m.push, &s[6], sizeof m.push);
    memcpy(&m.pop, &s[7], sizeof m.pop);
    memcpy(&m.encode, &s[8], sizeof m.encode);
    int n = 0;
    if (init(0) != 0 || count_of(&n) != 0) return unsupported(library, "cuInit failed");
    for (int i = 0; i < n && m.device < 0; ++i) {
        int d = -1, b = -1, dom = -1;
        if (device_get(&d, i) != 0 || attribute(&b, CU_DEVICE_ATTRIBUTE_PCI_BUS_ID, d) != 0) continue;
        if (has_domain && attribute(&dom, CU_DEVICE_ATTRIBUTE_PCI_DOMAIN_ID, d) != 0) continue;
        if ((cl_uint)b == bus && (!has_domain || (cl_uint)dom == domain)) m.device = d;
    }
    if (m.device < 0) return unsupported(library, "no CUDA device on the OpenCL device's PCI bus");
    if (retain(&m.context, m.device) != 0)
        return unsupported(library, "cuDevicePrimaryCtxRetain failed");
    facl_tensor_maps *maps = malloc(sizeof *maps);
    if (!maps) {
        m.release(m.device);
        dlclose(library);
        return facl_fail(FACL_ERROR_OUT_OF_HOST_MEMORY, "the tensor map encoder");
    }
    *maps = m;
    *out = maps;
    return FACL_SUCCESS;
}

void facl_tensor_maps_close(facl_tensor_maps *maps)
{
    if (!maps) return;
    maps->release(maps->device);
    dlclose(maps->library);
    free(maps);
}

/* Where the maps are encoded the address is a placeholder (16-byte aligned, as the
 * encoder checks); tma_maps_fill puts the buffer's in. */
#define PLACEHOLDER_ADDRESS ((uintptr_t)1 << 20)

facl_status facl_tensor_map_encode(facl_tensor_maps *maps, const facl_tensor_map_layout *layout,
                                   int bf16, void *map)
{
    const uint32_t box[4] = {FACL_TENSOR_MAP_BOX, FACL_TENSOR_MAP_BOX, 1, 1};
    const uint32_t element_strides[4] = {1, 1, 1, 1};
    if (maps->push(maps->context) != 0)
        return facl_fail(FACL_ERROR_UNSUPPORTED, "the tensor copy engine's maps: cuCtxPushCurrent failed");
    const int r = maps->encode(map, bf16 ? CU_TENSOR_MAP_DATA_TYPE_BFLOAT16 : CU_TENSOR_MAP_DATA_TYPE_FLOAT16,
                               4, (void *)PLACEHOLDER_ADDRESS, layout->dims, layout->strides, box,
                               element_strides, CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B,
                               CU_TENSOR_MAP_L2_PROMOTION_L2_128B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
    void *popped = NULL;
    maps->pop(&popped);
    if (r != 0)
        return facl_fail(FACL_ERROR_UNSUPPORTED,
                         "the tensor copy engine's maps: cuTensorMapEncodeTiled returned %d for dims "
                         "%llu x %llu x %llu x %llu",
                         r, (unsigned long long)layout->dims[0], (unsigned long long)layout->dims[1],
                         (unsigned long long)layout->dims[2], (unsigned long long)layout->dims[3]);
    return FACL_SUCCESS;
}
