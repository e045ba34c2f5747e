/* SPDX-License-Identifier: Apache-2.0 */
/* The namespace: inodes by number and by (parent, name), the directory tree, names and labels. */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "atrest/cleanup.h"
#include "atrest/log.h"
#include "atrestfs.h"
#include "cache.h"

static size_t hash_ino(uint64_t ino, size_t n)
{
	return (size_t)((ino * UINT64_C(0x9E3779B97F4A7C15)) >> 17) % n;
}

static size_t hash_name(uint64_t parent, const char *name, size_t n)
{
	uint64_t h = UINT64_C(1469598103934665603) ^ parent;

	for (const unsigned char *p = (const unsigned char *)name; *p; p++)
		h = (h ^ *p) * UINT64_C(1099511628211);
	return (size_t)(h % n);
}

static int ns_grow(struct fs *fs)
{
	size_t nb = fs->n_buckets ? fs->n_buckets * 4 : 1024;
	struct node **bi = calloc(nb, sizeof(*bi)), **bn = calloc(nb, sizeof(*bn));

	if (!bi || !bn) {
		free(bi);
		free(bn);
		return -ENOMEM;
	}
	for (size_t i = 0; i < fs->n_buckets; i++) {
		struct node *n, *next;

		for (n = fs->by_ino[i]; n; n = next) {
			next = n->h_ino_next;
			size_t h = hash_ino(n->ino, nb);
			n->h_ino_next = bi[h];
			bi[h] = n;
		}
		for (n = fs->by_name[i]; n; n = next) {
			next = n->h_name_next;
			size_t h = hash_name(n->parent, n->name, nb);
			n->h_name_next = bn[h];
			bn[h] = n;
		}
	}
	free(fs->by_ino);
	free(fs->by_name);
	fs->by_ino = bi;
	fs->by_name = bn;
	fs->n_buckets = nb;
	return 0;
}

struct node *ns_get(struct fs *fs, uint64_t ino)
{
	for (struct node *n = fs->by_ino[hash_ino(ino, fs->n_buckets)]; n; n = n->h_ino_next)
		if (n->ino == ino)
			return n;
	return NULL;
}

struct node *ns_lookup(struct fs *fs, uint64_t parent, const char *name)
{
	for (struct node *n = fs->by_name[hash_name(parent, name, fs->n_buckets)]; n;
	     n = n->h_name_next)
		if (n->parent == parent && strcmp(n->name, name) == 0)
			return n;
	return NULL;
}

struct node *ns_node_new(struct fs *fs, uint64_t ino)
{
	struct node *n = calloc(1, sizeof(*n));

	if (!n)
		return NULL;
	n->ino = ino ? ino : fs->next_ino++;
	if (n->ino >= fs->next_ino)
		fs->next_ino = n->ino + 1;
	n->seg_size = (uint32_t)fs->opt.segment_size;
	n->protection = fs->opt.protection;
	pthread_mutex_init(&n->data_lock, NULL);
	pthread_cond_init(&n->seal_cond, NULL);
	return n;
}

void ns_node_free(struct node *n)
{
	if (!n)
		return;
	data_drop(n);
	pthread_mutex_destroy(&n->data_lock);
	pthread_cond_destroy(&n->seal_cond);
	free(n->name);
	free(n->symlink);
	free(n->cred_id);
	free(n->rkid);
	free(n->targets);
	free(n->xattrs);
	free(n);
}

void ns_insert(struct fs *fs, struct node *n)
{
	size_t h;

	if (fs->n_nodes + 1 > fs->n_buckets * 2)
		ns_grow(fs);
	h = hash_ino(n->ino, fs->n_buckets);
	n->h_ino_next = fs->by_ino[h];
	fs->by_ino[h] = n;
	fs->n_nodes++;
	if (n->name && n->parent) {
		char *name = n->name;
		n->name = NULL;
		ns_link_name(fs, n, n->parent, name);
	}
}

void ns_link_name(struct fs *fs, struct node *n, uint64_t parent, const char *name_owned)
{
	struct node *dir = ns_get(fs, parent);
	size_t h;

	free(n->name);
	n->name = (char *)name_owned;
	n->parent = parent;
	h = hash_name(parent, n->name, fs->n_buckets);
	n->h_name_next = fs->by_name[h];
	fs->by_name[h] = n;
	if (dir) {
		n->prev_sibling = NULL;
		n->next_sibling = dir->first_child;
		if (dir->first_child)
			dir->first_child->prev_sibling = n;
		dir->first_child = n;
		n->counted_dir = S_ISDIR(n->mode);
		dir->n_subdirs += n->counted_dir;
	}
}

