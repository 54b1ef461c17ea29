/* struct_size handling of the growable public structs. */
#include "struct_size.h"

#include <string.h>

#include "status.h"

/* Every version of a growable struct holds at least struct_size and one more field and
 * ends on a 4-byte boundary (all fields are 4 or 8 bytes), so a size that does not is
 * not a struct_size but garbage or a missing initialiser. */
static facl_status check_size(const char *name, uint32_t size)
{
    if (size >= 8 && size % 4 == 0) return FACL_SUCCESS;
    return facl_fail(FACL_ERROR_INVALID_VALUE,
                     "%s->struct_size: %u is not the size of any version of this struct "
                     "(initialise it with its FACL_..._INIT macro)",
                     name, (unsigned)size);
}

facl_status facl_read_struct(const char *name, const void *given, uint32_t given_size, void *out,
                             size_t out_size, const size_t *field_ends, size_t n_field_ends)
{
    facl_status st = check_size(name, given_size);
    if (st != FACL_SUCCESS) return st;
    int known = given_size >= out_size;
    for (size_t i = 0; i < n_field_ends && !known; ++i) known = field_ends[i] == given_size;
    if (!known)
        return facl_fail(FACL_ERROR_INVALID_VALUE,
                         "%s->struct_size: %u ends inside a field: not the size of any version "
                         "of this struct",
                         name, (unsigned)given_size);
    const unsigned char *bytes = given;
    for (size_t i = out_size; i < given_size; ++i)
        if (bytes[i] != 0)
            return facl_fail(FACL_ERROR_UNSUPPORTED,
                             "%s: sets fields beyond the %zu bytes this library (facl %s) knows "
                             "(struct_size %u: built against a newer facl.h?)",
                             name, out_size, FACL_VERSION_STRING, (unsigned)given_size);
    memcpy(out, given, given_size < out_size ? given_size : out_size);
    return FACL_SUCCESS;
}

facl_status facl_write_struct(const char *name, const void *full, size_t full_size, void *out,
                              uint32_t out_size)
{
    facl_status st = check_size(name, out_size);
    if (st != FACL_SUCCESS) return st;
    const size_t n = out_size < full_size ? out_size : full_size;
    memcpy(out, full, n);
    memcpy(out, &out_size, sizeof out_size); /* struct_size stays the caller's */
    return FACL_SUCCESS;
}
