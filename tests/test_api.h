/* Shared helpers of the API tests (test_api*.c): one tiny fp32 dense problem, poisoned
 * outputs, and the check of a result against the testkit's float64 reference. */
#ifndef FACL_TEST_API_H
#define FACL_TEST_API_H

#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "facl.h"

/* The one kernel variant most tests use (fp32, head_dim 16), so that they share one
 * compile (and the disk cache across runs). */
enum { T_B = 2, T_SQ = 5, T_SK = 9, T_HQ = 2, T_HKV = 1, T_D = 16 };

typedef struct tiny {
    cl_context cl_ctx;
    float *q, *k, *v; /* host inputs (fp32 values, exactly what was uploaded) */
    size_t nq, nk, nlse;
    cl_mem bq, bk, bv, bout, blse;
    facl_tensor tq, tk, tv, tout, tlse;
} tiny;

/* What the reference computes: the options that change numbers. */
typedef struct tiny_expect {
    float scale; /* 0 = 1/sqrt(d) */
    int causal;
    int top_left;
    int window_left, window_right; /* -1 unbounded */
    float softcap;
    int varlen_lse; /* lse was written as (heads_q, total_q) by a varlen call */
} tiny_expect;

#define TINY_EXPECT_DEFAULT {0.0f, 0, 0, -1, -1, 0.0f, 0}

void tiny_init(tiny *t, cl_context cl_ctx, uint64_t seed);
void tiny_free(tiny *t);
/* Fill out and lse with 0xFF bytes (NaN) through `queue` (blocking). */
void tiny_poison(tiny *t, cl_command_queue queue);
/* 1 if every byte of out and lse still holds the poison (blocking read on `queue`). */
int tiny_still_poisoned(tiny *t, cl_command_queue queue);
/* Reads out and lse back through `queue` (blocking) and compares them with the float64
 * reference; fails the test with the errors if they do not match. */
void tiny_check_at(tiny *t, cl_command_queue queue, const tiny_expect *e, const char *file,
                   int line);
#define tiny_check(t, queue, e) tiny_check_at((t), (queue), (e), __FILE__, __LINE__)

/* The test cache directory the test environment gave (FACL_CACHE_DIR at start), or "". */
extern char g_env_cache_dir[512];
/* A scratch directory for this process (under FACL_TEST_TMPDIR or /tmp). */
extern char g_tmp_dir[512];

/* facl_last_error() contains `needle`, else fail with the message. */
#define assert_error_names(needle)                                                         \
    do {                                                                                   \
        if (!strstr(facl_last_error(), (needle)))                                          \
            fail_msg("message '%s' does not name '%s'", facl_last_error(), (needle));     \
    } while (0)

/* A context on the default device (fails the test if there is none). */
facl_context *api_context(void);
facl_device_info api_info(const facl_context *ctx);
facl_cache_stats api_stats(const facl_context *ctx);

/* facl_fwd on the tiny problem: with a queue, wait list and event; or with options. */
facl_status tiny_run(facl_context *ctx, cl_command_queue queue, tiny *t, cl_uint nwait,
                     const cl_event *wait, cl_event *ev);
facl_status tiny_run_opts(facl_context *ctx, tiny *t, const void *opts);
/* The facl_prepare_desc of the tiny problem's variant with `opts` (NULL = defaults). */
facl_prepare_desc tiny_desc(const facl_attn_options *opts);

/* A fresh tiny problem with default options on ctx's queue, checked. */
void tiny_run_and_check(facl_context *ctx, uint64_t seed);

/* A log callback (user = a log_record): counts per kind, the last KERNEL_PATH message. */
typedef struct log_record {
    pthread_mutex_t lock;
    int count[8]; /* [0]: kinds outside facl_log_kind */
    int empty_messages;
    char path_message[512];
} log_record;
void record_log(void *user, int32_t kind, const char *message);
void log_record_init(log_record *r);

/* Groups, each in its own file. */
int run_context_tests(void);  /* test_api_context.c */
int run_config_tests(void);   /* test_api_config.c */
int run_struct_tests(void);   /* test_api_struct.c */
int run_prepare_tests(void);  /* test_api_prepare.c */
int run_trust_tests(void);    /* test_api_trust.c */

#endif
