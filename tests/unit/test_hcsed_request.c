/* SPDX-License-Identifier: Apache-2.0 */
/* hcsed's request model: raw con extraction, cnf syntax, timestamps and the TS-0009 binding. */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <cmocka.h>

#include "binding.h"
#include "resource.h"

static void split_ok(const char *body, const char *con, int64_t size, const char *rest)
{
	const char *c;
	size_t n;
	int64_t sz;
	char *r;

	assert_int_equal(hcse_split_con(body, strlen(body), &c, &n, &sz, &r), 0);
	assert_int_equal(n, strlen(con));
	assert_memory_equal(c, con, n);
	assert_int_equal(sz, size);
	assert_string_equal(r, rest);
	free(r);
}

static void test_split_con(void **state)
{
	static const char *const bad[] = {
	    "",
	    "{",
	    "[]",
	    "{\"m2m:cin\": {\"con\": }}",
	    "{\"m2m:cin\": {\"con\": \"x}}",
	    "{\"m2m:cin\": {\"con\": \"a\", \"con\": \"b\"}}",
	    "{\"m2m:cin\": {\"con\": 01}}",
	    "{\"m2m:cin\": {\"con\": \"\\x\"}}",
	    "{\"m2m:cin\": {\"con\": \"\\ud800\"}}",
	    "{\"m2m:cin\": {\"con\": \"\xc3\"}}",
	    "{\"m2m:cin\": {\"con\": \"\x01\"}}",
	    "{\"m2m:cin\": {\"con\": tru}}",
	    "{\"m2m:cin\": {\"con\": 1}} x",
	    "{\"m2m:cin\": {\"con\": [1,]}}",
	};
	const char *c;
	size_t n;
	int64_t sz;
	char *r;

	(void)state;
	split_ok("{\"m2m:cin\": {\"con\": \"abc\"}}", "\"abc\"", 3, "{\"m2m:cin\": {\"con\": 0}}");
	/* escapes count as the bytes they decode to; raw text kept */
	split_ok(
	    "{\"m2m:cin\":{\"cnf\":\"a/b:0\",\"con\":\"\\u00e9\\n\\ud83d\\ude00\",\"rn\":\"x\"}}",
	    "\"\\u00e9\\n\\ud83d\\ude00\"", 2 + 1 + 4,
	    "{\"m2m:cin\":{\"cnf\":\"a/b:0\",\"con\":0,\"rn\":\"x\"}}");
	split_ok("{\"m2m:cin\": {\"con\": {\"a\": [1, 2.5e3, null, true]}}}",
		 "{\"a\": [1, 2.5e3, null, true]}", 29, "{\"m2m:cin\": {\"con\": 0}}");
	split_ok("{\"m2m:cin\": {\"con\": -12}}", "-12", 3, "{\"m2m:cin\": {\"con\": 0}}");
	split_ok("{\"m2m:cin\": {\"con\": \"\xc3\xa9\"}}", "\"\xc3\xa9\"", 2,
		 "{\"m2m:cin\": {\"con\": 0}}");
	/* a "con" elsewhere is not the content */
	static const char *const none[] = {"{\"m2m:cnt\": {\"con\": 1}}",
					   "{\"m2m:cin\": {\"x\": {\"con\": 1}}}"};
	for (size_t i = 0; i < sizeof(none) / sizeof(none[0]); i++)
		assert_int_equal(hcse_split_con(none[i], strlen(none[i]), &c, &n, &sz, &r),
				 -ENOENT);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (hcse_split_con(bad[i], strlen(bad[i]), &c, &n, &sz, &r) != -EINVAL)
			fail_msg("accepted: %s", bad[i]);
}

