/* SPDX-License-Identifier: Apache-2.0 */
/* tefd's HTTP API: who is asking, the routes, and the answers (docs/TEF-API.md). */
#pragma once

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "atrest/httpd.h"
#include "audit.h"
#include "keystore.h"
#include "policy.h"

#define API_RATE_SLOTS 256

/* Failed retrievals of one identity within the current window. */
struct api_rate_slot {
	char principal[TEF_MAX_PRINCIPAL_LEN + 8];
	int64_t window_start;
	unsigned failures;
};

struct api {
	struct keystore *ks;  /* borrowed */
	struct audit *audit;  /* borrowed */
	struct policy policy; /* arrays borrowed */
	const char *fqdn;
	/* tunables: SIGHUP changes them while requests run (read each once per use) */
	_Atomic int64_t default_ttl;
	_Atomic int64_t max_ttl;
	_Atomic unsigned max_per_owner;
	_Atomic unsigned max_failed_retrievals; /* per identity and window; 0: no limit */
	_Atomic unsigned failure_window;	/* seconds */
	pthread_mutex_t rate_lock;
	struct api_rate_slot rate[API_RATE_SLOTS];
};

/* Initialises the parts of *a that are not configuration (call once). */
void api_init(struct api *a);
void api_done(struct api *a);

/* The httpd handler; userdata is a struct api. */
int api_handle(void *userdata, const struct httpd_request *req, struct httpd_response *resp);

/* --- shared between api.c and api_keys.c --- */

/* Who is asking: the authenticated peer and the identity acted for. */
struct api_caller {
	struct identity peer;	   /* kernel- or TLS-verified */
	struct identity effective; /* peer, or whom a delegate acts for */
	bool on_behalf;
	pid_t pid;
	bool groups_loaded;
	char peer_text[TEF_MAX_PRINCIPAL_LEN + 64];
	char onbehalf_text[64];
};

/* Loads the supplementary groups of a local peer when a gid: rule needs them. */
void api_caller_load_groups(struct api_caller *c);

/* Error answer: status from the RSC (or `status` when non-zero), X-M2M-RSC, {"m2m:dbg":msg}. */
int api_error(struct httpd_response *resp, int status, int rsc, const char *reason,
	      const char *msg);

/*
 * Audits a refusal (with `why` as its reason) and answers it with api_error();
 * the body carries `why` as "reason" only for "expired" and "rate-limited".
 */
int api_refuse(struct api *a, const struct api_caller *c, struct httpd_response *resp,
	       const char *op, int status, int rsc, const char *id_hex, const char *why,
	       const char *msg);

/* The one answer for a missing id and a forbidden one: byte-identical (issue 3). */
int api_not_found(struct httpd_response *resp);

/* Success answer with a JSON body (which may be NULL). */
int api_reply_json(struct httpd_response *resp, int rsc, const json_t *body);

void api_audit(struct api *a, const struct api_caller *c, const char *op, int rsc,
	       const char *id_hex, const char *reason);

/* Failed-retrieval rate limit (issue 3: probing ids costs the prober). */
bool api_rate_is_limited(struct api *a, const struct identity *id, int64_t now);
void api_rate_record_failure(struct api *a, const struct identity *id, int64_t now);

/* Route handlers (api_keys.c). */
int api_keys_register(struct api *a, struct api_caller *c, const struct httpd_request *req,
		      struct httpd_response *resp);
int api_keys_list(struct api *a, struct api_caller *c, const struct httpd_request *req,
		  struct httpd_response *resp);
int api_keys_retrieve(struct api *a, struct api_caller *c, const char *id_hex,
		      struct httpd_response *resp);
int api_keys_update(struct api *a, struct api_caller *c, const char *id_hex,
		    const struct httpd_request *req, struct httpd_response *resp);
int api_keys_delete(struct api *a, struct api_caller *c, const char *id_hex,
		    struct httpd_response *resp);

/* GET /backup (api_backup.c): a snapshot of the database for admins, keys still wrapped. */
int api_backup(struct api *a, struct api_caller *c, struct httpd_response *resp);
