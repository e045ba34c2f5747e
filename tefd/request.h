/* SPDX-License-Identifier: Apache-2.0 */
/* Strict decoding of Key Registration and Key Registration Update bodies. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Members the registration and its update share. */
struct req_common {
	bool has_expiration;
	int64_t expiration;
	bool has_labels;
	char **labels;
	size_t n_labels;
	bool has_targets;
	char **targets;
	size_t n_targets;
};

/* TS-0003 table 8.8.2.7-1, as decoded. Free the contents with reg_request_done(). */
struct reg_request {
	int suid;
	struct req_common c;
	uint8_t *key; /* sodium_malloc'd, NULL when tefd is to generate it */
	size_t key_len;
	unsigned count; /* atrestCount: keys to generate (1 when absent) */
};

/* TS-0003 8.8.2.9, as decoded. Free the contents with upd_request_done(). */
struct upd_request {
	struct req_common c;
	bool has_version;
	uint64_t version;
	char *owner; /* ownership transfer: "uid:N", "ae:X" or "cse:X"; NULL: none */
};

/*
 * Decodes a registration body: a JSON object with only the members
 * expirationTime (timestamp string), labels (array of strings), suid (34 or
 * 35, required), targetIDs (array of principals), keyValue (base64url
 * without padding of 16 or 32 bytes), atrestCount (1..TEF_MAX_BATCH keys
 * generated at once; not with keyValue). Returns 0 and fills *ret, or -EINVAL
 * with *ret_error (malloc'd, names the offending member) and *ret untouched.
 * Any copy of keyValue in the parser's memory is wiped.
 */
int request_parse_registration(const char *body, size_t len, struct reg_request *ret,
			       char **ret_error);

/* Same for an update body: expirationTime, labels, targetIDs, atrestVersion; at least one. */
int request_parse_update(const char *body, size_t len, struct upd_request *ret, char **ret_error);

void reg_request_done(struct reg_request *r);
void upd_request_done(struct upd_request *r);

/* Frees a string vector of n entries (NULL-safe). */
void strv_free(char **v, size_t n);
