/* Filling and binding the kernels' argument block (kernel_params.h). */
#include "kernel_params.h"

#include <string.h>

void facl_kernel_params_fill(const facl_fwd_problem *p, const facl_view *lse,
                             facl_kernel_params *k)
{
    memset(k, 0, sizeof *k);
    k->q_off = p->q.offset, k->q_sb = p->q.sb, k->q_ss = p->q.ss, k->q_sh = p->q.sh;
    k->k_off = p->k.offset, k->k_sb = p->k.sb, k->k_ss = p->k.ss, k->k_sh = p->k.sh;
    k->v_off = p->v.offset, k->v_sb = p->v.sb, k->v_ss = p->v.ss, k->v_sh = p->v.sh;
    k->o_off = p->out.offset, k->o_sb = p->out.sb, k->o_ss = p->out.ss, k->o_sh = p->out.sh;
    k->lse_off = lse->offset, k->lse_sb = lse->sb, k->lse_sh = lse->sh, k->lse_ss = lse->ss;
    k->probs_off = p->probs.offset, k->probs_sb = p->probs.sb, k->probs_sh = p->probs.sh;
    k->probs_ss = p->probs.ss;
    k->alibi_off = p->alibi.offset, k->alibi_sb = p->alibi.sb, k->alibi_sh = p->alibi.sh;
    k->cu_q_off = p->cu_q_off, k->cu_k_off = p->cu_k_off, k->seqused_off = p->seqused_off;
    k->drop_offset = p->offset;
    k->seqlen_q = p->seqlen_q, k->seqlen_k = p->seqlen_k;
    k->total_q = p->total_q, k->total_k = p->total_k;
    k->heads_q = p->heads_q, k->group = p->heads_q / p->heads_kv;
    k->window_left = p->window_left, k->window_right = p->window_right;
    k->align_top_left = p->align_top_left;
    k->scale = p->scale, k->softcap = p->softcap, k->drop_scale = p->drop_scale;
    k->drop_threshold = p->drop_threshold;
    k->seed_lo = (uint32_t)p->seed, k->seed_hi = (uint32_t)(p->seed >> 32);
}
