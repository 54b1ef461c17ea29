/* The tuning database (src/tuning*.c, docs/TUNING.md) without a device: the built-in
 * table's entries, the lookup's fallback order, the override file's parser (good,
 * malformed, out-of-range, another device), where the file is found and when it is
 * refused, the architecture keys, and that a plan follows an override exactly as far as
 * the device allows. */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "device_profile.h"
#include "fwd_problem.h"
#include "plan.h"
#include "tuning.h"

static char g_dir[512]; /* scratch directory of this process */

static void write_text(const char *path, const char *text, mode_t mode)
{
    unlink(path);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_true(fputs(text, f) >= 0);
    assert_int_equal(fclose(f), 0);
    assert_int_equal(chmod(path, mode), 0);
}

static facl_tuning_params params(int block_n, int lanes, int group_rows, int cpu_rows)
{
    facl_tuning_params p = {.block_n = block_n, .lanes = lanes, .group_rows = group_rows,
                            .cpu_rows = cpu_rows};
    return p;
}

static void assert_params(const facl_tuning_params *got, int block_n, int lanes, int group_rows,
                          int cpu_rows)
{
    if (got->block_n != block_n || got->lanes != lanes || got->group_rows != group_rows ||
        got->cpu_rows != cpu_rows)
        fail_msg("got block_n %d lanes %d group_rows %d cpu_rows %d, expected %d %d %d %d",
                 got->block_n, got->lanes, got->group_rows, got->cpu_rows, block_n, lanes,
                 group_rows, cpu_rows);
}

/* ------------------------------------------------------------------ defaults, table */

/* No entry, or a made-up profile whose tuning is all zero: today's values. */
static void test_defaults(void **state)
{
    (void)state;
    facl_tuning zero;
    memset(&zero, 0, sizeof zero);
    const int dims[6] = {1, 64, 65, 128, 129, 256};
    const int lanes[6] = {1, 1, 2, 2, 4, 4};
    for (int i = 0; i < 6; ++i) {
        facl_tuning_params a = facl_tuning_params_for(NULL, dims[i]);
        facl_tuning_params b = facl_tuning_params_for(&zero, dims[i]);
        assert_params(&a, 32, lanes[i], 64, 16);
        assert_params(&b, 32, lanes[i], 64, 16);
        /* the portable GPU kernel: attn_fwd_blocked, 64 x 64 blocks of 4 x 4 micro-tiles */
        assert_int_equal(a.kernel, FACL_TUNING_KERNEL_BLOCKED);
        assert_int_equal(b.kernel, FACL_TUNING_KERNEL_BLOCKED);
        assert_int_equal(a.blocked_m, 64);
        assert_int_equal(a.blocked_n, 64);
        assert_int_equal(a.blocked_tm, 4);
        assert_int_equal(a.blocked_tn, 4);
    }
    facl_tuning t;
    facl_tuning_lookup(NULL, 0, "amd", "gfx90a", "gfx90a:sramecc+:xnack-", &t);
    assert_int_equal(t.level, FACL_TUNING_LEVEL_DEFAULT);
    assert_string_equal(t.entry, "built-in defaults");
    assert_params(&t.d[FACL_TUNING_D256], 32, 4, 64, 16);
}

/* Every entry of src/tuning_db.c: a known vendor, values the kernels take, a device entry
 * under an architecture key the lookup can match, no key twice, and a line that parses
 * back to itself once written as a file. */
static void test_db_entries_valid(void **state)
{
    (void)state;
    size_t n;
    const facl_tuning_entry *db = facl_tuning_db(&n);
    for (size_t i = 0; i < n; ++i) {
        const facl_tuning_entry *e = &db[i];
        if (facl_vendor_from_name(e->vendor) < 0)
            fail_msg("entry %zu: vendor '%s' is not a facl_vendor_name", i, e->vendor);
        for (size_t j = 0; j < i; ++j)
            if (facl_tuning_names_device(&db[j], e->vendor, e->architecture, e->device))
                fail_msg("entries %zu and %zu have the same key %s/%s/%s", j, i, e->vendor,
                         e->architecture, e->device);
        for (int c = 0; c < FACL_TUNING_CLASSES; ++c)
            for (int f = 0; f < FACL_TUNING_FIELDS; ++f) {
                const int v = facl_tuning_field_value(&e->d[c], f);
                char why[96];
                if (v && facl_tuning_check_value(f, v, why, sizeof why) != 0)
                    fail_msg("entry %zu (%s/%s/%s): %s.%s = %d %s", i, e->vendor, e->architecture,
                             e->device, facl_tuning_class_name(c), facl_tuning_field_name(f), v,
                             why);
            }
        facl_tuning t;
        facl_tuning_lookup(db, n, e->vendor, e->architecture, e->device, &t);
        if (t.note[0]) fail_msg("entry %zu: %s", i, t.note);
    }
}

/* ------------------------------------------------------------------ lookup */

/* Vendor, then architecture, then device, each over the level above field by field;
 * the level reported is the most specific entry found. */
