/* Eight processes start at once on one cold, empty cache directory: each compiles what
 * it does not find, stores it while the others load and store the same entries, and
 * checks its results exactly against the float64 reference. Afterwards every file in
 * the directory must be a complete, valid entry (no torn or temporary file) and a new
 * process must find every program there.
 *
 * The children are this same binary run with "--child <index> <gate fd>" (posix_spawn):
 * they block reading the gate pipe until the parent closes its end, so all eight
 * start their work at the same moment. */
#define _XOPEN_SOURCE 700
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <setjmp.h>
#include <spawn.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "case_runner.h"
#include "disk_cache.h"
#include "facl.h"

extern char **environ;

enum { PROCESSES = 8, CASES = 4 };

static const char *self_path; /* argv[0]: how to start a child */
static char cache_root[512];

/* The variants test_cache compiles (the driver's own compile cache may then help),
 * and one packed layout. */
static fwd_case child_case(int index, int child)
{
    static const facl_dtype dtypes[CASES] = {FACL_DTYPE_F32, FACL_DTYPE_F16, FACL_DTYPE_BF16,
                                             FACL_DTYPE_F32};
    fwd_case c = fwd_case_make(index == 3 ? CASE_KVPACKED : CASE_DENSE, dtypes[index], 24, 17,
                               33, 4, 2, 2,
                               1234u + (uint64_t)dtypes[index] + 100u * (uint64_t)child);
    c.opts.causal = 1;
    return c;
}

/* Run every case; 1 if all pass. Failures are described on stderr. */
static int run_cases(facl_context *ctx, int child)
{
    int ok = 1;
    for (int j = 0; j < CASES; ++j) {
        /* Each child starts at another case, so different programs are compiled, stored
         * and loaded at the same moment. */
        fwd_case c = child_case((child + j) % CASES, child);
        case_result r;
        if (!run_fwd_case(ctx, &c, &r)) {
            char name[200];
            fwd_case_name(&c, name, sizeof name);
            fprintf(stderr, "process %d: %s: %s\n", child, name, r.detail);
            ok = 0;
        }
    }
    return ok;
}

static int child_main(int child, int gate)
{
    alarm(540); /* a hung child must not outlive the test's timeout */
    char byte;
    while (read(gate, &byte, 1) < 0 && errno == EINTR) continue; /* EOF: everyone is up */
    close(gate);
    facl_context *ctx = NULL;
    if (facl_context_create(NULL, &ctx) != FACL_SUCCESS) {
        fprintf(stderr, "process %d: context: %s\n", child, facl_last_error());
        return 1;
    }
    const int ok = run_cases(ctx, child);
    facl_context_free(ctx);
    return ok ? 0 : 1;
}

/* Every file must be "<hex key>.bin" holding a valid entry for that key; returns the
 * number of entries. */
static int check_entries(const char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    int entries = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        if (strlen(e->d_name) != 68 || strcmp(e->d_name + 64, ".bin") != 0)
            fail_msg("not an entry (a temporary file left behind?): %s", e->d_name);
        uint8_t key[32];
        for (int i = 0; i < 32; ++i) {
            unsigned byte;
            if (sscanf(e->d_name + 2 * i, "%2x", &byte) != 1) fail_msg("bad name %s", e->d_name);
            key[i] = (uint8_t)byte;
        }
        unsigned char *payload = NULL;
        size_t len = 0;
        if (facl_disk_cache_load(dir, key, &payload, &len) != 1)
            fail_msg("corrupt or partial entry: %s", e->d_name);
        free(payload);
        entries++;
    }
    closedir(d);
    return entries;
}

static void test_cold_start_in_8_processes(void **state)
{
    (void)state;
    char dir[600];
    snprintf(dir, sizeof dir, "%s/cold", cache_root);
    setenv("FACL_CACHE_DIR", dir, 1);
    unsetenv("FACL_CACHE");

    int gate[2];
    assert_int_equal(pipe(gate), 0);
    posix_spawn_file_actions_t actions;
    assert_int_equal(posix_spawn_file_actions_init(&actions), 0);
    assert_int_equal(posix_spawn_file_actions_addclose(&actions, gate[1]), 0);
    pid_t pids[PROCESSES];
    for (int i = 0; i < PROCESSES; ++i) {
        char index[16], fd[16];
        snprintf(index, sizeof index, "%d", i);
        snprintf(fd, sizeof fd, "%d", gate[0]);
        char *argv[] = {(char *)self_path, "--child", index, fd, NULL};
        assert_int_equal(posix_spawn(&pids[i], self_path, &actions, NULL, argv, environ), 0);
    }
    posix_spawn_file_actions_destroy(&actions);
    close(gate[0]);
    close(gate[1]); /* go */

    int failed = 0;
    for (int i = 0; i < PROCESSES; ++i) {
        int status = 0;
        while (waitpid(pids[i], &status, 0) < 0 && errno == EINTR) continue;
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            fprintf(stderr, "process %d: %s %d\n", i,
                    WIFEXITED(status) ? "exit status" : "killed by signal",
                    WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
            failed++;
        }
    }
    assert_int_equal(failed, 0);
    assert_true(check_entries(dir) >= 3); /* one program per dtype at least */

    /* What they left is complete: a new process compiles nothing. */
    facl_context *ctx = NULL;
    assert_int_equal(facl_context_create(NULL, &ctx), FACL_SUCCESS);
    assert_true(run_cases(ctx, PROCESSES));
    facl_cache_stats stats = FACL_CACHE_STATS_INIT;
    assert_int_equal(facl_context_cache_stats(ctx, &stats), FACL_SUCCESS);
    facl_context_free(ctx);
    assert_int_equal(stats.source_builds, 0);
    assert_int_equal(stats.disk_rejects, 0);
    assert_true(stats.disk_hits >= 3);
}

static int make_root(void **state)
{
    (void)state;
    const char *base = getenv("FACL_TEST_TMPDIR");
    if (!base) base = getenv("TMPDIR");
    snprintf(cache_root, sizeof cache_root, "%s/facl-procs-test-XXXXXX", base ? base : "/tmp");
    return mkdtemp(cache_root) ? 0 : -1;
}

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int remove_root(void **state)
{
    (void)state;
    return nftw(cache_root, remove_one, 16, FTW_DEPTH | FTW_PHYS);
}

int main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[1], "--child") == 0)
        return child_main(atoi(argv[2]), atoi(argv[3]));
    self_path = argv[0];
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cold_start_in_8_processes),
    };
    return cmocka_run_group_tests(tests, make_root, remove_root);
}
