/* SPDX-License-Identifier: Apache-2.0 */
/* <contentInstance> (ty 4, TS-0004 7.4.7): content kept as given, size and cnf checked. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "atrest/rsc.h"
#include "resource.h"

static const int cin_parents[] = {TY_CNT, 0};

/* TS-0004 Table 7.4.7.1-3: everything is WO; no acpi (has_acpi false). */
static const struct attr_def cin_attrs[] = {
    {"cnf", AK_STR, AF_C}, {"con", AK_ANY, AF_C}, {"or", AK_STR, AF_C},
    {"dgt", AK_STR, AF_C}, {"cr", AK_ANY, AF_C}, {NULL, 0, 0},
};

static bool is_token_char(char c)
{
	/* RFC 6838 restricted-name characters */
	return isalnum((unsigned char)c) || (c != '\0' && strchr("!#$&-^_.+", c));
}

/* m2m:contentInfo (TS-0004 Table 6.3.3-1): "type/subtype:encoding[:security]"
 * with encoding 0-2 (6.3.4.2.28) and contentSecurity 0-5 (6.3.4.2.38). */
bool cin_cnf_valid(const char *cnf)
{
	const char *p = cnf;
	size_t n;

	for (n = 0; is_token_char(*p); p++)
		n++;
	if (n == 0 || *p != '/')
		return false;
	p++;
	for (n = 0; is_token_char(*p); p++)
		n++;
	/* media type parameters (";charset=...") are allowed before the ':' */
	while (*p == ';') {
		p++;
		while (*p && *p != ':' && *p != ';')
			p++;
	}
	if (n == 0 || *p != ':')
		return false;
	p++;
	if (*p < '0' || *p > '2')
		return false;
	p++;
	if (*p == '\0')
		return true;
	if (*p != ':')
		return false;
	p++;
	if (*p < '0' || *p > '5')
		return false;
	return p[1] == '\0';
}

static int cin_create(struct hcse_ctx *ctx, struct store_res *parent, struct store_res *res)
{
	const struct hcse_request *req = ctx->req;
	json_t *cnf = json_object_get(res->attrs, "cnf");
	json_t *mbs = json_object_get(parent->attrs, "mbs");

	if (!req->con)
		return ctx_fail(ctx, RSC_BAD_REQUEST, "mandatory attribute \"con\" missing");
	if (cnf && !cin_cnf_valid(json_string_value(cnf)))
		return ctx_fail(ctx, RSC_BAD_REQUEST, "invalid cnf");
	/* TS-0004 7.4.7.2.1: content larger than the container's mbs -> NOT_ACCEPTABLE */
	if (mbs && req->con_size > json_integer_value(mbs))
		return ctx_fail(ctx, RSC_NOT_ACCEPTABLE, "content larger than the container's mbs");
	/* maxInstanceAge (TS-0004 7.4.6.1): an instance lives at most mia
	 * seconds, so its expirationTime is capped; the sweeper removes it */
	json_t *mia = json_object_get(parent->attrs, "mia");
	if (mia && ctx->now + json_integer_value(mia) < res->et)
		res->et = ctx->now + json_integer_value(mia);
	json_object_del(res->attrs, "con"); /* the placeholder of the parse */
	res->con = (char *)req->con;
	res->con_len = req->con_len;
	res->con_borrowed = true;
	res->cs = req->con_size;
	/* stateTag: the container's, incremented, copied (TS-0004 7.4.7.1) */
	parent->st++;
	res->st = parent->st;
	return 0;
}

const struct resource_type resource_type_cin = {
    .ty = TY_CIN,
    .tn = "m2m:cin",
    .prefix = "cin",
    .has_acpi = false,
    .parents = cin_parents,
    .attrs = cin_attrs,
    .create = cin_create,
};
