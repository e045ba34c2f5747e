/* SPDX-License-Identifier: Apache-2.0 */
/* The user.onem2m.* extended attributes (DESIGN.md 7): read without a key, targets/expires writable by the owner. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/xattr.h>

#include <sodium.h>

#include "atrest/cleanup.h"
#include "atrest/log.h"
#include "atrest/secmem.h"
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
	       n->xattrs_ver != n->xattrs_rver ||
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

/* ---- other user.* attributes, sealed with the file's key ---- */

#define USER_XATTR_MAX 4096

/* The compact JOSE stored for encoded name enc in list, or NULL; *ret_len its length. */
static const char *ux_find(const char *list, const char *enc, size_t *ret_len)
{
	size_t el = strlen(enc);

	for (const char *p = list; p && *p;) {
		const char *e = strchr(p, '\n');
		size_t len = e ? (size_t)(e - p) : strlen(p);

		if (len > el && strncmp(p, enc, el) == 0 && p[el] == '=') {
			*ret_len = len - el - 1;
			return p + el + 1;
		}
		p += len + (e ? 1 : 0);
	}
	return NULL;
}

/* A new list without enc, plus enc=compact when compact is not NULL. */
static char *ux_replace(const char *list, const char *enc, const char *compact)
{
	size_t el = strlen(enc), cap = (list ? strlen(list) : 0) + el + (compact ? strlen(compact) : 0) + 3;
	char *out = malloc(cap), *o = out;

	if (!out)
		return NULL;
	for (const char *p = list; p && *p;) {
		const char *e = strchr(p, '\n');
		size_t len = e ? (size_t)(e - p) : strlen(p);

		if (!(len > el && strncmp(p, enc, el) == 0 && p[el] == '=')) {
			memcpy(o, p, len);
			o += len;
			*o++ = '\n';
		}
		p += len + (e ? 1 : 0);
	}
	if (compact)
		o += sprintf(o, "%s=%s\n", enc, compact);
	*o = '\0';
	return out;
}

/* Binds a sealed attribute to its file and its name: no swapping either. */
static char *ux_file_id(const struct node *n, const char *name)
{
	char *id;

	return asprintf(&id, "%s/xattr/%s", n->file_id, name) < 0 ? NULL : id;
}

static bool is_user_xattr(const char *name)
{
	return strncmp(name, "user.", 5) == 0 && strncmp(name, "user.onem2m.", 12) != 0;
}

/* getxattr of a sealed attribute: the caller's key from tefd, like an open. */
static int ux_get(struct fs *fs, const struct caller *c, struct node *n, const char *name,
		  char **ret, size_t *ret_len)
{
	_cleanup_free_ char *enc = name_encode(name), *compact = NULL, *fid = ux_file_id(n, name);
	struct seal_key *key = NULL;
	struct seal_params p;
	const char *found;
	size_t clen, plen;
	int r;

	if (!enc || !fid)
		return -ENOMEM;
	pthread_mutex_lock(&fs->lock);
	found = ux_find(n->xattrs, enc, &clen);
	if (found)
		compact = strndup(found, clen);
	pthread_mutex_unlock(&fs->lock);
	if (!found)
		return -ENODATA;
	if (!compact)
		return -ENOMEM;
	r = fs_open_key(fs, c, n, &key);
	if (r < 0)
		return r;
	data_params(n, key, &p);
	p.file_id = fid;
	/* a value's plaintext: locked memory, freed by the caller with secmem_free() */
	*ret = secmem_alloc(USER_XATTR_MAX);
	r = *ret ? seal_open_segment(&p, 0, 1, compact, clen, *ret, USER_XATTR_MAX, &plen) :
		   plain_alloc_error(USER_XATTR_MAX);
	seal_key_free(key);
	if (r < 0) {
		secmem_free(*ret, USER_XATTR_MAX);
		*ret = NULL;
		if (r == -ENOMEM)
			return r;
		_cleanup_free_ char *desc = fs_describe(fs, n->ino);

		log_error_errno(r, "integrity check failed for attribute '%s' of %s", name, desc);
		return -EIO;
	}
	*ret_len = plen;
	return 0;
}

