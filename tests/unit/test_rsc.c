/* SPDX-License-Identifier: Apache-2.0 */
/* The RSC table against TS-0009 Table 6.3.2-1 and the errno contract. */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <string.h>
#include <cmocka.h>

#include "atrest/rsc.h"

static void test_http_status(void **state)
{
	(void)state;
	assert_int_equal(rsc_to_http_status(2000), 200);
	assert_int_equal(rsc_to_http_status(2001), 201);
	assert_int_equal(rsc_to_http_status(2002), 200);
	assert_int_equal(rsc_to_http_status(2004), 200);
	assert_int_equal(rsc_to_http_status(4000), 400);
	assert_int_equal(rsc_to_http_status(4001), 501);
	assert_int_equal(rsc_to_http_status(4004), 404);
	assert_int_equal(rsc_to_http_status(4005), 405);
	assert_int_equal(rsc_to_http_status(4103), 403);
	assert_int_equal(rsc_to_http_status(4117), 403);
	assert_int_equal(rsc_to_http_status(4015), 415);
	assert_int_equal(rsc_to_http_status(5106), 409);
	assert_int_equal(rsc_to_http_status(5207), 406);
	assert_int_equal(rsc_to_http_status(4008), 504);
	assert_int_equal(rsc_to_http_status(1234), 500);
}

static void test_errno(void **state)
{
	(void)state;
	assert_int_equal(errno_from_rsc(2000), 0);
	assert_int_equal(errno_from_rsc(4103), -EACCES);
	assert_int_equal(errno_from_rsc(4004), -ENOENT);
	assert_int_equal(errno_from_rsc(9999), -EIO);
	assert_string_equal(rsc_to_string(4004), "NOT_FOUND");
	assert_string_equal(rsc_to_string(1), "UNKNOWN");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_http_status),
		cmocka_unit_test(test_errno),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
