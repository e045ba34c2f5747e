/* SPDX-License-Identifier: Apache-2.0 */
/* Keys through tefd, always on behalf of the FUSE caller (DESIGN.md 2): register, retrieve, update, de-register. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "atrest/cleanup.h"
#include "atrest/hcse_client.h"
#include "atrest/log.h"
#include "atrest/monotonic.h"
#include "atrest/tef_api.h"
#include "atrestfs.h"

/*
 * Two things spare a tefd round trip without weakening DESIGN.md 2 and 8:
 *
 * - A pool of registrations made ahead of time, on behalf of an owner, in
 *   batches (tefd's atrestCount: one fsync for up to 64 keys). A created
 *   file takes one whose owner, targets and protection are those the file
 *   would have been registered with; the key is registered before the first
 *   byte is sealed, as ever. A pooled registration is used within
 *   POOL_MAX_AGE of its making or de-registered; so are those left at
 *   unmount. Once a run of creates has grown the batches to half the
 *   largest and fewer than half the next batch are left for the owner, a
 *   thread refills the pool while the creates go on; a create waits for
 *   tefd only when the pool is empty (the first two batches of a run, or a
 *   refill slower than the creates).
 * - A cache of the keys released at open() (or at creation, to the owner),
 *   each usable only by the same caller identity (uid, gid and supplementary
 *   groups) for the same key id, for at most key_cache seconds, never past
 *   the registration's expiry, and dropped at once when this mount changes
 *   the registration's targets or expiry or de-registers it. Keys sit in one
 *   sodium_malloc'd slab, wiped on eviction.
 */
#define POOL_MAX_AGE 60	 /* seconds a pooled registration waits at most */
#define POOL_MAX 256	 /* pooled registrations per mount */
#define POOL_BATCH_MIN 8 /* the first batch; doubles while creates keep coming */
#define CACHE_MAX 4096	 /* cached keys per mount (128 KiB of locked memory) */
#define CACHE_BUCKETS 4096
#define KEY_MAX 32

struct pooled {
	uid_t uid;
	gid_t gid; /* the file gid its targets name (share=group), else 0 */
	int suid;
	int64_t made; /* CLOCK_MONOTONIC seconds */
	struct tef_registration *reg;
	struct pooled *next;
};

struct cached {
	uid_t uid;
	gid_t gid;
	size_t n_groups;
	gid_t groups[ELEMENTSOF(((struct caller *)0)->groups)];
	char rkid[TEF_RELATIVE_KEY_ID_HEX + 1];
	uint64_t min_version;
	int64_t until;	     /* CLOCK_MONOTONIC ms */
	int64_t key_expires; /* unix seconds, 0: as tefd's default (checked at release) */
	unsigned slot;
	size_t key_len;
	struct cached *next, **pprev;	/* the bucket's chain (by rkid alone) */
	struct cached *older, *newer;	/* age order: oldest is the first to end */
};

struct keys {
	pthread_mutex_t lock;
	struct pooled *pool;
	size_t n_pool;
	unsigned batch;	  /* the next batch's size */
	int64_t last_refill;
	bool no_batch;	  /* tefd does not know atrestCount: one key per file */
	bool refilling;	  /* a background refill runs (refill_main) */
	pthread_cond_t refilled;
	struct cached *cache[CACHE_BUCKETS];
	struct cached *oldest, *newest;
	size_t n_cached;
	uint8_t *slab;	  /* CACHE_MAX * KEY_MAX bytes, sodium_malloc'd */
	unsigned free_slot[CACHE_MAX]; /* a stack of the slab's free slots */
	size_t n_free;
};

/*
 * Supplementary groups of the calling thread from /proc, as
 * fuse_req_getgroups() does, but NUL-terminating what it reads (libfuse's
 * own reader runs strstr() past its buffer). Returns the count or -errno.
 */
