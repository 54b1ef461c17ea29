/* sm_90 PTX to sm_90a PTX (ptx_patch.h): a line-by-line copy that rewrites the one
 * `.target` directive and strips the marker from marker lines, then moves the entry
 * markers' directives into their entries' headers. */
#include "ptx_patch.h"

#include <stdlib.h>
#include <string.h>

#include "status.h"

/* The length of the line starting at `p` (up to and without its '\n', or the end). */
static size_t line_length(const char *p, const char *end)
{
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    return (size_t)((nl ? nl : end) - p);
}

static size_t leading_blanks(const char *p, size_t n)
{
    size_t i = 0;
    while (i < n && (p[i] == ' ' || p[i] == '\t')) ++i;
    return i;
}

static int starts_with(const char *p, size_t n, const char *prefix)
{
    const size_t k = strlen(prefix);
    return n >= k && memcmp(p, prefix, k) == 0;
}

/* A `.target` directive for sm_90 exactly: "sm_90" followed by the end of the line, a
 * blank or a comma (".target sm_90, texmode_independent"), not "sm_90a" or "sm_900". */
static int is_sm90_target(const char *p, size_t n)
{
    static const char prefix[] = ".target sm_90";
    const size_t k = sizeof prefix - 1;
    if (!starts_with(p, n, prefix)) return 0;
    return n == k || p[k] == ',' || p[k] == ' ' || p[k] == '\t' || p[k] == '\r';
}

static int is_entry_line(const char *p, size_t n)
{
    return starts_with(p, n, ".entry ") || starts_with(p, n, ".visible .entry ");
}

/* In place over the NUL-terminated `text` (*length bytes): each entry marker line is
 * dropped and its directive inserted before the "{" line that opens its entry's body,
 * unless an earlier copy already put the same directive there. Never grows the text (a
 * directive is shorter than its marker line). 0, or -1 for a marker outside a body. */
static int move_entry_directives(char *text, size_t *length)
{
    const size_t marker_length = strlen(FACL_PTX_ENTRY_MARKER);
    const char *end = text + *length;
    /* where the current entry's header starts, and where its body's "{" line starts */
    size_t used = 0, header_start = 0, header_end = 0;
    int in_entry = 0, in_body = 0;
    for (char *line = text; line < end;) {
        const size_t n = line_length(line, end);
        const size_t blanks = leading_blanks(line, n);
        const char *t = line + blanks;
        const size_t rest = n - blanks;
        const size_t whole = n + (line + n < end ? 1 : 0); /* with its '\n' */
        if (starts_with(t, rest, FACL_PTX_ENTRY_MARKER)) {
            if (!in_body) return -1;
            const char *directive = t + marker_length;
            const size_t k = rest - marker_length;
            int present = 0; /* the same directive already in this header? */
            for (size_t at = header_start; at + k <= header_end && !present; ++at)
                present = (at == 0 || text[at - 1] == '\n') && memcmp(text + at, directive, k) == 0 &&
                          (text[at + k] == '\n');
            if (!present) { /* read `directive` before the move can overwrite it: it lies ahead */
                char saved[256];
                if (k >= sizeof saved) return -1;
                memcpy(saved, directive, k);
                memmove(text + header_end + k + 1, text + header_end, used - header_end);
                memcpy(text + header_end, saved, k);
                text[header_end + k] = '\n';
                header_end += k + 1;
                used += k + 1;
            }
            line += whole;
            continue;
        }
        if (is_entry_line(t, rest)) {
            in_entry = 1;
            in_body = 0;
            header_start = used;
        } else if (in_entry && !in_body && starts_with(t, rest, "{")) {
            in_body = 1;
            header_end = used;
        }
        memmove(text + used, line, whole);
        used += whole;
        line += whole;
    }
    text[used] = '\0';
    *length = used;
    return 0;
}

facl_status facl_ptx_to_sm90a(const char *ptx, size_t length, char **out, size_t *out_length,
                              int *markers)
{
    *out = NULL;
    *out_length = 0;
    *markers = 0;
    /* The copy grows by one byte ("a") per sm_90 target line (at least 13 bytes each,
     * so at most length / 8 of them) and shrinks by a marker per marker line. */
    const size_t capacity = length + length / 8 + 2;
    char *copy = malloc(capacity);
    if (!copy) return facl_fail(FACL_ERROR_OUT_OF_HOST_MEMORY, "the patched PTX (%zu bytes)", capacity);
    const char *end = ptx + length;
    const size_t marker_length = strlen(FACL_PTX_SM90A_MARKER);
    size_t used = 0;
    int targets = 0, sm90_targets = 0, patched = 0;
    for (const char *line = ptx; line < end;) {
        const size_t n = line_length(line, end);
        const size_t blanks = leading_blanks(line, n);
        const char *text = line + blanks;
        const size_t rest = n - blanks;
        memcpy(copy + used, line, blanks);
        used += blanks;
        if (starts_with(text, rest, ".target")) {
            targets++;
            if (is_sm90_target(text, rest)) {
                sm90_targets++;
                static const char retargeted[] = ".target sm_90a";
                memcpy(copy + used, retargeted, sizeof retargeted - 1);
                used += sizeof retargeted - 1;
                const size_t k = strlen(".target sm_90");
                memcpy(copy + used, text + k, rest - k);
                used += rest - k;
            } else {
                memcpy(copy + used, text, rest);
                used += rest;
            }
        } else if (starts_with(text, rest, FACL_PTX_SM90A_MARKER)) {
            patched++;
            memcpy(copy + used, text + marker_length, rest - marker_length);
            used += rest - marker_length;
        } else {
            memcpy(copy + used, text, rest);
            used += rest;
        }
        line += n;
        if (line < end) copy[used++] = *line++; /* the '\n' */
    }
    copy[used] = '\0';
    facl_status st = FACL_SUCCESS;
    if (targets != 1 || sm90_targets != 1)
        st = facl_fail(FACL_ERROR_BUILD_FAILED,
                       "PTX for sm_90a: expected one \".target sm_90\" directive, found %d "
                       ".target directives (%d for sm_90)", targets, sm90_targets);
    else if (patched == 0)
        st = facl_fail(FACL_ERROR_BUILD_FAILED,
                       "PTX for sm_90a: no \"%s\" line (nothing to patch)", FACL_PTX_SM90A_MARKER);
    else if (move_entry_directives(copy, &used) != 0)
        st = facl_fail(FACL_ERROR_BUILD_FAILED,
                       "PTX for sm_90a: a \"%s\" line outside an entry's body, or longer than 255 "
                       "bytes", FACL_PTX_ENTRY_MARKER);
    if (st != FACL_SUCCESS) {
        free(copy);
        return st;
    }
    *out = copy;
    *out_length = used;
    *markers = patched;
    return FACL_SUCCESS;
}
