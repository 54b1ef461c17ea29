/* Public structs that grow: each starts with uint32_t struct_size (facl.h, "Growing
 * structs"). These two functions are the only places that interpret it. */
#ifndef FACL_STRUCT_SIZE_H
#define FACL_STRUCT_SIZE_H

#include <stddef.h>
#include <stdint.h>

#include "facl.h"

/* Where a field of a struct ends: the sizes an older version of it can have. */
#define FACL_FIELD_END(type, field) (offsetof(type, field) + sizeof(((type *)0)->field))

/* Input struct: copy the caller's `given_size` bytes over `out` (which holds the
 * defaults, `out_size` bytes). given_size must be out_size, larger, or one of
 * `field_ends` (the end of a field: an older version never ends inside one). Fields
 * past given_size keep their defaults; bytes the caller has past out_size (a newer
 * header) must be zero, or the call is refused: a field this library does not know is
 * never silently ignored. */
facl_status facl_read_struct(const char *name, const void *given, uint32_t given_size, void *out,
                             size_t out_size, const size_t *field_ends, size_t n_field_ends);

/* Output struct: copy as much of `full` (full_size bytes) as the caller's struct
 * holds (out_size, from its struct_size), keeping the caller's struct_size. */
facl_status facl_write_struct(const char *name, const void *full, size_t full_size, void *out,
                              uint32_t out_size);

#endif
