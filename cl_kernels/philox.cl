/* Philox 4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3"):
 * a counter-based generator, so any (row, column) of the dropout mask can be
 * regenerated independently by the forward, the backward and the tests. */
inline uint4 philox4x32_10(uint4 ctr, uint2 key)
{
    for (int round = 0; round < 10; ++round) {
        if (round > 0) {
            key.x += 0x9E3779B9u;
            key.y += 0xBB67AE85u;
        }
        const uint hi0 = mul_hi(0xD2511F53u, ctr.x), lo0 = 0xD2511F53u * ctr.x;
        const uint hi1 = mul_hi(0xCD9E8D57u, ctr.z), lo1 = 0xCD9E8D57u * ctr.z;
        ctr = (uint4)(hi1 ^ ctr.y ^ key.x, lo1, hi0 ^ ctr.w ^ key.y, lo0);
    }
    return ctr;
}

/* The dropout decision for element (row i, column j) of head h of sequence b, as facl.h
 * documents it: one Philox call covers four consecutive columns. */
inline bool dropout_keep(uint seed_lo, uint seed_hi, ulong offset, int b, int heads_q, int h,
                         int i, int j, uint threshold)
{
    const ulong stream = offset + (ulong)b * (ulong)heads_q + (ulong)h;
    const uint4 r = philox4x32_10((uint4)((uint)j >> 2, (uint)i, (uint)stream, (uint)(stream >> 32)),
                                  (uint2)(seed_lo, seed_hi));
    const uint lane = (uint)j & 3u;
    const uint word = lane == 0u ? r.x : lane == 1u ? r.y : lane == 2u ? r.z : r.w;
    return word >= threshold;
}
