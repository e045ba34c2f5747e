/* SPDX-License-Identifier: Apache-2.0 */
/* oneM2M HTTP binding client (TS-0009, JSON) used by atrestfs and atrest-get. */
#pragma once

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

/*
 * Resources are named by CSE-relative structured paths WITHOUT the CSE's own
 * name: with base "http://127.0.0.1:8080/cse-in", the path "ae/cnt/cin"
 * addresses http://127.0.0.1:8080/cse-in/ae/cnt/cin. An empty path is the
 * CSEBase itself.
 *
 * Every call returns 0 or -errno: the X-M2M-RSC of the response translated
 * once with errno_from_rsc() (e.g. 4004 -> -ENOENT, 4105/5106 -> -EEXIST,
 * 4103 -> -EACCES); transport failures give -ECONNREFUSED, -EHOSTUNREACH or
 * -ETIMEDOUT. When ret_rsc is not NULL it receives the raw RSC (0 when no
 * response came back). The client is thread-safe: handles are pooled.
 */

struct hcse_client;

/* Connections a client keeps open: requests beyond that many at once wait
 * for a new connection each (what atrestfs's uploads= is bounded by). */
#define HCSE_CLIENT_CONNECTIONS 8

/* TLS client authentication for https bases (any member may be NULL). */
struct hcse_tls {
	const char *cert; /* PEM client certificate */
	const char *key;  /* PEM private key of it */
	const char *ca;   /* PEM CA bundle the server must chain to */
};

/*
 * Creates a client for `base_url` (http or https; the CSEBase URL), sending
 * `origin` as X-M2M-Origin (may be changed later with hcse_client_set_origin)
 * and waiting at most timeout_ms for any one request (0: 10 s).
 * tls may be NULL. Returns 0 and *ret (caller frees with hcse_client_free).
 */
int hcse_client_new(const char *base_url, const char *origin, const struct hcse_tls *tls,
		    unsigned timeout_ms, struct hcse_client **ret);

/* Frees the client and its pooled handles. Accepts NULL, returns NULL. */
struct hcse_client *hcse_client_free(struct hcse_client *c);

struct outage;
/* Reports the reachability of every exchange to o (outage.h; borrowed, must outlive c). */
void hcse_client_set_outage(struct hcse_client *c, struct outage *o);

/* Replaces the X-M2M-Origin sent from now on (copied). Returns 0 or -ENOMEM. */
int hcse_client_set_origin(struct hcse_client *c, const char *origin);

/* The raw RSC to errno mapping the client applies (errno_from_rsc, plus
 * 5106 ALREADY_EXISTS and 4105 CONFLICT both to -EEXIST). */
int hcse_errno(int rsc);

/*
 * Registers an AE (ty=2) named `rn` with App-ID `api`. On success
 * *ret_aei (may be NULL) receives the AE-ID the CSE assigned (caller frees).
 * An AE that already exists gives -EEXIST.
 */
int hcse_create_ae(struct hcse_client *c, const char *rn, const char *api, char **ret_aei,
		   int *ret_rsc);

/* Creates a <container> (ty=3) `rn` under `parent` with the given labels
 * (n_labels strings, copied). -EEXIST when it is already there. */
int hcse_create_container(struct hcse_client *c, const char *parent, const char *rn,
			  const char *const *labels, size_t n_labels, int *ret_rsc);

/* Replaces the labels (lbl) of the resource at `path` (UPDATE). */
int hcse_update_labels(struct hcse_client *c, const char *path, int ty, const char *const *labels,
		       size_t n_labels, int *ret_rsc);

/*
 * Creates a <contentInstance> (ty=4) `rn` under the container `parent` with
 * content `con` (con_len bytes, text: compact JOSE or plain) and content
 * info `cnf` (may be NULL). labels may be NULL.
 */
int hcse_create_cin(struct hcse_client *c, const char *parent, const char *rn, const char *cnf,
		    const char *con, size_t con_len, const char *const *labels, size_t n_labels,
		    int *ret_rsc);

/*
 * Retrieves the resource at `path`. *ret receives the inner object (the
 * value of the single "m2m:xxx" member, a new reference the caller must
 * json_decref); *ret_ty (may be NULL) its resource type.
 */
int hcse_retrieve(struct hcse_client *c, const char *path, json_t **ret, int *ret_ty,
		  int *ret_rsc);

/*
 * Retrieves a <contentInstance> and returns its con (malloc'd, NUL
 * terminated, caller frees) and its cnf (malloc'd or NULL, caller frees).
 * -EBADMSG when the resource is not a contentInstance or has no con.
 */
int hcse_retrieve_cin(struct hcse_client *c, const char *path, char **ret_con, size_t *ret_len,
		      char **ret_cnf, int *ret_rsc);

/* Deletes the resource at `path` (and, by oneM2M rules, its children). */
int hcse_delete(struct hcse_client *c, const char *path, int *ret_rsc);

/*
 * Lists the direct children of type `ty` of `path` by discovery (fu=1,
 * ty, lvl=1). *ret_names receives a malloc'd array of malloc'd resource
 * names (the last path segment of each entry of m2m:uril), *ret_n their
 * count; free with hcse_names_free().
 */
int hcse_list_children(struct hcse_client *c, const char *path, int ty, char ***ret_names,
		       size_t *ret_n, int *ret_rsc);

/* Frees what hcse_list_children returned. Accepts NULL. */
void hcse_names_free(char **names, size_t n);

/* True when the error is a transport failure (the CSE was not reached). */
static inline bool hcse_is_unreachable(int r)
{
	return r == -ECONNREFUSED || r == -EHOSTUNREACH || r == -ETIMEDOUT ||
	       r == -ENETUNREACH || r == -ECONNRESET;
}
