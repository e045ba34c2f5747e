/* SPDX-License-Identifier: Apache-2.0 */
/* File contents: plaintext segments in memory while written, sealed segments in the cache, committed versions. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "atrest/cleanup.h"
#include "atrest/hcse_client.h"
#include "atrest/log.h"
#include "atrest/secmem.h"
#include "atrestfs.h"
#include "cache.h"

/* Segments fetched ahead of a reader that missed the cache. */
#define READAHEAD_SEGMENTS 8

void data_params(const struct node *n, const struct seal_key *key, struct seal_params *p)
{
	*p = (struct seal_params){
		.key = key,
		.kid = n->cred_id,
		.file_id = n->file_id,
		.protection = n->protection,
		.enc = SEAL_ENC_AUTO,
	};
}

/*
 * A key seals at most SEAL_MAX_SEALS objects (seal.h: random 96-bit IVs,
 * NIST SP 800-38D 8.3), whoever holds it: the count is the file's, kept in
 * the node and persisted ahead of use, so a crash can only overstate it.
 * From SEAL_ROTATE_SEALS the next commit rotates the key (rotate.c); only
 * if that keeps failing (tefd down) does sealing stop at the limit.
 */
int data_seal_count(struct fs *fs, struct node *n)
{
	int r;

	if (n->seals >= SEAL_MAX_SEALS) {
		_cleanup_free_ char *desc = fs_describe(fs, n->ino);

		return log_error_errno(-EDQUOT, "%s: its key made %" PRIu64
				       " seals, the limit; no new version can be sealed", desc,
				       n->seals);
	}
	if (n->seals == SEAL_ROTATE_SEALS) {
		_cleanup_free_ char *desc = fs_describe(fs, n->ino);

		log_warning("%s: its key made %" PRIu64 " seals: rotated at the next commit", desc,
			    n->seals);
	}
	pthread_mutex_lock(&fs->lock);
	if (n->seals >= n->seals_saved) {
		n->seals_saved = n->seals + DATA_SEALS_RESERVE;
		if (n->seals_saved > SEAL_MAX_SEALS)
			n->seals_saved = SEAL_MAX_SEALS;
		r = cache_node_save(fs->cache, n);
		if (r < 0) {
			n->seals_saved = n->seals;
			pthread_mutex_unlock(&fs->lock);
			_cleanup_free_ char *desc = fs_describe(fs, n->ino);

			return log_error_errno(r, "cannot record the seal count of %s", desc);
		}
	}
	pthread_mutex_unlock(&fs->lock);
	n->seals++;
	return 0;
}

/* Bytes past d->len are always zero (every shortening clears them), so
 * wiping len bytes wipes all. */
static void dseg_release(struct dseg *d, uint32_t seg_size)
{
	secmem_free_used(d->buf, seg_size, d->len);
	d->buf = NULL;
}

void data_drop(struct node *n)
{
	for (size_t i = 0; i < n->n_dirty; i++)
		dseg_release(&n->dirty[i], n->seg_size);
	n->n_dirty = 0;
	free(n->csegs);
	free(n->wsegs);
	n->csegs = n->wsegs = NULL;
	n->n_csegs = n->n_wsegs = 0;
}

static int segs_resize(struct seg **a, size_t *n, size_t want)
{
	struct seg *p;

	if (want <= *n)
		return 0;
	p = realloc(*a, want * sizeof(*p));
	if (!p)
		return -ENOMEM;
	memset(p + *n, 0, (want - *n) * sizeof(*p));
	*a = p;
	*n = want;
	return 0;
}

/* Logs a failed verification naming the resource (DESIGN.md 8) and returns -EIO. */
static int integrity_error(struct fs *fs, const struct node *n, const char *what, uint64_t idx,
			   int r)
{
	_cleanup_free_ char *desc = fs_describe(fs, n->ino);

	log_error_errno(r, "integrity check failed for %s %" PRIu64 " of %s (file id %s)", what,
			idx, desc, n->file_id);
	return -EIO;
}

/*
 * Loads the committed segment table: from the index when this cache
 * committed or fetched it, otherwise by fetching and verifying the latest
 * manifest from the HCSE (DESIGN.md 4: rollback checked against tefd's
 * version and the highest we saw).
 */
