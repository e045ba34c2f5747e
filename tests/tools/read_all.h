/* SPDX-License-Identifier: Apache-2.0 */
/* Reading a whole file descriptor, for the test tools. */
#pragma once

#include <stddef.h>

/* Reads fd to its end into a malloc()ed buffer, NUL-terminated (the NUL not
 * counted in *ret_len). Returns 0, -ENOMEM or -errno from read(); *ret is
 * owned by the caller and untouched on failure. */
int read_all(int fd, char **ret, size_t *ret_len);
