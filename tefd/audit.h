/* SPDX-License-Identifier: Apache-2.0 */
/* tefd's audit log: one append-only line per release, denial, registration, update, deletion. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "atrest/tef_api.h"

struct audit;

/*
 * Opens (creating with mode 0600, refusing symlinks) the audit log at `path`
 * with O_APPEND. With `set_append_only` it also sets the inode's append-only
 * attribute (chattr +a; needs CAP_LINUX_IMMUTABLE and a filesystem that has
 * it), so not even root rewrites history without clearing it first.
 * `hmac_key` (32 bytes, borrowed) keys the HMAC that stands in for
 * Credential-Ids. Returns 0 and *ret or -errno.
 */
int audit_open(const char *path, bool set_append_only, const uint8_t *hmac_key, struct audit **ret);

struct audit *audit_close(struct audit *a);

/*
 * Reopens the log at its path (after logrotate moved it; SIGHUP). Lines
 * being written meanwhile go to the old or the new file, never nowhere.
 * Returns 0 or -errno (the old file stays in use).
 */
int audit_reopen(struct audit *a);

struct audit_entry {
	const char *op;	      /* "register", "retrieve", "update", "delete", "list", "sweep" */
	int rsc;	      /* oneM2M result code sent */
	const char *caller;   /* identity of the peer ("uid=0,gid=0,pid=1" or "ae:C1") */
	const char *onbehalf; /* identity acted for, or NULL */
	const char *id_hex;   /* relativeKeyID or NULL: logged only as an HMAC */
	const char *reason;   /* short word on why ("forbidden", "unknown", "expired"...) or NULL */
};

/* Appends one line (a single write). Failures are logged, never fatal to the request. */
void audit_log(struct audit *a, const struct audit_entry *e);

/*
 * The audit tag of an id: hex of the first 16 bytes of HMAC-SHA-256 keyed
 * with the audit key, so lines about one key correlate without naming it.
 */
void audit_tag(const uint8_t *hmac_key, const char *id_hex, char buf[static 33]);
