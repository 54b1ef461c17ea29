/* facl-bench --decode output: the table, JSON and CSV (see bench_decode.h). JSON rows
 * carry torch_sdpa.py --decode's field names (kind, dtype, hdim, seqlen_k, batch, heads,
 * heads_kv, ms, gb_per_s) so that tools/bench_table.py can join the two. */
#include <errno.h>
#include <string.h>

#include "bench_buffers.h"
#include "bench_decode.h"
#include "bench_devices.h"
#include "bench_json.h"
#include "tool_util.h"

#define DECODE_TIMING \
    "median of profiling-event spans (stamp kernel end to the call's last command end) " \
    "after a warm-up"
#define DECODE_FLUSH \
    "each timed run first fills flush_mib MiB on the device: the host's call overhead is " \
    "hidden behind the fill and the caches are cold (triton's do_bench does the same for " \
    "torch_sdpa.py); flush_mib 0: the span includes the host's overhead"
#define DECODE_BYTES "GB/s = k+v cache bytes read (batch*kv_len*heads_kv*d*2*elem, 1 GB = 1e9 B) / median"
#define LAYOUT_CONTIGUOUS \
    "facl_fwd_kvcache, dense cache (batch, kv_len, heads_kv, d); every facl_fwd_kvcache call " \
    "gets a workspace made once per point (facl_fwd_kvcache_workspace_size)"
#define LAYOUT_PAGED \
    "facl_fwd_kvcache, paged cache (num_blocks, page_size, heads_kv, d), block table a random " \
    "permutation of the pages"
#define LAYOUT_FWD "facl_fwd, q (batch, 1, heads, d) over the contiguous k/v: the path before the cache call"
#define KV_ORDERS \
    "rows: shd = each position's kv heads side by side; hsd = the same shape as a strided view " \
    "of (.., kv head, position, d) storage, each head's rows contiguous (torch_sdpa.py --decode's)"

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

void decode_print_header(FILE *f, const bench_session *s, const char *selector)
{
    const facl_device_info *d = &s->info;
    const bench_options *o = s->opts;
    fprintf(f, "facl-bench %s on %s: %s (%s, driver %s)\n", facl_version_string(), selector,
            d->device_name, d->platform_name, d->driver_version);
    fprintf(f, "decode: seqlen_q 1 over a KV cache, batch %d, heads %d/%d (q/kv), %s kernel\n",
            o->batch, o->heads, o->heads_kv, d->kernel_path);
    fprintf(f, "contiguous: %s\n", LAYOUT_CONTIGUOUS);
    fprintf(f, "paged P:    %s\n", LAYOUT_PAGED);
    fprintf(f, "facl_fwd:   %s\n", LAYOUT_FWD);
    fprintf(f, "%s\n", KV_ORDERS);
    if (o->pages_in_order) fprintf(f, "pages:      in memory order (--page-order sequential)\n");
    if (o->lens_as_value)
        fprintf(f, "lengths:    cache_seqlens_value (one host value for all, --cache-lens value)\n");
    fprintf(f, "%s; %s\n", DECODE_BYTES, DECODE_TIMING);
    fprintf(f, "flush before each run: %d MiB (%s)\n", s->timer.flush_bytes ? (int)(s->timer.flush_bytes >> 20) : 0,
            s->timer.flush_bytes ? "device time; host overhead hidden, caches cold"
                                 : "off: the span includes the host's call overhead");
    if (s->timer.flush_bytes && s->timer.flush_read)
        fprintf(f, "flush read: on (the filled buffer read back: the caches hold clean lines)\n");
    fprintf(f, "an empty kernel through the same timer: %.1f us (the launch floor of each kernel of a call)\n",
            s->timer.empty_ms * 1e3);
    if (o->copy_gbps > 0)
        fprintf(f, "%%copy = GB/s as a share of the copy rate given, %.1f GB/s\n", o->copy_gbps);
    fprintf(f, "check: %s\n\n",
            o->verify ? "before timing, one call with the index buffers validated; out and lse "
                        "of 3 (sequence, head) rows vs float64 on the host (error/bound)"
                      : "off (--no-verify)");
}

void decode_print_columns(FILE *f)
{
    fprintf(f, "%-5s %4s %7s %5s %6s %-14s %6s | %9s %9s %6s | %s\n", "dtype", "hdim", "kv_len",
            "batch", "heads", "layout", "splits", "ms", "GB/s", "%copy", "check");
}

