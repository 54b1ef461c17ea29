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

fwd_case case_suite_case(case_layout layout, facl_dtype dt, int d, int sq, int sk, int hq,
                         int hkv, int batch, uint64_t seed_base)
{
    return fwd_case_make(layout, dt, d, sq, sk, hq, hkv, batch,
                         seed_base + (uint64_t)g_ncases * 7919u);
}

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

/* cmocka's pattern syntax: '*' any run of characters (none included), '?' exactly one;
 * everything else matches itself. */
int case_suite_match(const char *pattern, const char *name)
{
    const char *star = NULL, *resume = NULL;
    while (*name) {
        if (*pattern == '*') {
            star = pattern++;
            resume = name;
        } else if (*pattern == '?' || *pattern == *name) {
            pattern++;
            name++;
        } else if (star) {
            pattern = star + 1;
            name = ++resume;
        } else {
            return 0;
        }
    }
    while (*pattern == '*')
        pattern++;
    return *pattern == '\0';
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
    struct CMUnitTest *tests = calloc(g_ncases ? g_ncases : 1, sizeof *tests);
    const char *filter = getenv("FACL_TEST_FILTER");
    size_t nsel = 0;
    facl_status st;
    int failed;
    if (!tests)
        return 1;
    /* FACL_TEST_EVERY=n keeps every n-th of the cases the filter selects: a default
     * suite's share where each case is a slow emulated compile (tests/meson.build), the
     * slow suite running them all. */
    const char *every_env = getenv("FACL_TEST_EVERY");
    const long every = every_env && atol(every_env) > 1 ? atol(every_env) : 1;
    size_t seen = 0;
    /* The filter is applied here, not by cmocka, so that a pattern selecting nothing
     * (a typo, a renamed case) fails instead of passing with 0 tests run. */
    for (size_t i = 0; i < g_ncases; i++) {
        if (filter && *filter && !case_suite_match(filter, g_cases[i].name))
            continue;
        if (seen++ % (size_t)every != 0)
            continue;
        tests[nsel].name = g_cases[i].name;
        tests[nsel].test_func = run_case_test;
        tests[nsel].initial_state = &g_cases[i];
        nsel++;
    }
    if (nsel == 0) {
        print_error("%s: FACL_TEST_FILTER='%s' selects none of the %zu cases: failing (a filter "
                    "must select at least one case; the names look like '%s')\n",
                    group, filter ? filter : "", g_ncases,
                    g_ncases ? g_cases[0].name : "(none registered)");
        free(tests);
        free(g_cases);
        return 1;
    }
    if ((filter && *filter) || every > 1)
        print_message("FACL_TEST_FILTER='%s' and FACL_TEST_EVERY=%ld select %zu of %zu cases\n",
                      filter ? filter : "", every, nsel, g_ncases);
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
    failed = _cmocka_run_group_tests(group, tests, nsel, NULL, NULL);
    facl_context_free(g_ctx);
    free(tests);
    free(g_cases);
    return failed;
}
