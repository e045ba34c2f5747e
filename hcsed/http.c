/* SPDX-License-Identifier: Apache-2.0 */
/* hcsed's HTTP handler: httpd requests through the TS-0009 binding into the CSE and back. */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "atrest/httpd.h"
#include "atrest/log.h"
#include "atrest/rsc.h"
#include "binding.h"
#include "http.h"

static _Atomic uint64_t max_body; /* 0: the server's cap only */

void http_set_max_body(uint64_t max)
{
	atomic_store(&max_body, max);
}

static const char *get_header(void *userdata, const char *name)
{
	return httpd_request_header(userdata, name);
}

static int foreach_query(void *userdata, int (*fn)(const char *, const char *, void *), void *ud)
{
	return httpd_request_query_foreach(userdata, fn, ud);
}

static int respond(const struct hcse_request *req, struct hcse_response *out,
		   struct httpd_response *resp, bool too_large)
{
	char rsc[16];
	int r;

	/* TS-0009 6.3.2 status mapping; an oversized body is also 413 so
	 * plain HTTP clients understand it */
	httpd_response_set_status(resp, too_large ? 413 : binding_http_status(out));
	snprintf(rsc, sizeof(rsc), "%d", out->rsc);
	/* TS-0009 6.4: X-M2M-RSC always, X-M2M-RI and X-M2M-RVI echoed */
	r = httpd_response_add_header(resp, "X-M2M-RSC", rsc);
	if (r >= 0 && req && req->rqi)
		r = httpd_response_add_header(resp, "X-M2M-RI", req->rqi);
	if (r >= 0 && req && req->rvi)
		r = httpd_response_add_header(resp, "X-M2M-RVI", req->rvi);
	/* TS-0009 6.4.4: Content-Location of the created resource */
	if (r >= 0 && out->location)
		r = httpd_response_add_header(resp, "Content-Location", out->location);
	if (r >= 0 && out->body) {
		r = httpd_response_set_body(resp, "application/json", out->body, out->body_len);
		out->body = NULL;
	}
	return r;
}

int http_handle(void *userdata, const struct httpd_request *hreq, struct httpd_response *resp)
{
	struct hcse *cse = userdata;
	uint64_t cap = atomic_load(&max_body);
	bool too_large = hreq->body_too_large || (cap && hreq->body_len > cap);
	struct binding_input in = {
	    .method = hreq->method,
	    .path = hreq->path,
	    .header = get_header,
	    .query_foreach = foreach_query,
	    .userdata = (void *)hreq,
	    .body = too_large ? NULL : hreq->body,
	    .body_len = too_large ? 0 : hreq->body_len,
	    .body_too_large = too_large,
	    .peer_addr = hreq->peer.addr,
	    .is_tls = hreq->peer.is_tls,
	    .cert_cn = hreq->peer.cert_cn,
	    .cert_uri = hreq->peer.cert_uri,
	};
	struct hcse_request req;
	struct hcse_response out = {0};
	int r;

	r = binding_parse(&in, &req, &out);
	if (r == -EPROTO) {
		/* echo what could be read even for a refused request */
		struct hcse_request echo = {
		    .rqi = (char *)httpd_request_header(hreq, "X-M2M-RI"),
		    .rvi = (char *)httpd_request_header(hreq, "X-M2M-RVI"),
		};
		if (echo.rqi && strlen(echo.rqi) > 1024)
			echo.rqi = NULL;
		if (echo.rvi && strlen(echo.rvi) > 16)
			echo.rvi = NULL;
		r = respond(&echo, &out, resp, too_large);
		hcse_response_clear(&out);
		return r;
	}
	if (r < 0)
		return r;
	hcse_process(cse, &req, &out);
	log_debug("%s \"%s\" from \"%s\": %d", hreq->method, req.to ? req.to : "",
		  req.fr ? req.fr : "", out.rsc);
	r = respond(&req, &out, resp, false);
	hcse_response_clear(&out);
	hcse_request_clear(&req);
	return r;
}
