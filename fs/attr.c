/* SPDX-License-Identifier: Apache-2.0 */
/* Attribute operations: getattr (no key needed), setattr (truncate takes the caller's key), statfs. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <time.h>

#include "atrest/cleanup.h"
#include "atrest/log.h"
#include "atrest/outage.h"
#include "atrest/tef_api.h"
#include "atrestfs.h"

void fs_op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs *fs = the_fs;
	struct stat st;
	struct node *n;

	(void)fi;
	pthread_mutex_lock(&fs->lock);
	n = ns_get(fs, ino);
	if (n)
		node_fill_stat(n, &st);
	pthread_mutex_unlock(&fs->lock);
	if (!n) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	fuse_reply_attr(req, &st, ATTR_TIMEOUT);
}

/* Truncation needs the file's key: the open handle's, else the caller's own from tefd. */
static int set_size(struct fs *fs, fuse_req_t req, struct node *n, uint64_t size,
		    struct fuse_file_info *fi)
{
	struct handle *h = fi ? (struct handle *)(uintptr_t)fi->fh : NULL;
	struct seal_key *key = NULL;
	struct caller c;
	int r;

	if (!S_ISREG(n->mode))
		return S_ISDIR(n->mode) ? -EISDIR : -EINVAL;
	if (!h) {
		caller_from_req(req, &c);
		r = fs_open_key(fs, &c, n, &key);
		if (r < 0)
			return r;
	}
	pthread_mutex_lock(&n->data_lock);
	if (h)
		h->wrote = true; /* ftruncate(): that handle's close commits */
	r = data_truncate(fs, n, h ? h->key : key, size);
	if (r == -EKEYREVOKED && h && (r = rotate_rekey_handle(fs, h)) == 0) /* rotate.c */
		r = data_truncate(fs, n, h->key, size);
	/* truncate(2) has no close to wait for: commit now */
	if (r == 0 && !h)
		r = data_commit(fs, n, key, false);
	pthread_mutex_unlock(&n->data_lock);
	seal_key_free(key);
	return r;
}

/*
 * chown of a file: its key changes owner at tefd too (DESIGN.md 2: keys are
 * registered on behalf of the file's owner), asked on behalf of the current
 * owner, so the new owner's version records, renewals and target edits are
 * accepted and the old owner's are not. The target the old owner held as
 * owner ("uid:OLD", from share=) follows the file to "uid:NEW", and a chgrp
 * moves the file's group target ("gid:OLD", from share=group) to "gid:NEW".
 * new_uid / new_gid of (uid_t)-1 / (gid_t)-1: unchanged.
 */
static int transfer_key(struct fs *fs, struct node *n, uid_t new_uid, gid_t new_gid)
{
	_cleanup_free_ char *rkid = NULL, *targets = NULL, *old_t = NULL, *new_owner = NULL;
	_cleanup_free_ char *old_g = NULL, *new_g = NULL;
	const char *list[TEF_MAX_TARGETS];
	struct tef_registration *reg = NULL;
	struct tef_identity id;
	size_t k = 0;
	char *save = NULL;
	int r;

	pthread_mutex_lock(&fs->lock);
	if (new_uid == n->uid)
		new_uid = (uid_t)-1;
	if (new_gid == n->gid)
		new_gid = (gid_t)-1;
	if (!S_ISREG(n->mode) || n->foreign || !n->rkid ||
	    (new_uid == (uid_t)-1 && new_gid == (gid_t)-1)) {
		pthread_mutex_unlock(&fs->lock);
		return 0;
	}
	id = (struct tef_identity){ .uid = n->uid, .gid = n->gid };
	rkid = strdup(n->rkid);
	targets = strdup(n->targets ? n->targets : "");
	pthread_mutex_unlock(&fs->lock);
	if (!rkid || !targets)
		return -ENOMEM;
	if (new_uid != (uid_t)-1 && (asprintf(&old_t, "uid:%u", (unsigned)id.uid) < 0 ||
				     asprintf(&new_owner, "uid:%u", (unsigned)new_uid) < 0))
		return -ENOMEM;
	if (new_gid != (gid_t)-1 && (asprintf(&old_g, "gid:%u", (unsigned)id.gid) < 0 ||
				     asprintf(&new_g, "gid:%u", (unsigned)new_gid) < 0))
		return -ENOMEM;
	for (char *t = strtok_r(targets, ",", &save); t && k < ELEMENTSOF(list);
	     t = strtok_r(NULL, ",", &save))
		list[k++] = old_t && strcmp(t, old_t) == 0 ? new_owner
			    : old_g && strcmp(t, old_g) == 0 ? new_g
							     : t;
	struct tef_update_req u = {
		.owner = new_owner, .set_targets = true, .targets = list, .n_targets = k
	};
	keys_forget(fs, rkid); /* who may open is tefd's to decide again */
	r = tef_update(fs->tef, &id, rkid, &u, &reg, NULL);
	if (r < 0) {
		_cleanup_free_ char *desc = fs_describe(fs, n->ino);

		/* the file keeps its owner: the key's owner at tefd did not change */
		if (r == -EACCES || r == -EPERM)
			return log_warning_errno(-EPERM, "chown of %s to %s%s%s: tefd refused it",
						 desc, new_owner ? new_owner : "",
						 new_owner && new_g ? " " : "", new_g ? new_g : "");
		if (outage_is_down(fs->tef_outage))
			return health_failed(fs, fs->tef_outage, n->ino, "chown", r);
		log_error_errno(r, "chown of %s to %s%s%s: the key's update failed", desc,
				new_owner ? new_owner : "", new_owner && new_g ? " " : "", new_g ? new_g : "");
		return -EIO;
	}
	if (reg)
		node_adopt_registration(fs, n, reg);
	tef_registration_free(reg);
	return 0;
}

