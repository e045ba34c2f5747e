/* SPDX-License-Identifier: Apache-2.0 */
/* Regular file operations: create, open (a key per caller), read, write, flush, fsync, release. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "atrest/cleanup.h"
#include "atrest/log.h"
#include "atrest/secmem.h"
#include "atrestfs.h"
#include "cache.h"

static struct handle *handle_new(struct node *n, struct seal_key *key, int flags)
{
	struct handle *h = calloc(1, sizeof(*h));

	if (!h)
		return NULL;
	h->node = n;
	h->key = key;
	h->flags = flags;
	return h;
}

static void handle_free(struct handle *h)
{
	if (!h)
		return;
	seal_key_free(h->key);
	secmem_free(h->fbuf, h->flen + 1);
	secmem_free_used(h->rc_buf, h->node->seg_size, h->rc_hi);
	free(h);
}

/* Fresh random file id: binds every sealed object to this file (DESIGN.md 4). */
static void new_file_id(char out[33])
{
	uint8_t raw[16];

	randombytes_buf(raw, sizeof(raw));
	sodium_bin2hex(out, 33, raw, sizeof(raw));
}

/*
 * Makes a regular file under parent for the caller: the key is registered
 * with tefd on the caller's behalf before anything is sealed (DESIGN.md 6).
 * On success the node is linked and *ret_key is the caller's key.
 */
static int file_make(struct fs *fs, const struct caller *c, fuse_ino_t parent, const char *name,
		     mode_t mode, struct node **ret, struct seal_key **ret_key)
{
	_cleanup_free_ char *dup = strdup(name);
	struct seal_key *key = NULL;
	struct node *p, *n;
	int r;

	if (!dup)
		return -ENOMEM;
	if (strlen(name) > 255)
		return -ENAMETOOLONG;
	fs_note_io(fs);
	pthread_mutex_lock(&fs->lock);
	p = ns_get(fs, parent);
	if (!p || p->unlinked) {
		pthread_mutex_unlock(&fs->lock);
		return -ENOENT;
	}
	if (!S_ISDIR(p->mode)) {
		pthread_mutex_unlock(&fs->lock);
		return -ENOTDIR;
	}
	if (ns_lookup(fs, parent, name)) {
		pthread_mutex_unlock(&fs->lock);
		return -EEXIST;
	}
	n = ns_node_new(fs, 0);
	if (!n) {
		pthread_mutex_unlock(&fs->lock);
		return -ENOMEM;
	}
	n->mode = S_IFREG | (mode & 07777);
	n->uid = c->uid;
	n->gid = (p->mode & S_ISGID) ? p->gid : c->gid;
	node_touch(n, true, true, true);
	pthread_mutex_unlock(&fs->lock);

	new_file_id(n->file_id);
	health_naming(n->ino, parent, name); /* its log lines name it by its path */
	r = keys_register(fs, c, n, &key);
	health_naming(0, 0, NULL);
	if (r < 0) {
		ns_node_free(n);
		return r;
	}

	pthread_mutex_lock(&fs->lock);
	if (ns_lookup(fs, parent, name) || !(p = ns_get(fs, parent))) {
		pthread_mutex_unlock(&fs->lock);
		keys_deregister(fs, c->uid, c->gid, n->rkid);
		ns_node_free(n);
		seal_key_free(key);
		return -EEXIST;
	}
	n->segs_known = true;
	n->content_dirty = true; /* version 1 is committed at close, even when empty */
	n->seals_saved = DATA_SEALS_RESERVE; /* saved below: no row write at the first seal */
	ns_insert(fs, n);
	ns_link_name(fs, n, parent, TAKE_PTR(dup));
	node_touch(p, true, true, false);
	fs_node_save(fs, p, false);
	r = fs_node_save(fs, n, true);
	pthread_mutex_unlock(&fs->lock);
	*ret = n;
	*ret_key = key;
	return r;
}

