/* SPDX-License-Identifier: Apache-2.0 */
/* Strict JSON decoding of tefd request bodies: every member checked, unknown ones refused. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <sodium.h>

#include "atrest/cleanup.h"
#include "atrest/tef_api.h"
#include "request.h"

static int fail(char **ret_error, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(char **ret_error, const char *fmt, ...)
{
	va_list ap;
	char *s = NULL;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		s = NULL;
	va_end(ap);
	*ret_error = s;
	return -EINVAL;
}

void strv_free(char **v, size_t n)
{
	if (!v)
		return;
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

static void common_done(struct req_common *c)
{
	strv_free(c->labels, c->n_labels);
	strv_free(c->targets, c->n_targets);
}

void reg_request_done(struct reg_request *r)
{
	common_done(&r->c);
	sodium_free(r->key);
	memset(r, 0, sizeof(*r));
}

void upd_request_done(struct upd_request *r)
{
	common_done(&r->c);
	free(r->owner);
	memset(r, 0, sizeof(*r));
}

static bool is_printable(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return false;
	return true;
}

/* An array of strings; principals are validated when `principals` is set. */
static int parse_strv(const json_t *v, const char *name, size_t max_n, size_t max_len,
		      bool principals, char ***ret, size_t *ret_n, char **ret_error)
{
	char **out;
	size_t n;

	if (!json_is_array(v))
		return fail(ret_error, "member '%s' must be an array of strings", name);
	n = json_array_size(v);
	if (n > max_n)
		return fail(ret_error, "member '%s' has more than %zu entries", name, max_n);
	out = calloc(n ? n : 1, sizeof(char *));
	if (!out)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		const json_t *e = json_array_get(v, i);
		const char *s = json_string_value(e);
		int r = 0;

		if (!json_is_string(e))
			r = fail(ret_error, "member '%s' entry %zu is not a string", name, i);
		else if (json_string_length(e) == 0 || json_string_length(e) > max_len)
			r = fail(ret_error, "member '%s' entry %zu must have 1 to %zu bytes", name,
				 i, max_len);
		else if (!is_printable(s))
			r = fail(ret_error, "member '%s' entry %zu has control characters", name,
				 i);
		else if (principals && !tef_principal_is_valid(s))
			r = fail(ret_error,
				 "member '%s' entry %zu is not a principal (uid:N, gid:N, ae:ID, "
				 "cse:ID or all)",
				 name, i);
		if (r == 0 && !(out[i] = strdup(s)))
			r = -ENOMEM;
		if (r < 0) {
			strv_free(out, i);
			return r;
		}
	}
	*ret = out;
	*ret_n = n;
	return 0;
}

static int parse_expiration(const json_t *v, int64_t *ret, char **ret_error)
{
	int r;

	if (!json_is_string(v))
		return fail(ret_error,
			    "member '" TEF_M_EXPIRATION_TIME "' must be a string YYYYMMDDTHHMMSS");
	r = tef_timestamp_parse(json_string_value(v), ret);
	if (r == -ERANGE)
		return fail(ret_error, "member '" TEF_M_EXPIRATION_TIME "' is out of range");
	if (r < 0)
		return fail(ret_error, "member '" TEF_M_EXPIRATION_TIME
				       "' is not a timestamp YYYYMMDDTHHMMSS");
	return 0;
}

/* base64url without padding; the decoded key goes to sodium memory, the text is wiped. */
static int parse_key(json_t *v, uint8_t **ret, size_t *ret_len, char **ret_error)
{
	_cleanup_sodium_free_ uint8_t *key = NULL;
	char *text;
	size_t n, klen;
	const char *end;
	int rc;

	if (!json_is_string(v))
		return fail(ret_error, "member '" TEF_M_KEY_VALUE "' must be a base64url string");
	text = (char *)json_string_value(v);
	n = json_string_length(v);
	/* 16 bytes are 22 characters, 32 bytes are 43 (RFC 4648 5, no padding) */
	if (n != 22 && n != 43) {
		sodium_memzero(text, n);
		return fail(ret_error, "member '" TEF_M_KEY_VALUE
				       "' must encode 16 or 32 bytes in unpadded base64url");
	}
	key = sodium_malloc(32);
	if (!key)
		return -ENOMEM;
	rc = sodium_base642bin(key, 32, text, n, NULL, &klen, &end,
			       sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	sodium_memzero(text, n);
	if (rc != 0 || end != text + n || (klen != 16 && klen != 32))
		return fail(ret_error, "member '" TEF_M_KEY_VALUE "' is not valid base64url");
	*ret = TAKE_PTR(key);
	*ret_len = klen;
	return 0;
}

static json_t *load_object(const char *body, size_t len, char **ret_error)
{
	json_error_t err;
	json_t *root;

	if (!body || len == 0) {
		fail(ret_error, "empty body: a JSON object is required");
		return NULL;
	}
	root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &err);
	if (!root) {
		fail(ret_error, "malformed JSON at offset %d: %s", err.position, err.text);
		return NULL;
	}
	if (!json_is_object(root)) {
		json_decref(root);
		fail(ret_error, "the body must be a JSON object");
		return NULL;
	}
	return root;
}

/* Wipes every keyValue string of the tree before it is freed. */
static void wipe_key_member(json_t *root)
{
	json_t *v = json_object_get(root, TEF_M_KEY_VALUE);

	if (json_is_string(v))
		sodium_memzero((char *)json_string_value(v), json_string_length(v));
}

