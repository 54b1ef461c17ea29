/* facl-bench's output: the aligned table (row by row, as points finish), JSON and CSV. */
#ifndef FACL_TOOLS_BENCH_OUTPUT_H
#define FACL_TOOLS_BENCH_OUTPUT_H

#include <stddef.h>
#include <stdio.h>

#include "bench_result.h"
#include "bench_run.h"

void bench_print_header(FILE *f, const bench_session *s, const char *selector);
/* With --portable-kernel a column names each row's kernel. */
void bench_print_columns(FILE *f, const bench_options *o);
void bench_print_row(FILE *f, const bench_options *o, const bench_row *row);
/* One line on where the time of point i of n went (--progress). */
void bench_print_progress(FILE *f, size_t i, size_t n, const bench_row *row);

/* Return 0, or -1 when the file cannot be written (a message is printed). */
int bench_write_json(const char *path, const bench_session *s, const char *selector,
                     const bench_row *rows, size_t n);
int bench_write_csv(const char *path, const bench_options *o, const bench_row *rows, size_t n);

#endif
