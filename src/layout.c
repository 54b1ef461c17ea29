/* The layout of every public struct as this library was compiled, for bindings that
 * mirror the structs in another language (Python's ctypes, hand-written FFI): they
 * check their mirror against it at load time instead of trusting it. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "facl.h"
#include "status.h"

typedef struct layout_field {
    const char *name;
    size_t offset, size;
} layout_field;

typedef struct layout_struct {
    const char *name;
    size_t size;
    const layout_field *fields;
    size_t n_fields;
} layout_struct;

/* One entry per field, in declaration order. A field added to a struct in facl.h must be
 * added here too: tests/test_api_layout.c checks that the fields tile each struct. */
#define F(type, field) {#field, offsetof(type, field), sizeof(((type *)0)->field)}

static const layout_field tensor_fields[] = {
    F(facl_tensor, buffer), F(facl_tensor, offset), F(facl_tensor, dtype),
    F(facl_tensor, ndim),   F(facl_tensor, shape),  F(facl_tensor, stride),
};

static const layout_field config_fields[] = {
    F(facl_context_config, struct_size), F(facl_context_config, reserved0),
    F(facl_context_config, cache_dir),   F(facl_context_config, cache_max_bytes),
    F(facl_context_config, kernel_path), F(facl_context_config, log),
    F(facl_context_config, log_user),
};

static const layout_field device_info_fields[] = {
    F(facl_device_info, struct_size),        F(facl_device_info, reserved0),
    F(facl_device_info, platform_name),      F(facl_device_info, device_name),
    F(facl_device_info, driver_version),     F(facl_device_info, device_type),
    F(facl_device_info, compute_units),      F(facl_device_info, native_half),
    F(facl_device_info, max_work_group_size), F(facl_device_info, local_mem_reported),
    F(facl_device_info, local_mem_usable),   F(facl_device_info, global_mem),
    F(facl_device_info, max_alloc),          F(facl_device_info, nv_compute_major),
    F(facl_device_info, nv_compute_minor),   F(facl_device_info, kernel_path),
    F(facl_device_info, kernel_path_reason), F(facl_device_info, cache_dir),
    F(facl_device_info, cache_note),
};

static const layout_field cache_stats_fields[] = {
    F(facl_cache_stats, struct_size),  F(facl_cache_stats, reserved0),
    F(facl_cache_stats, memory_hits),  F(facl_cache_stats, disk_hits),
    F(facl_cache_stats, source_builds), F(facl_cache_stats, disk_rejects),
    F(facl_cache_stats, disk_writes),  F(facl_cache_stats, disk_write_failures),
    F(facl_cache_stats, disk_evictions),
};

static const layout_field options_fields[] = {
    F(facl_attn_options, struct_size),   F(facl_attn_options, softmax_scale),
    F(facl_attn_options, causal),        F(facl_attn_options, mask_align),
    F(facl_attn_options, window_left),   F(facl_attn_options, window_right),
    F(facl_attn_options, softcap),       F(facl_attn_options, dropout_p),
    F(facl_attn_options, alibi_slopes),  F(facl_attn_options, dropout_seed),
    F(facl_attn_options, dropout_offset), F(facl_attn_options, attn_probs),
    F(facl_attn_options, trust_cu_seqlens), F(facl_attn_options, deterministic),
    F(facl_attn_options, seqused_k),     F(facl_attn_options, block_table),
};

static const layout_field prepare_fields[] = {
    F(facl_prepare_desc, struct_size), F(facl_prepare_desc, dtype),
    F(facl_prepare_desc, head_dim),    F(facl_prepare_desc, varlen),
    F(facl_prepare_desc, unaligned_rows), F(facl_prepare_desc, reserved0),
    F(facl_prepare_desc, opts),
};

static const layout_field kvcache_fields[] = {
    F(facl_kvcache_args, struct_size),      F(facl_kvcache_args, num_splits),
    F(facl_kvcache_args, cache_seqlens),    F(facl_kvcache_args, cache_seqlens_value),
    F(facl_kvcache_args, rotary_interleaved), F(facl_kvcache_args, k_new),
    F(facl_kvcache_args, v_new),            F(facl_kvcache_args, rotary_cos),
    F(facl_kvcache_args, rotary_sin),       F(facl_kvcache_args, cache_batch_idx),
    F(facl_kvcache_args, cache_leftpad),    F(facl_kvcache_args, block_table),
    F(facl_kvcache_args, cu_seqlens_q),     F(facl_kvcache_args, max_seqlen_q),
    F(facl_kvcache_args, cu_seqlens_k_new), F(facl_kvcache_args, workspace),
};

#undef F

#define S(type, fields) {#type, sizeof(type), fields, sizeof fields / sizeof fields[0]}

static const layout_struct structs[] = {
    S(facl_tensor, tensor_fields),
    S(facl_context_config, config_fields),
    S(facl_device_info, device_info_fields),
    S(facl_cache_stats, cache_stats_fields),
    S(facl_attn_options, options_fields),
    S(facl_prepare_desc, prepare_fields),
    S(facl_kvcache_args, kvcache_fields),
};

