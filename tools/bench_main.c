/*
 * facl-bench: forward attention throughput on FlashAttention's benchmark grid, next to
 * standard attention built from CLBlast GEMMs (the baseline an OpenCL user would write).
 * See bench_grid.c for the options (--help), bench_run.c for what is measured.
 * --decode measures facl_fwd_kvcache with seqlen_q 1 in GB/s instead (bench_decode.h);
 * --bwd measures the backward, facl_bwd, over the same grid (bench_bwd.h).
 * --host-cost measures the host's time per call of a few small calls (bench_host.h).
 *
 * Exit status: 0 when every facl point ran (points that do not fit the device are n/a,
 * not failures) and the baseline agreed with facl; 1 otherwise; 2 on a usage error.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_bwd.h"
#include "bench_clblast.h"
#include "bench_decode.h"
#include "bench_devices.h"
#include "bench_grid.h"
#include "bench_host.h"
#include "bench_output.h"
#include "bench_run.h"
#include "bench_verify.h"

/* "P:D" of the context's device, as facl-selftest -l numbers it. */
static void device_selector(const bench_session *s, char *buf, size_t size)
{
    snprintf(buf, size, "?");
    tool_device_list list;
    if (tool_devices_enumerate(&list) != 0) return;
    cl_device_id id = facl_context_device(s->ctx);
    for (size_t i = 0; i < list.count; ++i)
        if (list.items[i].id == id) snprintf(buf, size, "%s", list.items[i].selector);
    tool_devices_free(&list);
}

static int verify_all(bench_session *s, const bench_options *o, FILE *f)
{
    int bad = 0, printed = 0;
    for (int t = 0; t < o->n_dtypes; ++t) {
        char why[160];
        if (!s->baseline || !bench_baseline_supports(s->baseline, o->dtypes[t], why, sizeof why))
            continue;
        for (int c = 0; c < o->n_causal; ++c) {
            bad |= bench_verify_baseline(s, o->dtypes[t], o->causal[c], o->hdims[0], f);
            printed = 1;
        }
    }
    if (printed) fputc('\n', f);
    return bad;
}

/* A mode with its own table (--decode, --bwd, --host-cost) on a session of its own. */
typedef int (*mode_fn)(bench_session *s, const char *selector, FILE *table);

static int run_mode(const bench_options *o, FILE *table, mode_fn run)
{
    bench_session s;
    char err[512];
    if (bench_session_open(&s, o, err, sizeof err) != 0) {
        fprintf(stderr, "facl-bench: %s\n", err);
        return 1;
    }
    char selector[32];
    device_selector(&s, selector, sizeof selector);
    int rc = run(&s, selector, table);
    bench_session_close(&s);
    return rc;
}

static void note_skipped_seqlens(const bench_options *o)
{
    for (int i = 0; i < o->n_seqlens; ++i)
        if (o->seqlens[i] > o->tokens)
            fprintf(stderr, "facl-bench: seqlen %d skipped: above --tokens %ld\n", o->seqlens[i],
                    o->tokens);
}

int main(int argc, char **argv)
{
    bench_options o;
    int rc = bench_parse_args(argc, argv, &o);
    if (rc != 0) return rc > 0 ? 0 : 2;

    /* Machine output on stdout moves the table to stderr. */
    int stdout_taken = (o.json_path && strcmp(o.json_path, "-") == 0) ||
                       (o.csv_path && strcmp(o.csv_path, "-") == 0);
    FILE *table = stdout_taken ? stderr : stdout;
    if (o.decode) return run_mode(&o, table, bench_decode_run);
    if (o.host_cost) return run_mode(&o, table, bench_host_run);
    if (o.bwd) {
        note_skipped_seqlens(&o);
        return run_mode(&o, table, bench_bwd_run);
    }

    size_t max_points = (size_t)o.n_dtypes * o.n_hdims * o.n_causal * o.n_seqlens *
                        (size_t)(o.n_portable_kernels ? o.n_portable_kernels : 1);
    bench_row *rows = calloc(max_points ? max_points : 1, sizeof *rows);
    bench_config *configs = calloc(max_points ? max_points : 1, sizeof *configs);
    if (!rows || !configs) {
        fprintf(stderr, "facl-bench: out of host memory\n");
        free(rows);
        free(configs);
        return 1;
    }
    size_t n = bench_grid_configs(&o, configs, max_points);
    note_skipped_seqlens(&o);
    if (n == 0) {
        fprintf(stderr, "facl-bench: no point of the grid has seqlen <= --tokens %ld\n", o.tokens);
        free(rows);
        free(configs);
        return 2;
    }

    bench_session s;
    char err[512];
    if (bench_session_open(&s, &o, err, sizeof err) != 0) {
        fprintf(stderr, "facl-bench: %s\n", err);
        free(rows);
        free(configs);
        return 1;
    }
    char selector[32];
    device_selector(&s, selector, sizeof selector);
    bench_print_header(table, &s, selector);
    if (o.verify) rc |= verify_all(&s, &o, table);
    bench_print_columns(table, &o);

    for (size_t i = 0; i < n; ++i) {
        rows[i].cfg = configs[i];
        bench_session_measure(&s, &rows[i]);
        bench_print_row(table, &o, &rows[i]);
        if (o.progress) bench_print_progress(stderr, i, n, &rows[i]);
        if (rows[i].ours.state == BENCH_ERROR) rc = 1;
    }
    if (o.json_path && bench_write_json(o.json_path, &s, selector, rows, n) != 0) rc = 1;
    if (o.csv_path && bench_write_csv(o.csv_path, &o, rows, n) != 0) rc = 1;

    bench_session_close(&s);
    bench_baseline_shutdown();
    free(rows);
    free(configs);
    return rc;
}
