/* The tuning database through the public API, on the default device: what
 * facl_context_tuning reports (and its capacity rule), the FACL_LOG_TUNING message, an
 * override file reaching the compiled kernel, and a bad file that leaves the context
 * working on the table's values (docs/TUNING.md). */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "case_runner.h"
#include "facl.h"

static char g_file[600];

/* What the log heard: the FACL_LOG_TUNING messages, and the options of every program
 * compiled or loaded from the disk cache (the test environment's FACL_CACHE_DIR wins
 * over the configuration, so either may happen). */
typedef struct heard {
    int tuning_count;
    char tuning[1024];
    char programs[8192];
} heard;

static void on_log(void *user, int32_t kind, const char *message)
{
    heard *h = user;
    if (kind == FACL_LOG_TUNING) {
        h->tuning_count++;
        snprintf(h->tuning, sizeof h->tuning, "%s", message);
    } else if (kind == FACL_LOG_BUILD_START || kind == FACL_LOG_CACHE_HIT) {
        const size_t len = strlen(h->programs);
        snprintf(h->programs + len, sizeof h->programs - len, "%s\n", message);
    }
}

/* A context that hears the log, on a kernel path (NULL: the device's own). */
static facl_context *context_on(heard *h, const char *kernel_path)
{
    memset(h, 0, sizeof *h);
    facl_context_config cfg = FACL_CONTEXT_CONFIG_INIT;
    cfg.kernel_path = kernel_path;
    cfg.log = on_log;
    cfg.log_user = h;
    facl_context *ctx = NULL;
    if (facl_context_create_with_config(NULL, &cfg, &ctx) != FACL_SUCCESS)
        fail_msg("facl_context_create_with_config: %s", facl_last_error());
    return ctx;
}

static facl_context *context(heard *h)
{
    return context_on(h, NULL);
}

static void tuning_text(const facl_context *ctx, char *text, size_t size)
{
    if (facl_context_tuning(ctx, text, size, NULL) != FACL_SUCCESS)
        fail_msg("facl_context_tuning: %s", facl_last_error());
}

/* The value of `key` in the text ("" when absent). */
static void value_of(const char *text, const char *key, char *out, size_t size)
{
    char needle[64];
    snprintf(needle, sizeof needle, "%s = ", key);
    out[0] = '\0';
    for (const char *line = text; *line;) {
        const char *end = strchr(line, '\n');
        if (!end) end = line + strlen(line);
        if (strncmp(line, needle, strlen(needle)) == 0) {
            const char *v = line + strlen(needle);
            snprintf(out, size, "%.*s", (int)(end - v), v);
            return;
        }
        line = *end ? end + 1 : end;
    }
}

static void assert_value(const char *text, const char *key, const char *expect)
{
    char v[600];
    value_of(text, key, v, sizeof v);
    if (strcmp(v, expect) != 0) fail_msg("%s = '%s', expected '%s' in\n%s", key, v, expect, text);
}

/* A forward through the context, judged against the float64 reference. */
static void forward_passes(facl_context *ctx)
{
    fwd_case c = fwd_case_make(CASE_DENSE, FACL_DTYPE_F32, 16, 37, 53, 2, 1, 2, 7);
    case_result r;
    if (!run_fwd_case(ctx, &c, &r)) {
        char detail[1024];
        case_result_format(&r, detail, sizeof detail);
        fail_msg("the forward failed: %s", detail);
    }
}

static void test_report_and_capacity(void **state)
{
    (void)state;
    setenv("FACL_TUNING_FILE", "off", 1);
    heard h;
    facl_context *ctx = context(&h);
    uint64_t len = 0;
    assert_int_equal(facl_context_tuning(ctx, NULL, 0, &len), FACL_SUCCESS); /* the size */
    assert_true(len > 100);
    char *text = malloc(len + 1);
    assert_non_null(text);
    memset(text, 'x', len + 1);
    uint64_t again = 7;
    assert_int_equal(facl_context_tuning(ctx, text, len, &again), FACL_ERROR_INVALID_VALUE);
    if (!strstr(facl_last_error(), "capacity")) fail_msg("'%s'", facl_last_error());
    assert_int_equal(again, 7);   /* a refused call writes nothing */
    assert_int_equal(text[0], 'x');
    assert_int_equal(facl_context_tuning(ctx, text, len + 1, &again), FACL_SUCCESS);
    assert_int_equal(strlen(text), len);
    assert_int_equal(again, len);
    assert_value(text, "override", "none");
    assert_value(text, "override_file", "");
    assert_value(text, "d64.cpu_rows", "16"); /* no entry in the table yet changes it here */
    char level[32];
    value_of(text, "level", level, sizeof level);
    assert_true(strcmp(level, "default") == 0 || strcmp(level, "vendor") == 0 ||
                strcmp(level, "architecture") == 0 || strcmp(level, "device") == 0);
    free(text);
    assert_int_equal(facl_context_tuning(NULL, NULL, 0, NULL), FACL_ERROR_NULL_ARGUMENT);
    assert_int_equal(facl_context_tuning(ctx, NULL, 10, NULL), FACL_ERROR_NULL_ARGUMENT);
    assert_int_equal(facl_context_tuning(ctx, NULL, 0, NULL), FACL_ERROR_NULL_ARGUMENT);
    assert_int_equal(h.tuning_count, 1);
    if (!strstr(h.tuning, "override file none")) fail_msg("log: '%s'", h.tuning);
    facl_context_free(ctx);
    unsetenv("FACL_TUNING_FILE");
}

