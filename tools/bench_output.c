/* facl-bench output (see bench_output.h). */
#include "bench_output.h"

#include <errno.h>
#include <string.h>

#include "bench_buffers.h"
#include "bench_devices.h"
#include "bench_json.h"
#include "tool_util.h"

#define LAYOUT_OURS "(batch, seqlen, heads, head_dim), lse written"
#define LAYOUT_BASE \
    "(batch, heads, seqlen, head_dim), full score matrix (batch*heads*seqlen*seqlen) materialised"
#define TIMING_NOTE \
    "median of profiling-event spans (stamp kernel end to last command end) after a warm-up"

static const char *state_name(bench_state st)
{
    switch (st) {
    case BENCH_OK: return "ok";
    case BENCH_NA: return "n/a";
    case BENCH_UNAVAILABLE: return "unavailable";
    case BENCH_ERROR: return "error";
    }
    return "?";
}

void bench_print_header(FILE *f, const bench_session *s, const char *selector)
{
    const facl_device_info *d = &s->info;
    fprintf(f, "facl-bench %s on %s: %s (%s, driver %s)\n", facl_version_string(), selector,
            d->device_name, d->platform_name, d->driver_version);
    fprintf(f, "forward, %ld tokens (batch = tokens / seqlen), heads * head_dim = %d\n",
            s->opts->tokens, BENCH_HIDDEN);
    fprintf(f, "facl:    %s kernel, " LAYOUT_OURS "\n", d->kernel_path);
    if (s->opts->n_portable_kernels)
        fprintf(f, "         portable kernels side by side: %s%s%s (FACL_PORTABLE_KERNEL, "
                   "FACL_CPU_PACK)\n",
                s->opts->portable_kernels[0], s->opts->n_portable_kernels > 1 ? ", " : "",
                s->opts->n_portable_kernels > 1 ? s->opts->portable_kernels[1] : "");
    fprintf(f, "clblast: %s\n",
            s->baseline ? "CLBlast GEMM + softmax kernel + GEMM, " LAYOUT_BASE : s->baseline_why);
    fprintf(f, "TFLOP/s = 4*b*s*s*h*d (halved for causal) / " TIMING_NOTE "\n\n");
}

void bench_print_columns(FILE *f, const bench_options *o)
{
    const char *kernel = o->n_portable_kernels ? " kernel  " : "";
    fprintf(f, "%-5s %4s %6s %5s %5s %6s%s | %9s %9s %9s | %9s %9s %9s | %s\n", "dtype", "hdim",
            "seqlen", "batch", "heads", "causal", kernel, "facl", "ms", "MiB", "clblast", "ms",
            "MiB", "facl/clblast");
    fprintf(f, "%-5s %4s %6s %5s %5s %6s%s | %9s %9s %9s | %9s %9s %9s |\n", "", "", "", "", "", "",
            o->n_portable_kernels ? "         " : "", "TFLOP/s", "", "", "TFLOP/s", "", "");
}

/* The row's --portable-kernel name, or NULL. */
static const char *kernel_name(const bench_options *o, const bench_config *c)
{
    return c->portable_kernel >= 0 && c->portable_kernel < o->n_portable_kernels
               ? o->portable_kernels[c->portable_kernel]
               : NULL;
}

/* Three columns of one implementation: figures, or the note spanning them. */
static void print_measure(FILE *f, const bench_measure *m)
{
    if (m->state == BENCH_OK)
        fprintf(f, "%9.3f %9.2f %9.0f", m->tflops, m->median_ms,
                (double)m->mem_bytes / (1024.0 * 1024.0));
    else
        fprintf(f, "%-29.29s", m->note);
}

void bench_print_row(FILE *f, const bench_options *o, const bench_row *r)
{
    const bench_config *c = &r->cfg;
    const char *kernel = kernel_name(o, c);
    fprintf(f, "%-5s %4d %6d %5d %5d %6s", tool_dtype_name(c->dtype), c->hdim, c->seqlen,
            c->batch, c->heads, c->causal ? "on" : "off");
    if (o->n_portable_kernels) fprintf(f, " %-8s", kernel ? kernel : "");
    fputs(" | ", f);
    print_measure(f, &r->ours);
    fputs(" | ", f);
    if (r->base.state != BENCH_OK) {
        /* No ratio follows, so the baseline's note may run to the end of the line. */
        fprintf(f, "%s\n", r->base.note);
    } else {
        print_measure(f, &r->base);
        if (r->ours.state == BENCH_OK && r->base.tflops > 0)
            fprintf(f, " | %.2fx", r->ours.tflops / r->base.tflops);
        fputc('\n', f);
    }
    if (r->ours.state != BENCH_OK && strlen(r->ours.note) > 29)
        fprintf(f, "    facl: %s\n", r->ours.note);
    fflush(f);
}

