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
            "  --portable-kernel LIST  previous,blocked: time these portable GPU kernels side\n"
            "                          by side (attn_fwd, attn_fwd_blocked), one context each\n"
            "                          made with FACL_PORTABLE_KERNEL=<name>; they run where\n"
            "                          the kernel path is portable-gpu (FACL_KERNEL_PATH) or\n"
            "                          the fast path leaves a problem to it (fp32).\n"
            "                          unpacked,packed: the CPU kernel (attn_fwd_rows) with\n"
            "                          each work-item transposing its k/v tiles or with them\n"
            "                          packed once per call (FACL_CPU_PACK=never / always).\n"
            "                          The baseline is timed on the first kernel's rows only\n"
            "  -h, --help              this text\n\n"
            "Backward (--bwd): facl_bwd over the grid above (--hdims, --seqlens, --dtypes,\n"
            "--causal, --tokens, --reps, --no-verify, --progress, --json, --csv apply; no\n"
            "baseline), a workspace made once per point, the forward run once untimed for\n"
            "out and lse; bwd TFLOP/s = 2.5x the forward's FLOPs / median (torch_sdpa.py\n"
            "--bwd's convention and JSON names); before timing, dq of 6 rows is checked\n"
            "against the float64 reference (--no-verify: off).\n"
            "  --bwd                   backward mode\n"
            "  --deterministic LIST    opts.deterministic values, 0 and/or 1 (default 0: the\n"
            "                          library's default, atomic dq on the tensor-core paths;\n"
            "                          1: bitwise reproducible)\n\n"
            "Decode (--decode): facl_fwd_kvcache with seqlen_q = 1, torch_sdpa.py --decode's grid;\n"
            "GB/s = bytes of the k and v cache read (batch*kv_len*heads_kv*d*2*elem) / median.\n"
            "  --decode                decode mode (--device, --dtypes, --reps, --progress,\n"
            "                          --no-verify, --json, --csv as above; default dtypes\n"
            "                          fp16,bf16, --hdims 128, any head dim up to %d)\n"
            "  --batch N               sequences (default 16)\n"
            "  --heads N               query heads (default 32)\n"
            "  --heads-kv N            kv heads (default 8; must divide --heads)\n"
            "  --kv-lens LIST          keys in each cache (default 1024,4096,16384,65536;\n"
            "                          use e.g. 1024,4096 with --batch 4 on a CPU)\n"
            "  --pages LIST            cache layouts: 0 = contiguous (batch, kv_len, heads_kv, d),\n"
            "                          P = paged with page size P, pages in a random order\n"
            "                          (default 0,16,256)\n"
            "  --kv-order LIST         order of a cache's rows: shd = (.., position, kv head, d),\n"
            "                          each position's heads side by side (FlashAttention's\n"
            "                          layout); hsd = (.., kv head, position, d), each head's\n"
            "                          rows contiguous (torch_sdpa.py --decode's tensors);\n"
            "                          both are strided views of one buffer (default shd)\n"
            "  --page-order random|sequential\n"
            "                          pages of the block table in a random order (default)\n"
            "                          or in memory order (a diagnostic: paging without scatter)\n"
            "  --cache-lens buffer|value\n"
            "                          the sequences' lengths as an int32 cache_seqlens buffer\n"
            "                          (default), or as the one cache_seqlens_value for all, as\n"
            "                          a call over whole caches (torch_sdpa.py --decode's) has\n"
            "  --splits LIST           num_splits values, 0 = the library chooses (default 0)\n"
            "  --forward-row on|off    also time plain facl_fwd (seqlen_q 1) over the\n"
            "                          contiguous k/v, the pre-cache path (default on)\n"
            "  --flush-mib N           fill N MiB before each timed run, so that the span is\n"
            "                          the device's time for the call (the host's time to\n"
            "                          enqueue it hidden behind the fill) and the caches are\n"
            "                          cold, as triton's do_bench does for torch_sdpa.py\n"
            "                          (default 512 on GPUs, 0 on CPUs; 0 = off: the span\n"
            "                          then includes the host's call overhead)\n"
            "  --flush-read on|off     after the fill, read the buffer back, so that the timed\n"
            "                          call starts with clean lines in the caches instead of\n"
            "                          the fill's dirty ones, whose writebacks it otherwise\n"
            "                          pays for (default off: do_bench's state; needs a flush,\n"
            "                          --flush-mib N > 0)\n"
            "  --copy-gbps X           a copy rate in GB/s (e.g. the device's measured copy\n"
            "                          bandwidth) to report GB/s as a %% of\n\n"
            "Host cost (--host-cost): the host's wall time per call, from entering the call to\n"
            "its return, the mean of back-to-back calls on the context's queue (no clFinish\n"
            "between them; the device held back by a user event until the round's last call\n"
            "returns, then drained, timed apart), median of --reps rounds (default 5), for\n"
            "facl_fwd_kvcache with seqlen_q 1 (trusted cache_seqlens, a workspace made once),\n"
            "facl_fwd with seqlen_q 1 over the same k/v, and facl_fwd with 64 query rows over\n"
            "64 keys. --device, --dtypes, --hdims, --kv-lens (the first value of each),\n"
            "--batch, --heads, --heads-kv apply; defaults fp16, d 128, 1024 keys, batch 1,\n"
            "heads 8/2.\n"
            "  --host-cost             host-cost mode\n"
            "  --calls N               calls per round (default 1000)\n",
            FACL_MAX_HEAD_DIM);
}

