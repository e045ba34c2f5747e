/* SPDX-License-Identifier: Apache-2.0 */
/* hcsed's resource store: one SQLite file, transactions, rows of resources. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

struct store;
struct store_txn;

/*
 * One stored resource. Universal attributes that queries need are columns;
 * everything else of the resource lives in `attrs` (a JSON object, without
 * ri/pi/rn/ty/ct/et/cr and without the counters below, which are merged in
 * when the resource is rendered). `con` is a contentInstance's content as
 * the raw JSON text the originator sent (TS-0004 7.4.7: returned as given).
 */
struct store_res {
	int64_t seq; /* monotonic creation order (never a clock: la/ol ordering) */
	char *ri;
	char *pi;   /* parent ri; NULL for the CSEBase */
	char *path; /* structured CSE-relative name: "cse-in/ae/cnt" */
	char *rn;
	int ty;
	int depth;   /* number of path segments: the CSEBase is 1 */
	char *ct;    /* "YYYYMMDDTHHMMSS" */
	int64_t et;  /* expirationTime, seconds since the epoch */
	char *cr;    /* creator, or NULL */
	char *aei;   /* AE-ID of an <AE> (unique), else NULL */
	int64_t cs;  /* contentInstance: contentSize */
	int64_t cni; /* container: currentNrOfInstances */
	int64_t cbs; /* container: currentByteSize */
	int64_t st;  /* container/contentInstance: stateTag */
	json_t *attrs;
	char *con; /* NUL-terminated when loaded; only loaded on request */
	size_t con_len;
	bool con_borrowed; /* con points into a request body: not freed here */
};

/* Frees the members (not the struct) and zeroes it. */
void store_res_clear(struct store_res *r);

/*
 * Opens (creating if needed) the database at `path` with WAL and
 * synchronous=FULL. Returns 0 and *ret, or -errno (-EIO for SQLite errors).
 */
int store_open(const char *path, struct store **ret);

/* Closes every connection. Accepts NULL, returns NULL. */
struct store *store_free(struct store *s);

typedef int (*store_txn_fn)(struct store_txn *t, void *userdata);

/*
 * Runs fn inside a read transaction on the calling thread's own read-only
 * connection (a consistent snapshot of committed data). Returns fn's result.
 */
int store_read(struct store *s, store_txn_fn fn, void *userdata);

/*
 * Runs fn inside a write transaction. fn's changes are rolled back when it
 * returns < 0. When store_write() returns >= 0 the changes are durable
 * (fsynced): concurrent writers share one commit (group commit). Returns
 * fn's result, or -EIO if the commit failed.
 */
int store_write(struct store *s, store_txn_fn fn, void *userdata);

/* Looks a resource up. with_con also loads `con`. 0, -ENOENT or -EIO. */
int store_get_by_path(struct store_txn *t, const char *path, bool with_con, struct store_res *ret);
int store_get_by_ri(struct store_txn *t, const char *ri, bool with_con, struct store_res *ret);

/* The resource registered with this AE-ID (ty 2), as store_get_by_ri. */
int store_get_by_aei(struct store_txn *t, const char *aei, struct store_res *ret);

/*
 * Inserts r (all fields but seq must be set; labels are taken from
 * attrs.lbl) and stores the new seq in r->seq. -EEXIST when the path, ri or
 * aei is taken.
 */
int store_insert(struct store_txn *t, struct store_res *r);

/* Writes back attrs, et, counters and labels of r (found by r->seq). */
int store_update(struct store_txn *t, const struct store_res *r);

/* Writes back only cni, cbs and st of r (a contentInstance came or went). */
int store_update_counters(struct store_txn *t, const struct store_res *r);

/* Deletes the resource at path and everything below it. Returns the count. */
int store_delete_subtree(struct store_txn *t, const char *path);

/* Callback for streamed results: return 0 to go on, > 0 to stop, < 0 to fail. */
typedef int (*store_res_fn)(struct store_res *r, void *userdata);

/*
 * Streams the children of parent ri `pi` (of type ty, or any when ty is 0)
 * in creation order (descending with newest_first), skipping `offset`, at
 * most `limit` (-1: no limit). Rows are only valid during the callback.
 */
int store_children(struct store_txn *t, const char *pi, int ty, bool newest_first, bool with_con,
		   int64_t limit, int64_t offset, store_res_fn fn, void *userdata);

/* Discovery filter (TS-0004 7.3.3.17.x; conditions are ANDed). */
struct store_filter {
	const char *base_path; /* the subtree root (not itself a result) */
	int max_depth;	       /* absolute depth limit, 0: none */
	const int *tys;	       /* resource types (ORed), n_tys of them */
	size_t n_tys;
	const char *const *labels; /* the resource has one of these labels (ORed) */
	size_t n_labels;
	const char *cra; /* created at or after, or NULL */
	const char *crb; /* created before (exclusive), or NULL */
	int64_t now;	 /* expired resources are never found */
};

/* Streams the resources matching f in creation order (no con, no limits: the
 * caller stops when it has enough, so nothing is loaded all at once). */
int store_find(struct store_txn *t, const struct store_filter *f, store_res_fn fn, void *userdata);

/* Streams resources whose et < now, oldest first, at most limit. */
int store_expired(struct store_txn *t, int64_t now, int64_t limit, store_res_fn fn, void *userdata);

/* The writer's PRAGMA synchronous (2: FULL, every commit fsyncs the WAL). */
int store_synchronous(struct store *s);

/* Number of stored resources. */
int store_count(struct store_txn *t, int64_t *ret);
