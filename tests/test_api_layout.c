/* facl_struct_layout and facl_struct_field_name, the layout query that bindings check
 * their struct mirrors against, facl_struct_defaults, and facl_dtype_name. No device
 * needed.
 * The expected layouts come from offsetof/sizeof of this test's own compile of facl.h,
 * so the test checks the library's table against the header, field by field, and that
 * the table lists every field (the fields tile each struct, no gap a field could hide
 * in). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "facl.h"

typedef struct expected_field {
    const char *name;
    size_t offset, size;
} expected_field;

#define F(type, field) {#field, offsetof(type, field), sizeof(((type *)0)->field)}

static const expected_field tensor_fields[] = {
    F(facl_tensor, buffer), F(facl_tensor, offset), F(facl_tensor, dtype),
    F(facl_tensor, ndim),   F(facl_tensor, shape),  F(facl_tensor, stride), {NULL, 0, 0},
};
static const expected_field config_fields[] = {
    F(facl_context_config, struct_size), F(facl_context_config, reserved0),
    F(facl_context_config, cache_dir),   F(facl_context_config, cache_max_bytes),
    F(facl_context_config, kernel_path), F(facl_context_config, log),
    F(facl_context_config, log_user),    {NULL, 0, 0},
};
static const expected_field device_info_fields[] = {
    F(facl_device_info, struct_size),        F(facl_device_info, reserved0),
    F(facl_device_info, platform_name),      F(facl_device_info, device_name),
    F(facl_device_info, driver_version),     F(facl_device_info, device_type),
    F(facl_device_info, compute_units),      F(facl_device_info, native_half),
    F(facl_device_info, max_work_group_size), F(facl_device_info, local_mem_reported),
    F(facl_device_info, local_mem_usable),   F(facl_device_info, global_mem),
    F(facl_device_info, max_alloc),          F(facl_device_info, nv_compute_major),
    F(facl_device_info, nv_compute_minor),   F(facl_device_info, kernel_path),
    F(facl_device_info, kernel_path_reason), F(facl_device_info, cache_dir),
    F(facl_device_info, cache_note),         {NULL, 0, 0},
};
static const expected_field cache_stats_fields[] = {
    F(facl_cache_stats, struct_size),   F(facl_cache_stats, reserved0),
    F(facl_cache_stats, memory_hits),   F(facl_cache_stats, disk_hits),
    F(facl_cache_stats, source_builds), F(facl_cache_stats, disk_rejects),
    F(facl_cache_stats, disk_writes),   F(facl_cache_stats, disk_write_failures),
    F(facl_cache_stats, disk_evictions), {NULL, 0, 0},
};
static const expected_field options_fields[] = {
    F(facl_attn_options, struct_size),    F(facl_attn_options, softmax_scale),
    F(facl_attn_options, causal),         F(facl_attn_options, mask_align),
    F(facl_attn_options, window_left),    F(facl_attn_options, window_right),
    F(facl_attn_options, softcap),        F(facl_attn_options, dropout_p),
    F(facl_attn_options, alibi_slopes),   F(facl_attn_options, dropout_seed),
    F(facl_attn_options, dropout_offset), F(facl_attn_options, attn_probs),
    F(facl_attn_options, trust_cu_seqlens), F(facl_attn_options, deterministic),
    F(facl_attn_options, seqused_k),      F(facl_attn_options, block_table), {NULL, 0, 0},
};
static const expected_field prepare_fields[] = {
    F(facl_prepare_desc, struct_size),    F(facl_prepare_desc, dtype),
    F(facl_prepare_desc, head_dim),       F(facl_prepare_desc, varlen),
    F(facl_prepare_desc, unaligned_rows), F(facl_prepare_desc, reserved0),
    F(facl_prepare_desc, opts),           {NULL, 0, 0},
};
static const expected_field kvcache_fields[] = {
    F(facl_kvcache_args, struct_size),      F(facl_kvcache_args, num_splits),
    F(facl_kvcache_args, cache_seqlens),    F(facl_kvcache_args, cache_seqlens_value),
    F(facl_kvcache_args, rotary_interleaved), F(facl_kvcache_args, k_new),
    F(facl_kvcache_args, v_new),            F(facl_kvcache_args, rotary_cos),
    F(facl_kvcache_args, rotary_sin),       F(facl_kvcache_args, cache_batch_idx),
    F(facl_kvcache_args, cache_leftpad),    F(facl_kvcache_args, block_table),
    F(facl_kvcache_args, cu_seqlens_q),     F(facl_kvcache_args, max_seqlen_q),
    F(facl_kvcache_args, cu_seqlens_k_new), F(facl_kvcache_args, workspace), {NULL, 0, 0},
};
#undef F

typedef struct expected_struct {
    const char *name;
    size_t size;
    const expected_field *fields;
} expected_struct;

/* Every struct of facl.h. */
static const expected_struct structs[] = {
    {"facl_tensor", sizeof(facl_tensor), tensor_fields},
    {"facl_context_config", sizeof(facl_context_config), config_fields},
    {"facl_device_info", sizeof(facl_device_info), device_info_fields},
    {"facl_cache_stats", sizeof(facl_cache_stats), cache_stats_fields},
    {"facl_attn_options", sizeof(facl_attn_options), options_fields},
    {"facl_prepare_desc", sizeof(facl_prepare_desc), prepare_fields},
    {"facl_kvcache_args", sizeof(facl_kvcache_args), kvcache_fields},
};
#define N_STRUCTS (sizeof structs / sizeof structs[0])