int data_prepare(struct fs *fs, struct node *n, const struct seal_key *key, uint64_t min_version)
{
	_cleanup_free_ char *compact = NULL;
	struct seal_manifest *m = NULL;
	struct seal_params p;
	struct seg *segs = NULL;
	size_t len, n_segs = 0;
	int r;

	if (n->wsegs || n->csegs)
		return 0;
	if (n->segs_known || n->version == 0) {
		r = cache_segs_load(fs->cache, n->ino, &segs, &n_segs);
		if (r < 0)
			return r;
		goto done;
	}

	r = remote_fetch_manifest(fs, n, n->version, &compact, &len);
	if (r < 0) {
		if (hcse_is_unreachable(r))
			return health_failed(fs, fs->hcse_outage, n->ino, "manifest fetch", r);
		return integrity_error(fs, n, "manifest", n->version, r);
	}
	data_params(n, key, &p);
	if (min_version < n->version)
		min_version = n->version;
	r = seal_manifest_open(&p, compact, len, min_version, &m);
	if (r < 0)
		return integrity_error(fs, n, "manifest", n->version, r);
	if (m->segment_size != n->seg_size && n->seg_size) {
		seal_manifest_free(m);
		return integrity_error(fs, n, "manifest", n->version, -EBADMSG);
	}
	n_segs = m->n_segments;
	segs = calloc(n_segs ? n_segs : 1, sizeof(*segs));
	if (!segs) {
		seal_manifest_free(m);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n_segs; i++) {
		segs[i].gen = m->segments[i].generation;
		segs[i].len = m->segments[i].length;
		segs[i].uploaded = true;
	}
	/* the authenticated copy wins over the plain labels */
	pthread_mutex_lock(&fs->lock);
	n->size = m->length;
	n->seg_size = m->segment_size;
	n->version = m->version;
	n->segs_known = true;
	rotate_adopt_seals(n, m->seals); /* a rebuilt cache counts on from the manifest */
	cache_node_save(fs->cache, n);
	pthread_mutex_unlock(&fs->lock);
	r = cache_manifest_put(fs->cache, n->ino, m->version, m->length, compact, len, segs, n_segs);
	seal_manifest_free(m);
	if (r < 0) {
		free(segs);
		return r;
	}
done:
	n->csegs = segs;
	n->n_csegs = n_segs;
	n->wsegs = NULL;
	n->n_wsegs = 0;
	if (n_segs) {
		n->wsegs = malloc(n_segs * sizeof(*segs));
		if (!n->wsegs)
			return -ENOMEM;
		memcpy(n->wsegs, segs, n_segs * sizeof(*segs));
		n->n_wsegs = n_segs;
	}
	return 0;
}

/* ---- sealer threads: a full segment is sealed while the next one fills ---- */

struct seal_job {
	struct fs *fs;
	struct node *n;
	const struct seal_key *key; /* the writing handle's: release waits for us */
	uint64_t idx, gen;
	uint8_t *buf;
	uint32_t len;
	struct seal_job *next;
};

static struct {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct seal_job *head, **tail;
	bool stop;
	pthread_t threads[4];
	unsigned n_threads;
} sealers = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, NULL, NULL, false, { 0 }, 0 };

static bool is_sealing(const struct node *n, uint64_t idx)
{
	for (unsigned i = 0; i < n->n_sealing; i++)
		if (n->sealing_idx[i] == idx)
			return true;
	return false;
}

/* Waits until no segment of n is being sealed (data_lock held); returns a sealer's error. */
static int wait_sealed(struct node *n)
{
	int r;

	while (n->n_sealing > 0)
		pthread_cond_wait(&n->seal_cond, &n->data_lock);
	r = n->seal_error;
	n->seal_error = 0;
	return r;
}

