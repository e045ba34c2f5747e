/* SPDX-License-Identifier: Apache-2.0 */
/* Client of tefd's MAF key procedures over HTTP/1.1 (libcurl), Unix socket or mutual TLS. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <jansson.h>
#include <sodium.h>

#include "atrest/cleanup.h"
#include "atrest/http_client.h"
#include "atrest/json_strv.h"
#include "atrest/log.h"
#include "atrest/rsc.h"
#include "atrest/secure_scratch.h"
#include "atrest/tef_client.h"

#define POOL_MAX 16
#define RESPONSE_MAX (4 * 1024 * 1024)
#define BACKUP_MAX (1024 * 1024 * 1024)

struct tef_client {
	struct http_client *http;
};

/* Either transport, with what is the same for both: tefd answers in seconds, small answers. */
static int client_new(struct http_client_options o, struct tef_client **ret)
{
	struct tef_client *c;
	int r;

	o.connect_timeout_ms = 10000;
	o.timeout_ms = 30000;
	o.pool_max = POOL_MAX;
	o.response_max = RESPONSE_MAX;
	o.log_name = "tef client";
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	r = http_client_new(&o, &c->http);
	if (r < 0) {
		free(c);
		return r;
	}
	*ret = c;
	return 0;
}

int tef_client_new_unix(const char *path, struct tef_client **ret)
{
	if (!path || !*path)
		return -EINVAL;
	return client_new((struct http_client_options){.base = "http://tefd",
						       .unix_path = path,
						       .protocols = "http"},
			  ret);
}

int tef_client_new_tls(const char *url, const char *cert, const char *key, const char *ca,
		       struct tef_client **ret)
{
	if (!url || strncmp(url, "https://", 8) != 0 || !cert || !key || !ca)
		return -EINVAL;
	return client_new(
	    (struct http_client_options){
		.base = url, .protocols = "https", .cert = cert, .key = key, .ca = ca},
	    ret);
}

struct tef_client *tef_client_free(struct tef_client *c)
{
	if (!c)
		return NULL;
	http_client_free(c->http);
	free(c);
	return NULL;
}

void tef_client_set_outage(struct tef_client *c, struct outage *o)
{
	http_client_set_outage(c->http, o);
}

static int errno_from_curl(const struct tef_client *c, CURLcode cc)
{
	switch (cc) {
	case CURLE_OK:
		return 0;
	case CURLE_COULDNT_CONNECT:
		return -ECONNREFUSED;
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_OPERATION_TIMEDOUT:
		return http_client_is_unix(c->http) ? -ECONNREFUSED : -EHOSTUNREACH;
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_RECV_ERROR:
	case CURLE_SEND_ERROR:
	case CURLE_GOT_NOTHING:
		return -ECONNREFUSED;
	case CURLE_OUT_OF_MEMORY:
		return -ENOMEM;
	case CURLE_WRITE_ERROR:
		return -EMSGSIZE;
	default:
		return -EIO;
	}
}

/* One HTTP exchange; `body` (may be NULL) is sent as JSON. */
static int exchange(struct tef_client *c, const struct tef_identity *onbehalf, const char *method,
		    const char *path, const char *body, struct http_client_response *ans)
{
	_cleanup_curl_slist_ struct curl_slist *hdrs = NULL;
	char obo[64 + TEF_MAX_GROUPS * 11];
	CURLcode cc;
	int r;

	if (onbehalf) {
		size_t n =
		    (size_t)snprintf(obo, sizeof(obo), "%s: uid=%u;gid=%u", TEF_HDR_ON_BEHALF_OF,
				     (unsigned)onbehalf->uid, (unsigned)onbehalf->gid);
		size_t ng =
		    onbehalf->n_groups < TEF_MAX_GROUPS ? onbehalf->n_groups : TEF_MAX_GROUPS;

		for (size_t i = 0; i < ng && n < sizeof(obo); i++)
			n += (size_t)snprintf(obo + n, sizeof(obo) - n, "%s%u",
					      i == 0 ? ";groups=" : ",",
					      (unsigned)onbehalf->groups[i]);
		if (http_client_header(&hdrs, obo) < 0)
			return -ENOMEM;
	}
	if (http_client_header(&hdrs, "Expect:") < 0 ||
	    (body && http_client_header(&hdrs, "Content-Type: application/json") < 0))
		return -ENOMEM;
	/* a tefd answer may carry a key: secure memory, wiped */
	ans->secret = true;
	cc = http_client_perform(c->http,
				 &(struct http_client_request){
				     .method = method,
				     .path = path,
				     .headers = hdrs,
				     .body = body,
				 },
				 ans);
	r = errno_from_curl(c, cc);
	if (cc == CURLE_WRITE_ERROR && !ans->too_large)
		r = -ENOMEM;
	return r;
}

