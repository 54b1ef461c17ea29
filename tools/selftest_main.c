/*
 * facl-selftest: a clinfo-style check of what facl does on each OpenCL device.
 *
 *   facl-selftest -l               list platforms and devices ("P:D" indices)
 *   facl-selftest                  check every device
 *   facl-selftest -d 0:1           check one device (or -d NAME, a name substring, or
 *                                  -d default: the one facl_context_create(NULL) picks,
 *                                  which honours FACL_DEVICE)
 *   facl-selftest --quick          15 checks (3 of them KV cache, 3 backward) and small
 *                                  speed cases instead of the default 46 checks (5 KV
 *                                  cache, 7 backward);
 *                                  about 10 s on a 2-core CPU once the programs are
 *                                  in the disk cache
 *   facl-selftest --json FILE|-    also write the results as JSON ("-": stdout, and
 *                                  then no table)
 *   facl-selftest --info           only what the library uses on each device (kernel
 *                                  path, tuning entry and override file, cache)
 *
 * Exit status (-l: 0 when it lists a device, else 1): 0 iff every check and speed figure on every selected device passed;
 * 1 when something failed (a device whose context cannot be created is shown in place
 * and counts as failed; the other devices still run); 2 on a usage error or when -d
 * matches no device.
 *
 * FACL_SELFTEST_INJECT_FAILURE=1 turns the first check of every device into a failure
 * (for the smoke test that proves the exit status follows failures).
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench_args.h"
#include "selftest.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: facl-selftest [options]\n"
            "Checks facl on OpenCL devices: what the library uses there, correctness of every\n"
            "call family against a float64 reference, and one speed figure per family.\n\n"
            "  -l, --list            list platforms and devices, then exit\n"
            "  -d, --device P:D|NAME check one device (default: every device); NAME is a\n"
            "                        name substring; 'default' is the library's own choice\n"
            "                        ($FACL_DEVICE, else the first GPU, else a CPU)\n"
            "  --quick               a small subset of the checks and small speed cases\n"
            "  --no-speed            skip the speed figures\n"
            "  --info                only what the library uses on each device (kernel\n"
            "                        path, tuning entry, cache): no checks, no speed\n"
            "  --json FILE|-         write the results as JSON ('-': stdout, no table)\n"
            "  --progress            progress lines on stderr even when it is not a terminal\n"
            "  --no-progress         no progress line\n"
            "  -h, --help            this text\n"
            "  --version             the tool's and the library's version\n\n"
            "Exit status: 0 iff everything passed on every device, 1 on a failure,\n"
            "2 on a usage error or no matching device.\n");
}

/* Returns 0 to run, 1 if done (help, version), -1 on a usage error. */
static int parse_args(int argc, char **argv, selftest_options *o)
{
    memset(o, 0, sizeof *o);
    o->speed = 1;
    o->table = 1;
    o->progress = isatty(STDERR_FILENO) ? 2 : 0; /* 2: rewrite in place */
    for (int i = 1; i < argc; ++i) {
        const char *v = NULL;
        int r;
        if (arg_flag(argv, i, "--help", "-h")) {
            usage(stdout);
            return 1;
        } else if (arg_flag(argv, i, "--version", NULL)) {
            printf("facl-selftest %s (library %s)\n", FACL_VERSION_STRING, facl_version_string());
            return 1;
        } else if (arg_flag(argv, i, "--list", "-l")) {
            o->list = 1;
        } else if (arg_flag(argv, i, "--quick", NULL)) {
            o->quick = 1;
        } else if (arg_flag(argv, i, "--no-speed", NULL)) {
            o->speed = 0;
        } else if (arg_flag(argv, i, "--info", NULL)) {
            o->info_only = 1;
        } else if (arg_flag(argv, i, "--progress", NULL)) {
            if (!o->progress) o->progress = 1;
        } else if (arg_flag(argv, i, "--no-progress", NULL)) {
            o->progress = 0;
        } else if ((r = arg_value(argc, argv, &i, "--device", "-d", &v)) != 0) {
            if (r < 0) return -1;
            o->device = v;
        } else if ((r = arg_value(argc, argv, &i, "--json", NULL, &v)) != 0) {
            if (r < 0) return -1;
            o->json_path = v;
            if (strcmp(v, "-") == 0) o->table = 0;
        } else {
            fprintf(stderr, "facl-selftest: unknown option '%s' (try --help)\n", argv[i]);
            return -1;
        }
    }
    const char *inject = getenv("FACL_SELFTEST_INJECT_FAILURE");
    o->inject_failure = inject && *inject && strcmp(inject, "0") != 0;
    return 0;
}

/* The index in `list` of the device facl_context_create(NULL) picks, or -1. */
int main(int argc, char **argv)
{
    selftest_options o;
    int r = parse_args(argc, argv, &o);
    if (r != 0) return r > 0 ? 0 : 2;

    if (o.list) return tool_devices_print(stdout) > 0 ? 0 : 1;

    tool_device_list list;
    if (tool_devices_enumerate(&list) != 0) {
        fprintf(stderr, "facl-selftest: %s\n", list.error);
        if (o.json_path) selftest_write_json(o.json_path, &o, NULL, 0);
        tool_devices_free(&list);
        return 1;
    }
    size_t first = 0, count = list.count;
    if (o.device) {
        /* "default" is what facl_context_create(NULL) picks: FACL_DEVICE or the first GPU. */
        long found = tool_devices_find(&list, strcmp(o.device, "default") == 0 ? NULL : o.device);
        if (found < 0) {
            if (strcmp(o.device, "default") != 0)
                fprintf(stderr,
                        "facl-selftest: no OpenCL device matches '%s' (see facl-selftest -l)\n",
                        o.device);
            tool_devices_free(&list);
            return 2;
        }
        first = (size_t)found;
        count = 1;
    }
    if (count == 0) {
        fprintf(stderr, "facl-selftest: the OpenCL platforms list no device\n");
        tool_devices_free(&list);
        return 1;
    }

    selftest_device_report *reps = calloc(count, sizeof *reps);
    if (!reps) {
        fprintf(stderr, "facl-selftest: out of host memory\n");
        tool_devices_free(&list);
        return 1;
    }
    if (o.table)
        printf("facl-selftest %s: %s set (%s)\n\n", facl_version_string(),
               o.quick ? "quick" : "default",
               o.info_only ? "device information only"
               : o.speed   ? "checks and speed"
                           : "checks only");
    int all_passed = 1;
    for (size_t i = 0; i < count; ++i)
        all_passed &= selftest_run_device(&o, &list.items[first + i], &reps[i]);
    if (o.table) selftest_print_summary(stdout, reps, count);
    if (o.json_path && selftest_write_json(o.json_path, &o, reps, count) != 0) all_passed = 0;

    for (size_t i = 0; i < count; ++i) selftest_report_free(&reps[i]);
    free(reps);
    tool_devices_free(&list);
    return all_passed ? 0 : 1;
}
