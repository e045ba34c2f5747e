/* SPDX-License-Identifier: Apache-2.0 */
/* HTTP/1.1 client plumbing over libcurl: pooled handles, transport options, response bodies. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>
#include <sodium.h>

#include "atrest/cleanup.h"
#include "atrest/http_client.h"
#include "atrest/log.h"
#include "atrest/outage.h"
#include "atrest/secure_scratch.h"

struct http_client {
	char *base;
	char *unix_path;
	char *protocols;
	char *cert, *key, *ca;
	long connect_timeout_ms, timeout_ms;
	size_t pool_max, response_max;
	char *log_name;
	struct outage *outage; /* borrowed, or NULL */
	pthread_mutex_t lock;
	CURL *pool[HTTP_CLIENT_POOL_MAX];
	size_t n_pool;
};

static void global_init(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
	if (sodium_init() < 0)
		abort();
}

static int strdup_opt(const char *s, char **ret)
{
	*ret = NULL;
	if (!s)
		return 0;
	*ret = strdup(s);
	return *ret ? 0 : -ENOMEM;
}

int http_client_new(const struct http_client_options *o, struct http_client **ret)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	struct http_client *c;
	const char *scheme_end;
	size_t n, min;

	if (!o || !o->base || !o->protocols)
		return -EINVAL;
	pthread_once(&once, global_init);
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	pthread_mutex_init(&c->lock, NULL);
	if (strdup_opt(o->base, &c->base) < 0 || strdup_opt(o->unix_path, &c->unix_path) < 0 ||
	    strdup_opt(o->protocols, &c->protocols) < 0 || strdup_opt(o->cert, &c->cert) < 0 ||
	    strdup_opt(o->key, &c->key) < 0 || strdup_opt(o->ca, &c->ca) < 0 ||
	    strdup_opt(o->log_name ? o->log_name : "http client", &c->log_name) < 0) {
		http_client_free(c);
		return -ENOMEM;
	}
	/* "https://" alone keeps its slashes */
	scheme_end = strstr(c->base, "://");
	min = scheme_end ? (size_t)(scheme_end - c->base) + 3 : 0;
	n = strlen(c->base);
	while (n > min && c->base[n - 1] == '/')
		c->base[--n] = '\0';
	c->connect_timeout_ms = o->connect_timeout_ms;
	c->timeout_ms = o->timeout_ms;
	c->pool_max = o->pool_max < HTTP_CLIENT_POOL_MAX ? o->pool_max : HTTP_CLIENT_POOL_MAX;
	c->response_max = o->response_max;
	*ret = c;
	return 0;
}

struct http_client *http_client_free(struct http_client *c)
{
	if (!c)
		return NULL;
	for (size_t i = 0; i < c->n_pool; i++)
		curl_easy_cleanup(c->pool[i]);
	pthread_mutex_destroy(&c->lock);
	free(c->base);
	free(c->unix_path);
	free(c->protocols);
	free(c->cert);
	free(c->key);
	free(c->ca);
	free(c->log_name);
	free(c);
	return NULL;
}

const char *http_client_base(const struct http_client *c)
{
	return c->base;
}

bool http_client_is_unix(const struct http_client *c)
{
	return c->unix_path != NULL;
}

int http_client_header(struct curl_slist **list, const char *line)
{
	struct curl_slist *l = curl_slist_append(*list, line);

	if (!l)
		return -ENOMEM;
	*list = l;
	return 0;
}

/* Borrows a handle (keeping its connection alive across calls) or makes one. */
static CURL *handle_get(struct http_client *c)
{
	CURL *h = NULL;

	pthread_mutex_lock(&c->lock);
	if (c->n_pool > 0)
		h = c->pool[--c->n_pool];
	pthread_mutex_unlock(&c->lock);
	if (h) {
		curl_easy_reset(h);
		return h;
	}
	return curl_easy_init();
}

static void handle_put(struct http_client *c, CURL *h)
{
	pthread_mutex_lock(&c->lock);
	if (c->n_pool < c->pool_max) {
		c->pool[c->n_pool++] = h;
		h = NULL;
	}
	pthread_mutex_unlock(&c->lock);
	if (h)
		curl_easy_cleanup(h);
}

static void body_release(struct http_client_response *r)
{
	if (r->scratch)
		sodium_memzero(r->data, r->cap);
	else if (r->secret)
		sodium_free(r->data);
	else
		free(r->data);
}

void http_client_response_done(struct http_client_response *r)
{
	body_release(r);
	r->data = NULL;
	r->len = 0;
	r->cap = 0;
	r->scratch = false;
}

