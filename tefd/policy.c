/* SPDX-License-Identifier: Apache-2.0 */
/* Access decisions over registrations; deny by default (DESIGN.md 2). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy.h"

void identity_local(uid_t uid, gid_t gid, const gid_t *groups, size_t n_groups,
		    struct identity *ret)
{
	memset(ret, 0, sizeof(*ret));
	ret->is_local = true;
	ret->uid = uid;
	ret->gid = gid;
	if (n_groups > TEF_MAX_GROUPS)
		n_groups = TEF_MAX_GROUPS;
	if (n_groups)
		memcpy(ret->groups, groups, n_groups * sizeof(gid_t));
	ret->n_groups = n_groups;
	snprintf(ret->principal, sizeof(ret->principal), "uid:%u", (unsigned)uid);
}

int identity_remote(const char *cert_cn, const char *cert_uri, struct identity *ret)
{
	const char *name = cert_cn && *cert_cn ? cert_cn : cert_uri;
	char buf[sizeof(ret->principal)];

	if (!name || !*name)
		return -EACCES;
	snprintf(buf, sizeof(buf), "%s:%s", name[0] == '/' ? "cse" : "ae", name);
	if (strlen(name) > TEF_MAX_PRINCIPAL_LEN || !tef_principal_is_valid(buf))
		return -EACCES;
	memset(ret, 0, sizeof(*ret));
	ret->is_local = false;
	ret->uid = (uid_t)-1;
	ret->gid = (gid_t)-1;
	memcpy(ret->principal, buf, sizeof(buf));
	return 0;
}

/* Strict decimal id below (uid_t)-1; advances *p past it. */
static int parse_id(const char **p, unsigned *ret)
{
	unsigned long long v = 0;
	const char *s = *p;
	size_t n = 0;

	while (s[n] >= '0' && s[n] <= '9') {
		v = v * 10 + (unsigned)(s[n] - '0');
		if (++n > 10)
			return -EINVAL;
	}
	if (n == 0 || (n > 1 && s[0] == '0') || v >= 0xffffffffULL)
		return -EINVAL;
	*ret = (unsigned)v;
	*p = s + n;
	return 0;
}

int identity_parse_on_behalf_of(const char *value, struct identity *ret)
{
	gid_t groups[TEF_MAX_GROUPS];
	size_t n = 0;
	unsigned uid, gid, g;
	const char *p = value;

	if (!p || strncmp(p, "uid=", 4) != 0)
		return -EINVAL;
	p += 4;
	if (parse_id(&p, &uid) < 0 || strncmp(p, ";gid=", 5) != 0)
		return -EINVAL;
	p += 5;
	if (parse_id(&p, &gid) < 0)
		return -EINVAL;
	if (*p == ';') {
		if (strncmp(p, ";groups=", 8) != 0)
			return -EINVAL;
		p += 8;
		while (*p) {
			if (n == TEF_MAX_GROUPS || parse_id(&p, &g) < 0)
				return -EINVAL;
			groups[n++] = g;
			if (*p == ',' && p[1])
				p++;
			else if (*p)
				return -EINVAL;
		}
	}
	if (*p)
		return -EINVAL;
	identity_local(uid, gid, groups, n, ret);
	return 0;
}

void identity_describe(const struct identity *id, char *buf, size_t size)
{
	if (id->is_local)
		snprintf(buf, size, "uid=%u,gid=%u", (unsigned)id->uid, (unsigned)id->gid);
	else
		snprintf(buf, size, "%s", id->principal);
}

static bool uid_in(const uid_t *v, size_t n, uid_t uid)
{
	for (size_t i = 0; i < n; i++)
		if (v[i] == uid)
			return true;
	return false;
}

bool policy_is_admin(const struct policy *p, const struct identity *id)
{
	return id->is_local && uid_in(p->admins, p->n_admins, id->uid);
}

bool policy_is_delegate(const struct policy *p, const struct identity *id)
{
	return id->is_local && uid_in(p->delegates, p->n_delegates, id->uid);
}

static bool parse_principal_id(const char *s, unsigned *ret)
{
	const char *p = s;

	return parse_id(&p, ret) == 0 && *p == '\0';
}

bool policy_principal_matches(const char *principal, const struct identity *id)
{
	unsigned n;

	if (strcmp(principal, "all") == 0)
		return true;
	if (!id->is_local)
		return strcmp(principal, id->principal) == 0;
	if (strncmp(principal, "uid:", 4) == 0)
		return parse_principal_id(principal + 4, &n) && n == id->uid;
	if (strncmp(principal, "gid:", 4) == 0) {
		if (!parse_principal_id(principal + 4, &n))
			return false;
		if (n == id->gid)
			return true;
		for (size_t i = 0; i < id->n_groups; i++)
			if (id->groups[i] == n)
				return true;
	}
	return false;
}

static bool is_owner(const struct identity *id, const char *owner)
{
	return owner && strcmp(owner, id->principal) == 0;
}

bool policy_can_retrieve(const struct identity *id, const char *owner, char *const *targets,
			 size_t n_targets)
{
	if (is_owner(id, owner))
		return true;
	for (size_t i = 0; i < n_targets; i++)
		if (policy_principal_matches(targets[i], id))
			return true;
	return false;
}

bool policy_can_manage(const struct policy *p, const struct identity *id, const char *owner)
{
	return is_owner(id, owner) || policy_is_admin(p, id);
}

bool policy_can_list(const struct policy *p, const struct identity *id, const char *owner_filter)
{
	return policy_is_admin(p, id) || (owner_filter && is_owner(id, owner_filter));
}
