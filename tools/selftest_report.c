/* The self-test's output: an aligned table for people (device block, one row per
 * check, one per speed figure, a footer) and JSON for machines. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "bench_buffers.h"
#include "bench_json.h"
#include "selftest.h"
#include "tool_util.h"

static void format_bytes(uint64_t bytes, char *buf, size_t size)
{
    double b = (double)bytes;
    if (b >= 1024.0 * 1024 * 1024)
        snprintf(buf, size, "%.1f GiB", b / (1024.0 * 1024 * 1024));
    else if (b >= 1024.0 * 1024)
        snprintf(buf, size, "%.0f MiB", b / (1024.0 * 1024));
    else
        snprintf(buf, size, "%.0f KiB", b / 1024.0);
}

static const char *const k_tuning_classes[3] = {"d64", "d128", "d256"};
static const char *const k_tuning_fields[] = {"block_n",   "lanes",     "group_rows",
                                               "cpu_rows",  "kernel",    "blocked_m",
                                               "blocked_n", "blocked_tm", "blocked_tn"};
#define TUNING_FIELDS ((int)(sizeof k_tuning_fields / sizeof k_tuning_fields[0]))

/* The tuning entry (docs/TUNING.md): its level and key, the override file, the values. */
static void print_tuning(FILE *f, const char *text)
{
    char level[32], entry[256], vendor[32], arch[96], device[160], over[32], path[600],
        note[400];
    tool_kv_get(text, "level", level, sizeof level);
    tool_kv_get(text, "entry", entry, sizeof entry);
    tool_kv_get(text, "vendor", vendor, sizeof vendor);
    tool_kv_get(text, "architecture", arch, sizeof arch);
    tool_kv_get(text, "device", device, sizeof device);
    tool_kv_get(text, "override", over, sizeof over);
    tool_kv_get(text, "override_file", path, sizeof path);
    tool_kv_get(text, "note", note, sizeof note);
    fprintf(f, "   %-18s level %s: %s (this device: %s / %s / %s)\n", "tuning", level, entry,
            vendor, arch, device);
    fprintf(f, "   %-18s %s%s%s%s%s\n", "tuning override", over, path[0] ? " " : "", path,
            note[0] ? ": " : "", note);
    for (int c = 0; c < 3; ++c) {
        char line[224] = "";
        for (int i = 0; i < TUNING_FIELDS; ++i) {
            char key[32], value[16];
            snprintf(key, sizeof key, "%s.%s", k_tuning_classes[c], k_tuning_fields[i]);
            tool_kv_get(text, key, value, sizeof value);
            tool_appendf(line, sizeof line, "%s%s %s", i ? ", " : "", k_tuning_fields[i], value);
        }
        fprintf(f, "   %-18s %-5s %s\n", c == 0 ? "tuning values" : "", k_tuning_classes[c], line);
    }
}

void selftest_print_device_header(FILE *f, const selftest_device_report *rep)
{
    const tool_device *d = &rep->dev;
    fprintf(f, "== %s  %s  (%s, %s)\n", d->selector, d->device_name, d->platform_name,
            tool_device_type_name(d->type));
    fprintf(f, "   %-18s %s, driver %s\n", "OpenCL", d->device_version, d->driver_version);
    if (rep->error[0]) {
        fprintf(f, "   ERROR: %s\n", rep->error);
        return;
    }
    const facl_device_info *i = &rep->info;
    char usable[32], reported[32], global[32], alloc[32];
    format_bytes(i->local_mem_usable, usable, sizeof usable);
    format_bytes(i->local_mem_reported, reported, sizeof reported);
    format_bytes(i->global_mem, global, sizeof global);
    format_bytes(i->max_alloc, alloc, sizeof alloc);
    fprintf(f, "   %-18s %s (%s)\n", "kernel path", i->kernel_path, i->kernel_path_reason);
    fprintf(f, "   %-18s %s usable of %s reported\n", "local memory", usable, reported);
    fprintf(f, "   %-18s %s\n", "fp16 arithmetic",
            i->native_half ? "native half compiles"
                           : "no native half: fp16 stored via vload_half/vstore_half, fp32 math");
    fprintf(f, "   %-18s %llu\n", "max work-group", (unsigned long long)i->max_work_group_size);
    fprintf(f, "   %-18s %u\n", "compute units", i->compute_units);
    if (i->nv_compute_major)
        fprintf(f, "   %-18s %d.%d\n", "NVIDIA compute", i->nv_compute_major, i->nv_compute_minor);
    fprintf(f, "   %-18s %s (largest buffer %s)\n", "global memory", global, alloc);
    if (i->cache_dir[0])
        fprintf(f, "   %-18s %s\n", "disk cache", i->cache_dir);
    else
        fprintf(f, "   %-18s off%s%s\n", "disk cache", i->cache_note[0] ? ": " : "", i->cache_note);
    print_tuning(f, rep->tuning);
    fputc('\n', f);
}

