/*
 * A small streaming JSON writer shared by facl-selftest and facl-bench. It tracks
 * commas and nesting so that callers write values in order and never build strings by
 * hand; non-finite numbers become null (JSON has no NaN or infinity).
 */
#ifndef FACL_TOOLS_BENCH_JSON_H
#define FACL_TOOLS_BENCH_JSON_H

#include <stdio.h>

#define JSON_MAX_DEPTH 16

typedef struct json_writer {
    FILE *f;
    int depth;
    int count[JSON_MAX_DEPTH]; /* values written so far at each level */
} json_writer;

void json_init(json_writer *w, FILE *f);

/* `key` names the member inside an object; pass NULL inside arrays and at the top. */
void json_begin_object(json_writer *w, const char *key);
void json_end_object(json_writer *w);
void json_begin_array(json_writer *w, const char *key);
void json_end_array(json_writer *w);

void json_string(json_writer *w, const char *key, const char *value); /* NULL: null */
void json_number(json_writer *w, const char *key, double value);      /* non-finite: null */
void json_int(json_writer *w, const char *key, long long value);
void json_uint(json_writer *w, const char *key, unsigned long long value);
void json_bool(json_writer *w, const char *key, int value);
void json_null(json_writer *w, const char *key);

/* Ends the document with a newline. */
void json_finish(json_writer *w);

#endif
