/* SPDX-License-Identifier: Apache-2.0 */
/* The user.onem2m.* extended attributes (DESIGN.md 7): read without a key, targets/expires writable by the owner. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "atrest/cleanup.h"
#include "atrest/log.h"
#include "atrestfs.h"
#include "cache.h"

#define X_CRED "user.onem2m.credential-id"
#define X_TARGETS "user.onem2m.targets"
#define X_EXPIRES "user.onem2m.expires"
#define X_RESOURCE "user.onem2m.resource"
#define X_PROTECTION "user.onem2m.protection"
#define X_STATE "user.onem2m.state"

bool node_is_pending(const struct node *n)
{
	return !n->remote_created || n->meta_dirty || n->remote_version < n->version ||
	       cache_node_has_pending_segs(the_fs->cache, n->ino);
}

/* TS-0004 6.3.3 timestamp form, UTC: 20261128T021500 */
static void format_time(int64_t t, char buf[32])
{
	struct tm tm;
	time_t tt = (time_t)t;

	gmtime_r(&tt, &tm);
	strftime(buf, 32, "%Y%m%dT%H%M%S", &tm);
}

/* Accepts the oneM2M form, or seconds since the epoch. */
static int parse_time(const char *s, int64_t *ret)
{
	struct tm tm = { 0 };
	char *end;

	if (strlen(s) == 15 && s[8] == 'T') {
		end = strptime(s, "%Y%m%dT%H%M%S", &tm);
		if (!end || *end)
			return -EINVAL;
		*ret = (int64_t)timegm(&tm);
		return 0;
	}
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (errno || end == s || *end || v <= 0)
		return -EINVAL;
	*ret = v;
	return 0;
}

/* The value of one of our attributes; -ENODATA when n has no such attribute. fs->lock held. */
static int xattr_value(struct fs *fs, struct node *n, const char *name, char **ret)
{
	bool file = S_ISREG(n->mode);
	char buf[64];
	int k;

	if (strcmp(name, X_RESOURCE) == 0) {
		if (S_ISLNK(n->mode))
			return -ENODATA;
		if (n->foreign) {
			k = asprintf(ret, "/%s/%s/i%" PRIu64 "/%s", fs->cse_rn, fs->ae_path, n->parent,
				     n->name);
			return k < 0 ? -ENOMEM : 0;
		}
		k = asprintf(ret, "/%s/%s/i%" PRIu64, fs->cse_rn, fs->ae_path, n->ino);
		return k < 0 ? -ENOMEM : 0;
	}
	if (strcmp(name, X_STATE) == 0) {
		*ret = strdup(node_is_pending(n) ? "pending" : "synced");
		return *ret ? 0 : -ENOMEM;
	}
	if (!file)
		return -ENODATA;
	if (strcmp(name, X_CRED) == 0) {
		if (!n->cred_id)
			return -ENODATA;
		*ret = strdup(n->cred_id);
	} else if (strcmp(name, X_TARGETS) == 0) {
		if (n->foreign)
			return -ENODATA; /* another AE's registration: not ours to show */
		*ret = strdup(n->targets ? n->targets : "");
	} else if (strcmp(name, X_EXPIRES) == 0) {
		int64_t t = n->expires ? n->expires : n->key_expires;
		if (!t)
			return -ENODATA;
		format_time(t, buf);
		*ret = strdup(buf);
	} else if (strcmp(name, X_PROTECTION) == 0) {
		if (n->foreign && !n->foreign_jose)
			return -ENODATA;
		*ret = strdup(n->protection == SEAL_INTEGRITY ? "integrity" : "confidentiality");
	} else
		return -ENODATA;
	return *ret ? 0 : -ENOMEM;
}

/* Replies to a get/list with the value or its size, as the size argument asks. */
static void reply_value(fuse_req_t req, const char *v, size_t len, size_t size)
{
	if (size == 0)
		fuse_reply_xattr(req, len);
	else if (len > size)
		fuse_reply_err(req, ERANGE);
	else
		fuse_reply_buf(req, v, len);
}

void fs_op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	struct fs *fs = the_fs;
	_cleanup_free_ char *v = NULL;
	struct node *n;
	int r;

	pthread_mutex_lock(&fs->lock);
	n = ns_get(fs, ino);
	r = n ? xattr_value(fs, n, name, &v) : -ENOENT;
	pthread_mutex_unlock(&fs->lock);
	if (r < 0) {
		fuse_reply_err(req, -r);
		return;
	}
	reply_value(req, v, strlen(v), size);
}

void fs_op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	static const char *const all[] = { X_CRED, X_TARGETS, X_EXPIRES, X_RESOURCE, X_PROTECTION,
					   X_STATE };
	struct fs *fs = the_fs;
	char buf[512];
	size_t len = 0;
	struct node *n;

	pthread_mutex_lock(&fs->lock);
	n = ns_get(fs, ino);
	if (n)
		for (size_t i = 0; i < ELEMENTSOF(all); i++) {
			_cleanup_free_ char *v = NULL;

			if (xattr_value(fs, n, all[i], &v) < 0)
				continue;
			memcpy(buf + len, all[i], strlen(all[i]) + 1);
			len += strlen(all[i]) + 1;
		}
	pthread_mutex_unlock(&fs->lock);
	if (!n) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	reply_value(req, buf, len, size);
}

void fs_op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
		    size_t size, int flags)
{
	struct fs *fs = the_fs;
	_cleanup_free_ char *v = strndup(value, size);
	struct caller c;
	struct node *n;
	int r;

	(void)flags;
	if (!v) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	if (strncmp(name, "user.onem2m.", 12) != 0) {
		/* other user.* attributes would have to be sealed: not offered yet */
		fuse_reply_err(req, ENOTSUP);
		return;
	}
	if (strcmp(name, X_TARGETS) != 0 && strcmp(name, X_EXPIRES) != 0) {
		fuse_reply_err(req, EPERM);
		return;
	}
	/* trailing newlines from `echo` are not part of the value */
	for (size_t l = strlen(v); l > 0 && (v[l - 1] == '\n' || v[l - 1] == ' '); l--)
		v[l - 1] = '\0';

	caller_from_req(req, &c);
	pthread_mutex_lock(&fs->lock);
	n = ns_get(fs, ino);
	if (n)
		n->n_open++;
	pthread_mutex_unlock(&fs->lock);
	if (!n) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	if (n->foreign)
		r = -EROFS;
	else if (!S_ISREG(n->mode))
		r = -ENOTSUP;
	else if (c.uid != n->uid) /* DESIGN.md 7: the owner edits the registration */
		r = -EPERM;
	else if (strcmp(name, X_TARGETS) == 0)
		r = keys_set_targets(fs, &c, n, v);
	else {
		int64_t when;
		r = parse_time(v, &when);
		if (r == 0)
			r = keys_set_expires(fs, &c, n, when);
	}
	pthread_mutex_lock(&fs->lock);
	if (r == 0) {
		node_touch(n, false, true, false);
		r = fs_node_save(fs, n, true);
	}
	n->n_open--;
	fs_maybe_reap(fs, n);
	pthread_mutex_unlock(&fs->lock);
	fuse_reply_err(req, -r);
}

void fs_op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	(void)ino;
	fuse_reply_err(req, strncmp(name, "user.onem2m.", 12) == 0 ? EPERM : ENODATA);
}