static int proc_groups(pid_t pid, gid_t *out, size_t cap)
{
	char path[64], buf[4096], *g, *end;
	_cleanup_close_ int fd = -1;
	ssize_t n;
	size_t k = 0;

	snprintf(path, sizeof(path), "/proc/%d/task/%d/status", (int)pid, (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
		fd = open(path, O_RDONLY | O_CLOEXEC);
	}
	if (fd < 0)
		return -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	if (n < 0)
		return -errno;
	buf[n] = '\0';
	g = strstr(buf, "\nGroups:");
	if (!g)
		return -EIO;
	g += 8;
	while (k < cap) {
		unsigned long v = strtoul(g, &end, 10);
		if (end == g)
			break;
		out[k++] = (gid_t)v;
		g = end;
	}
	return (int)k;
}

void caller_from_req(fuse_req_t req, struct caller *ret)
{
	const struct fuse_ctx *ctx = fuse_req_ctx(req);
	int n;

	ret->uid = ctx->uid;
	ret->gid = ctx->gid;
	n = proc_groups(ctx->pid, ret->groups, ELEMENTSOF(ret->groups));
	/* a caller gone already, or no /proc: act with uid and gid alone */
	ret->n_groups = n > 0 ? (size_t)n : 0;
}

static void identity_of(const struct caller *c, struct tef_identity *id)
{
	*id = (struct tef_identity){
		.uid = c->uid, .gid = c->gid, .n_groups = c->n_groups, .groups = c->groups
	};
}

/* tefd's answer as the caller of open()/create() must see it (DESIGN.md 8). */
static int open_errno(struct fs *fs, int r, const char *what, const struct node *n)
{
	_cleanup_free_ char *desc = NULL;

	switch (r) {
	case -EACCES:
	case -EKEYEXPIRED:
	case -EPERM:
		return r == -EPERM ? -EACCES : r;
	case -EAGAIN:
		desc = fs_describe(fs, n->ino);
		log_warning("tefd rate-limits key requests: %s refused", desc);
		return -EACCES;
	case -ECONNREFUSED:
	case -EHOSTUNREACH:
	case -ENOENT:
	case -ETIMEDOUT:
	case -ECONNRESET:
		return health_failed(fs, fs->tef_outage, n->ino, what, r);
	default:
		desc = fs_describe(fs, n->ino);
		log_error_errno(r, "%s for %s failed", what, desc);
		return -EIO;
	}
}

static char *join(char *const *v, size_t n)
{
	size_t len = 1;
	char *s, *p;

	for (size_t i = 0; i < n; i++)
		len += strlen(v[i]) + 1;
	s = p = malloc(len);
	if (!s)
		return NULL;
	*s = '\0';
	for (size_t i = 0; i < n; i++)
		p = stpcpy(stpcpy(p, i ? "," : ""), v[i]);
	return s;
}

/* Adopts what tefd said about a registration (fs->lock taken here). */
void node_adopt_registration(struct fs *fs, struct node *n, const struct tef_registration *reg)
{
	char *targets = join(reg->targets, reg->n_targets);

	pthread_mutex_lock(&fs->lock);
	if (targets) {
		free(n->targets);
		n->targets = targets;
	}
	n->key_expires = reg->expiration;
	pthread_mutex_unlock(&fs->lock);
}

/* ---- the per-caller key cache (k->lock held) ----
 *
 * Every entry lives key_cache seconds from its making, so the age list is
 * also the order in which entries end: making room, dropping what ended and
 * finding an entry are O(1), however many files the mount has made.
 */

static size_t bucket_of(const char *rkid)
{
	size_t h = 5381;

	for (const char *p = rkid; *p; p++)
		h = h * 33 + (unsigned char)*p;
	return h % CACHE_BUCKETS;
}

static bool same_caller(const struct cached *e, const struct caller *c)
{
	return e->uid == c->uid && e->gid == c->gid && e->n_groups == c->n_groups &&
	       memcmp(e->groups, c->groups, c->n_groups * sizeof(gid_t)) == 0;
}

static void cached_drop(struct keys *k, struct cached *e)
{
	*e->pprev = e->next;
	if (e->next)
		e->next->pprev = e->pprev;
	*(e->older ? &e->older->newer : &k->oldest) = e->newer;
	*(e->newer ? &e->newer->older : &k->newest) = e->older;
	sodium_memzero(k->slab + (size_t)e->slot * KEY_MAX, KEY_MAX);
	k->free_slot[k->n_free++] = e->slot;
	k->n_cached--;
	free(e);
}

/* Drops the entries for rkid, or every entry (rkid NULL). */
static void cache_purge(struct keys *k, const char *rkid)
{
	if (!rkid) {
		while (k->oldest)
			cached_drop(k, k->oldest);
		return;
	}
	for (struct cached *e = k->cache[bucket_of(rkid)], *next; e; e = next) {
		next = e->next;
		if (strcmp(e->rkid, rkid) == 0)
			cached_drop(k, e);
	}
}

/* Makes room for one: what has ended goes, else the entry that ends first. */
static void cache_make_room(struct keys *k)
{
	int64_t now = monotonic_ms();

	while (k->oldest && k->oldest->until <= now)
		cached_drop(k, k->oldest);
	if (k->n_cached >= CACHE_MAX)
		cached_drop(k, k->oldest);
}

/* Remembers the key released to caller c for rkid (no-op when key_cache=0). */
static void cache_put(struct fs *fs, const struct caller *c, const char *rkid,
		      const uint8_t *key, size_t key_len, uint64_t min_version, int64_t key_expires)
{
	struct keys *k = fs->keys;
	struct cached *e;
	size_t b;
	unsigned slot;

	if (!k || !k->slab || fs->opt.key_cache == 0 || key_len > KEY_MAX ||
	    strlen(rkid) != TEF_RELATIVE_KEY_ID_HEX || c->n_groups > ELEMENTSOF(e->groups))
		return;
	e = calloc(1, sizeof(*e));
	if (!e)
		return;
	pthread_mutex_lock(&k->lock);
	b = bucket_of(rkid);
	for (struct cached *o = k->cache[b]; o; o = o->next)
		if (strcmp(o->rkid, rkid) == 0 && same_caller(o, c)) {
			cached_drop(k, o);
			break;
		}
	if (k->n_cached >= CACHE_MAX)
		cache_make_room(k);
	slot = k->free_slot[--k->n_free];
	*e = (struct cached){ .uid = c->uid, .gid = c->gid, .n_groups = c->n_groups,
			      .min_version = min_version,
			      .until = monotonic_ms() + (int64_t)fs->opt.key_cache * 1000,
			      .key_expires = key_expires, .slot = slot, .key_len = key_len,
			      .next = k->cache[b], .pprev = &k->cache[b], .older = k->newest };
	memcpy(e->groups, c->groups, c->n_groups * sizeof(gid_t));
	memcpy(e->rkid, rkid, TEF_RELATIVE_KEY_ID_HEX + 1);
	memcpy(k->slab + (size_t)slot * KEY_MAX, key, key_len);
	if (e->next)
		e->next->pprev = &e->next;
	k->cache[b] = e;
	*(k->newest ? &k->newest->newer : &k->oldest) = e;
	k->newest = e;
	k->n_cached++;
	pthread_mutex_unlock(&k->lock);
}

/* The key this very caller was given for rkid lately: 0, or -ENOENT. */
static int cache_get(struct fs *fs, const struct caller *c, const char *rkid,
		     struct seal_key **ret_key, uint64_t *ret_min_version)
{
	struct keys *k = fs->keys;
	int r = -ENOENT;

	if (!k || !k->slab || fs->opt.key_cache == 0)
		return -ENOENT;
	pthread_mutex_lock(&k->lock);
	for (struct cached *e = k->cache[bucket_of(rkid)]; e; e = e->next) {
		if (strcmp(e->rkid, rkid) != 0 || !same_caller(e, c))
			continue;
		if (e->until <= monotonic_ms() || (e->key_expires && e->key_expires <= time(NULL))) {
			cached_drop(k, e); /* tefd decides again */
			break;
		}
		r = seal_key_new(k->slab + (size_t)e->slot * KEY_MAX, e->key_len, ret_key);
		if (r == 0)
			*ret_min_version = e->min_version;
		break;
	}
	pthread_mutex_unlock(&k->lock);
	return r;
}

static void cache_forget(struct fs *fs, const char *rkid)
{
	if (!fs->keys || !rkid)
		return;
	pthread_mutex_lock(&fs->keys->lock);
	cache_purge(fs->keys, rkid);
	pthread_mutex_unlock(&fs->keys->lock);
}

/* ---- the pool of registrations made ahead of time ---- */

static void pooled_free_list(struct fs *fs, struct pooled *p)
{
	while (p) {
		struct pooled *next = p->next;

		if (p->reg) {
			keys_deregister(fs, p->uid, p->gid, p->reg->relative_key_id);
			tef_registration_free(p->reg);
		}
		free(p);
		p = next;
	}
}

/* A pooled registration for this owner, gid and suid, or NULL; stale ones go
 * to *stale; *ret_left: how many such remain. */
static struct tef_registration *pool_take(struct keys *k, uid_t uid, gid_t gid, int suid,
					  struct pooled **stale, size_t *ret_left)
{
	struct tef_registration *reg = NULL;
	int64_t now = monotonic_s();

	*ret_left = 0;
	for (struct pooled **l = &k->pool; *l;) {
		struct pooled *p = *l;

		if (p->made + POOL_MAX_AGE <= now) {
			*l = p->next;
			k->n_pool--;
			p->next = *stale;
			*stale = p;
			continue;
		}
		if (!reg && p->uid == uid && p->gid == gid && p->suid == suid) {
			*l = p->next;
			k->n_pool--;
			reg = p->reg;
			free(p);
			continue;
		}
		if (p->uid == uid && p->gid == gid && p->suid == suid)
			(*ret_left)++;
		l = &p->next;
	}
	return reg;
}

/*
 * Registers a batch on the caller's behalf (it is the file's owner): one is
 * returned (unless ret is NULL), the others wait in the pool. -EINVAL when
 * tefd has no batches.
 */
static int pool_refill(struct fs *fs, const struct caller *c, gid_t gid,
		       const struct tef_registration_req *req, struct tef_registration **ret)
{
	struct keys *k = fs->keys;
	struct tef_registration **list = NULL;
	struct pooled *over = NULL;
	struct tef_identity id = {
		.uid = c->uid, .gid = c->gid, .n_groups = c->n_groups, .groups = c->groups
	};
	size_t n = 0;
	unsigned want;
	int r;

	pthread_mutex_lock(&k->lock);
	/* a pause in creates starts small again; a run of them grows the batch */
	if (k->last_refill + POOL_MAX_AGE <= monotonic_s())
		k->batch = POOL_BATCH_MIN;
	want = k->batch;
	k->batch = k->batch * 2 > TEF_MAX_BATCH ? TEF_MAX_BATCH : k->batch * 2;
	k->last_refill = monotonic_s();
	pthread_mutex_unlock(&k->lock);

	r = tef_register_batch(fs->tef, &id, req, want, &list, &n, NULL);
	if (r < 0)
		return r;
	if (ret)
		*ret = list[0];
	pthread_mutex_lock(&k->lock);
	for (size_t i = ret ? 1 : 0; i < n; i++) {
		struct pooled *p = calloc(1, sizeof(*p));

		if (!p) {
			tef_registration_free(list[i]);
			continue;
		}
		*p = (struct pooled){ .uid = c->uid, .gid = gid, .suid = req->suid,
				      .made = monotonic_s(), .reg = list[i] };
		if (k->n_pool >= POOL_MAX) {
			p->next = over;
			over = p;
			continue;
		}
		p->next = k->pool;
		k->pool = p;
		k->n_pool++;
	}
	pthread_mutex_unlock(&k->lock);
	free(list);
	pooled_free_list(fs, over);
	return 0;
}

/* The registration request for a new file of uid whose group is gid: targets
 * from share= (DESIGN.md 2), the mount's label, the expiry from key_ttl.
 * Points into itself: not to be copied. */
struct reg_req {
	char t_uid[24], t_gid[24];
	char *label;
	const char *targets[2];
	const char *labels[1];
	struct tef_registration_req req;
};

static int reg_req_init(struct fs *fs, uid_t uid, gid_t gid, int suid, struct reg_req *rr)
{
	size_t n_targets = 0;

	snprintf(rr->t_uid, sizeof(rr->t_uid), "uid:%u", (unsigned)uid);
	snprintf(rr->t_gid, sizeof(rr->t_gid), "gid:%u", (unsigned)gid);
	if (asprintf(&rr->label, "atrestfs:%s", fs->opt.ae) < 0) {
		rr->label = NULL;
		return -ENOMEM;
	}
	switch (fs->opt.share) {
	case SHARE_OWNER:
		rr->targets[n_targets++] = rr->t_uid;
		break;
	case SHARE_GROUP:
		rr->targets[n_targets++] = rr->t_uid;
		rr->targets[n_targets++] = rr->t_gid;
		break;
	case SHARE_ALL:
		rr->targets[n_targets++] = "all";
		break;
	}
	rr->labels[0] = rr->label;
	rr->req = (struct tef_registration_req){
		.suid = suid,
		.labels = rr->labels,
		.n_labels = 1,
		.targets = rr->targets,
		.n_targets = n_targets,
		.expiration = fs->opt.key_ttl ? (int64_t)time(NULL) + (int64_t)fs->opt.key_ttl : 0,
	};
	return 0;
}

/* The tefd suid a file's protection registers its key under. */
static int suid_of(const struct node *n)
{
	return n->protection == SEAL_INTEGRITY ? TEF_SUID_INTEGRITY : TEF_SUID_ENCRYPTION;
}

static void reg_req_done(struct reg_req *rr)
{
	free(rr->label);
	rr->label = NULL;
}

/* A background refill: the identity it registers for, as at the create that started it. */
struct refill {
	struct fs *fs;
	struct caller c;
	gid_t gid;
	int suid;
};

static void *refill_main(void *arg)
{
	struct refill *j = arg;
	struct keys *k = j->fs->keys;
	struct reg_req rr = { .label = NULL };
	int r;

	r = reg_req_init(j->fs, j->c.uid, j->gid, j->suid, &rr);
	if (r == 0)
		r = pool_refill(j->fs, &j->c, j->gid, &rr.req, NULL);
	/* the next create that finds the pool empty registers, and reports */
	if (r < 0)
		log_debug_errno(r, "background refill of the registration pool failed");
	reg_req_done(&rr);
	pthread_mutex_lock(&k->lock);
	k->refilling = false;
	pthread_cond_broadcast(&k->refilled);
	pthread_mutex_unlock(&k->lock);
	free(j);
	return NULL;
}

/* Starts a background refill for this owner unless one runs (k->lock held). */
static void refill_start(struct fs *fs, const struct caller *c, gid_t gid, int suid)
{
	struct keys *k = fs->keys;
	struct refill *j;
	pthread_attr_t a;
	pthread_t t;

	if (k->refilling || k->no_batch)
		return;
	j = malloc(sizeof(*j));
	if (!j)
		return;
	*j = (struct refill){ .fs = fs, .c = *c, .gid = gid, .suid = suid };
	pthread_attr_init(&a);
	pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&t, &a, refill_main, j) == 0)
		k->refilling = true; /* keys_done waits for it */
	else
		free(j);
	pthread_attr_destroy(&a);
}

