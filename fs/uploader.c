/* SPDX-License-Identifier: Apache-2.0 */
/* The uploader: pushes committed versions to the HCSE (segments, manifest, labels, then deletions), resuming from the index. */
#include <errno.h>
#include <stdatomic.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "atrest/cleanup.h"
#include "atrest/hcse_client.h"
#include "atrest/log.h"
#include "atrest/monotonic.h"
#include "atrest/outage.h"
#include "atrestfs.h"
#include "cache.h"

/* TS-0003 8.5: contentSecurity 1 says `con` is compact JOSE (DESIGN.md 4) */
#define CNF_JOSE "application/octet-stream:0:1"
#define BACKOFF_MIN_MS 200
#define BACKOFF_MAX_MS 30000
#define IDLE_MS 5000
#define YIELD_MAX_MS 2000
/* key renewal when key_ttl is not set: tefd's default is long; renew a week ahead */
#define RENEW_DEFAULT_TTL (30 * 86400)
#define RENEW_DEFAULT_AHEAD (7 * 86400)

struct uploader {
	struct fs *fs;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	atomic_bool stop; /* also read without the lock between requests */
	atomic_bool offline;
	bool kicked;
	bool ae_ok;
	unsigned backoff_ms;
	_Atomic uint64_t yield_until_ns; /* yield_to_io() waits no later in this pass */
	int64_t last_renewal;
	unsigned grace_ms;
};

void uploader_kick(struct uploader *u)
{
	if (!u)
		return;
	pthread_mutex_lock(&u->lock);
	u->kicked = true;
	pthread_cond_signal(&u->cond);
	pthread_mutex_unlock(&u->lock);
}

bool uploader_is_offline(struct uploader *u)
{
	return u && atomic_load(&u->offline);
}

/* Pushes the labels of a node as they are now; clears meta_dirty if nothing changed meanwhile. */
static int push_labels(struct fs *fs, uint64_t ino, bool create)
{
	char **labels = NULL;
	size_t n_labels = 0;
	_cleanup_free_ char *path = NULL;
	char rn[32];
	uint64_t seq;
	struct node *n;
	int r;

	pthread_mutex_lock(&fs->lock);
	n = ns_get(fs, ino);
	if (!n || n->unlinked) {
		pthread_mutex_unlock(&fs->lock);
		return -ENOENT;
	}
	node_rn(n, rn);
	path = remote_node_path(fs, n);
	r = path ? node_labels(n, n->remote_size, n->remote_version, &labels, &n_labels) : -ENOMEM;
	seq = n->meta_seq;
	pthread_mutex_unlock(&fs->lock);
	if (r < 0)
		return r;

	if (create) {
		r = hcse_create_container(fs->hcse, fs->ae_path, rn, (const char *const *)labels,
					  n_labels, NULL);
		if (r == -EEXIST)
			create = false;
	}
	if (!create)
		r = hcse_update_labels(fs->hcse, path, 3, (const char *const *)labels, n_labels, NULL);
	labels_free(labels, n_labels);
	if (r < 0)
		return r;

	pthread_mutex_lock(&fs->lock);
	n = ns_get(fs, ino);
	if (n) {
		n->remote_created = true;
		if (n->meta_seq == seq)
			n->meta_dirty = false;
		cache_node_save(fs->cache, n);
	}
	pthread_mutex_unlock(&fs->lock);
	return 0;
}

static bool stopping(const struct fs *fs);

void fs_note_io(struct fs *fs)
{
	atomic_store(&fs->last_io_ns, monotonic_ns());
}

/*
 * Uploads are background work: while applications read or write, wait a
 * little so they get the CPU first, until YIELD_MAX_MS into the pass (the
 * same moment for all its upload threads), so a constant load delays
 * uploads but never starves them.
 */
static void yield_to_io(struct fs *fs)
{
	struct uploader *u = fs->up;
	uint64_t now;

	while (u && !stopping(fs) && (now = monotonic_ns()) < atomic_load(&u->yield_until_ns)) {
		struct timespec d = { 0, 20000000 };

		if (now - atomic_load(&fs->last_io_ns) > 100000000)
			return;
		nanosleep(&d, NULL);
	}
}

