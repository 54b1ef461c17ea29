/* Device selection: "P:D" indices, a name substring, or the default (first GPU, else
 * first CPU/accelerator). The FACL_DEVICE environment variable stands in for an empty
 * selector so that an application can be pointed at a device without a rebuild. */
#include "facl.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "env.h"
#include "status.h"

#define MAX_PLATFORMS 16
#define MAX_DEVICES 64

static int contains_ignoring_case(const char *haystack, const char *needle)
{
    size_t n = strlen(needle);
    for (; *haystack; ++haystack) {
        size_t i = 0;
        while (i < n && haystack[i] &&
               tolower((unsigned char)haystack[i]) == tolower((unsigned char)needle[i]))
            ++i;
        if (i == n) return 1;
    }
    return n == 0;
}

/* "P:D" with two non-negative integers and nothing else. */
static int parse_indices(const char *s, unsigned *platform, unsigned *device)
{
    char *end;
    if (!isdigit((unsigned char)s[0])) return 0;
    unsigned long p = strtoul(s, &end, 10);
    if (*end != ':' || !isdigit((unsigned char)end[1])) return 0;
    unsigned long d = strtoul(end + 1, &end, 10);
    if (*end != '\0') return 0;
    *platform = (unsigned)p;
    *device = (unsigned)d;
    return 1;
}

static cl_uint platform_devices(cl_platform_id platform, cl_device_id *devices)
{
    cl_uint n = 0;
    if (clGetDeviceIDs(platform, CL_DEVICE_TYPE_ALL, MAX_DEVICES, devices, &n) != CL_SUCCESS)
        return 0;
    return n > MAX_DEVICES ? MAX_DEVICES : n;
}

static int device_matches_name(cl_platform_id platform, cl_device_id device, const char *needle)
{
    char platform_name[256] = "", device_name[256] = "";
    clGetPlatformInfo(platform, CL_PLATFORM_NAME, sizeof platform_name - 1, platform_name, NULL);
    clGetDeviceInfo(device, CL_DEVICE_NAME, sizeof device_name - 1, device_name, NULL);
    return contains_ignoring_case(device_name, needle) ||
           contains_ignoring_case(platform_name, needle);
}

facl_status facl_select_device(const char *selector, cl_device_id *out)
{
    facl_error_clear();
    if (!out) return facl_fail(FACL_ERROR_NULL_ARGUMENT, "device: NULL");
    if (!selector || !*selector) selector = facl_getenv("FACL_DEVICE");
    if (selector && !*selector) selector = NULL;

    cl_platform_id platforms[MAX_PLATFORMS];
    cl_uint num_platforms = 0;
    cl_int err = clGetPlatformIDs(MAX_PLATFORMS, platforms, &num_platforms);
    if (err == -1001 /* CL_PLATFORM_NOT_FOUND_KHR: no ICD at all */ || num_platforms == 0)
        return facl_fail(FACL_ERROR_NO_DEVICE, "no OpenCL platform found (is an ICD installed?)");
    if (err != CL_SUCCESS) return facl_fail_cl(err, "clGetPlatformIDs");
    if (num_platforms > MAX_PLATFORMS) num_platforms = MAX_PLATFORMS;

    unsigned want_platform, want_device;
    if (selector && parse_indices(selector, &want_platform, &want_device)) {
        cl_device_id devices[MAX_DEVICES];
        cl_uint n = want_platform < num_platforms ? platform_devices(platforms[want_platform], devices) : 0;
        if (want_device >= n)
            return facl_fail(FACL_ERROR_NO_DEVICE, "device selector '%s': no device %u on platform %u",
                             selector, want_device, want_platform);
        *out = devices[want_device];
        return FACL_SUCCESS;
    }

    cl_device_id fallback = NULL;
    for (cl_uint p = 0; p < num_platforms; ++p) {
        cl_device_id devices[MAX_DEVICES];
        cl_uint n = platform_devices(platforms[p], devices);
        for (cl_uint d = 0; d < n; ++d) {
            if (selector) {
                if (device_matches_name(platforms[p], devices[d], selector)) {
                    *out = devices[d];
                    return FACL_SUCCESS;
                }
                continue;
            }
            cl_device_type type = 0;
            clGetDeviceInfo(devices[d], CL_DEVICE_TYPE, sizeof type, &type, NULL);
            if (type & CL_DEVICE_TYPE_GPU) {
                *out = devices[d];
                return FACL_SUCCESS;
            }
            if (!fallback) fallback = devices[d];
        }
    }
    if (!selector && fallback) {
        *out = fallback;
        return FACL_SUCCESS;
    }
    return facl_fail(FACL_ERROR_NO_DEVICE, selector ? "no OpenCL device matches '%s'" : "%s",
                     selector ? selector : "no OpenCL device found");
}
