/* The tuning parameters: built-in defaults, what the kernels can take, the table lookup
 * and the report of a context (see tuning.h). */
#include "tuning.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* The choices every device had before the table existed for attn_fwd: 32-key tiles
 * (halved until they fit), one lane per 64 dimensions so that a work-item keeps at most
 * 64 floats of q and of its accumulator, 64 rows per work-group, and 16 rows per
 * work-item of the CPU kernel. The portable GPU kernel is attn_fwd_blocked with 64 x 64
 * blocks and 4 x 4 micro-tiles (256 work-items; about 38 KiB of local memory at d = 256).
 * An entry that sets nothing changes nothing. */
#define BLOCKED_DEFAULTS                                                                     \
    .kernel = FACL_TUNING_KERNEL_BLOCKED, .blocked_m = 64, .blocked_n = 64, .blocked_tm = 4, \
    .blocked_tn = 4
static const facl_tuning_params k_defaults[FACL_TUNING_CLASSES] = {
    [FACL_TUNING_D64] = {.block_n = 32, .lanes = 1, .group_rows = 64, .cpu_rows = 16, BLOCKED_DEFAULTS},
    [FACL_TUNING_D128] = {.block_n = 32, .lanes = 2, .group_rows = 64, .cpu_rows = 16, BLOCKED_DEFAULTS},
    [FACL_TUNING_D256] = {.block_n = 32, .lanes = 4, .group_rows = 64, .cpu_rows = 16, BLOCKED_DEFAULTS},
};

/* What each kernel accepts (cl_kernels/attn_fwd.cl, attn_fwd_blocked.cl, attn_fwd_rows.cl):
 * - block_n sizes a private score array and two local tiles; powers of two up to 128
 *   keep the local-memory halving exact and the private array within reason;
 * - lanes: a row's lanes must fit one work-group of at most 128 (MAX_GROUP); 16 leaves
 *   4 dimensions per lane at d <= 64, past which more lanes only add barriers;
 * - group_rows: at most the kernel's MAX_GROUP of 128 work-items;
 * - cpu_rows: q.k runs 2, 4 or 8 rows at once by the device's vector width, and the plan
 *   rounds the rows up to whole blocks of those (8 where registers hold 16 floats);
 *   multiples of 4 keep that exact below 16 floats; 32 rows of d = 256 already
 *   hold 64 KiB of private arrays per work-item, CPU runtimes' stacks are not endless;
 * - kernel: 1 (attn_fwd) or 2 (attn_fwd_blocked);
 * - blocked_m, blocked_n: powers of two from 16 (the plan's floor when it shrinks them)
 *   to 128 (128 x 128 with 4 x 4 micro-tiles is 1024 work-items, the most any device
 *   takes);
 * - blocked_tm, blocked_tn: 4 or 8, since the micro-tile is read as float4s; 8 x 8 is
 *   already 64 scores and 8 * d / 4 accumulators per work-item.
 * attn_fwd_rows's TILE_N is not here: the kernel is written for 16-wide vectors and
 * takes 16 only. */
static const struct {
    const char *name;
    size_t offset;
    int lo, hi;
    int multiple_of; /* 0: a power of two */
} k_fields[FACL_TUNING_FIELDS] = {
    {"block_n", offsetof(facl_tuning_params, block_n), 1, 128, 0},
    {"lanes", offsetof(facl_tuning_params, lanes), 1, 16, 0},
    {"group_rows", offsetof(facl_tuning_params, group_rows), 1, 128, 0},
    {"cpu_rows", offsetof(facl_tuning_params, cpu_rows), 4, 32, 4},
    {"kernel", offsetof(facl_tuning_params, kernel), 1, 2, 1},
    {"blocked_m", offsetof(facl_tuning_params, blocked_m), 16, 128, 0},
    {"blocked_n", offsetof(facl_tuning_params, blocked_n), 16, 128, 0},
    {"blocked_tm", offsetof(facl_tuning_params, blocked_tm), 4, 8, 0},
    {"blocked_tn", offsetof(facl_tuning_params, blocked_tn), 4, 8, 0},
};