static json_t *answer_json(const struct http_client_response *ans)
{
	if (!ans->data || ans->len == 0)
		return NULL;
	return json_loadb(ans->data, ans->len, 0, NULL);
}

/* The single translation of a tefd answer into an errno (tef_client.h). */
static int answer_errno(const struct http_client_response *ans, const json_t *o, bool is_retrieval)
{
	const char *reason = json_string_value(json_object_get(o, TEF_M_REASON));
	const char *dbg = json_string_value(json_object_get(o, TEF_M_DBG));
	int rsc = ans->rsc;

	if (rsc == 0) {
		/* no X-M2M-RSC: not tefd; judge by the HTTP status */
		if (ans->http >= 200 && ans->http < 300)
			return 0;
		return ans->http == 404 ? -ENOENT : ans->http == 403 ? -EACCES : -EIO;
	}
	if (rsc_is_success(rsc))
		return 0;
	if (dbg)
		log_debug("tefd: %d %s: %s", rsc, rsc_to_string(rsc), dbg);
	if (reason && strcmp(reason, TEF_REASON_EXPIRED) == 0)
		return -EKEYEXPIRED;
	if (reason && strcmp(reason, TEF_REASON_RATE_LIMITED) == 0)
		return -EAGAIN;
	if (is_retrieval && (rsc == RSC_NOT_FOUND || rsc == RSC_ORIGINATOR_HAS_NO_PRIVILEGE))
		return -EACCES;
	return errno_from_rsc(rsc);
}

struct tef_registration *tef_registration_free(struct tef_registration *r)
{
	if (!r)
		return NULL;
	free(r->credential_id);
	free(r->relative_key_id);
	free(r->owner);
	json_strv_free(r->labels, r->n_labels);
	json_strv_free(r->targets, r->n_targets);
	secure_slot_put(r->key);
	free(r);
	return NULL;
}

struct tef_registration **tef_registration_list_free(struct tef_registration **list, size_t n)
{
	if (!list)
		return NULL;
	for (size_t i = 0; i < n; i++)
		tef_registration_free(list[i]);
	free(list);
	return NULL;
}

/* Decodes a registration object; a keyValue is moved to secure memory and wiped in o. */
static int registration_from_json(json_t *o, struct tef_registration **ret)
{
	struct tef_registration *r;
	const char *s;
	json_t *k;

	if (!json_is_object(o))
		return -EBADMSG;
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	s = json_string_value(json_object_get(o, TEF_M_CREDENTIAL_ID));
	r->credential_id = strdup(s ? s : "");
	s = json_string_value(json_object_get(o, TEF_M_RELATIVE_KEY_ID));
	r->relative_key_id = strdup(s ? s : "");
	s = json_string_value(json_object_get(o, TEF_M_OWNER));
	r->owner = strdup(s ? s : "");
	s = json_string_value(json_object_get(o, TEF_M_EXPIRATION_TIME));
	if (!s || tef_timestamp_parse(s, &r->expiration) < 0)
		r->expiration = 0;
	r->suid = (int)json_integer_value(json_object_get(o, TEF_M_SUID));
	r->version = (uint64_t)json_integer_value(json_object_get(o, TEF_M_ATREST_VERSION));
	if (json_strv_copy(json_object_get(o, TEF_M_LABELS), &r->labels, &r->n_labels) < 0 ||
	    json_strv_copy(json_object_get(o, TEF_M_TARGET_IDS), &r->targets, &r->n_targets) < 0 ||
	    !r->credential_id || !r->relative_key_id || !r->owner) {
		tef_registration_free(r);
		return -ENOMEM;
	}
	k = json_object_get(o, TEF_M_KEY_VALUE);
	if (json_is_string(k)) {
		char *text = (char *)json_string_value(k);
		size_t n = json_string_length(k), klen = 0;
		int rc;

		r->key = secure_slot_get();
		rc = r->key ? sodium_base642bin(r->key, 32, text, n, NULL, &klen, NULL,
						sodium_base64_VARIANT_URLSAFE_NO_PADDING)
			    : -1;
		sodium_memzero(text, n);
		if (rc != 0 || (klen != 16 && klen != 32)) {
			int e = r->key ? -EBADMSG : -ENOMEM;

			tef_registration_free(r);
			return e;
		}
		r->key_len = klen;
	}
	*ret = r;
	return 0;
}

