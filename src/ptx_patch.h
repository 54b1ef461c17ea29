/* From the PTX that NVIDIA's OpenCL compiler makes for sm_90 to PTX for sm_90a, the
 * target of Hopper's warpgroup instructions (wgmma, setmaxnreg), which that compiler
 * refuses in OpenCL C (../shared/device/probes/wgmma_ptx_patch.c: a program created from
 * retargeted PTX with clCreateProgramWithBinary builds and runs).
 *
 * A kernel carries each sm_90a-only instruction through the sm_90 build as a PTX comment
 * in its inline asm, behind a marker:
 *
 *     asm volatile("// FACL_SM90A wgmma.fence.sync.aligned;" ::: "memory");
 *
 * The compiler copies the asm text into its PTX, operands substituted; the patch turns
 * every such comment back into the instruction and the target into sm_90a. Pure text in,
 * text out (tests/test_ptx_patch.c). */
#ifndef FACL_PTX_PATCH_H
#define FACL_PTX_PATCH_H

#include <stddef.h>

#include "facl.h"

/* The marker: a comment line of the PTX whose text, after leading blanks, starts with it. */
#define FACL_PTX_SM90A_MARKER "// FACL_SM90A "

/* A directive of the kernel entry the marker line is in, which inline asm cannot place
 * (it writes into the body): "// FACL_SM90A_ENTRY .maxnreg 168" anywhere in an entry's
 * body moves ".maxnreg 168" to the entry's header, before the body's "{" (once, however
 * often inlining copied the line). setmaxnreg needs the entry's register count given so
 * (ptxas: "'setmaxnreg' ignored; unable to determine register count at entry"). */
#define FACL_PTX_ENTRY_MARKER "// FACL_SM90A_ENTRY "

/* The patched copy of `ptx` (`length` bytes, no NUL needed) in *out (malloc'ed, NUL
 * terminated, its length in *out_length), and the number of marker lines turned into
 * instructions in *markers (entry markers not counted). Fails with
 * FACL_ERROR_BUILD_FAILED, naming the reason, when the text has no `.target sm_90`
 * directive (another target, or not PTX), has more than one `.target` directive, holds
 * no marker line (nothing to patch: the kernel does not use the path), or an entry
 * marker outside an entry's body; FACL_ERROR_OUT_OF_HOST_MEMORY when the copy cannot be
 * made. */
facl_status facl_ptx_to_sm90a(const char *ptx, size_t length, char **out, size_t *out_length,
                              int *markers);

#endif
