/* The tensor copy engine's map layouts (src/tensor_map.c) without a device: the views the
 * engine can read and how its dims and byte strides come out of them, the views it
 * cannot (each with its reason), and the encoder's refusal where there is no NVIDIA
 * device. The maps themselves are checked on the H200 (tools/probes/tma_probe.c; the
 * forward suites with FACL_FWD_WGMMA_WS). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "status.h"
#include "tensor_map.h"

static facl_view view(int64_t offset, int64_t sb, int64_t ss, int64_t sh)
{
    facl_view v = {NULL, offset, sb, ss, sh};
    return v;
}

/* (batch 3, rows 100, heads 4, d 128) in the row-major (b, s, h, d) layout */
static void test_dense_layout(void **state)
{
    (void)state;
    const facl_view v = view(0, 100 * 4 * 128, 4 * 128, 128);
    facl_tensor_map_layout l;
    assert_null(facl_tensor_map_layout_of(&v, 128, 100, 4, 3, &l));
    const uint64_t dims[4] = {128, 100, 4, 3}, strides[3] = {4 * 128 * 2, 128 * 2, 100 * 4 * 128 * 2};
    assert_memory_equal(l.dims, dims, sizeof dims);
    assert_memory_equal(l.strides, strides, sizeof strides);
    assert_int_equal(l.offset_bytes, 0);
}

/* heads outermost (b, h, s, d), an offset, a row pitch wider than the head dim, and a
 * head dim short of the 64-value box (the engine pads the box with zeros) */
static void test_strided_layout(void **state)
{
    (void)state;
    const facl_view v = view(64, 2 * 1000 * 96, 96, 1000 * 96);
    facl_tensor_map_layout l;
    assert_null(facl_tensor_map_layout_of(&v, 40, 1000, 2, 5, &l));
    const uint64_t dims[4] = {40, 1000, 2, 5}, strides[3] = {96 * 2, 1000 * 96 * 2, 2 * 1000 * 96 * 2};
    assert_memory_equal(l.dims, dims, sizeof dims);
    assert_memory_equal(l.strides, strides, sizeof strides);
    assert_int_equal(l.offset_bytes, 128);
}

/* an extent-1 dimension takes any stride (zero, odd, huge): the engine never steps it */
static void test_extent_one_strides(void **state)
{
    (void)state;
    const facl_view v = view(0, 3, 0, -7);
    facl_tensor_map_layout l;
    assert_null(facl_tensor_map_layout_of(&v, 64, 1, 1, 1, &l));
    const uint64_t strides[3] = {16, 16, 16};
    assert_memory_equal(l.strides, strides, sizeof strides);
}

/* what the engine cannot read, each with its reason */
static void test_refused_layouts(void **state)
{
    (void)state;
    facl_tensor_map_layout l;
    const struct {
        facl_view v;
        int64_t rows, heads, batch;
        const char *why;
    } cases[] = {
        {{NULL, 4, 800, 64, 8}, 10, 8, 2, "offset"},               /* 8 bytes in */
        {{NULL, 0, 800, 68, 8}, 10, 8, 2, "multiple of 16 bytes"}, /* row stride 136 bytes */
        {{NULL, 0, 800, 64, 4}, 10, 8, 2, "multiple of 16 bytes"}, /* head stride 8 bytes */
        {{NULL, 0, 0, 64, 8}, 10, 8, 2, "zero"},                   /* batch broadcast */
        {{NULL, 0, 800, -64, 8}, 10, 8, 2, "zero"},                /* rows backwards */
        {{NULL, 0, (int64_t)1 << 39, 64, 8}, 10, 8, 2, "2^40"},    /* 2^40 bytes per sequence */
        {{NULL, 0, 800, 64, 8}, (int64_t)1 << 33, 8, 2, "dimension"},
        {{NULL, 0, 800, 64, 8}, 0, 8, 2, "dimension"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; ++i) {
        const char *why = facl_tensor_map_layout_of(&cases[i].v, 64, cases[i].rows, cases[i].heads,
                                                    cases[i].batch, &l);
        if (!why || !strstr(why, cases[i].why))
            fail_msg("case %zu: expected a refusal naming \"%s\", got %s", i, cases[i].why,
                     why ? why : "none");
    }
}

/* no NVIDIA device: a named refusal, nothing opened */
static void test_open_refused_without_device(void **state)
{
    (void)state;
    facl_tensor_maps *maps = (facl_tensor_maps *)&maps;
    assert_int_equal(facl_tensor_maps_open(NULL, &maps), FACL_ERROR_UNSUPPORTED);
    assert_null(maps);
    assert_non_null(strstr(facl_last_error(), "tensor copy engine"));
    facl_tensor_maps_close(NULL); /* ignored */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dense_layout),
        cmocka_unit_test(test_strided_layout),
        cmocka_unit_test(test_extent_one_strides),
        cmocka_unit_test(test_refused_layouts),
        cmocka_unit_test(test_open_refused_without_device),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