/* Each field's offset and size, and the struct's own, as the header says. */
static void test_every_field_matches_the_header(void **state)
{
    (void)state;
    for (size_t s = 0; s < N_STRUCTS; ++s) {
        uint64_t off = 99, size = 0;
        assert_int_equal(facl_struct_layout(structs[s].name, NULL, &off, &size), FACL_SUCCESS);
        assert_int_equal(off, 0);
        assert_int_equal(size, structs[s].size);
        for (const expected_field *f = structs[s].fields; f->name; ++f) {
            off = size = UINT64_MAX;
            facl_status st = facl_struct_layout(structs[s].name, f->name, &off, &size);
            if (st != FACL_SUCCESS)
                fail_msg("%s.%s: %s", structs[s].name, f->name, facl_last_error());
            if (off != f->offset || size != f->size)
                fail_msg("%s.%s: library says offset %llu size %llu, header %zu and %zu",
                         structs[s].name, f->name, (unsigned long long)off,
                         (unsigned long long)size, f->offset, f->size);
        }
    }
}

/* The library lists the same structs and fields, in declaration order, and nothing else. */
static void test_listing_is_complete_and_ordered(void **state)
{
    (void)state;
    uint32_t n = 0;
    while (facl_struct_field_name(NULL, n)) {
        assert_true(n < N_STRUCTS);
        assert_string_equal(facl_struct_field_name(NULL, n), structs[n].name);
        ++n;
    }
    assert_int_equal(n, N_STRUCTS);
    for (size_t s = 0; s < N_STRUCTS; ++s) {
        uint32_t i = 0;
        for (const expected_field *f = structs[s].fields; f->name; ++f, ++i) {
            const char *name = facl_struct_field_name(structs[s].name, i);
            if (!name || strcmp(name, f->name) != 0)
                fail_msg("%s field %u: library lists %s, header %s", structs[s].name, i,
                         name ? name : "nothing", f->name);
        }
        assert_null(facl_struct_field_name(structs[s].name, i));
    }
    assert_null(facl_struct_field_name("facl_context", 0)); /* opaque, not a layout */
}

/* The fields tile each struct with no gap: a field missing from both lists (added to
 * facl.h and forgotten here and in src/layout.c) leaves a gap, or ends the listing short
 * of sizeof. facl.h promises structs without implicit padding (every field 4 or 8 bytes,
 * or a char array keeping the next 8-byte field aligned) on 64-bit platforms. */
static void test_fields_tile_each_struct(void **state)
{
    (void)state;
    if (sizeof(void *) != 8) skip(); /* pointers of 4 bytes change the padding */
    for (size_t s = 0; s < N_STRUCTS; ++s) {
        uint64_t end = 0;
        for (uint32_t i = 0; facl_struct_field_name(structs[s].name, i); ++i) {
            const char *name = facl_struct_field_name(structs[s].name, i);
            uint64_t off, size;
            assert_int_equal(facl_struct_layout(structs[s].name, name, &off, &size), FACL_SUCCESS);
            if (off != end)
                fail_msg("%s.%s starts at %llu, the previous field ends at %llu", structs[s].name,
                         name, (unsigned long long)off, (unsigned long long)end);
            end = off + size;
        }
        if (end != structs[s].size)
            fail_msg("%s: fields end at %llu of %zu bytes", structs[s].name,
                     (unsigned long long)end, structs[s].size);
    }
}

/* Unknown names and NULL pointers: a status and a message naming the argument; nothing
 * written. */
static void test_refusals(void **state)
{
    (void)state;
    uint64_t off = 7, size = 7;
    assert_int_equal(facl_struct_layout("facl_nothing", NULL, &off, &size), FACL_ERROR_INVALID_VALUE);
    assert_non_null(strstr(facl_last_error(), "struct_name: \"facl_nothing\""));
    assert_int_equal(facl_struct_layout("facl_tensor", "strides", &off, &size),
                     FACL_ERROR_INVALID_VALUE);
    assert_non_null(strstr(facl_last_error(), "field_name: facl_tensor has no field \"strides\""));
    assert_int_equal(off, 7);
    assert_int_equal(size, 7);
    assert_int_equal(facl_struct_layout(NULL, "shape", &off, &size), FACL_ERROR_NULL_ARGUMENT);
    assert_non_null(strstr(facl_last_error(), "struct_name"));
    assert_int_equal(facl_struct_layout("facl_tensor", "shape", NULL, &size), FACL_ERROR_NULL_ARGUMENT);
    assert_non_null(strstr(facl_last_error(), "offset"));
    assert_int_equal(facl_struct_layout("facl_tensor", "shape", &off, NULL), FACL_ERROR_NULL_ARGUMENT);
    assert_non_null(strstr(facl_last_error(), "size"));
    /* A success clears the previous message. */
    assert_int_equal(facl_struct_layout("facl_tensor", "shape", &off, &size), FACL_SUCCESS);
    assert_string_equal(facl_last_error(), "");
}

