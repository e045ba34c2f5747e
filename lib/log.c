/* SPDX-License-Identifier: Apache-2.0 */
/* Logging backend: formats one line and sends it to stderr or syslog. */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "atrest/log.h"

static enum log_target log_target = LOG_TARGET_STDERR;
/* atomic: a daemon's SIGHUP may change it while its worker threads log */
static _Atomic int log_max_level = LOG_INFO;
static const char *log_ident = "atrest";

void log_open(const char *ident, enum log_target target)
{
	log_ident = ident ? ident : "atrest";
	log_target = target;
	if (target == LOG_TARGET_SYSLOG)
		openlog(log_ident, LOG_PID | LOG_NDELAY, LOG_DAEMON);
}

void log_set_max_level(int level)
{
	log_max_level = level;
}

int log_get_max_level(void)
{
	return log_max_level;
}

static const char *level_name(int level)
{
	switch (level) {
	case LOG_DEBUG:
		return "debug";
	case LOG_INFO:
		return "info";
	case LOG_NOTICE:
		return "notice";
	case LOG_WARNING:
		return "warning";
	default:
		return "error";
	}
}

int log_internal(int level, int error, const char *file, int line, const char *func,
		 const char *format, ...)
{
	int saved_errno = errno;
	char msg[2048];
	char errbuf[128];
	va_list ap;

	if (error < 0)
		error = -error;
	if (level > log_max_level)
		goto out;

	va_start(ap, format);
	vsnprintf(msg, sizeof(msg), format, ap);
	va_end(ap);

	const char *etext = NULL;
	if (error != 0)
		etext = strerror_r(error, errbuf, sizeof(errbuf));

	if (log_target == LOG_TARGET_SYSLOG) {
		if (etext)
			syslog(level, "%s: %s", msg, etext);
		else
			syslog(level, "%s", msg);
	} else {
		struct timespec ts;
		struct tm tm;
		char when[32];

		clock_gettime(CLOCK_REALTIME, &ts);
		gmtime_r(&ts.tv_sec, &tm);
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
		flockfile(stderr);
		fprintf(stderr, "%s.%03ldZ %s[%d] %s: %s", when, ts.tv_nsec / 1000000, log_ident,
			(int)getpid(), level_name(level), msg);
		if (etext)
			fprintf(stderr, ": %s", etext);
		if (log_max_level >= LOG_DEBUG)
			fprintf(stderr, " (%s:%d %s)", file, line, func);
		fputc('\n', stderr);
		funlockfile(stderr);
	}
out:
	errno = saved_errno;
	return -error;
}
