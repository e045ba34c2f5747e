/* SPDX-License-Identifier: Apache-2.0 */
/* Who may do what to a registration: principals, owners, targets, admins, delegates. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "atrest/tef_api.h"

/* An authenticated identity: local (kernel-verified ids) or remote (TLS AE-ID/CSE-ID). */
struct identity {
	bool is_local;
	uid_t uid;
	gid_t gid;
	size_t n_groups;
	gid_t groups[TEF_MAX_GROUPS];
	/* "uid:N" for local identities, "ae:<AE-ID>" or "cse:<CSE-ID>" for remote ones */
	char principal[TEF_MAX_PRINCIPAL_LEN + 8];
};

struct policy {
	const uid_t *admins;
	size_t n_admins;
	const uid_t *delegates;
	size_t n_delegates;
};

/* Fills a local identity; groups are copied (at most TEF_MAX_GROUPS). */
void identity_local(uid_t uid, gid_t gid, const gid_t *groups, size_t n_groups,
		    struct identity *ret);

/*
 * Identity of a TLS client from its verified certificate: the subject CN,
 * else the URI SAN, is the AE-ID ("ae:") or, when it starts with '/', the
 * CSE-ID ("cse:"; TS-0001 7.2 SP-relative CSE-IDs). Returns 0, or -EACCES
 * when the certificate names nothing usable.
 */
int identity_remote(const char *cert_cn, const char *cert_uri, struct identity *ret);

/*
 * Parses "uid=N;gid=N;groups=N,N" (the X-Atrest-On-Behalf-Of header, groups
 * optional and possibly empty) strictly. Returns 0 or -EINVAL.
 */
int identity_parse_on_behalf_of(const char *value, struct identity *ret);

/* Writes "uid=N,gid=N" or the remote principal into buf. */
void identity_describe(const struct identity *id, char *buf, size_t size);

bool policy_is_admin(const struct policy *p, const struct identity *id);
bool policy_is_delegate(const struct policy *p, const struct identity *id);

/* Does `principal` (validated, see tef_principal_is_valid) name `id`? */
bool policy_principal_matches(const char *principal, const struct identity *id);

/* TS-0003 8.8.2.8: the owner and the targets may retrieve; admins only if targeted. */
bool policy_can_retrieve(const struct identity *id, const char *owner, char *const *targets,
			 size_t n_targets);

/* The owner and admins may update, delete and list. */
bool policy_can_manage(const struct policy *p, const struct identity *id, const char *owner);

/* Listing: admins see any owner; others only their own (owner filter NULL or theirs). */
bool policy_can_list(const struct policy *p, const struct identity *id, const char *owner_filter);
