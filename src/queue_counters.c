/* Per-queue split counters (queue_counters.h says why they are per queue). */
#include "queue_counters.h"

#include <string.h>

#include "status.h"

/* Grown buffers get this many counters at least, so that calls of growing batches do not
 * each make a new one. */
#define MIN_COUNTERS 1024

facl_status facl_queue_counters_init(facl_queue_counters *qc)
{
    memset(qc->slots, 0, sizeof qc->slots);
    if (pthread_mutex_init(&qc->lock, NULL) != 0)
        return facl_fail(FACL_ERROR_OUT_OF_HOST_MEMORY, "cannot create the split counters' mutex");
    return FACL_SUCCESS;
}

void facl_queue_counters_release(facl_queue_counters *qc)
{
    for (int i = 0; i < FACL_QUEUE_COUNTER_SLOTS; ++i) {
        facl_queue_counter_slot *s = &qc->slots[i];
        if (s->buffer) clReleaseMemObject(s->buffer);
        if (s->queue) clReleaseCommandQueue(s->queue);
    }
    memset(qc->slots, 0, sizeof qc->slots);
    pthread_mutex_destroy(&qc->lock);
}

static int in_order(cl_command_queue queue, facl_status *st)
{
    cl_command_queue_properties props = 0;
    const cl_int err = clGetCommandQueueInfo(queue, CL_QUEUE_PROPERTIES, sizeof props, &props, NULL);
    if (err != CL_SUCCESS) {
        *st = facl_fail_cl(err, "queue: clGetCommandQueueInfo(CL_QUEUE_PROPERTIES)");
        return 0;
    }
    return !(props & CL_QUEUE_OUT_OF_ORDER_EXEC_MODE_ENABLE);
}

/* The slot of `queue`, or a free one (taken for it), or NULL. */
static facl_queue_counter_slot *slot_of(facl_queue_counters *qc, cl_command_queue queue)
{
    facl_queue_counter_slot *free_slot = NULL;
    for (int i = 0; i < FACL_QUEUE_COUNTER_SLOTS; ++i) {
        if (qc->slots[i].queue == queue) return &qc->slots[i];
        if (!qc->slots[i].queue && !free_slot) free_slot = &qc->slots[i];
    }
    if (free_slot) {
        clRetainCommandQueue(queue);
        free_slot->queue = queue;
    }
    return free_slot;
}

facl_status facl_queue_counters_get(facl_queue_counters *qc, cl_context cl_ctx,
                                    cl_command_queue queue, size_t ints, cl_mem *buffer,
                                    size_t *zero_bytes)
{
    *buffer = NULL;
    *zero_bytes = 0;
    facl_status st = FACL_SUCCESS;
    if (!in_order(queue, &st)) return st;
    pthread_mutex_lock(&qc->lock);
    facl_queue_counter_slot *s = slot_of(qc, queue);
    if (s && s->ints < ints) {
        /* A larger buffer replaces the old one; a call still holding the old one keeps
         * its own reference, and its counters stay consistent (zero after its kernel). */
        const size_t want = ints > MIN_COUNTERS ? ints : MIN_COUNTERS;
        cl_int err;
        cl_mem grown = clCreateBuffer(cl_ctx, CL_MEM_READ_WRITE, want * sizeof(cl_int), NULL, &err);
        if (err != CL_SUCCESS) {
            st = facl_fail_cl(err, "split counters");
        } else {
            if (s->buffer) clReleaseMemObject(s->buffer);
            s->buffer = grown;
            s->ints = want;
            s->zeroed = 0;
        }
    }
    if (st == FACL_SUCCESS && s) {
        clRetainMemObject(s->buffer);
        *buffer = s->buffer;
        *zero_bytes = s->zeroed ? 0 : s->ints * sizeof(cl_int);
    }
    pthread_mutex_unlock(&qc->lock);
    return st;
}

void facl_queue_counters_zeroed(facl_queue_counters *qc, cl_command_queue queue, cl_mem buffer)
{
    pthread_mutex_lock(&qc->lock);
    for (int i = 0; i < FACL_QUEUE_COUNTER_SLOTS; ++i)
        if (qc->slots[i].queue == queue && qc->slots[i].buffer == buffer) qc->slots[i].zeroed = 1;
    pthread_mutex_unlock(&qc->lock);
}
