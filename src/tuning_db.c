/*
 * The tuning database of the portable forward kernels: the file to read, and to extend
 * (docs/TUNING.md says how to measure an entry with facl-tune and send it).
 *
 * Each entry is keyed by vendor, architecture and exact device name; an empty
 * architecture makes a vendor's default, an empty device an architecture's default:
 *
 *   vendor        "nvidia", "amd", "intel", "pocl" (any device of PoCL), "other"
 *   architecture  NVIDIA: "sm_90" (compute capability); AMD: the gfx target ("gfx90a");
 *                 PoCL CPUs: LLVM's CPU name ("haswell", "skylake-avx512");
 *                 anything else: the device name without its words that hold digits
 *                 ("Intel(R) UHD Graphics 630" -> "Intel(R) UHD Graphics").
 *                 facl-selftest prints a device's key.
 *   device        CL_DEVICE_NAME, exactly ("NVIDIA H200")
 *
 * A device takes the built-in defaults (tuning.c: attn_fwd_blocked with 64 x 64 blocks
 * and 4 x 4 micro-tiles; for attn_fwd 32-key tiles, 1/2/4 lanes for d <= 64/128/256,
 * 64 rows per work-group; 16 rows per CPU work-item), then what its
 * vendor's entry sets, then its architecture's, then its own. Per head-dim class
 * ([D64]: d <= 64, [D128]: <= 128, [D256]: <= 256) an entry sets any of
 *
 *   .block_n     attn_fwd: keys per tile, a power of two 1..128 (halved to fit local memory)
 *   .lanes       attn_fwd: work-items per query row, a power of two 1..16
 *   .group_rows  attn_fwd: query rows per work-group, a power of two 1..128
 *   .cpu_rows    attn_fwd_rows: query rows per work-item, a multiple of 4 from 4 to 32
 *                (rounded up to a multiple of 8 on devices with 16-float registers)
 *   .kernel      the portable GPU kernel: 1 attn_fwd, 2 attn_fwd_blocked
 *   .blocked_m   attn_fwd_blocked: query rows per work-group, a power of two 16..128
 *   .blocked_n   attn_fwd_blocked: keys per tile, a power of two 16..128
 *   .blocked_tm  attn_fwd_blocked: rows of a work-item's micro-tile, 4 or 8
 *   .blocked_tn  attn_fwd_blocked: keys of a work-item's micro-tile, 4 or 8
 *
 * and leaves the others (0) to the level above. A value outside those ranges is skipped
 * when the table is read (tests/test_tuning.c fails on it first). attn_fwd_rows's tile of
 * 16 keys is fixed by its 16-wide vectors, so it is not a parameter.
 *
 * Entries measured with facl-tune, one line each, with the run they came from.
 */
#include "tuning.h"

#define D64 FACL_TUNING_D64
#define D128 FACL_TUNING_D128
#define D256 FACL_TUNING_D256

static const facl_tuning_entry k_table[] = {
    /* The end of the table: a vendor no device has (keeps the array valid C when it
     * holds nothing else). */
    {.vendor = ""},
};

const facl_tuning_entry *facl_tuning_db(size_t *count)
{
    *count = sizeof k_table / sizeof k_table[0] - 1;
    return k_table;
}
