/* SPDX-License-Identifier: Apache-2.0 */
/* String vectors to and from JSON arrays: round trip, NULL elements, non-arrays. */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "atrest/json_strv.h"

static void test_round_trip(void **state)
{
	const char *in[] = {"uid:1000", "gid:50", ""};
	json_t *a;
	char **out = NULL;
	size_t n = 99;

	(void)state;
	a = json_strv_new(in, 3);
	assert_non_null(a);
	assert_int_equal(json_array_size(a), 3);
	assert_string_equal(json_string_value(json_array_get(a, 1)), "gid:50");
	assert_int_equal(json_strv_copy(a, &out, &n), 0);
	assert_int_equal(n, 3);
	for (size_t i = 0; i < n; i++)
		assert_string_equal(out[i], in[i]);
	json_strv_free(out, n);
	json_decref(a);

	/* an empty vector is an empty array, and back a non-NULL empty vector */
	a = json_strv_new(NULL, 0);
	assert_non_null(a);
	assert_int_equal(json_array_size(a), 0);
	assert_int_equal(json_strv_copy(a, &out, &n), 0);
	assert_non_null(out);
	assert_int_equal(n, 0);
	json_strv_free(out, n);
	json_decref(a);
}

static void test_odd_input(void **state)
{
	const char *with_null[] = {"a", NULL};
	json_t *a = json_pack("[s, i, n]", "x", 7);
	json_t *o = json_object();
	char **out = NULL;
	size_t n = 0;

	(void)state;
	assert_null(json_strv_new(with_null, 2));

	/* non-string elements become "" */
	assert_int_equal(json_strv_copy(a, &out, &n), 0);
	assert_int_equal(n, 3);
	assert_string_equal(out[0], "x");
	assert_string_equal(out[1], "");
	assert_string_equal(out[2], "");
	json_strv_free(out, n);

	/* anything but an array, NULL too, is an empty vector */
	assert_int_equal(json_strv_copy(o, &out, &n), 0);
	assert_int_equal(n, 0);
	json_strv_free(out, n);
	assert_int_equal(json_strv_copy(NULL, &out, &n), 0);
	assert_int_equal(n, 0);
	json_strv_free(out, n);
	json_decref(a);
	json_decref(o);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_round_trip),
	    cmocka_unit_test(test_odd_input),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
