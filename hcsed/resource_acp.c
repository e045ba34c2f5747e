/* SPDX-License-Identifier: Apache-2.0 */
/* <accessControlPolicy> (ty 1, TS-0004 7.4.2): privileges validated at the door. */
#include "atrest/rsc.h"
#include "resource.h"

static const int acp_parents[] = {TY_CB, TY_AE, 0};

/* TS-0004 Table 7.4.2.1-3 */
static const struct attr_def acp_attrs[] = {
    {"pv", AK_OBJ, AF_C | AF_U | AF_M},
    {"pvs", AK_OBJ, AF_C | AF_U | AF_M},
    {"at", AK_STRLIST, AF_C | AF_U | AF_N},
    {"aa", AK_STRLIST, AF_C | AF_U | AF_N},
    {NULL, 0, 0},
};

static int acp_validate(struct hcse_ctx *ctx, struct store_res *res)
{
	if (!acp_privileges_valid(json_object_get(res->attrs, "pv")) ||
	    !acp_privileges_valid(json_object_get(res->attrs, "pvs")))
		return ctx_fail(ctx, RSC_BAD_REQUEST, "invalid privileges (acr/acor/acop/acco)");
	return 0;
}

static int acp_create(struct hcse_ctx *ctx, struct store_res *parent, struct store_res *res)
{
	(void)parent;
	return acp_validate(ctx, res);
}

static int acp_update(struct hcse_ctx *ctx, struct store_res *res, json_t *changes)
{
	(void)changes;
	return acp_validate(ctx, res);
}

const struct resource_type resource_type_acp = {
    .ty = TY_ACP,
    .tn = "m2m:acp",
    .prefix = "acp",
    .has_acpi = false,
    .parents = acp_parents,
    .attrs = acp_attrs,
    .create = acp_create,
    .update = acp_update,
};