void fs_op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		  struct fuse_file_info *fi)
{
	struct fs *fs = the_fs;
	struct fuse_entry_param e;
	struct seal_key *key = NULL;
	struct caller c;
	struct handle *h;
	struct node *n;
	int r;

	caller_from_req(req, &c);
	r = file_make(fs, &c, parent, name, mode, &n, &key);
	if (r < 0) {
		fuse_reply_err(req, -r);
		return;
	}
	h = handle_new(n, key, fi->flags);
	if (!h) {
		seal_key_free(key);
		fuse_reply_err(req, ENOMEM);
		return;
	}
	h->wrote = true; /* version 1 is committed at its close */
	h->caller = c;
	pthread_mutex_lock(&fs->lock);
	n->n_open++;
	fs_fill_entry(n, &e);
	pthread_mutex_unlock(&fs->lock);
	fi->fh = (uintptr_t)h;
	fi->keep_cache = 0;
	if (fuse_reply_create(req, &e, fi) != 0) {
		/* the open was interrupted: undo what the kernel will never release */
		pthread_mutex_lock(&fs->lock);
		n->n_open--;
		n->nlookup--;
		pthread_mutex_unlock(&fs->lock);
		handle_free(h);
	}
}

void fs_op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev)
{
	struct fs *fs = the_fs;
	struct fuse_entry_param e;
	struct seal_key *key = NULL;
	struct caller c;
	struct node *n;
	int r;

	(void)rdev;
	/* only regular files: devices and fifos have no place in oneM2M */
	if (!S_ISREG(mode)) {
		fuse_reply_err(req, EPERM);
		return;
	}
	caller_from_req(req, &c);
	r = file_make(fs, &c, parent, name, mode, &n, &key);
	if (r < 0) {
		fuse_reply_err(req, -r);
		return;
	}
	pthread_mutex_lock(&n->data_lock);
	r = data_commit(fs, n, key, false);
	pthread_mutex_unlock(&n->data_lock);
	seal_key_free(key);
	if (r < 0) {
		fuse_reply_err(req, -r);
		return;
	}
	pthread_mutex_lock(&fs->lock);
	fs_fill_entry(n, &e);
	pthread_mutex_unlock(&fs->lock);
	fuse_reply_entry(req, &e);
}

/* The caller's own key for n, and the file's segment table ready to use. */
int fs_open_key(struct fs *fs, const struct caller *c, struct node *n, struct seal_key **ret)
{
	struct seal_key *key = NULL;
	uint64_t min_version = 0;
	int r;

	r = keys_retrieve(fs, c, n, &key, &min_version);
	if (r < 0)
		return r;
	pthread_mutex_lock(&n->data_lock);
	r = data_prepare(fs, n, key, min_version);
	pthread_mutex_unlock(&n->data_lock);
	if (r < 0) {
		seal_key_free(key);
		return r;
	}
	*ret = key;
	return 0;
}

/* Another AE's object: read-only, its plaintext held by this open only. */
static void open_foreign(fuse_req_t req, struct node *n, struct fuse_file_info *fi)
{
	struct fs *fs = the_fs;
	struct handle *h = NULL;
	struct caller c;
	char *buf = NULL;
	size_t len = 0;
	int r = -EROFS;

	if ((fi->flags & O_ACCMODE) == O_RDONLY && !(fi->flags & O_TRUNC)) {
		caller_from_req(req, &c);
		r = foreign_open(fs, &c, n, &buf, &len);
	}
	if (r == 0) {
		h = handle_new(n, NULL, fi->flags);
		if (!h)
			r = -ENOMEM;
	}
	if (r < 0 || !h) {
		secmem_free(buf, len + 1);
		pthread_mutex_lock(&fs->lock);
		n->n_open--;
		fs_maybe_reap(fs, n);
		pthread_mutex_unlock(&fs->lock);
		fuse_reply_err(req, -r);
		return;
	}
	h->fbuf = buf;
	h->flen = len;
	pthread_mutex_lock(&fs->lock);
	n->size = len;
	pthread_mutex_unlock(&fs->lock);
	fi->fh = (uintptr_t)h;
	fi->direct_io = 1; /* its size may have changed since the listing */
	if (fuse_reply_open(req, fi) != 0) {
		handle_free(h);
		pthread_mutex_lock(&fs->lock);
		n->n_open--;
		fs_maybe_reap(fs, n);
		pthread_mutex_unlock(&fs->lock);
	}
}