void ns_unlink_name(struct fs *fs, struct node *n)
{
	struct node **pp, *dir;

	if (!n->name || !n->parent)
		return;
	pp = &fs->by_name[hash_name(n->parent, n->name, fs->n_buckets)];
	for (; *pp; pp = &(*pp)->h_name_next)
		if (*pp == n) {
			*pp = n->h_name_next;
			break;
		}
	dir = ns_get(fs, n->parent);
	if (dir) {
		if (n->prev_sibling)
			n->prev_sibling->next_sibling = n->next_sibling;
		else if (dir->first_child == n)
			dir->first_child = n->next_sibling;
		if (n->next_sibling)
			n->next_sibling->prev_sibling = n->prev_sibling;
		dir->n_subdirs -= n->counted_dir;
	}
	n->counted_dir = false;
	n->next_sibling = n->prev_sibling = NULL;
	n->h_name_next = NULL;
	n->parent = 0;
}

void ns_remove(struct fs *fs, struct node *n)
{
	struct node **pp;

	ns_unlink_name(fs, n);
	pp = &fs->by_ino[hash_ino(n->ino, fs->n_buckets)];
	for (; *pp; pp = &(*pp)->h_ino_next)
		if (*pp == n) {
			*pp = n->h_ino_next;
			fs->n_nodes--;
			break;
		}
}

bool ns_dir_is_empty(struct node *dir)
{
	return dir->first_child == NULL;
}

struct loader {
	struct fs *fs;
	struct node **list;
	size_t n, cap;
};

static struct node *load_alloc(void *ud, uint64_t ino)
{
	struct loader *l = ud;
	struct node *n;

	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 256;
		struct node **p = realloc(l->list, cap * sizeof(*p));
		if (!p)
			return NULL;
		l->list = p;
		l->cap = cap;
	}
	n = ns_node_new(l->fs, ino);
	if (n)
		l->list[l->n++] = n;
	return n;
}

int ns_init(struct fs *fs)
{
	struct loader l = { .fs = fs };
	int r;

	fs->next_ino = 2;
	r = ns_grow(fs);
	if (r < 0)
		return r;
	r = cache_nodes_load(fs->cache, load_alloc, &l);
	/* a node removed before a restart has no row, but its container's deletion
	 * may still be queued: a new node under its number would lose its own
	 * container to that deletion */
	uint64_t gone = cache_gc_max_ino(fs->cache);
	if (gone >= fs->next_ino)
		fs->next_ino = gone + 1;
	/* numbers first, then names: a name links to its parent by number */
	for (size_t i = 0; i < l.n; i++) {
		struct node *n = l.list[i];
		char *name = n->name;
		uint64_t parent = n->parent;

		n->name = NULL;
		n->parent = 0;
		ns_insert(fs, n);
		n->name = name;
		n->parent = parent;
	}
	for (size_t i = 0; i < l.n; i++) {
		struct node *n = l.list[i];

		if (n->name && n->parent) {
			char *name = n->name;
			n->name = NULL;
			ns_link_name(fs, n, n->parent, name);
		}
	}
	free(l.list);
	return r;
}

void ns_done(struct fs *fs)
{
	for (size_t i = 0; i < fs->n_buckets; i++) {
		struct node *n = fs->by_ino[i], *next;
		for (; n; n = next) {
			next = n->h_ino_next;
			ns_node_free(n);
		}
	}
	free(fs->by_ino);
	free(fs->by_name);
	fs->by_ino = fs->by_name = NULL;
	fs->n_buckets = 0;
}

void node_fill_stat(const struct node *n, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = n->ino;
	st->st_mode = n->mode;
	st->st_nlink = 1;
	/* kept by ns_link_name/ns_unlink_name: a stat of a big directory
	 * (every create replies with its parent's) walks no list */
	if (S_ISDIR(n->mode))
		st->st_nlink = 2 + n->n_subdirs;
	if (n->unlinked)
		st->st_nlink = 0;
	st->st_uid = n->uid;
	st->st_gid = n->gid;
	st->st_size = (off_t)(S_ISLNK(n->mode) && n->symlink ? strlen(n->symlink) : n->size);
	st->st_blksize = S_ISREG(n->mode) ? (blksize_t)n->seg_size : 4096;
	st->st_blocks = (blkcnt_t)((n->size + 511) / 512);
	st->st_atim = n->atime;
	st->st_mtim = n->mtime;
	st->st_ctim = n->ctime;
}