/* The file the library reads, for this device, with the given value lines. */
static void write_override(const char *lines)
{
    setenv("FACL_TUNING_FILE", "off", 1);
    heard h;
    facl_context *ctx = context(&h);
    char text[4096], vendor[32], arch[96], device[160];
    tuning_text(ctx, text, sizeof text);
    facl_context_free(ctx);
    value_of(text, "vendor", vendor, sizeof vendor);
    value_of(text, "architecture", arch, sizeof arch);
    value_of(text, "device", device, sizeof device);
    FILE *f = fopen(g_file, "w");
    assert_non_null(f);
    fprintf(f, "format = 1\nvendor = %s\narchitecture = %s\ndevice = %s\n%s", vendor, arch, device,
            lines);
    assert_int_equal(fclose(f), 0);
    setenv("FACL_TUNING_FILE", g_file, 1);
}

/* The entry's values are the ones the kernel is compiled with, and it still computes the
 * right thing. Both kernels' values are set: the device's path takes its own (the
 * portable GPU kernel: attn_fwd, kernel = 1). cpu_rows = 24: a multiple of every register
 * block (2, 4 or 8 rows by the CPU's vector width), so the plan takes it as it is on any
 * CPU (4 became 8 on an AVX-512 machine). */
static void test_override_reaches_the_kernel(void **state)
{
    (void)state;
    write_override("d64.cpu_rows = 24\nd64.kernel = 1\nd64.block_n = 8\nd64.lanes = 2\n"
                   "d64.group_rows = 16\n");
    heard h;
    facl_context *ctx = context(&h);
    char text[4096];
    tuning_text(ctx, text, sizeof text);
    assert_value(text, "override", "applied");
    assert_value(text, "override_file", g_file);
    assert_value(text, "note", "");
    assert_value(text, "d64.cpu_rows", "24");
    assert_value(text, "d64.lanes", "2");
    assert_value(text, "d128.cpu_rows", "16");
    if (!strstr(h.tuning, "override file applied")) fail_msg("log: '%s'", h.tuning);
    forward_passes(ctx);
    facl_device_info info = FACL_DEVICE_INFO_INIT;
    assert_int_equal(facl_context_device_info(ctx, &info), FACL_SUCCESS);
    const char *expect = strcmp(info.kernel_path, "portable-cpu") == 0 ? "-DROWS=24 "
                         : strcmp(info.kernel_path, "portable-gpu") == 0
                             ? "-DBLOCK_N=8 -DLANES=2 "
                             : NULL; /* a tensor-core path: fp32 runs attn_fwd too */
    if (!expect) expect = "-DBLOCK_N=8 -DLANES=2 ";
    if (!strstr(h.programs, expect))
        fail_msg("no program built or loaded with '%s' in:\n%s", expect, h.programs);
    facl_context_free(ctx);
    unsetenv("FACL_TUNING_FILE");
}

/* attn_fwd_blocked's shape from an entry, on the portable-gpu path (forced: this is the
 * CPU's own path nowhere): compiled with it, and right. */
static void test_blocked_shape_reaches_the_kernel(void **state)
{
    (void)state;
    write_override("d64.blocked_m = 32\nd64.blocked_n = 32\nd64.blocked_tm = 8\nd64.blocked_tn = 4\n");
    heard h;
    facl_context *ctx = context_on(&h, "portable-gpu");
    char text[4096];
    tuning_text(ctx, text, sizeof text);
    assert_value(text, "override", "applied");
    assert_value(text, "d64.kernel", "2");
    assert_value(text, "d64.blocked_tm", "8");
    forward_passes(ctx);
    const char *expect = "-DBLOCK_M=32 -DBLOCK_N=32 -DTM=8 -DTN=4 ";
    if (!strstr(h.programs, expect))
        fail_msg("no program built or loaded with '%s' in:\n%s", expect, h.programs);
    facl_context_free(ctx);
    unsetenv("FACL_TUNING_FILE");
}

/* A bad file: the context is made all the same, on the table's values, and says why. */
static void test_bad_file_keeps_defaults(void **state)
{
    (void)state;
    write_override("d64.cpu_rows = 6\n");
    heard h;
    facl_context *ctx = context(&h);
    char text[4096];
    tuning_text(ctx, text, sizeof text);
    assert_value(text, "override", "ignored");
    assert_value(text, "note", "line 5: d64.cpu_rows = 6: must be a multiple of 4 from 4 to 32");
    assert_value(text, "d64.cpu_rows", "16");
    if (!strstr(h.tuning, "override file ignored") || !strstr(h.tuning, "d64.cpu_rows = 6"))
        fail_msg("log: '%s'", h.tuning);
    forward_passes(ctx);
    facl_context_free(ctx);
    unsetenv("FACL_TUNING_FILE");
}

int main(void)
{
    const char *base = getenv("FACL_TEST_TMPDIR");
    snprintf(g_file, sizeof g_file, "%s/test_tuning_api.%ld.txt", base && *base ? base : "/tmp",
             (long)getpid());
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_report_and_capacity),
        cmocka_unit_test(test_override_reaches_the_kernel),
        cmocka_unit_test(test_blocked_shape_reaches_the_kernel),
        cmocka_unit_test(test_bad_file_keeps_defaults),
    };
    const int failed = cmocka_run_group_tests(tests, NULL, NULL);
    unlink(g_file);
    return failed;
}
