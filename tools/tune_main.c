/*
 * facl-tune: measures the portable kernels' tuning parameters on one device
 * (docs/TUNING.md).
 *
 *   facl-tune [-d P:D|NAME|default] [--hdim 64] [--dtype fp32] [--seqlen 1024]
 *             [--batch 1] [--heads 8] [--causal off] [--path portable-gpu|portable-cpu]
 *             [--quick] [--reps N] [-o FILE|-]
 *   facl-tune --print-line FILE    the src/tuning_db.c line of an override file
 *
 * For the head-dim class of --hdim it tries the candidate values of the kernel path the
 * device uses (attn_fwd_rows's rows per work-item on CPUs; elsewhere the portable GPU
 * kernel with its values: attn_fwd_blocked's blocks and micro-tiles, attn_fwd's keys per
 * tile, lanes and rows per work-group), each through an override file in its own
 * context, checks each against the float64 reference, times the rest on the problem
 * given, and writes the fastest as the device's override file (by default where the
 * library looks for it: <disk cache>/tuning/<vendor>-<device>.txt), then prints the line
 * that adds it to src/tuning_db.c.
 *
 * Exit status: 0 when an entry was written, 1 when no candidate passed or something
 * failed, 2 on a usage error or an unknown device.
 *
 * FACL_TUNE_INJECT_FAILURE=N makes candidate N count as wrong (for the smoke test).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench_args.h"
#include "bench_buffers.h"
#include "bench_devices.h"
#include "tool_util.h"
#include "tune.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: facl-tune [options]\n"
            "Measures the portable kernels' parameters on one device and writes the best as\n"
            "the device's tuning override file, plus the line for src/tuning_db.c\n"
            "(docs/TUNING.md).\n\n"
            "  -d, --device P:D|NAME the device (default: the library's own choice, 'default')\n"
            "  --hdim N              head dim; its class (<= 64, <= 128, <= 256) is tuned (64)\n"
            "  --dtype fp32|fp16|bf16  storage dtype of the timed problem (fp32)\n"
            "  --seqlen N            query and key length of the timed problem (1024; 256 quick)\n"
            "  --batch N, --heads N  its batch (1) and heads (8; 4 quick)\n"
            "  --causal on|off       causal mask (off)\n"
            "  --path portable-gpu|portable-cpu  the kernel path to tune (default: the\n"
            "                        device's; tensor-core devices tune portable-gpu)\n"
            "  --quick               few candidates and short timings\n"
            "  --reps N              timed runs per candidate (default: sized from a probe)\n"
            "  -o, --output FILE|-   where to write the entry (default: the file the library\n"
            "                        reads, in its disk cache directory; '-': stdout only)\n"
            "  --print-line FILE     print the src/tuning_db.c line of an override file and\n"
            "                        exit (1 if the library would not read the file)\n"
            "  -h, --help            this text\n\n"
            "Exit status: 0 when an entry was written, 1 when no candidate passed or on an\n"
            "error, 2 on a usage error.\n");
}

static int positive(const char *v, const char *what, int max, int *out)
{
    int n;
    if (arg_int_list(v, what, &n, 1) != 1) return -1;
    if (n > max) {
        fprintf(stderr, "facl-tune: %s: at most %d\n", what, max);
        return -1;
    }
    *out = n;
    return 0;
}

/* Returns 0 to run, 1 when done (help), -1 on a usage error. */
static int parse_args(int argc, char **argv, tune_options *o)
{
    memset(o, 0, sizeof *o);
    o->hdim = 64;
    o->dtype = FACL_DTYPE_F32;
    o->batch = 1;
    for (int i = 1; i < argc; ++i) {
        const char *v = NULL;
        int r;
        if (arg_flag(argv, i, "--help", "-h")) {
            usage(stdout);
            return 1;
        } else if (arg_flag(argv, i, "--quick", NULL)) {
            o->quick = 1;
        } else if ((r = arg_value(argc, argv, &i, "--device", "-d", &v)) != 0) {
            if (r < 0) return -1;
            o->device = strcmp(v, "default") == 0 ? NULL : v;
        } else if ((r = arg_value(argc, argv, &i, "--hdim", NULL, &v)) != 0) {
            if (r < 0 || positive(v, "--hdim", FACL_MAX_HEAD_DIM, &o->hdim) != 0) return -1;
        } else if ((r = arg_value(argc, argv, &i, "--seqlen", NULL, &v)) != 0) {
            if (r < 0 || positive(v, "--seqlen", 1 << 20, &o->seqlen) != 0) return -1;
        } else if ((r = arg_value(argc, argv, &i, "--batch", NULL, &v)) != 0) {
            if (r < 0 || positive(v, "--batch", 1 << 16, &o->batch) != 0) return -1;
        } else if ((r = arg_value(argc, argv, &i, "--heads", NULL, &v)) != 0) {
            if (r < 0 || positive(v, "--heads", 1 << 12, &o->heads) != 0) return -1;
        } else if ((r = arg_value(argc, argv, &i, "--reps", NULL, &v)) != 0) {
            if (r < 0 || positive(v, "--reps", 1000, &o->reps) != 0) return -1;
        } else if ((r = arg_value(argc, argv, &i, "--dtype", NULL, &v)) != 0) {
            if (r < 0) return -1;
            if (tool_dtype_parse(v, &o->dtype) != 0) {
                fprintf(stderr, "facl-tune: unknown dtype '%s' (fp32, fp16, bf16)\n", v);
                return -1;
            }
        } else if ((r = arg_value(argc, argv, &i, "--causal", NULL, &v)) != 0) {
            if (r < 0 || (o->causal = arg_on_off(v)) < 0) {
                fprintf(stderr, "facl-tune: --causal takes on or off\n");
                return -1;
            }
        } else if ((r = arg_value(argc, argv, &i, "--path", NULL, &v)) != 0) {
            if (r < 0) return -1;
            if (strcmp(v, "portable-gpu") != 0 && strcmp(v, "portable-cpu") != 0) {
                fprintf(stderr, "facl-tune: --path takes portable-gpu or portable-cpu (the "
                                "tuning database is for the portable kernels)\n");
                return -1;
            }
            o->path = v;
        } else if ((r = arg_value(argc, argv, &i, "--output", "-o", &v)) != 0) {
            if (r < 0) return -1;
            o->output = v;
        } else if ((r = arg_value(argc, argv, &i, "--print-line", NULL, &v)) != 0) {
            if (r < 0) return -1;
            o->print_line = v;
        } else {
            fprintf(stderr, "facl-tune: unknown option '%s' (try --help)\n", argv[i]);
            return -1;
        }
    }
    if (!o->seqlen) o->seqlen = o->quick ? 256 : 1024;
    if (!o->heads) o->heads = o->quick ? 4 : 8;
    return 0;
}

