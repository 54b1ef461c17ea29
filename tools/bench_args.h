/*
 * Command-line helpers shared by facl-selftest and facl-bench. Plain C11 (getopt_long
 * is a GNU extension), accepting "--name VALUE", "--name=VALUE" and short "-x VALUE".
 */
#ifndef FACL_TOOLS_BENCH_ARGS_H
#define FACL_TOOLS_BENCH_ARGS_H

#include <stddef.h>

/* 1 if argv[*i] is the flag `name` or `alias` (alias may be NULL). */
int arg_flag(char **argv, int i, const char *name, const char *alias);

/* 1 if argv[*i] is the option `name`/`alias` with a value, stored in *value (and *i
 * advanced past a separate value); 0 if argv[*i] is another argument; -1 if the option
 * is there but its value is missing (a message is printed). */
int arg_value(int argc, char **argv, int *i, const char *name, const char *alias,
              const char **value);

/* Parses "64,128,256" into at most `max` positive ints; returns the count, or -1 on a
 * malformed list (a message naming `what` is printed). */
int arg_int_list(const char *text, const char *what, int *out, int max);

/* The same with 0 allowed ("0,16,256"). */
int arg_count_list(const char *text, const char *what, int *out, int max);

/* A finite number > 0 ("4270", "1.5e3") into *out; -1 (message printed) otherwise. */
int arg_positive_double(const char *text, const char *what, double *out);

/* Splits "fp16,bf16" into at most `max` items of at most `size` characters. Returns
 * the count, or -1. */
int arg_word_list(const char *text, const char *what, char (*out)[16], int max);

/* "on"/"off"/"1"/"0"/"yes"/"no"/"true"/"false": 1 or 0; -1 otherwise. */
int arg_on_off(const char *text);

#endif