static const char *const k_class_names[FACL_TUNING_CLASSES] = {"d64", "d128", "d256"};
static const char *const k_level_names[] = {"default", "vendor", "architecture", "device"};
static const char *const k_override_names[] = {"none", "applied", "ignored"};

const char *facl_tuning_level_name(facl_tuning_level level)
{
    return (unsigned)level < sizeof k_level_names / sizeof k_level_names[0] ? k_level_names[level]
                                                                            : "?";
}

const char *facl_tuning_override_name(facl_tuning_override override)
{
    return (unsigned)override < sizeof k_override_names / sizeof k_override_names[0]
               ? k_override_names[override]
               : "?";
}

int facl_tuning_class(int head_dim)
{
    return head_dim <= 64 ? FACL_TUNING_D64 : head_dim <= 128 ? FACL_TUNING_D128 : FACL_TUNING_D256;
}

const char *facl_tuning_class_name(int cls)
{
    return cls >= 0 && cls < FACL_TUNING_CLASSES ? k_class_names[cls] : "?";
}

const char *facl_tuning_field_name(int i)
{
    return i >= 0 && i < FACL_TUNING_FIELDS ? k_fields[i].name : "?";
}

int *facl_tuning_field(facl_tuning_params *p, int i)
{
    return (int *)(void *)((char *)p + k_fields[i].offset);
}

int facl_tuning_field_value(const facl_tuning_params *p, int i)
{
    return *(const int *)(const void *)((const char *)p + k_fields[i].offset);
}

facl_tuning_params facl_tuning_params_for(const facl_tuning *t, int head_dim)
{
    const int cls = facl_tuning_class(head_dim);
    facl_tuning_params out = k_defaults[cls];
    if (!t) return out;
    for (int i = 0; i < FACL_TUNING_FIELDS; ++i) {
        const int v = facl_tuning_field_value(&t->d[cls], i);
        if (v != 0) *facl_tuning_field(&out, i) = v;
    }
    return out;
}

int facl_tuning_check_value(int i, int value, char *why, size_t cap)
{
    const int lo = k_fields[i].lo, hi = k_fields[i].hi, m = k_fields[i].multiple_of;
    const int ok = value >= lo && value <= hi &&
                   (m ? value % m == 0 : (value & (value - 1)) == 0);
    if (ok) return 0;
    if (m == 1)
        snprintf(why, cap, "must be from %d to %d", lo, hi);
    else if (m)
        snprintf(why, cap, "must be a multiple of %d from %d to %d", m, lo, hi);
    else
        snprintf(why, cap, "must be a power of two from %d to %d", lo, hi);
    return -1;
}

/* Names compare without surrounding white space: some drivers pad CL_DEVICE_NAME, and a
 * file's values are trimmed. */
static int same_name(const char *a, const char *b)
{
    while (isspace((unsigned char)*a)) ++a;
    while (isspace((unsigned char)*b)) ++b;
    size_t la = strlen(a), lb = strlen(b);
    while (la > 0 && isspace((unsigned char)a[la - 1])) --la;
    while (lb > 0 && isspace((unsigned char)b[lb - 1])) --lb;
    return la == lb && memcmp(a, b, la) == 0;
}

int facl_tuning_names_device(const facl_tuning_entry *e, const char *vendor,
                             const char *architecture, const char *device)
{
    return same_name(e->vendor, vendor) && same_name(e->architecture, architecture) &&
           same_name(e->device, device);
}