static const char *kv_order_name(const decode_config *c) { return c->kv_hsd ? "hsd" : "shd"; }

/* The layout, with the row order when it is not the default */
static void layout_label(const decode_config *c, char *buf, size_t size)
{
    const char *order = c->kv_hsd ? " hsd" : "";
    if (c->layout == DECODE_PAGED)
        snprintf(buf, size, "paged %d%s", c->page_size, order);
    else if (c->layout == DECODE_FWD)
        snprintf(buf, size, "facl_fwd%s", order);
    else
        snprintf(buf, size, "contig%s", c->kv_hsd ? order : "uous");
}

static void splits_label(const decode_config *c, char *buf, size_t size)
{
    if (c->layout == DECODE_FWD)
        snprintf(buf, size, "-");
    else if (c->num_splits == 0)
        snprintf(buf, size, "auto");
    else
        snprintf(buf, size, "%d", c->num_splits);
}

void decode_print_row(FILE *f, const bench_options *o, const decode_row *r)
{
    const decode_config *c = &r->cfg;
    char heads[24], layout[24], splits[16];
    snprintf(heads, sizeof heads, "%d/%d", c->heads, c->heads_kv);
    layout_label(c, layout, sizeof layout);
    splits_label(c, splits, sizeof splits);
    fprintf(f, "%-5s %4d %7d %5d %6s %-14s %6s | ", tool_dtype_name(c->dtype), c->hdim, c->kv_len,
            c->batch, heads, layout, splits);
    if (r->m.state != BENCH_OK) {
        fprintf(f, "%s%s\n", r->m.state == BENCH_ERROR ? "ERROR " : "", r->m.note);
        fflush(f);
        return;
    }
    char pct[16] = "-";
    if (o->copy_gbps > 0) snprintf(pct, sizeof pct, "%.1f%%", 100.0 * r->gb_per_s / o->copy_gbps);
    fprintf(f, "%9.3f %9.2f %6s | ", r->m.median_ms, r->gb_per_s, pct);
    if (r->checked)
        fprintf(f, "%.1e/%.1e\n", r->check_err, r->check_bound);
    else
        fputs("-\n", f);
    fflush(f);
}

void decode_print_progress(FILE *f, size_t i, size_t n, const decode_row *r)
{
    const decode_config *c = &r->cfg;
    char layout[24], splits[16];
    layout_label(c, layout, sizeof layout);
    splits_label(c, splits, sizeof splits);
    fprintf(f, "[%zu/%zu] %s d=%d kv=%d %s splits %s: %.1f s (wall, incl. setup and check)\n",
            i + 1, n, tool_dtype_name(c->dtype), c->hdim, c->kv_len, layout, splits, r->m.wall_s);
    fflush(f);
}

static void json_row(json_writer *w, const bench_options *o, const decode_row *r)
{
    const decode_config *c = &r->cfg;
    json_begin_object(w, NULL);
    json_string(w, "kind", "decode");
    json_string(w, "impl", "facl");
    json_string(w, "api", c->layout == DECODE_FWD ? "facl_fwd" : "facl_fwd_kvcache");
    json_string(w, "layout", decode_layout_name(c->layout));
    json_string(w, "dtype", tool_dtype_name(c->dtype));
    json_int(w, "hdim", c->hdim);
    json_int(w, "seqlen_q", 1);
    json_int(w, "seqlen_k", c->kv_len);
    json_int(w, "batch", c->batch);
    json_int(w, "heads", c->heads);
    json_int(w, "heads_kv", c->heads_kv);
    json_int(w, "page_size", c->page_size);
    json_string(w, "kv_order", kv_order_name(c));
    if (c->layout == DECODE_FWD)
        json_null(w, "num_splits");
    else
        json_int(w, "num_splits", c->num_splits);
    json_uint(w, "bytes", (unsigned long long)decode_kv_bytes(c));
    json_string(w, "status", state_name(r->m.state));
    if (r->m.state == BENCH_OK) {
        json_number(w, "ms", r->m.median_ms);
        json_number(w, "ms_min", r->m.min_ms);
        json_number(w, "ms_max", r->m.max_ms);
        json_int(w, "reps", r->m.reps);
        json_number(w, "gb_per_s", r->gb_per_s);
        if (o->copy_gbps > 0)
            json_number(w, "pct_copy", 100.0 * r->gb_per_s / o->copy_gbps);
        else
            json_null(w, "pct_copy");
    } else {
        json_null(w, "ms");
        json_null(w, "gb_per_s");
        json_string(w, "note", r->m.note);
    }
    if (r->checked) {
        json_number(w, "check_error", r->check_err);
        json_number(w, "check_bound", r->check_bound);
    } else {
        json_null(w, "check_error");
    }
    json_uint(w, "mem_bytes", (unsigned long long)r->m.mem_bytes);
    json_number(w, "wall_s", r->m.wall_s);
    json_end_object(w);
}

