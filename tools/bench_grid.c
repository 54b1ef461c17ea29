/* facl-bench option parsing and grid enumeration (see bench_grid.h). */
#include "bench_grid.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_args.h"
#include "bench_buffers.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: facl-bench [options]\n"
            "Forward attention throughput on FlashAttention's benchmark grid, next to the\n"
            "baseline an OpenCL user would write (CLBlast GEMM + softmax + GEMM).\n\n"
            "  -d, --device P:D|NAME   device (default: $FACL_DEVICE, else first GPU, else CPU)\n"
            "  --hdims LIST            head dims (default 64,128,256); heads = 2048 / hdim\n"
            "  --seqlens LIST          seqlens (default 512,1024,2048,4096,8192,16384)\n"
            "  --dtypes LIST           fp16,bf16,fp32 (default all three)\n"
            "  --causal LIST           off,on (default both)\n"
            "  --tokens N              total tokens, batch = N / seqlen (default 16384;\n"
            "                          use e.g. 2048 on a CPU)\n"
            "  --reps N                timed runs per point (default: sized from a probe,\n"
            "                          3..50 runs of about 1 s in all); median reported\n"
            "  --baseline on|off       the CLBlast column (default on when built with CLBlast)\n"
            "  --no-verify             skip the untimed baseline-vs-facl sanity check\n"
            "  --progress              a line per point on stderr with its wall time\n"
            "  --json FILE|-           write the results as JSON\n"
            "  --csv FILE|-            write the results as CSV\n"
            "  -h, --help              this text\n");
}

static int parse_dtypes(const char *text, bench_options *o)
{
    char words[3][16];
    int n = arg_word_list(text, "--dtypes", words, 3);
    if (n < 0) return -1;
    o->n_dtypes = n;
    for (int i = 0; i < n; ++i) {
        if (tool_dtype_parse(words[i], &o->dtypes[i]) != 0) {
            fprintf(stderr, "--dtypes: unknown dtype '%s' (fp16, bf16, fp32)\n", words[i]);
            return -1;
        }
    }
    return 0;
}

static int parse_causal(const char *text, bench_options *o)
{
    char words[2][16];
    int n = arg_word_list(text, "--causal", words, 2);
    if (n < 0) return -1;
    int seen[2] = {0, 0};
    for (int i = 0; i < n; ++i) {
        int v = arg_on_off(words[i]);
        if (v < 0) {
            fprintf(stderr, "--causal: expected on and/or off, got '%s'\n", words[i]);
            return -1;
        }
        seen[v] = 1;
    }
    o->n_causal = 0;
    for (int v = 0; v < 2; ++v)
        if (seen[v]) o->causal[o->n_causal++] = v;
    return 0;
}

static void defaults(bench_options *o)
{
    static const int hdims[] = {64, 128, 256};
    static const int seqlens[] = {512, 1024, 2048, 4096, 8192, 16384};
    memset(o, 0, sizeof *o);
    memcpy(o->hdims, hdims, sizeof hdims);
    o->n_hdims = 3;
    memcpy(o->seqlens, seqlens, sizeof seqlens);
    o->n_seqlens = 6;
    o->dtypes[0] = FACL_DTYPE_F16;
    o->dtypes[1] = FACL_DTYPE_BF16;
    o->dtypes[2] = FACL_DTYPE_F32;
    o->n_dtypes = 3;
    o->causal[0] = 0;
    o->causal[1] = 1;
    o->n_causal = 2;
    o->tokens = 16384;
    o->baseline = 1;
    o->verify = 1;
}

int bench_parse_args(int argc, char **argv, bench_options *o)
{
    defaults(o);
    for (int i = 1; i < argc; ++i) {
        const char *v = NULL;
        int r;
        if (arg_flag(argv, i, "--help", "-h")) {
            usage(stdout);
            return 1;
        }
        if (arg_flag(argv, i, "--no-verify", NULL)) {
            o->verify = 0;
            continue;
        }
        if (arg_flag(argv, i, "--progress", NULL)) {
            o->progress = 1;
            continue;
        }
        if ((r = arg_value(argc, argv, &i, "--device", "-d", &v)) != 0) {
            if (r < 0) return -1;
            o->device = v;
        } else if ((r = arg_value(argc, argv, &i, "--hdims", NULL, &v)) != 0) {
            if (r < 0 || (o->n_hdims = arg_int_list(v, "--hdims", o->hdims, BENCH_MAX_LIST)) < 0)
                return -1;
            for (int k = 0; k < o->n_hdims; ++k) {
                if (o->hdims[k] > FACL_MAX_HEAD_DIM || BENCH_HIDDEN % o->hdims[k] != 0) {
                    fprintf(stderr, "--hdims: %d must divide %d and be at most %d\n", o->hdims[k],
                            BENCH_HIDDEN, FACL_MAX_HEAD_DIM);
                    return -1;
                }
            }
        } else if ((r = arg_value(argc, argv, &i, "--seqlens", NULL, &v)) != 0) {
            if (r < 0 ||
                (o->n_seqlens = arg_int_list(v, "--seqlens", o->seqlens, BENCH_MAX_LIST)) < 0)
                return -1;
        } else if ((r = arg_value(argc, argv, &i, "--dtypes", NULL, &v)) != 0) {
            if (r < 0 || parse_dtypes(v, o) != 0) return -1;
        } else if ((r = arg_value(argc, argv, &i, "--causal", NULL, &v)) != 0) {
            if (r < 0 || parse_causal(v, o) != 0) return -1;
        } else if ((r = arg_value(argc, argv, &i, "--tokens", NULL, &v)) != 0) {
            int t;
            if (r < 0 || arg_int_list(v, "--tokens", &t, 1) != 1) return -1;
            o->tokens = t;
        } else if ((r = arg_value(argc, argv, &i, "--reps", NULL, &v)) != 0) {
            if (r < 0 || arg_int_list(v, "--reps", &o->reps, 1) != 1) return -1;
        } else if ((r = arg_value(argc, argv, &i, "--baseline", NULL, &v)) != 0) {
            if (r < 0) return -1;
            if ((o->baseline = arg_on_off(v)) < 0) {
                fprintf(stderr, "--baseline: expected on or off, got '%s'\n", v);
                return -1;
            }
        } else if ((r = arg_value(argc, argv, &i, "--json", NULL, &v)) != 0) {
            if (r < 0) return -1;
            o->json_path = v;
        } else if ((r = arg_value(argc, argv, &i, "--csv", NULL, &v)) != 0) {
            if (r < 0) return -1;
            o->csv_path = v;
        } else {
            fprintf(stderr, "facl-bench: unknown option '%s' (try --help)\n", argv[i]);
            return -1;
        }
    }
    return 0;
}

size_t bench_grid_configs(const bench_options *o, bench_config *out, size_t max)
{
    size_t n = 0;
    for (int t = 0; t < o->n_dtypes; ++t)
        for (int h = 0; h < o->n_hdims; ++h)
            for (int c = 0; c < o->n_causal; ++c)
                for (int s = 0; s < o->n_seqlens; ++s) {
                    if (o->seqlens[s] > o->tokens || n == max) continue;
                    bench_config *cfg = &out[n++];
                    cfg->dtype = o->dtypes[t];
                    cfg->hdim = o->hdims[h];
                    cfg->heads = BENCH_HIDDEN / o->hdims[h];
                    cfg->seqlen = o->seqlens[s];
                    cfg->batch = (int)(o->tokens / o->seqlens[s]);
                    cfg->causal = o->causal[c];
                }
    return n;
}