/* The device's key, its path and its values without an override, from a context made
 * the way the candidates' are (so FACL_TUNING_FILE is off for it). */
static int describe_device(const tune_options *o, tune_device *dev, tune_kernel *kernel)
{
    setenv("FACL_TUNING_FILE", "off", 1);
    facl_context_config cfg = FACL_CONTEXT_CONFIG_INIT;
    cfg.kernel_path = o->path;
    facl_context *ctx = NULL;
    facl_status st = facl_context_wrap_with_config(dev->cl_ctx, dev->device, &cfg, &ctx);
    facl_device_info info = FACL_DEVICE_INFO_INIT;
    char text[4096];
    if (st == FACL_SUCCESS) st = facl_context_device_info(ctx, &info);
    if (st == FACL_SUCCESS) st = facl_context_tuning(ctx, text, sizeof text, NULL);
    if (st != FACL_SUCCESS) {
        fprintf(stderr, "facl-tune: %s: %s\n", facl_status_string(st), facl_last_error());
        facl_context_free(ctx);
        return -1;
    }
    facl_context_free(ctx);
    tool_kv_get(text, "vendor", dev->vendor, sizeof dev->vendor);
    tool_kv_get(text, "architecture", dev->architecture, sizeof dev->architecture);
    tool_kv_get(text, "device", dev->name, sizeof dev->name);
    snprintf(dev->cache_dir, sizeof dev->cache_dir, "%s", info.cache_dir);
    dev->limits.local_mem_usable = info.local_mem_usable;
    dev->limits.max_work_group_size = (size_t)info.max_work_group_size;
    const char *cls = facl_tuning_class_name(facl_tuning_class(o->hdim));
    for (int i = 0; i < FACL_TUNING_FIELDS; ++i) {
        char key[32], value[16];
        snprintf(key, sizeof key, "%s.%s", cls, facl_tuning_field_name(i));
        tool_kv_get(text, key, value, sizeof value);
        *facl_tuning_field(&dev->table, i) = atoi(value);
    }
    *kernel = strcmp(info.kernel_path, "portable-cpu") == 0 ? TUNE_CPU : TUNE_GPU;
    snprintf(dev->kernel_path, sizeof dev->kernel_path, "%s",
             *kernel == TUNE_CPU ? "portable-cpu" : "portable-gpu");
    if (strcmp(info.kernel_path, dev->kernel_path) != 0)
        printf("note: this device runs %s; the tuning database serves its portable kernel "
               "(fp32, and problems %s does not take), so portable-gpu is tuned\n",
               info.kernel_path, info.kernel_path);
    return 0;
}

