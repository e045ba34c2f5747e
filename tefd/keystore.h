/* SPDX-License-Identifier: Apache-2.0 */
/* tefd's credential store: SQLite rows whose keys are wrapped under the master key. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "atrest/tef_api.h"

#define KEYSTORE_MASTER_KEY_BYTES 32
#define KEYSTORE_AUDIT_KEY_BYTES 32

/*
 * Creates a new random master key file at `path` with mode 0600 (O_EXCL:
 * never overwrites, never follows a symlink). Returns 0 or -errno.
 */
int keystore_master_key_create(const char *path);

/*
 * Loads a master key file: a regular file (not a symlink) of exactly
 * KEYSTORE_MASTER_KEY_BYTES bytes, not readable or writable by group or
 * others. Returns 0 and *ret (sodium_malloc'd, read-only; the caller frees
 * with sodium_free), -ENOENT, -EPERM for a bad mode, -EINVAL for a bad size.
 */
int keystore_master_key_load(const char *path, uint8_t **ret);

/* One registration. Strings and arrays are owned (free with key_record_free). */
struct key_record {
	uint8_t id[TEF_RELATIVE_KEY_ID_BYTES];
	char id_hex[TEF_RELATIVE_KEY_ID_HEX + 1];
	char *owner;
	int suid;
	int64_t created;
	int64_t expires;
	uint64_t version;
	char **labels;
	size_t n_labels;
	char **targets;
	size_t n_targets;
	uint8_t *key; /* sodium_malloc'd, only after keystore_unwrap() */
	size_t key_len;
	/* the wrapped key as stored (keystore_get only) */
	uint8_t nonce[24];
	uint8_t *wrapped;
	size_t wrapped_len;
};

struct key_record *key_record_free(struct key_record *r);

struct keystore;

/*
 * Opens (creating with mode 0600 under a 077 umask) the SQLite database at
 * `path`, refusing a symlink. WAL, synchronous=FULL, secure_delete. The
 * master key is borrowed and must outlive the store. The first open stores
 * a check value; later opens verify it and unwrap every stored key, and
 * fail with -EKEYREJECTED when any of that fails (wrong master key or
 * tampered rows). Returns 0 and *ret, or -errno.
 */
int keystore_open(const char *path, const uint8_t *master_key, struct keystore **ret);

/* Closes and frees. Accepts NULL, returns NULL. */
struct keystore *keystore_close(struct keystore *ks);

/*
 * Current time for expiry decisions: max(wall clock, the highest time ever
 * observed), so setting the clock back does not revive an expired key.
 */
int64_t keystore_now(struct keystore *ks);

/* The key to HMAC Credential-Ids with in the audit log (derived, not the master key). */
const uint8_t *keystore_audit_key(const struct keystore *ks);

/*
 * Stores a new registration: picks a fresh never-used id (written into
 * rec->id / rec->id_hex), wraps rec->key (16 or 32 bytes) and inserts the
 * row, all in one BEGIN IMMEDIATE transaction that also enforces
 * `max_per_owner` live registrations for rec->owner (-EDQUOT above).
 */
int keystore_insert(struct keystore *ks, struct key_record *rec, unsigned max_per_owner);

/*
 * The same for n registrations in one transaction (one fsync for all):
 * either every one is stored or none (-EDQUOT when the quota would be
 * exceeded by any of them).
 */
int keystore_insert_batch(struct keystore *ks, struct key_record *recs, size_t n,
			  unsigned max_per_owner);

/*
 * Reads the registration `id_hex` (expired ones too: the caller decides),
 * with its key still wrapped. Returns 0 and *ret, or -ENOENT.
 */
int keystore_get(struct keystore *ks, const char *id_hex, struct key_record **ret);

/*
 * Unwraps rec->key (sodium memory) from rec->wrapped, binding it to the
 * record's id, owner and SUID. Returns 0 or -EBADMSG when it fails to
 * unwrap (tampered row), so policy can be decided before any key is in clear.
 */
int keystore_unwrap(const struct keystore *ks, struct key_record *rec);

/*
 * The same into caller-provided secure memory of at least 32 bytes (the hot
 * path keeps one such buffer per thread instead of mapping a fresh one).
 */
int keystore_unwrap_into(const struct keystore *ks, const struct key_record *rec, uint8_t *out,
			 size_t *ret_len);

/* Fields of a Key Registration Update; NULL / false members stay unchanged. */
struct key_update {
	bool set_expires;
	int64_t expires;
	bool set_labels;
	char **labels; /* borrowed */
	size_t n_labels;
	bool set_targets;
	char **targets; /* borrowed */
	size_t n_targets;
	bool set_version;
	uint64_t version;
	const char *owner;	/* new owner principal (borrowed), NULL: unchanged */
	unsigned max_per_owner; /* quota of the new owner (0: none) */
};

/*
 * Applies `u` to `id_hex` in one transaction. Returns 0 and the updated
 * record (without key) in *ret, -ENOENT, -ERANGE when the version
 * would go down, or -EDQUOT when a new owner is at its quota. A new owner
 * re-wraps the key: the owner is part of the wrapping's associated data.
 */
int keystore_update(struct keystore *ks, const char *id_hex, const struct key_update *u,
		    struct key_record **ret);

/*
 * Deletes a registration and crypto-shreds it: secure_delete zeroes the
 * freed pages and a truncating WAL checkpoint drops the old frames.
 * Returns 0 or -ENOENT.
 */
int keystore_delete(struct keystore *ks, const char *id_hex);

struct keystore_filter {
	const char *owner;	/* NULL: any */
	const char *label;	/* NULL: any */
	int64_t expires_before; /* 0: any */
	int64_t now;		/* rows that expired at or before now are skipped */
};

/* Calls fn for each matching record (no keys), ordered by expiry; fn may stop with non-zero. */
int keystore_list(struct keystore *ks, const struct keystore_filter *f,
		  int (*fn)(const struct key_record *r, void *userdata), void *userdata);

/*
 * Purges registrations expired at `now` (crypto-shredded like a delete),
 * calling fn (may be NULL) with each purged id before the commit. Returns
 * how many, or -errno (then nothing was purged).
 */
int keystore_sweep(struct keystore *ks, int64_t now, void (*fn)(const char *id_hex, void *),
		   void *userdata);

/* The rows `owner` holds, live or expired, as the quota check counts them
 * (diagnostics and tests); 0 for an owner without any. */
int keystore_owner_rows(struct keystore *ks, const char *owner, int64_t *ret);

/*
 * A consistent snapshot of the whole database as bytes (keys stay wrapped):
 * what `tefctl backup` saves and `tefctl restore` puts back. Returns 0 and a
 * malloc'd *ret of *ret_len bytes, or -errno.
 */
int keystore_snapshot(struct keystore *ks, uint8_t **ret, size_t *ret_len);

/*
 * Checks that the SQLite file at `path` is a tefd database whose keys the
 * master key unwraps (read-only; nothing is changed). Returns 0,
 * -EKEYREJECTED, or -errno / -EBADMSG for something that is not one.
 */
int keystore_verify_file(const char *path, const uint8_t *master_key);