static void test_cnf(void **state)
{
	(void)state;
	assert_true(cin_cnf_valid("application/octet-stream:0:1"));
	assert_true(cin_cnf_valid("text/plain:0"));
	assert_true(cin_cnf_valid("application/json:2:5"));
	assert_true(cin_cnf_valid("text/plain;charset=utf-8:1"));
	assert_false(cin_cnf_valid("text/plain"));
	assert_false(cin_cnf_valid("text:0"));
	assert_false(cin_cnf_valid("text/plain:3"));
	assert_false(cin_cnf_valid("text/plain:0:6"));
	assert_false(cin_cnf_valid("text/plain:0:1:2"));
	assert_false(cin_cnf_valid("/plain:0"));
	assert_false(cin_cnf_valid(""));
}

static void test_time(void **state)
{
	char buf[16];
	int64_t t;

	(void)state;
	assert_int_equal(hcse_parse_time("20260628T120000", &t), 0);
	assert_int_equal(t, 1782648000);
	hcse_format_time(t, buf);
	assert_string_equal(buf, "20260628T120000");
	assert_int_equal(hcse_parse_time("20260628T120000,123456", &t), 0);
	assert_int_equal(hcse_parse_time("20260628T120000Z", &t), 0);
	assert_int_equal(hcse_parse_time("99991231T235959", &t), 0);
	hcse_format_time(t, buf);
	assert_string_equal(buf, "99991231T235959");
	assert_int_equal(hcse_parse_time("2026-06-28T12:00:00", &t), -EINVAL);
	assert_int_equal(hcse_parse_time("20261328T120000", &t), -EINVAL);
	assert_int_equal(hcse_parse_time("20260628T120000x", &t), -EINVAL);
	assert_int_equal(hcse_parse_time("", &t), -EINVAL);
}

/* A fake HTTP request for the binding. */
struct fake {
	const char *headers[8][2];
	const char *query[8][2];
};

static const char *fake_header(void *userdata, const char *name)
{
	struct fake *f = userdata;

	for (int i = 0; i < 8 && f->headers[i][0]; i++)
		if (strcasecmp(f->headers[i][0], name) == 0)
			return f->headers[i][1];
	return NULL;
}

static int fake_query(void *userdata, int (*fn)(const char *, const char *, void *), void *ud)
{
	struct fake *f = userdata;

	for (int i = 0; i < 8 && f->query[i][0]; i++)
		if (fn(f->query[i][0], f->query[i][1], ud))
			return 1;
	return 0;
}

static int parse(struct fake *f, const char *method, const char *path, const char *body,
		 struct hcse_request *req, struct hcse_response *err)
{
	struct binding_input in = {
	    .method = method,
	    .path = path,
	    .header = fake_header,
	    .query_foreach = fake_query,
	    .userdata = f,
	    .body = body,
	    .body_len = body ? strlen(body) : 0,
	};

	return binding_parse(&in, req, err);
}

