/* SPDX-License-Identifier: Apache-2.0 */
/* The per-thread secure scratch page (one per thread, stable, whole page usable) and key slots. */
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <string.h>
#include <cmocka.h>

#include "atrest/secure_scratch.h"

static void *other_thread(void *arg)
{
	(void)arg;
	return secure_scratch();
}

static void test_per_thread(void **state)
{
	void *a, *b, *theirs = NULL;
	pthread_t t;

	(void)state;
	a = secure_scratch();
	b = secure_scratch();
	assert_non_null(a);
	assert_ptr_equal(a, b);
	memset(a, 0xa5, SECURE_SCRATCH_SIZE); /* all of it is ours (guard pages would trap) */
	assert_int_equal(pthread_create(&t, NULL, other_thread, NULL), 0);
	assert_int_equal(pthread_join(t, &theirs), 0);
	assert_non_null(theirs);
	assert_ptr_not_equal(theirs, a);
}

/* Slots: distinct, whole slot usable, wiped when put back, reused, across chunks. */
static void test_slots(void **state)
{
	enum { N = 600 }; /* more than one 16 KiB chunk of 64-byte slots */
	static unsigned char *s[N];
	unsigned char *again;

	(void)state;
	for (int i = 0; i < N; i++) {
		s[i] = secure_slot_get();
		assert_non_null(s[i]);
		memset(s[i], i & 0xff, SECURE_SLOT_SIZE);
	}
	for (int i = 0; i < N; i++)
		for (int k = 0; k < SECURE_SLOT_SIZE; k++)
			assert_int_equal(s[i][k], i & 0xff); /* no two overlap */
	secure_slot_put(s[7]);
	for (int k = 0; k < SECURE_SLOT_SIZE; k++)
		assert_int_equal(s[7][k], 0); /* wiped (the chunk stays mapped) */
	again = secure_slot_get();
	assert_ptr_equal(again, s[7]);
	for (int i = 0; i < N; i++)
		secure_slot_put(s[i]);
	secure_slot_put(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_per_thread),
	    cmocka_unit_test(test_slots),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