/* Creates a contentInstance, replacing a stale one of the same name (left by a crash). */
static int put_cin(struct fs *fs, const char *parent, const char *rn, const char *con, size_t len)
{
	_cleanup_free_ char *path = NULL;
	int r;

	r = hcse_create_cin(fs->hcse, parent, rn, CNF_JOSE, con, len, NULL, 0, NULL);
	if (r != -EEXIST)
		return r;
	if (asprintf(&path, "%s/%s", parent, rn) < 0)
		return -ENOMEM;
	r = hcse_delete(fs->hcse, path, NULL);
	if (r < 0 && r != -ENOENT)
		return r;
	return hcse_create_cin(fs->hcse, parent, rn, CNF_JOSE, con, len, NULL, 0, NULL);
}

static bool stopping(const struct fs *fs)
{
	return fs->up && atomic_load(&fs->up->stop);
}

/* Sealed user.* attributes: a new xa<N> contentInstance, then the labels
 * point at it (meta_dirty), then the old one goes (gc, after the labels). */
static int push_xattrs(struct fs *fs, uint64_t ino, const char *path)
{
	_cleanup_free_ char *text = NULL, *old = NULL;
	uint64_t ver, rver;
	char rn[32];
	struct node *n;
	int r;

	pthread_mutex_lock(&fs->lock);
	n = ns_get(fs, ino);
	if (!n || n->xattrs_ver == n->xattrs_rver) {
		pthread_mutex_unlock(&fs->lock);
		return 0;
	}
	ver = n->xattrs_ver;
	rver = n->xattrs_rver;
	text = strdup(n->xattrs ? n->xattrs : "");
	pthread_mutex_unlock(&fs->lock);
	if (!text)
		return -ENOMEM;
	snprintf(rn, sizeof(rn), "xa%" PRIu64, ver);
	r = put_cin(fs, path, rn, text, strlen(text));
	if (r < 0)
		return r;
	pthread_mutex_lock(&fs->lock);
	n = ns_get(fs, ino);
	if (n) {
		n->xattrs_rver = ver;
		n->meta_dirty = true;
		n->meta_seq++;
		cache_node_save(fs->cache, n);
	}
	pthread_mutex_unlock(&fs->lock);
	if (rver && asprintf(&old, "%s/xa%" PRIu64, path, rver) >= 0)
		cache_gc_add(fs->cache, ino, 0, old);
	return 0;
}

