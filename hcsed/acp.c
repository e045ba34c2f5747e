/* SPDX-License-Identifier: Apache-2.0 */
/* Access control: <accessControlPolicy> evaluation (TS-0004 7.3.3.15, TS-0001 9.6.2). */
#include <arpa/inet.h>
#include <errno.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "atrest/cleanup.h"
#include "atrest/rsc.h"
#include "resource.h"

/* ---- acco: time windows (m2m:scheduleEntry) ---------------------------- */

/* One cron-like field: "*", "N", "N-M", "*\/S", "N-M/S", comma lists. */
static bool field_match(const char *f, size_t len, int value, int min, int max, bool *ret_valid)
{
	bool match = false;
	size_t i = 0;

	*ret_valid = false;
	while (i < len) {
		size_t j = i;
		int lo = min, hi = max, step = 1;
		char *end;

		while (j < len && f[j] != ',')
			j++;
		const char *p = f + i, *e = f + j;
		if (p < e && *p == '*')
			p++;
		else {
			lo = (int)strtol(p, &end, 10);
			if (end == p)
				return false;
			p = end;
			hi = lo;
			if (p < e && *p == '-') {
				p++;
				hi = (int)strtol(p, &end, 10);
				if (end == p)
					return false;
				p = end;
			}
		}
		if (p < e && *p == '/') {
			p++;
			step = (int)strtol(p, &end, 10);
			if (end == p || step <= 0)
				return false;
			p = end;
		}
		if (p != e || lo < min || hi > max || lo > hi)
			return false;
		if (value >= lo && value <= hi && (value - lo) % step == 0)
			match = true;
		i = j + 1;
	}
	*ret_valid = len > 0;
	return match;
}

/* Parses and matches; *ret_valid says whether the entry was well formed. */
static bool schedule_eval(const char *entry, int64_t now, bool *ret_valid)
{
	time_t t = (time_t)now;
	struct tm tm;
	int values[7], mins[7] = {0, 0, 0, 1, 1, 0, 1970}, maxs[7] = {59, 59, 23, 31, 12, 6, 9999};
	const char *p = entry;
	bool all = true;
	int n = 0;

	*ret_valid = false;
	if (!entry)
		return false;
	gmtime_r(&t, &tm);
	values[0] = tm.tm_sec;
	values[1] = tm.tm_min;
	values[2] = tm.tm_hour;
	values[3] = tm.tm_mday;
	values[4] = tm.tm_mon + 1;
	values[5] = tm.tm_wday;
	values[6] = tm.tm_year + 1900;
	while (*p) {
		bool valid;
		size_t len;

		while (*p == ' ')
			p++;
		if (!*p)
			break;
		len = strcspn(p, " ");
		if (n >= 7)
			return false;
		all &= field_match(p, len, values[n], mins[n], maxs[n], &valid);
		if (!valid)
			return false;
		n++;
		p += len;
	}
	/* TS-0004 m2m:scheduleEntry: sec min hour day month dow [year] */
	if (n < 6)
		return false;
	*ret_valid = true;
	return all;
}

bool acp_schedule_match(const char *entry, int64_t now)
{
	bool valid;

	return schedule_eval(entry, now, &valid);
}

/* ---- acco: IP ranges ------------------------------------------------------ */

static bool ip_in(const char *spec, const char *addr, int family, bool *ret_valid)
{
	unsigned char net[16], a[16];
	char buf[64];
	const char *slash = strchr(spec, '/');
	size_t alen = family == AF_INET ? 4 : 16;
	long bits = (long)alen * 8;

	*ret_valid = false;
	if (strlen(spec) >= sizeof(buf))
		return false;
	snprintf(buf, sizeof(buf), "%.*s", slash ? (int)(slash - spec) : (int)strlen(spec), spec);
	if (inet_pton(family, buf, net) != 1)
		return false;
	if (slash) {
		char *end;

		bits = strtol(slash + 1, &end, 10);
		if (end == slash + 1 || *end || bits < 0 || bits > (long)alen * 8)
			return false;
	}
	*ret_valid = true;
	if (!addr || inet_pton(family, addr, a) != 1)
		return false;
	for (long i = 0; i < bits; i++) {
		unsigned char m = (unsigned char)(0x80 >> (i % 8));

		if ((net[i / 8] & m) != (a[i / 8] & m))
			return false;
	}
	return true;
}

