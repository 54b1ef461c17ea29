/* Small helpers every tool source uses: a wall clock, appending to a message buffer, and
 * opening / closing an output file named on the command line ("-" = stdout). */
#ifndef FACL_TOOLS_TOOL_UTIL_H
#define FACL_TOOLS_TOOL_UTIL_H

#include <stddef.h>
#include <stdio.h>

/* Wall-clock seconds (TIME_UTC), for progress lines and setup times. */
double tool_now_seconds(void);

/* printf-style append to the NUL-terminated `buf` of `size` bytes; drops what does not
 * fit. */
void tool_appendf(char *buf, size_t size, const char *fmt, ...);

/* `path` for writing, or stdout for "-"; NULL (message on stderr) on failure. */
FILE *tool_open_output(const char *path);

/* Flushes stdout or closes the file; -1 (message on stderr) on a write error. */
int tool_close_output(FILE *f, const char *path);

#endif