static int sync_node(struct fs *fs, uint64_t ino)
{
	_cleanup_free_ char *path = NULL, *manifest = NULL;
	_cleanup_free_ uint64_t *idx = NULL, *gen = NULL;
	uint64_t remote_version, mver = 0, mlen = 0;
	size_t n_pending = 0, mlen_c = 0;
	bool created, meta_dirty;
	uid_t uid;
	gid_t gid;
	char rkid[128] = "";
	struct node *n;
	int r;

	yield_to_io(fs);
	pthread_mutex_lock(&fs->lock);
	n = ns_get(fs, ino);
	if (!n || n->unlinked) {
		pthread_mutex_unlock(&fs->lock);
		return 0;
	}
	path = remote_node_path(fs, n);
	created = n->remote_created;
	remote_version = n->remote_version;
	uid = n->uid;
	gid = n->gid;
	if (n->rkid)
		snprintf(rkid, sizeof(rkid), "%s", n->rkid);
	pthread_mutex_unlock(&fs->lock);
	if (!path)
		return -ENOMEM;

	if (!created) {
		r = push_labels(fs, ino, true);
		if (r < 0)
			return r == -ENOENT ? 0 : r;
	}

	r = cache_segs_pending(fs->cache, ino, &idx, &gen, &n_pending);
	if (r < 0)
		return r;
	for (size_t i = 0; i < n_pending; i++) {
		_cleanup_free_ char *con = NULL, *cin_path = NULL;
		char rn[64];
		size_t len;

		/* stopping: what is left stays queued for the next start */
		if (stopping(fs))
			return 0;
		yield_to_io(fs);
		r = cache_seg_read(fs->cache, ino, idx[i], gen[i], &con, &len);
		if (r == -ENOENT)
			continue; /* superseded meanwhile */
		if (r < 0)
			return r;
		snprintf(rn, sizeof(rn), ATREST_SEGMENT_RN_FMT, idx[i], gen[i]);
		r = put_cin(fs, path, rn, con, len);
		if (r < 0)
			return log_debug_errno(r, "upload of '%s/%s'", path, rn);
		r = cache_seg_uploaded(fs->cache, ino, idx[i], gen[i]);
		if (r == 0 && asprintf(&cin_path, "%s/%s", path, rn) >= 0) {
			/* superseded while it travelled: delete it after the newer version */
			pthread_mutex_lock(&fs->lock);
			n = ns_get(fs, ino);
			uint64_t after = n ? n->version : 0;
			pthread_mutex_unlock(&fs->lock);
			cache_gc_add(fs->cache, ino, after, cin_path);
		}
	}

	r = cache_manifest_get(fs->cache, ino, &mver, &mlen, &manifest, &mlen_c);
	if (r < 0 && r != -ENOENT)
		return r;
	if (r == 0 && mver > remote_version) {
		char rn[64];

		/* a commit that landed during this pass: its segments go first */
		if (cache_node_has_pending_segs(fs->cache, ino)) {
			uploader_kick(fs->up);
			return 0;
		}
		/* DESIGN.md 4: tefd keeps the latest version so a fresh reader detects
		 * a rollback by the HCSE. Recorded before the manifest goes up and
		 * retried with it: a manifest the HCSE holds but tefd never heard of
		 * could be rolled back unseen (found with tefd down during uploads). */
		/* recorded with the key that sealed it: a rotation may have come
		 * since rkid was read (rotate.c) */
		rotate_kid_rkid(manifest, mlen_c, rkid, sizeof(rkid));
		if (rkid[0]) {
			r = keys_record_version(fs, uid, gid, rkid, mver);
			if (r == -ECONNREFUSED || r == -EHOSTUNREACH || r == -ETIMEDOUT ||
			    r == -EAGAIN || r == -EIO)
				return log_debug_errno(r, "version %" PRIu64 " of '%s' not recorded at tefd",
						       mver, path);
			/* refused for good (the key was transferred or revoked behind the
			 * file's back): retrying cannot help; upload without the record */
			if (r < 0) {
				_cleanup_free_ char *desc = fs_describe(fs, ino);

				log_warning_errno(r,
						  "tefd refused version %" PRIu64 " of %s: its "
						  "rollback cannot be detected by readers with an "
						  "empty cache",
						  mver, desc);
			}
		}
		snprintf(rn, sizeof(rn), ATREST_MANIFEST_RN_FMT, mver);
		r = put_cin(fs, path, rn, manifest, mlen_c);
		if (r < 0)
			return log_debug_errno(r, "upload of '%s/%s'", path, rn);
		pthread_mutex_lock(&fs->lock);
		n = ns_get(fs, ino);
		if (n) {
			n->remote_version = mver;
			n->remote_size = mlen;
			n->meta_dirty = true;
			cache_node_save(fs->cache, n);
		}
		pthread_mutex_unlock(&fs->lock);
	}

	r = push_xattrs(fs, ino, path);
	if (r < 0)
		return r;

	pthread_mutex_lock(&fs->lock);
	n = ns_get(fs, ino);
	meta_dirty = n && n->meta_dirty;
	pthread_mutex_unlock(&fs->lock);
	if (meta_dirty) {
		r = push_labels(fs, ino, false);
		if (r == -ENOENT) {
			/* the container vanished (deleted by someone else): recreate it */
			r = push_labels(fs, ino, true);
		}
		if (r < 0)
			return r == -ENOENT ? 0 : r;
	}
	return 0;
}

