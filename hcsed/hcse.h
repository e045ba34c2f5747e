/* SPDX-License-Identifier: Apache-2.0 */
/* The Hosting CSE core: the request/response primitives of TS-0004 7.2.1 and the engine. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

/* jansson >= 2.9 has its own json_decrefp(), which atrest/cleanup.h's
 * wrapper would redefine: include atrest/cleanup.h before jansson.h and
 * use this instead. */
#ifndef _cleanup_json_
#define _cleanup_json_ __attribute__((cleanup(json_decrefp)))
#endif

/* TS-0004 6.3.4.2.5 m2m:operation */
enum hcse_op {
	HCSE_OP_CREATE = 1,
	HCSE_OP_RETRIEVE = 2,
	HCSE_OP_UPDATE = 3,
	HCSE_OP_DELETE = 4,
	HCSE_OP_NOTIFY = 5,
};

/* TS-0004 6.3.4.2.1 m2m:resourceType: the ones hcsed hosts */
enum hcse_ty {
	TY_ACP = 1,
	TY_AE = 2,
	TY_CNT = 3,
	TY_CIN = 4,
	TY_CB = 5,
	TY_SUB = 23,
};

/* TS-0004 6.3.4.2.29 m2m:accessControlOperations */
enum hcse_acop {
	ACOP_CREATE = 1,
	ACOP_RETRIEVE = 2,
	ACOP_UPDATE = 4,
	ACOP_DELETE = 8,
	ACOP_NOTIFY = 16,
	ACOP_DISCOVER = 32,
};

#define HCSE_MAX_FC_TYS 16
#define HCSE_MAX_FC_LABELS 16
#define HCSE_MAX_ATRL 32

/* Filter Criteria (TS-0004 7.3.3.17 / Table 6.3.5.8-1), the supported part. */
struct hcse_filter {
	bool present; /* any filter criterion was given */
	int fu;	      /* filterUsage: 1 discovery, 2 conditional retrieval (default) */
	int tys[HCSE_MAX_FC_TYS];
	size_t n_tys;
	char *labels[HCSE_MAX_FC_LABELS];
	size_t n_labels;
	char cra[16]; /* createdAfter, "" when absent */
	char crb[16]; /* createdBefore */
	char ms[16];  /* modifiedSince, "" when absent */
	char us[16];  /* unmodifiedSince */
	int64_t exa;  /* expireAfter (seconds), 0 when absent */
	int64_t exb;  /* expireBefore */
	int64_t sts;  /* stateTagSmaller, -1 when absent */
	int64_t stb;  /* stateTagBigger */
	int64_t sza;  /* sizeAbove, -1 when absent */
	int64_t szb;  /* sizeBelow */
	int64_t lim;  /* -1: none */
	int64_t ofst; /* 0: none */
	int lvl;      /* 0: none */
	int drt;      /* desiredIdentifierResultType: 1 structured (default), 2 unstructured */
};

/* A request primitive (TS-0004 7.2.1.1); strings owned by the request. */
struct hcse_request {
	enum hcse_op op;
	char *to;  /* To, as a resource ID in any of the TS-0001 7.2 forms */
	char *fr;  /* From (originator), may be NULL */
	char *rqi; /* Request Identifier */
	char *rvi; /* Release Version Indicator */
	int ty;	   /* Resource Type (Create), 0 when absent */
	int rcn;   /* Result Content, -1 when absent */
	struct hcse_filter fc;
	char *atrl[HCSE_MAX_ATRL]; /* attribute list (partial retrieve), n_atrl of them */
	size_t n_atrl;
	json_t *pc; /* Content, parsed; a contentInstance's con is NOT in it */
	/* contentInstance content: the raw JSON text of "con" (points into the
	 * body that the caller keeps alive), and its contentSize */
	const char *con;
	size_t con_len;
	int64_t con_size;
	/* transport facts the access control uses (acco, TLS binding) */
	char peer_addr[64];
	bool is_tls;
	char cert_cn[256];
	char cert_uri[512];
};

/* A response primitive (TS-0004 7.2.1.2). */
struct hcse_response {
	int rsc;
	char *body; /* serialised Content (JSON) or {"m2m:dbg": ...}, malloc'd, may be NULL */
	size_t body_len;
	char *location; /* Content-Location for a Create, or NULL */
};

void hcse_request_clear(struct hcse_request *r);
void hcse_response_clear(struct hcse_response *r);

/* Sets rsc and a {"m2m:dbg": msg} body (TS-0004 Table 7.5.2-2 debugInfo). */
int hcse_response_error(struct hcse_response *resp, int rsc, const char *msg);

struct hcse_config {
	const char *db_path;
	const char *cse_rn;	/* CSEBase resourceName, "cse-in" */
	const char *cse_ri;	/* CSEBase resourceID, "id-in" */
	const char *csi;	/* CSE-ID, "/id-in" */
	const char *admin;	/* admin originator, "CAdmin" */
	unsigned max_depth;	/* path segments under the CSEBase, 0: 16 */
	uint64_t max_resources; /* 0: 1,000,000 */
	unsigned max_labels;	/* per resource, 0: 64 */
	unsigned max_label_len; /* bytes, 0: 256 */
	uint64_t max_mbs;	/* a container's maxByteSize default and cap */
	uint64_t max_mni;	/* a container's maxNrOfInstances default and cap */
	bool notify;		/* send subscription notifications (HTTP) */
};

struct hcse;

/* Opens the store, creates the CSEBase on first start. 0 and *ret, or -errno. */
int hcse_new(const struct hcse_config *config, struct hcse **ret);

/* Stops the notifier, closes the store. Accepts NULL, returns NULL. */
struct hcse *hcse_free(struct hcse *cse);

/*
 * Executes one request primitive and fills the response (always: errors
 * become an RSC with m2m:dbg). Thread-safe. The caller clears resp.
 */
void hcse_process(struct hcse *cse, const struct hcse_request *req, struct hcse_response *resp);

/* Replaces the admin originator (configuration reload); requests under
 * way keep seeing the old one safely. Call from one thread at a time.
 * 0 or -ENOMEM. */
int hcse_set_admin(struct hcse *cse, const char *admin);

/* Removes resources whose expirationTime is before now (TS-0004 7.4.x.2.x "et");
 * returns how many, or -errno. */
int hcse_expire(struct hcse *cse, int64_t now);

/* "YYYYMMDDTHHMMSS" (TS-0004 m2m:timestamp, basic ISO 8601) <-> seconds. */
void hcse_format_time(int64_t t, char buf[16]);
int hcse_parse_time(const char *s, int64_t *ret);

/* The request's "con" as raw JSON text: finds it in a body of the form
 * {"m2m:cin": {..., "con": VALUE, ...}}, checks VALUE is valid JSON, and
 * returns its span and size (a string: its decoded byte length; anything
 * else: the length of its text). Also returns a copy of the body with the
 * value replaced by 0 for the ordinary parse. 0, -ENOENT (no con), -EINVAL. */
int hcse_split_con(const char *body, size_t len, const char **ret_con, size_t *ret_con_len,
		   int64_t *ret_size, char **ret_rest);
