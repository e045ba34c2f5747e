/* SPDX-License-Identifier: Apache-2.0 */
/* The config file parser: settings, comments, errors with line numbers. */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "atrest/conf.h"

struct seen {
	char text[512];
	int fail_on_key;
};

static int collect(const char *key, const char *value, void *userdata)
{
	struct seen *s = userdata;

	if (s->fail_on_key && strcmp(key, "bad") == 0)
		return -ERANGE;
	strncat(s->text, key, sizeof(s->text) - strlen(s->text) - 1);
	strncat(s->text, "=", sizeof(s->text) - strlen(s->text) - 1);
	strncat(s->text, value, sizeof(s->text) - strlen(s->text) - 1);
	strncat(s->text, ";", sizeof(s->text) - strlen(s->text) - 1);
	return 0;
}

static char *write_tmp(const char *content)
{
	char *path = strdup("/tmp/atrest-conf-XXXXXX");
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, content, strlen(content)), (ssize_t)strlen(content));
	close(fd);
	return path;
}

static void test_settings(void **state)
{
	struct seen s = { 0 };
	unsigned line = 99;
	char *p = write_tmp("# comment\n\n  socket = /run/x.sock  \nempty =\nfqdn=tef.example\n");

	(void)state;
	assert_int_equal(conf_parse_file(p, collect, &s, &line), 0);
	assert_string_equal(s.text, "socket=/run/x.sock;empty=;fqdn=tef.example;");
	unlink(p);
	free(p);
}

static void test_bad_line(void **state)
{
	struct seen s = { 0 };
	unsigned line = 0;
	char *p = write_tmp("a = 1\nno equals sign\n");

	(void)state;
	assert_int_equal(conf_parse_file(p, collect, &s, &line), -EINVAL);
	assert_int_equal(line, 2);
	unlink(p);
	free(p);
}

static void test_bad_key(void **state)
{
	struct seen s = { 0 };
	unsigned line = 0;
	char *p = write_tmp("a = 1\n\nBad Key = 2\n");

	(void)state;
	assert_int_equal(conf_parse_file(p, collect, &s, &line), -EINVAL);
	assert_int_equal(line, 3);
	unlink(p);
	free(p);
}

static void test_callback_error(void **state)
{
	struct seen s = { .fail_on_key = 1 };
	unsigned line = 0;
	char *p = write_tmp("a = 1\nbad = 2\n");

	(void)state;
	assert_int_equal(conf_parse_file(p, collect, &s, &line), -ERANGE);
	assert_int_equal(line, 2);
	unlink(p);
	free(p);
}

static void test_missing_file(void **state)
{
	struct seen s = { 0 };
	unsigned line = 7;

	(void)state;
	assert_int_equal(conf_parse_file("/nonexistent/atrest.conf", collect, &s, &line), -ENOENT);
	assert_int_equal(line, 0);
}

static void test_numbers(void **state)
{
	uint64_t v = 5;
	bool b = false;

	(void)state;
	assert_int_equal(conf_parse_u64("42", 0, 100, &v), 0);
	assert_int_equal(v, 42);
	assert_int_equal(conf_parse_u64("101", 0, 100, &v), -ERANGE);
	assert_int_equal(conf_parse_u64("-1", 0, 100, &v), -EINVAL);
	assert_int_equal(conf_parse_u64("4x", 0, 100, &v), -EINVAL);
	assert_int_equal(conf_parse_u64("", 0, 100, &v), -EINVAL);
	assert_int_equal(conf_parse_u64("99999999999999999999999", 0, UINT64_MAX, &v), -ERANGE);
	assert_int_equal(v, 42);
	assert_int_equal(conf_parse_bool("yes", &b), 0);
	assert_true(b);
	assert_int_equal(conf_parse_bool("off", &b), 0);
	assert_false(b);
	assert_int_equal(conf_parse_bool("maybe", &b), -EINVAL);
}

/* A setting given twice (file, then command line) keeps the last value, owned by the caller. */
static void test_set_string(void **state)
{
	char *v = NULL;

	(void)state;
	assert_int_equal(conf_set_string("first", &v), 0);
	assert_string_equal(v, "first");
	assert_int_equal(conf_set_string("second", &v), 0);
	assert_string_equal(v, "second");
	free(v);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_settings),    cmocka_unit_test(test_bad_line),
		cmocka_unit_test(test_bad_key),     cmocka_unit_test(test_callback_error),
		cmocka_unit_test(test_missing_file), cmocka_unit_test(test_numbers),
		cmocka_unit_test(test_set_string),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
