/* The cmocka harness shared by the forward suites (see case_suite.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "case_suite.h"
#include "facl.h"

typedef struct named_case {
    fwd_case c;
    char name[240];
} named_case;

static named_case *g_cases;
static size_t g_ncases, g_cap;
static facl_context *g_ctx;
static char g_ctx_error[512];

size_t case_suite_count(void) { return g_ncases; }

void case_suite_add(const char *group, const fwd_case *c)
{
    named_case *nc;
    char name[200];
    if (g_ncases == g_cap) {
        g_cap = g_cap ? 2 * g_cap : 64;
        g_cases = realloc(g_cases, g_cap * sizeof *g_cases);
        if (!g_cases) {
            fprintf(stderr, "out of memory\n");
            exit(1);
        }
    }
    nc = &g_cases[g_ncases++];
    nc->c = *c;
    fwd_case_name(c, name, sizeof name);
    snprintf(nc->name, sizeof nc->name, "%s: %s", group, name);
}

static void run_case_test(void **state)
{
    const named_case *nc = *state;
    case_result r;
    char buf[1400];
    if (!g_ctx)
        fail_msg("facl_context_create(NULL) failed: %s", g_ctx_error);
    run_fwd_case(g_ctx, &nc->c, &r);
    if (getenv("FACL_TEST_VERBOSE") && r.pass) {
        case_result_format(&r, buf, sizeof buf);
        print_message("%s", buf);
    }
    if (!r.pass) {
        case_result_format(&r, buf, sizeof buf);
        print_message("case %s\n%s", nc->name, buf);
        fail_msg("%s: %s", nc->name, r.detail);
    }
}

int case_suite_run(const char *group)
{
    struct CMUnitTest *tests = calloc(g_ncases, sizeof *tests);
    const char *filter = getenv("FACL_TEST_FILTER");
    facl_status st;
    int failed;
    if (!tests)
        return 1;
    for (size_t i = 0; i < g_ncases; i++) {
        tests[i].name = g_cases[i].name;
        tests[i].test_func = run_case_test;
        tests[i].initial_state = &g_cases[i];
    }
    st = facl_context_create(NULL, &g_ctx);
    if (st == FACL_ERROR_UNSUPPORTED && getenv("FACL_KERNEL_PATH")) {
        /* a forced kernel path this device does not have: nothing to test here */
        print_message("skipped: %s\n", facl_last_error());
        free(tests);
        free(g_cases);
        return CASE_SUITE_SKIPPED;
    }
    if (st != FACL_SUCCESS) {
        g_ctx = NULL;
        snprintf(g_ctx_error, sizeof g_ctx_error, "%s: %s", facl_status_string(st),
                 facl_last_error());
    } else {
        facl_device_info info = FACL_DEVICE_INFO_INIT;
        if (facl_context_device_info(g_ctx, &info) == FACL_SUCCESS)
            print_message("device: %s / %s (%s)\n", info.platform_name, info.device_name,
                          info.driver_version);
    }
    if (filter && *filter)
        cmocka_set_test_filter(filter);
    failed = _cmocka_run_group_tests(group, tests, g_ncases, NULL, NULL);
    facl_context_free(g_ctx);
    free(tests);
    free(g_cases);
    return failed;
}
