/* Status names, the per-thread last-error message and the version calls. */
#include "status.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* Large enough for a build log excerpt; longer logs are cut, never overflowed. */
#define MESSAGE_CAP 8192
static _Thread_local char thread_message[MESSAGE_CAP];

unsigned facl_version_number(void) { return FACL_VERSION_NUMBER; }
const char *facl_version_string(void) { return FACL_VERSION_STRING; }

const char *facl_last_error(void) { return thread_message; }

void facl_error_clear(void) { thread_message[0] = '\0'; }

void facl_error_append(const char *text)
{
    size_t used = strlen(thread_message);
    if (used + 1 >= MESSAGE_CAP || text == NULL) return;
    snprintf(thread_message + used, MESSAGE_CAP - used, "%s", text);
}

facl_status facl_fail(facl_status status, const char *fmt, ...)
{
    va_list args;
    va_start(args, fmt);
    vsnprintf(thread_message, MESSAGE_CAP, fmt, args);
    va_end(args);
    return status;
}

static const char *cl_error_name(cl_int err)
{
    switch (err) {
#define NAME(x) case x: return #x
        NAME(CL_DEVICE_NOT_FOUND); NAME(CL_DEVICE_NOT_AVAILABLE);
        NAME(CL_COMPILER_NOT_AVAILABLE); NAME(CL_MEM_OBJECT_ALLOCATION_FAILURE);
        NAME(CL_OUT_OF_RESOURCES); NAME(CL_OUT_OF_HOST_MEMORY);
        NAME(CL_PROFILING_INFO_NOT_AVAILABLE); NAME(CL_MEM_COPY_OVERLAP);
        NAME(CL_IMAGE_FORMAT_MISMATCH); NAME(CL_IMAGE_FORMAT_NOT_SUPPORTED);
        NAME(CL_BUILD_PROGRAM_FAILURE); NAME(CL_MAP_FAILURE);
        NAME(CL_MISALIGNED_SUB_BUFFER_OFFSET);
        NAME(CL_EXEC_STATUS_ERROR_FOR_EVENTS_IN_WAIT_LIST);
        NAME(CL_COMPILE_PROGRAM_FAILURE); NAME(CL_LINKER_NOT_AVAILABLE);
        NAME(CL_LINK_PROGRAM_FAILURE); NAME(CL_DEVICE_PARTITION_FAILED);
        NAME(CL_KERNEL_ARG_INFO_NOT_AVAILABLE); NAME(CL_INVALID_VALUE);
        NAME(CL_INVALID_DEVICE_TYPE); NAME(CL_INVALID_PLATFORM); NAME(CL_INVALID_DEVICE);
        NAME(CL_INVALID_CONTEXT); NAME(CL_INVALID_QUEUE_PROPERTIES);
        NAME(CL_INVALID_COMMAND_QUEUE); NAME(CL_INVALID_HOST_PTR);
        NAME(CL_INVALID_MEM_OBJECT); NAME(CL_INVALID_IMAGE_FORMAT_DESCRIPTOR);
        NAME(CL_INVALID_IMAGE_SIZE); NAME(CL_INVALID_SAMPLER); NAME(CL_INVALID_BINARY);
        NAME(CL_INVALID_BUILD_OPTIONS); NAME(CL_INVALID_PROGRAM);
        NAME(CL_INVALID_PROGRAM_EXECUTABLE); NAME(CL_INVALID_KERNEL_NAME);
        NAME(CL_INVALID_KERNEL_DEFINITION); NAME(CL_INVALID_KERNEL);
        NAME(CL_INVALID_ARG_INDEX); NAME(CL_INVALID_ARG_VALUE); NAME(CL_INVALID_ARG_SIZE);
        NAME(CL_INVALID_KERNEL_ARGS); NAME(CL_INVALID_WORK_DIMENSION);
        NAME(CL_INVALID_WORK_GROUP_SIZE); NAME(CL_INVALID_WORK_ITEM_SIZE);
        NAME(CL_INVALID_GLOBAL_OFFSET); NAME(CL_INVALID_EVENT_WAIT_LIST);
        NAME(CL_INVALID_EVENT); NAME(CL_INVALID_OPERATION); NAME(CL_INVALID_GL_OBJECT);
        NAME(CL_INVALID_BUFFER_SIZE); NAME(CL_INVALID_MIP_LEVEL);
        NAME(CL_INVALID_GLOBAL_WORK_SIZE); NAME(CL_INVALID_PROPERTY);
        NAME(CL_INVALID_IMAGE_DESCRIPTOR); NAME(CL_INVALID_COMPILER_OPTIONS);
        NAME(CL_INVALID_LINKER_OPTIONS); NAME(CL_INVALID_DEVICE_PARTITION_COUNT);
#undef NAME
    default: return "CL_UNKNOWN_ERROR";
    }
}

facl_status facl_fail_cl(cl_int err, const char *what)
{
    return facl_fail((facl_status)err, "%s: %s (%d)", what, cl_error_name(err), (int)err);
}

const char *facl_status_string(facl_status status)
{
    switch (status) {
    case FACL_SUCCESS: return "FACL_SUCCESS";
    case FACL_ERROR_NULL_ARGUMENT: return "FACL_ERROR_NULL_ARGUMENT";
    case FACL_ERROR_INVALID_DTYPE: return "FACL_ERROR_INVALID_DTYPE";
    case FACL_ERROR_INVALID_SHAPE: return "FACL_ERROR_INVALID_SHAPE";
    case FACL_ERROR_INVALID_HEAD_DIM: return "FACL_ERROR_INVALID_HEAD_DIM";
    case FACL_ERROR_INVALID_HEADS: return "FACL_ERROR_INVALID_HEADS";
    case FACL_ERROR_INVALID_STRIDE: return "FACL_ERROR_INVALID_STRIDE";
    case FACL_ERROR_BUFFER_TOO_SMALL: return "FACL_ERROR_BUFFER_TOO_SMALL";
    case FACL_ERROR_SIZE_OVERFLOW: return "FACL_ERROR_SIZE_OVERFLOW";
    case FACL_ERROR_INVALID_VALUE: return "FACL_ERROR_INVALID_VALUE";
    case FACL_ERROR_INVALID_SEQLENS: return "FACL_ERROR_INVALID_SEQLENS";
    case FACL_ERROR_UNSUPPORTED: return "FACL_ERROR_UNSUPPORTED";
    case FACL_ERROR_NO_DEVICE: return "FACL_ERROR_NO_DEVICE";
    case FACL_ERROR_BUILD_FAILED: return "FACL_ERROR_BUILD_FAILED";
    case FACL_ERROR_OUT_OF_HOST_MEMORY: return "FACL_ERROR_OUT_OF_HOST_MEMORY";
    case FACL_ERROR_INVALID_CONTEXT: return "FACL_ERROR_INVALID_CONTEXT";
    }
    if ((int)status < 0 && (int)status > -1000) return cl_error_name((cl_int)status);
    return "FACL_UNKNOWN_STATUS";
}
