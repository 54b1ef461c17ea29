/* Per-thread error reporting: every failing entry point records a message here and
 * returns the status, so callers get details without the library ever printing. */
#ifndef FACL_STATUS_H
#define FACL_STATUS_H

#include "facl.h"

/* Record a formatted message for this thread and return `status` (for `return fail(...)`). */
facl_status facl_fail(facl_status status, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* Record an OpenCL failure: "<what>: <CL error name> (<code>)"; returns the CL code. */
facl_status facl_fail_cl(cl_int err, const char *what);

/* Append text to this thread's message (used to attach build logs). */
void facl_error_append(const char *text);

/* Clear this thread's message at the start of every entry point. */
void facl_error_clear(void);

#endif
