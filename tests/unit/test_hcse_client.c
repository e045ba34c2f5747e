/* SPDX-License-Identifier: Apache-2.0 */
/* hcse_retrieve_cin() against a real loopback server: the con cut out of the
 * text fast, and every response where that shortcut would be wrong. */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "atrest/hcse_client.h"
#include "atrest/httpd.h"

/* The body to answer with, by the path's last segment (a case name). */
static const struct {
	const char *name, *body;
} cases[] = {
	{"plain", "{\"m2m:cin\":{\"rn\":\"s\",\"cnf\":\"application/jose:0:1\",\"con\":\"abc.def\",\"cs\":7}}"},
	{"last", "{\"m2m:cin\":{\"cnf\":\"text/plain:0\",\"con\":\"xyz\"}}"},
	{"empty", "{\"m2m:cin\":{\"con\":\"\"}}"},
	{"escaped", "{\"m2m:cin\":{\"con\":\"a\\\"b\\\\c\\u0041\"}}"},
	/* a member named con nested before the contentInstance's own */
	{"nested", "{\"m2m:cin\":{\"at\":{\"con\":\"decoy\"},\"con\":\"real\"}}"},
	{"nested_only", "{\"m2m:cin\":{\"at\":{\"con\":\"decoy\"}}}"},
	{"number", "{\"m2m:cin\":{\"con\":42}}"},
	{"object", "{\"m2m:cin\":{\"con\":{\"a\":\"b\"}}}"},
	{"not_cin", "{\"m2m:cnt\":{\"con\":\"x\"}}"},
	{"two", "{\"m2m:cin\":{\"con\":\"x\"},\"m2m:cnt\":{}}"},
	{"broken", "{\"m2m:cin\":{\"con\":\"x\""},
	{"unterminated", "{\"m2m:cin\":{\"con\":\"xyz"},
};

static int handler(void *userdata, const struct httpd_request *req, struct httpd_response *resp)
{
	const char *name = strrchr(req->path, '/');
	char *body;

	(void)userdata;
	name = name ? name + 1 : req->path;
	httpd_response_set_status(resp, 200);
	httpd_response_add_header(resp, "X-M2M-RSC", "2000");
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		if (strcmp(name, cases[i].name) == 0) {
			body = strdup(cases[i].body);
			return httpd_response_set_body(resp, "application/json", body, strlen(body));
		}
	if (strcmp(name, "big") == 0) {
		/* a segment-sized con between other members */
		size_t n = (1 << 20) + 7, len;
		const char *head = "{\"m2m:cin\":{\"rn\":\"s\",\"con\":\"", *tail = "\",\"cs\":1}}";

		len = strlen(head) + n + strlen(tail);
		body = malloc(len + 1);
		assert_non_null(body);
		strcpy(body, head);
		for (size_t i = 0; i < n; i++)
			body[strlen(head) + i] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"[i % 64];
		strcpy(body + strlen(head) + n, tail);
		return httpd_response_set_body(resp, "application/json", body, len);
	}
	httpd_response_set_status(resp, 404);
	httpd_response_add_header(resp, "X-M2M-RSC", "4004");
	return 0;
}

struct fixture {
	struct httpd *h;
	struct hcse_client *c;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct httpd_config cfg = {.listen = "127.0.0.1:0", .max_body = 4096};
	char url[64];

	assert_non_null(f);
	assert_int_equal(httpd_start(&cfg, handler, NULL, &f->h), 0);
	snprintf(url, sizeof(url), "http://127.0.0.1:%u/cse-in", httpd_port(f->h));
	assert_int_equal(hcse_client_new(url, "Ctest", NULL, 5000, &f->c), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	hcse_client_free(f->c);
	httpd_stop(f->h);
	free(f);
	return 0;
}

static void expect_con(struct fixture *f, const char *name, const char *con, const char *cnf)
{
	char *got = NULL, *got_cnf = NULL;
	size_t len = 0;

	assert_int_equal(hcse_retrieve_cin(f->c, name, &got, &len, &got_cnf, NULL), 0);
	assert_int_equal(len, strlen(con));
	assert_memory_equal(got, con, len);
	assert_int_equal(got[len], '\0');
	if (cnf)
		assert_string_equal(got_cnf, cnf);
	else
		assert_null(got_cnf);
	free(got);
	free(got_cnf);
}

static void test_con_cut_out(void **state)
{
	struct fixture *f = *state;

	expect_con(f, "ae/plain", "abc.def", "application/jose:0:1");
	expect_con(f, "ae/last", "xyz", "text/plain:0");
	expect_con(f, "ae/empty", "", NULL);
}

static void test_exact_way(void **state)
{
	struct fixture *f = *state;

	/* escapes are decoded; the nested decoy is never taken for the con */
	expect_con(f, "ae/escaped", "a\"b\\cA", NULL);
	expect_con(f, "ae/nested", "real", NULL);
}

static void test_refused(void **state)
{
	static const char *bad[] = {"ae/nested_only", "ae/number", "ae/object", "ae/not_cin",
				    "ae/two", "ae/broken", "ae/unterminated"};
	struct fixture *f = *state;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *got = NULL;
		size_t len = 0;

		assert_int_equal(hcse_retrieve_cin(f->c, bad[i], &got, &len, NULL, NULL), -EBADMSG);
		assert_null(got);
	}
}

static void test_big(void **state)
{
	struct fixture *f = *state;
	char *got = NULL;
	size_t len = 0;

	assert_int_equal(hcse_retrieve_cin(f->c, "ae/big", &got, &len, NULL, NULL), 0);
	assert_int_equal(len, (1 << 20) + 7);
	for (size_t i = 0; i < len; i++)
		if (got[i] != "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"[i % 64])
			fail_msg("byte %zu differs", i);
	assert_int_equal(got[len], '\0');
	free(got);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_con_cut_out, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_exact_way, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_refused, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_big, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