int decode_write_json(const char *path, const bench_session *s, const char *selector,
                      const decode_row *rows, size_t n)
{
    const bench_options *o = s->opts;
    FILE *f = tool_open_output(path);
    if (!f) return -1;
    json_writer w;
    json_init(&w, f);
    json_begin_object(&w, NULL);
    json_string(&w, "tool", "facl-bench");
    json_string(&w, "version", facl_version_string());
    json_string(&w, "mode", "decode");
    json_number(&w, "empty_kernel_ms", s->timer.empty_ms);
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
    json_int(&w, "batch", o->batch);
    json_int(&w, "heads", o->heads);
    json_int(&w, "heads_kv", o->heads_kv);
    if (o->copy_gbps > 0)
        json_number(&w, "copy_gbps", o->copy_gbps);
    else
        json_null(&w, "copy_gbps");
    json_bool(&w, "verified", o->verify);
    json_string(&w, "timing", DECODE_TIMING);
    json_string(&w, "flush", DECODE_FLUSH);
    json_int(&w, "flush_mib", (long long)(s->timer.flush_bytes >> 20));
    json_bool(&w, "flush_read", s->timer.flush_bytes && s->timer.flush_read);
    json_string(&w, "bytes", DECODE_BYTES);
    json_begin_object(&w, "layouts");
    json_string(&w, "contiguous", LAYOUT_CONTIGUOUS);
    json_string(&w, "paged", LAYOUT_PAGED);
    json_string(&w, "fwd", LAYOUT_FWD);
    json_end_object(&w);
    json_string(&w, "kv_orders", KV_ORDERS);
    json_bool(&w, "pages_in_order", o->pages_in_order);
    json_bool(&w, "lens_as_value", o->lens_as_value);
    json_begin_array(&w, "rows");
    for (size_t i = 0; i < n; ++i) json_row(&w, o, &rows[i]);
    json_end_array(&w);
    json_end_object(&w);
    json_finish(&w);
    return tool_close_output(f, path);
}

int decode_write_csv(const char *path, const bench_options *o, const decode_row *rows, size_t n)
{
    FILE *f = tool_open_output(path);
    if (!f) return -1;
    fputs("kind,impl,api,layout,dtype,hdim,seqlen_q,seqlen_k,batch,heads,heads_kv,page_size,"
          "kv_order,num_splits,status,ms,gb_per_s,pct_copy,reps,mem_bytes,note\n",
          f);
    for (size_t i = 0; i < n; ++i) {
        const decode_row *r = &rows[i];
        const decode_config *c = &r->cfg;
        fprintf(f, "decode,facl,%s,%s,%s,%d,1,%d,%d,%d,%d,%d,%s,",
                c->layout == DECODE_FWD ? "facl_fwd" : "facl_fwd_kvcache",
                decode_layout_name(c->layout), tool_dtype_name(c->dtype), c->hdim, c->kv_len,
                c->batch, c->heads, c->heads_kv, c->page_size, kv_order_name(c));
        if (c->layout != DECODE_FWD) fprintf(f, "%d", c->num_splits);
        fprintf(f, ",%s,", state_name(r->m.state));
        if (r->m.state == BENCH_OK) {
            fprintf(f, "%.6g,%.6g,", r->m.median_ms, r->gb_per_s);
            if (o->copy_gbps > 0) fprintf(f, "%.6g", 100.0 * r->gb_per_s / o->copy_gbps);
            fprintf(f, ",%d,", r->m.reps);
        } else {
            fputs(",,,,", f);
        }
        fprintf(f, "%llu,\"", (unsigned long long)r->m.mem_bytes);
        for (const char *p = r->m.note; *p; ++p) {
            if (*p == '"') fputc('"', f);
            fputc(*p, f);
        }
        fputs("\"\n", f);
    }
    return tool_close_output(f, path);
}
