/* The cmocka harness shared by the forward suites: each registered case becomes its
 * own named test, run on the default device (FACL_DEVICE selects another).
 * FACL_TEST_FILTER=<pattern> runs the cases whose full name ("<group>: <case name>")
 * matches it, with cmocka's syntax ('*' any run of characters, '?' one character); a
 * filter that selects no case fails the suite. FACL_TEST_VERBOSE=1 prints the errors of
 * passing cases too. */
#ifndef FACL_TESTS_CASE_SUITE_H
#define FACL_TESTS_CASE_SUITE_H

#include <stddef.h>
#include <stdint.h>

#include "case_runner.h"

/* A case with default options and lse on, its inputs seeded from `seed_base` and the
 * case's position in the suite (so that every case draws fresh inputs). */
fwd_case case_suite_case(case_layout layout, facl_dtype dt, int d, int sq, int sk, int hq,
                         int hkv, int batch, uint64_t seed_base);

/* Register a case under "<group>: <case name>". */
void case_suite_add(const char *group, const fwd_case *c);

/* How many cases are registered so far (for seeds that depend on a case's position). */
size_t case_suite_count(void);

/* 1 iff `name` matches `pattern` as a whole ('*' any run, '?' one character). */
int case_suite_match(const char *pattern, const char *name);

/* What case_suite_run returns when FACL_KERNEL_PATH forces a path the device lacks:
 * meson's "skipped" exit status. */
#define CASE_SUITE_SKIPPED 77

/* Run every registered case that FACL_TEST_FILTER selects (all if unset) as one cmocka
 * group; returns the number of failures, 1 if the filter selects none, or
 * CASE_SUITE_SKIPPED. */
int case_suite_run(const char *group);

#endif
