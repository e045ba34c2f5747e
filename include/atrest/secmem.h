/* SPDX-License-Identifier: Apache-2.0 */
/* Memory for plaintext that must never reach a disk: locked against swap, left out of core dumps, wiped on free. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

/*
 * Raises this process's RLIMIT_MEMLOCK soft limit as far as it may go (to
 * the hard limit; to unlimited with CAP_SYS_RESOURCE). *ret_limit gets the
 * limit now in force (SIZE_MAX: unlimited or CAP_IPC_LOCK). Returns 0 or
 * -errno. Call it once at start-up, before threads.
 */
int secmem_init(size_t *ret_limit);

/*
 * size bytes (> 0) of zeroed memory that is mlock()ed (never swapped),
 * MADV_DONTDUMP (never in a core dump) and MADV_DONTFORK. Freed buffers are
 * kept (wiped) in a small pool for reuse, so hot paths pay no mmap/mlock.
 * NULL with errno set when out of memory or over RLIMIT_MEMLOCK (ENOMEM or
 * EAGAIN): the caller fails the operation; never falls back to swappable
 * memory. Free with secmem_free() and the same size.
 */
void *secmem_alloc(size_t size);

/* Wipes the first size bytes (all a caller may have written) and releases
 * p, which secmem_alloc(size) returned; NULL is fine. */
void secmem_free(void *p, size_t size);

/* secmem_free() when only the first `used` bytes (<= size) were ever written
 * and the rest is still the zeros secmem_alloc() gave: wipes just those, so a
 * small file's 1 MiB segment buffer costs no 1 MiB wipe. */
void secmem_free_used(void *p, size_t size, size_t used);

/* Bytes of secmem memory mapped and locked now (in use or pooled). */
size_t secmem_locked_bytes(void);

/*
 * Locks the pages under [p, p + len) that someone else allocated (libfuse's
 * request buffer holding write data) and marks them MADV_DONTDUMP. Cheap
 * when called again for a range this thread already locked. Returns 0 or
 * -errno.
 */
int secmem_lock_range(const void *p, size_t len);
