/* The plan memo (plan_memo.h says why a reused plan is the plan). */
#include "plan_memo.h"

#include <string.h>

#include "status.h"

enum { PLANNER_FWD = 1, PLANNER_CACHE = 2, PLANNER_BWD = 3 };

facl_status facl_plan_memo_init(facl_plan_memo *memo)
{
    memset(memo, 0, sizeof *memo);
    if (pthread_mutex_init(&memo->lock, NULL) != 0)
        return facl_fail(FACL_ERROR_OUT_OF_HOST_MEMORY, "cannot create the plan memo's mutex");
    return FACL_SUCCESS;
}

void facl_plan_memo_release(facl_plan_memo *memo) { pthread_mutex_destroy(&memo->lock); }

/* The slot planned by `planner` from this key on this profile, or NULL (lock held). */
static facl_plan_memo_slot *slot_of(facl_plan_memo *memo, int planner, const void *key,
                                    size_t key_size, const facl_device_profile *profile)
{
    for (int i = 0; i < FACL_PLAN_MEMO_SLOTS; ++i) {
        facl_plan_memo_slot *s = &memo->slots[i];
        if (s->last_use && s->planner == planner && memcmp(&s->key, key, key_size) == 0 &&
            memcmp(&s->profile, profile, sizeof *profile) == 0)
            return s;
    }
    return NULL;
}

/* Copies the remembered plan into `plan`; 0 when there is none. */
static int recall(facl_plan_memo *memo, int planner, const void *key, size_t key_size,
                  const facl_device_profile *profile, void *plan, size_t plan_size)
{
    pthread_mutex_lock(&memo->lock);
    facl_plan_memo_slot *s = slot_of(memo, planner, key, key_size, profile);
    if (s) {
        s->last_use = ++memo->clock;
        memcpy(plan, &s->plan, plan_size);
    }
    pthread_mutex_unlock(&memo->lock);
    return s != NULL;
}

/* Keeps a plan just made, in place of the least recently used slot (unless another
 * thread stored the same plan meanwhile). */
static void remember(facl_plan_memo *memo, int planner, const void *key, size_t key_size,
                     const facl_device_profile *profile, const void *plan, size_t plan_size)
{
    pthread_mutex_lock(&memo->lock);
    facl_plan_memo_slot *s = slot_of(memo, planner, key, key_size, profile);
    if (!s) {
        s = &memo->slots[0];
        for (int i = 1; i < FACL_PLAN_MEMO_SLOTS; ++i)
            if (memo->slots[i].last_use < s->last_use) s = &memo->slots[i];
        s->planner = planner;
        memcpy(&s->key, key, key_size);
        memcpy(&s->profile, profile, sizeof *profile);
        memcpy(&s->plan, plan, plan_size);
    }
    s->last_use = ++memo->clock;
    pthread_mutex_unlock(&memo->lock);
}

void facl_plan_fwd_memo(facl_plan_memo *memo, const facl_fwd_problem *problem,
                        const facl_device_profile *profile, facl_fwd_plan *plan)
{
    facl_fwd_plan_key key;
    facl_fwd_plan_key_of(problem, &key);
    if (recall(memo, PLANNER_FWD, &key, sizeof key, profile, plan, sizeof *plan)) return;
    facl_plan_fwd(&key, profile, plan);
    remember(memo, PLANNER_FWD, &key, sizeof key, profile, plan, sizeof *plan);
}

void facl_plan_cache_memo(facl_plan_memo *memo, const facl_cache_problem *problem,
                          const facl_device_profile *profile, const facl_cache_mma_shape *shape,
                          facl_cache_plan *plan)
{
    facl_cache_plan_key key;
    facl_cache_plan_key_of(problem, shape, &key);
    if (recall(memo, PLANNER_CACHE, &key, sizeof key, profile, plan, sizeof *plan)) return;
    facl_plan_cache_keyed(&key, profile, plan);
    remember(memo, PLANNER_CACHE, &key, sizeof key, profile, plan, sizeof *plan);
}

void facl_plan_bwd_memo(facl_plan_memo *memo, const facl_bwd_problem *problem,
                        const facl_device_profile *profile, const facl_bwd_mma_shape *requested,
                        facl_bwd_plan *plan)
{
    facl_bwd_plan_key key;
    facl_bwd_plan_key_of(problem, requested, &key);
    if (recall(memo, PLANNER_BWD, &key, sizeof key, profile, plan, sizeof *plan)) return;
    facl_plan_bwd_keyed(&key, profile, plan);
    remember(memo, PLANNER_BWD, &key, sizeof key, profile, plan, sizeof *plan);
}
