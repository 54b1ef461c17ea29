/* The finished plans of a context's recent calls. Planning a call mostly formats its
 * build options with snprintf (about a third of a decode call's host instructions on
 * PoCL, docs/PERFORMANCE.md); a call whose planner inputs equal an earlier call's takes
 * that call's plan instead.
 *
 * Why a reused plan is the plan: a planner sees only its key (plan.h, cache_plan.h,
 * bwd_plan.h: every field of the problem it reads, the requested shape) and the device
 * profile, and is a pure function of them. A slot is found only when its planner, its
 * key and its whole profile equal the call's byte for byte (memcmp), so it holds exactly
 * what planning again would return. Nothing is ever invalidated: a profile that differs
 * (the probe's temporary paths at context creation, the copies that the attn_fwd_blocked
 * fallback and a backward whose probe failed plan with) matches no slot. */
#ifndef FACL_PLAN_MEMO_H
#define FACL_PLAN_MEMO_H

#include <pthread.h>
#include <stdint.h>

#include "bwd_plan.h"
#include "cache_plan.h"
#include "device_profile.h"
#include "plan.h"

/* A decode loop has one shape per layer kind; prefill chunks of changing lengths miss
 * anyway. The least recently used slot is replaced. */
enum { FACL_PLAN_MEMO_SLOTS = 8 };

typedef struct facl_plan_memo_slot {
    uint64_t last_use; /* the memo's clock when last found or stored; 0 = empty */
    int planner;       /* which planner: plan_memo.c's PLANNER_* */
    union {
        facl_fwd_plan_key fwd;
        facl_cache_plan_key cache;
        facl_bwd_plan_key bwd;
    } key;
    facl_device_profile profile;
    union {
        facl_fwd_plan fwd;
        facl_cache_plan cache;
        facl_bwd_plan bwd;
    } plan;
} facl_plan_memo_slot;

/* Used by every thread of a context: `lock` guards the clock and the slots and is held
 * only to compare and copy them (never while planning). */
typedef struct facl_plan_memo {
    pthread_mutex_t lock;
    uint64_t clock;
    facl_plan_memo_slot slots[FACL_PLAN_MEMO_SLOTS];
} facl_plan_memo;

/* Fails only for want of a mutex. */
facl_status facl_plan_memo_init(facl_plan_memo *memo);
void facl_plan_memo_release(facl_plan_memo *memo);

/* facl_plan_fwd_program, facl_plan_cache and facl_plan_bwd_program, through the memo. */
void facl_plan_fwd_memo(facl_plan_memo *memo, const facl_fwd_problem *problem,
                        const facl_device_profile *profile, facl_fwd_plan *plan);
void facl_plan_cache_memo(facl_plan_memo *memo, const facl_cache_problem *problem,
                          const facl_device_profile *profile, const facl_cache_mma_shape *shape,
                          facl_cache_plan *plan);
void facl_plan_bwd_memo(facl_plan_memo *memo, const facl_bwd_problem *problem,
                        const facl_device_profile *profile, const facl_bwd_mma_shape *requested,
                        facl_bwd_plan *plan);

#endif
