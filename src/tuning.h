/*
 * The tuning database of the portable forward kernels (docs/TUNING.md), in the manner of
 * CLBlast's: entries keyed by vendor, then architecture, then exact device name, each
 * level a default for the one below it. A device's parameters are the built-in defaults
 * overlaid by its vendor's entry, then its architecture's, then its own, then by an
 * override file that names it (FACL_TUNING_FILE, or <cache dir>/tuning/<device>.txt).
 *
 *   tuning_db.c     the table itself (the file people read and contribute to)
 *   tuning.c        defaults, validation, lookup, what a context reports
 *   tuning_file.c   the override file: reading, parsing, writing, the table line
 *   tuning_load.c   where a context's override file comes from, and applying it
 *
 * Nothing here prints: a bad entry or file keeps the defaults and says why in `note`.
 */
#ifndef FACL_TUNING_H
#define FACL_TUNING_H

#include <stddef.h>

/* Head-dim classes: the parameters differ by how much of a row a work-item holds. */
enum { FACL_TUNING_D64 = 0, FACL_TUNING_D128 = 1, FACL_TUNING_D256 = 2, FACL_TUNING_CLASSES = 3 };

/* One head-dim class's parameters. 0 = not set here: the less specific level's value. */
typedef struct facl_tuning_params {
    int block_n;    /* attn_fwd: keys per tile (halved further until the tile fits local memory) */
    int lanes;      /* attn_fwd: work-items per query row (halved to the device's work-group limit) */
    int group_rows; /* attn_fwd: query rows per work-group (shrunk for short queries and limits) */
    int cpu_rows;   /* attn_fwd_rows: query rows per work-item */
    int kernel;     /* the portable GPU kernel: FACL_TUNING_KERNEL_PREVIOUS or _BLOCKED */
    int blocked_m;  /* attn_fwd_blocked: query rows per work-group (shrunk for short queries,
                     * local memory and work-group limits) */
    int blocked_n;  /* attn_fwd_blocked: keys per tile (shrunk for local memory and limits) */
    int blocked_tm; /* attn_fwd_blocked: rows of each work-item's micro-tile */
    int blocked_tn; /* attn_fwd_blocked: keys of each work-item's micro-tile */
} facl_tuning_params;

/* The number of fields of facl_tuning_params, for loops over them. */
#define FACL_TUNING_FIELDS 9

/* Values of facl_tuning_params.kernel: attn_fwd (one query row per 1..16 work-items, the
 * kernel before issue 11) or attn_fwd_blocked (register micro-tiles). */
enum { FACL_TUNING_KERNEL_PREVIOUS = 1, FACL_TUNING_KERNEL_BLOCKED = 2 };

typedef struct facl_tuning_entry {
    char vendor[16];        /* facl_vendor_name(): "nvidia", "amd", "intel", "pocl", "other" */
    char architecture[64];  /* "" in a vendor entry (facl_device_architecture() otherwise) */
    char device[128];       /* CL_DEVICE_NAME; "" in vendor and architecture entries */
    facl_tuning_params d[FACL_TUNING_CLASSES];
} facl_tuning_entry;

typedef enum facl_tuning_level {
    FACL_TUNING_LEVEL_DEFAULT = 0, /* no table entry: the built-in defaults */
    FACL_TUNING_LEVEL_VENDOR,
    FACL_TUNING_LEVEL_ARCHITECTURE,
    FACL_TUNING_LEVEL_DEVICE
} facl_tuning_level;

typedef enum facl_tuning_override {
    FACL_TUNING_OVERRIDE_NONE = 0, /* no file (or FACL_TUNING_FILE turned it off) */
    FACL_TUNING_OVERRIDE_APPLIED,
    FACL_TUNING_OVERRIDE_IGNORED   /* a file was there but not used: `note` says why */
} facl_tuning_override;

/* What a device uses. All zero (a made-up profile) means the built-in defaults. */
typedef struct facl_tuning {
    facl_tuning_params d[FACL_TUNING_CLASSES]; /* 0 fields: built-in default */
    facl_tuning_level level;                   /* the most specific table entry that matched */
    char entry[224];                           /* that entry's key, "pocl / haswell / *" */
    facl_tuning_override override;
    char override_path[512];
    char note[320]; /* why an override file (or a table value) was not used; "" if none */
} facl_tuning;