/* A registration for a new file: from the pool, a new batch, or a single one. */
static int register_for(struct fs *fs, const struct caller *c, gid_t gid,
			const struct tef_registration_req *req, struct tef_registration **ret)
{
	struct keys *k = fs->keys;
	struct pooled *stale = NULL;
	struct tef_identity id = {
		.uid = c->uid, .gid = c->gid, .n_groups = c->n_groups, .groups = c->groups
	};
	bool batch;
	int r;

	/* a short key_ttl leaves no room for a registration to wait */
	batch = k && !(fs->opt.key_ttl && fs->opt.key_ttl < 10 * POOL_MAX_AGE);
	if (batch) {
		size_t left = 0;

		pthread_mutex_lock(&k->lock);
		*ret = pool_take(k, c->uid, gid, req->suid, &stale, &left);
		/* empty, but a refill is on its way: cheaper than one more */
		while (!*ret && k->refilling) {
			pthread_cond_wait(&k->refilled, &k->lock);
			*ret = pool_take(k, c->uid, gid, req->suid, &stale, &left);
		}
		if (*ret && k->batch >= TEF_MAX_BATCH / 2 && left < k->batch / 2)
			refill_start(fs, c, gid, req->suid);
		batch = !k->no_batch;
		pthread_mutex_unlock(&k->lock);
		pooled_free_list(fs, stale);
		if (*ret)
			return 0;
	}
	if (batch) {
		r = pool_refill(fs, c, gid, req, ret);
		if (r != -EINVAL)
			return r;
		log_info("tefd does not register keys in batches: one registration per file");
		pthread_mutex_lock(&k->lock);
		k->no_batch = true;
		pthread_mutex_unlock(&k->lock);
	}
	return tef_register(fs->tef, &id, req, ret, NULL);
}

