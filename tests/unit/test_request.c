/* SPDX-License-Identifier: Apache-2.0 */
/* Strict request decoding: good bodies, and 400s that name the offending member. */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <sodium.h>

#include "atrest/tef_api.h"
#include "request.h"

static void test_registration_ok(void **state)
{
	const char *body = "{\"suid\":34,\"labels\":[\"a\",\"b\"],\"targetIDs\":[\"uid:5\",\"all\","
			   "\"ae:Cx\"],\"expirationTime\":\"20300101T000000\","
			   "\"keyValue\":\"AAECAwQFBgcICQoLDA0ODw\"}";
	struct reg_request r;
	char *err = NULL;

	(void)state;
	assert_int_equal(request_parse_registration(body, strlen(body), &r, &err), 0);
	assert_null(err);
	assert_int_equal(r.suid, 34);
	assert_int_equal(r.c.n_labels, 2);
	assert_string_equal(r.c.targets[2], "ae:Cx");
	assert_true(r.c.has_expiration);
	assert_int_equal(r.c.expiration, 1893456000);
	assert_int_equal(r.key_len, 16);
	for (int i = 0; i < 16; i++)
		assert_int_equal(r.key[i], i);
	reg_request_done(&r);

	body = "{\"suid\":35}";
	assert_int_equal(request_parse_registration(body, strlen(body), &r, &err), 0);
	assert_null(r.key);
	assert_int_equal(r.count, 0);
	assert_false(r.c.has_expiration);
	reg_request_done(&r);

	body = "{\"suid\":34,\"atrestCount\":64}";
	assert_int_equal(request_parse_registration(body, strlen(body), &r, &err), 0);
	assert_int_equal(r.count, 64);
	reg_request_done(&r);
}

/* The error must name `member` (or mention `word`). */
static void expect_bad(const char *body, const char *word)
{
	struct reg_request r;
	char *err = NULL;

	assert_int_equal(request_parse_registration(body, strlen(body), &r, &err), -EINVAL);
	assert_non_null(err);
	if (!strstr(err, word))
		fail_msg("'%s': error '%s' does not mention '%s'", body, err, word);
	free(err);
}

static void test_registration_bad(void **state)
{
	(void)state;
	expect_bad("", "empty");
	expect_bad("{", "malformed");
	expect_bad("[]", "object");
	expect_bad("{}", "suid");
	expect_bad("{\"suid\":36}", "suid");
	expect_bad("{\"suid\":\"34\"}", "suid");
	expect_bad("{\"suid\":34.0}", "suid");
	expect_bad("{\"suid\":34,\"suid\":35}", "duplicate");
	expect_bad("{\"suid\":34,\"color\":1}", "color");
	expect_bad("{\"suid\":34,\"atrestCount\":0}", "atrestCount");
	expect_bad("{\"suid\":34,\"atrestCount\":65}", "atrestCount");
	expect_bad("{\"suid\":34,\"atrestCount\":\"2\"}", "atrestCount");
	expect_bad("{\"suid\":34,\"atrestCount\":2,\"keyValue\":\"AAECAwQFBgcICQoLDA0ODw\"}",
		   "atrestCount");
	expect_bad("{\"suid\":34,\"labels\":\"a\"}", "labels");
	expect_bad("{\"suid\":34,\"labels\":[1]}", "labels");
	expect_bad("{\"suid\":34,\"labels\":[\"\"]}", "labels");
	expect_bad("{\"suid\":34,\"labels\":[\"a\\nb\"]}", "labels");
	expect_bad("{\"suid\":34,\"targetIDs\":[\"bob\"]}", "targetIDs");
	expect_bad("{\"suid\":34,\"targetIDs\":[\"uid:x\"]}", "targetIDs");
	expect_bad("{\"suid\":34,\"targetIDs\":[\"uid:-1\"]}", "targetIDs");
	expect_bad("{\"suid\":34,\"targetIDs\":[\"ae:\"]}", "targetIDs");
	expect_bad("{\"suid\":34,\"targetIDs\":[\"ae:a b\"]}", "targetIDs");
	expect_bad("{\"suid\":34,\"expirationTime\":\"2030-01-01\"}", "expirationTime");
	expect_bad("{\"suid\":34,\"expirationTime\":\"20300230T000000\"}", "expirationTime");
	expect_bad("{\"suid\":34,\"expirationTime\":\"19690101T000000\"}", "expirationTime");
	expect_bad("{\"suid\":34,\"expirationTime\":20300101}", "expirationTime");
	/* 15 bytes, padded, wrong alphabet, 33 bytes */
	expect_bad("{\"suid\":34,\"keyValue\":\"AAECAwQFBgcICQoLDA0O\"}", "keyValue");
	expect_bad("{\"suid\":34,\"keyValue\":\"AAECAwQFBgcICQoLDA0ODw==\"}", "keyValue");
	expect_bad("{\"suid\":34,\"keyValue\":\"AAECAwQFBgcICQoLDA0OD+\"}", "keyValue");
	expect_bad("{\"suid\":34,\"keyValue\":\"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8g\"}",
		   "keyValue");
	expect_bad("{\"suid\":34,\"keyValue\":null}", "keyValue");

	char big[TEF_MAX_LABELS * 6 + 64];
	size_t n = (size_t)snprintf(big, sizeof(big), "{\"suid\":34,\"labels\":[");
	for (int i = 0; i <= TEF_MAX_LABELS; i++)
		n += (size_t)snprintf(big + n, sizeof(big) - n, "%s\"l\"", i ? "," : "");
	snprintf(big + n, sizeof(big) - n, "]}");
	expect_bad(big, "labels");
}

