/* Device queries, done once when a context is made. */
#include "device_profile.h"

#include <string.h>

#include "status.h"

#ifndef CL_DEVICE_COMPUTE_CAPABILITY_MAJOR_NV
#define CL_DEVICE_COMPUTE_CAPABILITY_MAJOR_NV 0x4000
#define CL_DEVICE_COMPUTE_CAPABILITY_MINOR_NV 0x4001
#endif

static void query_string(cl_device_id device, cl_device_info what, char *buf, size_t cap)
{
    buf[0] = '\0';
    if (clGetDeviceInfo(device, what, cap, buf, NULL) != CL_SUCCESS) buf[0] = '\0';
    buf[cap - 1] = '\0';
}

static facl_vendor vendor_of(const char *platform_name, const char *device_vendor)
{
    if (strstr(platform_name, "Portable Computing Language") || strstr(platform_name, "PoCL"))
        return FACL_VENDOR_POCL;
    if (strstr(device_vendor, "NVIDIA")) return FACL_VENDOR_NVIDIA;
    if (strstr(device_vendor, "Advanced Micro Devices") || strstr(device_vendor, "AMD"))
        return FACL_VENDOR_AMD;
    if (strstr(device_vendor, "Intel")) return FACL_VENDOR_INTEL;
    return FACL_VENDOR_OTHER;
}

static const char *const k_vendor_names[] = {"other", "nvidia", "amd", "intel", "pocl"};

const char *facl_vendor_name(facl_vendor vendor)
{
    return (unsigned)vendor < sizeof k_vendor_names / sizeof k_vendor_names[0]
               ? k_vendor_names[vendor]
               : "other";
}

int facl_vendor_from_name(const char *name)
{
    for (size_t i = 0; i < sizeof k_vendor_names / sizeof k_vendor_names[0]; ++i)
        if (strcmp(name, k_vendor_names[i]) == 0) return (int)i;
    return -1;
}

static const char *const k_path_names[] = {"portable-gpu", "portable-cpu", "nvidia-mma",
                                            "mma-emulated"};

const char *facl_kernel_path_name(facl_kernel_path path)
{
    return (unsigned)path < sizeof k_path_names / sizeof k_path_names[0] ? k_path_names[path]
                                                                         : "?";
}

int facl_kernel_path_from_name(const char *name)
{
    for (size_t i = 0; i < sizeof k_path_names / sizeof k_path_names[0]; ++i)
        if (strcmp(name, k_path_names[i]) == 0) return (int)i;
    return -1;
}

/* mma.sync.m16n8k16 with bf16 operands needs sm_80. */
int facl_device_has_nvidia_mma(const facl_device_profile *p)
{
    return p->vendor == FACL_VENDOR_NVIDIA && (p->type & CL_DEVICE_TYPE_GPU) &&
           p->nv_compute_major >= 8;
}

facl_status facl_device_profile_query(cl_device_id device, facl_device_profile *p)
{
    memset(p, 0, sizeof *p);
    cl_platform_id platform;
    cl_int err = clGetDeviceInfo(device, CL_DEVICE_PLATFORM, sizeof platform, &platform, NULL);
    if (err != CL_SUCCESS) return facl_fail_cl(err, "clGetDeviceInfo(CL_DEVICE_PLATFORM)");
    if (clGetPlatformInfo(platform, CL_PLATFORM_NAME, sizeof p->platform_name, p->platform_name,
                          NULL) != CL_SUCCESS)
        p->platform_name[0] = '\0';
    if (clGetPlatformInfo(platform, CL_PLATFORM_VERSION, sizeof p->platform_version,
                          p->platform_version, NULL) != CL_SUCCESS)
        p->platform_version[0] = '\0';
    p->platform_name[sizeof p->platform_name - 1] = '\0';
    p->platform_version[sizeof p->platform_version - 1] = '\0';

    char device_vendor[128];
    query_string(device, CL_DEVICE_NAME, p->device_name, sizeof p->device_name);
    query_string(device, CL_DEVICE_VERSION, p->device_version, sizeof p->device_version);
    query_string(device, CL_DRIVER_VERSION, p->driver_version, sizeof p->driver_version);
    query_string(device, CL_DEVICE_VENDOR, device_vendor, sizeof device_vendor);
    p->vendor = vendor_of(p->platform_name, device_vendor);

    cl_uint units = 0;
    cl_ulong local_mem = 0, global_mem = 0, max_alloc = 0;
    cl_uint float_width = 0;
    size_t max_wg = 0;
    err = clGetDeviceInfo(device, CL_DEVICE_TYPE, sizeof p->type, &p->type, NULL);
    if (err == CL_SUCCESS)
        err = clGetDeviceInfo(device, CL_DEVICE_MAX_COMPUTE_UNITS, sizeof units, &units, NULL);
    if (err == CL_SUCCESS)
        err = clGetDeviceInfo(device, CL_DEVICE_MAX_WORK_GROUP_SIZE, sizeof max_wg, &max_wg, NULL);
    if (err == CL_SUCCESS)
        err = clGetDeviceInfo(device, CL_DEVICE_LOCAL_MEM_SIZE, sizeof local_mem, &local_mem, NULL);
    if (err == CL_SUCCESS)
        err = clGetDeviceInfo(device, CL_DEVICE_GLOBAL_MEM_SIZE, sizeof global_mem, &global_mem, NULL);
    if (err == CL_SUCCESS)
        err = clGetDeviceInfo(device, CL_DEVICE_MAX_MEM_ALLOC_SIZE, sizeof max_alloc, &max_alloc, NULL);
    if (err == CL_SUCCESS)
        err = clGetDeviceInfo(device, CL_DEVICE_NATIVE_VECTOR_WIDTH_FLOAT, sizeof float_width,
                              &float_width, NULL);
    if (err != CL_SUCCESS) return facl_fail_cl(err, "clGetDeviceInfo");
    p->compute_units = units;
    p->max_work_group_size = max_wg;
    p->local_mem_reported = local_mem;
    /* The portable kernels size their static __local arrays within what the device
     * reports, minus a margin for the compiler's own local variables. */
    p->local_mem_usable = local_mem > 1024 ? local_mem - 1024 : local_mem;
    p->global_mem = global_mem;
    p->max_alloc = max_alloc;
    p->native_float_width = float_width;

    if (p->vendor == FACL_VENDOR_NVIDIA) {
        cl_uint major = 0, minor = 0;
        if (clGetDeviceInfo(device, CL_DEVICE_COMPUTE_CAPABILITY_MAJOR_NV, sizeof major, &major,
                            NULL) == CL_SUCCESS &&
            clGetDeviceInfo(device, CL_DEVICE_COMPUTE_CAPABILITY_MINOR_NV, sizeof minor, &minor,
                            NULL) == CL_SUCCESS) {
            p->nv_compute_major = (int)major;
            p->nv_compute_minor = (int)minor;
        }
    }
    facl_device_architecture(p, p->architecture, sizeof p->architecture);
    p->path = (p->type & CL_DEVICE_TYPE_CPU) ? FACL_PATH_PORTABLE_CPU : FACL_PATH_PORTABLE_GPU;
    return FACL_SUCCESS;
}