int keys_init(struct fs *fs)
{
	struct keys *k = calloc(1, sizeof(*k));

	if (!k)
		return -ENOMEM;
	pthread_mutex_init(&k->lock, NULL);
	pthread_cond_init(&k->refilled, NULL);
	k->batch = POOL_BATCH_MIN;
	if (fs->opt.key_cache) {
		k->slab = sodium_malloc(CACHE_MAX * KEY_MAX);
		for (unsigned i = CACHE_MAX; i > 0; i--)
			k->free_slot[k->n_free++] = i - 1;
		if (!k->slab) {
			pthread_cond_destroy(&k->refilled);
			pthread_mutex_destroy(&k->lock);
			free(k);
			return -ENOMEM;
		}
	}
	fs->keys = k;
	return 0;
}

void keys_done(struct fs *fs)
{
	struct keys *k = fs->keys;
	struct pooled *p;

	if (!k)
		return;
	pthread_mutex_lock(&k->lock);
	while (k->refilling)
		pthread_cond_wait(&k->refilled, &k->lock);
	p = TAKE_PTR(k->pool);
	k->n_pool = 0;
	cache_purge(k, NULL);
	pthread_mutex_unlock(&k->lock);
	/* registrations no file took: de-registered, their keys wiped */
	pooled_free_list(fs, p);
	sodium_free(k->slab);
	pthread_cond_destroy(&k->refilled);
	pthread_mutex_destroy(&k->lock);
	free(k);
	fs->keys = NULL;
}

