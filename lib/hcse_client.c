/* SPDX-License-Identifier: Apache-2.0 */
/* oneM2M HTTP binding client over libcurl: create, retrieve, update, delete, discovery. */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

/* before jansson.h: jansson >= 2.14 defines json_decrefp itself */
#include "atrest/cleanup.h"
#include <jansson.h>
#ifndef _cleanup_json_
#define _cleanup_json_ _cleanup_(json_decrefp)
#endif

#include "atrest/hcse_client.h"
#include "atrest/http_client.h"
#include "atrest/json_strv.h"
#include "atrest/log.h"
#include "atrest/rsc.h"

#define HCSE_MAX_RESPONSE (64u * 1024 * 1024)

struct hcse_client {
	struct http_client *http;
	char *cse_rn; /* last segment of base: strips SP-relative uril entries */
	char *origin;
	pthread_mutex_t lock; /* origin */
	atomic_uint_fast64_t ri;
};

int hcse_errno(int rsc)
{
	if (rsc == RSC_CONFLICT || rsc == RSC_ALREADY_EXISTS)
		return -EEXIST;
	return errno_from_rsc(rsc);
}

int hcse_client_new(const char *base_url, const char *origin, const struct hcse_tls *tls,
		    unsigned timeout_ms, struct hcse_client **ret)
{
	struct hcse_client *c;
	const char *base, *slash;
	int r;

	if (!base_url || !origin)
		return -EINVAL;
	if (strncmp(base_url, "http://", 7) != 0 && strncmp(base_url, "https://", 8) != 0)
		return -EINVAL;
	if (!timeout_ms)
		timeout_ms = 10000;

	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	pthread_mutex_init(&c->lock, NULL);
	r = http_client_new(
	    &(struct http_client_options){
		.base = base_url,
		.protocols = "http,https",
		.cert = tls ? tls->cert : NULL,
		.key = tls ? tls->key : NULL,
		.ca = tls ? tls->ca : NULL,
		.connect_timeout_ms = timeout_ms < 3000 ? timeout_ms : 3000,
		.timeout_ms = timeout_ms,
		.pool_max = HCSE_CLIENT_CONNECTIONS,
		.response_max = HCSE_MAX_RESPONSE + 1,
		.log_name = "hcse",
	    },
	    &c->http);
	if (r < 0) {
		hcse_client_free(c);
		return r;
	}
	base = http_client_base(c->http);
	slash = strrchr(base, '/');
	/* "http://host:port" alone has no CSE name: slash is the one of "//" */
	if (!slash || slash[-1] == '/' || slash[1] == '\0') {
		hcse_client_free(c);
		return -EINVAL;
	}
	c->origin = strdup(origin);
	c->cse_rn = strdup(slash + 1);
	if (!c->origin || !c->cse_rn) {
		hcse_client_free(c);
		return -ENOMEM;
	}
	*ret = c;
	return 0;
}

struct hcse_client *hcse_client_free(struct hcse_client *c)
{
	if (!c)
		return NULL;
	http_client_free(c->http);
	pthread_mutex_destroy(&c->lock);
	free(c->cse_rn);
	free(c->origin);
	free(c);
	return NULL;
}

void hcse_client_set_outage(struct hcse_client *c, struct outage *o)
{
	http_client_set_outage(c->http, o);
}

int hcse_client_set_origin(struct hcse_client *c, const char *origin)
{
	char *o = strdup(origin);

	if (!o)
		return -ENOMEM;
	pthread_mutex_lock(&c->lock);
	free(c->origin);
	c->origin = o;
	pthread_mutex_unlock(&c->lock);
	return 0;
}

/* Transport failures, translated once (STYLE.md, Errors). */
static int errno_from_curl(CURLcode cc)
{
	switch (cc) {
	case CURLE_OK:
		return 0;
	case CURLE_COULDNT_CONNECT:
		return -ECONNREFUSED;
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
		return -EHOSTUNREACH;
	case CURLE_OPERATION_TIMEDOUT:
		return -ETIMEDOUT;
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING:
		return -ECONNRESET;
	case CURLE_OUT_OF_MEMORY:
		return -ENOMEM;
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CERTPROBLEM:
		return -EACCES;
	case CURLE_WRITE_ERROR:
		return -EFBIG;
	default:
		return -EIO;
	}
}

