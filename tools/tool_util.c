/* See tool_util.h. */
#include "tool_util.h"

#include <errno.h>
#include <stdarg.h>
#include <string.h>
#include <time.h>

double tool_now_seconds(void)
{
    struct timespec ts;
    timespec_get(&ts, TIME_UTC);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void tool_appendf(char *buf, size_t size, const char *fmt, ...)
{
    size_t len = strlen(buf);
    if (len + 1 >= size) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf + len, size - len, fmt, ap);
    va_end(ap);
}

int tool_kv_get(const char *text, const char *key, char *out, size_t size)
{
    const size_t klen = strlen(key);
    if (size) out[0] = '\0';
    for (const char *line = text; line && *line;) {
        const char *end = strchr(line, '\n');
        if (!end) end = line + strlen(line);
        const char *k = line;
        while (k < end && (*k == ' ' || *k == '\t')) ++k;
        const char *after = k + klen;
        if (after <= end && strncmp(k, key, klen) == 0) {
            while (after < end && (*after == ' ' || *after == '\t')) ++after;
            if (after < end && *after == '=') {
                const char *v = after + 1, *ve = end;
                while (v < ve && (*v == ' ' || *v == '\t')) ++v;
                while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t' || ve[-1] == '\r')) --ve;
                if (size) snprintf(out, size, "%.*s", (int)(ve - v), v);
                return 1;
            }
        }
        line = *end ? end + 1 : end;
    }
    return 0;
}

FILE *tool_open_output(const char *path)
{
    if (strcmp(path, "-") == 0) return stdout;
    FILE *f = fopen(path, "w");
    if (!f) fprintf(stderr, "facl-bench: cannot write %s: %s\n", path, strerror(errno));
    return f;
}

int tool_close_output(FILE *f, const char *path)
{
    if (f == stdout) return fflush(f) == 0 ? 0 : -1;
    if (fclose(f) != 0) {
        fprintf(stderr, "facl-bench: error writing %s\n", path);
        return -1;
    }
    return 0;
}
