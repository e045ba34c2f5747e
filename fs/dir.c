/* SPDX-License-Identifier: Apache-2.0 */
/* Directory operations: lookup, forget, mkdir, rmdir, unlink, rename, symlinks, readdir. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "atrest/cleanup.h"
#include "atrest/log.h"
#include "atrestfs.h"
#include "cache.h"

void fs_fill_entry(struct node *n, struct fuse_entry_param *e)
{
	memset(e, 0, sizeof(*e));
	e->ino = n->ino;
	e->generation = 1;
	e->attr_timeout = ATTR_TIMEOUT;
	e->entry_timeout = ENTRY_TIMEOUT;
	node_fill_stat(n, &e->attr);
	n->nlookup++;
}

int fs_node_save(struct fs *fs, struct node *n, bool push_labels)
{
	if (push_labels) {
		n->meta_dirty = true;
		n->meta_seq++;
		uploader_kick(fs->up);
	}
	return cache_node_save(fs->cache, n);
}

void fs_maybe_reap(struct fs *fs, struct node *n)
{
	char rn[32];
	_cleanup_free_ char *path = NULL, *tef = NULL;

	if (!n->unlinked || n->nlookup > 0 || n->n_open > 0 || n->ino == 1)
		return;
	if (n->foreign) { /* nothing of it is stored here */
		ns_remove(fs, n);
		ns_node_free(n);
		return;
	}
	/* the container goes, and the key once nothing references the file (issue 5) */
	node_rn(n, rn);
	if (asprintf(&path, "%s/%s", fs->ae_path, rn) >= 0)
		cache_gc_add(fs->cache, n->ino, 0, path);
	else
		path = NULL;
	if (n->rkid && asprintf(&tef, "!tef/%u/%u/%s", (unsigned)n->uid, (unsigned)n->gid, n->rkid) >= 0)
		cache_gc_add(fs->cache, n->ino, 0, tef);
	else
		tef = NULL;
	cache_node_delete(fs->cache, n->ino);
	ns_remove(fs, n);
	ns_node_free(n);
	uploader_kick(fs->up);
}

void fs_op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fs *fs = the_fs;
	struct fuse_entry_param e;
	struct node *p, *n;

	readahead_raise(fs);
	pthread_mutex_lock(&fs->lock);
	p = ns_get(fs, parent);
	if (!p || !S_ISDIR(p->mode)) {
		pthread_mutex_unlock(&fs->lock);
		fuse_reply_err(req, p ? ENOTDIR : ENOENT);
		return;
	}
	n = ns_lookup(fs, parent, name);
	if (!n && strlen(name) < 256) {
		/* perhaps another AE put it there since we last looked */
		pthread_mutex_unlock(&fs->lock);
		foreign_refresh(fs, parent, true);
		pthread_mutex_lock(&fs->lock);
		n = ns_lookup(fs, parent, name);
	}
	if (!n) {
		pthread_mutex_unlock(&fs->lock);
		/* negative entry: every change comes through this mount */
		memset(&e, 0, sizeof(e));
		e.entry_timeout = ENTRY_TIMEOUT;
		fuse_reply_entry(req, &e);
		return;
	}
	fs_fill_entry(n, &e);
	pthread_mutex_unlock(&fs->lock);
	fuse_reply_entry(req, &e);
}

static void forget_one(struct fs *fs, fuse_ino_t ino, uint64_t nlookup)
{
	struct node *n = ns_get(fs, ino);

	if (!n)
		return;
	n->nlookup = n->nlookup > nlookup ? n->nlookup - nlookup : 0;
	fs_maybe_reap(fs, n);
}

void fs_op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	pthread_mutex_lock(&the_fs->lock);
	forget_one(the_fs, ino, nlookup);
	pthread_mutex_unlock(&the_fs->lock);
	fuse_reply_none(req);
}

void fs_op_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets)
{
	pthread_mutex_lock(&the_fs->lock);
	for (size_t i = 0; i < count; i++)
		forget_one(the_fs, forgets[i].ino, forgets[i].nlookup);
	pthread_mutex_unlock(&the_fs->lock);
	fuse_reply_none(req);
}

/* Checks parent/name for a new entry; fs->lock held. */
static int check_new(struct fs *fs, fuse_ino_t parent, const char *name, struct node **ret_parent)
{
	struct node *p = ns_get(fs, parent);

	if (!p || p->unlinked)
		return -ENOENT;
	if (!S_ISDIR(p->mode))
		return -ENOTDIR;
	if (strlen(name) > 255)
		return -ENAMETOOLONG;
	if (ns_lookup(fs, parent, name))
		return -EEXIST;
	*ret_parent = p;
	return 0;
}