static void test_binding(void **state)
{
	struct fake f = {.headers = {{"X-M2M-Origin", "Cae"},
				     {"X-M2M-RI", "r1"},
				     {"X-M2M-RVI", "3"},
				     {"Content-Type", "application/json ; ty=4"}},
			 .query = {{"rcn", "3"}}};
	struct hcse_request req;
	struct hcse_response err;

	(void)state;
	assert_int_equal(
	    parse(&f, "POST", "/cse-in/ae/c", "{\"m2m:cin\":{\"con\":\"x\"}}", &req, &err), 0);
	assert_int_equal(req.op, HCSE_OP_CREATE);
	assert_int_equal(req.ty, 4);
	assert_int_equal(req.rcn, 3);
	assert_string_equal(req.to, "cse-in/ae/c");
	assert_string_equal(req.fr, "Cae");
	assert_string_equal(req.rqi, "r1");
	assert_string_equal(req.rvi, "3");
	assert_int_equal(req.con_len, 3);
	assert_memory_equal(req.con, "\"x\"", 3);
	assert_non_null(json_object_get(req.pc, "m2m:cin"));
	hcse_request_clear(&req);

	/* TS-0009 Table 6.2.2.1-1 path forms */
	assert_int_equal(parse(&f, "GET", "/~/id-in/cse-in/ae", NULL, &req, &err), 0);
	assert_string_equal(req.to, "/id-in/cse-in/ae");
	assert_int_equal(req.op, HCSE_OP_RETRIEVE);
	hcse_request_clear(&req);
	assert_int_equal(parse(&f, "GET", "/_/sp.example/id-in/cin1", NULL, &req, &err), 0);
	assert_string_equal(req.to, "//sp.example/id-in/cin1");
	hcse_request_clear(&req);
	assert_int_equal(parse(&f, "DELETE", "/cse-in/a%20b", NULL, &req, &err), 0);
	assert_string_equal(req.to, "cse-in/a b");
	assert_int_equal(req.op, HCSE_OP_DELETE);
	hcse_request_clear(&req);
	assert_int_equal(parse(&f, "GET", "/cse-in/a%00b", NULL, &req, &err), -EPROTO);
	assert_int_equal(err.rsc, 4000);
	hcse_response_clear(&err);

	/* filter criteria */
	struct fake q = f;
	memset(q.query, 0, sizeof(q.query));
	q.query[0][0] = "fu", q.query[0][1] = "1";
	q.query[1][0] = "ty", q.query[1][1] = "3+4";
	q.query[2][0] = "lbl", q.query[2][1] = "a";
	q.query[3][0] = "lbl", q.query[3][1] = "b";
	q.query[4][0] = "lim", q.query[4][1] = "5";
	q.query[5][0] = "cra", q.query[5][1] = "20260101T000000";
	q.query[6][0] = "unknown", q.query[6][1] = "ignored";
	assert_int_equal(parse(&q, "GET", "/cse-in", NULL, &req, &err), 0);
	assert_int_equal(req.fc.fu, 1);
	assert_int_equal(req.fc.n_tys, 2);
	assert_int_equal(req.fc.tys[1], 4);
	assert_int_equal(req.fc.n_labels, 2);
	assert_string_equal(req.fc.labels[1], "b");
	assert_int_equal(req.fc.lim, 5);
	assert_string_equal(req.fc.cra, "20260101T000000");
	hcse_request_clear(&req);
	q.query[4][1] = "-1";
	assert_int_equal(parse(&q, "GET", "/cse-in", NULL, &req, &err), -EPROTO);
	assert_int_equal(err.rsc, 4000);
	hcse_response_clear(&err);

	/* errors: no RI, bad media type, bad JSON, no ty -> Notify */
	struct fake e = f;
	e.headers[1][0] = "X-Other";
	assert_int_equal(parse(&e, "GET", "/cse-in", NULL, &req, &err), -EPROTO);
	assert_int_equal(err.rsc, 4000);
	hcse_response_clear(&err);
	e = f;
	e.headers[3][1] = "application/xml;ty=4";
	assert_int_equal(parse(&e, "POST", "/cse-in", "<x/>", &req, &err), -EPROTO);
	assert_int_equal(err.rsc, 4015);
	hcse_response_clear(&err);
	assert_int_equal(parse(&f, "POST", "/cse-in", "{\"m2m:cin\":", &req, &err), -EPROTO);
	assert_int_equal(err.rsc, 4000);
	hcse_response_clear(&err);
	e = f;
	e.headers[3][1] = "application/json";
	assert_int_equal(parse(&e, "POST", "/cse-in", "{}", &req, &err), 0);
	assert_int_equal(req.op, HCSE_OP_NOTIFY);
	hcse_request_clear(&req);
	assert_int_equal(parse(&f, "OPTIONS", "/cse-in", NULL, &req, &err), -EPROTO);
	assert_int_equal(err.rsc, 4005);
	hcse_response_clear(&err);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_split_con),
	    cmocka_unit_test(test_cnf),
	    cmocka_unit_test(test_time),
	    cmocka_unit_test(test_binding),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