static bool ip_list_match(json_t *list, const char *addr, int family, bool *ret_valid)
{
	json_t *v;
	size_t i;
	bool any = false;

	*ret_valid = true;
	json_array_foreach (list, i, v) {
		bool valid;

		if (!json_is_string(v) ||
		    (ip_in(json_string_value(v), addr, family, &valid), !valid)) {
			*ret_valid = false;
			return false;
		}
		any |= ip_in(json_string_value(v), addr, family, &valid);
	}
	return any;
}

/* One m2m:accessControlContexts entry: all of its conditions must hold. */
static bool acco_entry_match(json_t *acco, const char *peer, int64_t now, bool *ret_valid)
{
	json_t *actw = json_object_get(acco, "actw"), *acip = json_object_get(acco, "acip"), *v;
	bool ok = true, valid;
	size_t i;

	*ret_valid = json_is_object(acco);
	if (!*ret_valid)
		return false;
	if (actw) {
		bool any = false;

		if (!json_is_array(actw))
			return *ret_valid = false;
		json_array_foreach (actw, i, v) {
			any |= schedule_eval(json_string_value(v), now, &valid);
			if (!valid)
				return *ret_valid = false;
		}
		ok &= any || json_array_size(actw) == 0;
	}
	if (acip) {
		json_t *v4 = json_object_get(acip, "ipv4"), *v6 = json_object_get(acip, "ipv6");
		bool m4, m6, val4, val6;
		const char *a = peer && *peer ? peer : NULL;
		char mapped[64];

		if (!json_is_object(acip) || (v4 && !json_is_array(v4)) ||
		    (v6 && !json_is_array(v6)))
			return *ret_valid = false;
		/* "::ffff:a.b.c.d" is an IPv4 peer */
		if (a && strncmp(a, "::ffff:", 7) == 0 && strchr(a, '.')) {
			snprintf(mapped, sizeof(mapped), "%s", a + 7);
			a = mapped;
		}
		m4 = ip_list_match(v4, a, AF_INET, &val4);
		m6 = ip_list_match(v6, a, AF_INET6, &val6);
		if (!val4 || !val6)
			return *ret_valid = false;
		ok &= m4 || m6;
	}
	return ok;
}

/* ---- acor ----------------------------------------------------------------- */

static bool acor_match(const char *pat, const char *fr, const char *csi)
{
	size_t n = strlen(csi);

	if (strcmp(pat, "all") == 0 || strcmp(pat, "*") == 0)
		return true;
	if (!fr || !*fr)
		return false;
	/* wildcards (TS-0001 9.6.2.1: "*" in an originator pattern) */
	if (fnmatch(pat, fr, 0) == 0)
		return true;
	/* an SP-relative pattern of this CSE names the same AE as its stem */
	if (strncmp(pat, csi, n) == 0 && pat[n] == '/' && fnmatch(pat + n + 1, fr, 0) == 0)
		return true;
	if (strncmp(fr, csi, n) == 0 && fr[n] == '/' && fnmatch(pat, fr + n + 1, 0) == 0)
		return true;
	return false;
}

bool acp_privileges_valid(const json_t *privileges)
{
	json_t *acr = json_object_get(privileges, "acr"), *rule, *v;
	size_t i, k;

	if (!json_is_object(privileges))
		return false;
	if (!acr)
		return json_object_size(privileges) == 0;
	if (!json_is_array(acr) || json_object_size(privileges) != 1)
		return false;
	json_array_foreach (acr, i, rule) {
		json_t *acor = json_object_get(rule, "acor"), *acop = json_object_get(rule, "acop");
		json_t *acco = json_object_get(rule, "acco");
		const char *key;

		if (!json_is_object(rule) || !json_is_array(acor) || !json_is_integer(acop) ||
		    json_integer_value(acop) < 1 || json_integer_value(acop) > 63)
			return false;
		json_object_foreach (rule, key, v)
			if (strcmp(key, "acor") && strcmp(key, "acop") && strcmp(key, "acco") &&
			    strcmp(key, "acaf"))
				return false;
		json_array_foreach (acor, k, v)
			if (!json_is_string(v))
				return false;
		if (acco) {
			if (!json_is_array(acco))
				return false;
			json_array_foreach (acco, k, v) {
				bool valid;

				acco_entry_match(v, NULL, 0, &valid);
				if (!valid)
					return false;
			}
		}
	}
	return true;
}