/* Remote deletions that are due: superseded objects, removed nodes, released keys. */
static int run_gc(struct fs *fs)
{
	int64_t id = 0;
	int r;

	for (;;) {
		_cleanup_free_ char *path = NULL;

		r = cache_gc_next(fs->cache, (uint64_t)id, &id, &path);
		if (r == -ENOENT)
			return 0;
		if (r < 0)
			return r;
		if (strncmp(path, "!tef/", 5) == 0) {
			unsigned uid, gid;
			char rkid[128];

			/* kept queued while tefd is down, or the key would outlive its file */
			r = sscanf(path + 5, "%u/%u/%127s", &uid, &gid, rkid) == 3 ?
				    keys_deregister(fs, uid, gid, rkid) : 0;
			if (r < 0 && !hcse_is_unreachable(r))
				r = 0; /* refused for good: logged, dropped */
		} else {
			r = hcse_delete(fs->hcse, path, NULL);
			if (r == -ENOENT)
				r = 0;
		}
		if (hcse_is_unreachable(r))
			return r;
		if (r < 0)
			log_warning_errno(r, "cannot delete '%s' from the HCSE; dropping it", path);
		cache_gc_done(fs->cache, id);
	}
}

/*
 * Issue 5: a file's key lives as long as the file, unless its owner chose
 * an expiry (user.onem2m.expires). Registrations close to their end are
 * renewed on the owner's behalf.
 */
static void renew_keys(struct uploader *u)
{
	struct fs *fs = u->fs;
	int64_t now = (int64_t)time(NULL);
	int64_t ttl = fs->opt.key_ttl ? (int64_t)fs->opt.key_ttl : RENEW_DEFAULT_TTL;
	int64_t ahead = fs->opt.key_ttl ? ttl / 2 : RENEW_DEFAULT_AHEAD;
	struct due {
		uint64_t ino;
		uid_t uid;
		gid_t gid;
		char rkid[64];
	} due[64];
	size_t n = 0;

	if (now - u->last_renewal < (fs->opt.key_ttl && ttl < 60 ? 1 : 30))
		return;
	u->last_renewal = now;
	pthread_mutex_lock(&fs->lock);
	for (size_t b = 0; b < fs->n_buckets && n < ELEMENTSOF(due); b++)
		for (struct node *x = fs->by_ino[b]; x && n < ELEMENTSOF(due); x = x->h_ino_next)
			if (S_ISREG(x->mode) && !x->foreign && !x->unlinked && !x->expires &&
			    x->rkid && x->key_expires && x->key_expires - now < ahead &&
			    x->key_expires > now) {
				due[n] = (struct due){ .ino = x->ino, .uid = x->uid, .gid = x->gid };
				snprintf(due[n].rkid, sizeof(due[n].rkid), "%s", x->rkid);
				n++;
			}
	pthread_mutex_unlock(&fs->lock);

	for (size_t i = 0; i < n && !atomic_load(&u->stop); i++) {
		struct tef_identity id = { .uid = due[i].uid, .gid = due[i].gid };
		struct tef_update_req req = { .set_expiration = true, .expiration = now + ttl };
		struct tef_registration *reg = NULL;
		int r = tef_update(fs->tef, &id, due[i].rkid, &req, &reg, NULL);

		if (r < 0) {
			_cleanup_free_ char *desc = fs_describe(fs, due[i].ino);

			/* an outage is logged once by tefd's outage; renewal retries later */
			log_full_errno(outage_is_down(fs->tef_outage) ? LOG_DEBUG : LOG_WARNING, r,
				       "cannot renew the key of %s", desc);
			continue;
		}
		pthread_mutex_lock(&fs->lock);
		struct node *x = ns_get(fs, due[i].ino);
		if (x && reg) {
			x->key_expires = reg->expiration;
			cache_node_save(fs->cache, x);
		}
		pthread_mutex_unlock(&fs->lock);
		tef_registration_free(reg);
	}
}

/* Nodes of one pass, taken one at a time by the threads uploading them. */
struct upload_set {
	struct fs *fs;
	const uint64_t *inos;
	size_t n;
	atomic_size_t next;
	atomic_int unreachable; /* the first "HCSE unreachable" error: all stop */
};

static void *upload_worker(void *arg)
{
	struct upload_set *set = arg;
	size_t i;

	while (!atomic_load(&set->fs->up->stop) && !atomic_load(&set->unreachable) &&
	       (i = atomic_fetch_add(&set->next, 1)) < set->n) {
		int r = sync_node(set->fs, set->inos[i]), none = 0;

		if (hcse_is_unreachable(r))
			atomic_compare_exchange_strong(&set->unreachable, &none, r);
		else if (r < 0) {
			_cleanup_free_ char *desc = fs_describe(set->fs, set->inos[i]);

			log_warning_errno(r, "upload of %s failed; will retry", desc);
		}
	}
	return NULL;
}

