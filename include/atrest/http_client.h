/* SPDX-License-Identifier: Apache-2.0 */
/* HTTP/1.1 client plumbing shared by the TEF and HCSE clients: a pool of curl handles, transport
 * options and response collection. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include <curl/curl.h>

struct http_client;

/* Transport of a client; every pointer is borrowed for http_client_new() only (copied). */
struct http_client_options {
	const char *base;      /* "http://..." or "https://..."; trailing '/' are stripped */
	const char *unix_path; /* Unix socket to connect to instead of base's host; NULL: TCP */
	const char *protocols; /* CURLOPT_PROTOCOLS_STR: "http", "https" or "http,https" */
	const char *cert;      /* PEM client certificate, or NULL */
	const char *key;       /* PEM private key of cert, or NULL */
	const char *ca;	       /* PEM CA bundle the server must chain to, or NULL */
	long connect_timeout_ms;
	long timeout_ms;      /* for a whole exchange */
	size_t pool_max;      /* idle handles kept alive (at most HTTP_CLIENT_POOL_MAX) */
	size_t response_max;  /* default body limit, counting the terminating NUL */
	const char *log_name; /* prefix of the debug line logged for a failed transfer */
};

#define HTTP_CLIENT_POOL_MAX 16

/*
 * Creates a client (nothing is connected yet); initialises curl (and
 * libsodium, for secret bodies) once per process. Returns 0 and *ret (free
 * with http_client_free), -EINVAL without base or protocols, or -ENOMEM.
 * A client may be shared by any number of threads: each exchange borrows a
 * handle from a locked pool, so connections are kept alive across calls.
 */
int http_client_new(const struct http_client_options *o, struct http_client **ret);

/* Closes every pooled connection and frees. Accepts NULL, returns NULL. */
struct http_client *http_client_free(struct http_client *c);

struct outage;
/* Reports every exchange's reachability to o (outage.h; borrowed, outlives c), or stops
 * with NULL. */
void http_client_set_outage(struct http_client *c, struct outage *o);

/* The base URL without trailing '/'; owned by c. */
const char *http_client_base(const struct http_client *c);

/* True when c talks over a Unix socket. */
bool http_client_is_unix(const struct http_client *c);

/*
 * Appends a header line (copied) to *list, which the caller frees with
 * curl_slist_free_all. Returns 0, or -ENOMEM with *list unchanged.
 */
int http_client_header(struct curl_slist **list, const char *line);

/* One request; every pointer is borrowed for the exchange. */
struct http_client_request {
	const char *method;		  /* "GET", "POST", "PUT", "DELETE" */
	const char *path;		  /* appended to the base */
	bool slash;			  /* put a '/' between base and a non-empty path */
	const char *query;		  /* appended after '?', or NULL */
	const struct curl_slist *headers; /* may be NULL */
	const char *body;		  /* NUL-terminated, sent as is; NULL: none */
};

/*
 * A response. The caller zero-initialises it, sets `max` and `secret` before
 * the exchange (both survive it) and releases it with
 * http_client_response_done().
 * A secret body lives in sodium_malloc memory or this thread's secure
 * scratch page (secure_scratch.h) and is wiped whenever it is freed or
 * grown: use it for anything that may carry a key.
 */
struct http_client_response {
	long http;  /* HTTP status; 0 when no response came */
	int rsc;    /* X-M2M-RSC, 0 when absent */
	char *data; /* body, NUL-terminated, or NULL when empty */
	size_t len;
	size_t max;	/* in: body limit counting the NUL; 0: the client's */
	bool secret;	/* in: keep the body in wiped secure memory */
	bool too_large; /* out: the body exceeded max (transfer stopped) */
	size_t cap;	/* private */
	bool scratch;	/* private: data is the thread's scratch page */
};

/*
 * Runs one exchange and returns the curl result (CURLE_WRITE_ERROR with
 * too_large, or when memory ran out, while storing the body). On CURLE_OK
 * *resp holds status, RSC and body; otherwise its body is already released.
 * The caller translates the result into its own errno contract.
 */
CURLcode http_client_perform(struct http_client *c, const struct http_client_request *req,
			     struct http_client_response *resp);

/*
 * Releases the body (wiping it first when secret) and resets data, len and
 * cap; max and secret are kept. The malloc'd body of a non-secret response
 * may be taken instead (TAKE_PTR(resp->data)): the caller then frees it.
 */
void http_client_response_done(struct http_client_response *resp);
