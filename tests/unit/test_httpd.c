/* SPDX-License-Identifier: Apache-2.0 */
/* The server glue against a real libcurl client: TCP, Unix socket, limits, mutual TLS. */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <cmocka.h>

#include <curl/curl.h>

#include "atrest/cleanup.h"
#include "atrest/httpd.h"

/* free() is wrapped (-Wl,--wrap=free) to see what a buffer holds when freed. */
void __real_free(void *p);
void __wrap_free(void *p);
static void *volatile watched;
static size_t watched_len;
static volatile int watched_wiped = -1;

void __wrap_free(void *p)
{
	if (p && p == watched) {
		const unsigned char *b = p;
		int wiped = 1;

		for (size_t i = 0; i < watched_len; i++)
			if (b[i])
				wiped = 0;
		watched_wiped = wiped;
		watched = NULL;
	}
	__real_free(p);
}

#define SECRET_BODY "{\"keyValue\":\"c2VjcmV0LWtleS1tYXRlcmlhbC0xMjM0NTY3ODkwYWJjZGVm\"}"

/* Echoes what the glue saw, so each test can check one aspect of it. */
static int echo_handler(void *userdata, const struct httpd_request *req,
			struct httpd_response *resp)
{
	const char *x = httpd_request_header(req, "X-Test");
	const char *q = httpd_request_query(req, "q");
	json_t *j;
	int r;

	(void)userdata;
	if (strcmp(req->path, "/secret") == 0) {
		char *body = strdup(SECRET_BODY);

		if (!body)
			return -ENOMEM;
		watched_len = strlen(body);
		watched = body;
		httpd_response_set_status(resp, 200);
		httpd_response_set_sensitive(resp);
		return httpd_response_set_body(resp, "application/json", body, strlen(body));
	}
	if (req->body_too_large) {
		httpd_response_set_status(resp, 413);
		return httpd_response_add_header(resp, "X-M2M-RSC", "5207");
	}
	j = json_pack("{s:s, s:s, s:s?, s:s?, s:I, s:b, s:I, s:s, s:s, s:b}", "method",
		      req->method, "path", req->path, "x", x, "q", q, "len",
		      (json_int_t)req->body_len, "unix", req->peer.is_unix, "uid",
		      (json_int_t)req->peer.uid, "addr", req->peer.addr, "cn", req->peer.cert_cn,
		      "tls", req->peer.is_tls);
	if (!j)
		return -ENOMEM;
	if (req->body)
		json_object_set_new(j, "body", json_string(req->body));
	httpd_response_set_status(resp, 200);
	httpd_response_add_header(resp, "X-M2M-RSC", "2000");
	r = httpd_response_set_json(resp, NULL, j);
	json_decref(j);
	return r;
}

struct reply {
	long status;
	char *body;
	size_t len;
	char rsc[16];
};

static size_t on_body(char *p, size_t size, size_t n, void *userdata)
{
	struct reply *rep = userdata;
	char *b = realloc(rep->body, rep->len + size * n + 1);

	assert_non_null(b);
	memcpy(b + rep->len, p, size * n);
	rep->len += size * n;
	b[rep->len] = '\0';
	rep->body = b;
	return size * n;
}

static size_t on_header(char *p, size_t size, size_t n, void *userdata)
{
	struct reply *rep = userdata;

	if (strncasecmp(p, "X-M2M-RSC:", 10) == 0)
		sscanf(p + 10, " %15s", rep->rsc);
	return size * n;
}

struct call {
	const char *url;
	const char *unix_path;
	const char *method;
	const char *body;
	size_t body_len;
	const char *cert, *key, *ca;
};

