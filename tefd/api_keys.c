/* SPDX-License-Identifier: Apache-2.0 */
/* The /keys routes: MAF Key Registration, Retrieval, Update, De-Registration
 * (TS-0003 8.8.2.7-8.8.2.10) and listing. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <sodium.h>

#include "atrest/cleanup.h"
#include "atrest/json_strv.h"
#include "atrest/log.h"
#include "atrest/rsc.h"
#include "atrest/secure_scratch.h"
#include "api.h"
#include "request.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(struct key_record *, key_record_free)
#define _cleanup_record_ _cleanup_(key_record_freep)

/* The metadata of a registration as every response shows it (never the key). */
static json_t *record_json(const struct api *a, const struct key_record *r)
{
	char when[TEF_TIMESTAMP_LEN + 1] = "";
	_cleanup_free_ char *cred = NULL;
	json_t *o;

	if (asprintf(&cred, "%s@%s", r->id_hex, a->fqdn) < 0)
		return NULL;
	(void)tef_timestamp_format(r->expires, when);
	o = json_pack("{s:s, s:s, s:s, s:i, s:o, s:o, s:s, s:I}", TEF_M_CREDENTIAL_ID, cred,
		      TEF_M_RELATIVE_KEY_ID, r->id_hex, TEF_M_EXPIRATION_TIME, when, TEF_M_SUID,
		      r->suid, TEF_M_LABELS,
		      json_strv_new((const char *const *)r->labels, r->n_labels), TEF_M_TARGET_IDS,
		      json_strv_new((const char *const *)r->targets, r->n_targets), TEF_M_OWNER,
		      r->owner, TEF_M_ATREST_VERSION, (json_int_t)r->version);
	return o;
}

/* Layout of this thread's secure scratch on the retrieval path. */
#define SCRATCH_KEY 0
#define SCRATCH_B64 32
#define SCRATCH_SIZE 96

/*
 * A response carrying a key: the base64url text is made in secure memory and
 * spliced into the serialised metadata, so the JSON library never holds it.
 */