void node_touch(struct node *n, bool mtime, bool ctime, bool atime)
{
	struct timespec now;

	clock_gettime(CLOCK_REALTIME, &now);
	if (mtime)
		n->mtime = now;
	if (ctime)
		n->ctime = now;
	if (atime)
		n->atime = now;
}

/* ---- names and labels (DESIGN.md 5) ---- */

static bool name_char_ok(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '.' || c == '_' || c == '-';
}

char *name_encode(const char *name)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t len = strlen(name);
	char *out = malloc(len * 3 + 1), *o = out;

	if (!out)
		return NULL;
	for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
		if (name_char_ok(*p))
			*o++ = (char)*p;
		else {
			*o++ = '%';
			*o++ = hex[*p >> 4];
			*o++ = hex[*p & 15];
		}
	}
	*o = '\0';
	return out;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

char *name_decode(const char *enc)
{
	char *out = malloc(strlen(enc) + 1), *o = out;

	if (!out)
		return NULL;
	for (const char *p = enc; *p; p++) {
		if (*p == '%') {
			int hi = hexval(p[1]), lo = hi >= 0 ? hexval(p[2]) : -1;
			if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
				free(out);
				return NULL;
			}
			*o++ = (char)(hi << 4 | lo);
			p += 2;
		} else
			*o++ = *p;
	}
	*o = '\0';
	return out;
}

void node_rn(const struct node *n, char buf[32])
{
	snprintf(buf, 32, ATREST_NODE_RN_FMT, n->ino);
}

void labels_free(char **l, size_t n)
{
	if (!l)
		return;
	for (size_t i = 0; i < n; i++)
		free(l[i]);
	free(l);
}

static int64_t ts_ns(const struct timespec *t)
{
	return (int64_t)t->tv_sec * 1000000000 + t->tv_nsec;
}

/* Encoded characters per label chunk, and chunks per value (64 labels at most). */
#define LABEL_CHUNK 200
#define LABEL_MAX_CHUNKS 20

/* Appends chunk `c` of an encoded value to *acc (chunks may come in any order). */
static int chunk_put(char **acc, size_t c, const char *v)
{
	if (c >= LABEL_MAX_CHUNKS || strlen(v) > LABEL_CHUNK)
		return -EBADMSG;
	if (!*acc) {
		*acc = calloc(1, LABEL_MAX_CHUNKS * LABEL_CHUNK + 1);
		if (!*acc)
			return -ENOMEM;
	}
	memcpy(*acc + c * LABEL_CHUNK, v, strlen(v));
	return 0;
}

/* "name", "name1", ...: the chunk number of key for base, or -1. */
static int chunk_of(const char *key, const char *base)
{
	size_t bl = strlen(base);
	char *end;
	long c;

	if (strncmp(key, base, bl) != 0)
		return -1;
	if (key[bl] == '\0')
		return 0;
	c = strtol(key + bl, &end, 10);
	return *end || c < 1 || c >= LABEL_MAX_CHUNKS ? -1 : (int)c;
}

