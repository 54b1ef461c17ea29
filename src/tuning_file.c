/* The tuning override file (docs/TUNING.md): one entry as "key = value" lines, parsed
 * strictly (a file that says something the library cannot honour is ignored as a whole,
 * never half applied), written by facl-tune, and turned into a line of tuning_db.c. */
#include "tuning.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "device_profile.h"

static void set_why(char *why, size_t cap, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

static void set_why(char *why, size_t cap, const char *fmt, ...)
{
    if (!why || cap == 0) return;
    va_list args;
    va_start(args, fmt);
    vsnprintf(why, cap, fmt, args);
    va_end(args);
}

/* strerror, but thread-safe: contexts may be created on several threads at once. */
static const char *errno_text(int err, char *buf, size_t cap)
{
    if (strerror_r(err, buf, cap) != 0) snprintf(buf, cap, "errno %d", err);
    return buf;
}

/* [s, e) without surrounding white space. */
static void trim(const char **s, const char **e)
{
    while (*s < *e && isspace((unsigned char)**s)) ++*s;
    while (*e > *s && isspace((unsigned char)(*e)[-1])) --*e;
}

static int copy_value(char *dst, size_t cap, const char *s, const char *e)
{
    const size_t n = (size_t)(e - s);
    if (n >= cap) return -1;
    memcpy(dst, s, n);
    dst[n] = '\0';
    return 0;
}

/* A decimal int without sign, spaces or trailing characters. */
static int parse_int(const char *s, const char *e, int *out)
{
    if (s == e || e - s > 6) return -1;
    int v = 0;
    for (const char *c = s; c < e; ++c) {
        if (*c < '0' || *c > '9') return -1;
        v = v * 10 + (*c - '0');
    }
    *out = v;
    return 0;
}

/* "d128.lanes" -> class and field, or -1. */
static int param_key(const char *key, int *cls, int *field)
{
    for (int c = 0; c < FACL_TUNING_CLASSES; ++c) {
        const char *name = facl_tuning_class_name(c);
        const size_t n = strlen(name);
        if (strncmp(key, name, n) != 0 || key[n] != '.') continue;
        for (int i = 0; i < FACL_TUNING_FIELDS; ++i)
            if (strcmp(key + n + 1, facl_tuning_field_name(i)) == 0) {
                *cls = c;
                *field = i;
                return 0;
            }
    }
    return -1;
}

enum { KEY_FORMAT, KEY_VENDOR, KEY_ARCH, KEY_DEVICE, KEY_FIXED };
static const char *const k_keys[KEY_FIXED] = {"format", "vendor", "architecture", "device"};

/* One "key = value" line (already trimmed, not a comment). seen[] catches repeats. */
static int parse_line(const char *s, const char *e, facl_tuning_entry *out, int *seen,
                      int *param_seen, char *why, size_t cap)
{
    const char *eq = memchr(s, '=', (size_t)(e - s));
    if (!eq) {
        set_why(why, cap, "expected \"key = value\", got \"%.*s\"", (int)(e - s), s);
        return -1;
    }
    const char *ks = s, *ke = eq, *vs = eq + 1, *ve = e;
    trim(&ks, &ke);
    trim(&vs, &ve);
    char key[32];
    if (copy_value(key, sizeof key, ks, ke) != 0) {
        set_why(why, cap, "unknown key \"%.*s\"", (int)(ke - ks), ks);
        return -1;
    }
    for (int k = 0; k < KEY_FIXED; ++k) {
        if (strcmp(key, k_keys[k]) != 0) continue;
        if (seen[k]++) {
            set_why(why, cap, "%s given twice", key);
            return -1;
        }
        int fmt = 0;
        switch (k) {
        case KEY_FORMAT:
            if (parse_int(vs, ve, &fmt) != 0 || fmt != FACL_TUNING_FILE_FORMAT) {
                set_why(why, cap, "format = %.*s: this library reads format %d", (int)(ve - vs),
                        vs, FACL_TUNING_FILE_FORMAT);
                return -1;
            }
            return 0;
        case KEY_VENDOR:
            if (copy_value(out->vendor, sizeof out->vendor, vs, ve) == 0 &&
                facl_vendor_from_name(out->vendor) >= 0)
                return 0;
            set_why(why, cap, "vendor = %.*s: not nvidia, amd, intel, pocl or other",
                    (int)(ve - vs), vs);
            return -1;
        case KEY_ARCH:
            if (copy_value(out->architecture, sizeof out->architecture, vs, ve) == 0) return 0;
            set_why(why, cap, "architecture: longer than %zu characters",
                    sizeof out->architecture - 1);
            return -1;
        default:
            if (copy_value(out->device, sizeof out->device, vs, ve) == 0 && vs != ve) return 0;
            set_why(why, cap, "device: %s", vs == ve ? "empty (an override names one device)"
                                                     : "longer than CL_DEVICE_NAME can be here");
            return -1;
        }
    }
    int cls, field, value;
    if (param_key(key, &cls, &field) != 0) {
        set_why(why, cap, "unknown key \"%s\"", key);
        return -1;
    }
    if (param_seen[cls * FACL_TUNING_FIELDS + field]++) {
        set_why(why, cap, "%s given twice", key);
        return -1;
    }
    char rule[96];
    if (parse_int(vs, ve, &value) != 0) {
        set_why(why, cap, "%s = %.*s: not a number", key, (int)(ve - vs), vs);
        return -1;
    }
    if (facl_tuning_check_value(field, value, rule, sizeof rule) != 0) {
        set_why(why, cap, "%s = %d: %s", key, value, rule);
        return -1;
    }
    *facl_tuning_field(&out->d[cls], field) = value;
    return 0;
}

int facl_tuning_parse(const char *text, facl_tuning_entry *e, char *why, size_t cap)
{
    memset(e, 0, sizeof *e);
    int seen[KEY_FIXED] = {0};
    int param_seen[FACL_TUNING_CLASSES * FACL_TUNING_FIELDS] = {0};
    int line = 0;
    char detail[256];
    for (const char *s = text; *s;) {
        const char *nl = strchr(s, '\n');
        const char *end = nl ? nl : s + strlen(s);
        const char *ls = s, *le = end;
        ++line;
        s = nl ? nl + 1 : end;
        trim(&ls, &le);
        if (ls == le || *ls == '#') continue;
        if (parse_line(ls, le, e, seen, param_seen, detail, sizeof detail) != 0) {
            set_why(why, cap, "line %d: %s", line, detail);
            memset(e, 0, sizeof *e);
            return -1;
        }
    }
    for (int k = 0; k < KEY_FIXED; ++k)
        if (!seen[k]) {
            set_why(why, cap, "no \"%s = ...\" line", k_keys[k]);
            memset(e, 0, sizeof *e);
            return -1;
        }
    return 0;
}

static size_t put(char *buf, size_t cap, size_t len, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;

/* snprintf at buf + len that counts what it could not write, so the callers return the
 * length needed as snprintf does. */
static size_t put(char *buf, size_t cap, size_t len, const char *fmt, ...)
{
    va_list args;
    va_start(args, fmt);
    const int n = vsnprintf(len < cap ? buf + len : NULL, len < cap ? cap - len : 0, fmt, args);
    va_end(args);
    return n > 0 ? len + (size_t)n : len;
}

size_t facl_tuning_format_file(const facl_tuning_entry *e, char *buf, size_t cap)
{
    if (cap > 0) buf[0] = '\0';
    size_t len = put(buf, cap, 0,
                     "# facl tuning entry (docs/TUNING.md); applies to this device only\n"
                     "format = %d\nvendor = %s\narchitecture = %s\ndevice = %s\n",
                     FACL_TUNING_FILE_FORMAT, e->vendor, e->architecture, e->device);
    for (int c = 0; c < FACL_TUNING_CLASSES; ++c)
        for (int i = 0; i < FACL_TUNING_FIELDS; ++i) {
            const int v = facl_tuning_field_value(&e->d[c], i);
            if (v) len = put(buf, cap, len, "%s.%s = %d\n", facl_tuning_class_name(c),
                             facl_tuning_field_name(i), v);
        }
    return len;
}

/* A C string literal of s (device names may hold quotes or backslashes). */
static size_t put_literal(char *buf, size_t cap, size_t len, const char *s)
{
    len = put(buf, cap, len, "\"");
    for (; *s; ++s) {
        if (*s == '"' || *s == '\\')
            len = put(buf, cap, len, "\\%c", *s);
        else if ((unsigned char)*s < 0x20 || (unsigned char)*s >= 0x7f)
            len = put(buf, cap, len, "\\%03o", (unsigned)(unsigned char)*s);
        else
            len = put(buf, cap, len, "%c", *s);
    }
    return put(buf, cap, len, "\"");
}

size_t facl_tuning_format_line(const facl_tuning_entry *e, char *buf, size_t cap)
{
    static const char *const k_class_macros[FACL_TUNING_CLASSES] = {"D64", "D128", "D256"};
    if (cap > 0) buf[0] = '\0';
    size_t len = put(buf, cap, 0, "    {");
    len = put_literal(buf, cap, len, e->vendor);
    len = put(buf, cap, len, ", ");
    len = put_literal(buf, cap, len, e->architecture);
    len = put(buf, cap, len, ", ");
    len = put_literal(buf, cap, len, e->device);
    len = put(buf, cap, len, ", {");
    int first_class = 1;
    for (int c = 0; c < FACL_TUNING_CLASSES; ++c) {
        int any = 0;
        for (int i = 0; i < FACL_TUNING_FIELDS; ++i) any |= facl_tuning_field_value(&e->d[c], i);
        if (!any) continue;
        len = put(buf, cap, len, "%s[%s] = {", first_class ? "" : ", ", k_class_macros[c]);
        first_class = 0;
        int first_field = 1;
        for (int i = 0; i < FACL_TUNING_FIELDS; ++i) {
            const int v = facl_tuning_field_value(&e->d[c], i);
            if (!v) continue;
            len = put(buf, cap, len, "%s.%s = %d", first_field ? "" : ", ",
                      facl_tuning_field_name(i), v);
            first_field = 0;
        }
        len = put(buf, cap, len, "}");
    }
    return put(buf, cap, len, "}},");
}

int facl_tuning_read_file(const char *path, int strict, char *text, size_t cap, char *why,
                          size_t why_cap)
{
    text[0] = '\0';
    /* O_NONBLOCK: a FIFO under the name cannot hang context creation. O_NOFOLLOW where
     * the file sits in the cache directory, whose rules it shares. */
    const int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | (strict ? O_NOFOLLOW : 0));
    char reason[128];
    if (fd < 0) {
        const int err = errno;
        if (err == ENOENT || err == ENOTDIR) return 0;
        set_why(why, why_cap, "cannot open %s: %s", path,
                err == ELOOP && strict ? "a symbolic link (refused in the cache directory)"
                                      : errno_text(err, reason, sizeof reason));
        return -1;
    }
    int rc = -1;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        set_why(why, why_cap, "cannot stat %s: %s", path, errno_text(errno, reason, sizeof reason));
    } else if (!S_ISREG(st.st_mode)) {
        set_why(why, why_cap, "%s: not a regular file", path);
    } else if (strict && st.st_uid != geteuid()) {
        set_why(why, why_cap, "%s: owned by uid %lu, not by this user", path,
                (unsigned long)st.st_uid);
    } else if (strict && (st.st_mode & (S_IWGRP | S_IWOTH))) {
        set_why(why, why_cap, "%s: writable by group or others (mode %04o)", path,
                (unsigned)(st.st_mode & 07777));
    } else if (st.st_size > FACL_TUNING_FILE_MAX_BYTES || (size_t)st.st_size >= cap) {
        set_why(why, why_cap, "%s: %lld bytes, more than the %d an entry may have", path,
                (long long)st.st_size, FACL_TUNING_FILE_MAX_BYTES);
    } else {
        size_t got = 0;
        ssize_t n = 1;
        while (got + 1 < cap && (n = read(fd, text + got, cap - 1 - got)) > 0) got += (size_t)n;
        text[got] = '\0';
        if (n < 0) {
            set_why(why, why_cap, "cannot read %s: %s", path, errno_text(errno, reason, sizeof reason));
        } else if (memchr(text, '\0', got)) {
            set_why(why, why_cap, "%s: not a text file (holds a NUL byte)", path);
        } else {
            rc = 1;
        }
    }
    close(fd);
    if (rc != 1) text[0] = '\0';
    return rc;
}