static void test_lookup_fallback_order(void **state)
{
    (void)state;
    facl_tuning_entry table[7];
    memset(table, 0, sizeof table);
    /* Listed most specific first, and with lookalikes, so that order in the table does
     * not decide. */
    snprintf(table[0].vendor, 16, "nvidia");
    snprintf(table[0].architecture, 64, "sm_90");
    snprintf(table[0].device, 128, "NVIDIA H200");
    table[0].d[FACL_TUNING_D128] = params(0, 0, 32, 0);
    snprintf(table[1].vendor, 16, "nvidia");
    snprintf(table[1].architecture, 64, "sm_90");
    table[1].d[FACL_TUNING_D128] = params(16, 0, 128, 0);
    table[1].d[FACL_TUNING_D64] = params(0, 2, 0, 0);
    snprintf(table[2].vendor, 16, "nvidia");
    table[2].d[FACL_TUNING_D128] = params(64, 4, 0, 0);
    table[2].d[FACL_TUNING_D256] = params(0, 0, 0, 8);
    snprintf(table[3].vendor, 16, "amd"); /* another vendor: never mixed in */
    table[3].d[FACL_TUNING_D128] = params(8, 8, 8, 8);
    snprintf(table[4].vendor, 16, "nvidia"); /* the same device name under another arch */
    snprintf(table[4].architecture, 64, "sm_80");
    snprintf(table[4].device, 128, "NVIDIA H200");
    table[4].d[FACL_TUNING_D128] = params(1, 1, 1, 4);
    snprintf(table[5].vendor, 16, "nvidia"); /* another architecture */
    snprintf(table[5].architecture, 64, "sm_80");
    table[5].d[FACL_TUNING_D128] = params(2, 2, 2, 4);
    snprintf(table[6].vendor, 16, "pocl");
    snprintf(table[6].architecture, 64, "skylake-avx512");
    table[6].d[FACL_TUNING_D64] = params(0, 0, 0, 24);

    facl_tuning t;
    facl_tuning_lookup(table, 7, "nvidia", "sm_90", "NVIDIA H200", &t);
    assert_int_equal(t.level, FACL_TUNING_LEVEL_DEVICE);
    assert_string_equal(t.entry, "nvidia / sm_90 / NVIDIA H200");
    assert_params(&t.d[FACL_TUNING_D128], 16, 4, 32, 16); /* arch, vendor, device, default */
    assert_params(&t.d[FACL_TUNING_D64], 32, 2, 64, 16);
    assert_params(&t.d[FACL_TUNING_D256], 32, 4, 64, 8);
    assert_string_equal(t.note, "");

    /* Surrounding white space in the driver's name does not matter. */
    facl_tuning_lookup(table, 7, "nvidia", "sm_90", "  NVIDIA H200 ", &t);
    assert_int_equal(t.level, FACL_TUNING_LEVEL_DEVICE);

    facl_tuning_lookup(table, 7, "nvidia", "sm_90", "NVIDIA H100 80GB HBM3", &t);
    assert_int_equal(t.level, FACL_TUNING_LEVEL_ARCHITECTURE);
    assert_string_equal(t.entry, "nvidia / sm_90 / *");
    assert_params(&t.d[FACL_TUNING_D128], 16, 4, 128, 16);

    facl_tuning_lookup(table, 7, "nvidia", "sm_86", "NVIDIA H200", &t);
    assert_int_equal(t.level, FACL_TUNING_LEVEL_VENDOR);
    assert_string_equal(t.entry, "nvidia / * / *");
    assert_params(&t.d[FACL_TUNING_D128], 64, 4, 64, 16);
    assert_params(&t.d[FACL_TUNING_D64], 32, 1, 64, 16);

    facl_tuning_lookup(table, 7, "intel", "sm_90", "NVIDIA H200", &t);
    assert_int_equal(t.level, FACL_TUNING_LEVEL_DEFAULT);
    assert_params(&t.d[FACL_TUNING_D128], 32, 2, 64, 16);

    facl_tuning_lookup(table, 7, "pocl", "skylake-avx512", "cpu-skylake-avx512-Intel(R) Xeon", &t);
    assert_int_equal(t.level, FACL_TUNING_LEVEL_ARCHITECTURE);
    assert_params(&t.d[FACL_TUNING_D64], 32, 1, 64, 24);

    /* A value no kernel takes is skipped and named; the level above's value stays. */
    table[1].d[FACL_TUNING_D128].block_n = 48;
    table[0].d[FACL_TUNING_D128].lanes = 32;
    facl_tuning_lookup(table, 7, "nvidia", "sm_90", "NVIDIA H200", &t);
    assert_params(&t.d[FACL_TUNING_D128], 64, 4, 32, 16);
    assert_non_null(strstr(t.note, "d128.block_n = 48"));
    assert_non_null(strstr(t.note, "d128.lanes = 32"));
}

/* ------------------------------------------------------------------ the file */

