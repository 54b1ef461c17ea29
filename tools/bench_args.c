/* Command-line helpers (see bench_args.h). */
#include "bench_args.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int arg_flag(char **argv, int i, const char *name, const char *alias)
{
    return strcmp(argv[i], name) == 0 || (alias && strcmp(argv[i], alias) == 0);
}

int arg_value(int argc, char **argv, int *i, const char *name, const char *alias,
              const char **value)
{
    const char *a = argv[*i];
    size_t n = strlen(name);
    if (strncmp(a, name, n) == 0 && a[n] == '=') {
        *value = a + n + 1;
        return 1;
    }
    if (!arg_flag(argv, *i, name, alias)) return 0;
    if (*i + 1 >= argc) {
        fprintf(stderr, "option %s needs a value\n", a);
        return -1;
    }
    *value = argv[++*i];
    return 1;
}

static int int_list(const char *text, const char *what, int *out, int max, long min)
{
    int count = 0;
    const char *p = text;
    while (*p) {
        char *end;
        if (!isdigit((unsigned char)*p)) goto bad;
        long v = strtol(p, &end, 10);
        if (v < min || v > 1 << 30 || count == max) goto bad;
        out[count++] = (int)v;
        if (*end == ',' && end[1])
            p = end + 1;
        else if (*end == '\0')
            p = end;
        else
            goto bad;
    }
    if (count > 0) return count;
bad:
    fprintf(stderr, "%s: expected a comma-separated list of at most %d %s integers, got '%s'\n",
            what, max, min > 0 ? "positive" : "non-negative", text);
    return -1;
}

int arg_int_list(const char *text, const char *what, int *out, int max)
{
    return int_list(text, what, out, max, 1);
}

int arg_count_list(const char *text, const char *what, int *out, int max)
{
    return int_list(text, what, out, max, 0);
}

int arg_positive_double(const char *text, const char *what, double *out)
{
    char *end;
    double v = strtod(text, &end);
    if (end == text || *end != '\0' || !(v > 0.0) || v > 1e12) {
        fprintf(stderr, "%s: expected a positive number, got '%s'\n", what, text);
        return -1;
    }
    *out = v;
    return 0;
}

int arg_word_list(const char *text, const char *what, char (*out)[16], int max)
{
    int count = 0;
    const char *p = text;
    while (*p) {
        size_t n = strcspn(p, ",");
        if (n == 0 || n >= sizeof out[0] || count == max) goto bad;
        memcpy(out[count], p, n);
        out[count++][n] = '\0';
        p += n;
        if (*p == ',') {
            if (!p[1]) goto bad;
            ++p;
        }
    }
    if (count > 0) return count;
bad:
    fprintf(stderr, "%s: expected a comma-separated list of at most %d words, got '%s'\n", what,
            max, text);
    return -1;
}

int arg_on_off(const char *text)
{
    static const char *const on[] = {"on", "1", "yes", "true"};
    static const char *const off[] = {"off", "0", "no", "false"};
    for (size_t i = 0; i < sizeof on / sizeof on[0]; ++i) {
        if (strcmp(text, on[i]) == 0) return 1;
        if (strcmp(text, off[i]) == 0) return 0;
    }
    return -1;
}
