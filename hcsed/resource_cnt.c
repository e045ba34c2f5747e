/* SPDX-License-Identifier: Apache-2.0 */
/* <container> (ty 3, TS-0004 7.4.6): limits checked; counters live in store columns. */
#include "atrest/rsc.h"
#include "resource.h"

static const int cnt_parents[] = {TY_CB, TY_AE, TY_CNT, 0};

/* TS-0004 Table 7.4.6.1-3 */
static const struct attr_def cnt_attrs[] = {
    {"mni", AK_UINT, AF_C | AF_U | AF_N},
    {"mbs", AK_UINT, AF_C | AF_U | AF_N},
    {"mia", AK_UINT, AF_C | AF_U | AF_N},
    {"disr", AK_BOOL, AF_C | AF_U | AF_N},
    {"li", AK_STR, AF_C | AF_U | AF_N},
    {"or", AK_STR, AF_C | AF_U | AF_N},
    {"at", AK_STRLIST, AF_C | AF_U | AF_N},
    {"aa", AK_STRLIST, AF_C | AF_U | AF_N},
    {"cr", AK_ANY, AF_C},
    {NULL, 0, 0},
};

/* TS-0004 7.4.6.2.1: the Hosting CSE may cap mni/mbs by local policy. */
static int cnt_limits(struct hcse_ctx *ctx, struct store_res *res)
{
	const struct hcse_config *c = &ctx->cse->config;
	json_t *mni = json_object_get(res->attrs, "mni"), *mbs = json_object_get(res->attrs, "mbs");

	if (c->max_mni && (!mni || (uint64_t)json_integer_value(mni) > c->max_mni))
		json_object_set_new(res->attrs, "mni", json_integer((json_int_t)c->max_mni));
	if (c->max_mbs && (!mbs || (uint64_t)json_integer_value(mbs) > c->max_mbs))
		json_object_set_new(res->attrs, "mbs", json_integer((json_int_t)c->max_mbs));
	return 0;
}

static int cnt_create(struct hcse_ctx *ctx, struct store_res *parent, struct store_res *res)
{
	(void)parent;
	res->cni = 0;
	res->cbs = 0;
	res->st = 0;
	return cnt_limits(ctx, res);
}

static int cnt_update(struct hcse_ctx *ctx, struct store_res *res, json_t *changes)
{
	(void)changes;
	return cnt_limits(ctx, res);
}

bool resource_cnt_disr(const struct store_res *res)
{
	return res->ty == TY_CNT && json_is_true(json_object_get(res->attrs, "disr"));
}

int resource_cnt_disr_check(struct hcse_ctx *ctx, const struct store_res *res, bool virt)
{
	struct store_res cnt = {0};
	bool disr;
	int r;

	if (virt)
		disr = resource_cnt_disr(res);
	else if (res->ty == TY_CIN) {
		r = store_get_by_ri(ctx->t, res->pi, false, &cnt);
		if (r < 0)
			return r;
		disr = resource_cnt_disr(&cnt);
		store_res_clear(&cnt);
	} else
		return 0;
	/* eviction by mni/mbs/mia is the CSE's own doing and goes on */
	return disr ? ctx_fail(ctx, RSC_OPERATION_NOT_ALLOWED,
			       "the container's disableRetrieval is true") : 0;
}

const struct resource_type resource_type_cnt = {
    .ty = TY_CNT,
    .tn = "m2m:cnt",
    .prefix = "cnt",
    .has_acpi = true,
    .parents = cnt_parents,
    .attrs = cnt_attrs,
    .create = cnt_create,
    .update = cnt_update,
};
