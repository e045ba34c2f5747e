/* SPDX-License-Identifier: Apache-2.0 */
/* hcsed access control: acor wildcards, acop bits, acco schedules and IP ranges, validation. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdlib.h>
#include <cmocka.h>

#include "resource.h"

#define NOON_2026 1782648000 /* 2026-06-28 12:00:00 UTC, a Sunday */

static json_t *pv(const char *text)
{
	json_t *j = json_loads(text, 0, NULL);

	assert_non_null(j);
	return j;
}

static void test_acor_acop(void **state)
{
	json_t *p =
	    pv("{\"acr\":[{\"acor\":[\"Cfriend\",\"Cgroup*\",\"/id-in/Cspr\"],\"acop\":6}]}");

	(void)state;
	assert_true(acp_privileges_valid(p));
	assert_true(acp_privileges_allow(p, "Cfriend", "/id-in", 2, NULL, 0));
	assert_true(acp_privileges_allow(p, "Cfriend", "/id-in", 4, NULL, 0));
	assert_false(acp_privileges_allow(p, "Cfriend", "/id-in", 1, NULL, 0));
	assert_false(acp_privileges_allow(p, "Cfriend", "/id-in", 8, NULL, 0));
	assert_false(acp_privileges_allow(p, "Cfriend", "/id-in", 32, NULL, 0));
	assert_true(acp_privileges_allow(p, "Cgroup-42", "/id-in", 2, NULL, 0));
	assert_false(acp_privileges_allow(p, "Cgrou", "/id-in", 2, NULL, 0));
	/* SP-relative forms of this CSE name the same originator */
	assert_true(acp_privileges_allow(p, "Cspr", "/id-in", 2, NULL, 0));
	assert_true(acp_privileges_allow(p, "/id-in/Cfriend", "/id-in", 2, NULL, 0));
	assert_false(acp_privileges_allow(p, "/other/Cfriend", "/id-in", 2, NULL, 0));
	assert_false(acp_privileges_allow(p, "", "/id-in", 2, NULL, 0));
	json_decref(p);

	p = pv("{\"acr\":[{\"acor\":[\"all\"],\"acop\":32}]}");
	assert_true(acp_privileges_allow(p, "Canyone", "/id-in", 32, NULL, 0));
	assert_false(acp_privileges_allow(p, "Canyone", "/id-in", 2, NULL, 0));
	json_decref(p);
}

static void test_acco(void **state)
{
	json_t *p = pv("{\"acr\":[{\"acor\":[\"Cx\"],\"acop\":2,\"acco\":["
		       "{\"actw\":[\"* * 9-17 * * 1-5\"]},"
		       "{\"acip\":{\"ipv4\":[\"192.168.1.0/24\"],\"ipv6\":[\"fd00::/8\"]}}]}]}");

	(void)state;
	assert_true(acp_privileges_valid(p));
	/* Sunday noon: outside the weekday window; IP decides */
	assert_false(acp_privileges_allow(p, "Cx", "/id-in", 2, "10.0.0.1", NOON_2026));
	assert_true(acp_privileges_allow(p, "Cx", "/id-in", 2, "192.168.1.77", NOON_2026));
	assert_true(acp_privileges_allow(p, "Cx", "/id-in", 2, "::ffff:192.168.1.5", NOON_2026));
	assert_true(acp_privileges_allow(p, "Cx", "/id-in", 2, "fd12::1", NOON_2026));
	assert_false(acp_privileges_allow(p, "Cx", "/id-in", 2, "fe80::1", NOON_2026));
	/* Monday noon: inside the window from anywhere */
	assert_true(acp_privileges_allow(p, "Cx", "/id-in", 2, "10.0.0.1", NOON_2026 + 86400));
	json_decref(p);
}

static void test_schedule(void **state)
{
	(void)state;
	assert_true(acp_schedule_match("* * * * * *", NOON_2026));
	assert_true(acp_schedule_match("0 0 12 28 6 0 2026", NOON_2026));
	assert_true(acp_schedule_match("0 */15 10-14 * * *", NOON_2026));
	assert_true(acp_schedule_match("0 0 11,12 * * *", NOON_2026));
	assert_false(acp_schedule_match("0 0 13 * * *", NOON_2026));
	assert_false(acp_schedule_match("* * * * * * 2000", NOON_2026));
	assert_false(acp_schedule_match("* * * * *", NOON_2026));
	assert_false(acp_schedule_match("* * 25 * * *", NOON_2026));
	assert_false(acp_schedule_match("x * * * * *", NOON_2026));
	assert_false(acp_schedule_match("", NOON_2026));
}

static void test_invalid(void **state)
{
	static const char *const bad[] = {
	    "[]",
	    "{\"acr\":{}}",
	    "{\"acr\":[{\"acor\":\"Cx\",\"acop\":2}]}",
	    "{\"acr\":[{\"acor\":[\"Cx\"],\"acop\":0}]}",
	    "{\"acr\":[{\"acor\":[\"Cx\"],\"acop\":64}]}",
	    "{\"acr\":[{\"acor\":[1],\"acop\":2}]}",
	    "{\"acr\":[{\"acor\":[\"Cx\"],\"acop\":2,\"zz\":1}]}",
	    "{\"acr\":[{\"acor\":[\"Cx\"],\"acop\":2,\"acco\":[{\"actw\":[\"bad\"]}]}]}",
	    "{\"acr\":[{\"acor\":[\"Cx\"],\"acop\":2,\"acco\":[{\"acip\":{\"ipv4\":[\"1.2.3.4/"
	    "33\"]}}]}]}",
	    "{\"acr\":[{\"acor\":[\"Cx\"],\"acop\":2,\"acco\":[{\"acip\":{\"ipv6\":[\"::1/"
	    "129\"]}}]}]}",
	    "{\"acr\":[],\"x\":1}",
	};

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		json_t *p = json_loads(bad[i], JSON_DECODE_ANY, NULL);

		assert_non_null(p);
		if (acp_privileges_valid(p))
			fail_msg("accepted: %s", bad[i]);
		json_decref(p);
	}
	json_t *empty = pv("{}");
	assert_true(acp_privileges_valid(empty));
	assert_false(acp_privileges_allow(empty, "Cx", "/id-in", 2, NULL, 0));
	json_decref(empty);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_acor_acop),
	    cmocka_unit_test(test_acco),
	    cmocka_unit_test(test_schedule),
	    cmocka_unit_test(test_invalid),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
