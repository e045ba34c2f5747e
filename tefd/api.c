/* SPDX-License-Identifier: Apache-2.0 */
/* tefd's request front: caller identity, on-behalf-of, routing, error answers, rate limit. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "atrest/cleanup.h"
#include "atrest/log.h"
#include "atrest/rsc.h"
#include "api.h"

void api_init(struct api *a)
{
	pthread_mutex_init(&a->rate_lock, NULL);
	memset(a->rate, 0, sizeof(a->rate));
}

void api_done(struct api *a)
{
	pthread_mutex_destroy(&a->rate_lock);
}

/* Parses one "Name:\tv1\tv2..." line of /proc/PID/status into at most max ids. */
static size_t parse_id_list(const char *s, gid_t *out, size_t max)
{
	size_t n = 0;

	while (*s && n < max) {
		char *end;
		unsigned long v;

		while (*s == ' ' || *s == '\t')
			s++;
		if (!*s || *s == '\n')
			break;
		errno = 0;
		v = strtoul(s, &end, 10);
		if (end == s || errno || v >= 0xffffffffUL)
			break;
		out[n++] = (gid_t)v;
		s = end;
	}
	return n;
}

/*
 * SO_PEERCRED carries uid and gid only; the supplementary groups come from
 * /proc/PID/status, trusted only when its effective ids still match the
 * socket's credentials (a reused pid of someone else gives no groups).
 */
void api_caller_load_groups(struct api_caller *c)
{
	_cleanup_fclose_ FILE *f = NULL;
	char path[64], line[4096];
	gid_t ids[4], groups[TEF_MAX_GROUPS];
	bool uid_ok = false, gid_ok = false;
	size_t n = 0;

	if (c->groups_loaded)
		return;
	c->groups_loaded = true;
	if (!c->peer.is_local || c->pid <= 0)
		return;
	snprintf(path, sizeof(path), "/proc/%d/status", (int)c->pid);
	f = fopen(path, "re");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, "Uid:", 4) == 0)
			uid_ok = parse_id_list(line + 4, ids, 4) >= 2 && ids[1] == c->peer.uid;
		else if (strncmp(line, "Gid:", 4) == 0)
			gid_ok = parse_id_list(line + 4, ids, 4) >= 2 && ids[1] == c->peer.gid;
		else if (strncmp(line, "Groups:", 7) == 0)
			n = parse_id_list(line + 7, groups, TEF_MAX_GROUPS);
	}
	if (!uid_ok || !gid_ok) {
		log_debug("pid %d changed credentials: no supplementary groups", (int)c->pid);
		return;
	}
	identity_local(c->peer.uid, c->peer.gid, groups, n, &c->peer);
	if (!c->on_behalf)
		c->effective = c->peer;
}

static int reply(struct httpd_response *resp, int status, int rsc, char *body)
{
	char code[16];

	snprintf(code, sizeof(code), "%d", rsc);
	httpd_response_set_status(resp, status ? status : rsc_to_http_status(rsc));
	if (httpd_response_add_header(resp, TEF_HDR_RSC, code) < 0)
		return -ENOMEM;
	if (body)
		return httpd_response_set_body(resp, "application/json", body, strlen(body));
	return 0;
}

int api_error(struct httpd_response *resp, int status, int rsc, const char *reason, const char *msg)
{
	_cleanup_json_ json_t *o = json_object();
	char *body;

	if (!o || json_object_set_new(o, TEF_M_DBG, json_string(msg)) < 0 ||
	    (reason && json_object_set_new(o, TEF_M_REASON, json_string(reason)) < 0))
		return -ENOMEM;
	body = json_dumps(o, JSON_COMPACT);
	if (!body)
		return -ENOMEM;
	return reply(resp, status, rsc, body);
}

int api_refuse(struct api *a, const struct api_caller *c, struct httpd_response *resp,
	       const char *op, int status, int rsc, const char *id_hex, const char *why,
	       const char *msg)
{
	/* only the reasons a client must act on are told; the rest stay in the audit log */
	bool tell = why && (strcmp(why, TEF_REASON_EXPIRED) == 0 ||
			    strcmp(why, TEF_REASON_RATE_LIMITED) == 0);

	api_audit(a, c, op, rsc, id_hex, why);
	return api_error(resp, status, rsc, tell ? why : NULL, msg);
}