/*
 * Uploads small files in parallel: each file's order (segments, then its
 * manifest, then its labels) is kept by the one thread that takes it; files
 * do not depend on each other (their containers are all under the AE).
 * hcsed commits the creates that arrive together with one fsync (group
 * commit), where one file after another waited for a round trip and an
 * fsync at each step. Only files of at most UPLOAD_PARALLEL_MAX go
 * together: each request must end within hcse_timeout, and four segments
 * of a megabyte sharing a slow uplink would each take four times as long
 * as one (a 4 Mbit/s link: 8 s against 2), failing the pass again and again.
 */
#define UPLOAD_PARALLEL_MAX (64 * 1024)

/* Uploads the nodes with `threads` threads (this one included), each node
 * by one; the first "HCSE unreachable" error, or 0. */
static int upload_nodes(struct fs *fs, const uint64_t *inos, size_t n, unsigned threads)
{
	struct upload_set set = { .fs = fs, .inos = inos, .n = n };
	pthread_t started_threads[UPLOADS_MAX];
	size_t started = 0, want = threads > n ? n : threads;

	for (; started + 1 < want && started < UPLOADS_MAX; started++)
		if (pthread_create(&started_threads[started], NULL, upload_worker, &set) != 0)
			break;
	upload_worker(&set);
	for (size_t i = 0; i < started; i++)
		pthread_join(started_threads[i], NULL);
	return atomic_load(&set.unreachable);
}

static int pass(struct uploader *u)
{
	struct fs *fs = u->fs;
	_cleanup_free_ uint64_t *inos = NULL;
	size_t n = 0;
	int r;

	atomic_store(&u->yield_until_ns, monotonic_ns() + (uint64_t)YIELD_MAX_MS * 1000000);
	/* after a failure this is also the probe: "resumed" is said as soon as the HCSE
	 * answers, not at the end of a pass that may take minutes (or never end: kill -9) */
	if (!u->ae_ok || u->backoff_ms) {
		r = remote_ensure_ae(fs);
		if (r < 0)
			return r;
		u->ae_ok = true;
		if (u->backoff_ms)
			log_debug("uploads resumed");
		u->backoff_ms = 0;
		atomic_store(&u->offline, false);
	}
	/* nothing goes up without the AE's lease (lease.c) */
	r = lease_renew(fs, false);
	if (r < 0)
		return r;
	r = cache_dirty_nodes(fs->cache, &inos, &n);
	if (r < 0)
		return r;
	/* small files first, several at once (moved to the head of inos); then
	 * the rest one after the other, in inode order */
	_cleanup_free_ uint64_t *rest = malloc((n ? n : 1) * sizeof(*rest));
	size_t n_small = 0, n_rest = 0;
	if (!rest)
		return -ENOMEM;
	pthread_mutex_lock(&fs->lock);
	for (size_t i = 0; i < n; i++) {
		struct node *node = ns_get(fs, inos[i]);

		if (node && S_ISREG(node->mode) && node->size <= UPLOAD_PARALLEL_MAX)
			inos[n_small++] = inos[i];
		else
			rest[n_rest++] = inos[i];
	}
	pthread_mutex_unlock(&fs->lock);
	r = upload_nodes(fs, inos, n_small, fs->opt.uploads);
	if (r == 0)
		r = upload_nodes(fs, rest, n_rest, 1);
	if (r < 0)
		return r;
	/* stopping: deletions, eviction and renewals wait for the next start */
	if (atomic_load(&u->stop))
		return 0;
	r = run_gc(fs);
	if (r < 0)
		return r;
	cache_evict(fs->cache);
	renew_keys(u);
	return 0;
}

