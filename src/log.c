/* Delivery of log messages to the application's callback. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>

void facl_log(const facl_logger *logger, facl_log_kind kind, const char *fmt, ...)
{
    if (!logger || !logger->fn) return;
    char message[1024];
    va_list args;
    va_start(args, fmt);
    vsnprintf(message, sizeof message, fmt, args);
    va_end(args);
    logger->fn(logger->user, (int32_t)kind, message);
}