#undef S

#define N_STRUCTS (sizeof structs / sizeof structs[0])

static const layout_struct *find_struct(const char *name)
{
    for (size_t i = 0; name && i < N_STRUCTS; ++i)
        if (strcmp(structs[i].name, name) == 0) return &structs[i];
    return NULL;
}

facl_status facl_struct_layout(const char *struct_name, const char *field_name, uint64_t *offset,
                               uint64_t *size)
{
    facl_error_clear();
    if (!struct_name) return facl_fail(FACL_ERROR_NULL_ARGUMENT, "struct_name: NULL");
    if (!offset) return facl_fail(FACL_ERROR_NULL_ARGUMENT, "offset: NULL");
    if (!size) return facl_fail(FACL_ERROR_NULL_ARGUMENT, "size: NULL");
    const layout_struct *s = find_struct(struct_name);
    if (!s)
        return facl_fail(FACL_ERROR_INVALID_VALUE, "struct_name: \"%s\" is not a struct of facl %s",
                         struct_name, FACL_VERSION_STRING);
    if (!field_name) {
        *offset = 0;
        *size = s->size;
        return FACL_SUCCESS;
    }
    for (size_t i = 0; i < s->n_fields; ++i) {
        if (strcmp(s->fields[i].name, field_name) == 0) {
            *offset = s->fields[i].offset;
            *size = s->fields[i].size;
            return FACL_SUCCESS;
        }
    }
    return facl_fail(FACL_ERROR_INVALID_VALUE, "field_name: %s has no field \"%s\" in facl %s",
                     struct_name, field_name, FACL_VERSION_STRING);
}

const char *facl_struct_field_name(const char *struct_name, uint32_t index)
{
    if (!struct_name) return index < N_STRUCTS ? structs[index].name : NULL;
    const layout_struct *s = find_struct(struct_name);
    return s && index < s->n_fields ? s->fields[index].name : NULL;
}

/* The initialisers' values, for bindings that cannot use the FACL_..._INIT macros: a
 * hand-made copy of a default drifts (a zeroed facl_kvcache_args would mean GPT-NeoX
 * rotary: rotary_interleaved's default is 1). */
facl_status facl_struct_defaults(const char *struct_name, void *out, uint64_t out_size)
{
    facl_error_clear();
    if (!struct_name) return facl_fail(FACL_ERROR_NULL_ARGUMENT, "struct_name: NULL");
    if (!out) return facl_fail(FACL_ERROR_NULL_ARGUMENT, "out: NULL");
    const facl_context_config config = FACL_CONTEXT_CONFIG_INIT;
    const facl_device_info info = FACL_DEVICE_INFO_INIT;
    const facl_cache_stats stats = FACL_CACHE_STATS_INIT;
    const facl_attn_options options = FACL_ATTN_OPTIONS_INIT;
    const facl_prepare_desc prepare = FACL_PREPARE_DESC_INIT;
    const facl_kvcache_args kvcache = FACL_KVCACHE_ARGS_INIT;
    const struct {
        const char *name;
        const void *value;
        size_t size;
    } defaults[] = {
        {"facl_context_config", &config, sizeof config},
        {"facl_device_info", &info, sizeof info},
        {"facl_cache_stats", &stats, sizeof stats},
        {"facl_attn_options", &options, sizeof options},
        {"facl_prepare_desc", &prepare, sizeof prepare},
        {"facl_kvcache_args", &kvcache, sizeof kvcache},
    };
    for (size_t i = 0; i < sizeof defaults / sizeof defaults[0]; ++i) {
        if (strcmp(defaults[i].name, struct_name) != 0) continue;
        if (out_size < sizeof(uint32_t) || out_size > UINT32_MAX)
            return facl_fail(FACL_ERROR_INVALID_VALUE,
                             "out_size: %llu bytes cannot hold %s's struct_size (4 to 2^32 - 1)",
                             (unsigned long long)out_size, struct_name);
        /* the known part, then zeros for fields a newer header has and this library
         * does not know (the library refuses them unless they are zero) */
        const size_t known = out_size < defaults[i].size ? (size_t)out_size : defaults[i].size;
        memcpy(out, defaults[i].value, known);
        if (out_size > known) memset((char *)out + known, 0, (size_t)out_size - known);
        const uint32_t size32 = (uint32_t)out_size; /* every growable struct starts with it */
        memcpy(out, &size32, sizeof size32);
        return FACL_SUCCESS;
    }
    if (find_struct(struct_name))
        return facl_fail(FACL_ERROR_INVALID_VALUE,
                         "struct_name: %s has no defaults (it does not grow; facl_tensor_contiguous "
                         "makes a facl_tensor)", struct_name);
    return facl_fail(FACL_ERROR_INVALID_VALUE, "struct_name: \"%s\" is not a struct of facl %s",
                     struct_name, FACL_VERSION_STRING);
}