/* Links a new non-file node (directory or symlink) and replies with its entry. */
static void make_node(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		      const char *target)
{
	struct fs *fs = the_fs;
	struct fuse_entry_param e;
	struct caller c;
	struct node *p, *n;
	char *dup;
	int r;

	caller_from_req(req, &c);
	pthread_mutex_lock(&fs->lock);
	r = check_new(fs, parent, name, &p);
	if (r < 0)
		goto fail;
	dup = strdup(name);
	n = dup ? ns_node_new(fs, 0) : NULL;
	if (!n || (target && !(n->symlink = strdup(target)))) {
		free(dup);
		ns_node_free(n);
		r = -ENOMEM;
		goto fail;
	}
	n->mode = mode;
	n->uid = c.uid;
	n->gid = (p->mode & S_ISGID) ? p->gid : c.gid;
	if (S_ISDIR(mode) && (p->mode & S_ISGID))
		n->mode |= S_ISGID;
	n->size = target ? strlen(target) : 0;
	node_touch(n, true, true, true);
	ns_insert(fs, n);
	ns_link_name(fs, n, parent, dup);
	node_touch(p, true, true, false);
	fs_node_save(fs, p, false);
	r = fs_node_save(fs, n, true);
	if (r < 0) {
		ns_remove(fs, n);
		ns_node_free(n);
		goto fail;
	}
	fs_fill_entry(n, &e);
	pthread_mutex_unlock(&fs->lock);
	fuse_reply_entry(req, &e);
	return;
fail:
	pthread_mutex_unlock(&fs->lock);
	fuse_reply_err(req, -r);
}

void fs_op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	make_node(req, parent, name, S_IFDIR | (mode & 07777), NULL);
}

void fs_op_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name)
{
	_cleanup_free_ char *enc = name_encode(link);

	/* the target travels in labels: at most 4000 encoded characters (atrestfs(1)) */
	if (!enc || strlen(link) >= 4096 || strlen(enc) > 4000) {
		fuse_reply_err(req, enc ? ENAMETOOLONG : ENOMEM);
		return;
	}
	make_node(req, parent, name, S_IFLNK | 0777, link);
}

void fs_op_readlink(fuse_req_t req, fuse_ino_t ino)
{
	struct node *n;
	_cleanup_free_ char *target = NULL;

	pthread_mutex_lock(&the_fs->lock);
	n = ns_get(the_fs, ino);
	if (n && S_ISLNK(n->mode) && n->symlink)
		target = strdup(n->symlink);
	pthread_mutex_unlock(&the_fs->lock);
	if (!target) {
		fuse_reply_err(req, n ? EINVAL : ENOENT);
		return;
	}
	fuse_reply_readlink(req, target);
}

/* Takes n out of the tree (fs->lock held); it lives on while referenced. */
static void detach(struct fs *fs, struct node *n)
{
	struct node *p = ns_get(fs, n->parent);

	ns_unlink_name(fs, n);
	n->unlinked = true;
	node_touch(n, false, true, false);
	if (p) {
		node_touch(p, true, true, false);
		fs_node_save(fs, p, false);
	}
	/* parent 0 in the index marks an orphan to reap after a crash */
	cache_node_save(fs->cache, n);
	fs_maybe_reap(fs, n);
}

static void remove_entry(fuse_req_t req, fuse_ino_t parent, const char *name, bool dir)
{
	struct fs *fs = the_fs;
	struct node *n;
	int r = 0;

	pthread_mutex_lock(&fs->lock);
	n = ns_lookup(fs, parent, name);
	if (!n)
		r = -ENOENT;
	else if (dir && !S_ISDIR(n->mode))
		r = -ENOTDIR;
	else if (!dir && S_ISDIR(n->mode))
		r = -EISDIR;
	else if (dir && !ns_dir_is_empty(n))
		r = -ENOTEMPTY;
	else if (n->foreign)
		r = -EROFS;
	else
		detach(fs, n);
	pthread_mutex_unlock(&fs->lock);
	fuse_reply_err(req, -r);
}

void fs_op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	remove_entry(req, parent, name, true);
}

void fs_op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	remove_entry(req, parent, name, false);
}

/* True when `dir` is `anc` or below it. */
static bool is_below(struct fs *fs, uint64_t dir, uint64_t anc)
{
	for (unsigned depth = 0; dir && depth < 4096; depth++) {
		struct node *d;

		if (dir == anc)
			return true;
		d = ns_get(fs, dir);
		if (!d || d->ino == 1)
			return false;
		dir = d->parent;
	}
	return false;
}