static void test_update(void **state)
{
	struct upd_request u;
	char *err = NULL;
	const char *body = "{\"atrestVersion\":9,\"targetIDs\":[]}";

	(void)state;
	assert_int_equal(request_parse_update(body, strlen(body), &u, &err), 0);
	assert_true(u.has_version);
	assert_int_equal(u.version, 9);
	assert_true(u.c.has_targets);
	assert_int_equal(u.c.n_targets, 0);
	assert_false(u.c.has_labels);
	upd_request_done(&u);

	const char *bad[][2] = {
	    {"{}", "at least one"},
	    {"{\"suid\":34}", "suid"},
	    {"{\"keyValue\":\"AAECAwQFBgcICQoLDA0ODw\"}", "keyValue"},
	    {"{\"atrestVersion\":-1}", "atrestVersion"},
	    {"{\"atrestVersion\":\"1\"}", "atrestVersion"},
	    {"{\"labels\":[\"a\"],\"x\":1}", "'x'"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(request_parse_update(bad[i][0], strlen(bad[i][0]), &u, &err),
				 -EINVAL);
		assert_non_null(strstr(err, bad[i][1]));
		free(err);
	}
}

static void test_wire_helpers(void **state)
{
	char buf[TEF_TIMESTAMP_LEN + 1], id[TEF_RELATIVE_KEY_ID_HEX + 1];
	int64_t t;

	(void)state;
	assert_int_equal(tef_timestamp_parse("20240229T235959", &t), 0);
	assert_int_equal(tef_timestamp_format(t, buf), 0);
	assert_string_equal(buf, "20240229T235959");
	assert_int_equal(tef_timestamp_parse("20230229T000000", &t), -EINVAL);
	assert_int_equal(tef_timestamp_parse("20230101T240000", &t), -EINVAL);
	assert_int_equal(tef_timestamp_parse("20230101 000000", &t), -EINVAL);
	assert_int_equal(tef_timestamp_parse("20230101T0000000", &t), -EINVAL);
	assert_int_equal(tef_timestamp_parse("19700101T000000", &t), 0);
	assert_int_equal(t, 0);
	assert_int_equal(tef_timestamp_parse("99991231T235959", &t), 0);
	assert_int_equal(t, TEF_TIMESTAMP_MAX);
	assert_int_equal(tef_timestamp_format(TEF_TIMESTAMP_MAX + 1, buf), -ERANGE);
	assert_int_equal(tef_timestamp_format(-1, buf), -ERANGE);

	assert_true(tef_principal_is_valid("all"));
	assert_true(tef_principal_is_valid("uid:0"));
	assert_true(tef_principal_is_valid("gid:4294967294"));
	assert_false(tef_principal_is_valid("gid:4294967295"));
	assert_false(tef_principal_is_valid("uid:00"));
	assert_true(tef_principal_is_valid("cse:/id-in"));
	assert_false(tef_principal_is_valid("ALL"));
	assert_false(tef_principal_is_valid("cse:"));

	assert_int_equal(tef_relative_key_id("0123456789ABCDEF0123456789abcdef@tef.example", id),
			 0);
	assert_string_equal(id, "0123456789abcdef0123456789abcdef");
	assert_int_equal(tef_relative_key_id("0123", id), -EINVAL);
	assert_int_equal(tef_relative_key_id("0123456789abcdef0123456789abcdeg", id), -EINVAL);
	assert_int_equal(tef_relative_key_id("../../etc/passwd", id), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_registration_ok),
	    cmocka_unit_test(test_registration_bad),
	    cmocka_unit_test(test_update),
	    cmocka_unit_test(test_wire_helpers),
	};

	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