/* HTTP status -> errno when a response carried no X-M2M-RSC. */
static int errno_from_http(long status)
{
	if (status >= 200 && status < 300)
		return 0;
	switch (status) {
	case 400:
		return -EINVAL;
	case 403:
		return -EACCES;
	case 404:
		return -ENOENT;
	case 409:
		return -EEXIST;
	default:
		return -EIO;
	}
}

/*
 * One request: method on base/path?query with an optional JSON body of
 * resource type ty. Fills *r (release with http_client_response_done);
 * returns 0 or -errno.
 */
static int request(struct hcse_client *c, const char *method, const char *path, const char *query,
		   int ty, const char *body, struct http_client_response *r)
{
	_cleanup_free_ char *origin_hdr = NULL;
	_cleanup_curl_slist_ struct curl_slist *hdrs = NULL;
	char ri_hdr[64], ct_hdr[64];
	CURLcode cc;
	int n;

	memset(r, 0, sizeof(*r));
	pthread_mutex_lock(&c->lock);
	n = asprintf(&origin_hdr, "X-M2M-Origin: %s", c->origin);
	pthread_mutex_unlock(&c->lock);
	if (n < 0) {
		origin_hdr = NULL;
		return -ENOMEM;
	}
	snprintf(ri_hdr, sizeof(ri_hdr), "X-M2M-RI: atrest-%" PRIuFAST64,
		 atomic_fetch_add(&c->ri, 1));
	if (ty > 0)
		snprintf(ct_hdr, sizeof(ct_hdr), "Content-Type: application/json;ty=%d", ty);
	else
		snprintf(ct_hdr, sizeof(ct_hdr), "Content-Type: application/json");

	const char *lines[] = { origin_hdr, ri_hdr, "X-M2M-RVI: 3", "Accept: application/json",
				ct_hdr, "Expect:" };
	for (size_t i = 0; i < ELEMENTSOF(lines); i++) {
		if (i == 4 && !body)
			continue;
		if (http_client_header(&hdrs, lines[i]) < 0)
			return -ENOMEM;
	}

	cc = http_client_perform(c->http,
				 &(struct http_client_request){
				     .method = method,
				     .path = path,
				     .slash = true,
				     .query = query,
				     .headers = hdrs,
				     .body = body,
				 },
				 r);
	if (cc == CURLE_WRITE_ERROR)
		return r->too_large ? -EFBIG : -ENOMEM;
	return errno_from_curl(cc);
}

/* The errno a reply stands for: its RSC, else its HTTP status. */
static int reply_errno(const struct http_client_response *r, int *ret_rsc)
{
	if (ret_rsc)
		*ret_rsc = r->rsc;
	if (r->rsc)
		return hcse_errno(r->rsc);
	return errno_from_http(r->http);
}

/*
 * Performs a request with a text body (may be NULL); on success *ret_raw
 * (if asked) takes the response body (malloc'd, NUL-terminated, may be NULL).
 */
static int call_text(struct hcse_client *c, const char *method, const char *path,
		     const char *query, int ty, const char *text, char **ret_raw, size_t *ret_len,
		     int *ret_rsc)
{
	struct http_client_response r;
	int e;

	if (ret_rsc)
		*ret_rsc = 0;
	e = request(c, method, path, query, ty, text, &r);
	if (e < 0)
		return e;
	e = reply_errno(&r, ret_rsc);
	if (e == 0 && ret_raw) {
		*ret_raw = r.data;
		*ret_len = r.len;
		r.data = NULL;
	}
	http_client_response_done(&r);
	return e;
}