/*
 * Runs one call: exchange, map errors, decode a registration when asked.
 * Any key in the answer lives only in secure memory and the wiped tree.
 */
static int call(struct tef_client *c, const struct tef_identity *onbehalf, const char *method,
		const char *path, const char *body, bool is_retrieval, json_t **ret_json,
		int *ret_rsc)
{
	struct http_client_response ans = {0};
	json_t *o;
	int r;

	if (ret_rsc)
		*ret_rsc = 0;
	r = exchange(c, onbehalf, method, path, body, &ans);
	if (r < 0)
		return r;
	if (ret_rsc)
		*ret_rsc = ans.rsc;
	o = answer_json(&ans);
	http_client_response_done(&ans);
	r = answer_errno(&ans, o, is_retrieval);
	if (r < 0 || !ret_json) {
		json_t *k = json_object_get(o, TEF_M_KEY_VALUE);

		if (json_is_string(k))
			sodium_memzero((char *)json_string_value(k), json_string_length(k));
		json_decref(o);
		return r;
	}
	if (!o) {
		return -EBADMSG;
	}
	*ret_json = o;
	return 0;
}

static int id_path(const char *id, char *buf, size_t size)
{
	char rel[TEF_RELATIVE_KEY_ID_HEX + 1];

	if (tef_relative_key_id(id, rel) < 0)
		return -EINVAL;
	snprintf(buf, size, "%s%s", TEF_ROUTE_KEYS_PREFIX, rel);
	return 0;
}

