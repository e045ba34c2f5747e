/* SPDX-License-Identifier: Apache-2.0 */
/* The mount's lease on its AE: one atrestfs at a time uploads into an AE's containers. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <sodium.h>

#include "atrest/cleanup.h"
#include "atrest/hcse_client.h"
#include "atrest/json_strv.h"
#include "atrest/log.h"
#include "atrestfs.h"
#include "cache.h"

/*
 * Two mounts under one AE (two gateways left on the default ae=atrestfs, or
 * a second mount with another cache) would number nodes independently and
 * delete each other's containers. So a mount holds a lease on its AE: the
 * label "atrest:lease=<instance>:<until>" on the AE resource, <instance> the
 * cache's random id (a remount of the same cache is the same holder),
 * <until> Unix seconds. It is taken at mount, renewed by the uploader every
 * quarter of its length before anything is uploaded, and given back at a
 * clean unmount. A live lease of another instance refuses the mount, and
 * stops this mount's uploads if it finds one at a renewal (everything stays
 * queued here). The clocks of the gateways are compared: keep them in time.
 */
#define LEASE_PREFIX "atrest:lease="

static uint64_t now_s(void)
{
	return (uint64_t)time(NULL);
}

/* The cache's instance id, made once and kept in the index. */
static int instance_id(struct fs *fs, char **ret)
{
	uint8_t raw[16];
	char hex[sizeof(raw) * 2 + 1];

	if (cache_meta_get(fs->cache, "instance", ret) == 0 && **ret)
		return 0;
	randombytes_buf(raw, sizeof(raw));
	sodium_bin2hex(hex, sizeof(hex), raw, sizeof(raw));
	int r = cache_meta_set(fs->cache, "instance", hex);
	if (r < 0)
		return r;
	*ret = strdup(hex);
	return *ret ? 0 : -ENOMEM;
}

/* "instance:until" -> its parts; false if malformed (then it binds nobody). */
static bool lease_parse(const char *v, char holder[64], uint64_t *until)
{
	const char *colon = strrchr(v, ':');
	char *end;

	if (!colon || colon == v || (size_t)(colon - v) >= 64)
		return false;
	memcpy(holder, v, (size_t)(colon - v));
	holder[colon - v] = '\0';
	errno = 0;
	*until = strtoull(colon + 1, &end, 10);
	return !errno && end != colon + 1 && !*end;
}

/*
 * Reads the AE's labels; if another instance holds a live lease, -EBUSY
 * (its holder and end in ret_holder and *ret_until); otherwise writes ours,
 * ending at `until` (0: gives it back), keeping the other labels.
 */
static int lease_write(struct fs *fs, const char *me, uint64_t until, char ret_holder[64],
		       uint64_t *ret_until)
{
	_cleanup_json_ json_t *ae = NULL;
	_cleanup_free_ const char **labels = NULL;
	_cleanup_free_ char *mine = NULL;
	json_t *lbl, *v;
	size_t i, n = 0;
	int r;

	r = hcse_retrieve(fs->hcse, fs->ae_path, &ae, NULL, NULL);
	if (r < 0)
		return r;
	lbl = json_object_get(ae, "lbl");
	labels = calloc(json_array_size(lbl) + 1, sizeof(*labels));
	if (!labels)
		return -ENOMEM;
	json_array_foreach(lbl, i, v) {
		const char *l = json_string_value(v);
		uint64_t end;

		if (!l)
			continue;
		if (strncmp(l, LEASE_PREFIX, strlen(LEASE_PREFIX)) != 0) {
			labels[n++] = l;
			continue;
		}
		if (lease_parse(l + strlen(LEASE_PREFIX), ret_holder, &end) &&
		    strcmp(ret_holder, me) != 0 && end > now_s()) {
			*ret_until = end;
			return -EBUSY;
		}
	}
	if (until) {
		if (asprintf(&mine, LEASE_PREFIX "%s:%" PRIu64, me, until) < 0)
			return -ENOMEM;
		labels[n++] = mine;
	}
	return hcse_update_labels(fs->hcse, fs->ae_path, 2, labels, n, NULL);
}

static int lease_refused(struct fs *fs, const char *holder, uint64_t until, bool at_mount)
{
	uint64_t now = now_s(), left = until > now ? until - now : 0;

	if (at_mount)
		return log_error_errno(-EBUSY,
				       "AE '%s' on the HCSE is in use by another atrestfs (instance %s, "
				       "lease for %" PRIu64 " s more): mount it with another ae=, or "
				       "unmount the other; a mount that is gone gives it up when its "
				       "lease ends",
				       fs->opt.ae, holder, left);
	return log_error_errno(-EBUSY,
			       "AE '%s' on the HCSE was taken by another atrestfs (instance %s, "
			       "lease for %" PRIu64 " s more): uploads stop, everything stays "
			       "queued in the cache; two mounts must not share an AE",
			       fs->opt.ae, holder, left);
}

int lease_renew(struct fs *fs, bool at_mount)
{
	_cleanup_free_ char *me = NULL;
	char holder[64] = "";
	uint64_t ttl = fs->opt.ae_lease, now = now_s(), until = 0;
	int r;

	if (!ttl)
		return 0;
	/* a quarter of the lease between renewals; a lost one is asked again */
	if (!at_mount && !fs->lease_lost && fs->lease_until > now + ttl - ttl / 4)
		return 0;
	r = instance_id(fs, &me);
	if (r < 0)
		return r;
	r = lease_write(fs, me, now + ttl, holder, &until);
	if (r == -EBUSY) {
		if (!fs->lease_lost)
			lease_refused(fs, holder, until, at_mount);
		fs->lease_lost = true;
		return -EBUSY;
	}
	if (r < 0)
		return r;
	if (fs->lease_lost)
		log_info("AE '%s' on the HCSE is ours again: uploads resume", fs->opt.ae);
	fs->lease_lost = false;
	fs->lease_until = now + ttl;
	return 0;
}

void lease_release(struct fs *fs)
{
	_cleanup_free_ char *me = NULL;
	char holder[64];
	uint64_t until;

	if (!fs->opt.ae_lease || !fs->lease_until || fs->lease_lost)
		return;
	if (instance_id(fs, &me) < 0 || lease_write(fs, me, 0, holder, &until) < 0)
		log_warning("cannot give back the lease on AE '%s'; it ends by itself in %" PRIu64
			    " s", fs->opt.ae, fs->opt.ae_lease);
	fs->lease_until = 0;
}
