/* Counters for the KV-cache kernel's merge of key splits inside the kernel
 * (attn_cache_mma.cl, MERGE_IN_KERNEL): the last work-group of a unit to finish merges,
 * which it learns from an atomic counter per unit. The counters must be zero when a call
 * starts; each call leaves them zero (the merging work-group resets its unit's counter).
 * That holds only if calls sharing a buffer never run at the same time, so the buffer
 * belongs to one in-order command queue: its kernels run one after another. A context
 * keeps one buffer per queue, for a few queues (each retained until the context is
 * freed); a call on any other queue merges with a second kernel instead. */
#ifndef FACL_QUEUE_COUNTERS_H
#define FACL_QUEUE_COUNTERS_H

#include <pthread.h>
#include <stddef.h>

#include "facl.h"

#define FACL_QUEUE_COUNTER_SLOTS 8

typedef struct facl_queue_counter_slot {
    cl_command_queue queue; /* retained; NULL = free slot */
    cl_mem buffer;          /* `ints` 32-bit counters */
    size_t ints;
    int zeroed; /* a zero fill of `buffer` was enqueued on `queue` before any use */
} facl_queue_counter_slot;

typedef struct facl_queue_counters {
    pthread_mutex_t lock;
    facl_queue_counter_slot slots[FACL_QUEUE_COUNTER_SLOTS];
} facl_queue_counters;

facl_status facl_queue_counters_init(facl_queue_counters *qc);
/* Releases the buffers and the queues; no call may be running. */
void facl_queue_counters_release(facl_queue_counters *qc);

/* The counters of `queue` for `ints` units. On success *buffer is a retained reference
 * for the caller, or NULL when this queue cannot have counters (out of order, or every
 * slot taken by other queues; not an error). With *zero_bytes > 0 the buffer is new: the
 * caller enqueues a zero fill of its first *zero_bytes bytes (all of it) on `queue`
 * before its kernel and then calls facl_queue_counters_zeroed. Enqueues nothing itself. */
facl_status facl_queue_counters_get(facl_queue_counters *qc, cl_context cl_ctx,
                                    cl_command_queue queue, size_t ints, cl_mem *buffer,
                                    size_t *zero_bytes);

/* The zero fill of `buffer` (from facl_queue_counters_get for `queue`) is enqueued. */
void facl_queue_counters_zeroed(facl_queue_counters *qc, cl_command_queue queue, cl_mem buffer);

#endif