int node_labels(const struct node *n, uint64_t size, uint64_t version, char ***ret, size_t *ret_n)
{
	_cleanup_free_ char *name = NULL, *target = NULL;
	char **l;
	size_t k = 0;
	bool ok = true;

	name = name_encode(n->name ? n->name : "");
	if (n->symlink)
		target = name_encode(n->symlink);
	if (!name || (n->symlink && !target))
		return -ENOMEM;
	l = calloc(24 + 2 * LABEL_MAX_CHUNKS, sizeof(char *));
	if (!l)
		return -ENOMEM;
#define ADD(...)                                                                                   \
	do {                                                                                       \
		if (ok && asprintf(&l[k], __VA_ARGS__) >= 0)                                       \
			k++;                                                                       \
		else                                                                               \
			ok = false;                                                                \
	} while (0)
	ADD("atrest:%s", S_ISDIR(n->mode) ? "dir" : S_ISLNK(n->mode) ? "symlink" : "file");
	ADD("atrest:ino=%" PRIu64, n->ino);
	ADD("atrest:parent=%" PRIu64, n->parent);
	/* hcsed takes labels of at most 256 characters: long values are chunked */
	for (size_t c = 0, len = strlen(name); ok && (c == 0 || c * LABEL_CHUNK < len); c++) {
		if (c >= LABEL_MAX_CHUNKS) {
			ok = false;
			break;
		}
		ADD("atrest:name%.0zu=%.*s", c, LABEL_CHUNK, name + c * LABEL_CHUNK);
	}
	ADD("atrest:mode=%o", (unsigned)n->mode);
	ADD("atrest:uid=%u", (unsigned)n->uid);
	ADD("atrest:gid=%u", (unsigned)n->gid);
	ADD("atrest:size=%" PRIu64, size);
	ADD("atrest:atime=%" PRId64, ts_ns(&n->atime));
	ADD("atrest:mtime=%" PRId64, ts_ns(&n->mtime));
	ADD("atrest:ctime=%" PRId64, ts_ns(&n->ctime));
	if (S_ISREG(n->mode)) {
		ADD("atrest:version=%" PRIu64, version);
		ADD("atrest:fid=%s", n->file_id);
		ADD("atrest:segsize=%u", (unsigned)n->seg_size);
		ADD("atrest:protection=%s",
		    n->protection == SEAL_INTEGRITY ? "integrity" : "confidentiality");
		if (n->cred_id)
			ADD("atrest:cred=%s", n->cred_id);
		if (n->rkid)
			ADD("atrest:rkid=%s", n->rkid);
		if (n->expires)
			ADD("atrest:expires=%" PRId64, n->expires);
	}
	for (size_t c = 0, len = target ? strlen(target) : 0; ok && target && (c == 0 || c * LABEL_CHUNK < len); c++) {
		if (c >= LABEL_MAX_CHUNKS) {
			ok = false;
			break;
		}
		ADD("atrest:target%.0zu=%.*s", c, LABEL_CHUNK, target + c * LABEL_CHUNK);
	}
	/* sealed user.* attributes live in contentInstance xa<N> (uploader.c) */
	if (n->xattrs_rver)
		ADD("atrest:xattrs=%" PRIu64, n->xattrs_rver);
#undef ADD
	if (!ok) {
		labels_free(l, k);
		return -ENOMEM;
	}
	*ret = l;
	*ret_n = k;
	return 0;
}

/* A directory entry's name as POSIX allows it: what readdir may return. */
static bool name_is_entry(const char *name)
{
	size_t len = strlen(name);

	return len > 0 && len <= NAME_MAX && !memchr(name, '/', len) && strcmp(name, ".") != 0 &&
	       strcmp(name, "..") != 0;
}

static struct timespec ns_ts(int64_t ns)
{
	return (struct timespec){ .tv_sec = ns / 1000000000, .tv_nsec = ns % 1000000000 };
}

