/* SPDX-License-Identifier: Apache-2.0 */
/* The per-thread secure scratch page and the shared secure key slots (include/atrest/secure_scratch.h). */
#include <pthread.h>
#include <stdint.h>
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

/* Slots: chunks of SLOT_CHUNK bytes from sodium_malloc, never unmapped; the
 * free slots' addresses on a stack in ordinary memory (they are no secret). */
#define SLOT_CHUNK (16 * 1024)
#define SLOTS_PER_CHUNK (SLOT_CHUNK / SECURE_SLOT_SIZE)

static pthread_mutex_t slot_lock = PTHREAD_MUTEX_INITIALIZER;
static void **slot_free; /* room for every slot made */
static size_t n_slot_free, n_slots;

void *secure_slot_get(void)
{
	void *s = NULL;

	pthread_once(&scratch_once, scratch_init);
	pthread_mutex_lock(&slot_lock);
	if (n_slot_free == 0) {
		void **bigger = realloc(slot_free, (n_slots + SLOTS_PER_CHUNK) * sizeof(void *));
		uint8_t *chunk;

		if (!bigger)
			goto out;
		slot_free = bigger;
		chunk = sodium_malloc(SLOT_CHUNK);
		if (!chunk)
			goto out;
		n_slots += SLOTS_PER_CHUNK;
		for (size_t i = 0; i < SLOTS_PER_CHUNK; i++)
			slot_free[n_slot_free++] = chunk + (SLOTS_PER_CHUNK - 1 - i) * SECURE_SLOT_SIZE;
	}
	s = slot_free[--n_slot_free];
out:
	pthread_mutex_unlock(&slot_lock);
	return s;
}

void secure_slot_put(void *slot)
{
	if (!slot)
		return;
	sodium_memzero(slot, SECURE_SLOT_SIZE);
	pthread_mutex_lock(&slot_lock);
	/* never fails: every slot handed out has its place on the stack */
	slot_free[n_slot_free++] = slot;
	pthread_mutex_unlock(&slot_lock);
}
