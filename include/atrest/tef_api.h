/* SPDX-License-Identifier: Apache-2.0 */
/* The tefd wire contract: routes, headers, JSON member names, limits, timestamps. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Routes (docs/TEF-API.md). TS-0003 8.8.2.7-8.8.2.10: the MAF key procedures. */
#define TEF_ROUTE_KEYS "/keys"
#define TEF_ROUTE_KEYS_PREFIX "/keys/"
#define TEF_ROUTE_BACKUP "/backup" /* GET, admins only: the database, keys still wrapped */
#define TEF_BACKUP_MEDIA_TYPE "application/vnd.sqlite3"

/* Headers. */
#define TEF_HDR_RSC "X-M2M-RSC"
#define TEF_HDR_ON_BEHALF_OF "X-Atrest-On-Behalf-Of"

/* JSON members; names mirror TS-0003 table 8.8.2.7-1 and friends. */
#define TEF_M_EXPIRATION_TIME "expirationTime"
#define TEF_M_LABELS "labels"
#define TEF_M_SUID "suid"
#define TEF_M_TARGET_IDS "targetIDs"
#define TEF_M_KEY_VALUE "keyValue"
#define TEF_M_CREDENTIAL_ID "credentialID"
#define TEF_M_RELATIVE_KEY_ID "relativeKeyID"
#define TEF_M_OWNER "owner"
#define TEF_M_ATREST_VERSION "atrestVersion"
#define TEF_M_ATREST_COUNT "atrestCount" /* registration: N keys in one request (batch) */
#define TEF_M_KEYS "keys"     /* listing: array of registrations */
#define TEF_M_DBG "m2m:dbg"   /* error responses: human readable reason */
#define TEF_M_REASON "reason" /* error responses: machine readable, e.g. "expired" */
#define TEF_REASON_EXPIRED "expired"
#define TEF_REASON_RATE_LIMITED "rate-limited"

/* Query arguments of the listing. */
#define TEF_Q_OWNER "owner"
#define TEF_Q_LABEL "label"
#define TEF_Q_EXPIRES_BEFORE "expiresBefore"

/* TS-0003 8.6.3 / TS-0001 table 7.1.9-1: Security Usage Identifiers. */
#define TEF_SUID_ENCRYPTION 34
#define TEF_SUID_INTEGRITY 35

/* Limits the server enforces (it answers 400 / 4000 above them). */
#define TEF_MAX_BODY 65536
#define TEF_MAX_LABELS 32
#define TEF_MAX_LABEL_LEN 256
#define TEF_MAX_TARGETS 64
#define TEF_MAX_PRINCIPAL_LEN 256
#define TEF_MAX_GROUPS 256
#define TEF_MAX_BATCH 64 /* atrestCount */

/* relativeKeyID: 128 random bits as 32 lower-case hex digits (DESIGN.md 3). */
#define TEF_RELATIVE_KEY_ID_BYTES 16
#define TEF_RELATIVE_KEY_ID_HEX (2 * TEF_RELATIVE_KEY_ID_BYTES)

/* oneM2M basic timestamp "YYYYMMDDTHHMMSS" (UTC), TS-0004 6.3.3 m2m:timestamp. */
#define TEF_TIMESTAMP_LEN 15
#define TEF_TIMESTAMP_MAX 253402300799LL /* 9999-12-31T23:59:59Z */

/*
 * Parses a timestamp of exactly TEF_TIMESTAMP_LEN characters into seconds
 * since the epoch. Returns 0, -EINVAL for anything malformed or not a real
 * calendar time, -ERANGE before 1970 or after TEF_TIMESTAMP_MAX.
 */
int tef_timestamp_parse(const char *s, int64_t *ret);

/* Formats t (0..TEF_TIMESTAMP_MAX) into buf; returns 0 or -ERANGE. */
int tef_timestamp_format(int64_t t, char buf[static TEF_TIMESTAMP_LEN + 1]);

/*
 * Validates a principal: "uid:N", "gid:N" (decimal, no sign or leading
 * zeros, < 2^32-1), "ae:<AE-ID>", "cse:<CSE-ID>" (1..TEF_MAX_PRINCIPAL_LEN
 * printable ASCII without blanks) or "all".
 */
bool tef_principal_is_valid(const char *s);

/*
 * Extracts the relativeKeyID from a relativeKeyID or a Credential-Id
 * ("<relativeKeyID>@<fqdn>", TS-0003 10.3.5) into buf (lower-case hex).
 * Returns 0 or -EINVAL when it is not 32 hex digits.
 */
int tef_relative_key_id(const char *id, char buf[static TEF_RELATIVE_KEY_ID_HEX + 1]);