/* Performs a request, returns the translated result; *ret_json gets the parsed body if asked. */
static int call(struct hcse_client *c, const char *method, const char *path, const char *query,
		int ty, json_t *body, json_t **ret_json, int *ret_rsc)
{
	_cleanup_free_ char *text = NULL;
	struct http_client_response r;
	int e;

	if (ret_rsc)
		*ret_rsc = 0;
	if (body) {
		text = json_dumps(body, JSON_COMPACT);
		if (!text)
			return -ENOMEM;
	}
	e = request(c, method, path, query, ty, text, &r);
	if (e < 0)
		return e;
	e = reply_errno(&r, ret_rsc);
	if (e == 0 && ret_json) {
		json_error_t jerr;
		json_t *j = r.data ? json_loadb(r.data, r.len, 0, &jerr) : NULL;

		if (!j) {
			http_client_response_done(&r);
			return -EBADMSG;
		}
		*ret_json = j;
	}
	http_client_response_done(&r);
	return e;
}

/* Wraps `inner` (stolen) as {"m2m:<short>": inner}. */
static json_t *wrap(const char *short_name, json_t *inner)
{
	char key[32];
	json_t *o;

	if (!inner)
		return NULL;
	snprintf(key, sizeof(key), "m2m:%s", short_name);
	o = json_object();
	if (!o || json_object_set_new(o, key, inner) < 0) {
		json_decref(o);
		return NULL;
	}
	return o;
}

int hcse_create_ae(struct hcse_client *c, const char *rn, const char *api, char **ret_aei,
		   int *ret_rsc)
{
	_cleanup_json_ json_t *body = NULL, *resp = NULL;
	int r;

	/* TS-0004 7.4.5.2.1: rn, api and rr are mandatory at AE creation */
	body = wrap("ae", json_pack("{s:s, s:s, s:b, s:[s]}", "rn", rn, "api", api, "rr", 0,
				    "srv", "3"));
	if (!body)
		return -ENOMEM;
	r = call(c, "POST", "", NULL, 2, body, ret_aei ? &resp : NULL, ret_rsc);
	if (r < 0)
		return r;
	if (ret_aei) {
		json_t *ae = json_object_get(resp, "m2m:ae");
		const char *aei = json_string_value(json_object_get(ae, "aei"));

		*ret_aei = aei ? strdup(aei) : NULL;
		if (aei && !*ret_aei)
			return -ENOMEM;
	}
	return 0;
}

int hcse_create_container(struct hcse_client *c, const char *parent, const char *rn,
			  const char *const *labels, size_t n_labels, int *ret_rsc)
{
	_cleanup_json_ json_t *body = NULL;
	json_t *inner;

	inner = json_pack("{s:s}", "rn", rn);
	if (inner && n_labels > 0 &&
	    json_object_set_new(inner, "lbl", json_strv_new(labels, n_labels)) < 0) {
		json_decref(inner);
		return -ENOMEM;
	}
	body = wrap("cnt", inner);
	if (!body)
		return -ENOMEM;
	return call(c, "POST", parent, NULL, 3, body, NULL, ret_rsc);
}

static const char *short_name_of(int ty)
{
	switch (ty) {
	case 1:
		return "acp";
	case 2:
		return "ae";
	case 3:
		return "cnt";
	case 4:
		return "cin";
	default:
		return NULL;
	}
}

int hcse_update_labels(struct hcse_client *c, const char *path, int ty, const char *const *labels,
		       size_t n_labels, int *ret_rsc)
{
	_cleanup_json_ json_t *body = NULL;
	const char *sn = short_name_of(ty);
	json_t *inner;

	if (!sn)
		return -EINVAL;
	inner = json_object();
	if (inner && json_object_set_new(inner, "lbl", json_strv_new(labels, n_labels)) < 0) {
		json_decref(inner);
		return -ENOMEM;
	}
	body = wrap(sn, inner);
	if (!body)
		return -ENOMEM;
	return call(c, "PUT", path, NULL, 0, body, NULL, ret_rsc);
}

/* True for text JSON carries verbatim in a string: compact JOSE and base64 are. */
static bool is_plain_json_text(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (ch < 0x20 || ch >= 0x7f || ch == '"' || ch == '\\')
			return false;
	}
	return true;
}

/* Where `"con":""` sits in a compact dump: the position of its closing quote. */
static const char *find_empty_con(const char *text)
{
	const char *p = strstr(text, "\"con\":\"\"");

	return p ? p + 7 : NULL;
}

