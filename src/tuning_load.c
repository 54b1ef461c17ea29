/* Where a context's tuning override comes from, and applying it (see tuning.h). */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "env.h"
#include "tuning.h"

int facl_tuning_fixed_path(const char *cache_dir, const char *vendor, const char *device,
                           char *buf, size_t cap)
{
    /* One file per device name, so that a machine with several kinds of device keeps
     * each one's entry; the name is made safe for any file system. */
    char name[160];
    snprintf(name, sizeof name, "%s-%s", vendor, device);
    for (char *c = name; *c; ++c)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
              *c == '.' || *c == '_' || *c == '-'))
            *c = '_';
    const int n = snprintf(buf, cap, "%s/tuning/%s.txt", cache_dir, name);
    return n > 0 && (size_t)n < cap ? 0 : -1;
}

static int is_off(const char *v)
{
    return !*v || strcmp(v, "0") == 0 || strcasecmp(v, "off") == 0 || strcasecmp(v, "no") == 0 ||
           strcasecmp(v, "false") == 0;
}

static void ignore(facl_tuning *t, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* The file is not used: the table's values stay, and the note (after any note of the
 * table lookup) says why. */
static void ignore(facl_tuning *t, const char *fmt, ...)
{
    t->override = FACL_TUNING_OVERRIDE_IGNORED;
    size_t len = strlen(t->note);
    if (len && len + 2 < sizeof t->note) {
        memcpy(t->note + len, "; ", 3);
        len += 2;
    }
    if (len + 1 >= sizeof t->note) return;
    va_list args;
    va_start(args, fmt);
    vsnprintf(t->note + len, sizeof t->note - len, fmt, args);
    va_end(args);
}

/* Only the values the file sets replace the table's. */
static void apply(facl_tuning *t, const facl_tuning_entry *e)
{
    for (int c = 0; c < FACL_TUNING_CLASSES; ++c)
        for (int i = 0; i < FACL_TUNING_FIELDS; ++i) {
            const int v = facl_tuning_field_value(&e->d[c], i);
            if (v) *facl_tuning_field(&t->d[c], i) = v;
        }
}

void facl_tuning_resolve(const facl_tuning_entry *table, size_t count, const char *vendor,
                         const char *architecture, const char *device, const char *cache_dir,
                         facl_tuning *t)
{
    facl_tuning_lookup(table, count, vendor, architecture, device, t);
    const char *env = facl_getenv("FACL_TUNING_FILE");
    int strict = 0;
    if (env) {
        if (is_off(env)) return;
        snprintf(t->override_path, sizeof t->override_path, "%s", env);
    } else {
        if (!cache_dir || !*cache_dir) return;
        if (facl_tuning_fixed_path(cache_dir, vendor, device, t->override_path,
                                   sizeof t->override_path) != 0) {
            t->override_path[0] = '\0';
            return;
        }
        strict = 1; /* inside the cache directory: its rules */
    }

    char text[FACL_TUNING_FILE_MAX_BYTES + 1];
    char why[256];
    facl_tuning_entry e;
    const int found = facl_tuning_read_file(t->override_path, strict, text, sizeof text, why,
                                            sizeof why);
    if (found == 0 && strict) {
        t->override_path[0] = '\0'; /* no file at the fixed place: nothing to say */
        return;
    }
    if (found == 0) {
        ignore(t, "FACL_TUNING_FILE: no such file");
    } else if (found < 0) {
        ignore(t, "%s", why);
    } else if (facl_tuning_parse(text, &e, why, sizeof why) != 0) {
        ignore(t, "%s", why);
    } else if (!facl_tuning_names_device(&e, vendor, architecture, device)) {
        ignore(t, "names %s/%s/%s, this device is %s/%s/%s", e.vendor, e.architecture, e.device,
               vendor, architecture, device);
    } else {
        apply(t, &e);
        t->override = FACL_TUNING_OVERRIDE_APPLIED;
    }
}
