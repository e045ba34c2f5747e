/* SPDX-License-Identifier: Apache-2.0 */
/* Client of tefd's MAF key procedures (TS-0003 8.8.2.7-8.8.2.10), over its Unix socket or mutual
 * TLS. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "atrest/tef_api.h"

struct tef_client;

/*
 * A client for tefd's Unix socket at `path` (HTTP/1.1, the caller is
 * identified by SO_PEERCRED). Returns 0 and *ret (free with
 * tef_client_free), or -ENOMEM / -EINVAL. Nothing is connected yet.
 * A client may be shared by any number of threads: each call borrows a
 * connection from a locked pool, so connections are kept alive.
 */
int tef_client_new_unix(const char *path, struct tef_client **ret);

/*
 * A client for tefd's TCP listener: `url` is "https://HOST:PORT", `cert`
 * and `key` the PEM client certificate (its CN or URI SAN names the AE-ID or
 * CSE-ID) and key, `ca` the PEM CA that tefd's certificate must chain to.
 */
int tef_client_new_tls(const char *url, const char *cert, const char *key, const char *ca,
		       struct tef_client **ret);

/* Closes every pooled connection and frees. Accepts NULL, returns NULL. */
struct tef_client *tef_client_free(struct tef_client *c);

struct outage;
/* Reports the reachability of every exchange to o (outage.h; borrowed, must outlive c). */
void tef_client_set_outage(struct tef_client *c, struct outage *o);

/*
 * Identity a delegate (atrestfs) acts for: sent as
 * "X-Atrest-On-Behalf-Of: uid=N;gid=N;groups=N,N". tefd honours it only from
 * uids configured as delegates (403 / 4103 otherwise). `groups` is borrowed
 * for the duration of the call; at most TEF_MAX_GROUPS are sent.
 * Pass NULL to a call to act as the calling process itself.
 */
struct tef_identity {
	uid_t uid;
	gid_t gid;
	size_t n_groups;
	const gid_t *groups;
};

/* Key Registration request (TS-0003 table 8.8.2.7-1). All pointers borrowed. */
struct tef_registration_req {
	int suid;		   /* TEF_SUID_ENCRYPTION (34) or TEF_SUID_INTEGRITY (35) */
	const char *const *labels; /* n_labels strings */
	size_t n_labels;
	const char *const *targets; /* principals: "uid:N" "gid:N" "ae:X" "cse:X" "all" */
	size_t n_targets;
	int64_t expiration; /* seconds since the epoch; 0: tefd's default */
	const uint8_t *key; /* 16 or 32 bytes; NULL: tefd generates 32 */
	size_t key_len;
};

/*
 * A registration as tefd reports it. Every member is owned by the struct;
 * free with tef_registration_free(), which wipes the key.
 */
struct tef_registration {
	char *credential_id;   /* "<relativeKeyID>@<fqdn>" (TS-0003 10.3.5) */
	char *relative_key_id; /* 32 hex digits */
	int64_t expiration;    /* effective expiration, seconds since the epoch */
	int suid;
	char *owner; /* principal of the registering identity */
	char **labels;
	size_t n_labels;
	char **targets;
	size_t n_targets;
	uint64_t version; /* atrestVersion: owner-maintained monotonic counter */
	uint8_t *key;	  /* key bytes in a secure_slot_get() slot (sodium_malloc memory), or NULL */
	size_t key_len;
};

struct tef_registration *tef_registration_free(struct tef_registration *r);

/* Frees an array from tef_list() and its elements. Accepts NULL, returns NULL. */
struct tef_registration **tef_registration_list_free(struct tef_registration **list, size_t n);

/*
 * Error convention of every call below: 0 on success, else -errno, with the
 * oneM2M RSC translated once by errno_from_rsc(), except:
 * - tef_retrieve: 4004 and 4103 both give -EACCES (missing and forbidden are
 *   indistinguishable by design);
 * - an expired registration (authorised caller): -EKEYEXPIRED;
 * - too many failed retrievals (rate limited): -EAGAIN;
 * - tefd unreachable: -ECONNREFUSED (Unix socket) or -EHOSTUNREACH (TCP);
 *   TLS handshake failures: -ECONNREFUSED as well.
 * `ret_rsc` (may be NULL) receives the raw RSC, or 0 when no answer came.
 * `ret_*` results are untouched on failure.
 */

/* Key Registration: POST /keys. *ret has the key only when tefd generated it. */
int tef_register(struct tef_client *c, const struct tef_identity *onbehalf,
		 const struct tef_registration_req *req, struct tef_registration **ret,
		 int *ret_rsc);

/*
 * Key Registration of `count` (1..TEF_MAX_BATCH) keys at once, all generated
 * by tefd with the same request members (req->key must be NULL): POST /keys
 * with atrestCount, stored in one transaction. *ret is an array of *ret_n
 * registrations, each with its key (free with tef_registration_list_free).
 * A tefd without batches answers 400: -EINVAL, and nothing was registered.
 */
int tef_register_batch(struct tef_client *c, const struct tef_identity *onbehalf,
		       const struct tef_registration_req *req, unsigned count,
		       struct tef_registration ***ret, size_t *ret_n, int *ret_rsc);

/* Key Retrieval: GET /keys/<id>; `id` is a relativeKeyID or a Credential-Id. */
int tef_retrieve(struct tef_client *c, const struct tef_identity *onbehalf, const char *id,
		 struct tef_registration **ret, int *ret_rsc);

/*
 * Key Registration Update: PUT /keys/<id>. Only the members flagged are sent
 * (at least one). tefd refuses to lower the version (400 / 4000 -> -EINVAL).
 */
struct tef_update_req {
	bool set_expiration;
	int64_t expiration;
	bool set_labels;
	const char *const *labels;
	size_t n_labels;
	bool set_targets;
	const char *const *targets;
	size_t n_targets;
	bool set_version;
	uint64_t version;
	const char *owner; /* transfers ownership ("uid:N", "ae:X", "cse:X"); NULL: unchanged */
};

/* ret (may be NULL) gets the updated registration without key. */
int tef_update(struct tef_client *c, const struct tef_identity *onbehalf, const char *id,
	       const struct tef_update_req *u, struct tef_registration **ret, int *ret_rsc);

/* Key De-Registration: DELETE /keys/<id>; the wrapped key is destroyed. */
int tef_deregister(struct tef_client *c, const struct tef_identity *onbehalf, const char *id,
		   int *ret_rsc);

/* Listing filters; NULL / 0 members are not applied. */
struct tef_list_filter {
	const char *owner;
	const char *label;
	int64_t expires_before;
};

/*
 * GET /keys?owner=&label=&expiresBefore=: the caller's own registrations
 * (admins: everyone's), without keys. *ret is an array of *ret_n entries.
 */
int tef_list(struct tef_client *c, const struct tef_identity *onbehalf,
	     const struct tef_list_filter *filter, struct tef_registration ***ret, size_t *ret_n,
	     int *ret_rsc);

/*
 * GET /backup (admins only): a consistent snapshot of tefd's database, keys
 * still wrapped under the master key. *ret is malloc'd, *ret_len bytes.
 */
int tef_backup(struct tef_client *c, uint8_t **ret, size_t *ret_len, int *ret_rsc);
