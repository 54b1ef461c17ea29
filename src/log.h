/* The context's log callback (facl_context_config.log): what the library decided, for
 * applications that want to know (kernel path, probe results, cache hits, compiles). */
#ifndef FACL_LOG_H
#define FACL_LOG_H

#include "facl.h"

typedef struct facl_logger {
    facl_log_fn fn; /* NULL = nobody listens: nothing is formatted */
    void *user;
} facl_logger;

/* Format and deliver one message. Callers must not hold any lock of the library. */
void facl_log(const facl_logger *logger, facl_log_kind kind, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

#endif