/* --kv-order: shd and/or hsd, each once. */
static int parse_kv_orders(const char *text, bench_options *o)
{
    char words[2][16];
    int n = arg_word_list(text, "--kv-order", words, 2);
    if (n < 0) return -1;
    for (int i = 0; i < n; ++i) {
        const int hsd = strcmp(words[i], "hsd") == 0;
        if (!hsd && strcmp(words[i], "shd") != 0) {
            fprintf(stderr, "--kv-order: unknown order '%s' (shd, hsd)\n", words[i]);
            return -1;
        }
        if (i == 1 && o->kv_orders[0] == hsd) {
            fprintf(stderr, "--kv-order: '%s' given twice\n", words[i]);
            return -1;
        }
        o->kv_orders[i] = hsd;
    }
    o->n_kv_orders = n;
    return 0;
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

int bench_kernel_choice(const char *name, const char **variable, const char **value)
{
    static const struct {
        const char *name, *variable, *value;
    } choices[] = {
        {"previous", "FACL_PORTABLE_KERNEL", "previous"},
        {"blocked", "FACL_PORTABLE_KERNEL", "blocked"},
        {"unpacked", "FACL_CPU_PACK", "never"},
        {"packed", "FACL_CPU_PACK", "always"},
    };
    for (size_t i = 0; i < sizeof choices / sizeof choices[0]; ++i)
        if (strcmp(name, choices[i].name) == 0) {
            *variable = choices[i].variable;
            *value = choices[i].value;
            return 0;
        }
    return -1;
}

static int parse_portable_kernels(const char *text, bench_options *o)
{
    int n = arg_word_list(text, "--portable-kernel", o->portable_kernels, 2);
    if (n < 0) return -1;
    for (int i = 0; i < n; ++i) {
        const char *variable, *value;
        if (bench_kernel_choice(o->portable_kernels[i], &variable, &value) != 0) {
            fprintf(stderr,
                    "--portable-kernel: expected previous, blocked, unpacked or packed, got "
                    "'%s'\n",
                    o->portable_kernels[i]);
            return -1;
        }
        if (i > 0 && strcmp(o->portable_kernels[0], o->portable_kernels[i]) == 0) {
            fprintf(stderr, "--portable-kernel: '%s' given twice\n", o->portable_kernels[i]);
            return -1;
        }
    }
    o->n_portable_kernels = n;
    return 0;
}

static int parse_deterministic(const char *text, bench_options *o)
{
    char words[2][16];
    int n = arg_word_list(text, "--deterministic", words, 2);
    if (n < 0) return -1;
    int seen[2] = {0, 0};
    for (int i = 0; i < n; ++i) {
        if (strcmp(words[i], "0") != 0 && strcmp(words[i], "1") != 0) {
            fprintf(stderr, "--deterministic: expected 0 and/or 1, got '%s'\n", words[i]);
            return -1;
        }
        seen[words[i][0] - '0'] = 1;
    }
    o->n_deterministic = 0;
    for (int v = 0; v < 2; ++v)
        if (seen[v]) o->deterministic[o->n_deterministic++] = v;
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
    /* batch, heads, heads_kv and kv_lens: 0 / none until the mode's defaults apply
     * (finish_args) */
    o->calls = 1000;
    static const int pages[] = {0, 16, 256};
    memcpy(o->pages, pages, sizeof pages);
    o->n_pages = 3;
    o->n_splits = 1; /* splits[0] = 0: auto */
    o->n_kv_orders = 1; /* kv_orders[0] = 0: shd */
    o->flush_mib = -1;  /* per device type */
    o->forward_row = 1;
    o->n_deterministic = 1; /* deterministic[0] = 0: the library's default */
}

/* Which options were given, to apply the decode defaults and refuse options of the
 * other mode. */
enum {
    SEEN_HDIMS = 1 << 0, SEEN_DTYPES = 1 << 1, SEEN_FORWARD_ONLY = 1 << 2,
    SEEN_DECODE_ONLY = 1 << 3, SEEN_BASELINE = 1 << 4, SEEN_BWD_ONLY = 1 << 5,
    SEEN_SHAPE = 1 << 6,    /* --batch, --heads, --heads-kv, --kv-lens: decode or host cost */
    SEEN_HOST_ONLY = 1 << 7 /* --calls */
};

/* The decode shape's defaults where not given: torch_sdpa.py --decode's grid, or for
 * --host-cost one small decode. */
static void shape_defaults(bench_options *o)
{
    static const int kv_lens[] = {1024, 4096, 16384, 65536};
    if (!o->batch) o->batch = o->host_cost ? 1 : 16;
    if (!o->heads) o->heads = o->host_cost ? 8 : 32;
    if (!o->heads_kv) o->heads_kv = o->host_cost ? 2 : 8;
    if (!o->n_kv_lens) {
        o->n_kv_lens = o->host_cost ? 1 : 4;
        memcpy(o->kv_lens, kv_lens, sizeof kv_lens);
    }
}

/* Checks that need the whole command line: the mode's defaults and the options that
 * belong to the other mode. */
static int finish_args(bench_options *o, unsigned seen, const char *forward_opt,
                       const char *decode_opt, const char *shape_opt)
{
    if (o->bwd + o->decode + o->host_cost > 1) {
        fprintf(stderr, "facl-bench: --bwd, --decode and --host-cost are different modes; "
                        "pick one\n");
        return -1;
    }
    if (!o->host_cost && (seen & SEEN_HOST_ONLY)) {
        fprintf(stderr, "facl-bench: --calls needs --host-cost\n");
        return -1;
    }
    if (o->bwd && (seen & SEEN_BASELINE)) {
        fprintf(stderr, "facl-bench: --baseline does not apply to --bwd (no CLBlast backward)\n");
        return -1;
    }
    if ((o->bwd || o->decode || o->host_cost) && o->n_portable_kernels) {
        fprintf(stderr, "facl-bench: --portable-kernel applies to the forward grid only\n");
        return -1;
    }
    if (!o->bwd && (seen & SEEN_BWD_ONLY)) {
        fprintf(stderr, "facl-bench: --deterministic needs --bwd (the forward has one mode)\n");
        return -1;
    }
    if (o->bwd) o->baseline = 0;
    if (o->host_cost && (seen & SEEN_DECODE_ONLY)) {
        fprintf(stderr, "facl-bench: %s does not apply to --host-cost\n", decode_opt);
        return -1;
    }
    if (!o->decode && !o->host_cost) {
        if (seen & (SEEN_DECODE_ONLY | SEEN_SHAPE)) {
            fprintf(stderr, "facl-bench: %s needs --decode\n",
                    seen & SEEN_DECODE_ONLY ? decode_opt : shape_opt);
            return -1;
        }
        for (int k = 0; k < o->n_hdims; ++k) {
            if (BENCH_HIDDEN % o->hdims[k] != 0) {
                fprintf(stderr, "--hdims: %d must divide %d and be at most %d\n", o->hdims[k],
                        BENCH_HIDDEN, FACL_MAX_HEAD_DIM);
                return -1;
            }
        }
        return 0;
    }
    if (seen & SEEN_FORWARD_ONLY) {
        fprintf(stderr, "facl-bench: %s does not apply to %s\n", forward_opt,
                o->decode ? "--decode" : "--host-cost");
        return -1;
    }
    shape_defaults(o);
    if (!(seen & SEEN_HDIMS)) {
        o->hdims[0] = 128;
        o->n_hdims = 1;
    }
    if (!(seen & SEEN_DTYPES)) {
        o->dtypes[0] = FACL_DTYPE_F16;
        o->dtypes[1] = FACL_DTYPE_BF16;
        o->n_dtypes = 2;
    }
    if (o->heads % o->heads_kv != 0) {
        fprintf(stderr, "facl-bench: --heads %d is not a multiple of --heads-kv %d\n", o->heads,
                o->heads_kv);
        return -1;
    }
    o->baseline = 0; /* CLBlast has no decode baseline */
    return 0;
}

/* One positive int option into *out. */
static int one_int(const char *v, const char *what, int *out)
{
    return arg_int_list(v, what, out, 1) == 1 ? 0 : -1;
}

int bench_parse_args(int argc, char **argv, bench_options *o)
{
    defaults(o);
    unsigned seen = 0;
    const char *forward_opt = NULL, *decode_opt = NULL, *shape_opt = NULL;
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
        if (arg_flag(argv, i, "--decode", NULL)) {
            o->decode = 1;
            continue;
        }
        if (arg_flag(argv, i, "--bwd", NULL)) {
            o->bwd = 1;
            continue;
        }
        if (arg_flag(argv, i, "--host-cost", NULL)) {
            o->host_cost = 1;
            continue;
        }
        const char *name = argv[i];
        if ((r = arg_value(argc, argv, &i, "--device", "-d", &v)) != 0) {
            if (r < 0) return -1;
            o->device = v;
        } else if ((r = arg_value(argc, argv, &i, "--hdims", NULL, &v)) != 0) {
            if (r < 0 || (o->n_hdims = arg_int_list(v, "--hdims", o->hdims, BENCH_MAX_LIST)) < 0)
                return -1;
            for (int k = 0; k < o->n_hdims; ++k) {
                if (o->hdims[k] > FACL_MAX_HEAD_DIM) {
                    fprintf(stderr, "--hdims: %d is above %d\n", o->hdims[k], FACL_MAX_HEAD_DIM);
                    return -1;
                }
            }
            seen |= SEEN_HDIMS;
        } else if ((r = arg_value(argc, argv, &i, "--seqlens", NULL, &v)) != 0) {
            if (r < 0 ||
                (o->n_seqlens = arg_int_list(v, "--seqlens", o->seqlens, BENCH_MAX_LIST)) < 0)
                return -1;
            seen |= SEEN_FORWARD_ONLY, forward_opt = name;
        } else if ((r = arg_value(argc, argv, &i, "--dtypes", NULL, &v)) != 0) {
            if (r < 0 || parse_dtypes(v, o) != 0) return -1;
            seen |= SEEN_DTYPES;
        } else if ((r = arg_value(argc, argv, &i, "--causal", NULL, &v)) != 0) {
            if (r < 0 || parse_causal(v, o) != 0) return -1;
            seen |= SEEN_FORWARD_ONLY, forward_opt = name;
        } else if ((r = arg_value(argc, argv, &i, "--portable-kernel", NULL, &v)) != 0) {
            if (r < 0 || parse_portable_kernels(v, o) != 0) return -1;
        } else if ((r = arg_value(argc, argv, &i, "--deterministic", NULL, &v)) != 0) {
            if (r < 0 || parse_deterministic(v, o) != 0) return -1;
            seen |= SEEN_BWD_ONLY;
        } else if ((r = arg_value(argc, argv, &i, "--tokens", NULL, &v)) != 0) {
            int t;
            if (r < 0 || one_int(v, "--tokens", &t) != 0) return -1;
            o->tokens = t;
            seen |= SEEN_FORWARD_ONLY, forward_opt = name;
        } else if ((r = arg_value(argc, argv, &i, "--reps", NULL, &v)) != 0) {
            if (r < 0 || one_int(v, "--reps", &o->reps) != 0) return -1;
        } else if ((r = arg_value(argc, argv, &i, "--baseline", NULL, &v)) != 0) {
            if (r < 0) return -1;
            if ((o->baseline = arg_on_off(v)) < 0) {
                fprintf(stderr, "--baseline: expected on or off, got '%s'\n", v);
                return -1;
            }
            seen |= SEEN_FORWARD_ONLY | SEEN_BASELINE, forward_opt = name;
        } else if ((r = arg_value(argc, argv, &i, "--json", NULL, &v)) != 0) {
            if (r < 0) return -1;
            o->json_path = v;
        } else if ((r = arg_value(argc, argv, &i, "--csv", NULL, &v)) != 0) {
            if (r < 0) return -1;
            o->csv_path = v;
        } else if ((r = arg_value(argc, argv, &i, "--batch", NULL, &v)) != 0) {
            if (r < 0 || one_int(v, "--batch", &o->batch) != 0) return -1;
            seen |= SEEN_SHAPE, shape_opt = name;
        } else if ((r = arg_value(argc, argv, &i, "--heads", NULL, &v)) != 0) {
            if (r < 0 || one_int(v, "--heads", &o->heads) != 0) return -1;
            seen |= SEEN_SHAPE, shape_opt = name;
        } else if ((r = arg_value(argc, argv, &i, "--heads-kv", NULL, &v)) != 0) {
            if (r < 0 || one_int(v, "--heads-kv", &o->heads_kv) != 0) return -1;
            seen |= SEEN_SHAPE, shape_opt = name;
        } else if ((r = arg_value(argc, argv, &i, "--kv-lens", NULL, &v)) != 0) {
            if (r < 0 ||
                (o->n_kv_lens = arg_int_list(v, "--kv-lens", o->kv_lens, BENCH_MAX_LIST)) < 0)
                return -1;
            seen |= SEEN_SHAPE, shape_opt = name;
        } else if ((r = arg_value(argc, argv, &i, "--pages", NULL, &v)) != 0) {
            if (r < 0 || (o->n_pages = arg_count_list(v, "--pages", o->pages, BENCH_MAX_LIST)) < 0)
                return -1;
            seen |= SEEN_DECODE_ONLY, decode_opt = name;
        } else if ((r = arg_value(argc, argv, &i, "--splits", NULL, &v)) != 0) {
            if (r < 0 ||
                (o->n_splits = arg_count_list(v, "--splits", o->splits, BENCH_MAX_LIST)) < 0)
                return -1;
            seen |= SEEN_DECODE_ONLY, decode_opt = name;
        } else if ((r = arg_value(argc, argv, &i, "--kv-order", NULL, &v)) != 0) {
            if (r < 0 || parse_kv_orders(v, o) != 0) return -1;
            seen |= SEEN_DECODE_ONLY, decode_opt = name;
        } else if ((r = arg_value(argc, argv, &i, "--page-order", NULL, &v)) != 0) {
            if (r < 0) return -1;
            if (strcmp(v, "random") != 0 && strcmp(v, "sequential") != 0) {
                fprintf(stderr, "--page-order: expected random or sequential, got '%s'\n", v);
                return -1;
            }
            o->pages_in_order = strcmp(v, "sequential") == 0;
            seen |= SEEN_DECODE_ONLY, decode_opt = name;
        } else if ((r = arg_value(argc, argv, &i, "--cache-lens", NULL, &v)) != 0) {
            if (r < 0) return -1;
            if (strcmp(v, "buffer") != 0 && strcmp(v, "value") != 0) {
                fprintf(stderr, "--cache-lens: expected buffer or value, got '%s'\n", v);
                return -1;
            }
            o->lens_as_value = strcmp(v, "value") == 0;
            seen |= SEEN_DECODE_ONLY, decode_opt = name;
        } else if ((r = arg_value(argc, argv, &i, "--forward-row", NULL, &v)) != 0) {
            if (r < 0) return -1;
            if ((o->forward_row = arg_on_off(v)) < 0) {
                fprintf(stderr, "--forward-row: expected on or off, got '%s'\n", v);
                return -1;
            }
            seen |= SEEN_DECODE_ONLY, decode_opt = name;
        } else if ((r = arg_value(argc, argv, &i, "--flush-mib", NULL, &v)) != 0) {
            if (r < 0 || arg_count_list(v, "--flush-mib", &o->flush_mib, 1) != 1) return -1;
            seen |= SEEN_DECODE_ONLY, decode_opt = name;
        } else if ((r = arg_value(argc, argv, &i, "--flush-read", NULL, &v)) != 0) {
            if (r < 0) return -1;
            if ((o->flush_read = arg_on_off(v)) < 0) {
                fprintf(stderr, "--flush-read: expected on or off, got '%s'\n", v);
                return -1;
            }
            seen |= SEEN_DECODE_ONLY, decode_opt = name;
        } else if ((r = arg_value(argc, argv, &i, "--calls", NULL, &v)) != 0) {
            if (r < 0 || one_int(v, "--calls", &o->calls) != 0) return -1;
            seen |= SEEN_HOST_ONLY;
        } else if ((r = arg_value(argc, argv, &i, "--copy-gbps", NULL, &v)) != 0) {
            if (r < 0 || arg_positive_double(v, "--copy-gbps", &o->copy_gbps) != 0) return -1;
            seen |= SEEN_DECODE_ONLY, decode_opt = name;
        } else {
            fprintf(stderr, "facl-bench: unknown option '%s' (try --help)\n", argv[i]);
            return -1;
        }
    }
    return finish_args(o, seen, forward_opt, decode_opt, shape_opt);
}

size_t bench_grid_configs(const bench_options *o, bench_config *out, size_t max)
{
    size_t n = 0;
    for (int t = 0; t < o->n_dtypes; ++t)
        for (int h = 0; h < o->n_hdims; ++h)
            for (int c = 0; c < o->n_causal; ++c)
                for (int s = 0; s < o->n_seqlens; ++s)
                    for (int m = 0; m < (o->bwd ? o->n_deterministic : 1); ++m)
                    for (int pk = 0; pk < (o->n_portable_kernels ? o->n_portable_kernels : 1); ++pk) {
                        if (o->seqlens[s] > o->tokens || n == max) continue;
                        bench_config *cfg = &out[n++];
                        cfg->portable_kernel = o->n_portable_kernels ? pk : -1;
                        cfg->dtype = o->dtypes[t];
                        cfg->hdim = o->hdims[h];
                        cfg->heads = BENCH_HIDDEN / o->hdims[h];
                        cfg->seqlen = o->seqlens[s];
                        cfg->batch = (int)(o->tokens / o->seqlens[s]);
                        cfg->causal = o->causal[c];
                        cfg->deterministic = o->bwd ? o->deterministic[m] : 0;
                    }
    return n;
}