void bench_print_progress(FILE *f, size_t i, size_t n, const bench_row *r)
{
    const bench_config *c = &r->cfg;
    fprintf(f, "[%zu/%zu] %s d=%d s=%d causal %s: facl %.1f s, clblast %.1f s (wall, incl. setup)\n",
            i + 1, n, tool_dtype_name(c->dtype), c->hdim, c->seqlen, c->causal ? "on" : "off",
            r->ours.wall_s, r->base.wall_s);
    fflush(f);
}

static void json_measure(json_writer *w, const bench_options *o, const bench_row *r,
                         const char *impl, const bench_measure *m)
{
    const bench_config *c = &r->cfg;
    json_begin_object(w, NULL);
    json_string(w, "kind", "fwd");
    json_string(w, "impl", impl);
    const char *kernel = kernel_name(o, c);
    if (kernel) json_string(w, "portable_kernel", kernel);
    json_string(w, "dtype", tool_dtype_name(c->dtype));
    json_int(w, "hdim", c->hdim);
    json_int(w, "seqlen", c->seqlen);
    json_int(w, "batch", c->batch);
    json_int(w, "heads", c->heads);
    json_bool(w, "causal", c->causal);
    json_string(w, "status", state_name(m->state));
    if (m->state == BENCH_OK) {
        json_number(w, "tflops", m->tflops);
        json_number(w, "ms", m->median_ms);
        json_number(w, "ms_min", m->min_ms);
        json_number(w, "ms_max", m->max_ms);
        json_int(w, "reps", m->reps);
    } else {
        json_null(w, "tflops");
        json_string(w, "note", m->note);
    }
    json_uint(w, "mem_bytes", (unsigned long long)m->mem_bytes);
    json_number(w, "wall_s", m->wall_s);
    json_end_object(w);
}

int bench_write_json(const char *path, const bench_session *s, const char *selector,
                     const bench_row *rows, size_t n)
{
    FILE *f = tool_open_output(path);
    if (!f) return -1;
    json_writer w;
    json_init(&w, f);
    json_begin_object(&w, NULL);
    json_string(&w, "tool", "facl-bench");
    json_string(&w, "version", facl_version_string());
    json_begin_object(&w, "device");
    json_string(&w, "selector", selector);
    json_string(&w, "platform", s->info.platform_name);
    json_string(&w, "name", s->info.device_name);
    json_string(&w, "driver", s->info.driver_version);
    json_string(&w, "type", tool_device_type_name(s->info.device_type));
    json_string(&w, "kernel_path", s->info.kernel_path);
    json_uint(&w, "global_mem", (unsigned long long)s->info.global_mem);
    json_uint(&w, "max_alloc", (unsigned long long)s->info.max_alloc);
    json_end_object(&w);
    json_int(&w, "tokens", s->opts->tokens);
    json_int(&w, "hidden", BENCH_HIDDEN);
    json_string(&w, "timing", TIMING_NOTE);
    json_begin_object(&w, "layouts");
    json_string(&w, "facl", LAYOUT_OURS);
    json_string(&w, "clblast", LAYOUT_BASE);
    json_end_object(&w);
    json_string(&w, "clblast_status", s->baseline ? "available" : s->baseline_why);
    json_begin_array(&w, "rows");
    for (size_t i = 0; i < n; ++i) {
        json_measure(&w, s->opts, &rows[i], "facl", &rows[i].ours);
        json_measure(&w, s->opts, &rows[i], "clblast", &rows[i].base);
    }
    json_end_array(&w);
    json_end_object(&w);
    json_finish(&w);
    return tool_close_output(f, path);
}

/* CSV fields are numbers and notes; notes may hold commas, so they are quoted. */
static void csv_measure(FILE *f, const bench_options *o, const bench_row *r, const char *impl,
                        const bench_measure *m)
{
    const char *kernel = kernel_name(o, &r->cfg);
    const bench_config *c = &r->cfg;
    fprintf(f, "%s,%s,%d,%d,%d,%d,%d,%s,", impl, tool_dtype_name(c->dtype), c->hdim, c->seqlen,
            c->batch, c->heads, c->causal, state_name(m->state));
    if (m->state == BENCH_OK)
        fprintf(f, "%.6g,%.6g,%d,", m->tflops, m->median_ms, m->reps);
    else
        fputs(",,,", f);
    fprintf(f, "%llu,\"", (unsigned long long)m->mem_bytes);
    for (const char *p = m->note; *p; ++p) {
        if (*p == '"') fputc('"', f);
        fputc(*p, f);
    }
    fprintf(f, "\",%s\n", kernel ? kernel : "");
}

int bench_write_csv(const char *path, const bench_options *o, const bench_row *rows, size_t n)
{
    FILE *f = tool_open_output(path);
    if (!f) return -1;
    fputs("impl,dtype,hdim,seqlen,batch,heads,causal,status,tflops,ms,reps,mem_bytes,note,"
          "portable_kernel\n", f);
    for (size_t i = 0; i < n; ++i) {
        csv_measure(f, o, &rows[i], "facl", &rows[i].ours);
        csv_measure(f, o, &rows[i], "clblast", &rows[i].base);
    }
    return tool_close_output(f, path);
}