int api_not_found(struct httpd_response *resp)
{
	/* one constant body for "no such id" and "not yours": nothing to tell apart */
	char *body = strdup("{\"" TEF_M_DBG "\":\"no such key\"}");

	if (!body)
		return -ENOMEM;
	return reply(resp, 0, RSC_NOT_FOUND, body);
}

int api_reply_json(struct httpd_response *resp, int rsc, const json_t *body)
{
	char *text = NULL;

	if (body && !(text = json_dumps(body, JSON_COMPACT)))
		return -ENOMEM;
	return reply(resp, 0, rsc, text);
}

void api_audit(struct api *a, const struct api_caller *c, const char *op, int rsc,
	       const char *id_hex, const char *reason)
{
	struct audit_entry e = {
	    .op = op,
	    .rsc = rsc,
	    .caller = c->peer_text,
	    .onbehalf = c->on_behalf ? c->onbehalf_text : NULL,
	    .id_hex = id_hex,
	    .reason = reason,
	};

	audit_log(a->audit, &e);
}

static struct api_rate_slot *rate_slot(struct api *a, const struct identity *id)
{
	uint32_t h = 2166136261u; /* FNV-1a */

	for (const char *p = id->principal; *p; p++)
		h = (h ^ (uint8_t)*p) * 16777619u;
	return &a->rate[h % API_RATE_SLOTS];
}

bool api_rate_is_limited(struct api *a, const struct identity *id, int64_t now)
{
	/* one read of each: a SIGHUP may change them meanwhile */
	unsigned max = a->max_failed_retrievals, window = a->failure_window;
	struct api_rate_slot *s;
	bool limited = false;

	if (!max)
		return false;
	pthread_mutex_lock(&a->rate_lock);
	s = rate_slot(a, id);
	if (strcmp(s->principal, id->principal) == 0 && now < s->window_start + window)
		limited = s->failures >= max;
	pthread_mutex_unlock(&a->rate_lock);
	return limited;
}

void api_rate_record_failure(struct api *a, const struct identity *id, int64_t now)
{
	unsigned window = a->failure_window;
	struct api_rate_slot *s;

	if (!a->max_failed_retrievals)
		return;
	pthread_mutex_lock(&a->rate_lock);
	s = rate_slot(a, id);
	/* a colliding identity takes the slot over: the table stays bounded */
	if (strcmp(s->principal, id->principal) != 0 || now >= s->window_start + window) {
		snprintf(s->principal, sizeof(s->principal), "%s", id->principal);
		s->window_start = now;
		s->failures = 0;
	}
	s->failures++;
	pthread_mutex_unlock(&a->rate_lock);
}

static const char *op_name(const char *method, bool is_item)
{
	if (strcmp(method, "POST") == 0)
		return "register";
	if (strcmp(method, "GET") == 0)
		return is_item ? "retrieve" : "list";
	if (strcmp(method, "PUT") == 0)
		return "update";
	if (strcmp(method, "DELETE") == 0)
		return "delete";
	return "other";
}

/* Establishes who is asking; returns 0, or answers the request itself and returns 1. */
static int identify(struct api *a, const struct httpd_request *req, const char *op,
		    struct api_caller *c, struct httpd_response *resp)
{
	const struct httpd_peer *p = &req->peer;
	const char *obo;

	if (p->is_unix) {
		identity_local(p->uid, p->gid, NULL, 0, &c->peer);
		c->pid = p->pid;
		snprintf(c->peer_text, sizeof(c->peer_text), "uid=%u,gid=%u,pid=%d",
			 (unsigned)p->uid, (unsigned)p->gid, (int)p->pid);
	} else if (p->is_tls && identity_remote(p->cert_cn, p->cert_uri, &c->peer) == 0) {
		c->groups_loaded = true;
		snprintf(c->peer_text, sizeof(c->peer_text), "%s", c->peer.principal);
	} else {
		/* TCP without a usable client certificate: no service at all */
		snprintf(c->peer_text, sizeof(c->peer_text), "tcp:%s", p->addr);
		return api_refuse(a, c, resp, op, 0, RSC_ORIGINATOR_NOT_AUTHENTICATED, NULL,
				  "no-certificate",
				  "a client certificate naming an AE-ID or CSE-ID is required")
			   ?: 1;
	}
	c->effective = c->peer;

