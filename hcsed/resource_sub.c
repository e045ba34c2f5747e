/* SPDX-License-Identifier: Apache-2.0 */
/* <subscription> (ty 23, TS-0004 7.4.8): notification targets and event criteria. */
#include <errno.h>
#include <string.h>

#include "atrest/rsc.h"
#include "resource.h"

static const int sub_parents[] = {TY_CB, TY_AE, TY_CNT, TY_ACP, 0};

/* TS-0004 Table 7.4.8.1-3 */
static const struct attr_def sub_attrs[] = {
    {"nu", AK_STRLIST, AF_C | AF_U | AF_M},
    {"enc", AK_OBJ, AF_C | AF_U | AF_N},
    {"exc", AK_UINT, AF_C | AF_U | AF_N},
    {"nct", AK_UINT, AF_C | AF_U | AF_N},
    {"su", AK_STR, AF_C},
    {"ln", AK_BOOL, AF_C | AF_U | AF_N},
    {"nsi", AK_ANY, AF_C | AF_U | AF_N},
    {"cr", AK_ANY, AF_C},
    {NULL, 0, 0},
};

static int sub_validate(struct hcse_ctx *ctx, struct store_res *res)
{
	json_t *nu = json_object_get(res->attrs, "nu"), *enc = json_object_get(res->attrs, "enc");
	json_t *net = json_object_get(enc, "net"), *v;
	json_t *nct = json_object_get(res->attrs, "nct");
	size_t i;

	if (json_array_size(nu) == 0)
		return ctx_fail(ctx, RSC_BAD_REQUEST, "nu must not be empty");
	/* m2m:notificationEventType 1..9 (TS-0004 6.3.4.2.x) */
	if (net && !json_is_array(net))
		return ctx_fail(ctx, RSC_BAD_REQUEST, "enc/net must be a list");
	json_array_foreach (net, i, v) {
		if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > 9)
			return ctx_fail(ctx, RSC_BAD_REQUEST, "invalid notificationEventType");
	}
	/* m2m:notificationContentType (TS-0004 6.3.4.2.18): 1 All Attributes,
	 * 2 Modified Attributes, 3 ResourceID; 4 Trigger Payload and 5
	 * TimeSeries notification apply to resources hcsed does not host */
	if (nct && (json_integer_value(nct) < 1 || json_integer_value(nct) > 3))
		return ctx_fail(ctx, RSC_BAD_REQUEST, "invalid or unsupported nct");
	/* TS-0004 7.4.8.2.1 (TS-0001 Table 9.6.8-4): Modified Attributes only
	 * exists for Update_of_Resource; an nct invalid for an event -> 4000 */
	if (nct && json_integer_value(nct) == 2) {
		json_array_foreach (net, i, v)
			if (json_integer_value(v) != 1)
				return ctx_fail(ctx, RSC_BAD_REQUEST,
						"nct 2 (modified attributes) needs net 1");
	}
	return 0;
}

static int sub_create(struct hcse_ctx *ctx, struct store_res *parent, struct store_res *res)
{
	json_t *v;
	size_t i;

	(void)parent;
	/* Recv-6.5 of TS-0004 7.4.8.2.1: an absent nct gets the default,
	 * All Attributes */
	if (!json_object_get(res->attrs, "nct"))
		json_object_set_new(res->attrs, "nct", json_integer(1));
	/* TS-0004 7.4.8.2.1 Recv-6.5: a notificationURI other than the
	 * originator makes the originator the creator */
	json_array_foreach (json_object_get(res->attrs, "nu"), i, v)
		if (json_is_string(v) && strcmp(json_string_value(v), ctx->fr) != 0)
			json_object_set_new(res->attrs, "_cr", json_true());
	return sub_validate(ctx, res);
}

static int sub_update(struct hcse_ctx *ctx, struct store_res *res, json_t *changes)
{
	int r = sub_validate(ctx, res);

	/* a new target needs the same privilege as at creation (local policy:
	 * TS-0004 7.4.8.2.3 has no verification, this closes the bypass) */
	if (r >= 0 && json_object_get(changes, "nu"))
		r = resource_sub_nu_check(ctx, json_object_get(changes, "nu"));
	return r;
}

int resource_sub_nu_check(struct hcse_ctx *ctx, const json_t *nu)
{
	const json_t *v;
	size_t i;

	json_array_foreach (nu, i, v) {
		struct store_res target = {0};
		const char *s = json_string_value(v);
		bool ok = false;
		int r;

		/* the originator itself is not verified (TS-0004 7.4.8.2.1) */
		if (!s || strcmp(s, ctx->fr) == 0)
			continue;
		r = resource_nu_target(ctx, s, &target);
		if (r == -ENOENT)
			continue; /* a URL, or no resource of this CSE */
		if (r >= 0)
			r = acp_allowed(ctx, &target, ACOP_NOTIFY, &ok);
		store_res_clear(&target);
		if (r < 0)
			return r;
		/* the target's answer would be SUBSCRIPTION_CREATOR_HAS_NO_PRIVILEGE
		 * (7.5.1.2.3), which makes the Create fail with 5204 (7.4.8.2.1 b) */
		if (!ok)
			return ctx_fail(ctx, RSC_SUBSCRIPTION_VERIFICATION_INITIATION_FAILED,
					"originator has no NOTIFY privilege on the notification "
					"target \"%.64s\"",
					s);
	}
	return 0;
}

const struct resource_type resource_type_sub = {
    .ty = TY_SUB,
    .tn = "m2m:sub",
    .prefix = "sub",
    .has_acpi = true,
    .parents = sub_parents,
    .attrs = sub_attrs,
    .create = sub_create,
    .update = sub_update,
};