static int ux_set(struct fs *fs, const struct caller *c, struct node *n, const char *name,
		  const char *value, size_t size, int flags)
{
	_cleanup_free_ char *enc = name_encode(name), *compact = NULL, *fid = ux_file_id(n, name);
	struct seal_key *key = NULL;
	struct seal_params p;
	size_t clen;
	int r;

	if (!enc || !fid)
		return -ENOMEM;
	if (size > USER_XATTR_MAX)
		return -E2BIG;
	/* the value is plaintext in libfuse's request buffer */
	r = secmem_lock_range(value, size);
	if (r < 0) {
		errno = -r;
		return plain_alloc_error(size);
	}
	pthread_mutex_lock(&fs->lock);
	bool exists = ux_find(n->xattrs, enc, &clen) != NULL;
	pthread_mutex_unlock(&fs->lock);
	if ((flags & XATTR_CREATE) && exists)
		return -EEXIST;
	if ((flags & XATTR_REPLACE) && !exists)
		return -ENODATA;
	r = fs_open_key(fs, c, n, &key);
	if (r < 0)
		return r;
	/* sealed and stored under data_lock: a key rotation (rotate.c) re-seals
	 * the attributes then, and the key must still be the file's */
	pthread_mutex_lock(&n->data_lock);
	data_params(n, key, &p);
	p.file_id = fid;
	r = rotate_key_is_current(n, key) ? data_seal_count(fs, n) : -EIO;
	if (r == 0)
		r = seal_segment(&p, 0, 1, value, size, &compact, &clen);
	seal_key_free(key);
	if (r < 0) {
		pthread_mutex_unlock(&n->data_lock);
		return log_error_errno(r, "cannot seal attribute '%s'", name);
	}
	pthread_mutex_lock(&fs->lock);
	char *list = ux_replace(n->xattrs, enc, compact);
	if (list) {
		free(n->xattrs);
		n->xattrs = list;
		n->xattrs_ver++;
		node_touch(n, false, true, false);
		r = fs_node_save(fs, n, true);
	} else
		r = -ENOMEM;
	pthread_mutex_unlock(&fs->lock);
	pthread_mutex_unlock(&n->data_lock);
	return r;
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

/* Pins a node for a call that may wait on tefd; NULL if it does not exist. */
static struct node *pin(struct fs *fs, fuse_ino_t ino)
{
	struct node *n;

	pthread_mutex_lock(&fs->lock);
	n = ns_get(fs, ino);
	if (n)
		n->n_open++;
	pthread_mutex_unlock(&fs->lock);
	return n;
}

static void unpin(struct fs *fs, struct node *n)
{
	pthread_mutex_lock(&fs->lock);
	n->n_open--;
	fs_maybe_reap(fs, n);
	pthread_mutex_unlock(&fs->lock);
}

static bool has_sealed_xattrs(const struct node *n)
{
	return S_ISREG(n->mode) && !n->foreign;
}

void fs_op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	struct fs *fs = the_fs;
	_cleanup_free_ char *v = NULL;
	struct node *n;
	size_t len = 0;
	int r;

	if (is_user_xattr(name)) {
		struct caller c;

		n = pin(fs, ino);
		if (!n) {
			fuse_reply_err(req, ENOENT);
			return;
		}
		caller_from_req(req, &c);
		r = has_sealed_xattrs(n) ? ux_get(fs, &c, n, name, &v, &len) : -ENODATA;
		unpin(fs, n);
		if (r < 0) {
			fuse_reply_err(req, -r);
			return;
		}
		reply_value(req, v, len, size);
		secmem_free(TAKE_PTR(v), USER_XATTR_MAX);
		return;
	}
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
	_cleanup_free_ char *buf = NULL;
	size_t len = 0, cap = 512;
	struct node *n;

	pthread_mutex_lock(&fs->lock);
	n = ns_get(fs, ino);
	if (n && n->xattrs)
		cap += strlen(n->xattrs);
	buf = malloc(cap);
	if (n && buf) {
		for (size_t i = 0; i < ELEMENTSOF(all); i++) {
			_cleanup_free_ char *v = NULL;

			if (xattr_value(fs, n, all[i], &v) < 0)
				continue;
			memcpy(buf + len, all[i], strlen(all[i]) + 1);
			len += strlen(all[i]) + 1;
		}
		/* names of sealed attributes are plain: listing needs no key */
		for (const char *p = n->xattrs; p && *p;) {
			const char *e = strchr(p, '\n'), *eq = strchr(p, '=');
			size_t l = e ? (size_t)(e - p) : strlen(p);
			_cleanup_free_ char *enc = eq ? strndup(p, (size_t)(eq - p)) : NULL;
			_cleanup_free_ char *name = enc ? name_decode(enc) : NULL;

			if (name && len + strlen(name) + 1 <= cap) {
				memcpy(buf + len, name, strlen(name) + 1);
				len += strlen(name) + 1;
			}
			p += l + (e ? 1 : 0);
		}
	}
	pthread_mutex_unlock(&fs->lock);
	if (!n || !buf) {
		fuse_reply_err(req, n ? ENOMEM : ENOENT);
		return;
	}
	reply_value(req, buf, len, size);
}

