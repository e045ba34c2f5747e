/* SPDX-License-Identifier: Apache-2.0 */
/* The monotonic clock for timeouts, backoffs and cache lifetimes: never the
 * wall clock, which an administrator or NTP may step. */
#pragma once

#include <stdint.h>
#include <time.h>

/* CLOCK_MONOTONIC in nanoseconds. */
static inline uint64_t monotonic_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The same in whole milliseconds and whole seconds. */
static inline int64_t monotonic_ms(void)
{
	return (int64_t)(monotonic_ns() / 1000000u);
}

static inline int64_t monotonic_s(void)
{
	return (int64_t)(monotonic_ns() / 1000000000u);
}