/* Returns the curl code; the reply is filled when the transfer happened. */
static CURLcode do_call(const struct call *c, struct reply *rep)
{
	CURL *curl = curl_easy_init();
	struct curl_slist *hdrs = curl_slist_append(NULL, "X-Test: hello");
	CURLcode cc;

	memset(rep, 0, sizeof(*rep));
	curl_easy_setopt(curl, CURLOPT_URL, c->url);
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, rep);
	curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(curl, CURLOPT_HEADERDATA, rep);
	curl_easy_setopt(curl, CURLOPT_TIMEOUT, 10L);
	if (c->unix_path)
		curl_easy_setopt(curl, CURLOPT_UNIX_SOCKET_PATH, c->unix_path);
	if (c->method)
		curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, c->method);
	if (c->body) {
		curl_easy_setopt(curl, CURLOPT_POSTFIELDS, c->body);
		curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)c->body_len);
	}
	if (c->ca) {
		curl_easy_setopt(curl, CURLOPT_CAINFO, c->ca);
		curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 0L);
	}
	if (c->cert) {
		curl_easy_setopt(curl, CURLOPT_SSLCERT, c->cert);
		curl_easy_setopt(curl, CURLOPT_SSLKEY, c->key);
	}
	cc = curl_easy_perform(curl);
	curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &rep->status);
	curl_slist_free_all(hdrs);
	curl_easy_cleanup(curl);
	return cc;
}

static json_t *reply_json(const struct reply *rep)
{
	json_t *j = json_loadb(rep->body, rep->len, 0, NULL);

	assert_non_null(j);
	return j;
}

static void test_tcp_echo(void **state)
{
	struct httpd_config cfg = { .listen = "127.0.0.1:0", .max_body = 1 << 20 };
	struct httpd *h = NULL;
	struct reply rep;
	char url[128];
	json_t *j;

	(void)state;
	assert_int_equal(httpd_start(&cfg, echo_handler, NULL, &h), 0);
	assert_true(httpd_port(h) > 0);
	snprintf(url, sizeof(url), "http://127.0.0.1:%u/cse-in/a%%20b?q=x%%2Fy&z", httpd_port(h));
	struct call c = { .url = url, .method = "POST", .body = "{\"a\":1}", .body_len = 7 };
	assert_int_equal(do_call(&c, &rep), CURLE_OK);
	assert_int_equal(rep.status, 200);
	assert_string_equal(rep.rsc, "2000");
	j = reply_json(&rep);
	assert_string_equal(json_string_value(json_object_get(j, "method")), "POST");
	assert_string_equal(json_string_value(json_object_get(j, "path")), "/cse-in/a b");
	assert_string_equal(json_string_value(json_object_get(j, "q")), "x/y");
	assert_string_equal(json_string_value(json_object_get(j, "x")), "hello");
	assert_string_equal(json_string_value(json_object_get(j, "body")), "{\"a\":1}");
	assert_string_equal(json_string_value(json_object_get(j, "addr")), "127.0.0.1");
	assert_false(json_is_true(json_object_get(j, "unix")));
	json_decref(j);
	free(rep.body);
	h = httpd_stop(h);
	assert_null(h);
}

static void test_body_limit(void **state)
{
	struct httpd_config cfg = { .listen = "127.0.0.1:0", .max_body = 1000 };
	struct httpd *h = NULL;
	struct reply rep;
	char url[128];
	char *big = malloc(5000);
	json_t *j;

	(void)state;
	memset(big, 'a', 5000);
	assert_int_equal(httpd_start(&cfg, echo_handler, NULL, &h), 0);
	snprintf(url, sizeof(url), "http://127.0.0.1:%u/x", httpd_port(h));

	/* Exactly at the limit is accepted, one byte more is refused. */
	struct call at = { .url = url, .method = "POST", .body = big, .body_len = 1000 };
	assert_int_equal(do_call(&at, &rep), CURLE_OK);
	assert_int_equal(rep.status, 200);
	j = reply_json(&rep);
	assert_int_equal(json_integer_value(json_object_get(j, "len")), 1000);
	json_decref(j);
	free(rep.body);

	struct call over = { .url = url, .method = "POST", .body = big, .body_len = 1001 };
	assert_int_equal(do_call(&over, &rep), CURLE_OK);
	assert_int_equal(rep.status, 413);
	assert_string_equal(rep.rsc, "5207");
	free(rep.body);

	/* The server still answers afterwards. */
	struct call again = { .url = url };
	assert_int_equal(do_call(&again, &rep), CURLE_OK);
	assert_int_equal(rep.status, 200);
	free(rep.body);
	httpd_stop(h);
	free(big);
}

