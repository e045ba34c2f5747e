/* SPDX-License-Identifier: Apache-2.0 */
/* The HTTP binding (TS-0009): an HTTP request to a request primitive, a response primitive to HTTP.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "hcse.h"

/* What the binding needs of an HTTP request, independent of the server. */
struct binding_input {
	const char *method;
	const char *path; /* not decoded */
	/* header by case-insensitive name, or NULL */
	const char *(*header)(void *userdata, const char *name);
	/* calls fn for every decoded query argument in order */
	int (*query_foreach)(void *userdata,
			     int (*fn)(const char *key, const char *value, void *ud), void *ud);
	void *userdata;
	const char *body; /* NUL-terminated, kept alive while the request is processed */
	size_t body_len;
	bool body_too_large;
	const char *peer_addr;
	bool is_tls;
	const char *cert_cn;
	const char *cert_uri;
};

/*
 * Maps an HTTP request to a request primitive (TS-0009 6.2-6.4). Returns 0
 * and fills *ret, or -EPROTO with *ret_err holding the error response (and
 * *ret cleared), or -ENOMEM. req->con points into in->body.
 */
int binding_parse(const struct binding_input *in, struct hcse_request *ret,
		  struct hcse_response *ret_err);

/* TS-0009 6.3.2: the HTTP status for a response primitive. */
int binding_http_status(const struct hcse_response *resp);
