/* SPDX-License-Identifier: Apache-2.0 */
/* TS-0009 HTTP binding: methods, X-M2M-* headers, query parameters and the path as a To parameter.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "atrest/cleanup.h"
#include "atrest/rsc.h"
#include "binding.h"

#define MAX_HEADER_VALUE 1024

static int fail(struct hcse_request *req, struct hcse_response *err, int rsc, const char *msg)
{
	hcse_request_clear(req);
	hcse_response_error(err, rsc, msg);
	return -EPROTO;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Percent-decodes a path; NUL bytes and bad escapes are refused. */
static int path_decode(const char *in, char **ret)
{
	size_t n = strlen(in);
	char *out = malloc(n + 1), *o = out;

	if (!out)
		return -ENOMEM;
	for (const char *p = in; *p; p++) {
		if (*p == '%') {
			int hi = hexval(p[1]), lo = hi >= 0 ? hexval(p[2]) : -1;

			if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
				free(out);
				return -EINVAL;
			}
			*o++ = (char)(hi << 4 | lo);
			p += 2;
		} else
			*o++ = *p;
	}
	*o = '\0';
	*ret = out;
	return 0;
}

/* TS-0009 6.2.2.1: "/~/x" is SP-relative "/x", "/_/x" absolute "//x",
 * anything else "/x" CSE-relative "x". */
static int path_to_to(const char *path, char **ret)
{
	_cleanup_free_ char *dec = NULL;
	int r = path_decode(path, &dec);

	if (r < 0)
		return r;
	if (dec[0] != '/')
		return -EINVAL;
	if (strncmp(dec, "/~/", 3) == 0 || strcmp(dec, "/~") == 0)
		r = asprintf(ret, "/%s", dec[2] ? dec + 3 : "");
	else if (strncmp(dec, "/_/", 3) == 0)
		r = asprintf(ret, "//%s", dec + 3);
	else
		r = asprintf(ret, "%s", dec + 1);
	return r < 0 ? -ENOMEM : 0;
}

static int parse_int(const char *s, long min, long max, long *ret)
{
	char *end;
	long v;

	if (!s || !*s)
		return -EINVAL;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end || v < min || v > max)
		return -EINVAL;
	*ret = v;
	return 0;
}

struct query_ctx {
	struct hcse_request *req;
	const char *bad; /* name of the first bad argument */
};

/* Splits a multi-valued argument ("2+3", "2 3", repeated keys: TS-0009 6.2.2.2). */
static int each_value(const char *value, int (*fn)(const char *v, size_t n, void *ud), void *ud)
{
	const char *p = value;

	while (*p) {
		size_t n = strcspn(p, "+ ");

		if (n && fn(p, n, ud) < 0)
			return -EINVAL;
		p += n;
		if (*p)
			p++;
	}
	return 0;
}

static int add_ty(const char *v, size_t n, void *ud)
{
	struct hcse_request *req = ud;
	char buf[16];
	long ty;

	if (n >= sizeof(buf) || req->fc.n_tys >= HCSE_MAX_FC_TYS)
		return -EINVAL;
	snprintf(buf, sizeof(buf), "%.*s", (int)n, v);
	if (parse_int(buf, 1, 65535, &ty) < 0)
		return -EINVAL;
	req->fc.tys[req->fc.n_tys++] = (int)ty;
	return 0;
}

static int add_label(const char *v, size_t n, void *ud)
{
	struct hcse_request *req = ud;

	if (req->fc.n_labels >= HCSE_MAX_FC_LABELS || n > 1024)
		return -EINVAL;
	req->fc.labels[req->fc.n_labels] = strndup(v, n);
	if (!req->fc.labels[req->fc.n_labels])
		return -EINVAL;
	req->fc.n_labels++;
	return 0;
}

static int add_atrl(const char *v, size_t n, void *ud)
{
	struct hcse_request *req = ud;

	if (req->n_atrl >= HCSE_MAX_ATRL || n > 64)
		return -EINVAL;
	req->atrl[req->n_atrl] = strndup(v, n);
	if (!req->atrl[req->n_atrl])
		return -EINVAL;
	req->n_atrl++;
	return 0;
}

static int time_arg(const char *value, char out[16])
{
	int64_t t;

	if (hcse_parse_time(value, &t) < 0)
		return -EINVAL;
	hcse_format_time(t, out);
	return 0;
}

