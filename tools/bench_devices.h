/*
 * OpenCL platform and device enumeration for the tools, numbered exactly as the
 * library's "P:D" selector numbers them (clGetPlatformIDs order, then
 * clGetDeviceIDs(CL_DEVICE_TYPE_ALL) order), so that what `facl-selftest -l` prints can
 * be passed to -d, to FACL_DEVICE and to facl_context_create.
 */
#ifndef FACL_TOOLS_BENCH_DEVICES_H
#define FACL_TOOLS_BENCH_DEVICES_H

#include <stddef.h>
#include <stdio.h>

#include "facl.h"

typedef struct tool_device {
    unsigned platform_index, device_index;
    cl_device_id id;
    cl_device_type type;
    char selector[32]; /* "P:D" */
    char platform_name[128];
    char device_name[128];
    char device_version[96];
    char driver_version[64];
} tool_device;

typedef struct tool_device_list {
    tool_device *items;
    size_t count;
    unsigned platform_count;
    char error[256]; /* set when clGetPlatformIDs failed */
} tool_device_list;

/* Fills `list` (free with tool_devices_free). Returns 0, or -1 when there is no
 * platform at all (list->error says why). A platform whose devices cannot be listed
 * contributes none. */
int tool_devices_enumerate(tool_device_list *list);
void tool_devices_free(tool_device_list *list);

/* The index in list->items of the device `selector` names, resolved by the library
 * (facl_select_device: "P:D", a name substring, NULL for FACL_DEVICE or the default);
 * -1 if none. */
long tool_devices_find(const tool_device_list *list, const char *selector);

/* clinfo -l style listing of every platform and its devices; errors shown in place.
 * Returns the number of devices listed. */
size_t tool_devices_print(FILE *f);

/* "GPU", "CPU", "accelerator", ... */
const char *tool_device_type_name(cl_device_type type);

/* A static name for an OpenCL error code ("CL_OUT_OF_RESOURCES"). */
const char *tool_cl_error_name(cl_int err);

#endif