static const char *const k_good =
    "# measured with facl-tune\n"
    "format = 1\n"
    "  vendor=pocl  \n"
    "architecture = skylake-avx512\n"
    "\n"
    "device = cpu-skylake-avx512-Intel(R) Xeon(R) Gold 6338 CPU @ 2.00GHz\r\n"
    "d64.cpu_rows = 24\n"
    "d256.block_n = 16\n"
    "d256.lanes = 8\n"
    "d128.kernel = 1\n"
    "d128.blocked_m = 32\n"
    "d128.blocked_n = 128\n"
    "d128.blocked_tm = 8\n"
    "d128.blocked_tn = 4\n"
    "d256.group_rows = 32";

static void test_parse_good(void **state)
{
    (void)state;
    facl_tuning_entry e;
    char why[256] = "";
    if (facl_tuning_parse(k_good, &e, why, sizeof why) != 0) fail_msg("%s", why);
    assert_string_equal(e.vendor, "pocl");
    assert_string_equal(e.architecture, "skylake-avx512");
    assert_string_equal(e.device, "cpu-skylake-avx512-Intel(R) Xeon(R) Gold 6338 CPU @ 2.00GHz");
    assert_params(&e.d[FACL_TUNING_D64], 0, 0, 0, 24);
    assert_params(&e.d[FACL_TUNING_D128], 0, 0, 0, 0);
    assert_int_equal(e.d[FACL_TUNING_D128].kernel, FACL_TUNING_KERNEL_PREVIOUS);
    assert_int_equal(e.d[FACL_TUNING_D128].blocked_m, 32);
    assert_int_equal(e.d[FACL_TUNING_D128].blocked_n, 128);
    assert_int_equal(e.d[FACL_TUNING_D128].blocked_tm, 8);
    assert_int_equal(e.d[FACL_TUNING_D128].blocked_tn, 4);
    assert_int_equal(e.d[FACL_TUNING_D256].kernel, 0);
    assert_params(&e.d[FACL_TUNING_D256], 16, 8, 32, 0);

    /* What facl-tune writes parses back to the same entry; an empty architecture is a key
     * too (devices the library finds none for). */
    char text[FACL_TUNING_FILE_MAX_BYTES + 1];
    const size_t len = facl_tuning_format_file(&e, text, sizeof text);
    assert_int_equal(len, strlen(text));
    facl_tuning_entry back;
    if (facl_tuning_parse(text, &back, why, sizeof why) != 0) fail_msg("%s in\n%s", why, text);
    assert_memory_equal(&e, &back, sizeof e);
    memset(e.architecture, 0, sizeof e.architecture);
    facl_tuning_format_file(&e, text, sizeof text);
    assert_non_null(strstr(text, "\narchitecture = \n"));
    if (facl_tuning_parse(text, &back, why, sizeof why) != 0) fail_msg("%s in\n%s", why, text);
    assert_memory_equal(&e, &back, sizeof e);
}