void fs_op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
		    size_t size, int flags)
{
	struct fs *fs = the_fs;
	_cleanup_free_ char *v = NULL;
	struct caller c;
	struct node *n;
	int r;

	if (is_user_xattr(name)) {
		/* DESIGN.md 7 / issue 5: stored sealed with the file's key */
		n = pin(fs, ino);
		if (!n) {
			fuse_reply_err(req, ENOENT);
			return;
		}
		caller_from_req(req, &c);
		r = n->foreign ? -EROFS : has_sealed_xattrs(n) ? ux_set(fs, &c, n, name, value, size, flags) : -ENOTSUP;
		unpin(fs, n);
		/* sealed (or refused): libfuse's buffer must not keep the value */
		sodium_memzero((void *)value, size);
		fuse_reply_err(req, -r);
		return;
	}
	if (strncmp(name, "user.onem2m.", 12) != 0) {
		fuse_reply_err(req, ENOTSUP);
		return;
	}
	if (strcmp(name, X_TARGETS) != 0 && strcmp(name, X_EXPIRES) != 0) {
		fuse_reply_err(req, EPERM);
		return;
	}
	v = strndup(value, size);
	if (!v) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	/* trailing newlines from `echo` are not part of the value */
	for (size_t l = strlen(v); l > 0 && (v[l - 1] == '\n' || v[l - 1] == ' '); l--)
		v[l - 1] = '\0';

	caller_from_req(req, &c);
	n = pin(fs, ino);
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
	pthread_mutex_unlock(&fs->lock);
	unpin(fs, n);
	fuse_reply_err(req, -r);
}

void fs_op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	struct fs *fs = the_fs;
	_cleanup_free_ char *enc = NULL;
	struct node *n;
	size_t len;
	int r = -ENODATA;

	if (!is_user_xattr(name)) {
		fuse_reply_err(req, strncmp(name, "user.onem2m.", 12) == 0 ? EPERM : ENODATA);
		return;
	}
	enc = name_encode(name);
	pthread_mutex_lock(&fs->lock);
	n = ns_get(fs, ino);
	if (!n)
		r = -ENOENT;
	else if (n->foreign)
		r = -EROFS;
	else if (enc && ux_find(n->xattrs, enc, &len)) {
		char *list = ux_replace(n->xattrs, enc, NULL);
		if (list) {
			free(n->xattrs);
			n->xattrs = list;
			n->xattrs_ver++;
			node_touch(n, false, true, false);
			r = fs_node_save(fs, n, true);
		} else
			r = -ENOMEM;
	}
	pthread_mutex_unlock(&fs->lock);
	fuse_reply_err(req, -r);
}
