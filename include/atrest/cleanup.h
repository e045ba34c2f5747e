/* SPDX-License-Identifier: Apache-2.0 */
/* Scope-bound cleanup helpers (the systemd CODING_STYLE idiom). */
#pragma once

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#define _cleanup_(f) __attribute__((cleanup(f)))

/* Take ownership away from a _cleanup_ variable: the caller now owns it. */
#define TAKE_PTR(p)                                                                                \
	({                                                                                         \
		__typeof__(p) _ptr_ = (p);                                                         \
		(p) = NULL;                                                                        \
		_ptr_;                                                                             \
	})

#define TAKE_FD(fd)                                                                                \
	({                                                                                         \
		int _fd_ = (fd);                                                                   \
		(fd) = -1;                                                                         \
		_fd_;                                                                              \
	})

#define ELEMENTSOF(x) (sizeof(x) / sizeof((x)[0]))

/* Defines a static void name(type *p) that calls func(*p) when *p is set. */
#define DEFINE_TRIVIAL_CLEANUP_FUNC(type, func)                                                    \
	static inline void func##p(type *p)                                                        \
	{                                                                                          \
		if (*p)                                                                            \
			func(*p);                                                                  \
	}

static inline void freep(void *p)
{
	free(*(void **)p);
}
#define _cleanup_free_ _cleanup_(freep)

/* close() that keeps errno, so cleanup never clobbers an error being returned. */
static inline int safe_close(int fd)
{
	if (fd >= 0) {
		int saved = errno;
		close(fd);
		errno = saved;
	}
	return -1;
}

static inline void closep(int *fd)
{
	safe_close(*fd);
}
#define _cleanup_close_ _cleanup_(closep)

#include <stdio.h>
DEFINE_TRIVIAL_CLEANUP_FUNC(FILE *, fclose)
#define _cleanup_fclose_ _cleanup_(fclosep)

/* Wrappers for foreign handles, available when their header came first. */
#ifdef SQLITE3_H
DEFINE_TRIVIAL_CLEANUP_FUNC(sqlite3_stmt *, sqlite3_finalize)
#define _cleanup_sqlite_stmt_ _cleanup_(sqlite3_finalizep)
#endif

#ifdef CURLINC_CURL_H
DEFINE_TRIVIAL_CLEANUP_FUNC(CURL *, curl_easy_cleanup)
#define _cleanup_curl_ _cleanup_(curl_easy_cleanupp)
DEFINE_TRIVIAL_CLEANUP_FUNC(struct curl_slist *, curl_slist_free_all)
#define _cleanup_curl_slist_ _cleanup_(curl_slist_free_allp)
#endif

#ifdef JANSSON_H
/* jansson >= 2.9 defines json_decrefp itself (for json_auto_t) */
#ifndef json_auto_t
DEFINE_TRIVIAL_CLEANUP_FUNC(json_t *, json_decref)
#endif
#define _cleanup_json_ _cleanup_(json_decrefp)
#endif

#ifdef MHD_MICROHTTPD_H
DEFINE_TRIVIAL_CLEANUP_FUNC(struct MHD_Response *, MHD_destroy_response)
#define _cleanup_mhd_response_ _cleanup_(MHD_destroy_responsep)
#endif

#ifdef sodium_H
/* Secure buffers: sodium_free() wipes and unmaps; it accepts NULL. */
static inline void sodium_freep(void *p)
{
	sodium_free(*(void **)p);
}
#define _cleanup_sodium_free_ _cleanup_(sodium_freep)
#endif