static void test_unix_peercred(void **state)
{
	char dir[] = "/tmp/atrest-httpd-XXXXXX";
	char path[256];
	struct httpd *h = NULL, *h2 = NULL;
	struct reply rep;
	struct stat st;
	json_t *j;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/s.sock", dir);
	struct httpd_config cfg = { .unix_path = path, .unix_mode = 0660, .max_body = 4096 };
	assert_int_equal(httpd_start(&cfg, echo_handler, NULL, &h), 0);
	assert_int_equal(lstat(path, &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
	assert_int_equal(st.st_mode & 0777, 0660);

	/* A second server on a socket that answers is refused. */
	assert_int_equal(httpd_start(&cfg, echo_handler, NULL, &h2), -EADDRINUSE);

	struct call c = { .url = "http://localhost/keys/1", .unix_path = path };
	assert_int_equal(do_call(&c, &rep), CURLE_OK);
	assert_int_equal(rep.status, 200);
	j = reply_json(&rep);
	assert_true(json_is_true(json_object_get(j, "unix")));
	assert_int_equal(json_integer_value(json_object_get(j, "uid")), getuid());
	json_decref(j);
	free(rep.body);
	httpd_stop(h);
	assert_int_equal(lstat(path, &st), -1);

	/* A stale socket file left by a crash is replaced. */
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	memcpy(sa.sun_path, path, strlen(path) + 1);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	close(fd);
	assert_int_equal(httpd_start(&cfg, echo_handler, NULL, &h), 0);
	httpd_stop(h);

	/* A regular file in the way is never removed. */
	fd = open(path, O_CREAT | O_WRONLY, 0600);
	close(fd);
	assert_int_equal(httpd_start(&cfg, echo_handler, NULL, &h), -EEXIST);
	assert_int_equal(unlink(path), 0);
	rmdir(dir);
}

/* A body marked sensitive reaches the client intact and is zero when freed. */
static void test_sensitive_body_wiped(void **state)
{
	struct httpd_config cfg = { .listen = "127.0.0.1:0", .max_body = 4096 };
	struct httpd *h = NULL;
	struct reply rep;
	char url[128];

	(void)state;
	watched_wiped = -1;
	assert_int_equal(httpd_start(&cfg, echo_handler, NULL, &h), 0);
	snprintf(url, sizeof(url), "http://127.0.0.1:%u/secret", httpd_port(h));
	struct call c = { .url = url };
	assert_int_equal(do_call(&c, &rep), CURLE_OK);
	assert_int_equal(rep.status, 200);
	assert_string_equal(rep.body, SECRET_BODY);
	free(rep.body);
	/* libmicrohttpd releases the response once the connection is done with it */
	httpd_stop(h);
	assert_int_equal(watched_wiped, 1);
}

static void test_bad_config(void **state)
{
	struct httpd *h = NULL;
	struct httpd_config both = { .listen = "127.0.0.1:0", .unix_path = "/tmp/x" };
	struct httpd_config none = { 0 };
	struct httpd_config badport = { .listen = "127.0.0.1:http" };
	struct httpd_config noport = { .listen = "127.0.0.1" };

	(void)state;
	assert_int_equal(httpd_start(&both, echo_handler, NULL, &h), -EINVAL);
	assert_int_equal(httpd_start(&none, echo_handler, NULL, &h), -EINVAL);
	assert_int_equal(httpd_start(&badport, echo_handler, NULL, &h), -EINVAL);
	assert_int_equal(httpd_start(&noport, echo_handler, NULL, &h), -EINVAL);
	assert_null(h);
}

static char tls_dir[] = "/tmp/atrest-tls-XXXXXX";

static int make_pki(void **state)
{
	char cmd[4096];

	(void)state;
	if (!mkdtemp(tls_dir))
		return -1;
	/* A CA, a server certificate, a client it signed and one it did not. */
	snprintf(cmd, sizeof(cmd),
		 "set -e; cd %s; "
		 "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
		 "-keyout ca.key -out ca.pem -subj /CN=test-ca -days 2 2>/dev/null; "
		 "for n in server Creader; do "
		 "openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout $n.key "
		 "-out $n.csr -subj /CN=$n 2>/dev/null; "
		 "openssl x509 -req -in $n.csr -CA ca.pem -CAkey ca.key -CAcreateserial "
		 "-out $n.pem -days 2 2>/dev/null; done; "
		 "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
		 "-keyout rogue.key -out rogue.pem -subj /CN=Creader -days 2 2>/dev/null",
		 tls_dir);
	return system(cmd) == 0 ? 0 : -1;
}

static int remove_pki(void **state)
{
	char cmd[256];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", tls_dir);
	return system(cmd) == 0 ? 0 : -1;
}

static void test_mutual_tls(void **state)
{
	char cert[300], key[300], ca[300], ccert[300], ckey[300], rcert[300], rkey[300];
	char url[128];
	struct httpd *h = NULL;
	struct reply rep;
	json_t *j;

	(void)state;
	snprintf(cert, sizeof(cert), "%s/server.pem", tls_dir);
	snprintf(key, sizeof(key), "%s/server.key", tls_dir);
	snprintf(ca, sizeof(ca), "%s/ca.pem", tls_dir);
	snprintf(ccert, sizeof(ccert), "%s/Creader.pem", tls_dir);
	snprintf(ckey, sizeof(ckey), "%s/Creader.key", tls_dir);
	snprintf(rcert, sizeof(rcert), "%s/rogue.pem", tls_dir);
	snprintf(rkey, sizeof(rkey), "%s/rogue.key", tls_dir);

	struct httpd_config cfg = { .listen = "127.0.0.1:0", .tls_cert = cert, .tls_key = key,
				    .tls_ca = ca, .max_body = 4096 };
	assert_int_equal(httpd_start(&cfg, echo_handler, NULL, &h), 0);
	snprintf(url, sizeof(url), "https://127.0.0.1:%u/keys", httpd_port(h));

	struct call good = { .url = url, .ca = ca, .cert = ccert, .key = ckey };
	assert_int_equal(do_call(&good, &rep), CURLE_OK);
	assert_int_equal(rep.status, 200);
	j = reply_json(&rep);
	assert_true(json_is_true(json_object_get(j, "tls")));
	assert_string_equal(json_string_value(json_object_get(j, "cn")), "Creader");
	json_decref(j);
	free(rep.body);

	/* No certificate: not served; the handler never runs. */
	struct call anon = { .url = url, .ca = ca };
	CURLcode cc = do_call(&anon, &rep);
	assert_true(cc != CURLE_OK || rep.status == 403);
	if (cc == CURLE_OK)
		assert_string_equal(rep.rsc, "4106");
	free(rep.body);

	/* A self-signed certificate with the same CN: not served either. */
	struct call rogue = { .url = url, .ca = ca, .cert = rcert, .key = rkey };
	cc = do_call(&rogue, &rep);
	assert_true(cc != CURLE_OK || rep.status == 403);
	free(rep.body);
	httpd_stop(h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tcp_echo),     cmocka_unit_test(test_body_limit),
		cmocka_unit_test(test_unix_peercred), cmocka_unit_test(test_bad_config),
		cmocka_unit_test(test_sensitive_body_wiped),
		cmocka_unit_test(test_mutual_tls),
	};
	int r;

	curl_global_init(CURL_GLOBAL_DEFAULT);
	r = cmocka_run_group_tests(tests, make_pki, remove_pki);
	curl_global_cleanup();
	return r;
}