static void append(char *buf, size_t cap, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

static void append(char *buf, size_t cap, const char *fmt, ...)
{
    const size_t len = strlen(buf);
    if (len + 1 >= cap) return;
    va_list args;
    va_start(args, fmt);
    vsnprintf(buf + len, cap - len, fmt, args);
    va_end(args);
}

/* The entry's values over t's; a value no kernel can take is left out and noted. */
static void overlay(facl_tuning *t, const facl_tuning_entry *e)
{
    for (int c = 0; c < FACL_TUNING_CLASSES; ++c)
        for (int i = 0; i < FACL_TUNING_FIELDS; ++i) {
            const int v = facl_tuning_field_value(&e->d[c], i);
            char why[96];
            if (v == 0) continue;
            if (facl_tuning_check_value(i, v, why, sizeof why) == 0) {
                *facl_tuning_field(&t->d[c], i) = v;
            } else {
                append(t->note, sizeof t->note, "%stable entry %s/%s/%s: %s.%s = %d %s",
                       t->note[0] ? "; " : "", e->vendor, e->architecture, e->device,
                       k_class_names[c], k_fields[i].name, v, why);
            }
        }
}

/* The first entry of the table at `level` for this device, or NULL. */
static const facl_tuning_entry *find(const facl_tuning_entry *table, size_t count,
                                     facl_tuning_level level, const char *vendor,
                                     const char *architecture, const char *device)
{
    for (size_t i = 0; i < count; ++i) {
        const facl_tuning_entry *e = &table[i];
        if (!same_name(e->vendor, vendor)) continue;
        const int has_arch = !same_name(e->architecture, "");
        const int has_device = !same_name(e->device, "");
        switch (level) {
        case FACL_TUNING_LEVEL_VENDOR:
            if (!has_arch && !has_device) return e;
            break;
        case FACL_TUNING_LEVEL_ARCHITECTURE:
            if (has_arch && !has_device && same_name(e->architecture, architecture)) return e;
            break;
        case FACL_TUNING_LEVEL_DEVICE:
            /* A device entry lives under its architecture ("" for devices that have none). */
            if (has_device && same_name(e->architecture, architecture) &&
                same_name(e->device, device))
                return e;
            break;
        default:
            break;
        }
    }
    return NULL;
}

void facl_tuning_lookup(const facl_tuning_entry *table, size_t count, const char *vendor,
                        const char *architecture, const char *device, facl_tuning *t)
{
    memset(t, 0, sizeof *t);
    for (int c = 0; c < FACL_TUNING_CLASSES; ++c) t->d[c] = k_defaults[c];
    snprintf(t->entry, sizeof t->entry, "built-in defaults");
    for (int level = FACL_TUNING_LEVEL_VENDOR; level <= FACL_TUNING_LEVEL_DEVICE; ++level) {
        const facl_tuning_entry *e =
            find(table, count, (facl_tuning_level)level, vendor, architecture, device);
        if (!e) continue;
        overlay(t, e);
        t->level = (facl_tuning_level)level;
        snprintf(t->entry, sizeof t->entry, "%s / %s / %s", e->vendor,
                 e->architecture[0] ? e->architecture : "*", e->device[0] ? e->device : "*");
    }
}

size_t facl_tuning_describe(const facl_tuning *t, const char *vendor, const char *architecture,
                            const char *device, char *buf, size_t cap)
{
    /* Formatted into a buffer large enough for every field at its largest, then copied:
     * the caller learns the whole length even when its buffer is short. */
    char text[4096];
    text[0] = '\0';
    append(text, sizeof text, "level = %s\nentry = %s\n", facl_tuning_level_name(t->level),
           t->entry);
    append(text, sizeof text, "vendor = %s\narchitecture = %s\ndevice = %s\n", vendor,
           architecture, device);
    append(text, sizeof text, "override = %s\noverride_file = %s\nnote = %s\n",
           facl_tuning_override_name(t->override), t->override_path, t->note);
    for (int c = 0; c < FACL_TUNING_CLASSES; ++c) {
        const facl_tuning_params p = facl_tuning_params_for(t, c == 0 ? 64 : c == 1 ? 128 : 256);
        for (int i = 0; i < FACL_TUNING_FIELDS; ++i)
            append(text, sizeof text, "%s.%s = %d\n", k_class_names[c], k_fields[i].name,
                   facl_tuning_field_value(&p, i));
    }
    if (cap > 0) snprintf(buf, cap, "%s", text);
    return strlen(text);
}