/* Serialises o, with keyValue spliced in from secure memory; the result is sodium_malloc'd. */
static char *body_with_key(const json_t *o, const uint8_t *key, size_t key_len)
{
	_cleanup_free_ char *text = json_dumps(o, JSON_COMPACT);
	size_t b64_cap, n;
	char *body;

	if (!text)
		return NULL;
	b64_cap =
	    key ? sodium_base64_ENCODED_LEN(key_len, sodium_base64_VARIANT_URLSAFE_NO_PADDING) : 1;
	n = strlen(text) + b64_cap + 32;
	body = sodium_malloc(n);
	if (!body)
		return NULL;
	if (!key) {
		memcpy(body, text, strlen(text) + 1);
		return body;
	}
	/* text is "{...}" with at least the suid member */
	n = (size_t)snprintf(body, n, "{\"%s\":\"", TEF_M_KEY_VALUE);
	sodium_bin2base64(body + n, b64_cap, key, key_len,
			  sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	n = strlen(body);
	body[n++] = '"';
	body[n++] = ',';
	memcpy(body + n, text + 1, strlen(text + 1) + 1);
	return body;
}

/* The registration body of req (count > 0: atrestCount); sodium_malloc'd, or NULL. */
static char *registration_body(const struct tef_registration_req *req, unsigned count, int *ret_r)
{
	_cleanup_json_ json_t *o = NULL;

	*ret_r = -ENOMEM;
	o = json_pack("{s:i}", TEF_M_SUID, req->suid);
	if (!o)
		return NULL;
	if (count && json_object_set_new(o, TEF_M_ATREST_COUNT, json_integer(count)) < 0)
		return NULL;
	if (req->n_labels &&
	    json_object_set_new(o, TEF_M_LABELS, json_strv_new(req->labels, req->n_labels)) < 0)
		return NULL;
	if (req->n_targets && json_object_set_new(o, TEF_M_TARGET_IDS,
						  json_strv_new(req->targets, req->n_targets)) < 0)
		return NULL;
	if (req->expiration > 0) {
		char when[TEF_TIMESTAMP_LEN + 1];

		if (tef_timestamp_format(req->expiration, when) < 0) {
			*ret_r = -ERANGE;
			return NULL;
		}
		if (json_object_set_new(o, TEF_M_EXPIRATION_TIME, json_string(when)) < 0)
			return NULL;
	}
	return body_with_key(o, req->key, req->key_len);
}

int tef_register(struct tef_client *c, const struct tef_identity *onbehalf,
		 const struct tef_registration_req *req, struct tef_registration **ret,
		 int *ret_rsc)
{
	_cleanup_json_ json_t *answer = NULL;
	_cleanup_sodium_free_ char *body = NULL;
	struct tef_registration *reg = NULL;
	int r;

	if (!c || !req || !ret || (req->key && req->key_len != 16 && req->key_len != 32))
		return -EINVAL;
	body = registration_body(req, 0, &r);
	if (!body)
		return r;
	r = call(c, onbehalf, "POST", TEF_ROUTE_KEYS, body, false, &answer, ret_rsc);
	if (r < 0)
		return r;
	r = registration_from_json(answer, &reg);
	if (r < 0)
		return r;
	*ret = reg;
	return 0;
}

/* Wipes the keyValue of every registration in a batch answer. */
static void wipe_batch(json_t *keys)
{
	size_t i;
	json_t *o;

	json_array_foreach (keys, i, o) {
		json_t *k = json_object_get(o, TEF_M_KEY_VALUE);

		if (json_is_string(k))
			sodium_memzero((char *)json_string_value(k), json_string_length(k));
	}
}

int tef_register_batch(struct tef_client *c, const struct tef_identity *onbehalf,
		       const struct tef_registration_req *req, unsigned count,
		       struct tef_registration ***ret, size_t *ret_n, int *ret_rsc)
{
	_cleanup_json_ json_t *answer = NULL;
	_cleanup_sodium_free_ char *body = NULL;
	struct tef_registration **list;
	json_t *keys;
	size_t n;
	int r;

	if (!c || !req || !ret || !ret_n || req->key || count < 1 || count > TEF_MAX_BATCH)
		return -EINVAL;
	body = registration_body(req, count, &r);
	if (!body)
		return r;
	r = call(c, onbehalf, "POST", TEF_ROUTE_KEYS, body, false, &answer, ret_rsc);
	if (r < 0)
		return r;
	keys = json_object_get(answer, TEF_M_KEYS);
	n = json_array_size(keys);
	list = n == count ? calloc(n, sizeof(*list)) : NULL;
	for (size_t i = 0; list && i < n; i++) {
		r = registration_from_json(json_array_get(keys, i), &list[i]);
		if (r == 0 && !list[i]->key) {
			tef_registration_free(list[i]);
			r = -EBADMSG;
		}
		if (r < 0) {
			list = tef_registration_list_free(list, i);
			break;
		}
	}
	wipe_batch(keys);
	if (!list)
		return r < 0 ? r : n == count ? -ENOMEM : -EBADMSG;
	*ret = list;
	*ret_n = n;
	return 0;
}

int tef_retrieve(struct tef_client *c, const struct tef_identity *onbehalf, const char *id,
		 struct tef_registration **ret, int *ret_rsc)
{
	_cleanup_json_ json_t *answer = NULL;
	struct tef_registration *reg = NULL;
	char path[64];
	int r;

	if (!c || !ret || id_path(id, path, sizeof(path)) < 0)
		return -EINVAL;
	r = call(c, onbehalf, "GET", path, NULL, true, &answer, ret_rsc);
	if (r < 0)
		return r;
	r = registration_from_json(answer, &reg);
	if (r < 0)
		return r;
	if (!reg->key) {
		tef_registration_free(reg);
		return -EBADMSG;
	}
	*ret = reg;
	return 0;
}

int tef_update(struct tef_client *c, const struct tef_identity *onbehalf, const char *id,
	       const struct tef_update_req *u, struct tef_registration **ret, int *ret_rsc)
{
	_cleanup_json_ json_t *o = json_object(), *answer = NULL;
	_cleanup_free_ char *body = NULL;
	struct tef_registration *reg = NULL;
	char path[64];
	int r;

	if (!c || !u || id_path(id, path, sizeof(path)) < 0)
		return -EINVAL;
	if (!o)
		return -ENOMEM;
	if (u->set_expiration) {
		char when[TEF_TIMESTAMP_LEN + 1];

		if (tef_timestamp_format(u->expiration, when) < 0)
			return -ERANGE;
		if (json_object_set_new(o, TEF_M_EXPIRATION_TIME, json_string(when)) < 0)
			return -ENOMEM;
	}
	if (u->set_labels &&
	    json_object_set_new(o, TEF_M_LABELS, json_strv_new(u->labels, u->n_labels)) < 0)
		return -ENOMEM;
	if (u->set_targets &&
	    json_object_set_new(o, TEF_M_TARGET_IDS, json_strv_new(u->targets, u->n_targets)) < 0)
		return -ENOMEM;
	if (u->set_version &&
	    json_object_set_new(o, TEF_M_ATREST_VERSION, json_integer((json_int_t)u->version)) < 0)
		return -ENOMEM;
	if (u->owner && json_object_set_new(o, TEF_M_OWNER, json_string(u->owner)) < 0)
		return -ENOMEM;
	body = json_dumps(o, JSON_COMPACT);
	if (!body)
		return -ENOMEM;
	r = call(c, onbehalf, "PUT", path, body, false, ret ? &answer : NULL, ret_rsc);
	if (r < 0 || !ret)
		return r;
	r = registration_from_json(answer, &reg);
	if (r < 0)
		return r;
	*ret = reg;
	return 0;
}

int tef_deregister(struct tef_client *c, const struct tef_identity *onbehalf, const char *id,
		   int *ret_rsc)
{
	char path[64];

	if (!c || id_path(id, path, sizeof(path)) < 0)
		return -EINVAL;
	return call(c, onbehalf, "DELETE", path, NULL, false, NULL, ret_rsc);
}

static int append_query(char **q, const char *name, const char *value)
{
	_cleanup_free_ char *old = *q;
	char *esc = curl_easy_escape(NULL, value, 0);
	int r;

	if (!esc)
		return -ENOMEM;
	r = asprintf(q, "%s%s%s=%s", old ? old : "", old ? "&" : "?", name, esc);
	curl_free(esc);
	if (r < 0) {
		*q = TAKE_PTR(old);
		return -ENOMEM;
	}
	return 0;
}

int tef_list(struct tef_client *c, const struct tef_identity *onbehalf,
	     const struct tef_list_filter *filter, struct tef_registration ***ret, size_t *ret_n,
	     int *ret_rsc)
{
	_cleanup_json_ json_t *answer = NULL;
	_cleanup_free_ char *q = NULL, *path = NULL;
	struct tef_registration **list;
	json_t *keys;
	size_t n;
	int r = 0;

	if (!c || !ret || !ret_n)
		return -EINVAL;
	if (filter && filter->owner)
		r = append_query(&q, TEF_Q_OWNER, filter->owner);
	if (r == 0 && filter && filter->label)
		r = append_query(&q, TEF_Q_LABEL, filter->label);
	if (r == 0 && filter && filter->expires_before > 0) {
		char when[TEF_TIMESTAMP_LEN + 1];

		r = tef_timestamp_format(filter->expires_before, when);
		if (r == 0)
			r = append_query(&q, TEF_Q_EXPIRES_BEFORE, when);
	}
	if (r < 0)
		return r;
	if (asprintf(&path, "%s%s", TEF_ROUTE_KEYS, q ? q : "") < 0)
		return -ENOMEM;
	r = call(c, onbehalf, "GET", path, NULL, false, &answer, ret_rsc);
	if (r < 0)
		return r;
	keys = json_object_get(answer, TEF_M_KEYS);
	if (!json_is_array(keys))
		return -EBADMSG;
	n = json_array_size(keys);
	list = calloc(n ? n : 1, sizeof(*list));
	if (!list)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		r = registration_from_json(json_array_get(keys, i), &list[i]);
		if (r < 0) {
			tef_registration_list_free(list, i);
			return r;
		}
	}
	*ret = list;
	*ret_n = n;
	return 0;
}

int tef_backup(struct tef_client *c, uint8_t **ret, size_t *ret_len, int *ret_rsc)
{
	struct http_client_response ans = {.max = BACKUP_MAX};
	uint8_t *copy;
	int r;

	if (ret_rsc)
		*ret_rsc = 0;
	if (!c || !ret || !ret_len)
		return -EINVAL;
	r = exchange(c, NULL, "GET", TEF_ROUTE_BACKUP, NULL, &ans);
	if (r < 0)
		return r;
	if (ret_rsc)
		*ret_rsc = ans.rsc;
	if (ans.http != 200 || ans.rsc != RSC_OK) {
		_cleanup_json_ json_t *o = answer_json(&ans);

		http_client_response_done(&ans);
		r = answer_errno(&ans, o, false);
		return r < 0 ? r : -EBADMSG;
	}
	copy = malloc(ans.len ? ans.len : 1);
	if (!copy) {
		http_client_response_done(&ans);
		return -ENOMEM;
	}
	memcpy(copy, ans.data, ans.len);
	*ret_len = ans.len;
	*ret = copy;
	http_client_response_done(&ans);
	return 0;
}