static void wait_ms(struct uploader *u, unsigned ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (long)(ms % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	pthread_mutex_lock(&u->lock);
	while (!u->stop && !u->kicked)
		if (pthread_cond_timedwait(&u->cond, &u->lock, &ts) != 0)
			break;
	u->kicked = false;
	pthread_mutex_unlock(&u->lock);
}

static void *uploader_main(void *arg)
{
	struct uploader *u = arg;

	/* background work: the scheduler prefers the FUSE threads */
	setpriority(PRIO_PROCESS, (id_t)gettid(), 10);

	for (;;) {
		int r;

		pthread_mutex_lock(&u->lock);
		bool stop = u->stop;
		u->kicked = false;
		pthread_mutex_unlock(&u->lock);
		if (stop)
			break;
		r = pass(u);
		atomic_store(&u->offline, hcse_is_unreachable(r));
		if (r < 0) {
			/* retries with backoff; everything stays queued in the index */
			u->backoff_ms = u->backoff_ms ? u->backoff_ms * 2 : BACKOFF_MIN_MS;
			if (u->backoff_ms > BACKOFF_MAX_MS)
				u->backoff_ms = BACKOFF_MAX_MS;
			if (u->backoff_ms == BACKOFF_MIN_MS || u->backoff_ms == BACKOFF_MAX_MS)
				/* a peer's outage is logged once, by its outage (health.c) */
				log_full_errno(hcse_is_unreachable(r) || r == -EBUSY ? LOG_DEBUG
											: LOG_WARNING,
					       r,
					       "uploads failing; retrying in %u ms", u->backoff_ms);
			/* a kick does not shorten a backoff: sleep it out unless stopping */
			uint64_t end = monotonic_ns() + (uint64_t)u->backoff_ms * 1000000;
			do {
				wait_ms(u, 100);
				pthread_mutex_lock(&u->lock);
				stop = u->stop;
				pthread_mutex_unlock(&u->lock);
			} while (!stop && monotonic_ns() < end);
			continue;
		}
		/* short key or lease lifetimes need renewal passes more often than that */
		unsigned idle = IDLE_MS;
		for (unsigned k = 0; k < 2; k++) {
			uint64_t ttl = k ? u->fs->opt.ae_lease : u->fs->opt.key_ttl;

			if (ttl && ttl * 250 < idle)
				idle = (unsigned)ttl * 250;
		}
		wait_ms(u, idle);
	}
	return NULL;
}

int uploader_start(struct fs *fs, struct uploader **ret)
{
	_cleanup_free_ uint64_t *inos = NULL;
	size_t n = 0;
	struct uploader *u = calloc(1, sizeof(*u));
	int r;

	if (!u)
		return -ENOMEM;
	u->fs = fs;
	/* DESIGN.md 6: what an earlier run (even one killed) left queued is resumed, visibly */
	if (cache_dirty_nodes(fs->cache, &inos, &n) == 0 && n > 0)
		log_info("%zu %s awaiting upload at mount: uploading them", n,
			 n == 1 ? "file or directory" : "files and directories");
	pthread_mutex_init(&u->lock, NULL);
	pthread_cond_init(&u->cond, NULL);
	/* before the thread runs: it reaches itself through fs->up (yield_to_io) */
	*ret = u;
	r = -pthread_create(&u->thread, NULL, uploader_main, u);
	if (r < 0) {
		*ret = NULL;
		pthread_cond_destroy(&u->cond);
		pthread_mutex_destroy(&u->lock);
		free(u);
		return r;
	}
	return 0;
}

struct uploader *uploader_stop(struct uploader *u, unsigned grace_ms)
{
	if (!u)
		return NULL;
	/* a last chance to flush what is queued; whatever remains stays in the index */
	if (grace_ms && u->backoff_ms == 0) {
		_cleanup_free_ uint64_t *inos = NULL;
		size_t n = 0;
		uint64_t end = monotonic_ns() + (uint64_t)grace_ms * 1000000;

		for (;;) {
			uploader_kick(u);
			if (cache_dirty_nodes(u->fs->cache, &inos, &n) < 0 || n == 0)
				break;
			free(inos);
			inos = NULL;
			if (monotonic_ns() > end || u->backoff_ms)
				break;
			struct timespec d = { 0, 50000000 };
			nanosleep(&d, NULL);
		}
	}
	pthread_mutex_lock(&u->lock);
	u->stop = true;
	pthread_cond_signal(&u->cond);
	pthread_mutex_unlock(&u->lock);
	pthread_join(u->thread, NULL);
	pthread_cond_destroy(&u->cond);
	pthread_mutex_destroy(&u->lock);
	free(u);
	return NULL;
}
