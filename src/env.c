/* secure_getenv is a GNU extension: ask for it here only. */
#define _GNU_SOURCE 1
#include "env.h"

#include <stdlib.h>

const char *facl_getenv(const char *name)
{
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 17))
    return secure_getenv(name);
#else
    return getenv(name);
#endif
}
