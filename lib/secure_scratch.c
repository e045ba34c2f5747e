/* SPDX-License-Identifier: Apache-2.0 */
/* The per-thread secure scratch page (include/atrest/secure_scratch.h). */
#include <pthread.h>
#include <stdlib.h>

#include <sodium.h>

#include "atrest/secure_scratch.h"

static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;

static void scratch_free(void *p)
{
	sodium_free(p);
}

static void scratch_init(void)
{
	if (sodium_init() < 0 || pthread_key_create(&scratch_key, scratch_free) != 0)
		abort();
}

void *secure_scratch(void)
{
	void *s;

	pthread_once(&scratch_once, scratch_init);
	s = pthread_getspecific(scratch_key);
	if (!s && (s = sodium_malloc(SECURE_SCRATCH_SIZE)) &&
	    pthread_setspecific(scratch_key, s) != 0) {
		sodium_free(s);
		s = NULL;
	}
	return s;
}
