/* Choosing an OpenCL device from a selector string (see facl_context_create). */
#ifndef FACL_DEVICE_SELECT_H
#define FACL_DEVICE_SELECT_H

#include "facl.h"

facl_status facl_select_device(const char *selector, cl_device_id *device);

#endif
