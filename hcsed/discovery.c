/* SPDX-License-Identifier: Apache-2.0 */
/* Discovery (TS-0004 7.3.3.17 filter criteria, fu=1): streamed from the store, never a whole
 * subtree in memory. */
#include <errno.h>
#include <string.h>

#include "atrest/cleanup.h"
#include "atrest/rsc.h"
#include "resource.h"

#define DISCOVERY_MAX_RESULTS 100000

struct disc {
	struct hcse_ctx *ctx;
	json_t *out;
	int64_t skip, left;
	bool refs; /* rcn 6: m2m:rrl child references instead of m2m:uril */
	/* DISCOVER privilege of the last parent, for children without acpi */
	char *last_pi;
	bool last_ok;
};

static int disc_cb(struct store_res *r, void *userdata)
{
	struct disc *d = userdata;
	const struct hcse_filter *fc = &d->ctx->req->fc;
	bool ok;
	int ret;

	/* the cheap conditions first, the privilege check after */
	if (!filter_match(fc, r))
		return 0;
	/* Children without acpi (and without an owner match) inherit the
	 * parent's decision; reuse it while the rows share a parent. */
	if (r->ty == TY_CIN && r->cr && strcmp(r->cr, d->ctx->fr) == 0)
		ok = true; /* its creator (never cached: it is this row's own) */
	else if (r->ty == TY_CIN && d->last_pi && r->pi && strcmp(d->last_pi, r->pi) == 0)
		ok = d->last_ok;
	else {
		ret = acp_allowed(d->ctx, r, ACOP_DISCOVER, &ok);
		if (ret < 0)
			return ret;
		if (r->ty == TY_CIN && r->pi) {
			free(d->last_pi);
			d->last_pi = strdup(r->pi);
			d->last_ok = ok;
		}
	}
	if (!ok)
		return 0;
	if (d->skip > 0) {
		d->skip--;
		return 0;
	}
	if (d->left == 0)
		return 1;
	if (d->left > 0)
		d->left--;
	/* drt 1 structured (default), 2 unstructured (TS-0004 6.3.4.2.8) */
	const char *id = fc->drt == 2 ? r->ri : r->path;
	if (d->refs)
		json_array_append_new(
		    d->out, json_pack("{s:s,s:i,s:s}", "nm", r->rn, "typ", r->ty, "val", id));
	else
		json_array_append_new(d->out, json_string(id));
	return 0;
}

int discovery_run(struct hcse_ctx *ctx, const struct store_res *base, json_t **ret)
{
	const struct hcse_filter *fc = &ctx->req->fc;
	int rcn = ctx->req->rcn < 0 ? 1 : ctx->req->rcn;
	struct store_filter f = {
	    .base_path = base->path,
	    .max_depth = fc->lvl > 0 ? base->depth + fc->lvl : 0,
	    .tys = fc->tys,
	    .n_tys = fc->n_tys,
	    .labels = (const char *const *)fc->labels,
	    .n_labels = fc->n_labels,
	    .cra = fc->cra[0] ? fc->cra : NULL,
	    .crb = fc->crb[0] ? fc->crb : NULL,
	    .now = ctx->now,
	};
	struct disc d = {
	    .ctx = ctx,
	    .skip = fc->ofst,
	    .left =
		fc->lim >= 0 && fc->lim < DISCOVERY_MAX_RESULTS ? fc->lim : DISCOVERY_MAX_RESULTS,
	};
	int r;

	/* discovery answers with m2m:uril, or m2m:rrl when rcn asks for
	 * child resource references (TS-0004 Table 7.5.2-2, note 2) */
	if (rcn != 1 && rcn != 6)
		return ctx_fail(ctx, RSC_BAD_REQUEST, "rcn %d not valid for discovery", rcn);
	d.refs = rcn == 6;
	d.out = json_array();
	if (!d.out)
		return -ENOMEM;
	r = store_find(ctx->t, &f, disc_cb, &d);
	free(d.last_pi);
	if (r < 0) {
		json_decref(d.out);
		return r;
	}
	*ret = d.refs ? json_pack("{s:{s:o}}", "m2m:rrl", "rrf", d.out)
		      : json_pack("{s:o}", "m2m:uril", d.out);
	return *ret ? 0 : -ENOMEM;
}