static void *sealer_main(void *arg)
{
	(void)arg;
	for (;;) {
		struct seal_job *j;
		_cleanup_free_ char *compact = NULL;
		struct seal_params p;
		size_t len;
		int r;

		pthread_mutex_lock(&sealers.lock);
		while (!sealers.head && !sealers.stop)
			pthread_cond_wait(&sealers.cond, &sealers.lock);
		j = sealers.head;
		if (j) {
			sealers.head = j->next;
			if (!sealers.head)
				sealers.tail = &sealers.head;
		}
		pthread_mutex_unlock(&sealers.lock);
		if (!j)
			return NULL;

		/* the node's identity fields do not change while it has writers */
		data_params(j->n, j->key, &p);
		r = seal_segment(&p, j->idx, j->gen, j->buf, j->len, &compact, &len);
		if (r == 0)
			r = cache_seg_write(j->fs->cache, j->n->ino, j->idx, j->gen, compact, len);
		if (r < 0) {
			_cleanup_free_ char *desc = fs_describe(j->fs, j->n->ino);

			log_error_errno(r, "cannot seal segment %" PRIu64 " of %s into the cache",
					j->idx, desc);
		}

		pthread_mutex_lock(&j->n->data_lock);
		struct node *n = j->n;
		if (r == 0)
			r = segs_resize(&n->wsegs, &n->n_wsegs, j->idx + 1);
		if (r == 0)
			n->wsegs[j->idx] = (struct seg){ .gen = j->gen, .len = j->len };
		else {
			/* the plaintext goes back to the dirty buffers (no one made
			 * another for idx meanwhile: they wait while it is sealing): the
			 * next flush seals it again, and a commit never takes the older
			 * segment still in wsegs for these bytes */
			if (n->n_dirty < NODE_MAX_DIRTY) {
				n->dirty[n->n_dirty++] = (struct dseg){ .idx = j->idx, .buf = j->buf,
									.len = j->len,
									.touched = ++n->touch_clock };
				j->buf = NULL;
			} else if (j->idx < n->n_wsegs)
				n->wsegs[j->idx] = (struct seg){ 0 }; /* lost: a hole, not old bytes */
			/* reported to the writes and the commit (which clears it) */
			if (!n->seal_error)
				n->seal_error = r;
		}
		for (unsigned i = 0; i < j->n->n_sealing; i++)
			if (j->n->sealing_idx[i] == j->idx) {
				j->n->sealing_idx[i] = j->n->sealing_idx[--j->n->n_sealing];
				break;
			}
		pthread_cond_broadcast(&j->n->seal_cond);
		pthread_mutex_unlock(&j->n->data_lock);
		secmem_free_used(j->buf, n->seg_size, j->len); /* as dseg_release */
		free(j);
	}
}

int data_sealers_start(unsigned threads)
{
	sealers.tail = &sealers.head;
	for (unsigned i = 0; i < threads && i < ELEMENTSOF(sealers.threads); i++) {
		if (pthread_create(&sealers.threads[i], NULL, sealer_main, NULL) != 0)
			break;
		sealers.n_threads++;
	}
	return sealers.n_threads ? 0 : -EAGAIN;
}

void data_sealers_stop(void)
{
	pthread_mutex_lock(&sealers.lock);
	sealers.stop = true;
	pthread_cond_broadcast(&sealers.cond);
	pthread_mutex_unlock(&sealers.lock);
	for (unsigned i = 0; i < sealers.n_threads; i++)
		pthread_join(sealers.threads[i], NULL);
	sealers.n_threads = 0;
}

/* Hands a full dirty segment to the sealers (data_lock held); synchronous without them. */
static int dirty_flush(struct fs *fs, struct node *n, const struct seal_key *key, struct dseg *d);
static struct dseg *dirty_find(struct node *n, uint64_t idx);
static int dirty_flush_async(struct fs *fs, struct node *n, const struct seal_key *key,
			     struct dseg *d)
{
	struct seal_job *j;
	uint64_t idx = d->idx, gen;
	int r;

	if (sealers.n_threads == 0)
		return dirty_flush(fs, n, key, d);
	/* backpressure: at most NODE_MAX_SEALING segments of plaintext in flight */
	while (n->n_sealing >= NODE_MAX_SEALING)
		pthread_cond_wait(&n->seal_cond, &n->data_lock);
	/* the wait dropped data_lock: another handle's flush or release may have
	 * committed (sealed and dropped) this segment and moved n->dirty[] and
	 * n->version meanwhile, so neither d nor the old generation holds */
	d = dirty_find(n, idx);
	if (!d)
		return 0;
	if (!rotate_key_is_current(n, key))
		return -EKEYREVOKED; /* rotated meanwhile: the handle asks for the new key */
	gen = n->version + 1;
	uint64_t pending = cache_pending_bytes(fs->cache) + (uint64_t)n->seg_size * (1 + n->n_sealing);
	for (size_t i = 0; i < n->n_wsegs; i++)
		if (n->wsegs[i].gen == gen)
			pending += n->wsegs[i].len;
	if (pending > fs->opt.cache_size)
		return health_cache_full(fs, n->ino);
	r = data_seal_count(fs, n);
	if (r < 0)
		return r;
	j = calloc(1, sizeof(*j));
	if (!j)
		return -ENOMEM;
	*j = (struct seal_job){ .fs = fs, .n = n, .key = key, .idx = d->idx, .gen = gen,
				.buf = d->buf, .len = d->len };
	n->sealing_idx[n->n_sealing++] = d->idx;
	d->buf = NULL;
	*d = n->dirty[--n->n_dirty];
	pthread_mutex_lock(&sealers.lock);
	*sealers.tail = j;
	sealers.tail = &j->next;
	pthread_cond_signal(&sealers.cond);
	pthread_mutex_unlock(&sealers.lock);
	return 0;
}