static int open_device(const tune_options *o, tune_device *dev)
{
    facl_status st = facl_select_device(o->device, &dev->device);
    if (st != FACL_SUCCESS) {
        fprintf(stderr, "facl-tune: %s (see facl-selftest -l)\n", facl_last_error());
        return 2;
    }
    cl_int e;
    dev->cl_ctx = clCreateContext(NULL, 1, &dev->device, NULL, NULL, &e);
    if (e == CL_SUCCESS)
        dev->queue = clCreateCommandQueue(dev->cl_ctx, dev->device, CL_QUEUE_PROFILING_ENABLE, &e);
    if (e != CL_SUCCESS) {
        fprintf(stderr, "facl-tune: cannot open the device: %s\n", tool_cl_error_name(e));
        return 1;
    }
    char err[256];
    if (bench_timer_init(&dev->timer, dev->cl_ctx, dev->device, dev->queue, err, sizeof err) != 0) {
        fprintf(stderr, "facl-tune: timer: %s\n", err);
        return 1;
    }
    const size_t n = (size_t)o->batch * (size_t)o->seqlen * (size_t)o->heads * (size_t)o->hdim;
    dev->q = tool_random_buffer(dev->cl_ctx, dev->queue, o->dtype, n, 1, &e);
    if (e == CL_SUCCESS) dev->k = tool_random_buffer(dev->cl_ctx, dev->queue, o->dtype, n, 2, &e);
    if (e == CL_SUCCESS) dev->v = tool_random_buffer(dev->cl_ctx, dev->queue, o->dtype, n, 3, &e);
    if (e == CL_SUCCESS) dev->out = tool_zero_buffer(dev->cl_ctx, dev->queue, o->dtype, n, &e);
    if (e == CL_SUCCESS)
        dev->lse = tool_zero_buffer(dev->cl_ctx, dev->queue, FACL_DTYPE_F32, n / (size_t)o->hdim, &e);
    if (e != CL_SUCCESS) {
        fprintf(stderr, "facl-tune: buffers of the timed problem: %s\n", tool_cl_error_name(e));
        return 1;
    }
    return 0;
}

static void close_device(tune_device *dev)
{
    cl_mem all[] = {dev->q, dev->k, dev->v, dev->out, dev->lse};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; ++i)
        if (all[i]) clReleaseMemObject(all[i]);
    if (dev->timer.queue) bench_timer_free(&dev->timer);
    if (dev->queue) clReleaseCommandQueue(dev->queue);
    if (dev->cl_ctx) clReleaseContext(dev->cl_ctx);
}