void fs_op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs *fs = the_fs;
	struct seal_key *key = NULL;
	uint64_t seq;
	struct caller c;
	struct handle *h;
	struct node *n;
	int r;

	pthread_mutex_lock(&fs->lock);
	n = ns_get(fs, ino);
	if (n && !S_ISREG(n->mode)) {
		pthread_mutex_unlock(&fs->lock);
		fuse_reply_err(req, S_ISDIR(n->mode) ? EISDIR : EINVAL);
		return;
	}
	if (n)
		n->n_open++; /* keeps it alive while tefd answers */
	pthread_mutex_unlock(&fs->lock);
	if (!n) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	if (n->foreign) {
		open_foreign(req, n, fi);
		return;
	}

	/* DESIGN.md 8: tefd decides for this caller; nobody else's key is reused */
	caller_from_req(req, &c);
	r = fs_open_key(fs, &c, n, &key);
	if (r == 0 && (fi->flags & O_TRUNC)) {
		pthread_mutex_lock(&n->data_lock);
		r = data_truncate(fs, n, key, 0);
		pthread_mutex_unlock(&n->data_lock);
	}
	h = r == 0 ? handle_new(n, key, fi->flags) : NULL;
	if (r == 0 && !h)
		r = -ENOMEM;
	if (h)
		h->wrote = (fi->flags & O_TRUNC) != 0; /* truncated: its close commits */
	if (h)
		h->caller = c;
	if (r < 0) {
		seal_key_free(key);
		pthread_mutex_lock(&fs->lock);
		n->n_open--;
		fs_maybe_reap(fs, n);
		pthread_mutex_unlock(&fs->lock);
		fuse_reply_err(req, -r);
		return;
	}
	fi->fh = (uintptr_t)h;
	/* every change passes through this kernel, which keeps its pages in
	 * step: they are kept while the content is what was there when a handle
	 * was last flushed or released, unless writes came while several handles
	 * were open (keep_cache kept older versions visible under e2e_load's
	 * concurrent writers and readers): then opens drop them until all close */
	pthread_mutex_lock(&n->data_lock);
	seq = n->content_seq;
	pthread_mutex_unlock(&n->data_lock);
	pthread_mutex_lock(&fs->lock);
	fi->keep_cache = !n->kc_shared && n->kc_valid && n->kc_seq == seq;
	pthread_mutex_unlock(&fs->lock);
	if (fuse_reply_open(req, fi) != 0) {
		handle_free(h);
		pthread_mutex_lock(&fs->lock);
		n->n_open--;
		fs_maybe_reap(fs, n);
		pthread_mutex_unlock(&fs->lock);
	}
}

void fs_op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
	struct handle *h = (struct handle *)(uintptr_t)fi->fh;
	char *buf;
	size_t got = 0;
	int r;

	(void)ino;
	if (h->fbuf) {
		size_t o = off < 0 || (uint64_t)off > h->flen ? h->flen : (size_t)off;
		fuse_reply_buf(req, h->fbuf + o, size < h->flen - o ? size : h->flen - o);
		return;
	}
	buf = secmem_alloc(size);
	if (!buf) {
		fuse_reply_err(req, -plain_alloc_error(size));
		return;
	}
	pthread_mutex_lock(&h->node->data_lock);
	r = data_read(the_fs, h, buf, size, off, &got);
	if (r == -EKEYREVOKED && (r = rotate_rekey_handle(the_fs, h)) == 0) /* rotate.c */
		r = data_read(the_fs, h, buf, size, off, &got);
	pthread_mutex_unlock(&h->node->data_lock);
	if (r < 0)
		fuse_reply_err(req, -r);
	else
		fuse_reply_buf(req, buf, got);
	secmem_free(buf, size);
}

void fs_op_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
		 struct fuse_file_info *fi)
{
	struct handle *h = (struct handle *)(uintptr_t)fi->fh;
	int r;