/* Reads and verifies one sealed segment (cache first, then the HCSE) into out. */
static int load_sealed(struct fs *fs, struct node *n, const struct seal_key *key, uint64_t idx,
		       uint64_t gen, uint32_t want_len, uint8_t *out)
{
	_cleanup_free_ char *compact = NULL;
	struct seal_params p;
	size_t len, plain_len;
	bool fetched = false;
	int r;

	if (!rotate_key_is_current(n, key))
		return -EKEYREVOKED;
	r = cache_seg_read(fs->cache, n->ino, idx, gen, &compact, &len);
	if (r == -ENOENT && prefetch_wait(fs->pf, n->ino, idx, gen))
		r = cache_seg_read(fs->cache, n->ino, idx, gen, &compact, &len);
	if (r == -ENOENT) {
		r = remote_fetch_segment(fs, n, idx, gen, &compact, &len);
		if (r < 0) {
			if (hcse_is_unreachable(r))
				return health_failed(fs, fs->hcse_outage, n->ino,
						     "uncached segment read", r);
			return integrity_error(fs, n, "segment", idx, r);
		}
		fetched = true;
	} else if (r < 0) {
		_cleanup_free_ char *desc = fs_describe(fs, n->ino);

		log_error_errno(r, "cannot read cached segment %" PRIu64 " of %s", idx, desc);
		return -EIO;
	}

	data_params(n, key, &p);
	r = seal_open_segment(&p, idx, gen, compact, len, out, n->seg_size, &plain_len);
	if (r < 0)
		return integrity_error(fs, n, "segment", idx, r);
	if (plain_len != want_len)
		return integrity_error(fs, n, "segment", idx, SEAL_E_TRUNCATED);
	/* a sequential reader will want the next ones: fetch them in parallel */
	for (uint64_t k = idx + 1; k <= idx + READAHEAD_SEGMENTS && k < n->n_wsegs; k++) {
		uint64_t g = n->wsegs[k].gen;

		if (g && g <= n->version && !cache_seg_exists(fs->cache, n->ino, k, g))
			prefetch_queue(fs->pf, n->ino, k, g);
	}
	if (fetched) {
		/* verified: worth keeping (clean, evictable) */
		if (cache_seg_keep(fs->cache, n->ino, idx, gen, compact, len) == 0) {
			cache_seg_cached(fs->cache, n->ino, idx, gen, len);
			uploader_kick(fs->up); /* its pass keeps the cache bounded */
		}
	}
	return 0;
}

static struct dseg *dirty_find(struct node *n, uint64_t idx)
{
	for (size_t i = 0; i < n->n_dirty; i++)
		if (n->dirty[i].idx == idx)
			return &n->dirty[i];
	return NULL;
}

/* Seals a dirty segment into the cache as part of the version being built. */
static int dirty_flush(struct fs *fs, struct node *n, const struct seal_key *key, struct dseg *d)
{
	_cleanup_free_ char *compact = NULL;
	struct seal_params p;
	uint64_t gen = n->version + 1;
	size_t len;
	int r;

	if (!rotate_key_is_current(n, key))
		return -EKEYREVOKED;
	/* pending segments are never evicted: bound them (issue 5), counting
	 * this file's sealed but not yet committed ones too */
	uint64_t pending = cache_pending_bytes(fs->cache) + n->seg_size;
	for (size_t i = 0; i < n->n_wsegs; i++)
		if (n->wsegs[i].gen == gen)
			pending += n->wsegs[i].len;
	if (pending > fs->opt.cache_size)
		return health_cache_full(fs, n->ino);
	r = data_seal_count(fs, n);
	if (r < 0)
		return r;
	data_params(n, key, &p);
	r = seal_segment(&p, d->idx, gen, d->buf, d->len, &compact, &len);
	if (r == 0)
		r = cache_seg_write(fs->cache, n->ino, d->idx, gen, compact, len);
	if (r < 0) {
		_cleanup_free_ char *desc = fs_describe(fs, n->ino);

		return log_error_errno(r, "cannot seal segment %" PRIu64 " of %s into the cache",
				       d->idx, desc);
	}
	r = segs_resize(&n->wsegs, &n->n_wsegs, d->idx + 1);
	if (r < 0)
		return r;
	n->wsegs[d->idx] = (struct seg){ .gen = gen, .len = d->len };
	dseg_release(d, n->seg_size);
	*d = n->dirty[--n->n_dirty];
	return 0;
}