void selftest_print_check_header(FILE *f)
{
    fprintf(f, "%-7s %-6s %9s  %-5s %-6s %9s %9s  %s\n", "DEVICE", "RESULT", "TIME ms", "WORST",
            "RULE", "ERROR", "BOUND", "CHECK");
}

void selftest_print_check(FILE *f, const selftest_device_report *rep,
                          const selftest_check_result *r)
{
    fprintf(f, "%-7s %-6s %9.1f  %-5s %-6s %9.2e %9.2e  %s\n", rep->dev.selector,
            r->pass ? "pass" : "FAIL", r->ms, r->worst, r->measure, r->error, r->bound, r->name);
    if (!r->pass) fprintf(f, "%-7s   -> %s\n", "", r->detail);
    fflush(f);
}

void selftest_print_speed(FILE *f, const selftest_device_report *rep,
                          const selftest_speed_result *s)
{
    if (s == &rep->speed[0])
        fprintf(f, "\n%-7s %-17s %9s %10s %5s  %s\n", "DEVICE", "SPEED", "TFLOP/s", "median ms",
                "runs", "CASE (non-causal, lse, profiling events)");
    if (s->ok)
        fprintf(f, "%-7s %-17s %9.4f %10.3f %5d  %s\n", rep->dev.selector, s->family, s->tflops,
                s->median_ms, s->reps, s->name);
    else
        fprintf(f, "%-7s %-17s %9s %10s %5s  %s: FAILED: %s\n", rep->dev.selector, s->family,
                "-", "-", "-", s->name, s->note);
    fflush(f);
}

void selftest_print_device_footer(FILE *f, const selftest_device_report *rep)
{
    if (rep->have_cache) {
        const facl_cache_stats *c = &rep->cache;
        fprintf(f, "\n   programs: %llu loaded from the disk cache, %llu compiled from source, "
                   "%llu memory hits, %llu written to the cache\n",
                (unsigned long long)c->disk_hits, (unsigned long long)c->source_builds,
                (unsigned long long)c->memory_hits, (unsigned long long)c->disk_writes);
    }
    if (rep->error[0])
        fprintf(f, "   result: ERROR (%s)\n\n", rep->error);
    else
        fprintf(f, "   result: %zu/%zu checks passed%s, %zu speed figures%s, %.1f s\n\n",
                rep->n_checks - rep->n_failed, rep->n_checks, rep->n_failed ? " (FAILED)" : "",
                rep->n_speed - rep->n_speed_failed, rep->n_speed_failed ? " (some FAILED)" : "",
                rep->seconds);
    fflush(f);
}

static int device_passed(const selftest_device_report *r)
{
    return !r->error[0] && r->n_failed == 0 && r->n_speed_failed == 0;
}

void selftest_print_summary(FILE *f, const selftest_device_report *reps, size_t n)
{
    size_t ok = 0;
    for (size_t i = 0; i < n; ++i) ok += (size_t)device_passed(&reps[i]);
    fprintf(f, "summary: %zu of %zu device%s passed:", ok, n, n == 1 ? "" : "s");
    for (size_t i = 0; i < n; ++i)
        fprintf(f, " %s %s", reps[i].dev.selector, device_passed(&reps[i]) ? "pass" : "FAIL");
    fputc('\n', f);
}

/* "tuning": the entry's level and key, the override file, and per head-dim class the
 * values in use. */
static void json_tuning(json_writer *w, const char *text)
{
    static const char *const strings[] = {"level", "entry", "vendor", "architecture", "device",
                                          "override", "override_file", "note"};
    char value[600];
    json_begin_object(w, "tuning");
    for (size_t i = 0; i < sizeof strings / sizeof strings[0]; ++i) {
        tool_kv_get(text, strings[i], value, sizeof value);
        json_string(w, strings[i], value);
    }
    for (int c = 0; c < 3; ++c) {
        json_begin_object(w, k_tuning_classes[c]);
        for (int i = 0; i < TUNING_FIELDS; ++i) {
            char key[32];
            snprintf(key, sizeof key, "%s.%s", k_tuning_classes[c], k_tuning_fields[i]);
            tool_kv_get(text, key, value, sizeof value);
            json_int(w, k_tuning_fields[i], atoi(value));
        }
        json_end_object(w);
    }
    json_end_object(w);
}

