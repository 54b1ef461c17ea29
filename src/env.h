/* Reading the environment. */
#ifndef FACL_ENV_H
#define FACL_ENV_H

/* getenv, but through secure_getenv where the C library has it: in a set-user-ID or
 * set-group-ID program the environment belongs to someone else, so it is not read
 * (it could point the kernel cache at a directory full of their code). */
const char *facl_getenv(const char *name);

#endif