void fs_op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
		   struct fuse_file_info *fi)
{
	struct fs *fs = the_fs;
	struct timespec now;
	struct stat st;
	struct node *n;
	int r = 0;

	pthread_mutex_lock(&fs->lock);
	n = ns_get(fs, ino);
	if (n && n->foreign)
		n = NULL, r = -EROFS;
	if (n)
		n->n_open++; /* pin across the truncate */
	pthread_mutex_unlock(&fs->lock);
	if (!n) {
		fuse_reply_err(req, r ? -r : ENOENT);
		return;
	}
	if (to_set & FUSE_SET_ATTR_SIZE)
		r = set_size(fs, req, n, (uint64_t)attr->st_size, fi);
	/* the key's owner at tefd and the file's change together: a key rotation
	 * (rotate.c, under data_lock) registers for one owner or the other */
	bool owner = r == 0 && (to_set & (FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID));
	if (owner)
		pthread_mutex_lock(&n->data_lock);
	if (owner)
		r = transfer_key(fs, n, to_set & FUSE_SET_ATTR_UID ? attr->st_uid : (uid_t)-1,
				 to_set & FUSE_SET_ATTR_GID ? attr->st_gid : (gid_t)-1);

	clock_gettime(CLOCK_REALTIME, &now);
	pthread_mutex_lock(&fs->lock);
	if (r == 0) {
		bool meta = false;

		/* the kernel checked ownership already (default_permissions) */
		if (to_set & FUSE_SET_ATTR_MODE) {
			n->mode = (n->mode & S_IFMT) | (attr->st_mode & 07777);
			meta = true;
		}
		if (to_set & FUSE_SET_ATTR_UID) {
			n->uid = attr->st_uid;
			meta = true;
		}
		if (to_set & FUSE_SET_ATTR_GID) {
			n->gid = attr->st_gid;
			meta = true;
		}
		if (to_set & FUSE_SET_ATTR_ATIME_NOW)
			n->atime = now;
		else if (to_set & FUSE_SET_ATTR_ATIME)
			n->atime = attr->st_atim;
		if (to_set & FUSE_SET_ATTR_MTIME_NOW)
			n->mtime = now;
		else if (to_set & FUSE_SET_ATTR_MTIME)
			n->mtime = attr->st_mtim;
		if (to_set & (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME | FUSE_SET_ATTR_ATIME_NOW |
			      FUSE_SET_ATTR_MTIME_NOW))
			meta = true;
		if (to_set & FUSE_SET_ATTR_CTIME)
			n->ctime = attr->st_ctim;
		else if (meta || (to_set & FUSE_SET_ATTR_SIZE))
			n->ctime = now;
		if (meta)
			r = fs_node_save(fs, n, true);
		node_fill_stat(n, &st);
	}
	if (owner)
		pthread_mutex_unlock(&n->data_lock);
	n->n_open--;
	fs_maybe_reap(fs, n);
	pthread_mutex_unlock(&fs->lock);
	if (r < 0)
		fuse_reply_err(req, -r);
	else
		fuse_reply_attr(req, &st, ATTR_TIMEOUT);
}

void fs_op_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct statvfs sv;
	size_t nodes;

	(void)ino;
	if (statvfs(the_fs->opt.cache, &sv) < 0) {
		fuse_reply_err(req, errno);
		return;
	}
	pthread_mutex_lock(&the_fs->lock);
	nodes = the_fs->n_nodes;
	pthread_mutex_unlock(&the_fs->lock);
	sv.f_namemax = 255;
	sv.f_files = nodes + sv.f_ffree;
	fuse_reply_statfs(req, &sv);
}
