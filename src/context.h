/* The opaque context behind facl_context. */
#ifndef FACL_CONTEXT_H
#define FACL_CONTEXT_H

#include "device_profile.h"
#include "facl.h"
#include "log.h"
#include "programs.h"

struct facl_context {
    cl_context cl_ctx;
    cl_device_id device;
    cl_command_queue queue; /* the context's own, used when a call passes NULL */
    facl_device_profile profile;
    facl_program_cache programs;
    int programs_ready; /* programs initialised (so the failure path releases it) */
    facl_logger logger;
    char path_reason[256]; /* why profile.path was chosen (facl_device_info) */
};

#endif