	obo = httpd_request_header(req, TEF_HDR_ON_BEHALF_OF);
	if (!obo)
		return 0;
	if (!policy_is_delegate(&a->policy, &c->peer)) {
		log_warning(
		    "refused %s from %s: it is not a delegate but sent " TEF_HDR_ON_BEHALF_OF, op,
		    c->peer_text);
		return api_refuse(a, c, resp, op, 0, RSC_ORIGINATOR_HAS_NO_PRIVILEGE, NULL,
				  "not-a-delegate", "only delegates may act on behalf of others")
			   ?: 1;
	}
	if (identity_parse_on_behalf_of(obo, &c->effective) < 0) {
		return api_refuse(a, c, resp, op, 0, RSC_BAD_REQUEST, NULL, "bad-on-behalf-of",
				  "header '" TEF_HDR_ON_BEHALF_OF
				  "' must be uid=N;gid=N[;groups=N,N...]")
			   ?: 1;
	}
	c->on_behalf = true;
	c->groups_loaded = true;
	identity_describe(&c->effective, c->onbehalf_text, sizeof(c->onbehalf_text));
	return 0;
}

int api_handle(void *userdata, const struct httpd_request *req, struct httpd_response *resp)
{
	struct api *a = userdata;
	struct api_caller c = {0};
	char id[TEF_RELATIVE_KEY_ID_HEX + 1];
	bool is_item =
	    strncmp(req->path, TEF_ROUTE_KEYS_PREFIX, strlen(TEF_ROUTE_KEYS_PREFIX)) == 0;
	const char *op = op_name(req->method, is_item);
	int r;

	r = identify(a, req, op, &c, resp);
	if (r != 0)
		return r < 0 ? r : 0;
	if (req->body_too_large) {
		return api_refuse(a, &c, resp, op, 413, RSC_BAD_REQUEST, NULL, "body-too-large",
				  "the request body is too large");
	}

	if (strcmp(req->path, TEF_ROUTE_KEYS) == 0) {
		if (strcmp(req->method, "POST") == 0)
			return api_keys_register(a, &c, req, resp);
		if (strcmp(req->method, "GET") == 0)
			return api_keys_list(a, &c, req, resp);
		return api_error(resp, 0, RSC_OPERATION_NOT_ALLOWED, NULL,
				 "only GET and POST are allowed on " TEF_ROUTE_KEYS);
	}
	if (strcmp(req->path, TEF_ROUTE_BACKUP) == 0) {
		if (strcmp(req->method, "GET") == 0)
			return api_backup(a, &c, resp);
		return api_error(resp, 0, RSC_OPERATION_NOT_ALLOWED, NULL,
				 "only GET is allowed on " TEF_ROUTE_BACKUP);
	}
	if (!is_item)
		return api_error(resp, 0, RSC_NOT_FOUND, NULL, "no such route");

	if (strcmp(req->method, "GET") != 0 && strcmp(req->method, "PUT") != 0 &&
	    strcmp(req->method, "DELETE") != 0)
		return api_error(resp, 0, RSC_OPERATION_NOT_ALLOWED, NULL,
				 "only GET, PUT and DELETE are allowed on a key");
	if (strcmp(op, "retrieve") == 0 &&
	    api_rate_is_limited(a, &c.effective, keystore_now(a->ks))) {
		return api_refuse(a, &c, resp, op, 429, RSC_ORIGINATOR_HAS_NO_PRIVILEGE, NULL,
				  TEF_REASON_RATE_LIMITED,
				  "too many failed retrievals: try again later");
	}
	/* a malformed id is just another unknown id */
	if (tef_relative_key_id(req->path + strlen(TEF_ROUTE_KEYS_PREFIX), id) < 0) {
		api_audit(a, &c, op, RSC_NOT_FOUND, NULL, "malformed-id");
		if (strcmp(op, "retrieve") == 0)
			api_rate_record_failure(a, &c.effective, keystore_now(a->ks));
		return api_not_found(resp);
	}
	if (strcmp(req->method, "GET") == 0)
		return api_keys_retrieve(a, &c, id, resp);
	if (strcmp(req->method, "PUT") == 0)
		return api_keys_update(a, &c, id, req, resp);
	return api_keys_delete(a, &c, id, resp);
}