int plain_alloc_error(size_t size)
{
	int e = errno;

	/* loud: a full RLIMIT_MEMLOCK is a configuration error, not a hiccup */
	log_error_errno(-e, "cannot lock %zu bytes for plaintext (%zu locked; raise RLIMIT_MEMLOCK,"
			" e.g. LimitMEMLOCK= in the mount unit)", size, secmem_locked_bytes());
	return -ENOMEM;
}

/* The dirty buffer for segment idx, loading what is already there. */
static int dirty_get(struct fs *fs, struct node *n, const struct seal_key *key, uint64_t idx,
		     bool whole, struct dseg **ret)
{
	struct dseg *d = dirty_find(n, idx);
	uint8_t *buf;
	int r;

	if (d) {
		d->touched = ++n->touch_clock;
		*ret = d;
		return 0;
	}
	if (n->n_dirty == NODE_MAX_DIRTY) {
		/* bounded memory: seal the least recently written one */
		struct dseg *old = &n->dirty[0];
		for (size_t i = 1; i < n->n_dirty; i++)
			if (n->dirty[i].touched < old->touched)
				old = &n->dirty[i];
		r = dirty_flush(fs, n, key, old);
		if (r < 0)
			return r;
	}
	/* plaintext: locked, never swapped (issue 5: it never reaches a disk) */
	buf = secmem_alloc(n->seg_size);
	if (!buf)
		return plain_alloc_error(n->seg_size);
	uint32_t len = 0;
	if (idx < n->n_wsegs && n->wsegs[idx].gen) {
		len = n->wsegs[idx].len;
		if (!whole) {
			r = load_sealed(fs, n, key, idx, n->wsegs[idx].gen, len, buf);
			if (r < 0) {
				secmem_free(buf, n->seg_size);
				return r;
			}
		}
	}
	d = &n->dirty[n->n_dirty++];
	*d = (struct dseg){ .idx = idx, .buf = buf, .len = len, .touched = ++n->touch_clock };
	*ret = d;
	return 0;
}

int data_write(struct fs *fs, struct handle *h, const char *in, size_t size, off_t off)
{
	struct node *n = h->node;
	uint64_t pos = (uint64_t)off, end = pos + size;
	size_t done = 0;
	int r;

	/* a sealer failed: writes fail until a commit (close, fsync) reports it */
	if (n->seal_error)
		return n->seal_error;
	fs_note_io(fs);
	while (done < size) {
		uint64_t idx = pos / n->seg_size;
		uint32_t in_off = (uint32_t)(pos % n->seg_size);
		size_t chunk = n->seg_size - in_off;
		struct dseg *d;

		if (chunk > size - done)
			chunk = size - done;
		while (is_sealing(n, idx))
			pthread_cond_wait(&n->seal_cond, &n->data_lock);
		/* a segment overwritten from its start to its end (or to EOF) needs no load */
		bool whole = in_off == 0 &&
			     (chunk == n->seg_size || pos + chunk >= n->size);
		r = dirty_get(fs, n, h->key, idx, whole, &d);
		if (r < 0)
			return r;
		if (whole && d->len > chunk && chunk != n->seg_size) {
			/* cannot happen: whole implies the segment ends at or before EOF */
			memset(d->buf + chunk, 0, d->len - chunk);
		}
		memcpy(d->buf + in_off, in + done, chunk);
		if (in_off + chunk > d->len)
			d->len = (uint32_t)(in_off + chunk);
		done += chunk;
		pos += chunk;
		/* the waits for the sealers drop data_lock: what is copied must be part
		 * of the file by then, or a commit by another handle meanwhile would
		 * cut the sealed segments off and later ones would find holes there */
		pthread_mutex_lock(&fs->lock);
		if (pos > n->size)
			n->size = pos;
		pthread_mutex_unlock(&fs->lock);
		n->content_dirty = true;
		/* sequential writers fill a segment and move on: seal it now */
		if (d->len == n->seg_size && in_off + chunk == n->seg_size) {
			r = dirty_flush_async(fs, n, h->key, d);
			if (r < 0)
				return r;
		}
	}
	pthread_mutex_lock(&fs->lock);
	if (end > n->size)
		n->size = end;
	node_touch(n, true, true, false);
	pthread_mutex_unlock(&fs->lock);
	n->content_dirty = true;
	n->content_seq++;
	return 0;
}

