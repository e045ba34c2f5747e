/* SPDX-License-Identifier: Apache-2.0 */
/* Attribute operations: getattr (no key needed), setattr (truncate takes the caller's key), statfs. */
#include <errno.h>
#include <string.h>
#include <sys/statvfs.h>
#include <time.h>

#include "atrest/log.h"
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
	/* truncate(2) has no close to wait for: commit now */
	if (r == 0 && !h)
		r = data_commit(fs, n, key, false);
	pthread_mutex_unlock(&n->data_lock);
	seal_key_free(key);
	return r;
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