int keys_register(struct fs *fs, const struct caller *c, struct node *n, struct seal_key **ret_key)
{
	_cleanup_(reg_req_done) struct reg_req rr = { .label = NULL };
	struct tef_registration *reg = NULL;
	struct seal_key *key = NULL;
	int r;

	r = reg_req_init(fs, c->uid, n->gid, suid_of(n), &rr);
	if (r < 0)
		return r;
	/* DESIGN.md 1 step 1: tefd generates the key; we hold it only in secure memory */
	r = register_for(fs, c, fs->opt.share == SHARE_GROUP ? n->gid : 0, &rr.req, &reg);
	if (r < 0)
		return open_errno(fs, r, "key registration", n);
	if (!reg->key || !reg->credential_id || !reg->relative_key_id) {
		tef_registration_free(reg);
		_cleanup_free_ char *desc = fs_describe(fs, n->ino);

		log_error("tefd registered a key for %s but returned no key", desc);
		return -EIO;
	}
	r = seal_key_new(reg->key, reg->key_len, &key);
	if (r == 0) {
		n->cred_id = strdup(reg->credential_id);
		n->rkid = strdup(reg->relative_key_id);
		if (!n->cred_id || !n->rkid)
			r = -ENOMEM;
	}
	if (r == 0) {
		node_adopt_registration(fs, n, reg);
		/* the owner may always retrieve its key: the same answer tefd would give */
		cache_put(fs, c, reg->relative_key_id, reg->key, reg->key_len, 0, reg->expiration);
	}
	tef_registration_free(reg);
	if (r < 0) {
		seal_key_free(key);
		return r;
	}
	*ret_key = key;
	return 0;
}

