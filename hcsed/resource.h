/* SPDX-License-Identifier: Apache-2.0 */
/* The resource model inside hcsed: per-request context and the table of resource types. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "hcse.h"
#include "store.h"

struct notifier;

struct hcse {
	struct hcse_config config;
	char *cse_rn, *cse_ri, *csi, *db_path;
	_Atomic(char *) admin; /* replaced on reload (hcse_set_admin) */
	char **retired;	       /* earlier admins: a request may still hold one */
	size_t n_retired;
	struct store *store;
	struct notifier *notifier;
	_Atomic int64_t n_resources; /* committed resources, for max_resources */
};

/* One request being executed (inside one store transaction). */
struct hcse_ctx {
	struct hcse *cse;
	struct store_txn *t;
	const struct hcse_request *req;
	const char *fr; /* originator ("" when absent) */
	int64_t now;
	char nowstr[16];
	int rsc; /* set with the -EPROTO a failing step returns */
	char dbg[256];
	json_t *events;	   /* notifications to send once the transaction is durable */
	int64_t n_created; /* resources created minus deleted, applied on commit */
};

/* Records rsc and a debug message; returns -EPROTO for `return ctx_fail(...)`. */
int ctx_fail(struct hcse_ctx *ctx, int rsc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Attribute kinds and where they may appear (TS-0004 7.4.x.1 tables: RW/RO/WO). */
enum attr_kind {
	AK_STR,
	AK_UINT,
	AK_BOOL,
	AK_STRLIST,
	AK_INTLIST,
	AK_OBJ,
	AK_ANY,
	AK_TIME,
};

enum {
	AF_C = 1 << 0, /* may be given on Create */
	AF_U = 1 << 1, /* may be given on Update */
	AF_M = 1 << 2, /* mandatory on Create */
	AF_N = 1 << 3, /* may be set to null on Update (removal) */
};

struct attr_def {
	const char *name;
	enum attr_kind kind;
	unsigned flags;
};

struct resource_type {
	int ty;
	const char *tn;	    /* "m2m:cnt" */
	const char *prefix; /* resourceID prefix */
	bool has_acpi;
	const int *parents;	      /* allowed parent types, 0-terminated */
	const struct attr_def *attrs; /* type-specific, NULL-terminated */
	/* Type-specific checks and defaults on Create: res->attrs already holds
	 * the validated attributes; returns 0 or ctx_fail(). */
	int (*create)(struct hcse_ctx *ctx, struct store_res *parent, struct store_res *res);
	/* On Update, after validation and merge; may veto with ctx_fail(). */
	int (*update)(struct hcse_ctx *ctx, struct store_res *res, json_t *changes);
};

extern const struct resource_type resource_type_acp;
extern const struct resource_type resource_type_ae;
extern const struct resource_type resource_type_cnt;
extern const struct resource_type resource_type_cin;
extern const struct resource_type resource_type_cb;
extern const struct resource_type resource_type_sub;

/* The type for ty, or NULL. */
const struct resource_type *resource_type_find(int ty);

/* Full JSON representation of a stored resource (universal + type
 * attributes, counters merged); con is not included. New reference. */
json_t *resource_to_json(const struct hcse *cse, const struct store_res *res);

/* Deletes one resource and its subtree, with the side effects the standard
 * asks for (container counters, subscription notifications). */
int resource_delete(struct hcse_ctx *ctx, struct store_res *res);

/* Container eviction (TS-0004 7.4.6/7.4.7: mni, mbs); called after a change,
 * then stores cnt (all of it, or only its counters when only_counters). */
int resource_cnt_evict(struct hcse_ctx *ctx, struct store_res *cnt, bool only_counters);

/* Whether res is a container with disableRetrieval true. */
bool resource_cnt_disr(const struct store_res *res);

/* disableRetrieval (TS-0004 7.4.7.2.2, 7.4.7.2.4, 7.4.27.2.x, 7.4.28.2.x):
 * 0, or ctx_fail(4005) when res is a contentInstance, or la/ol (virt; res
 * is then the container), of a container with disr true. */
int resource_cnt_disr_check(struct hcse_ctx *ctx, const struct store_res *res, bool virt);

/* The resource of this CSE a notificationURI names (AE-ID, resourceID or
 * structured address), into *ret (cleared by the caller): 0, -ENOENT
 * (a URL, or nothing here), or -errno. */
int resource_nu_target(struct hcse_ctx *ctx, const char *nu, struct store_res *ret);

/* NOTIFY privilege (acop 16, TS-0004 7.5.1.2.3) of the originator on every
 * notificationURI hosted here other than itself: 0, or ctx_fail(5204). */
int resource_sub_nu_check(struct hcse_ctx *ctx, const json_t *nu);

/* An event a subscription may be told of (TS-0004 7.5.1.2.2). */
struct notify_event {
	int net;		     /* m2m:notificationEventType: 1 update, 3/4 child created/deleted */
	const struct store_res *res; /* the resource the representation shows (borrowed) */
	json_t *modified;	     /* Update: the attributes the request set, or NULL */
};

/* Queues notifications for the subscriptions of `subject`. The
 * representation is built per subscription's notificationContentType
 * (TS-0004 6.3.5.62), and only when one is selected. */
int resource_notify(struct hcse_ctx *ctx, const struct store_res *subject,
		    const struct notify_event *ev);

/* m2m:contentInfo syntax check (resource_cin.c). */
bool cin_cnf_valid(const char *cnf);

/* Access control (acp.c): 0 when the originator may do op on res, else
 * ctx_fail(4103). res may be a parent (Create) or any resource. */
int acp_check(struct hcse_ctx *ctx, const struct store_res *res, int op);

/* The same decision as a bool in *ret (0, or -errno on a store failure). */
int acp_allowed(struct hcse_ctx *ctx, const struct store_res *res, int op, bool *ret);

/* Checks one ACP's privileges object ({"acr": [...]}) for an operation. */
bool acp_privileges_allow(const json_t *privileges, const char *originator, const char *csi, int op,
			  const char *peer_addr, int64_t now);

/* Validates a privileges object (pv/pvs): structure and value ranges. */
bool acp_privileges_valid(const json_t *privileges);

/* Matches one cron-like scheduleEntry ("sec min hour mday mon wday [year]")
 * against a time (UTC). */
bool acp_schedule_match(const char *entry, int64_t now);

/* The filter conditions on a resource's own attributes (TS-0004 Table
 * 7.3.3.17.0-1: cra/crb, ms/us, sts/stb, exa/exb, sza/szb); the others
 * (ty, lbl, lvl, lim, ofst) are applied by the callers. */
bool filter_match(const struct hcse_filter *fc, const struct store_res *r);

/* Discovery (discovery.c): fills *ret with m2m:uril or m2m:rrl. */
int discovery_run(struct hcse_ctx *ctx, const struct store_res *base, json_t **ret);

/* Notifier (notify.c): POSTs queued notifications on its own thread. */
int notifier_new(const char *csi, struct notifier **ret);
struct notifier *notifier_free(struct notifier *n);
/* Queues a notification to url (copied); never blocks on the network. */
void notifier_send(struct notifier *n, const char *url, const json_t *body);
/* Sends synchronously (subscription verification, TS-0004 7.3.8.2.3):
 * 0 when the receiver answered 2000/2xx, else -errno. */
int notifier_send_sync(struct notifier *n, const char *url, const json_t *body,
		       const char *originator);