	(void)ino;
	if (off < 0 || (uint64_t)off + size > (uint64_t)INT64_MAX) {
		fuse_reply_err(req, EFBIG);
		return;
	}
	/* the data sits in libfuse's request buffer, reused by this thread */
	r = secmem_lock_range(buf, size);
	if (r < 0) {
		errno = -r;
		fuse_reply_err(req, -plain_alloc_error(size));
		return;
	}
	pthread_mutex_lock(&h->node->data_lock);
	/* before the write: a segment it hands to the sealers uses h->key, and
	 * only a handle that wrote waits for them before freeing it (release) */
	h->wrote = true;
	r = data_write(the_fs, h, buf, size, off);
	if (r == -EKEYREVOKED && (r = rotate_rekey_handle(the_fs, h)) == 0) /* rotate.c */
		r = data_write(the_fs, h, buf, size, off);
	pthread_mutex_unlock(&h->node->data_lock);
	/* copied (or refused): libfuse's buffer must not keep it after us */
	sodium_memzero((void *)buf, size);
	if (r < 0) {
		fuse_reply_err(req, -r);
		return;
	}
	pthread_mutex_lock(&the_fs->lock);
	if (h->node->n_open > 1) { /* see fs_op_open */
		h->node->kc_shared = true;
		h->node->kc_valid = false;
	}
	pthread_mutex_unlock(&the_fs->lock);
	fuse_reply_write(req, size);
}

/*
 * Commits the changes of a handle that wrote (or truncated, or created the
 * file). A handle that only read commits nothing: another handle's
 * unfinished writes are that handle's to commit, at its own close, under
 * its own key; fsync() through it makes what is committed durable.
 */
static int commit_handle(struct handle *h, bool durable)
{
	int r = 0;

	pthread_mutex_lock(&h->node->data_lock);
	if (h->wrote) {
		r = data_commit(the_fs, h->node, h->key, durable);
		if (r == -EKEYREVOKED && (r = rotate_rekey_handle(the_fs, h)) == 0) /* rotate.c */
			r = data_commit(the_fs, h->node, h->key, durable);
	} else if (durable)
		r = cache_sync(the_fs->cache);
	pthread_mutex_unlock(&h->node->data_lock);
	return r;
}

/* What the kernel holds now matches the content (fs_op_open), unless shared. */
static void kc_note(struct node *n)
{
	uint64_t seq;

	pthread_mutex_lock(&n->data_lock);
	seq = n->content_seq;
	pthread_mutex_unlock(&n->data_lock);
	pthread_mutex_lock(&the_fs->lock);
	if (!n->kc_shared) {
		/* a change racing this (setattr) leaves kc_seq behind: not kept */
		n->kc_valid = true;
		n->kc_seq = seq;
	}
	pthread_mutex_unlock(&the_fs->lock);
}

void fs_op_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct handle *h = (struct handle *)(uintptr_t)fi->fh;
	int r;

	(void)ino;
	/* close(): the new version is durable in the cache before it returns
	 * (FLUSH is what close(2) waits for; RELEASE comes after, unwaited) */
	r = commit_handle(h, false);
	if (r == 0)
		kc_note(h->node);
	fuse_reply_err(req, -r);
}

void fs_op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	struct handle *h = (struct handle *)(uintptr_t)fi->fh;

	(void)ino;
	(void)datasync;
	fuse_reply_err(req, -commit_handle(h, true));
}

void fs_op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct handle *h = (struct handle *)(uintptr_t)fi->fh;
	struct fs *fs = the_fs;
	struct node *n = h->node;
	int r;

	(void)ino;
	r = commit_handle(h, false);
	if (r < 0) {
		_cleanup_free_ char *desc = fs_describe(fs, n->ino);

		log_error_errno(r, "changes to %s lost at release", desc);
	}
	handle_free(h);
	if (r == 0)
		kc_note(n);
	pthread_mutex_lock(&fs->lock);
	if (--n->n_open == 0)
		n->kc_shared = false;
	fs_maybe_reap(fs, n);
	pthread_mutex_unlock(&fs->lock);
	fuse_reply_err(req, 0);
}

void fs_op_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t offset, off_t length,
		     struct fuse_file_info *fi)
{
	struct handle *h = (struct handle *)(uintptr_t)fi->fh;
	struct node *n = h->node;
	uint64_t end = (uint64_t)offset + (uint64_t)length;
	int r = 0;

	(void)ino;
	if (mode != 0) {
		fuse_reply_err(req, EOPNOTSUPP);
		return;
	}
	pthread_mutex_lock(&n->data_lock);
	if (end > n->size) {
		h->wrote = true;
		r = data_truncate(the_fs, n, h->key, end);
		if (r == -EKEYREVOKED && (r = rotate_rekey_handle(the_fs, h)) == 0)
			r = data_truncate(the_fs, n, h->key, end);
	}
	pthread_mutex_unlock(&n->data_lock);
	fuse_reply_err(req, -r);
}