int hcse_create_cin(struct hcse_client *c, const char *parent, const char *rn, const char *cnf,
		    const char *con, size_t con_len, const char *const *labels, size_t n_labels,
		    int *ret_rsc)
{
	_cleanup_json_ json_t *body = NULL;
	_cleanup_free_ char *text = NULL, *full = NULL;
	bool splice = is_plain_json_text(con, con_len);
	const char *at;
	json_t *inner;

	inner = json_object();
	if (!inner)
		return -ENOMEM;
	/* a segment is a megabyte of base64url: serialised around, not through, jansson */
	if ((rn && json_object_set_new(inner, "rn", json_string(rn)) < 0) ||
	    (cnf && json_object_set_new(inner, "cnf", json_string(cnf)) < 0) ||
	    json_object_set_new(inner, "con", splice ? json_string("") : json_stringn(con, con_len)) < 0 ||
	    (n_labels > 0 && json_object_set_new(inner, "lbl", json_strv_new(labels, n_labels)) < 0)) {
		json_decref(inner);
		return -ENOMEM;
	}
	body = wrap("cin", inner);
	if (!body)
		return -ENOMEM;
	text = json_dumps(body, JSON_COMPACT);
	if (!text)
		return -ENOMEM;
	if (splice) {
		size_t tl = strlen(text), head;

		at = find_empty_con(text);
		if (!at)
			return -EINVAL;
		head = (size_t)(at - text);
		full = malloc(tl + con_len + 1);
		if (!full)
			return -ENOMEM;
		memcpy(full, text, head);
		memcpy(full + head, con, con_len);
		memcpy(full + head + con_len, at, tl - head + 1);
	}
	return call_text(c, "POST", parent, NULL, 4, full ? full : text, NULL, NULL, ret_rsc);
}

int hcse_retrieve(struct hcse_client *c, const char *path, json_t **ret, int *ret_ty, int *ret_rsc)
{
	_cleanup_json_ json_t *resp = NULL;
	const char *key;
	json_t *value;
	int r;

	r = call(c, "GET", path, NULL, 0, NULL, &resp, ret_rsc);
	if (r < 0)
		return r;
	if (!json_is_object(resp) || json_object_size(resp) != 1)
		return -EBADMSG;
	json_object_foreach(resp, key, value) {
		if (strncmp(key, "m2m:", 4) != 0 || !json_is_object(value))
			return -EBADMSG;
		if (ret_ty) {
			json_t *ty = json_object_get(value, "ty");
			*ret_ty = json_is_integer(ty) ? (int)json_integer_value(ty) : 0;
		}
		*ret = json_incref(value);
	}
	return 0;
}

/* The m2m:cin object of a retrieve response's JSON text, or NULL. */
static json_t *cin_of(const char *text, size_t len, json_t **ret_resp)
{
	json_t *resp = json_loadb(text, len, 0, NULL), *cin = NULL, *v;
	const char *key;

	if (!json_is_object(resp) || json_object_size(resp) != 1) {
		json_decref(resp);
		return NULL;
	}
	json_object_foreach(resp, key, v)
		if (strcmp(key, "m2m:cin") == 0)
			cin = v;
	if (!json_is_object(cin)) {
		json_decref(resp);
		return NULL;
	}
	*ret_resp = resp;
	return cin;
}