/*
 * Plaintext of segment idx into buf (seg_size bytes, zero beyond the data).
 * *hi: how many leading bytes of buf may be non-zero, before and after;
 * only those are cleared, so a small file does not cost a whole segment.
 */
static int segment_plain(struct fs *fs, struct node *n, const struct seal_key *key, uint64_t idx,
			 uint8_t *buf, uint32_t *ret_len, uint32_t *hi)
{
	struct dseg *d = dirty_find(n, idx);
	uint32_t len = 0;
	int r = 0;

	if (d) {
		len = d->len;
		memcpy(buf, d->buf, len);
	} else if (idx < n->n_wsegs && n->wsegs[idx].gen) {
		len = n->wsegs[idx].len;
		r = load_sealed(fs, n, key, idx, n->wsegs[idx].gen, len, buf);
	} /* else a hole reads as zeros */
	if (r < 0) {
		*hi = n->seg_size; /* whatever was written: the next use clears it all */
		return r;
	}
	if (*hi > len)
		memset(buf + len, 0, *hi - len);
	*hi = len;
	*ret_len = len;
	return 0;
}

int data_read(struct fs *fs, struct handle *h, char *out, size_t size, off_t off, size_t *ret_len)
{
	struct node *n = h->node;
	uint64_t pos = (uint64_t)off, fsize;
	size_t done = 0;
	int r;

	fs_note_io(fs);
	pthread_mutex_lock(&fs->lock);
	fsize = n->size;
	pthread_mutex_unlock(&fs->lock);
	if (pos >= fsize) {
		*ret_len = 0;
		return 0;
	}
	if (size > fsize - pos)
		size = (size_t)(fsize - pos);
	if (!h->rc_buf) {
		h->rc_buf = secmem_alloc(n->seg_size);
		if (!h->rc_buf)
			return plain_alloc_error(n->seg_size);
		h->rc_hi = 0;
	}
	while (done < size) {
		uint64_t idx = pos / n->seg_size;
		uint32_t in_off = (uint32_t)(pos % n->seg_size);
		size_t chunk = n->seg_size - in_off;

		if (chunk > size - done)
			chunk = size - done;
		if (is_sealing(n, idx)) {
			while (is_sealing(n, idx))
				pthread_cond_wait(&n->seal_cond, &n->data_lock);
			/* the wait dropped data_lock: a truncate may have cut the file
			 * meanwhile; bytes past its end now would be zeros no version held */
			pthread_mutex_lock(&fs->lock);
			fsize = n->size;
			pthread_mutex_unlock(&fs->lock);
			if (pos >= fsize)
				break;
			if ((uint64_t)off + size > fsize)
				size = (size_t)(fsize - (uint64_t)off);
			if (chunk > size - done)
				chunk = size - done;
		}
		if (!h->rc_valid || h->rc_idx != idx || h->rc_gen_seq != n->content_seq) {
			h->rc_valid = false;
			r = segment_plain(fs, n, h->key, idx, h->rc_buf, &h->rc_len, &h->rc_hi);
			if (r < 0)
				return r;
			h->rc_idx = idx;
			h->rc_gen_seq = n->content_seq;
			h->rc_valid = true;
			if (idx < n->n_wsegs && n->wsegs[idx].gen && !dirty_find(n, idx))
				cache_seg_touch(fs->cache, n->ino, idx, n->wsegs[idx].gen);
		}
		memcpy(out + done, h->rc_buf + in_off, chunk);
		done += chunk;
		pos += chunk;
	}
	*ret_len = done;
	return 0;
}

