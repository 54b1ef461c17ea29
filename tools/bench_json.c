/* Streaming JSON writer (see bench_json.h). Indented two spaces per level so that the
 * files stay readable in a diff. */
#include "bench_json.h"

#include <math.h>

void json_init(json_writer *w, FILE *f)
{
    w->f = f;
    w->depth = 0;
    w->count[0] = 0;
}

static void write_escaped(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; ++p) {
        switch (*p) {
        case '"': fputs("\\\"", f); break;
        case '\\': fputs("\\\\", f); break;
        case '\n': fputs("\\n", f); break;
        case '\r': fputs("\\r", f); break;
        case '\t': fputs("\\t", f); break;
        default:
            if (*p < 0x20)
                fprintf(f, "\\u%04x", (unsigned)*p);
            else
                fputc(*p, f);
        }
    }
    fputc('"', f);
}

/* Comma, newline and indentation before a value, then its key if any. */
static void begin_value(json_writer *w, const char *key)
{
    if (w->depth > 0) {
        fputs(w->count[w->depth] > 0 ? ",\n" : "\n", w->f);
        for (int i = 0; i < w->depth; ++i) fputs("  ", w->f);
    }
    w->count[w->depth]++;
    if (key) {
        write_escaped(w->f, key);
        fputs(": ", w->f);
    }
}

static void open_level(json_writer *w, const char *key, char bracket)
{
    begin_value(w, key);
    fputc(bracket, w->f);
    if (w->depth + 1 < JSON_MAX_DEPTH) w->depth++;
    w->count[w->depth] = 0;
}

static void close_level(json_writer *w, char bracket)
{
    int had_values = w->count[w->depth] > 0;
    if (w->depth > 0) w->depth--;
    if (had_values) {
        fputc('\n', w->f);
        for (int i = 0; i < w->depth; ++i) fputs("  ", w->f);
    }
    fputc(bracket, w->f);
}

void json_begin_object(json_writer *w, const char *key) { open_level(w, key, '{'); }
void json_end_object(json_writer *w) { close_level(w, '}'); }
void json_begin_array(json_writer *w, const char *key) { open_level(w, key, '['); }
void json_end_array(json_writer *w) { close_level(w, ']'); }

void json_string(json_writer *w, const char *key, const char *value)
{
    begin_value(w, key);
    if (value)
        write_escaped(w->f, value);
    else
        fputs("null", w->f);
}

void json_number(json_writer *w, const char *key, double value)
{
    begin_value(w, key);
    if (isfinite(value))
        fprintf(w->f, "%.6g", value);
    else
        fputs("null", w->f);
}

void json_int(json_writer *w, const char *key, long long value)
{
    begin_value(w, key);
    fprintf(w->f, "%lld", value);
}

void json_uint(json_writer *w, const char *key, unsigned long long value)
{
    begin_value(w, key);
    fprintf(w->f, "%llu", value);
}

void json_bool(json_writer *w, const char *key, int value)
{
    begin_value(w, key);
    fputs(value ? "true" : "false", w->f);
}

void json_null(json_writer *w, const char *key)
{
    begin_value(w, key);
    fputs("null", w->f);
}

void json_finish(json_writer *w)
{
    fputc('\n', w->f);
    fflush(w->f);
}