int hcse_retrieve_cin(struct hcse_client *c, const char *path, char **ret_con, size_t *ret_len,
		      char **ret_cnf, int *ret_rsc)
{
	_cleanup_free_ char *raw = NULL, *rest = NULL, *con = NULL, *cnf = NULL;
	_cleanup_json_ json_t *resp = NULL;
	json_t *cin = NULL, *jcon, *jcnf;
	const char *p, *q;
	size_t len = 0, con_len = 0, con_start = 0;
	int r;

	r = call_text(c, "GET", path, NULL, 0, NULL, &raw, &len, ret_rsc);
	if (r < 0)
		return r;
	if (!raw)
		return -EBADMSG;
	/*
	 * The con of a sealed object is a megabyte of base64url: jansson would
	 * copy it character by character, twice. `"con":"` outside a string can
	 * only be a member name (quotes inside strings are escaped), so the first
	 * one is cut out of the text (found with memchr, not a byte loop) and
	 * jansson parses the few hundred bytes left around it. If that was the
	 * contentInstance's own con (it reads "" now), the body's buffer becomes
	 * the returned con: no copy, no fresh pages. Anything else (an escape,
	 * a NUL, a member of that name nested deeper) takes the exact way.
	 */
	p = memmem(raw, len, "\"con\":\"", 7);
	q = p ? memchr(p + 7, '"', len - (size_t)(p + 7 - raw)) : NULL;
	if (q && !memchr(p + 7, '\\', (size_t)(q - p - 7)) &&
	    strnlen(p + 7, (size_t)(q - p - 7)) == (size_t)(q - p - 7)) {
		con_start = (size_t)(p + 7 - raw);
		con_len = (size_t)(q - p - 7);
		rest = malloc(len - con_len + 1);
		if (!rest)
			return -ENOMEM;
		memcpy(rest, raw, con_start);
		memcpy(rest + con_start, q, len - (size_t)(q - raw) + 1); /* "con":"" */
		cin = cin_of(rest, len - con_len, &resp);
		jcon = cin ? json_object_get(cin, "con") : NULL;
		if (!json_is_string(jcon) || json_string_length(jcon) != 0) {
			cin = NULL;
			resp = (json_decref(resp), NULL);
		}
	}
	if (cin) {
		memmove(raw, raw + con_start, con_len);
		raw[con_len] = '\0';
		con = TAKE_PTR(raw);
	} else {
		cin = cin_of(raw, len, &resp);
		jcon = cin ? json_object_get(cin, "con") : NULL;
		if (!json_is_string(jcon))
			return -EBADMSG;
		con_len = json_string_length(jcon);
		con = strndup(json_string_value(jcon), con_len);
		if (!con)
			return -ENOMEM;
	}
	jcnf = json_object_get(cin, "cnf");
	if (ret_cnf && json_is_string(jcnf)) {
		cnf = strdup(json_string_value(jcnf));
		if (!cnf)
			return -ENOMEM;
	}
	*ret_len = con_len;
	*ret_con = TAKE_PTR(con);
	if (ret_cnf)
		*ret_cnf = TAKE_PTR(cnf);
	return 0;
}

int hcse_delete(struct hcse_client *c, const char *path, int *ret_rsc)
{
	return call(c, "DELETE", path, NULL, 0, NULL, NULL, ret_rsc);
}

void hcse_names_free(char **names, size_t n)
{
	if (!names)
		return;
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

int hcse_list_children(struct hcse_client *c, const char *path, int ty, char ***ret_names,
		       size_t *ret_n, int *ret_rsc)
{
	_cleanup_json_ json_t *resp = NULL;
	char query[64];
	json_t *uril, *v;
	char **names;
	size_t i, n = 0;
	int r;

	/* TS-0004 7.3.3.17.4 / TS-0009 6.2.2.2: fu=1 discovery, lvl=1 for direct children */
	snprintf(query, sizeof(query), "fu=1&ty=%d&lvl=1", ty);
	r = call(c, "GET", path, query, 0, NULL, &resp, ret_rsc);
	if (r < 0)
		return r;
	uril = json_object_get(resp, "m2m:uril");
	if (json_is_object(uril)) /* some CSEs nest the list one level deeper */
		uril = json_object_get(uril, "m2m:uril");
	if (!json_is_array(uril))
		return -EBADMSG;
	names = calloc(json_array_size(uril) + 1, sizeof(char *));
	if (!names)
		return -ENOMEM;
	json_array_foreach(uril, i, v) {
		const char *s = json_string_value(v), *last;

		if (!s)
			continue;
		last = strrchr(s, '/');
		last = last ? last + 1 : s;
		/* the target itself is not one of its children */
		if (*last == '\0' || strcmp(last, c->cse_rn) == 0)
			continue;
		if (*path) {
			size_t sl = strlen(s), pl = strlen(path);
			if (sl >= pl && strcmp(s + sl - pl, path) == 0 &&
			    (sl == pl || s[sl - pl - 1] == '/'))
				continue;
		}
		names[n] = strdup(last);
		if (!names[n]) {
			hcse_names_free(names, n);
			return -ENOMEM;
		}
		n++;
	}
	*ret_names = names;
	*ret_n = n;
	return 0;
}