/* facl_struct_defaults gives each initialiser's bytes (compared with this test's own
 * expansion of the macro), struct_size = the size asked for, zeros past the library's
 * struct for a larger (newer) mirror, the known prefix for a smaller (older) one. */
#define CHECK_DEFAULTS(type, init)                                                        \
    do {                                                                                  \
        const type want = init;                                                           \
        unsigned char got[sizeof(type) + 16];                                             \
        memset(got, 0xAB, sizeof got);                                                    \
        assert_int_equal(facl_struct_defaults(#type, got, sizeof(type)), FACL_SUCCESS);    \
        assert_memory_equal(got, &want, sizeof(type));                                    \
        assert_int_equal(got[sizeof(type)], 0xAB); /* nothing past out_size */            \
        memset(got, 0xAB, sizeof got);                                                    \
        assert_int_equal(facl_struct_defaults(#type, got, sizeof(type) + 8), FACL_SUCCESS);\
        uint32_t size32;                                                                  \
        memcpy(&size32, got, sizeof size32);                                              \
        assert_int_equal(size32, sizeof(type) + 8);                                       \
        assert_memory_equal(got + 4, (const unsigned char *)&want + 4, sizeof(type) - 4); \
        for (size_t i = sizeof(type); i < sizeof(type) + 8; ++i) assert_int_equal(got[i], 0); \
        assert_int_equal(got[sizeof(type) + 8], 0xAB);                                    \
        memset(got, 0xAB, sizeof got);                                                    \
        assert_int_equal(facl_struct_defaults(#type, got, 8), FACL_SUCCESS);               \
        memcpy(&size32, got, sizeof size32);                                              \
        assert_int_equal(size32, 8);                                                      \
        assert_memory_equal(got + 4, (const unsigned char *)&want + 4, 4);                \
        assert_int_equal(got[8], 0xAB);                                                   \
    } while (0)

static void test_struct_defaults(void **state)
{
    (void)state;
    CHECK_DEFAULTS(facl_context_config, FACL_CONTEXT_CONFIG_INIT);
    CHECK_DEFAULTS(facl_device_info, FACL_DEVICE_INFO_INIT);
    CHECK_DEFAULTS(facl_cache_stats, FACL_CACHE_STATS_INIT);
    CHECK_DEFAULTS(facl_attn_options, FACL_ATTN_OPTIONS_INIT);
    CHECK_DEFAULTS(facl_prepare_desc, FACL_PREPARE_DESC_INIT);
    CHECK_DEFAULTS(facl_kvcache_args, FACL_KVCACHE_ARGS_INIT);
    /* the trap this exists for: rotary_interleaved defaults to 1, not 0 */
    facl_kvcache_args args;
    memset(&args, 0, sizeof args);
    assert_int_equal(facl_struct_defaults("facl_kvcache_args", &args, sizeof args), FACL_SUCCESS);
    assert_int_equal(args.rotary_interleaved, 1);

    unsigned char buf[64];
    assert_int_equal(facl_struct_defaults("facl_tensor", buf, sizeof(facl_tensor)),
                     FACL_ERROR_INVALID_VALUE);
    assert_non_null(strstr(facl_last_error(), "facl_tensor has no defaults"));
    assert_int_equal(facl_struct_defaults("facl_nothing", buf, 8), FACL_ERROR_INVALID_VALUE);
    assert_non_null(strstr(facl_last_error(), "\"facl_nothing\""));
    assert_int_equal(facl_struct_defaults("facl_attn_options", buf, 3), FACL_ERROR_INVALID_VALUE);
    assert_non_null(strstr(facl_last_error(), "out_size"));
    assert_int_equal(facl_struct_defaults(NULL, buf, 8), FACL_ERROR_NULL_ARGUMENT);
    assert_int_equal(facl_struct_defaults("facl_attn_options", NULL, 8), FACL_ERROR_NULL_ARGUMENT);
}

/* The names that messages print, and NULL for a value that is no dtype. */
static void test_dtype_names(void **state)
{
    (void)state;
    assert_string_equal(facl_dtype_name(FACL_DTYPE_F32), "fp32");
    assert_string_equal(facl_dtype_name(FACL_DTYPE_F16), "fp16");
    assert_string_equal(facl_dtype_name(FACL_DTYPE_BF16), "bf16");
    assert_string_equal(facl_dtype_name(FACL_DTYPE_I32), "int32");
    assert_null(facl_dtype_name((facl_dtype)4));
    assert_null(facl_dtype_name((facl_dtype)-1));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_field_matches_the_header),
        cmocka_unit_test(test_listing_is_complete_and_ordered),
        cmocka_unit_test(test_fields_tile_each_struct),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_dtype_names),
        cmocka_unit_test(test_struct_defaults),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