int keys_retrieve(struct fs *fs, const struct caller *c, const struct node *n,
		  struct seal_key **ret_key, uint64_t *ret_min_version)
{
	_cleanup_free_ char *rkid = NULL;
	struct tef_registration *reg = NULL;
	struct tef_identity id;
	struct seal_key *key = NULL;
	int r;

	/* a rotation (rotate.c) replaces it under fs->lock */
	pthread_mutex_lock(&fs->lock);
	r = n->rkid ? ((rkid = strdup(n->rkid)) ? 0 : -ENOMEM) : -EIO;
	pthread_mutex_unlock(&fs->lock);
	if (r < 0)
		return r;
	/* DESIGN.md 8: only what tefd released to this very identity, lately */
	if (cache_get(fs, c, rkid, ret_key, ret_min_version) == 0)
		return 0;
	identity_of(c, &id);
	r = tef_retrieve(fs->tef, &id, rkid, &reg, NULL);
	if (r < 0) {
		if (r == -EACCES || r == -EKEYEXPIRED) {
			_cleanup_free_ char *desc = fs_describe(fs, n->ino);

			log_info("key of %s refused to uid %u: %s", desc, (unsigned)c->uid,
				 r == -EACCES ? "denied" : "expired");
		}
		return open_errno(fs, r, "key retrieval", n);
	}
	if (!reg->key) {
		tef_registration_free(reg);
		return -EACCES;
	}
	r = seal_key_new(reg->key, reg->key_len, &key);
	if (r == 0) {
		*ret_min_version = reg->version;
		*ret_key = key;
		cache_put(fs, c, rkid, reg->key, reg->key_len, reg->version, reg->expiration);
	}
	tef_registration_free(reg);
	return r;
}

