/* SPDX-License-Identifier: Apache-2.0 */
/* The outage state machine: one line when a peer stops answering, one when it answers again, counts
 * between. */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "atrest/http_client.h"
#include "atrest/log.h"
#include "atrest/outage.h"

static FILE *captured;

/* Sends this process's log lines (stderr) to a temporary file. */
static int capture(void **state)
{
	(void)state;
	captured = tmpfile();
	if (!captured)
		return -1;
	fflush(stderr);
	if (dup2(fileno(captured), STDERR_FILENO) < 0)
		return -1;
	log_open("test_outage", LOG_TARGET_STDERR);
	return 0;
}

/* Lines logged so far containing `needle`. */
static int count_lines(const char *needle)
{
	char line[1024];
	int n = 0;

	fflush(stderr);
	rewind(captured);
	while (fgets(line, sizeof(line), captured))
		if (strstr(line, needle))
			n++;
	fseek(captured, 0, SEEK_END);
	return n;
}

static size_t calls;
static size_t three_queued(void *arg)
{
	(void)arg;
	calls++;
	return 3;
}

static void test_one_line_each_way(void **state)
{
	struct outage *o = NULL;
	int down0 = count_lines("is unreachable"), up0 = count_lines("answers again");

	(void)state;
	assert_int_equal(outage_new("tefd", "/run/t.sock", &o), 0);
	outage_set_pending(o, three_queued, NULL, "files queued for upload");
	outage_reachable(o); /* answers while up: nothing to say */
	assert_false(outage_is_down(o));
	assert_false(outage_note_failed(o)); /* not an outage's failure */
	for (int i = 0; i < 500; i++)
		outage_unreachable(o, -ECONNREFUSED, "Couldn't connect", "GET /keys/x", 0);
	assert_true(outage_is_down(o));
	assert_true(outage_note_failed(o));
	assert_false(outage_note_failed(o));
	assert_int_equal(count_lines("tefd at '/run/t.sock' is unreachable: Connection refused "
				     "(GET /keys/x: Couldn't connect)") -
			     down0,
			 1);
	assert_int_equal(count_lines("answers again") - up0, 0);
	assert_int_equal(calls, 0);
	outage_reachable(o);
	outage_reachable(o);
	assert_false(outage_is_down(o));
	assert_int_equal(calls, 1);
	assert_int_equal(
	    count_lines("tefd at '/run/t.sock' answers again after 0.0 s down: 500 requests "
			"and 2 operations failed meanwhile; 3 files queued for upload") -
		up0,
	    1);
	assert_int_equal(count_lines("is unreachable") - down0, 1);
	/* the next outage is a new line, with its own counts */
	outage_unreachable(o, 0, NULL, NULL, 0);
	assert_int_equal(count_lines("tefd at '/run/t.sock' is unreachable: no answer;") - down0,
			 1);
	outage_reachable(o);
	assert_int_equal(count_lines("down: 1 request and 0 operations failed") - up0, 1);
	/* a request that waited 2 s for a timeout met the outage 2 s ago */
	outage_unreachable(o, -ETIMEDOUT, "Timeout was reached", "GET /keys/y", 2000);
	outage_reachable(o);
	assert_int_equal(count_lines("answers again after 2.0 s down: 1 request and") - up0, 1);
	assert_int_equal(outage_count(o), 3);
	outage_free(o);
	assert_null(outage_free(NULL));
}

/* http_client reports a peer that does not answer, once, with the request. */
static void test_http_client_reports(void **state)
{
	struct http_client *c = NULL;
	struct outage *o = NULL;
	struct http_client_response ans = {0};
	int down0 = count_lines("is unreachable");

	(void)state;
	assert_int_equal(outage_new("hcsed", "/nonexistent/x.sock", &o), 0);
	assert_int_equal(
	    http_client_new(&(struct http_client_options){.base = "http://x",
							  .unix_path = "/nonexistent/x.sock",
							  .protocols = "http",
							  .connect_timeout_ms = 1000,
							  .timeout_ms = 1000},
			    &c),
	    0);
	http_client_set_outage(c, o);
	for (int i = 0; i < 3; i++) {
		assert_int_not_equal(
		    http_client_perform(c,
					&(struct http_client_request){
					    .method = "GET", .path = "cse-in", .slash = true},
					&ans),
		    CURLE_OK);
		http_client_response_done(&ans);
	}
	assert_true(outage_is_down(o));
	assert_int_equal(
	    count_lines("hcsed at '/nonexistent/x.sock' is unreachable: No such file or "
			"directory (GET /cse-in: "),
	    1);
	assert_int_equal(count_lines("is unreachable") - down0, 1);
	http_client_free(c);
	outage_free(o);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_one_line_each_way),
	    cmocka_unit_test(test_http_client_reports),
	};
	int r = cmocka_run_group_tests(tests, capture, NULL);
	char line[1024];

	/* what was logged, for whoever reads a failure */
	rewind(captured);
	while (fgets(line, sizeof(line), captured))
		fputs(line, stdout);
	return r;
}