int node_from_labels(struct node *n, const char *const *labels, size_t n_labels)
{
	_cleanup_free_ char *name = NULL, *target = NULL;
	mode_t type = 0;
	int c;

	for (size_t i = 0; i < n_labels; i++) {
		const char *l = labels[i], *v;
		char key[32];
		size_t kl;

		if (strncmp(l, "atrest:", 7) != 0)
			continue;
		l += 7;
		v = strchr(l, '=');
		if (!v) {
			if (strcmp(l, "dir") == 0)
				type = S_IFDIR;
			else if (strcmp(l, "file") == 0)
				type = S_IFREG;
			else if (strcmp(l, "symlink") == 0)
				type = S_IFLNK;
			continue;
		}
		kl = (size_t)(v - l);
		if (kl >= sizeof(key))
			continue;
		memcpy(key, l, kl);
		key[kl] = '\0';
		v++;
		if (strcmp(key, "ino") == 0)
			n->ino = strtoull(v, NULL, 10);
		else if (strcmp(key, "parent") == 0)
			n->parent = strtoull(v, NULL, 10);
		else if ((c = chunk_of(key, "name")) >= 0) {
			if (chunk_put(&name, (size_t)c, v) < 0)
				return -EBADMSG;
		} else if ((c = chunk_of(key, "target")) >= 0) {
			if (chunk_put(&target, (size_t)c, v) < 0)
				return -EBADMSG;
		} else if (strcmp(key, "mode") == 0)
			n->mode = (mode_t)strtoul(v, NULL, 8);
		else if (strcmp(key, "uid") == 0)
			n->uid = (uid_t)strtoul(v, NULL, 10);
		else if (strcmp(key, "gid") == 0)
			n->gid = (gid_t)strtoul(v, NULL, 10);
		else if (strcmp(key, "size") == 0)
			n->size = strtoull(v, NULL, 10);
		else if (strcmp(key, "atime") == 0)
			n->atime = ns_ts(strtoll(v, NULL, 10));
		else if (strcmp(key, "mtime") == 0)
			n->mtime = ns_ts(strtoll(v, NULL, 10));
		else if (strcmp(key, "ctime") == 0)
			n->ctime = ns_ts(strtoll(v, NULL, 10));
		else if (strcmp(key, "version") == 0)
			n->version = n->remote_version = strtoull(v, NULL, 10);
		else if (strcmp(key, "fid") == 0)
			snprintf(n->file_id, sizeof(n->file_id), "%s", v);
		else if (strcmp(key, "segsize") == 0)
			n->seg_size = (uint32_t)strtoul(v, NULL, 10);
		else if (strcmp(key, "protection") == 0)
			n->protection = strcmp(v, "integrity") == 0 ? SEAL_INTEGRITY : SEAL_CONFIDENTIALITY;
		else if (strcmp(key, "cred") == 0) {
			free(n->cred_id);
			n->cred_id = strdup(v);
		} else if (strcmp(key, "rkid") == 0) {
			free(n->rkid);
			n->rkid = strdup(v);
		} else if (strcmp(key, "expires") == 0)
			n->expires = strtoll(v, NULL, 10);
		else if (strcmp(key, "xattrs") == 0)
			n->xattrs_ver = n->xattrs_rver = strtoull(v, NULL, 10);
	}
	if (name) {
		free(n->name);
		n->name = name_decode(name);
	}
	if (target) {
		free(n->symlink);
		n->symlink = name_decode(target);
	}
	/* the labels come from the HCSE, which is not trusted with anything
	 * (docs/SECURITY.md): what the kernel or the namespace cannot take is
	 * refused here, not served */
	if (!type || !n->ino || (n->ino != 1 && (!n->name || !n->parent)))
		return -EBADMSG;
	if (n->ino == 1) { /* the root has no name, whatever a label says */
		free(n->name);
		n->name = NULL;
	}
	if (n->ino > NS_INO_MAX || n->parent > NS_INO_MAX || n->parent == n->ino ||
	    (n->ino == 1 && (type != S_IFDIR || n->parent)) ||
	    (n->name && !name_is_entry(n->name)) || n->size > (uint64_t)INT64_MAX ||
	    (n->symlink && (!*n->symlink || strlen(n->symlink) >= PATH_MAX)) ||
	    (n->seg_size && (n->seg_size < SEAL_SEGMENT_SIZE_MIN ||
			     n->seg_size > SEAL_SEGMENT_SIZE_MAX)))
		return -EBADMSG;
	if (type == S_IFLNK && !n->symlink)
		return -EBADMSG;
	if (type == S_IFREG && (!n->file_id[0] || !n->cred_id || !n->rkid))
		return -EBADMSG;
	n->mode = (n->mode & 07777) | type;
	return 0;
}

void node_from_labels_free(struct node *n)
{
	free(n->name);
	free(n->symlink);
	free(n->cred_id);
	free(n->rkid);
	free(n);
}

char *ns_path(struct fs *fs, const struct node *n)
{
	const struct node *chain[256];
	size_t depth = 0, len = 1;
	char *s, *p;

	if (n->ino == FUSE_ROOT_ID)
		return strdup("/");
	/* walk up to the root; an unlinked node (or one under it) has no path */
	for (const struct node *x = n; x->ino != FUSE_ROOT_ID; x = ns_get(fs, x->parent)) {
		if (!x->name || !x->parent || depth == ELEMENTSOF(chain))
			return NULL;
		chain[depth++] = x;
		len += strlen(x->name) + 1;
		if (!ns_get(fs, x->parent))
			return NULL;
	}
	s = p = malloc(len);
	if (!s)
		return NULL;
	while (depth > 0)
		p = stpcpy(stpcpy(p, "/"), chain[--depth]->name);
	*p = '\0';
	return s;
}