/* The members both bodies share; returns 1 when `name` was one of them, 0 if not, or -errno. */
static int parse_common(const char *name, const json_t *v, struct req_common *c, char **ret_error)
{
	int r;

	if (strcmp(name, TEF_M_EXPIRATION_TIME) == 0) {
		r = parse_expiration(v, &c->expiration, ret_error);
		c->has_expiration = r == 0;
	} else if (strcmp(name, TEF_M_LABELS) == 0) {
		r = parse_strv(v, TEF_M_LABELS, TEF_MAX_LABELS, TEF_MAX_LABEL_LEN, false,
			       &c->labels, &c->n_labels, ret_error);
		c->has_labels = r == 0;
	} else if (strcmp(name, TEF_M_TARGET_IDS) == 0) {
		r = parse_strv(v, TEF_M_TARGET_IDS, TEF_MAX_TARGETS, TEF_MAX_PRINCIPAL_LEN, true,
			       &c->targets, &c->n_targets, ret_error);
		c->has_targets = r == 0;
	} else {
		return 0;
	}
	return r < 0 ? r : 1;
}

static int parse_registration_members(json_t *root, struct reg_request *out, char **ret_error)
{
	const char *name;
	json_t *v;
	int r;

	json_object_foreach (root, name, v) {
		r = parse_common(name, v, &out->c, ret_error);
		if (r < 0)
			return r;
		if (r > 0)
			continue;
		if (strcmp(name, TEF_M_SUID) == 0) {
			json_int_t s = json_integer_value(v);

			if (!json_is_integer(v))
				return fail(ret_error,
					    "member '" TEF_M_SUID "' must be an integer");
			if (s != TEF_SUID_ENCRYPTION && s != TEF_SUID_INTEGRITY)
				return fail(ret_error, "member '" TEF_M_SUID "' must be 34 or 35");
			out->suid = (int)s;
		} else if (strcmp(name, TEF_M_KEY_VALUE) == 0) {
			r = parse_key(v, &out->key, &out->key_len, ret_error);
			if (r < 0)
				return r;
		} else if (strcmp(name, TEF_M_ATREST_COUNT) == 0) {
			json_int_t k = json_integer_value(v);

			if (!json_is_integer(v) || k < 1 || k > TEF_MAX_BATCH)
				return fail(ret_error,
					    "member '" TEF_M_ATREST_COUNT
					    "' must be an integer from 1 to %d", TEF_MAX_BATCH);
			out->count = (unsigned)k;
		} else {
			return fail(ret_error, "unknown member '%s'", name);
		}
	}
	if (out->suid == 0)
		return fail(ret_error, "member '" TEF_M_SUID "' is required");
	/* a proposed key is one key: a batch is always generated by tefd */
	if (out->count && out->key)
		return fail(ret_error, "member '" TEF_M_ATREST_COUNT "' excludes '" TEF_M_KEY_VALUE "'");
	return 0;
}

int request_parse_registration(const char *body, size_t len, struct reg_request *ret,
			       char **ret_error)
{
	_cleanup_json_ json_t *root = NULL;
	struct reg_request out = {0};
	int r;

	*ret_error = NULL;
	root = load_object(body, len, ret_error);
	if (!root)
		return *ret_error ? -EINVAL : -ENOMEM;
	r = parse_registration_members(root, &out, ret_error);
	wipe_key_member(root);
	if (r < 0) {
		reg_request_done(&out);
		return r;
	}
	*ret = out;
	return 0;
}

static int parse_update_members(json_t *root, struct upd_request *out, char **ret_error)
{
	const char *name;
	json_t *v;
	int r;

	json_object_foreach (root, name, v) {
		r = parse_common(name, v, &out->c, ret_error);
		if (r < 0)
			return r;
		if (r > 0)
			continue;
		if (strcmp(name, TEF_M_ATREST_VERSION) == 0) {
			if (!json_is_integer(v) || json_integer_value(v) < 0)
				return fail(ret_error, "member '" TEF_M_ATREST_VERSION
						       "' must be a non-negative integer");
			out->version = (uint64_t)json_integer_value(v);
			out->has_version = true;
		} else if (strcmp(name, TEF_M_OWNER) == 0) {
			const char *s = json_string_value(v);

			/* an owner is one identity: not a group, not "all" */
			if (!s || !tef_principal_is_valid(s) ||
			    !(strncmp(s, "uid:", 4) == 0 || strncmp(s, "ae:", 3) == 0 ||
			      strncmp(s, "cse:", 4) == 0))
				return fail(ret_error,
					    "member '" TEF_M_OWNER
					    "' must name one identity: uid:N, ae:ID or cse:ID");
			free(out->owner);
			out->owner = strdup(s);
			if (!out->owner)
				return -ENOMEM;
		} else if (strcmp(name, TEF_M_SUID) == 0 || strcmp(name, TEF_M_KEY_VALUE) == 0) {
			return fail(ret_error, "member '%s' cannot be updated", name);
		} else {
			return fail(ret_error, "unknown member '%s'", name);
		}
	}
	if (!out->c.has_expiration && !out->c.has_labels && !out->c.has_targets &&
	    !out->has_version && !out->owner)
		return fail(ret_error,
			    "at least one of '" TEF_M_EXPIRATION_TIME "', '" TEF_M_LABELS
			    "', '" TEF_M_TARGET_IDS "', '" TEF_M_ATREST_VERSION "', '" TEF_M_OWNER
			    "' is required");
	return 0;
}

int request_parse_update(const char *body, size_t len, struct upd_request *ret, char **ret_error)
{
	_cleanup_json_ json_t *root = NULL;
	struct upd_request out = {0};
	int r;

	*ret_error = NULL;
	root = load_object(body, len, ret_error);
	if (!root)
		return *ret_error ? -EINVAL : -ENOMEM;
	r = parse_update_members(root, &out, ret_error);
	wipe_key_member(root);
	if (r < 0) {
		upd_request_done(&out);
		return r;
	}
	*ret = out;
	return 0;
}
