/* A device's architecture, the middle key of the tuning database (device_profile.h).
 * OpenCL 1.2 has no such query, so it is read from what each vendor's driver reports. */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "device_profile.h"

/* PoCL names a CPU device "<driver>-<LLVM CPU>-<model>" ("pthread-haswell-AMD EPYC",
 * "cpu-skylake-avx512-Intel(R) Xeon(R) ...") and ends its CL_DEVICE_VERSION with
 * "HSTR: <driver>-<target triple>-<LLVM CPU>". CPU names may hold dashes, so the name
 * alone cannot be split; the longest tail of the HSTR after a dash that the name (after
 * its driver) starts with, followed by a dash, is the CPU name. 0 if none is found. */
static int pocl_cpu_name(const facl_device_profile *p, char *out, size_t cap)
{
    const char *hstr = strstr(p->device_version, "HSTR: ");
    const char *rest = strchr(p->device_name, '-');
    if (!hstr || !rest) return 0;
    hstr += 6;
    ++rest;
    size_t hlen = strcspn(hstr, " \t");
    for (size_t i = 1; i < hlen; ++i) {
        if (hstr[i - 1] != '-') continue;
        const size_t n = hlen - i;
        if (strncmp(rest, hstr + i, n) == 0 && rest[n] == '-') {
            snprintf(out, cap, "%.*s", (int)n, hstr + i);
            return 1;
        }
    }
    /* An older PoCL that leaves the CPU out of the name: the HSTR's last part. */
    const char *last = NULL;
    for (size_t i = 0; i < hlen; ++i)
        if (hstr[i] == '-') last = hstr + i + 1;
    if (!last || last >= hstr + hlen) return 0;
    snprintf(out, cap, "%.*s", (int)(hstr + hlen - last), last);
    return 1;
}

/* The device name without its words that hold a digit, single-spaced. */
static void name_family(const char *name, char *out, size_t cap)
{
    size_t len = 0;
    out[0] = '\0';
    for (const char *s = name; *s;) {
        while (*s && isspace((unsigned char)*s)) ++s;
        const char *w = s;
        int digit = 0;
        while (*s && !isspace((unsigned char)*s)) digit |= isdigit((unsigned char)*s++);
        const size_t n = (size_t)(s - w);
        if (n == 0 || digit) continue;
        if (len + (len ? 1 : 0) + n + 1 > cap) break;
        if (len) out[len++] = ' ';
        memcpy(out + len, w, n);
        len += n;
        out[len] = '\0';
    }
}

void facl_device_architecture(const facl_device_profile *p, char *out, size_t cap)
{
    if (cap == 0) return;
    out[0] = '\0';
    if (p->vendor == FACL_VENDOR_NVIDIA && p->nv_compute_major > 0) {
        snprintf(out, cap, "sm_%d%d", p->nv_compute_major, p->nv_compute_minor);
        return;
    }
    if (p->vendor == FACL_VENDOR_AMD && strncmp(p->device_name, "gfx", 3) == 0) {
        snprintf(out, cap, "%.*s", (int)strcspn(p->device_name, ": \t"), p->device_name);
        return;
    }
    if (p->vendor == FACL_VENDOR_POCL && (p->type & CL_DEVICE_TYPE_CPU) &&
        pocl_cpu_name(p, out, cap))
        return;
    name_family(p->device_name, out, cap);
}