static void json_device(json_writer *w, const selftest_device_report *r)
{
    const tool_device *d = &r->dev;
    json_begin_object(w, NULL);
    json_string(w, "selector", d->selector);
    json_string(w, "platform", d->platform_name);
    json_string(w, "device", d->device_name);
    json_string(w, "type", tool_device_type_name(d->type));
    json_string(w, "opencl_version", d->device_version);
    json_string(w, "driver_version", d->driver_version);
    json_bool(w, "passed", device_passed(r));
    if (r->error[0])
        json_string(w, "error", r->error);
    else
        json_null(w, "error");
    if (r->context_ok && !r->error[0]) {
        const facl_device_info *i = &r->info;
        json_begin_object(w, "library");
        json_string(w, "kernel_path", i->kernel_path);
        json_string(w, "kernel_path_reason", i->kernel_path_reason);
        json_uint(w, "local_mem_usable", (unsigned long long)i->local_mem_usable);
        json_uint(w, "local_mem_reported", (unsigned long long)i->local_mem_reported);
        json_bool(w, "native_half", i->native_half);
        json_uint(w, "max_work_group_size", (unsigned long long)i->max_work_group_size);
        json_uint(w, "compute_units", i->compute_units);
        json_uint(w, "global_mem", (unsigned long long)i->global_mem);
        json_uint(w, "max_alloc", (unsigned long long)i->max_alloc);
        if (i->nv_compute_major) {
            char cc[16];
            snprintf(cc, sizeof cc, "%d.%d", i->nv_compute_major, i->nv_compute_minor);
            json_string(w, "nv_compute_capability", cc);
        }
        if (i->cache_dir[0])
            json_string(w, "cache_dir", i->cache_dir);
        else
            json_null(w, "cache_dir");
        json_string(w, "cache_note", i->cache_note);
        json_end_object(w);
        json_tuning(w, r->tuning);
    }
    if (r->have_cache) {
        json_begin_object(w, "program_cache");
        json_uint(w, "disk_hits", (unsigned long long)r->cache.disk_hits);
        json_uint(w, "source_builds", (unsigned long long)r->cache.source_builds);
        json_uint(w, "memory_hits", (unsigned long long)r->cache.memory_hits);
        json_uint(w, "disk_rejects", (unsigned long long)r->cache.disk_rejects);
        json_uint(w, "disk_writes", (unsigned long long)r->cache.disk_writes);
        json_uint(w, "disk_write_failures", (unsigned long long)r->cache.disk_write_failures);
        json_end_object(w);
    }
    json_begin_array(w, "checks");
    for (size_t i = 0; i < r->n_checks; ++i) {
        const selftest_check_result *c = &r->checks[i];
        json_begin_object(w, NULL);
        json_string(w, "family", c->family);
        json_string(w, "dtype", tool_dtype_name(c->dtype));
        json_string(w, "case", c->name);
        json_bool(w, "pass", c->pass);
        json_string(w, "worst_output", c->worst);
        json_string(w, "rule", c->measure);
        json_number(w, "error", c->error);
        json_number(w, "bound", c->bound);
        json_number(w, "ms", c->ms);
        json_string(w, "detail", c->detail);
        json_end_object(w);
    }
    json_end_array(w);
    json_begin_array(w, "speed");
    for (size_t i = 0; i < r->n_speed; ++i) {
        const selftest_speed_result *s = &r->speed[i];
        json_begin_object(w, NULL);
        json_string(w, "family", s->family);
        json_string(w, "case", s->name);
        json_bool(w, "ok", s->ok);
        if (s->ok) {
            json_number(w, "tflops", s->tflops);
            json_number(w, "median_ms", s->median_ms);
            json_int(w, "reps", s->reps);
        } else {
            json_string(w, "error", s->note);
        }
        json_end_object(w);
    }
    json_end_array(w);
    json_number(w, "seconds", r->seconds);
    json_end_object(w);
}

int selftest_write_json(const char *path, const selftest_options *o,
                        const selftest_device_report *reps, size_t n)
{
    int to_stdout = strcmp(path, "-") == 0;
    FILE *f = to_stdout ? stdout : fopen(path, "w");
    if (!f) {
        fprintf(stderr, "facl-selftest: cannot write %s: %s\n", path, strerror(errno));
        return -1;
    }
    int all = n > 0;
    for (size_t i = 0; i < n; ++i) all &= device_passed(&reps[i]);
    json_writer w;
    json_init(&w, f);
    json_begin_object(&w, NULL);
    json_string(&w, "tool", "facl-selftest");
    json_string(&w, "version", facl_version_string());
    json_string(&w, "set", o->info_only ? "info" : o->quick ? "quick" : "default");
    json_bool(&w, "passed", all);
    json_begin_array(&w, "devices");
    for (size_t i = 0; i < n; ++i) json_device(&w, &reps[i]);
    json_end_array(&w);
    json_end_object(&w);
    json_finish(&w);
    if (!to_stdout && fclose(f) != 0) {
        fprintf(stderr, "facl-selftest: error writing %s\n", path);
        return -1;
    }
    return 0;
}