bool acp_privileges_allow(const json_t *privileges, const char *originator, const char *csi, int op,
			  const char *peer_addr, int64_t now)
{
	json_t *acr = json_object_get(privileges, "acr"), *rule, *v;
	size_t i, k;

	json_array_foreach (acr, i, rule) {
		json_t *acco = json_object_get(rule, "acco");
		bool who = false, when = json_array_size(acco) == 0;

		if (!(json_integer_value(json_object_get(rule, "acop")) & op))
			continue;
		json_array_foreach (json_object_get(rule, "acor"), k, v)
			who |= acor_match(json_string_value(v), originator, csi);
		if (!who)
			continue;
		/* TS-0004 Table 6.3.5.x accessControlContexts: any entry may match */
		json_array_foreach (acco, k, v) {
			bool valid;

			when |= acco_entry_match(v, peer_addr, now, &valid);
		}
		if (when)
			return true;
	}
	return false;
}

/* ---- the decision for a resource ---------------------------------------- */

static bool acpi_allow(struct hcse_ctx *ctx, json_t *acpi, int op)
{
	json_t *v;
	size_t i;

	json_array_foreach (acpi, i, v) {
		struct store_res acp = {0};
		const char *id = json_string_value(v);
		bool ok = false;
		int r;

		if (!id)
			continue;
		r = store_get_by_ri(ctx->t, id, false, &acp);
		if (r == -ENOENT)
			r = store_get_by_path(ctx->t, id, false, &acp);
		/* an ACP that is gone grants nothing (deny by default) */
		if (r == 0 && acp.ty == TY_ACP && acp.et >= ctx->now)
			ok = acp_privileges_allow(json_object_get(acp.attrs, "pv"), ctx->fr,
						  ctx->cse->csi, op, ctx->req->peer_addr, ctx->now);
		store_res_clear(&acp);
		if (ok)
			return true;
	}
	return false;
}

int acp_allowed(struct hcse_ctx *ctx, const struct store_res *res, int op, bool *ret)
{
	_cleanup_json_ json_t *governing = NULL;
	const struct store_res *node = res;
	struct store_res up = {0};
	bool self_acp = false;
	int r = 0;

	*ret = false;
	if (strcmp(ctx->fr, ctx->cse->admin) == 0) {
		*ret = true;
		return 0;
	}
	for (int depth = 0; depth < 64; depth++) {
		/* The creator of a resource, and of any resource above it (its
		 * AE), holds all privileges on it (TS-0001 9.6.2.x default). */
		if (node->ty != TY_CB && node->cr && strcmp(node->cr, ctx->fr) == 0) {
			*ret = true;
			break;
		}
		if (!governing) {
			json_t *acpi = json_object_get(node->attrs, "acpi");

			if (node == res && node->ty == TY_ACP) {
				/* an ACP is governed by its own selfPrivileges (TS-0004 7.4.2.1) */
				governing = json_incref(json_object_get(node->attrs, "pvs"));
				self_acp = true;
			} else if (json_array_size(acpi) > 0)
				/* acpi applies to the resource and, where a child has
				 * none (e.g. contentInstance), to its subtree */
				governing = json_incref(acpi);
		}
		if (node->ty == TY_CB || !node->pi)
			break;
		struct store_res parent = {0};
		r = store_get_by_ri(ctx->t, node->pi, false, &parent);
		if (r < 0)
			break;
		store_res_clear(&up);
		up = parent;
		node = &up;
	}
	store_res_clear(&up);
	if (r < 0 && r != -ENOENT)
		return r;
	if (*ret)
		return 0;
	if (governing)
		*ret = self_acp ? acp_privileges_allow(governing, ctx->fr, ctx->cse->csi, op,
						       ctx->req->peer_addr, ctx->now)
				: acpi_allow(ctx, governing, op);
	else
		/* no policy anywhere: the CSEBase itself may be retrieved and
		 * searched by anyone; everything else is denied */
		*ret = res->ty == TY_CB && (op == ACOP_RETRIEVE || op == ACOP_DISCOVER);
	return 0;
}

int acp_check(struct hcse_ctx *ctx, const struct store_res *res, int op)
{
	bool ok;
	int r = acp_allowed(ctx, res, op, &ok);

	if (r < 0)
		return r;
	if (!ok)
		return ctx_fail(ctx, RSC_ORIGINATOR_HAS_NO_PRIVILEGE,
				"originator has no privilege");
	return 0;
}