static const char *state_name(tune_state s)
{
    switch (s) {
    case TUNE_OK: return "pass";
    case TUNE_REJECTED: return "REJECTED";
    case TUNE_BUILD_FAILED: return "NO BUILD";
    case TUNE_WRONG: return "WRONG";
    default: return "ERROR";
    }
}

/* Runs every candidate, printing a row each; returns the index of the fastest that
 * passed, or -1. */
static long search(const tune_options *o, tune_device *dev, tune_kernel kernel,
                   const char *tmp_dir, tune_result *results, size_t n)
{
    /* FACL_TUNE_INJECT_FAILURE=N: candidate N counts as wrong (for the smoke test that
     * proves a failing candidate is reported and never chosen). */
    const char *inject_text = getenv("FACL_TUNE_INJECT_FAILURE");
    const long inject = inject_text ? strtol(inject_text, NULL, 10) : 0;
    printf("%3s  %-72s %-8s %10s %5s  %s\n", "#", "parameters", "check", "median ms", "runs",
           "vs table");
    double table_ms = 0.0;
    long best = -1;
    for (size_t i = 0; i < n; ++i) {
        tune_result *r = &results[i];
        char text[128];
        tune_params_text(kernel, &r->params, text, sizeof text);
        if (r->is_table) tool_appendf(text, sizeof text, " (table)");
        tune_measure(o, dev, tmp_dir, r);
        if (inject == (long)i + 1) {
            r->state = TUNE_WRONG;
            snprintf(r->note, sizeof r->note, "failure injected by FACL_TUNE_INJECT_FAILURE");
        }
        if (r->state != TUNE_OK) {
            printf("%3zu  %-72s %-8s  -> %s\n", i + 1, text, state_name(r->state), r->note);
        } else {
            if (r->is_table) table_ms = r->median_ms;
            char ratio[32] = "-";
            if (table_ms > 0) snprintf(ratio, sizeof ratio, "%.2fx", table_ms / r->median_ms);
            printf("%3zu  %-72s %-8s %10.3f %5d  %s\n", i + 1, text, "pass", r->median_ms,
                   r->reps, ratio);
            if (best < 0 || r->median_ms < results[best].median_ms) best = (long)i;
        }
        fflush(stdout);
    }
    return best;
}

/* The entry with the winner's values: to the file the library reads (or -o), and as the
 * table line. Returns 0, or 1 on a failure. */
static int write_result(const tune_options *o, const tune_device *dev, const tune_result *best)
{
    char path[1024];
    if (o->output) {
        snprintf(path, sizeof path, "%s", o->output);
    } else if (!dev->cache_dir[0]) {
        fprintf(stderr, "facl-tune: the library's disk cache is off, so it has no place to "
                        "look for this entry: give -o FILE and set FACL_TUNING_FILE=FILE\n");
        return 1;
    } else if (facl_tuning_fixed_path(dev->cache_dir, dev->vendor, dev->name, path,
                                      sizeof path) != 0) {
        fprintf(stderr, "facl-tune: the override file's path is too long\n");
        return 1;
    }
    facl_tuning_entry e;
    char note[600], text[FACL_TUNING_FILE_MAX_BYTES + 1], line[1024];
    tune_entry_for(o, dev, path, &best->params, &e, note, sizeof note);
    if (note[0]) printf("note: %s\n", note);
    facl_tuning_format_file(&e, text, sizeof text);
    if (strcmp(path, "-") == 0) {
        fputs(text, stdout);
    } else {
        if (tune_write_file(path, text) != 0) return 1;
        printf("wrote %s (the library reads it at context creation%s)\n", path,
               o->output ? " when FACL_TUNING_FILE names it" : "");
    }
    facl_tuning_format_line(&e, line, sizeof line);
    printf("line for src/tuning_db.c (docs/TUNING.md, contributing an entry):\n%s\n", line);
    return 0;
}

/* An override file (a hand-written one too) as a line of the table, through the
 * library's own parser: what it refuses has no line. */
