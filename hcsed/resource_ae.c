/* SPDX-License-Identifier: Apache-2.0 */
/* <AE> (ty 2, TS-0004 7.4.5): registration rules and AE-ID assignment. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "atrest/rsc.h"
#include "resource.h"

static const int ae_parents[] = {TY_CB, 0};

/* TS-0004 Table 7.4.5.1-3 (RW/WO/RO) */
static const struct attr_def ae_attrs[] = {
    {"apn", AK_STR, AF_C | AF_U | AF_N},
    {"api", AK_STR, AF_C | AF_M},
    {"poa", AK_STRLIST, AF_C | AF_U | AF_N},
    {"or", AK_STR, AF_C | AF_U | AF_N},
    {"nl", AK_STR, AF_C | AF_U | AF_N},
    {"rr", AK_BOOL, AF_C | AF_U | AF_M},
    {"csz", AK_STRLIST, AF_C | AF_U | AF_N},
    {"srv", AK_STRLIST, AF_C | AF_U | AF_M},
    {"at", AK_STRLIST, AF_C | AF_U | AF_N},
    {"aa", AK_STRLIST, AF_C | AF_U | AF_N},
    {NULL, 0, 0},
};

static bool is_known_release(const char *s)
{
	static const char *const rel[] = {"1", "2", "2a", "3", "4", "5"};

	for (size_t i = 0; i < sizeof(rel) / sizeof(rel[0]); i++)
		if (strcmp(s, rel[i]) == 0)
			return true;
	return false;
}

static int check_common(struct hcse_ctx *ctx, json_t *attrs)
{
	json_t *srv = json_object_get(attrs, "srv"), *v;
	size_t i;

	/* TS-0004 7.4.5.2.1: supportedReleaseVersions must be non-empty and known */
	if (srv) {
		if (json_array_size(srv) == 0)
			return ctx_fail(ctx, RSC_BAD_REQUEST, "srv must not be empty");
		json_array_foreach (srv, i, v)
			if (!is_known_release(json_string_value(v)))
				return ctx_fail(ctx, RSC_BAD_REQUEST, "unknown release in srv");
	}
	return 0;
}

static int ae_create(struct hcse_ctx *ctx, struct store_res *parent, struct store_res *res)
{
	const char *fr = ctx->fr, *api = json_string_value(json_object_get(res->attrs, "api"));
	struct store_res other = {0};
	char aei[64];
	int r;

	/* TS-0004 7.3.5.2.1 (AE registration): App-ID starts with R
	 * (registered) or N (non-registered) */
	if (!api || (api[0] != 'R' && api[0] != 'N') || api[1] == '\0')
		return ctx_fail(ctx, RSC_BAD_REQUEST, "api must start with R or N");
	r = check_common(ctx, res->attrs);
	if (r < 0)
		return r;

	/* From "C" or "S" alone (or absent): the Hosting CSE assigns the AE-ID;
	 * "C..." / "S...": the AE-ID the originator claims. */
	if (fr[0] == '\0' || strcmp(fr, "C") == 0 || strcmp(fr, "S") == 0)
		snprintf(aei, sizeof(aei), "%c%08x%08x", fr[0] ? fr[0] : 'C', arc4random(),
			 arc4random());
	else if ((fr[0] == 'C' || fr[0] == 'S') && !strchr(fr, '/') && strlen(fr) < sizeof(aei))
		snprintf(aei, sizeof(aei), "%s", fr);
	else
		return ctx_fail(ctx, RSC_ORIGINATOR_HAS_NO_PRIVILEGE,
				"an AE registers with an originator starting with C or S");

	r = store_get_by_aei(ctx->t, aei, &other);
	if (r == -ENOENT)
		r = store_get_by_ri(ctx->t, aei, false, &other);
	store_res_clear(&other);
	if (r == 0)
		return ctx_fail(ctx, RSC_ORIGINATOR_HAS_ALREADY_REGISTERED,
				"originator has already registered");
	if (r != -ENOENT)
		return r;

	/* The AE's resourceID is its AE-ID, so "/id-in/<AE-ID>" addresses it. */
	free(res->aei);
	res->aei = strdup(aei);
	free(res->cr);
	res->cr = strdup(aei);
	bool rn_default = strcmp(res->rn, res->ri) == 0;

	free(res->ri);
	res->ri = strdup(aei);
	if (rn_default) {
		free(res->rn);
		res->rn = strdup(aei);
		free(res->path);
		if (asprintf(&res->path, "%s/%s", parent->path, aei) < 0)
			res->path = NULL;
	}
	if (!res->aei || !res->cr || !res->ri || !res->rn || !res->path)
		return -ENOMEM;
	return 0;
}

static int ae_update(struct hcse_ctx *ctx, struct store_res *res, json_t *changes)
{
	(void)changes;
	return check_common(ctx, res->attrs);
}

const struct resource_type resource_type_ae = {
    .ty = TY_AE,
    .tn = "m2m:ae",
    .prefix = "C",
    .has_acpi = true,
    .parents = ae_parents,
    .attrs = ae_attrs,
    .create = ae_create,
    .update = ae_update,
};
