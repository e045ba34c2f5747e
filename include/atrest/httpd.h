/* SPDX-License-Identifier: Apache-2.0 */
/* HTTP/1.1 server glue over libmicrohttpd, shared by tefd and hcsed. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include <jansson.h>

/* Who is on the other end, as established by the kernel or by TLS. */
struct httpd_peer {
	bool is_unix;       /* Unix socket: uid/gid/pid are from SO_PEERCRED */
	uid_t uid;
	gid_t gid;
	pid_t pid;
	char addr[64];      /* TCP: remote address as text ("127.0.0.1"), else "" */
	bool is_tls;        /* TLS: a client certificate was presented and verified */
	char cert_cn[256];  /* subject CN of the verified client certificate, or "" */
	char cert_uri[512]; /* first URI subjectAltName of it, or "" */
};

struct httpd_request {
	const char *method;  /* "GET", "POST", ... */
	const char *path;    /* the request target without the query, percent-decoded */
	const char *body;    /* NUL-terminated copy of the body (NULL when empty) */
	size_t body_len;
	bool body_too_large; /* the body exceeded max_body: body is NULL, answer an error */
	struct httpd_peer peer;
	void *connection; /* private: used by the accessors below */
};

/* Header value (case-insensitive name) or NULL. Valid during the handler. */
const char *httpd_request_header(const struct httpd_request *req, const char *name);

/* Percent-decoded query argument, or NULL when absent. Valid during the handler. */
const char *httpd_request_query(const struct httpd_request *req, const char *name);

/* Calls fn for every query argument in order; stops when fn returns non-zero. */
int httpd_request_query_foreach(const struct httpd_request *req,
				int (*fn)(const char *key, const char *value, void *userdata),
				void *userdata);

struct httpd_response;

/* Status code of the response (default 500 until set). */
void httpd_response_set_status(struct httpd_response *resp, int status);

/* Adds a response header (copied). Returns 0 or -ENOMEM. */
int httpd_response_add_header(struct httpd_response *resp, const char *name, const char *value);

/* Sets the body; the response takes ownership of `body` (malloc'd). */
int httpd_response_set_body(struct httpd_response *resp, const char *content_type, char *body,
			    size_t len);

/* Marks the body as key material: once sent (or dropped) it is wiped with
 * sodium_memzero() before it is freed, so no key lingers in freed memory. */
void httpd_response_set_sensitive(struct httpd_response *resp);

/* Serialises `json` compactly as the body (does not take the reference). */
int httpd_response_set_json(struct httpd_response *resp, const char *content_type,
			    const json_t *json);

/*
 * Called once per complete request on one of the pool's threads. Fills
 * `resp`; returns 0, or -errno to make the glue answer a bare 500.
 */
typedef int (*httpd_handler_fn)(void *userdata, const struct httpd_request *req,
				struct httpd_response *resp);

struct httpd_config {
	/* Exactly one of unix_path and listen. */
	const char *unix_path; /* bound with umask so it appears with unix_mode */
	mode_t unix_mode;
	const char *listen; /* "HOST:PORT", "[V6]:PORT" */
	/* TLS (TCP only): all three or none. With tls_ca, clients must present
	 * a certificate that chains to it, or they are not served at all. */
	const char *tls_cert;
	const char *tls_key;
	const char *tls_ca;
	size_t max_body;      /* bytes; larger bodies set body_too_large */
	unsigned threads;     /* worker threads, 0: 4 */
	unsigned timeout_sec; /* idle connection timeout, 0: 30 */
	unsigned max_connections; /* 0: 1024 */
};

struct httpd;

/*
 * Binds and starts serving; returns only once the socket is listening, so
 * the caller may report readiness. Returns 0 and *ret, or -errno (the reason
 * is logged at debug; the caller logs the failure).
 */
int httpd_start(const struct httpd_config *config, httpd_handler_fn handler, void *userdata,
		struct httpd **ret);

/* Stops accepting, finishes running handlers, frees. Accepts NULL, returns NULL. */
struct httpd *httpd_stop(struct httpd *h);

/* The TCP port actually bound (useful with port 0), or 0 on a Unix socket. */
unsigned httpd_port(const struct httpd *h);