int data_truncate(struct fs *fs, struct node *n, const struct seal_key *key, uint64_t size)
{
	uint64_t old;
	int r;

	r = wait_sealed(n);
	if (r < 0)
		return r;
	pthread_mutex_lock(&fs->lock);
	old = n->size;
	pthread_mutex_unlock(&fs->lock);
	if (size < old) {
		uint64_t keep = (size + n->seg_size - 1) / n->seg_size;

		/* segments wholly past the end go; the last is cut in memory */
		for (size_t i = 0; i < n->n_dirty;) {
			if (n->dirty[i].idx >= keep) {
				dseg_release(&n->dirty[i], n->seg_size);
				n->dirty[i] = n->dirty[--n->n_dirty];
			} else
				i++;
		}
		for (uint64_t i = keep; i < n->n_wsegs; i++) {
			if (n->wsegs[i].gen == n->version + 1)
				cache_seg_unlink(fs->cache, n->ino, i, n->wsegs[i].gen);
			n->wsegs[i] = (struct seg){ 0 };
		}
		if (size % n->seg_size) {
			uint64_t idx = size / n->seg_size;
			uint32_t cut = (uint32_t)(size % n->seg_size);
			struct dseg *d;

			r = dirty_get(fs, n, key, idx, false, &d);
			if (r < 0)
				return r;
			if (d->len > cut) {
				memset(d->buf + cut, 0, d->len - cut);
				d->len = cut;
			}
		}
	}
	pthread_mutex_lock(&fs->lock);
	n->size = size;
	node_touch(n, true, true, false);
	pthread_mutex_unlock(&fs->lock);
	n->content_dirty = true;
	n->content_seq++;
	return 0;
}