static int reply_with_key(const struct api *a, struct httpd_response *resp, int rsc,
			  const struct key_record *r, const uint8_t *key, size_t key_len)
{
	_cleanup_json_ json_t *meta = record_json(a, r);
	_cleanup_free_ char *text = NULL;
	char *b64 = (char *)secure_scratch(), code[16], *body;
	size_t n;

	if (!b64)
		return -ENOMEM;
	b64 += SCRATCH_B64;
	if (!meta || !(text = json_dumps(meta, JSON_COMPACT)) || text[0] != '{')
		return -ENOMEM;
	sodium_bin2base64(b64, SCRATCH_SIZE - SCRATCH_B64, key, key_len,
			  sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	n = strlen("{\"" TEF_M_KEY_VALUE "\":\"\",") + strlen(b64) + strlen(text + 1) + 1;
	body = malloc(n);
	if (body)
		snprintf(body, n, "{\"" TEF_M_KEY_VALUE "\":\"%s\",%s", b64, text + 1);
	sodium_memzero(b64, SCRATCH_SIZE - SCRATCH_B64);
	if (!body)
		return -ENOMEM;
	snprintf(code, sizeof(code), "%d", rsc);
	httpd_response_set_status(resp, rsc_to_http_status(rsc));
	if (httpd_response_add_header(resp, TEF_HDR_RSC, code) < 0) {
		sodium_memzero(body, n);
		free(body);
		return -ENOMEM;
	}
	httpd_response_set_sensitive(resp);
	return httpd_response_set_body(resp, "application/json", body, strlen(body));
}

static bool has_gid_target(const struct key_record *r)
{
	for (size_t i = 0; i < r->n_targets; i++)
		if (strncmp(r->targets[i], "gid:", 4) == 0)
			return true;
	return false;
}

static bool can_retrieve(struct api_caller *c, const struct key_record *r)
{
	if (policy_can_retrieve(&c->effective, r->owner, r->targets, r->n_targets))
		return true;
	/* groups cost a /proc read: only when a gid rule could match */
	if (c->groups_loaded || !has_gid_target(r))
		return false;
	api_caller_load_groups(c);
	return policy_can_retrieve(&c->effective, r->owner, r->targets, r->n_targets);
}

/* The wipe the request body gets once decoded: it may have carried a key. */
static void wipe_body(const struct httpd_request *req)
{
	if (req->body)
		sodium_memzero((char *)req->body, req->body_len);
}

/* expirationTime of a request: in the future, at most max_ttl ahead (TS-0003 8.8.2.7). */
static int effective_expiration(const struct api *a, bool has, int64_t asked, int64_t now,
				int64_t *ret)
{
	/* one read of each: a SIGHUP may change them meanwhile */
	int64_t max_ttl = a->max_ttl, def_ttl = a->default_ttl;
	int64_t ttl = def_ttl < max_ttl ? def_ttl : max_ttl, t;

	if (has && asked <= now)
		return -EINVAL;
	t = has ? (asked - now > max_ttl ? now + max_ttl : asked) : now + ttl;
	/* always a time the wire format can say */
	*ret = t > TEF_TIMESTAMP_MAX ? TEF_TIMESTAMP_MAX : t;
	return 0;
}

/* A registration (or a batch) the keystore did not take: the owner's quota
 * (EDQUOT) or a storage error, as the answer and the log say it. */
static int refuse_insert(struct api *a, struct api_caller *c, struct httpd_response *resp, int r,
			 bool batch)
{
	if (r == -EDQUOT)
		return api_refuse(a, c, resp, "register", 0, RSC_NOT_ACCEPTABLE, NULL,
				  "too-many-registrations", "too many registrations for this owner");
	log_error_errno(r, batch ? "cannot store a batch of registrations"
				 : "cannot store a registration");
	return api_refuse(a, c, resp, "register", 0, RSC_INTERNAL_SERVER_ERROR, NULL, "storage",
			  batch ? "cannot store the keys" : "cannot store the key");
}

/*
 * atrestCount: rq->count keys generated and stored in one transaction (one
 * fsync), for delegates that keep a pool of registrations ready (atrestfs).
 * Each is an ordinary registration of the caller's; the answer lists them,
 * each with its keyValue, as {"keys": [...]} (docs/TEF-API.md).
 */
static int register_batch(struct api *a, struct api_caller *c, struct reg_request *rq,
			  int64_t expires, struct httpd_response *resp)
{
	size_t n = rq->count, cap = 16, len = 0;
	struct key_record *recs = calloc(n, sizeof(*recs));
	uint8_t *keys = sodium_malloc(32 * n);
	char *body = NULL, *b64 = (char *)secure_scratch(), code[16];
	int r;

	if (!recs || !keys || !b64) {
		r = -ENOMEM;
		goto out;
	}
	b64 += SCRATCH_B64;
	randombytes_buf(keys, 32 * n);
	for (size_t i = 0; i < n; i++)
		recs[i] = (struct key_record){
			.owner = c->effective.principal,
			.suid = rq->suid,
			.expires = expires,
			.labels = rq->c.labels,
			.n_labels = rq->c.n_labels,
			.targets = rq->c.targets,
			.n_targets = rq->c.n_targets,
			.key = keys + 32 * i,
			.key_len = 32,
		};
	r = keystore_insert_batch(a->ks, recs, n, a->max_per_owner);
	if (r < 0) {
		r = refuse_insert(a, c, resp, r, true);
		goto out;
	}
	/* the body is built with the keys in it: wiped on every path (sensitive) */
	body = malloc(cap);
	if (!body) {
		r = -ENOMEM;
		goto out;
	}
	len = (size_t)snprintf(body, cap, "{\"" TEF_M_KEYS "\":[");
	for (size_t i = 0; i < n && r == 0; i++) {
		_cleanup_json_ json_t *meta = record_json(a, &recs[i]);
		_cleanup_free_ char *text = meta ? json_dumps(meta, JSON_COMPACT) : NULL;
		size_t need;

		api_audit(a, c, "register", RSC_CREATED, recs[i].id_hex, "generated");
		if (!text || text[0] != '{') {
			r = -ENOMEM;
			break;
		}
		sodium_bin2base64(b64, SCRATCH_SIZE - SCRATCH_B64, recs[i].key, 32,
				  sodium_base64_VARIANT_URLSAFE_NO_PADDING);
		need = len + strlen(b64) + strlen(text) + 32;
		if (need > cap) {
			/* grow by copying, so no key is left behind in a freed block */
			char *bigger = malloc(need * 2);

			if (!bigger) {
				r = -ENOMEM;
				break;
			}
			memcpy(bigger, body, len + 1);
			sodium_memzero(body, cap);
			free(body);
			body = bigger;
			cap = need * 2;
		}
		len += (size_t)snprintf(body + len, cap - len, "%s{\"" TEF_M_KEY_VALUE "\":\"%s\",%s",
					i ? "," : "", b64, text + 1);
	}
	sodium_memzero(b64, SCRATCH_SIZE - SCRATCH_B64);
	if (r == 0 && len + 3 > cap)
		r = -ENOMEM;
	if (r < 0)
		goto out;
	memcpy(body + len, "]}", 3);
	len += 2;
	snprintf(code, sizeof(code), "%d", RSC_CREATED);
	httpd_response_set_status(resp, rsc_to_http_status(RSC_CREATED));
	httpd_response_set_sensitive(resp);
	r = httpd_response_add_header(resp, TEF_HDR_RSC, code);
	if (r == 0) {
		r = httpd_response_set_body(resp, "application/json", body, len);
		body = NULL;
	}
out:
	if (body) {
		sodium_memzero(body, cap);
		free(body);
	}
	sodium_free(keys);
	free(recs);
	return r;
}

int api_keys_register(struct api *a, struct api_caller *c, const struct httpd_request *req,
		      struct httpd_response *resp)
{
	_cleanup_free_ char *err = NULL;
	struct reg_request rq = {0};
	struct key_record rec = {0};
	int64_t now = keystore_now(a->ks);
	bool generated = false;
	int r;

	r = request_parse_registration(req->body, req->body_len, &rq, &err);
	wipe_body(req);
	if (r == -EINVAL) {
		return api_refuse(a, c, resp, "register", 0, RSC_BAD_REQUEST, NULL, "bad-request",
				  err ? err : "bad request");
	}
	if (r < 0)
		return r;
	if (effective_expiration(a, rq.c.has_expiration, rq.c.expiration, now, &rec.expires) < 0) {
		reg_request_done(&rq);
		return api_refuse(a, c, resp, "register", 0, RSC_BAD_REQUEST, NULL, "bad-request",
				  "member '" TEF_M_EXPIRATION_TIME "' is in the past");
	}
	if (rq.count) {
		r = register_batch(a, c, &rq, rec.expires, resp);
		reg_request_done(&rq);
		return r;
	}
	if (!rq.key) {
		/* TS-0003 8.8.2.7: the MAF generates the key when none is proposed */
		rq.key = sodium_malloc(32);
		if (!rq.key) {
			reg_request_done(&rq);
			return -ENOMEM;
		}
		randombytes_buf(rq.key, 32);
		rq.key_len = 32;
		generated = true;
	}
	rec.owner = c->effective.principal;
	rec.suid = rq.suid;
	rec.labels = rq.c.labels;
	rec.n_labels = rq.c.n_labels;
	rec.targets = rq.c.targets;
	rec.n_targets = rq.c.n_targets;
	rec.key = rq.key;
	rec.key_len = rq.key_len;
	r = keystore_insert(a->ks, &rec, a->max_per_owner);
	if (r < 0) {
		reg_request_done(&rq);
		return refuse_insert(a, c, resp, r, false);
	}
	api_audit(a, c, "register", RSC_CREATED, rec.id_hex, generated ? "generated" : NULL);
	if (generated) {
		r = reply_with_key(a, resp, RSC_CREATED, &rec, rec.key, rec.key_len);
	} else {
		_cleanup_json_ json_t *o = record_json(a, &rec);

		r = o ? api_reply_json(resp, RSC_CREATED, o) : -ENOMEM;
	}
	reg_request_done(&rq);
	return r;
}

/* Looks a key up for an operation; answers 404 itself for unknown and invisible ids. */
static int lookup(struct api *a, struct api_caller *c, const char *op, const char *id_hex,
		  struct key_record **ret, bool *ret_may_retrieve, struct httpd_response *resp)
{
	struct key_record *rec = NULL;
	bool may_retrieve, may_manage;
	int r;

	r = keystore_get(a->ks, id_hex, &rec);
	if (r == -ENOENT) {
		api_audit(a, c, op, RSC_NOT_FOUND, id_hex, "unknown");
		return api_not_found(resp) ?: 1;
	}
	if (r < 0) {
		log_error_errno(r, "cannot read a registration");
		return api_refuse(a, c, resp, op, 0, RSC_INTERNAL_SERVER_ERROR, id_hex, "storage",
				  "storage error")
			   ?: 1;
	}
	may_retrieve = can_retrieve(c, rec);
	may_manage = policy_can_manage(&a->policy, &c->effective, rec->owner);
	if (!may_retrieve && !may_manage) {
		api_audit(a, c, op, RSC_NOT_FOUND, id_hex, "forbidden");
		key_record_free(rec);
		return api_not_found(resp) ?: 1;
	}
	*ret = rec;
	*ret_may_retrieve = may_retrieve;
	return 0;
}

int api_keys_retrieve(struct api *a, struct api_caller *c, const char *id_hex,
		      struct httpd_response *resp)
{
	_cleanup_record_ struct key_record *rec = NULL;
	int64_t now = keystore_now(a->ks);
	uint8_t *key;
	size_t key_len = 0;
	bool may;
	int r;

	r = lookup(a, c, "retrieve", id_hex, &rec, &may, resp);
	if (r != 0 || !may) {
		api_rate_record_failure(a, &c->effective, now);
		if (r == 0) {
			/* an admin who is not targeted: same answer as anyone else */
			api_audit(a, c, "retrieve", RSC_NOT_FOUND, id_hex, "forbidden");
			return api_not_found(resp);
		}
		return r < 0 ? r : 0;
	}
	/* expiry is enforced on every call, with a clock that never goes back */
	if (rec->expires <= now) {
		return api_refuse(a, c, resp, "retrieve", 0, RSC_ORIGINATOR_HAS_NO_PRIVILEGE,
				  id_hex, TEF_REASON_EXPIRED, "the registration has expired");
	}
	key = secure_scratch();
	if (!key)
		return -ENOMEM;
	key += SCRATCH_KEY;
	r = keystore_unwrap_into(a->ks, rec, key, &key_len);
	if (r < 0) {
		sodium_memzero(key, 32);
		log_error("a stored key failed to unwrap: its row was tampered with");
		return api_refuse(a, c, resp, "retrieve", 0, RSC_INTERNAL_SERVER_ERROR, id_hex,
				  "unwrap-failed", "the stored key failed its integrity check");
	}
	api_audit(a, c, "retrieve", RSC_OK, id_hex, "released");
	r = reply_with_key(a, resp, RSC_OK, rec, key, key_len);
	sodium_memzero(key, 32);
	return r;
}

int api_keys_update(struct api *a, struct api_caller *c, const char *id_hex,
		    const struct httpd_request *req, struct httpd_response *resp)
{
	_cleanup_record_ struct key_record *rec = NULL, *updated = NULL;
	_cleanup_json_ json_t *o = NULL;
	_cleanup_free_ char *err = NULL;
	struct upd_request u = {0};
	struct key_update ku = {0};
	int64_t now = keystore_now(a->ks);
	bool may;
	int r;

	r = request_parse_update(req->body, req->body_len, &u, &err);
	wipe_body(req); /* a (refused) keyValue may have come along */
	if (r == -EINVAL) {
		return api_refuse(a, c, resp, "update", 0, RSC_BAD_REQUEST, id_hex, "bad-request",
				  err ? err : "bad request");
	}
	if (r < 0)
		return r;
	r = lookup(a, c, "update", id_hex, &rec, &may, resp);
	if (r != 0)
		goto out;
	if (!policy_can_manage(&a->policy, &c->effective, rec->owner)) {
		r = api_refuse(a, c, resp, "update", 0, RSC_ORIGINATOR_HAS_NO_PRIVILEGE, id_hex,
			       "not-owner", "only the owner or an admin may update a registration");
		goto out;
	}
	if (rec->expires <= now) {
		/* an expired registration is dead: renewing cannot revive it */
		r = api_refuse(a, c, resp, "update", 0, RSC_ORIGINATOR_HAS_NO_PRIVILEGE, id_hex,
			       TEF_REASON_EXPIRED, "the registration has expired");
		goto out;
	}
	if (u.c.has_expiration &&
	    effective_expiration(a, true, u.c.expiration, now, &ku.expires) < 0) {
		r = api_refuse(a, c, resp, "update", 0, RSC_BAD_REQUEST, id_hex, "bad-request",
			       "member '" TEF_M_EXPIRATION_TIME "' is in the past");
		goto out;
	}
	ku.set_expires = u.c.has_expiration;
	ku.set_labels = u.c.has_labels;
	ku.labels = u.c.labels;
	ku.n_labels = u.c.n_labels;
	ku.set_targets = u.c.has_targets;
	ku.targets = u.c.targets;
	ku.n_targets = u.c.n_targets;
	ku.set_version = u.has_version;
	ku.version = u.version;
	/* ownership transfer (atrestfs's chown): by whoever may manage, as for any update */
	ku.owner = u.owner;
	ku.max_per_owner = a->max_per_owner;
	r = keystore_update(a->ks, id_hex, &ku, &updated);
	if (r == -EDQUOT) {
		r = api_refuse(a, c, resp, "update", 0, RSC_NOT_ACCEPTABLE, id_hex, "quota",
			       "too many registrations for the new owner");
		goto out;
	}
	if (r == -ERANGE) {
		r = api_refuse(a, c, resp, "update", 0, RSC_BAD_REQUEST, id_hex, "version-lowered",
			       "member '" TEF_M_ATREST_VERSION "' must not decrease");
		goto out;
	}
	if (r == -ENOENT) {
		api_audit(a, c, "update", RSC_NOT_FOUND, id_hex, "unknown");
		r = api_not_found(resp);
		goto out;
	}
	if (r < 0) {
		log_error_errno(r, "cannot update a registration");
		r = api_refuse(a, c, resp, "update", 0, RSC_INTERNAL_SERVER_ERROR, id_hex,
			       "storage", "storage error");
		goto out;
	}
	if (u.owner && strcmp(rec->owner, updated->owner) != 0) {
		/* a change of who controls the key: an event the operator must see */
		log_info("registration %.8s... transferred from '%s' to '%s' by %s", id_hex,
			 rec->owner, updated->owner, c->peer_text);
		api_audit(a, c, "update", RSC_UPDATED, id_hex, "owner-transferred");
	} else
		api_audit(a, c, "update", RSC_UPDATED, id_hex, NULL);
	o = record_json(a, updated);
	r = o ? api_reply_json(resp, RSC_UPDATED, o) : -ENOMEM;
out:
	upd_request_done(&u);
	return r < 0 ? r : 0;
}

int api_keys_delete(struct api *a, struct api_caller *c, const char *id_hex,
		    struct httpd_response *resp)
{
	_cleanup_record_ struct key_record *rec = NULL;
	bool may;
	int r;

	r = lookup(a, c, "delete", id_hex, &rec, &may, resp);
	if (r != 0)
		return r < 0 ? r : 0;
	if (!policy_can_manage(&a->policy, &c->effective, rec->owner)) {
		return api_refuse(a, c, resp, "delete", 0, RSC_ORIGINATOR_HAS_NO_PRIVILEGE, id_hex,
				  "not-owner",
				  "only the owner or an admin may delete a registration");
	}
	r = keystore_delete(a->ks, id_hex);
	if (r == -ENOENT) {
		api_audit(a, c, "delete", RSC_NOT_FOUND, id_hex, "unknown");
		return api_not_found(resp);
	}
	if (r < 0) {
		log_error_errno(r, "cannot delete a registration");
		return api_refuse(a, c, resp, "delete", 0, RSC_INTERNAL_SERVER_ERROR, id_hex,
				  "storage", "storage error");
	}
	api_audit(a, c, "delete", RSC_DELETED, id_hex, NULL);
	return api_reply_json(resp, RSC_DELETED, NULL);
}

struct list_ctx {
	const struct api *a;
	json_t *array;
	const char *bad; /* the first unknown query argument */
};

static int collect(const struct key_record *r, void *userdata)
{
	struct list_ctx *l = userdata;
	json_t *o = record_json(l->a, r);

	if (!o || json_array_append_new(l->array, o) < 0)
		return -ENOMEM;
	return 0;
}

static int check_query(const char *key, const char *value, void *userdata)
{
	struct list_ctx *l = userdata;

	(void)value;
	if (strcmp(key, TEF_Q_OWNER) != 0 && strcmp(key, TEF_Q_LABEL) != 0 &&
	    strcmp(key, TEF_Q_EXPIRES_BEFORE) != 0) {
		l->bad = key;
		return 1;
	}
	return 0;
}

int api_keys_list(struct api *a, struct api_caller *c, const struct httpd_request *req,
		  struct httpd_response *resp)
{
	_cleanup_json_ json_t *array = json_array();
	struct list_ctx l = {.a = a, .array = array};
	struct keystore_filter f = {.now = keystore_now(a->ks)};
	const char *before;
	int r;

	if (!array)
		return -ENOMEM;
	httpd_request_query_foreach(req, check_query, &l);
	if (l.bad) {
		_cleanup_free_ char *msg = NULL;

		api_audit(a, c, "list", RSC_BAD_REQUEST, NULL, "bad-request");
		if (asprintf(&msg, "unknown query argument '%s'", l.bad) < 0)
			return -ENOMEM;
		return api_error(resp, 0, RSC_BAD_REQUEST, NULL, msg);
	}
	f.owner = httpd_request_query(req, TEF_Q_OWNER);
	f.label = httpd_request_query(req, TEF_Q_LABEL);
	before = httpd_request_query(req, TEF_Q_EXPIRES_BEFORE);
	if (before && tef_timestamp_parse(before, &f.expires_before) < 0) {
		return api_refuse(a, c, resp, "list", 0, RSC_BAD_REQUEST, NULL, "bad-request",
				  "query argument '" TEF_Q_EXPIRES_BEFORE
				  "' is not a timestamp YYYYMMDDTHHMMSS");
	}
	if (!policy_is_admin(&a->policy, &c->effective)) {
		if (f.owner && strcmp(f.owner, c->effective.principal) != 0) {
			return api_refuse(a, c, resp, "list", 0, RSC_ORIGINATOR_HAS_NO_PRIVILEGE,
					  NULL, "not-admin",
					  "only admins may list other owners' registrations");
		}
		f.owner = c->effective.principal;
	}
	r = keystore_list(a->ks, &f, collect, &l);
	if (r < 0) {
		log_error_errno(r, "cannot list registrations");
		return api_error(resp, 0, RSC_INTERNAL_SERVER_ERROR, NULL, "storage error");
	}
	api_audit(a, c, "list", RSC_OK, NULL, NULL);
	{
		_cleanup_json_ json_t *o = json_pack("{s:O}", TEF_M_KEYS, array);

		return o ? api_reply_json(resp, RSC_OK, o) : -ENOMEM;
	}
}