/* Room for `extra` more bytes and a NUL; a secret body never leaves secure memory. */
static bool body_reserve(struct http_client_response *r, size_t extra)
{
	size_t cap;
	char *d;

	if (r->len + extra + 1 <= r->cap)
		return true;
	if (r->len + extra + 1 > r->max) {
		r->too_large = true;
		return false;
	}
	if (!r->secret) {
		/* doubling: a megabyte body arrives in 16 KiB pieces, and growing
		 * by each piece moved and faulted it in again and again */
		cap = r->cap ? r->cap : 4096;
		while (cap < r->len + extra + 1)
			cap *= 2;
		if (cap > r->max)
			cap = r->len + extra + 1; /* <= max, checked above */
		d = realloc(r->data, cap);
		if (!d)
			return false;
		r->data = d;
		r->cap = cap;
		return true;
	}
	/* most answers fit this thread's scratch page: no page mapped per call */
	if (!r->data && r->len + extra + 1 <= SECURE_SCRATCH_SIZE && (d = secure_scratch())) {
		r->data = d;
		r->cap = SECURE_SCRATCH_SIZE;
		r->scratch = true;
		return true;
	}
	cap = r->cap ? r->cap : 1024;
	while (cap < r->len + extra + 1)
		cap *= 2;
	d = sodium_malloc(cap);
	if (!d)
		return false;
	if (r->data)
		memcpy(d, r->data, r->len);
	d[r->len] = '\0';
	body_release(r);
	r->data = d;
	r->cap = cap;
	r->scratch = false;
	return true;
}

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	struct http_client_response *r = userdata;
	size_t n = size * nmemb;

	if (!body_reserve(r, n))
		return 0;
	memcpy(r->data + r->len, ptr, n);
	r->len += n;
	r->data[r->len] = '\0';
	return n;
}

/* TS-0009 6.4.1: the response status code travels in X-M2M-RSC. */
static size_t on_header(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	static const char name[] = "X-M2M-RSC:";
	struct http_client_response *r = userdata;
	size_t n = size * nmemb;

	if (n > sizeof(name) - 1 && strncasecmp(ptr, name, sizeof(name) - 1) == 0) {
		char tmp[32];
		size_t l = n - (sizeof(name) - 1);

		if (l >= sizeof(tmp))
			l = sizeof(tmp) - 1;
		memcpy(tmp, ptr + sizeof(name) - 1, l);
		tmp[l] = '\0';
		r->rsc = (int)strtol(tmp, NULL, 10);
	}
	return n;
}

void http_client_set_outage(struct http_client *c, struct outage *o)
{
	c->outage = o;
}

/* Tells the attached outage whether the peer answered; a peer that answers an
 * error still answers, so only transport failures count (issue 6 section 4). */
static void note_reachability(struct http_client *c, CURL *h, CURLcode cc,
			      const struct http_client_request *req)
{
	char what[160];
	long os_errno = 0;
	curl_off_t waited_us = 0;

	if (!c->outage)
		return;
	switch (cc) {
	case CURLE_COULDNT_CONNECT:
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_OPERATION_TIMEDOUT:
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_SEND_ERROR:
	case CURLE_GOT_NOTHING:
		break;
	case CURLE_OK:
		outage_reachable(c->outage);
		return;
	default:
		return; /* ours (memory, a body too large), not the peer's */
	}
	curl_easy_getinfo(h, CURLINFO_OS_ERRNO, &os_errno);
	curl_easy_getinfo(h, CURLINFO_TOTAL_TIME_T, &waited_us);
	snprintf(what, sizeof(what), "%s %s%s%s", req->method, req->slash ? "/" : "", req->path,
		 req->query ? "?..." : "");
	outage_unreachable(c->outage, cc == CURLE_OPERATION_TIMEDOUT ? -ETIMEDOUT : -(int)os_errno,
			   curl_easy_strerror(cc), what,
			   waited_us > 0 ? (uint64_t)waited_us / 1000 : 0);
}

CURLcode http_client_perform(struct http_client *c, const struct http_client_request *req,
			     struct http_client_response *resp)
{
	_cleanup_free_ char *url = NULL;
	bool slash = req->slash && *req->path;
	CURLcode cc;
	CURL *h;

	resp->data = NULL;
	resp->len = 0;
	resp->cap = 0;
	resp->scratch = false;
	resp->http = 0;
	resp->rsc = 0;
	resp->too_large = false;
	if (resp->max == 0)
		resp->max = c->response_max;
	if (asprintf(&url, "%s%s%s%s%s", c->base, slash ? "/" : "", req->path,
		     req->query ? "?" : "", req->query ? req->query : "") < 0) {
		url = NULL;
		return CURLE_OUT_OF_MEMORY;
	}
	h = handle_get(c);
	if (!h)
		return CURLE_OUT_OF_MEMORY;
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, req->method);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, req->headers);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, c->connect_timeout_ms);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, c->timeout_ms);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, resp);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, resp);
	if (strcmp(req->method, "GET") == 0)
		curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
	if (req->body) {
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, req->body);
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(req->body));
	}
	/* never follow the URL anywhere else: neither tefd nor a CSE redirects */
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, c->protocols);
	if (c->unix_path)
		curl_easy_setopt(h, CURLOPT_UNIX_SOCKET_PATH, c->unix_path);
	if (c->cert)
		curl_easy_setopt(h, CURLOPT_SSLCERT, c->cert);
	if (c->key)
		curl_easy_setopt(h, CURLOPT_SSLKEY, c->key);
	if (c->ca)
		curl_easy_setopt(h, CURLOPT_CAINFO, c->ca);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
	cc = curl_easy_perform(h);
	if (cc == CURLE_OK)
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &resp->http);
	else
		log_debug("%s: %s %s: %s", c->log_name, req->method, url, curl_easy_strerror(cc));
	note_reachability(c, h, cc, req);
	/* the handle is reset before its next use, so the headers may go */
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
	/* a handle whose transfer failed may hold a broken connection: drop it */
	if (cc == CURLE_OK)
		handle_put(c, h);
	else
		curl_easy_cleanup(h);
	if (cc != CURLE_OK)
		http_client_response_done(resp);
	return cc;
}
