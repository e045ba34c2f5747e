/* SPDX-License-Identifier: Apache-2.0 */
/* Logging: stderr in the foreground, syslog when daemonised (STYLE.md, Logging). */
#pragma once

#include <stdbool.h>
#include <syslog.h>

enum log_target {
	LOG_TARGET_STDERR,
	LOG_TARGET_SYSLOG,
};

/* Where messages go and what is dropped; ident names the program in syslog. */
void log_open(const char *ident, enum log_target target);
void log_set_max_level(int level);
int log_get_max_level(void);

/*
 * Writes one line at syslog level `level`. If error is non-zero (a positive
 * or negative errno) its text is appended. Returns -abs(error), so callers
 * can `return log_error_errno(r, "...")`. Never pass data as the format.
 */
int log_internal(int level, int error, const char *file, int line, const char *func,
		 const char *format, ...) __attribute__((format(printf, 6, 7)));

#define log_full_errno(level, error, ...)                                                          \
	log_internal((level), (error), __FILE__, __LINE__, __func__, __VA_ARGS__)
#define log_full(level, ...) log_full_errno((level), 0, __VA_ARGS__)

#define log_debug(...) log_full(LOG_DEBUG, __VA_ARGS__)
#define log_info(...) log_full(LOG_INFO, __VA_ARGS__)
#define log_notice(...) log_full(LOG_NOTICE, __VA_ARGS__)
#define log_warning(...) log_full(LOG_WARNING, __VA_ARGS__)
#define log_error(...) log_full(LOG_ERR, __VA_ARGS__)

#define log_debug_errno(error, ...) log_full_errno(LOG_DEBUG, (error), __VA_ARGS__)
#define log_info_errno(error, ...) log_full_errno(LOG_INFO, (error), __VA_ARGS__)
#define log_warning_errno(error, ...) log_full_errno(LOG_WARNING, (error), __VA_ARGS__)
#define log_error_errno(error, ...) log_full_errno(LOG_ERR, (error), __VA_ARGS__)

/* -ENOMEM, logged once at the layer that decides. */
#define log_oom() log_error_errno(-ENOMEM, "out of memory")