static int query_arg(const char *key, const char *value, void *userdata)
{
	struct query_ctx *q = userdata;
	struct hcse_request *req = q->req;
	struct hcse_filter *fc = &req->fc;
	long v = 0;
	int r = 0;

	if (!value)
		value = "";
	/* TS-0009 Table 6.2.2.2-1 and TS-0004 Table 7.3.3.17-1 short names */
	if (strcmp(key, "rcn") == 0) {
		r = parse_int(value, 0, 10, &v);
		req->rcn = (int)v;
	} else if (strcmp(key, "ty") == 0) {
		r = each_value(value, add_ty, req);
		fc->present = true;
	} else if (strcmp(key, "lbl") == 0) {
		r = each_value(value, add_label, req);
		fc->present = true;
	} else if (strcmp(key, "cra") == 0) {
		r = time_arg(value, fc->cra);
		fc->present = true;
	} else if (strcmp(key, "crb") == 0) {
		r = time_arg(value, fc->crb);
		fc->present = true;
	} else if (strcmp(key, "ms") == 0 || strcmp(key, "us") == 0) {
		r = time_arg(value, key[0] == 'm' ? fc->ms : fc->us);
		fc->present = true;
	} else if (strcmp(key, "exa") == 0 || strcmp(key, "exb") == 0) {
		r = hcse_parse_time(value, key[2] == 'a' ? &fc->exa : &fc->exb);
		fc->present = true;
	} else if (strcmp(key, "sts") == 0 || strcmp(key, "szb") == 0) {
		/* xs:positiveInteger (TS-0004 Table 7.3.3.17-1) */
		r = parse_int(value, 1, INT32_MAX, &v);
		*(key[1] == 't' ? &fc->sts : &fc->szb) = v;
		fc->present = true;
	} else if (strcmp(key, "stb") == 0 || strcmp(key, "sza") == 0) {
		/* xs:nonNegativeInteger */
		r = parse_int(value, 0, INT32_MAX, &v);
		*(key[1] == 't' ? &fc->stb : &fc->sza) = v;
		fc->present = true;
	} else if (strcmp(key, "lim") == 0) {
		r = parse_int(value, 0, 1000000000, &v);
		fc->lim = v;
		fc->present = true;
	} else if (strcmp(key, "ofst") == 0) {
		r = parse_int(value, 0, 1000000000, &v);
		fc->ofst = v;
		fc->present = true;
	} else if (strcmp(key, "lvl") == 0) {
		r = parse_int(value, 1, 1000, &v);
		fc->lvl = (int)v;
		fc->present = true;
	} else if (strcmp(key, "fu") == 0) {
		r = parse_int(value, 1, 3, &v);
		fc->fu = (int)v;
		fc->present = true;
	} else if (strcmp(key, "drt") == 0) {
		r = parse_int(value, 1, 2, &v);
		fc->drt = (int)v;
	} else if (strcmp(key, "atrl") == 0) {
		r = each_value(value, add_atrl, req);
	}
	/* other arguments (rt, rp, ...) are not used by this CSE: ignored */
	if (r < 0) {
		q->bad = key;
		return 1;
	}
	return 0;
}

/* "application/json; ty=3" -> media type ok?, ty (0 when absent); -EINVAL on junk. */
static int parse_content_type(const char *ct, bool *ret_json, int *ret_ty)
{
	const char *p = ct, *semi;
	size_t n;

	*ret_json = false;
	*ret_ty = 0;
	if (!ct)
		return 0;
	while (*p == ' ')
		p++;
	semi = strchr(p, ';');
	n = semi ? (size_t)(semi - p) : strlen(p);
	while (n && p[n - 1] == ' ')
		n--;
	/* TS-0009 6.4.3 / 8.2: JSON serialisation media types */
	*ret_json =
	    (n == strlen("application/json") && strncasecmp(p, "application/json", n) == 0) ||
	    (n == strlen("application/vnd.onem2m-res+json") &&
	     strncasecmp(p, "application/vnd.onem2m-res+json", n) == 0);
	while (semi) {
		const char *param = semi + 1;

		semi = strchr(param, ';');
		while (*param == ' ')
			param++;
		if (strncasecmp(param, "ty=", 3) == 0) {
			char buf[16];
			long ty;

			n = semi ? (size_t)(semi - param - 3) : strlen(param + 3);
			if (n == 0 || n >= sizeof(buf))
				return -EINVAL;
			snprintf(buf, sizeof(buf), "%.*s", (int)n, param + 3);
			while (strlen(buf) && buf[strlen(buf) - 1] == ' ')
				buf[strlen(buf) - 1] = '\0';
			if (parse_int(buf, 1, 65535, &ty) < 0)
				return -EINVAL;
			*ret_ty = (int)ty;
		}
	}
	return 0;
}

static char *header_dup(const struct binding_input *in, const char *name, bool *ret_bad)
{
	const char *v = in->header(in->userdata, name);

	if (!v)
		return NULL;
	if (strlen(v) > MAX_HEADER_VALUE || strlen(v) == 0) {
		*ret_bad = true;
		return NULL;
	}
	return strdup(v);
}

/* TLS binds the certificate to the originator (DESIGN.md 2): its CN, or a
 * URI SAN naming it (".../<originator>"). */
static bool cert_names(const struct binding_input *in, const char *fr)
{
	size_t n = strlen(fr), u = in->cert_uri ? strlen(in->cert_uri) : 0;

	if (in->cert_cn && strcmp(in->cert_cn, fr) == 0)
		return true;
	if (u && strcmp(in->cert_uri, fr) == 0)
		return true;
	return u > n && strcmp(in->cert_uri + u - n, fr) == 0 && in->cert_uri[u - n - 1] == '/';
}