static int update(struct fs *fs, const struct caller *c, struct node *n,
		  const struct tef_update_req *u)
{
	struct tef_registration *reg = NULL;
	struct tef_identity id;
	int r;

	identity_of(c, &id);
	/* new targets or expiry: whoever opens next is decided by tefd again */
	cache_forget(fs, n->rkid);
	r = tef_update(fs->tef, &id, n->rkid, u, &reg, NULL);
	if (r < 0) {
		if (r == -EINVAL)
			return r;
		return open_errno(fs, r, "key registration update", n);
	}
	if (reg)
		node_adopt_registration(fs, n, reg);
	tef_registration_free(reg);
	return 0;
}

int keys_set_targets(struct fs *fs, const struct caller *c, struct node *n, const char *targets)
{
	_cleanup_free_ char *copy = strdup(targets);
	const char *list[TEF_MAX_TARGETS];
	size_t k = 0;
	char *save = NULL;

	if (!copy)
		return -ENOMEM;
	for (char *t = strtok_r(copy, ", \t\n", &save); t; t = strtok_r(NULL, ", \t\n", &save)) {
		if (k == ELEMENTSOF(list) || !tef_principal_is_valid(t))
			return -EINVAL;
		list[k++] = t;
	}
	struct tef_update_req u = { .set_targets = true, .targets = list, .n_targets = k };
	return update(fs, c, n, &u);
}

int keys_set_expires(struct fs *fs, const struct caller *c, struct node *n, int64_t when)
{
	struct tef_update_req u = { .set_expiration = true, .expiration = when };
	int r = update(fs, c, n, &u);

	if (r == 0) {
		pthread_mutex_lock(&fs->lock);
		/* the owner chose: no background renewal from now on */
		n->expires = n->key_expires ? n->key_expires : when;
		pthread_mutex_unlock(&fs->lock);
	}
	return r;
}

