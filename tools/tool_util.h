/* Small helpers every tool source uses: a wall clock, appending to a message buffer,
 * reading "key = value" text, and opening / closing an output file named on the command
 * line ("-" = stdout). */
#ifndef FACL_TOOLS_TOOL_UTIL_H
#define FACL_TOOLS_TOOL_UTIL_H

#include <stddef.h>
#include <stdio.h>

/* Wall-clock seconds (TIME_UTC), for progress lines and setup times. */
double tool_now_seconds(void);

/* printf-style append to the NUL-terminated `buf` of `size` bytes; drops what does not
 * fit. */
void tool_appendf(char *buf, size_t size, const char *fmt, ...);

/* The value of `key` in "key = value" lines (facl_context_tuning's text), without
 * surrounding spaces, into out. Returns 1, or 0 (out "") when the key is not there. */
int tool_kv_get(const char *text, const char *key, char *out, size_t size);

/* `path` for writing, or stdout for "-"; NULL (message on stderr) on failure. */
FILE *tool_open_output(const char *path);

/* Flushes stdout or closes the file; -1 (message on stderr) on a write error. */
int tool_close_output(FILE *f, const char *path);

#endif
