/* SPDX-License-Identifier: Apache-2.0 */
/* Locked, undumpable, wiped memory for plaintext (include/atrest/secmem.h). */
#include <errno.h>
#include <linux/capability.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <sodium.h>

#include "atrest/secmem.h"

/*
 * Size classes are powers of two from one page: a 1 MiB segment buffer and
 * the read buffers of every size the kernel asks for reuse a few classes.
 * The pool keeps freed buffers up to POOL_MAX bytes: more would hold locked
 * memory that RLIMIT_MEMLOCK may need elsewhere.
 */
#define N_CLASSES 24
#define POOL_MAX (16u << 20)

struct freed {
	struct freed *next;
};

static struct {
	pthread_mutex_t lock;
	struct freed *free[N_CLASSES];
	size_t pooled;
	size_t locked;
} pool = { .lock = PTHREAD_MUTEX_INITIALIZER };

static size_t page_size(void)
{
	static size_t ps;

	if (!ps)
		ps = (size_t)sysconf(_SC_PAGESIZE);
	return ps;
}

/* The class of size, and its byte size in *ret_bytes; -1 when too large. */
static int class_of(size_t size, size_t *ret_bytes)
{
	size_t b = page_size();

	for (int c = 0; c < N_CLASSES; c++, b <<= 1)
		if (size <= b) {
			*ret_bytes = b;
			return c;
		}
	return -1;
}

/* CAP_IPC_LOCK lets mlock() ignore RLIMIT_MEMLOCK (mlock(2)). */
static bool has_ipc_lock(void)
{
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct d[_LINUX_CAPABILITY_U32S_3] = { 0 };

	if (syscall(SYS_capget, &h, d) < 0)
		return false;
	return d[CAP_IPC_LOCK / 32].effective & (1u << (CAP_IPC_LOCK % 32));
}

int secmem_init(size_t *ret_limit)
{
	struct rlimit rl;

	if (has_ipc_lock()) {
		if (ret_limit)
			*ret_limit = SIZE_MAX;
		return 0;
	}

	if (getrlimit(RLIMIT_MEMLOCK, &rl) < 0)
		return -errno;
	if (rl.rlim_cur != RLIM_INFINITY) {
		struct rlimit want = { RLIM_INFINITY, RLIM_INFINITY };

		/* unlimited needs CAP_SYS_RESOURCE; else up to the hard limit */
		if (setrlimit(RLIMIT_MEMLOCK, &want) < 0) {
			want = (struct rlimit){ rl.rlim_max, rl.rlim_max };
			if (setrlimit(RLIMIT_MEMLOCK, &want) < 0)
				return -errno;
		}
		if (getrlimit(RLIMIT_MEMLOCK, &rl) < 0)
			return -errno;
	}
	if (ret_limit)
		*ret_limit = rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= SIZE_MAX ?
				     SIZE_MAX :
				     (size_t)rl.rlim_cur;
	return 0;
}

/* mlock(2) itself: AddressSanitizer replaces mlock() with a no-op, and a
 * sanitizer build must lock what the product locks. */
static int lock_pages(void *p, size_t len)
{
	return (int)syscall(SYS_mlock, p, len);
}

/* A fresh locked mapping of bytes, or NULL with errno. */
static void *map_locked(size_t bytes)
{
	void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	int e;

	if (p == MAP_FAILED)
		return NULL;
	if (lock_pages(p, bytes) < 0 || madvise(p, bytes, MADV_DONTDUMP) < 0 ||
	    madvise(p, bytes, MADV_DONTFORK) < 0) {
		e = errno;
		munmap(p, bytes);
		errno = e;
		return NULL;
	}
	return p;
}

/* Unmaps every pooled buffer (pool.lock held): their locked bytes may be
 * what a larger allocation needs under RLIMIT_MEMLOCK. */
static void pool_drain_locked(void)
{
	size_t b = page_size();

	for (int c = 0; c < N_CLASSES; c++, b <<= 1)
		while (pool.free[c]) {
			struct freed *f = pool.free[c];

			pool.free[c] = f->next;
			munmap(f, b);
			pool.pooled -= b;
			pool.locked -= b;
		}
}

void *secmem_alloc(size_t size)
{
	size_t bytes;
	int c = class_of(size ? size : 1, &bytes);
	void *p;

	if (c < 0) {
		errno = ENOMEM;
		return NULL;
	}
	pthread_mutex_lock(&pool.lock);
	if (pool.free[c]) {
		struct freed *f = pool.free[c];

		pool.free[c] = f->next;
		pool.pooled -= bytes;
		f->next = NULL; /* the rest of a pooled buffer is already zero */
		pthread_mutex_unlock(&pool.lock);
		return f;
	}
	p = map_locked(bytes);
	if (!p && (errno == ENOMEM || errno == EAGAIN) && pool.pooled) {
		pool_drain_locked();
		p = map_locked(bytes);
	}
	if (p)
		pool.locked += bytes;
	pthread_mutex_unlock(&pool.lock);
	return p;
}

void secmem_free(void *p, size_t size)
{
	secmem_free_used(p, size, size);
}

void secmem_free_used(void *p, size_t size, size_t used)
{
	size_t bytes = 0;
	int c;

	if (!p)
		return;
	c = class_of(size ? size : 1, &bytes);
	if (c < 0)
		abort(); /* secmem_alloc() never returned such a size */
	sodium_memzero(p, used < size ? used : size);
	pthread_mutex_lock(&pool.lock);
	if (pool.pooled + bytes <= POOL_MAX) {
		struct freed *f = p;

		f->next = pool.free[c];
		pool.free[c] = f;
		pool.pooled += bytes;
		p = NULL;
	} else
		pool.locked -= bytes;
	pthread_mutex_unlock(&pool.lock);
	if (p)
		munmap(p, bytes);
}

size_t secmem_locked_bytes(void)
{
	size_t n;

	pthread_mutex_lock(&pool.lock);
	n = pool.locked;
	pthread_mutex_unlock(&pool.lock);
	return n;
}

/* The last range this thread locked: libfuse reuses one buffer per thread. */
static _Thread_local uintptr_t locked_lo, locked_hi;

int secmem_lock_range(const void *p, size_t len)
{
	uintptr_t ps = page_size(), lo = (uintptr_t)p & ~(ps - 1);
	uintptr_t hi = ((uintptr_t)p + len + ps - 1) & ~(ps - 1);

	if (len == 0 || (lo >= locked_lo && hi <= locked_hi))
		return 0;
	if (lock_pages((void *)lo, hi - lo) < 0)
		return -errno;
	madvise((void *)lo, hi - lo, MADV_DONTDUMP);
	locked_lo = lo;
	locked_hi = hi;
	return 0;
}