int binding_parse(const struct binding_input *in, struct hcse_request *req,
		  struct hcse_response *err)
{
	struct query_ctx q = {.req = req};
	bool is_json, bad_header = false;
	int ty, r;

	*req = (struct hcse_request){
	    .rcn = -1, .fc = {.lim = -1, .drt = 1, .sts = -1, .stb = -1, .sza = -1, .szb = -1}};
	*err = (struct hcse_response){0};

	/* TS-0009 6.2.1: the method is the operation */
	if (strcmp(in->method, "GET") == 0)
		req->op = HCSE_OP_RETRIEVE;
	else if (strcmp(in->method, "POST") == 0)
		req->op = HCSE_OP_CREATE; /* or Notify: decided by ty below */
	else if (strcmp(in->method, "PUT") == 0)
		req->op = HCSE_OP_UPDATE;
	else if (strcmp(in->method, "DELETE") == 0)
		req->op = HCSE_OP_DELETE;
	else
		return fail(req, err, RSC_OPERATION_NOT_ALLOWED, "method not supported");

	req->fr = header_dup(in, "X-M2M-Origin", &bad_header);
	req->rqi = header_dup(in, "X-M2M-RI", &bad_header);
	req->rvi = header_dup(in, "X-M2M-RVI", &bad_header);
	if (bad_header)
		return fail(req, err, RSC_BAD_REQUEST, "bad X-M2M header value");
	/* TS-0009 6.4.1/6.4.2: X-M2M-RI is mandatory in requests */
	if (!req->rqi)
		return fail(req, err, RSC_BAD_REQUEST, "missing X-M2M-RI");
	snprintf(req->peer_addr, sizeof(req->peer_addr), "%s", in->peer_addr ? in->peer_addr : "");
	req->is_tls = in->is_tls;
	if (in->is_tls) {
		snprintf(req->cert_cn, sizeof(req->cert_cn), "%s", in->cert_cn ? in->cert_cn : "");
		snprintf(req->cert_uri, sizeof(req->cert_uri), "%s",
			 in->cert_uri ? in->cert_uri : "");
		if (!req->fr || !cert_names(in, req->fr))
			return fail(req, err, RSC_ORIGINATOR_NOT_AUTHENTICATED,
				    "X-M2M-Origin does not match the client certificate");
	}

	r = path_to_to(in->path, &req->to);
	if (r == -ENOMEM)
		return r;
	if (r < 0)
		return fail(req, err, RSC_BAD_REQUEST, "bad request target");

	if (in->query_foreach) {
		in->query_foreach(in->userdata, query_arg, &q);
		if (q.bad) {
			char msg[128];

			snprintf(msg, sizeof(msg), "bad query argument \"%.64s\"", q.bad);
			return fail(req, err, RSC_BAD_REQUEST, msg);
		}
	}
	if (req->fc.present && !req->fc.fu)
		req->fc.fu = 2; /* conditional retrieval (TS-0004 Table 7.3.3.17-3) */

	if (parse_content_type(in->header(in->userdata, "Content-Type"), &is_json, &ty) < 0)
		return fail(req, err, RSC_BAD_REQUEST, "bad ty in Content-Type");
	if (req->op == HCSE_OP_CREATE) {
		req->ty = ty;
		if (!ty)
			req->op = HCSE_OP_NOTIFY; /* TS-0009 6.2.1: POST without ty */
	}
	if (!req->fr && !(req->op == HCSE_OP_CREATE && req->ty == TY_AE))
		return fail(req, err, RSC_BAD_REQUEST, "missing X-M2M-Origin");

	if (in->body_too_large)
		return fail(req, err, RSC_NOT_ACCEPTABLE, "request body too large");
	if (req->op == HCSE_OP_CREATE || req->op == HCSE_OP_UPDATE || req->op == HCSE_OP_NOTIFY) {
		_cleanup_free_ char *rest = NULL;
		json_error_t jerr;

		if (!in->body || in->body_len == 0)
			return fail(req, err, RSC_BAD_REQUEST, "missing content");
		if (!is_json)
			return fail(req, err, RSC_UNSUPPORTED_MEDIA_TYPE,
				    "only JSON serialisation is supported");
		if (req->op == HCSE_OP_CREATE && req->ty == TY_CIN) {
			r = hcse_split_con(in->body, in->body_len, &req->con, &req->con_len,
					   &req->con_size, &rest);
			if (r == -ENOMEM)
				return r;
			if (r == -EINVAL)
				return fail(req, err, RSC_BAD_REQUEST, "malformed JSON content");
		}
		req->pc = rest ? json_loads(rest, JSON_REJECT_DUPLICATES, &jerr)
			       : json_loadb(in->body, in->body_len, JSON_REJECT_DUPLICATES, &jerr);
		if (!req->pc)
			return fail(req, err, RSC_BAD_REQUEST, "malformed JSON content");
	}
	return 0;
}

int binding_http_status(const struct hcse_response *resp)
{
	return rsc_to_http_status(resp->rsc);
}
