/* SPDX-License-Identifier: Apache-2.0 */
/* The shared HTTP client plumbing against the real server glue: URLs, RSC, bodies, limits, pool. */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include <curl/curl.h>
#include <sodium.h>

#include "atrest/cleanup.h"
#include "atrest/http_client.h"
#include "atrest/httpd.h"
#include "atrest/secure_scratch.h"

/* Answers "<method> <path> q=<q> n=<body length>", or ?size=N bytes of 'k' with RSC 2000. */
static int handler(void *userdata, const struct httpd_request *req, struct httpd_response *resp)
{
	const char *size = httpd_request_query(req, "size");
	const char *q = httpd_request_query(req, "q");
	char *body;

	(void)userdata;
	httpd_response_set_status(resp, 201);
	httpd_response_add_header(resp, "X-M2M-RSC", "2001");
	if (size) {
		size_t n = strtoul(size, NULL, 10);

		body = malloc(n);
		assert_non_null(body);
		memset(body, 'k', n);
		return httpd_response_set_body(resp, "text/plain", body, n);
	}
	if (asprintf(&body, "%s %s q=%s n=%zu", req->method, req->path, q ? q : "-",
		     req->body_len) < 0)
		return -ENOMEM;
	return httpd_response_set_body(resp, "text/plain", body, strlen(body));
}

struct fixture {
	char dir[64];
	char path[128];
	struct httpd *h;
	struct http_client *c;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	snprintf(f->dir, sizeof(f->dir), "/tmp/atrest-http-client-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/s.sock", f->dir);
	struct httpd_config cfg = {.unix_path = f->path, .unix_mode = 0600, .max_body = 4096};
	assert_int_equal(httpd_start(&cfg, handler, NULL, &f->h), 0);
	struct http_client_options o = {
	    .base = "http://test///",
	    .unix_path = f->path,
	    .protocols = "http",
	    .connect_timeout_ms = 5000,
	    .timeout_ms = 10000,
	    .pool_max = 2,
	    .response_max = 1 << 20,
	};
	assert_int_equal(http_client_new(&o, &f->c), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	http_client_free(f->c);
	httpd_stop(f->h);
	rmdir(f->dir);
	free(f);
	return 0;
}

static void test_url_and_status(void **state)
{
	struct fixture *f = *state;
	struct http_client_response r = {0};
	struct curl_slist *hdrs = NULL;

	assert_string_equal(http_client_base(f->c), "http://test");
	assert_true(http_client_is_unix(f->c));
	assert_int_equal(http_client_header(&hdrs, "Expect:"), 0);

	/* with slash, a relative path gets its '/', and the query follows '?' */
	struct http_client_request req = {
	    .method = "POST",
	    .path = "ae/cnt",
	    .slash = true,
	    .query = "q=1",
	    .headers = hdrs,
	    .body = "{}",
	};
	assert_int_equal(http_client_perform(f->c, &req, &r), CURLE_OK);
	assert_int_equal(r.http, 201);
	assert_int_equal(r.rsc, 2001);
	assert_string_equal(r.data, "POST /ae/cnt q=1 n=2");
	http_client_response_done(&r);
	assert_null(r.data);

	/* without slash, the path is appended as it is */
	req = (struct http_client_request){.method = "GET", .path = "/keys/x"};
	for (int i = 0; i < 5; i++) { /* handles come back from the pool */
		assert_int_equal(http_client_perform(f->c, &req, &r), CURLE_OK);
		assert_string_equal(r.data, "GET /keys/x q=- n=0");
		http_client_response_done(&r);
	}
	curl_slist_free_all(hdrs);
}

static void test_secret_bodies(void **state)
{
	struct fixture *f = *state;
	struct http_client_response r = {.secret = true};
	struct http_client_request small = {.method = "GET", .path = "/", .query = "size=100"};
	struct http_client_request big = {.method = "GET", .path = "/", .query = "size=70000"};
	char *scratch = secure_scratch();

	assert_non_null(scratch);
	/* a small secret body is collected in the thread's scratch page and wiped there */
	assert_int_equal(http_client_perform(f->c, &small, &r), CURLE_OK);
	assert_ptr_equal(r.data, scratch);
	assert_int_equal(r.len, 100);
	http_client_response_done(&r);
	assert_true(sodium_is_zero((unsigned char *)scratch, SECURE_SCRATCH_SIZE));
	assert_true(r.secret);

	/* a larger one moves to sodium_malloc memory, whole */
	assert_int_equal(http_client_perform(f->c, &big, &r), CURLE_OK);
	assert_ptr_not_equal(r.data, scratch);
	assert_int_equal(r.len, 70000);
	assert_int_equal(r.data[69999], 'k');
	assert_int_equal(r.data[70000], '\0');
	http_client_response_done(&r);
	assert_true(sodium_is_zero((unsigned char *)scratch, SECURE_SCRATCH_SIZE));
}

static void test_limits_and_failures(void **state)
{
	struct fixture *f = *state;
	struct http_client_response r = {.max = 1001};
	struct http_client_request at = {.method = "GET", .path = "/", .query = "size=1000"};
	struct http_client_request over = {.method = "GET", .path = "/", .query = "size=1001"};
	struct http_client *gone = NULL;

	/* max counts the NUL: 1000 bytes fit in 1001, 1001 do not */
	assert_int_equal(http_client_perform(f->c, &at, &r), CURLE_OK);
	assert_int_equal(r.len, 1000);
	assert_false(r.too_large);
	http_client_response_done(&r);
	assert_int_equal(http_client_perform(f->c, &over, &r), CURLE_WRITE_ERROR);
	assert_true(r.too_large);
	assert_null(r.data);
	assert_int_equal(r.max, 1001);

	/* a socket nobody listens on: refused, nothing left to release */
	struct http_client_options o = {
	    .base = "http://test",
	    .unix_path = "/nonexistent/s.sock",
	    .protocols = "http",
	    .connect_timeout_ms = 1000,
	    .timeout_ms = 1000,
	    .pool_max = 1,
	    .response_max = 64,
	};
	assert_int_equal(http_client_new(&o, &gone), 0);
	r = (struct http_client_response){0};
	assert_int_not_equal(http_client_perform(gone, &at, &r), CURLE_OK);
	assert_int_equal(r.http, 0);
	assert_null(r.data);
	http_client_free(gone);

	/* no protocols: refused at creation */
	o.protocols = NULL;
	assert_int_equal(http_client_new(&o, &gone), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_url_and_status, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_secret_bodies, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_limits_and_failures, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