/* Each malformed file is refused whole, with the line and the reason. */
static void test_parse_malformed(void **state)
{
    (void)state;
    static const char head[] = "format = 1\nvendor = amd\narchitecture = gfx90a\ndevice = gfx90a\n";
    static const struct {
        const char *text; /* appended to head unless it starts with '!' */
        const char *expect;
    } bad[] = {
        {"d64.lanes = 3\n", "line 5: d64.lanes = 3: must be a power of two from 1 to 16"},
        {"d64.lanes = 32\n", "d64.lanes = 32: must be a power of two from 1 to 16"},
        {"d64.lanes = 0\n", "d64.lanes = 0: must be"},
        {"d128.block_n = 256\n", "d128.block_n = 256: must be a power of two from 1 to 128"},
        {"d128.block_n = 24\n", "d128.block_n = 24: must be a power of two"},
        {"d256.group_rows = 256\n", "d256.group_rows = 256: must be a power of two from 1 to 128"},
        {"d64.cpu_rows = 6\n", "d64.cpu_rows = 6: must be a multiple of 4 from 4 to 32"},
        {"d64.cpu_rows = 36\n", "d64.cpu_rows = 36: must be a multiple of 4"},
        {"d64.cpu_rows = -4\n", "d64.cpu_rows = -4: not a number"},
        {"d64.kernel = 3\n", "d64.kernel = 3: must be from 1 to 2"},
        {"d64.kernel = 0\n", "d64.kernel = 0: must be from 1 to 2"},
        {"d128.blocked_m = 8\n", "d128.blocked_m = 8: must be a power of two from 16 to 128"},
        {"d128.blocked_m = 256\n", "d128.blocked_m = 256: must be a power of two from 16 to 128"},
        {"d128.blocked_n = 48\n", "d128.blocked_n = 48: must be a power of two from 16 to 128"},
        {"d256.blocked_tm = 2\n", "d256.blocked_tm = 2: must be a power of two from 4 to 8"},
        {"d256.blocked_tn = 16\n", "d256.blocked_tn = 16: must be a power of two from 4 to 8"},
        {"d256.blocked_tn = 6\n", "d256.blocked_tn = 6: must be a power of two from 4 to 8"},
        {"d64.cpu_rows = 8x\n", "not a number"},
        {"d64.cpu_rows = 99999999\n", "not a number"},
        {"d64.cpu_rows =\n", "not a number"},
        {"d64.cpu_rows = 8\nd64.cpu_rows = 8\n", "line 6: d64.cpu_rows given twice"},
        {"d32.cpu_rows = 8\n", "line 5: unknown key \"d32.cpu_rows\""},
        {"d64.tile_n = 16\n", "unknown key \"d64.tile_n\""},
        {"d64.cpu_rows 8\n", "line 5: expected \"key = value\""},
        {"vendor = amd\n", "line 5: vendor given twice"},
        {"!format = 2\nvendor = amd\narchitecture =\ndevice = x\n", "line 1: format = 2: this library reads format 1"},
        {"!format = 1\nvendor = AMD\narchitecture =\ndevice = x\n", "line 2: vendor = AMD: not nvidia"},
        {"!format = 1\nvendor = amd\narchitecture = gfx90a\n", "no \"device = ...\" line"},
        {"!format = 1\nvendor = amd\ndevice = gfx90a\n", "no \"architecture = ...\" line"},
        {"!vendor = amd\narchitecture =\ndevice = gfx90a\n", "no \"format = ...\" line"},
        {"!format = 1\nvendor = amd\narchitecture =\ndevice =  \n", "line 4: device: empty"},
        {"!", "no \"format = ...\" line"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; ++i) {
        char text[1024];
        if (bad[i].text[0] == '!')
            snprintf(text, sizeof text, "%s", bad[i].text + 1);
        else
            snprintf(text, sizeof text, "%s%s", head, bad[i].text);
        facl_tuning_entry e;
        memset(&e, 0x5a, sizeof e);
        char why[256] = "";
        if (facl_tuning_parse(text, &e, why, sizeof why) == 0)
            fail_msg("accepted:\n%s", text);
        if (!strstr(why, bad[i].expect))
            fail_msg("for\n%s\nthe reason '%s' does not say '%s'", text, why, bad[i].expect);
        facl_tuning_entry zero;
        memset(&zero, 0, sizeof zero);
        assert_memory_equal(&e, &zero, sizeof e); /* nothing half parsed is left */
    }
}

/* The line for tuning_db.c: only the values set, names escaped as C strings. */
static void test_format_line(void **state)
{
    (void)state;
    facl_tuning_entry e;
    memset(&e, 0, sizeof e);
    snprintf(e.vendor, sizeof e.vendor, "intel");
    snprintf(e.architecture, sizeof e.architecture, "Intel(R) Arc(TM) Graphics");
    snprintf(e.device, sizeof e.device, "Intel(R) Arc(TM) \"A770\" \\ Graphics");
    e.d[FACL_TUNING_D128] = params(16, 0, 32, 0);
    e.d[FACL_TUNING_D256].cpu_rows = 8;
    char line[512];
    const size_t n = facl_tuning_format_line(&e, line, sizeof line);
    assert_string_equal(line, "    {\"intel\", \"Intel(R) Arc(TM) Graphics\", "
                              "\"Intel(R) Arc(TM) \\\"A770\\\" \\\\ Graphics\", "
                              "{[D128] = {.block_n = 16, .group_rows = 32}, "
                              "[D256] = {.cpu_rows = 8}}},");
    assert_int_equal(n, strlen(line));
    char small[16];
    assert_int_equal(facl_tuning_format_line(&e, small, sizeof small), n); /* snprintf-like */
    assert_int_equal(strlen(small), sizeof small - 1);
}

/* ------------------------------------------------------------------ finding the file */

static const char *const k_key[3] = {"pocl", "haswell", "pthread-haswell-AMD EPYC"};

static void resolve(const char *cache_dir, facl_tuning *t)
{
    facl_tuning_resolve(NULL, 0, k_key[0], k_key[1], k_key[2], cache_dir, t);
}

static void file_for(const char *device, const char *extra, char *text, size_t size)
{
    snprintf(text, size, "format = 1\nvendor = pocl\narchitecture = haswell\ndevice = %s\n%s",
             device, extra);
}

/* FACL_TUNING_FILE: applied when it names this device; otherwise ignored, saying why, with
 * the table's values kept. */
static void test_override_env(void **state)
{
    (void)state;
    char path[600], text[512];
    snprintf(path, sizeof path, "%s/override.txt", g_dir);
    setenv("FACL_TUNING_FILE", path, 1);
    facl_tuning t;

    file_for(k_key[2], "d64.cpu_rows = 8\nd128.lanes = 4\n", text, sizeof text);
    write_text(path, text, 0644);
    resolve(NULL, &t);
    assert_int_equal(t.override, FACL_TUNING_OVERRIDE_APPLIED);
    assert_string_equal(t.override_path, path);
    assert_string_equal(t.note, "");
    assert_int_equal(t.level, FACL_TUNING_LEVEL_DEFAULT); /* the table's level, still */
    assert_params(&t.d[FACL_TUNING_D64], 32, 1, 64, 8);
    assert_params(&t.d[FACL_TUNING_D128], 32, 4, 64, 16);

    /* Another device, or the same name under another architecture. */
    file_for("pthread-znver3-AMD EPYC", "d64.cpu_rows = 8\n", text, sizeof text);
    write_text(path, text, 0644);
    resolve(NULL, &t);
    assert_int_equal(t.override, FACL_TUNING_OVERRIDE_IGNORED);
    assert_params(&t.d[FACL_TUNING_D64], 32, 1, 64, 16);
    assert_non_null(strstr(t.note, "names pocl/haswell/pthread-znver3-AMD EPYC, this device is "
                                   "pocl/haswell/pthread-haswell-AMD EPYC"));
    snprintf(text, sizeof text, "format = 1\nvendor = pocl\narchitecture = znver3\ndevice = %s\n"
                                "d64.cpu_rows = 8\n", k_key[2]);
    write_text(path, text, 0644);
    resolve(NULL, &t);
    assert_int_equal(t.override, FACL_TUNING_OVERRIDE_IGNORED);

    /* Malformed: one bad line spoils the file. */
    file_for(k_key[2], "d64.cpu_rows = 8\nd128.lanes = 5\n", text, sizeof text);
    write_text(path, text, 0644);
    resolve(NULL, &t);
    assert_int_equal(t.override, FACL_TUNING_OVERRIDE_IGNORED);
    assert_params(&t.d[FACL_TUNING_D64], 32, 1, 64, 16);
    assert_string_equal(t.note, "line 6: d128.lanes = 5: must be a power of two from 1 to 16");

    /* Too long, not a file, missing. */
    char big[FACL_TUNING_FILE_MAX_BYTES + 200];
    memset(big, '#', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    write_text(path, big, 0644);
    resolve(NULL, &t);
    assert_int_equal(t.override, FACL_TUNING_OVERRIDE_IGNORED);
    assert_non_null(strstr(t.note, "more than the 4096 an entry may have"));
    setenv("FACL_TUNING_FILE", g_dir, 1);
    resolve(NULL, &t);
    assert_int_equal(t.override, FACL_TUNING_OVERRIDE_IGNORED);
    assert_non_null(strstr(t.note, "not a regular file"));
    unlink(path);
    setenv("FACL_TUNING_FILE", path, 1);
    resolve(NULL, &t);
    assert_int_equal(t.override, FACL_TUNING_OVERRIDE_IGNORED);
    assert_string_equal(t.note, "FACL_TUNING_FILE: no such file");

    /* Off: no file at all, not even the fixed place. */
    char fixed[700];
    assert_int_equal(facl_tuning_fixed_path(g_dir, k_key[0], k_key[2], fixed, sizeof fixed), 0);
    char tuning_dir[600];
    snprintf(tuning_dir, sizeof tuning_dir, "%s/tuning", g_dir);
    mkdir(tuning_dir, 0700);
    file_for(k_key[2], "d64.cpu_rows = 8\n", text, sizeof text);
    write_text(fixed, text, 0600);
    const char *off[5] = {"", "0", "off", "No", "FALSE"};
    for (int i = 0; i < 5; ++i) {
        setenv("FACL_TUNING_FILE", off[i], 1);
        resolve(g_dir, &t);
        assert_int_equal(t.override, FACL_TUNING_OVERRIDE_NONE);
        assert_string_equal(t.override_path, "");
        assert_params(&t.d[FACL_TUNING_D64], 32, 1, 64, 16);
    }
    unlink(fixed);
    unsetenv("FACL_TUNING_FILE");
}

/* The fixed place in the disk cache's directory: one file per device, read under the
 * directory's rules (this user's regular file, not writable by group or others). */
static void test_override_fixed_place(void **state)
{
    (void)state;
    unsetenv("FACL_TUNING_FILE");
    char fixed[700], text[512], tuning_dir[600];
    assert_int_equal(facl_tuning_fixed_path(g_dir, k_key[0], k_key[2], fixed, sizeof fixed), 0);
    char expect[700];
    snprintf(expect, sizeof expect, "%s/tuning/pocl-pthread-haswell-AMD_EPYC.txt", g_dir);
    assert_string_equal(fixed, expect);
    snprintf(tuning_dir, sizeof tuning_dir, "%s/tuning", g_dir);
    mkdir(tuning_dir, 0700);
    facl_tuning t;

    unlink(fixed);
    resolve(g_dir, &t); /* no file: nothing to say */
    assert_int_equal(t.override, FACL_TUNING_OVERRIDE_NONE);
    assert_string_equal(t.override_path, "");
    assert_string_equal(t.note, "");

    file_for(k_key[2], "d256.cpu_rows = 4\n", text, sizeof text);
    write_text(fixed, text, 0600);
    resolve(g_dir, &t);
    assert_int_equal(t.override, FACL_TUNING_OVERRIDE_APPLIED);
    assert_string_equal(t.override_path, fixed);
    assert_params(&t.d[FACL_TUNING_D256], 32, 4, 64, 4);
    resolve(NULL, &t); /* disk cache off: no fixed place */
    assert_int_equal(t.override, FACL_TUNING_OVERRIDE_NONE);
    resolve("", &t);
    assert_int_equal(t.override, FACL_TUNING_OVERRIDE_NONE);

    write_text(fixed, text, 0620);
    resolve(g_dir, &t);
    assert_int_equal(t.override, FACL_TUNING_OVERRIDE_IGNORED);
    assert_non_null(strstr(t.note, "writable by group or others"));
    assert_params(&t.d[FACL_TUNING_D256], 32, 4, 64, 16);

    char target[700];
    snprintf(target, sizeof target, "%s/elsewhere.txt", g_dir);
    write_text(target, text, 0600);
    unlink(fixed);
    assert_int_equal(symlink(target, fixed), 0);
    resolve(g_dir, &t);
    assert_int_equal(t.override, FACL_TUNING_OVERRIDE_IGNORED);
    assert_non_null(strstr(t.note, "symbolic link"));
    /* Named by FACL_TUNING_FILE, a link is the user's own choice. */
    setenv("FACL_TUNING_FILE", fixed, 1);
    resolve(g_dir, &t);
    assert_int_equal(t.override, FACL_TUNING_OVERRIDE_APPLIED);
    unsetenv("FACL_TUNING_FILE");
    unlink(fixed);
    unlink(target);

    /* Names are made safe for the file system; a path that does not fit is no place. */
    char odd[700];
    assert_int_equal(facl_tuning_fixed_path("/c", "amd", "gfx90a:sramecc+:xnack-", odd, sizeof odd), 0);
    assert_string_equal(odd, "/c/tuning/amd-gfx90a_sramecc__xnack-.txt");
    assert_int_equal(facl_tuning_fixed_path("/c", "amd", "x/../../y", odd, sizeof odd), 0);
    assert_string_equal(odd, "/c/tuning/amd-x_.._.._y.txt");
    assert_int_equal(facl_tuning_fixed_path("/c", "amd", "gfx90a", odd, 10), -1);
}

/* The report of facl_context_tuning: every key, the values in use. */
static void test_describe(void **state)
{
    (void)state;
    facl_tuning t;
    memset(&t, 0, sizeof t);
    t.d[FACL_TUNING_D128].lanes = 8;
    t.level = FACL_TUNING_LEVEL_ARCHITECTURE;
    snprintf(t.entry, sizeof t.entry, "pocl / haswell / *");
    t.override = FACL_TUNING_OVERRIDE_IGNORED;
    snprintf(t.override_path, sizeof t.override_path, "/x/t.txt");
    snprintf(t.note, sizeof t.note, "line 2: bad");
    char text[2048];
    const size_t n = facl_tuning_describe(&t, "pocl", "haswell", "dev", text, sizeof text);
    assert_int_equal(n, strlen(text));
    const char *lines[] = {"level = architecture\n", "entry = pocl / haswell / *\n",
                           "vendor = pocl\n", "architecture = haswell\n", "device = dev\n",
                           "override = ignored\n", "override_file = /x/t.txt\n",
                           "note = line 2: bad\n", "d64.block_n = 32\n", "d128.lanes = 8\n",
                           "d256.lanes = 4\n", "d256.cpu_rows = 16\n", "d64.kernel = 2\n",
                           "d128.blocked_m = 64\n", "d256.blocked_tn = 4\n"};
    for (size_t i = 0; i < sizeof lines / sizeof lines[0]; ++i)
        if (!strstr(text, lines[i])) fail_msg("no '%s' in\n%s", lines[i], text);
    char small[8];
    assert_int_equal(facl_tuning_describe(&t, "pocl", "haswell", "dev", small, sizeof small), n);
}

/* ------------------------------------------------------------------ architecture keys */

static void test_architecture(void **state)
{
    (void)state;
    static const struct {
        facl_vendor vendor;
        cl_device_type type;
        const char *name, *version;
        int cc_major, cc_minor;
        const char *expect;
    } cases[] = {
        {FACL_VENDOR_NVIDIA, CL_DEVICE_TYPE_GPU, "NVIDIA H200", "OpenCL 3.0 CUDA", 9, 0, "sm_90"},
        {FACL_VENDOR_NVIDIA, CL_DEVICE_TYPE_GPU, "NVIDIA GeForce RTX 3060", "", 8, 6, "sm_86"},
        {FACL_VENDOR_NVIDIA, CL_DEVICE_TYPE_GPU, "Quadro 4000", "", 0, 0, "Quadro"},
        {FACL_VENDOR_AMD, CL_DEVICE_TYPE_GPU, "gfx90a:sramecc+:xnack-", "OpenCL 2.0", 0, 0, "gfx90a"},
        {FACL_VENDOR_AMD, CL_DEVICE_TYPE_GPU, "gfx1100", "OpenCL 2.0", 0, 0, "gfx1100"},
        {FACL_VENDOR_AMD, CL_DEVICE_TYPE_GPU, "AMD Radeon RX 6800 (radeonsi, navi21)", "", 0, 0,
         "AMD Radeon RX (radeonsi,"},
        {FACL_VENDOR_POCL, CL_DEVICE_TYPE_CPU, "pthread-haswell-AMD EPYC",
         "OpenCL 3.0 PoCL HSTR: pthread-x86_64-pc-linux-gnu-haswell", 0, 0, "haswell"},
        {FACL_VENDOR_POCL, CL_DEVICE_TYPE_CPU,
         "cpu-skylake-avx512-Intel(R) Xeon(R) Gold 6338 CPU @ 2.00GHz",
         "OpenCL 3.0 PoCL HSTR: cpu-x86_64-pc-linux-gnu-skylake-avx512", 0, 0, "skylake-avx512"},
        {FACL_VENDOR_POCL, CL_DEVICE_TYPE_CPU, "pthread-Intel(R) Core(TM) i7-8700",
         "OpenCL 1.2 pocl HSTR: pthread-x86_64-pc-linux-gnu-skylake", 0, 0, "skylake"},
        {FACL_VENDOR_INTEL, CL_DEVICE_TYPE_GPU, "Intel(R) UHD Graphics 630", "OpenCL 3.0 NEO", 0, 0,
         "Intel(R) UHD Graphics"},
        {FACL_VENDOR_INTEL, CL_DEVICE_TYPE_GPU, "Intel(R) Data Center GPU Max 1550", "", 0, 0,
         "Intel(R) Data Center GPU Max"},
        {FACL_VENDOR_OTHER, CL_DEVICE_TYPE_ACCELERATOR, "  ", "", 0, 0, ""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; ++i) {
        facl_device_profile p;
        memset(&p, 0, sizeof p);
        p.vendor = cases[i].vendor;
        p.type = cases[i].type;
        snprintf(p.device_name, sizeof p.device_name, "%s", cases[i].name);
        snprintf(p.device_version, sizeof p.device_version, "%s", cases[i].version);
        p.nv_compute_major = cases[i].cc_major;
        p.nv_compute_minor = cases[i].cc_minor;
        char arch[64];
        facl_device_architecture(&p, arch, sizeof arch);
        if (strcmp(arch, cases[i].expect) != 0)
            fail_msg("%s: architecture '%s', expected '%s'", cases[i].name, arch, cases[i].expect);
    }
    assert_string_equal(facl_vendor_name(FACL_VENDOR_POCL), "pocl");
    assert_int_equal(facl_vendor_from_name("nvidia"), FACL_VENDOR_NVIDIA);
    assert_int_equal(facl_vendor_from_name("NVIDIA"), -1);
}

/* ------------------------------------------------------------------ plans */

static facl_device_profile device(uint64_t local_mem, size_t max_wg, facl_kernel_path path)
{
    facl_device_profile p;
    memset(&p, 0, sizeof p);
    p.local_mem_reported = p.local_mem_usable = local_mem;
    p.max_work_group_size = max_wg;
    p.path = path;
    return p;
}

static facl_fwd_problem problem(int head_dim, int seqlen_q)
{
    facl_fwd_problem p;
    memset(&p, 0, sizeof p);
    p.dtype = FACL_DTYPE_F32;
    p.head_dim = head_dim;
    p.seqlen_q = seqlen_q;
    p.seqlen_k = 1000;
    p.batch = p.heads_q = p.heads_kv = 1;
    return p;
}

static void plan_with(const char *file_lines, facl_device_profile *dev, const facl_fwd_problem *p,
                      facl_fwd_plan *plan)
{
    char path[600], text[512];
    snprintf(path, sizeof path, "%s/plan.txt", g_dir);
    file_for(k_key[2], file_lines, text, sizeof text);
    write_text(path, text, 0600);
    setenv("FACL_TUNING_FILE", path, 1);
    resolve(NULL, &dev->tuning);
    unsetenv("FACL_TUNING_FILE");
    if (dev->tuning.override != FACL_TUNING_OVERRIDE_APPLIED) fail_msg("%s", dev->tuning.note);
    facl_plan_fwd_program(p, dev, plan);
}

static void assert_option(const facl_fwd_plan *plan, const char *option)
{
    if (!strstr(plan->options, option)) fail_msg("no '%s' in '%s'", option, plan->options);
}

/* An override moves the plan where it says, in its head-dim class only, and no further
 * than the device allows (local memory, work-group size). */
static void test_plan_follows_override(void **state)
{
    (void)state;
    facl_fwd_plan plan;
    /* CPU kernel: rows per work-item. */
    facl_device_profile cpu = device(4u << 20, 4096, FACL_PATH_PORTABLE_CPU);
    facl_fwd_problem p64 = problem(64, 1000), p128 = problem(128, 1000);
    facl_plan_fwd_program(&p64, &cpu, &plan);
    assert_option(&plan, "-DROWS=16 ");
    plan_with("d64.cpu_rows = 8\n", &cpu, &p64, &plan);
    assert_option(&plan, "-DROWS=8 ");
    assert_int_equal(plan.rows_per_item, 8);
    assert_int_equal(facl_plan_fwd_group_size(&plan, &p64, &cpu, 4096), 1);
    facl_plan_fwd_program(&p128, &cpu, &plan); /* another class: untouched */
    assert_option(&plan, "-DROWS=16 ");

    /* GPU kernels: attn_fwd_blocked's shape by default. */
    facl_device_profile gpu = device(64 * 1024, 1024, FACL_PATH_PORTABLE_GPU);
    facl_plan_fwd_program(&p128, &gpu, &plan);
    assert_string_equal(plan.kernel, "attn_fwd_blocked");
    assert_option(&plan, "-DBLOCK_M=64 -DBLOCK_N=64 -DTM=4 -DTN=4 ");
    assert_int_equal(facl_plan_fwd_group_size(&plan, &p128, &gpu, 1024), 256);
    plan_with("d128.blocked_m = 32\nd128.blocked_n = 128\nd128.blocked_tm = 8\nd128.blocked_tn = 8\n",
              &gpu, &p128, &plan);
    assert_option(&plan, "-DBLOCK_M=32 -DBLOCK_N=128 -DTM=8 -DTN=8 ");
    assert_int_equal(facl_plan_fwd_group_size(&plan, &p128, &gpu, 1024), 4 * 16);
    /* attn_fwd (kernel = 1): tile, lanes, rows per group. */
    plan_with("d128.kernel = 1\n", &gpu, &p128, &plan);
    assert_option(&plan, "-DBLOCK_N=32 -DLANES=2 -DMAX_GROUP=128");
    assert_int_equal(facl_plan_fwd_group_size(&plan, &p128, &gpu, 1024), 128);
    plan_with("d128.kernel = 1\nd128.block_n = 16\nd128.lanes = 4\nd128.group_rows = 16\n", &gpu,
              &p128, &plan);
    assert_option(&plan, "-DBLOCK_N=16 -DLANES=4 -DMAX_GROUP=128");
    assert_int_equal(plan.local_bytes, 2u * 16 * 128 * 4 + 16u * 128 * 4);
    assert_int_equal(facl_plan_fwd_group_size(&plan, &p128, &gpu, 1024), 16 * 4);
    facl_plan_fwd_program(&p64, &gpu, &plan); /* d64 keeps its defaults */
    assert_string_equal(plan.kernel, "attn_fwd_blocked");

    /* Within the device: a tile that does not fit is halved, lanes beyond the work-group
     * limit are halved, rows * lanes stay within the limits, short queries shrink. */
    facl_device_profile small = device(16 * 1024, 8, FACL_PATH_PORTABLE_GPU);
    plan_with("d128.kernel = 1\nd128.block_n = 128\nd128.lanes = 16\nd128.group_rows = 128\n", &small,
              &p128, &plan);
    assert_int_equal(plan.lanes, 8);
    assert_true(plan.block_n < 128 && plan.local_bytes <= small.local_mem_usable);
    assert_int_equal(plan.block_n, 8); /* 2*8*128*4 + 8*128*4 = 12 KiB; 16 would be 24 KiB */
    assert_int_equal(facl_plan_fwd_group_size(&plan, &p128, &small, 1024), 8);
    facl_device_profile big = device(1u << 20, 1024, FACL_PATH_PORTABLE_GPU);
    plan_with("d128.kernel = 1\nd128.lanes = 1\nd128.group_rows = 128\n", &big, &p128, &plan);
    assert_int_equal(facl_plan_fwd_group_size(&plan, &p128, &big, 1024), 128);
    assert_int_equal(facl_plan_fwd_group_size(&plan, &p128, &big, 32), 32);
    facl_fwd_problem decode = problem(128, 1);
    assert_int_equal(facl_plan_fwd_group_size(&plan, &decode, &big, 1024), 8);

    /* The tensor-core path keeps its own plan whatever the entry says. */
    facl_device_profile mma = device(64 * 1024, 1024, FACL_PATH_NVIDIA_MMA);
    facl_fwd_problem f16 = problem(128, 1000);
    f16.dtype = FACL_DTYPE_F16;
    facl_fwd_plan before;
    facl_plan_fwd_program(&f16, &mma, &before);
    plan_with("d128.block_n = 8\nd128.lanes = 8\nd128.group_rows = 8\n", &mma, &f16, &plan);
    assert_string_equal(plan.kernel, "attn_fwd_mma");
    assert_string_equal(plan.options, before.options);
}

static int setup(void **state)
{
    (void)state;
    const char *base = getenv("FACL_TEST_TMPDIR");
    snprintf(g_dir, sizeof g_dir, "%s/test_tuning.XXXXXX", base && *base ? base : "/tmp");
    return mkdtemp(g_dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_db_entries_valid),
        cmocka_unit_test(test_lookup_fallback_order),
        cmocka_unit_test(test_parse_good),
        cmocka_unit_test(test_parse_malformed),
        cmocka_unit_test(test_format_line),
        cmocka_unit_test(test_override_env),
        cmocka_unit_test(test_override_fixed_place),
        cmocka_unit_test(test_describe),
        cmocka_unit_test(test_architecture),
        cmocka_unit_test(test_plan_follows_override),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