int data_commit(struct fs *fs, struct node *n, const struct seal_key *key, bool durable)
{
	_cleanup_free_ char *compact = NULL;
	struct seal_manifest *m = NULL;
	struct seal_params p;
	char **gc = NULL;
	size_t n_gc = 0, len, n_segs;
	uint64_t size, newver, batch = 0;
	int r;

	/* every segment handed to a sealer is in the cache before the manifest */
	r = wait_sealed(n);
	if (r < 0)
		return r;
	/* not before: the wait dropped data_lock, and another handle may have committed */
	newver = n->version + 1;
	if (!n->content_dirty) {
		if (durable)
			return cache_sync(fs->cache);
		return 0;
	}
	if (!rotate_key_is_current(n, key))
		return -EKEYREVOKED;
	/* DESIGN.md 4: the key is rotated long before 2^32 seals */
	if (rotate_is_due(n)) {
		r = rotate_commit(fs, n, key);
		if (r != -EAGAIN)
			return r;
	}
	pthread_mutex_lock(&fs->lock);
	size = n->size;
	pthread_mutex_unlock(&fs->lock);
	n_segs = (size + n->seg_size - 1) / n->seg_size;

	/* the manifest lists every segment at its exact length (seal.h):
	 * materialise holes and short segments, then seal what is in memory */
	for (uint64_t idx = 0; idx < n_segs; idx++) {
		uint32_t want = (uint32_t)((idx + 1 < n_segs) ? n->seg_size : size - idx * n->seg_size);
		struct dseg *d = dirty_find(n, idx);

		if (!d && idx < n->n_wsegs && n->wsegs[idx].gen && n->wsegs[idx].len == want)
			continue;
		if (!d) {
			bool hole = idx >= n->n_wsegs || !n->wsegs[idx].gen;
			r = dirty_get(fs, n, key, idx, hole, &d);
			if (r < 0)
				return r;
		}
		if (d->len > want) /* keeps bytes past len zero (dseg_release) */
			memset(d->buf + want, 0, d->len - want);
		d->len = want;
		r = dirty_flush(fs, n, key, d);
		if (r < 0)
			return r;
	}
	while (n->n_dirty > 0) {
		/* dirty segments past the end were dropped by truncate; any left is inside */
		r = dirty_flush(fs, n, key, &n->dirty[0]);
		if (r < 0)
			return r;
	}
	r = segs_resize(&n->wsegs, &n->n_wsegs, n_segs);
	if (r < 0)
		return r;
	/* DESIGN.md 6: the segments are on disk before an index naming them */
	r = cache_segs_sync(fs->cache, n->ino, n->wsegs, n_segs, newver);
	if (r < 0)
		return log_error_errno(r, "cannot sync the segments of inode %" PRIu64, n->ino);

	r = seal_manifest_new(n_segs, &m);
	if (r < 0)
		return r;
	data_manifest_meta(fs, n, newver, size, m);
	for (size_t i = 0; i < n_segs; i++) {
		m->segments[i].generation = n->wsegs[i].gen;
		m->segments[i].length = n->wsegs[i].len;
	}
	r = data_seal_count(fs, n);
	if (r == 0) {
		m->seals = n->seals; /* this manifest included */
		data_params(n, key, &p);
		r = seal_manifest_seal(&p, m, &compact, &len);
	}
	seal_manifest_free(m);
	if (r < 0) {
		_cleanup_free_ char *desc = fs_describe(fs, n->ino);

		return log_error_errno(r, "cannot seal the manifest of %s", desc);
	}

	/* what the new version supersedes: remote copies go after it is acknowledged */
	gc = calloc(n->n_csegs + 1, sizeof(char *));
	if (!gc)
		return -ENOMEM;
	_cleanup_free_ char *base = remote_node_path(fs, n);
	if (!base) {
		free(gc);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n->n_csegs; i++) {
		if (!n->csegs[i].gen || (i < n_segs && n->wsegs[i].gen == n->csegs[i].gen))
			continue;
		if (asprintf(&gc[n_gc], "%s/" ATREST_SEGMENT_RN_FMT, base, (uint64_t)i, n->csegs[i].gen) < 0)
			break;
		n_gc++;
	}
	if (n->version > 0 && asprintf(&gc[n_gc], "%s/" ATREST_MANIFEST_RN_FMT, base, n->version) >= 0)
		n_gc++;

	pthread_mutex_lock(&fs->lock);
	n->version = newver;
	n->size = size;
	n->segs_known = true;
	r = cache_commit(fs->cache, n, n->wsegs, n_segs, compact, len, gc, n_gc, &batch);
	pthread_mutex_unlock(&fs->lock);
	for (size_t i = 0; i < n_gc; i++)
		free(gc[i]);
	free(gc);
	if (r < 0) {
		_cleanup_free_ char *desc = fs_describe(fs, n->ino);

		n->version = newver - 1;
		return log_error_errno(r, "cannot commit version %" PRIu64 " of %s", newver, desc);
	}
	/* close() and fsync() return once the version survives a power loss
	 * (DESIGN.md 6), and only then may the files it supersedes go */
	int durable_r = cache_wait_durable(fs->cache, batch);
	if (durable_r < 0)
		log_error_errno(durable_r, "version %" PRIu64 " of inode %" PRIu64 " is not durable",
				newver, n->ino);
	/* superseded files in the cache go now; their remote copies later */
	for (size_t i = 0; i < n->n_csegs && durable_r == 0; i++)
		if (n->csegs[i].gen && !(i < n_segs && n->wsegs[i].gen == n->csegs[i].gen))
			cache_seg_unlink(fs->cache, n->ino, i, n->csegs[i].gen);
	free(n->csegs);
	n->csegs = malloc((n_segs ? n_segs : 1) * sizeof(struct seg));
	if (!n->csegs) {
		n->n_csegs = 0;
		return -ENOMEM;
	}
	if (n_segs)
		memcpy(n->csegs, n->wsegs, n_segs * sizeof(struct seg));
	n->n_csegs = n_segs;
	n->n_wsegs = n_segs;
	n->content_dirty = false;
	uploader_kick(fs->up);
	return durable_r;
}

int data_segment_plain(struct fs *fs, struct node *n, const struct seal_key *key, uint64_t idx,
		       uint8_t *buf, uint32_t *ret_len, uint32_t *hi)
{
	return segment_plain(fs, n, key, idx, buf, ret_len, hi);
}

void data_manifest_meta(struct fs *fs, const struct node *n, uint64_t version, uint64_t size,
			struct seal_manifest *m)
{
	pthread_mutex_lock(&fs->lock);
	m->version = version;
	m->length = size;
	m->segment_size = n->seg_size;
	m->mode = n->mode;
	m->uid = n->uid;
	m->gid = n->gid;
	m->mtime_ns = (int64_t)n->mtime.tv_sec * 1000000000 + n->mtime.tv_nsec;
	m->ctime_ns = (int64_t)n->ctime.tv_sec * 1000000000 + n->ctime.tv_nsec;
	pthread_mutex_unlock(&fs->lock);
}
