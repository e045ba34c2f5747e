/* SPDX-License-Identifier: Apache-2.0 */
/* The per-thread secure scratch page: one per thread, stable, whole page usable. */
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

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_per_thread),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