int keys_record_version(struct fs *fs, uid_t uid, gid_t gid, const char *rkid, uint64_t version)
{
	struct tef_identity id = { .uid = uid, .gid = gid };
	struct tef_update_req u = { .set_version = true, .version = version };
	int r;

	r = tef_update(fs->tef, &id, rkid, &u, NULL, NULL);
	if (r < 0)
		log_debug_errno(r, "cannot record version %" PRIu64 " with tefd", version);
	else if (fs->keys) {
		/* a cached answer is never older than what tefd now says */
		pthread_mutex_lock(&fs->keys->lock);
		for (struct cached *e = fs->keys->cache[bucket_of(rkid)]; e; e = e->next)
			if (strcmp(e->rkid, rkid) == 0 && e->min_version < version)
				e->min_version = version;
		pthread_mutex_unlock(&fs->keys->lock);
	}
	return r;
}

void keys_forget(struct fs *fs, const char *rkid)
{
	cache_forget(fs, rkid);
}

int keys_deregister(struct fs *fs, uid_t uid, gid_t gid, const char *rkid)
{
	struct tef_identity id = { .uid = uid, .gid = gid };
	int r;

	cache_forget(fs, rkid);
	r = tef_deregister(fs->tef, &id, rkid, NULL);
	if (r == -EACCES || r == -ENOENT)
		return 0; /* gone already, or no longer this owner's */
	/* tefd down: the caller retries, and the outage is logged once */
	if (r < 0 && !hcse_is_unreachable(r))
		log_warning_errno(r, "cannot de-register the key %.8s... of a removed file", rkid);
	return r;
}

int keys_register_rotation(struct fs *fs, struct node *n, struct tef_registration **ret)
{
	_cleanup_(reg_req_done) struct reg_req rr = { .label = NULL };
	_cleanup_free_ char *rkid = NULL;
	struct tef_registration *reg = NULL, *cur = NULL;
	const char *list[TEF_MAX_TARGETS];
	struct tef_identity id;
	size_t k = 0;
	int64_t expires;
	int r;

	pthread_mutex_lock(&fs->lock);
	/* on behalf of the owner, as at creation and as every update (attr.c) */
	id = (struct tef_identity){ .uid = n->uid, .gid = n->gid };
	rkid = n->rkid ? strdup(n->rkid) : NULL;
	expires = n->expires;
	pthread_mutex_unlock(&fs->lock);
	if (!rkid)
		return -ENOMEM;
	/* label, suid and expiry as at creation (reg_req_init) ... */
	r = reg_req_init(fs, id.uid, id.gid, suid_of(n), &rr);
	if (r < 0)
		return r;
	/* ... but the targets the old key has now, as tefd holds them: share=
	 * plus the owner's edits, and tefctl grants; a cache rebuilt from the
	 * HCSE does not know them (the owner may always retrieve; the key is
	 * wiped unused) */
	r = tef_retrieve(fs->tef, &id, rkid, &cur, NULL);
	if (r < 0)
		return open_errno(fs, r, "key retrieval for a rotation", n);
	for (size_t i = 0; i < cur->n_targets && k < ELEMENTSOF(list); i++)
		list[k++] = cur->targets[i];
	rr.req.targets = list;
	rr.req.n_targets = k;
	/* and the owner's own expiry, if set (renewed otherwise: uploader.c) */
	if (expires)
		rr.req.expiration = expires;
	r = tef_register(fs->tef, &id, &rr.req, &reg, NULL);
	tef_registration_free(cur);
	if (r < 0)
		return open_errno(fs, r, "key registration for a rotation", n);
	if (!reg->key || !reg->credential_id || !reg->relative_key_id) {
		_cleanup_free_ char *desc = fs_describe(fs, n->ino);

		if (reg->relative_key_id)
			keys_deregister(fs, id.uid, id.gid, reg->relative_key_id);
		tef_registration_free(reg);
		log_error("tefd registered a new key for %s but returned no key", desc);
		return -EIO;
	}
	*ret = reg;
	return 0;
}
