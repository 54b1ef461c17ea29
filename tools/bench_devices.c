/* Platform and device enumeration for the tools (see bench_devices.h). */
#include "bench_devices.h"

#include <stdlib.h>
#include <string.h>

/* The library's own limits (src/device_select.c); the tools must number alike. */
#define MAX_PLATFORMS 16
#define MAX_DEVICES 64

const char *tool_cl_error_name(cl_int err)
{
    /* The ICD loader's "no platform at all", which facl_status_string does not name. */
    if (err == -1001) return "CL_PLATFORM_NOT_FOUND_KHR";
    const char *name = facl_status_string((facl_status)err);
    if (strcmp(name, "FACL_UNKNOWN_STATUS") != 0 && strcmp(name, "CL_UNKNOWN_ERROR") != 0)
        return name;
    static char unknown[32]; /* the tools are single-threaded */
    snprintf(unknown, sizeof unknown, "OpenCL error %d", (int)err);
    return unknown;
}

const char *tool_device_type_name(cl_device_type type)
{
    if (type & CL_DEVICE_TYPE_GPU) return "GPU";
    if (type & CL_DEVICE_TYPE_CPU) return "CPU";
    if (type & CL_DEVICE_TYPE_ACCELERATOR) return "accelerator";
    return "other";
}

static void platform_string(cl_platform_id p, cl_platform_info what, char *buf, size_t size)
{
    buf[0] = '\0';
    if (clGetPlatformInfo(p, what, size - 1, buf, NULL) != CL_SUCCESS) snprintf(buf, size, "?");
    buf[size - 1] = '\0';
}

static void device_string(cl_device_id d, cl_device_info what, char *buf, size_t size)
{
    buf[0] = '\0';
    if (clGetDeviceInfo(d, what, size - 1, buf, NULL) != CL_SUCCESS) snprintf(buf, size, "?");
    buf[size - 1] = '\0';
}

static cl_int get_platforms(cl_platform_id *platforms, cl_uint *count)
{
    *count = 0;
    cl_int err = clGetPlatformIDs(MAX_PLATFORMS, platforms, count);
    if (*count > MAX_PLATFORMS) *count = MAX_PLATFORMS;
    return err;
}

static cl_int get_devices(cl_platform_id platform, cl_device_id *devices, cl_uint *count)
{
    *count = 0;
    cl_int err = clGetDeviceIDs(platform, CL_DEVICE_TYPE_ALL, MAX_DEVICES, devices, count);
    if (err != CL_SUCCESS) *count = 0;
    if (*count > MAX_DEVICES) *count = MAX_DEVICES;
    return err;
}

int tool_devices_enumerate(tool_device_list *list)
{
    memset(list, 0, sizeof *list);
    cl_platform_id platforms[MAX_PLATFORMS];
    cl_uint np;
    cl_int err = get_platforms(platforms, &np);
    if (err != CL_SUCCESS || np == 0) {
        snprintf(list->error, sizeof list->error, "no OpenCL platform found (%s)",
                 err == CL_SUCCESS ? "the ICD loader lists none" : tool_cl_error_name(err));
        return -1;
    }
    list->platform_count = np;
    list->items = calloc((size_t)np * MAX_DEVICES, sizeof *list->items);
    if (!list->items) {
        snprintf(list->error, sizeof list->error, "out of host memory");
        return -1;
    }
    for (cl_uint p = 0; p < np; ++p) {
        cl_device_id devices[MAX_DEVICES];
        cl_uint nd;
        get_devices(platforms[p], devices, &nd);
        for (cl_uint d = 0; d < nd; ++d) {
            tool_device *t = &list->items[list->count++];
            t->platform_index = p;
            t->device_index = d;
            t->id = devices[d];
            snprintf(t->selector, sizeof t->selector, "%u:%u", p, d);
            platform_string(platforms[p], CL_PLATFORM_NAME, t->platform_name,
                            sizeof t->platform_name);
            device_string(devices[d], CL_DEVICE_NAME, t->device_name, sizeof t->device_name);
            device_string(devices[d], CL_DEVICE_VERSION, t->device_version,
                          sizeof t->device_version);
            device_string(devices[d], CL_DRIVER_VERSION, t->driver_version,
                          sizeof t->driver_version);
            if (clGetDeviceInfo(devices[d], CL_DEVICE_TYPE, sizeof t->type, &t->type, NULL) !=
                CL_SUCCESS)
                t->type = 0;
        }
    }
    return 0;
}

void tool_devices_free(tool_device_list *list)
{
    free(list->items);
    memset(list, 0, sizeof *list);
}

/* The library resolves the selector, so -d and FACL_DEVICE can never disagree. */
long tool_devices_find(const tool_device_list *list, const char *selector)
{
    cl_device_id chosen;
    if (facl_select_device(selector, &chosen) != FACL_SUCCESS) return -1;
    for (size_t i = 0; i < list->count; ++i)
        if (list->items[i].id == chosen) return (long)i;
    return -1;
}

size_t tool_devices_print(FILE *f)
{
    size_t listed = 0;
    cl_platform_id platforms[MAX_PLATFORMS];
    cl_uint np;
    cl_int err = get_platforms(platforms, &np);
    if (err != CL_SUCCESS || np == 0) {
        fprintf(f, "no OpenCL platform found (%s)\n",
                err == CL_SUCCESS ? "the ICD loader lists none" : tool_cl_error_name(err));
        return 0;
    }
    for (cl_uint p = 0; p < np; ++p) {
        char name[128], version[128];
        platform_string(platforms[p], CL_PLATFORM_NAME, name, sizeof name);
        platform_string(platforms[p], CL_PLATFORM_VERSION, version, sizeof version);
        fprintf(f, "Platform %u: %s (%s)\n", p, name, version);
        cl_device_id devices[MAX_DEVICES];
        cl_uint nd;
        err = get_devices(platforms[p], devices, &nd);
        if (err != CL_SUCCESS) {
            /* Shown in place, as clinfo does; the other platforms still list. */
            fprintf(f, "  (no devices: %s)\n", tool_cl_error_name(err));
            continue;
        }
        for (cl_uint d = 0; d < nd; ++d) {
            char dname[128], dversion[96];
            cl_device_type type = 0;
            device_string(devices[d], CL_DEVICE_NAME, dname, sizeof dname);
            device_string(devices[d], CL_DEVICE_VERSION, dversion, sizeof dversion);
            clGetDeviceInfo(devices[d], CL_DEVICE_TYPE, sizeof type, &type, NULL);
            fprintf(f, "  %u:%u  %-4s %s (%s)\n", p, d, tool_device_type_name(type), dname,
                    dversion);
            ++listed;
        }
    }
    return listed;
}