/* "default", "vendor", "architecture", "device"; "none", "applied", "ignored". */
const char *facl_tuning_level_name(facl_tuning_level level);
const char *facl_tuning_override_name(facl_tuning_override override);

/* The class of a head dim (<= 64, <= 128, else <= 256), and its name ("d64"). */
int facl_tuning_class(int head_dim);
const char *facl_tuning_class_name(int cls);

/* Field `i` (0 .. FACL_TUNING_FIELDS-1): its name in files ("block_n") and a pointer to it. */
const char *facl_tuning_field_name(int i);
int *facl_tuning_field(facl_tuning_params *p, int i);
int facl_tuning_field_value(const facl_tuning_params *p, int i);

/* The parameters the plan uses for `head_dim`: t's values, built-in defaults for the
 * fields t leaves 0 (t may be NULL). */
facl_tuning_params facl_tuning_params_for(const facl_tuning *t, int head_dim);

/* Whether `value` is one the kernels can take for field `i`. 0 = yes; -1 with a message
 * in why ("must be a power of two from 1 to 16"). */
int facl_tuning_check_value(int i, int value, char *why, size_t cap);

/* ---- tuning_db.c */
/* The built-in table and its length. */
const facl_tuning_entry *facl_tuning_db(size_t *count);

/* ---- tuning.c */
/* The table lookup for one device: fills t->d, level and entry (override fields zeroed).
 * Values of table entries that a kernel cannot take are skipped (note says which). */
void facl_tuning_lookup(const facl_tuning_entry *table, size_t count, const char *vendor,
                        const char *architecture, const char *device, facl_tuning *t);

/* Whether an entry's key names this device (vendor, architecture and device equal,
 * ignoring surrounding white space). */
int facl_tuning_names_device(const facl_tuning_entry *e, const char *vendor,
                             const char *architecture, const char *device);

/* The "key = value" report of facl_context_tuning() (docs/TUNING.md). Returns the length
 * it needs (without the NUL), like snprintf. */
size_t facl_tuning_describe(const facl_tuning *t, const char *vendor, const char *architecture,
                            const char *device, char *buf, size_t cap);

/* ---- tuning_file.c */
#define FACL_TUNING_FILE_FORMAT 1
#define FACL_TUNING_FILE_MAX_BYTES 4096

/* Parses an override file's text into *e (strict: unknown keys, repeated keys, values a
 * kernel cannot take, a missing vendor / architecture / device / format are errors).
 * Returns 0, or -1 with "line N: ..." in why. */
int facl_tuning_parse(const char *text, facl_tuning_entry *e, char *why, size_t cap);

/* The override file for *e (only its set values). Returns the length needed, like
 * snprintf. */
size_t facl_tuning_format_file(const facl_tuning_entry *e, char *buf, size_t cap);

/* *e as a line of tuning_db.c's table. Returns the length needed, like snprintf. */
size_t facl_tuning_format_line(const facl_tuning_entry *e, char *buf, size_t cap);

/* Reads a file of at most FACL_TUNING_FILE_MAX_BYTES into text (cap > that). `strict`:
 * also refuse a symbolic link, a file of another user, or one writable by group or
 * others (the rules of the cache directory it lives in). Returns 1 read, 0 no such file,
 * -1 refused or unreadable (why says so). */
int facl_tuning_read_file(const char *path, int strict, char *text, size_t cap, char *why,
                          size_t why_cap);

/* ---- tuning_load.c */
/* The override file's fixed place for a device: <cache_dir>/tuning/<vendor>-<device>.txt
 * with every character of the name outside [A-Za-z0-9._-] as '_'. Returns 0, or -1 when
 * it does not fit. */
int facl_tuning_fixed_path(const char *cache_dir, const char *vendor, const char *device,
                           char *buf, size_t cap);

/* A device's tuning: the table, then the override file of FACL_TUNING_FILE (a path; "",
 * "0", "off", "no", "false": none) or, when that is unset, of the fixed place in
 * `cache_dir` ("" or NULL: the disk cache is off, no fixed place). A file that cannot be
 * read, does not parse or names another device is ignored, with the reason in t->note. */
void facl_tuning_resolve(const facl_tuning_entry *table, size_t count, const char *vendor,
                         const char *architecture, const char *device, const char *cache_dir,
                         facl_tuning *t);

#endif