void fs_op_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
		  const char *newname, unsigned int flags)
{
	struct fs *fs = the_fs;
	struct node *n, *t, *np;
	char *dup;
	int r = 0;

	if (flags & ~RENAME_NOREPLACE) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	if (strlen(newname) > 255) {
		fuse_reply_err(req, ENAMETOOLONG);
		return;
	}
	pthread_mutex_lock(&fs->lock);
	n = ns_lookup(fs, parent, name);
	np = ns_get(fs, newparent);
	t = ns_lookup(fs, newparent, newname);
	if (!n || !np) {
		r = -ENOENT;
		goto out;
	}
	if (!S_ISDIR(np->mode)) {
		r = -ENOTDIR;
		goto out;
	}
	if (t == n)
		goto out;
	if (n->foreign || (t && t->foreign)) {
		r = -EROFS;
		goto out;
	}
	if (S_ISDIR(n->mode) && is_below(fs, newparent, n->ino)) {
		r = -EINVAL;
		goto out;
	}
	if (t) {
		if (flags & RENAME_NOREPLACE)
			r = -EEXIST;
		else if (S_ISDIR(n->mode) && !S_ISDIR(t->mode))
			r = -ENOTDIR;
		else if (!S_ISDIR(n->mode) && S_ISDIR(t->mode))
			r = -EISDIR;
		else if (S_ISDIR(t->mode) && !ns_dir_is_empty(t))
			r = -ENOTEMPTY;
		if (r < 0)
			goto out;
	}
	dup = strdup(newname);
	if (!dup) {
		r = -ENOMEM;
		goto out;
	}
	if (t)
		detach(fs, t);
	struct node *op = ns_get(fs, parent);
	ns_unlink_name(fs, n);
	ns_link_name(fs, n, newparent, dup);
	node_touch(n, false, true, false);
	if (op) {
		node_touch(op, true, true, false);
		fs_node_save(fs, op, false);
	}
	node_touch(np, true, true, false);
	fs_node_save(fs, np, false);
	/* the container stays; only its labels change (DESIGN.md 5) */
	r = fs_node_save(fs, n, true);
out:
	pthread_mutex_unlock(&fs->lock);
	fuse_reply_err(req, -r);
}

void fs_op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
	(void)ino;
	(void)newparent;
	(void)newname;
	/* one container per file carries one name: hard links are not offered (atrestfs(1)) */
	fuse_reply_err(req, EPERM);
}

struct dir_snapshot {
	size_t n;
	struct {
		uint64_t ino;
		mode_t mode;
		char *name;
	} e[];
};

void fs_op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs *fs = the_fs;
	struct dir_snapshot *s;
	struct node *d;
	size_t count = 2, i = 0;

	foreign_refresh(fs, ino, false);
	pthread_mutex_lock(&fs->lock);
	d = ns_get(fs, ino);
	if (!d || !S_ISDIR(d->mode)) {
		pthread_mutex_unlock(&fs->lock);
		fuse_reply_err(req, d ? ENOTDIR : ENOENT);
		return;
	}
	for (struct node *c = d->first_child; c; c = c->next_sibling)
		count++;
	s = calloc(1, sizeof(*s) + count * sizeof(s->e[0]));
	if (!s) {
		pthread_mutex_unlock(&fs->lock);
		fuse_reply_err(req, ENOMEM);
		return;
	}
	/* a snapshot: entries added or removed meanwhile do not shift offsets */
	s->e[i].ino = d->ino;
	s->e[i].mode = S_IFDIR;
	s->e[i++].name = strdup(".");
	s->e[i].ino = d->parent ? d->parent : d->ino;
	s->e[i].mode = S_IFDIR;
	s->e[i++].name = strdup("..");
	for (struct node *c = d->first_child; c; c = c->next_sibling) {
		s->e[i].ino = c->ino;
		s->e[i].mode = c->mode;
		s->e[i++].name = strdup(c->name);
	}
	s->n = i;
	pthread_mutex_unlock(&fs->lock);
	fi->fh = (uintptr_t)s;
	fuse_reply_open(req, fi);
}

void fs_op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
	struct dir_snapshot *s = (struct dir_snapshot *)(uintptr_t)fi->fh;
	_cleanup_free_ char *buf = malloc(size);
	size_t used = 0;

	(void)ino;
	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	for (size_t i = (size_t)off; i < s->n; i++) {
		struct stat st = { .st_ino = s->e[i].ino, .st_mode = s->e[i].mode };
		size_t need;

		if (!s->e[i].name)
			continue;
		need = fuse_add_direntry(req, buf + used, size - used, s->e[i].name, &st,
					 (off_t)(i + 1));
		if (need > size - used)
			break;
		used += need;
	}
	fuse_reply_buf(req, buf, used);
}

void fs_op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct dir_snapshot *s = (struct dir_snapshot *)(uintptr_t)fi->fh;

	(void)ino;
	for (size_t i = 0; i < s->n; i++)
		free(s->e[i].name);
	free(s);
	fuse_reply_err(req, 0);
}

/*
 * fsync() of a directory: its entries (names, renames, removals) are rows of
 * the cache index, durable with the index's WAL, which a commit nobody waits
 * for does not sync (cache.c). Without this the kernel took FUSE's ENOSYS as
 * success, and write-fsync-rename-fsync(dir) was not durable.
 */
void fs_op_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	(void)ino;
	(void)datasync;
	(void)fi;
	fuse_reply_err(req, -cache_sync(the_fs->cache));
}