static int print_line(const char *path)
{
    char text[FACL_TUNING_FILE_MAX_BYTES + 1], why[320], line[1024];
    facl_tuning_entry e;
    const int found = facl_tuning_read_file(path, 0, text, sizeof text, why, sizeof why);
    if (found == 0) snprintf(why, sizeof why, "%s: no such file", path);
    if (found != 1 || facl_tuning_parse(text, &e, why, sizeof why) != 0) {
        fprintf(stderr, "facl-tune: %s%s%s\n", found == 1 ? path : "", found == 1 ? ": " : "",
                why);
        return 1;
    }
    facl_tuning_format_line(&e, line, sizeof line);
    printf("%s\n", line);
    return 0;
}

int main(int argc, char **argv)
{
    tune_options o;
    const int r = parse_args(argc, argv, &o);
    if (r != 0) return r > 0 ? 0 : 2;
    if (o.print_line) return print_line(o.print_line);
    /* The kernel path is chosen through the configuration of each candidate's context,
     * which FACL_KERNEL_PATH would override: take it as --path instead. */
    const char *env_path = getenv("FACL_KERNEL_PATH");
    if (env_path && *env_path && !o.path) o.path = env_path;
    unsetenv("FACL_KERNEL_PATH");
    /* the candidates choose the portable GPU kernel through their entries */
    unsetenv("FACL_PORTABLE_KERNEL");

    tune_device dev;
    memset(&dev, 0, sizeof dev);
    tune_kernel kernel;
    int rc = open_device(&o, &dev);
    if (rc == 0 && describe_device(&o, &dev, &kernel) != 0) rc = 1;
    char tmp_dir[512] = "";
    if (rc == 0) {
        const char *base = getenv("TMPDIR");
        snprintf(tmp_dir, sizeof tmp_dir, "%s/facl-tune.XXXXXX", base && *base ? base : "/tmp");
        if (!mkdtemp(tmp_dir)) {
            perror("facl-tune: mkdtemp");
            tmp_dir[0] = '\0';
            rc = 1;
        }
    }
    if (rc != 0) {
        close_device(&dev);
        return rc;
    }

    facl_tuning_params params[TUNE_MAX_CANDIDATES];
    const size_t n = tune_candidates(kernel, o.quick, o.hdim, &dev.limits, &dev.table, params,
                                     TUNE_MAX_CANDIDATES);
    tune_result *results = calloc(n, sizeof *results);
    if (!results) {
        fprintf(stderr, "facl-tune: out of host memory\n");
        rc = 1;
    } else {
        printf("facl-tune %s: %s (%s / %s), kernel path %s\n", facl_version_string(), dev.name,
               dev.vendor, dev.architecture, dev.kernel_path);
        printf("problem: %s d=%d (class %s) seqlen %d batch %d heads %d causal %s; "
               "%zu candidates%s\n\n",
               tool_dtype_name(o.dtype), o.hdim, facl_tuning_class_name(facl_tuning_class(o.hdim)),
               o.seqlen, o.batch, o.heads, o.causal ? "on" : "off", n, o.quick ? " (quick)" : "");
        for (size_t i = 0; i < n; ++i) {
            results[i].params = params[i];
            results[i].is_table = i == 0; /* tune_candidates puts the table's values first */
        }
        const long best = search(&o, &dev, kernel, tmp_dir, results, n);
        if (best < 0) {
            fprintf(stderr, "facl-tune: no candidate passed; nothing written\n");
            rc = 1;
        } else {
            char text[128];
            tune_params_text(kernel, &results[best].params, text, sizeof text);
            printf("\nbest: %s", text);
            if (results[0].state == TUNE_OK)
                printf(", %.2fx the table's values", results[0].median_ms / results[best].median_ms);
            printf("\n");
            rc = write_result(&o, &dev, &results[best]);
        }
    }
    free(results);
    char candidate[600];
    snprintf(candidate, sizeof candidate, "%s/candidate.txt", tmp_dir);
    unlink(candidate);
    rmdir(tmp_dir);
    close_device(&dev);
    return rc;
}
