/* SPDX-License-Identifier: Apache-2.0 */
/* Key rotation: a file's key is replaced by a new one long before 2^32 seals (DESIGN.md 4). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "atrest/cleanup.h"
#include "atrest/log.h"
#include "atrest/monotonic.h"
#include "atrest/secmem.h"
#include "atrestfs.h"
#include "cache.h"

/*
 * NIST SP 800-38D 8.3: with random 96-bit IVs a key must not seal more than
 * 2^32 objects. From SEAL_ROTATE_SEALS (2^30) the next commit of the file
 * (close, fsync) is a rotation:
 *
 *  1. a new key is registered at tefd for the file's owner, with the targets
 *     and expiry policy the old one has now;
 *  2. every segment of the new version is re-sealed under it (the old ones
 *     read and verified with the old key first), as generation = the new
 *     version, which is the old one + 2: the uncommitted segments sealed
 *     under the old key as version + 1 stay untouched until the commit, so a
 *     failure anywhere leaves the file as it was; the sealed user.*
 *     attributes are re-sealed too;
 *  3. the manifest is sealed under the new key and committed in one index
 *     transaction with the new Credential-Id and a seal count restarting
 *     from what the new key sealed;
 *  4. the old key stays registered until hcsed acknowledged the new version:
 *     its de-registration is queued like a superseded segment (uploader.c
 *     runs it once remote_version reaches the new version), so after a crash
 *     the index names either the old version and key or the new ones, and
 *     hcsed holds a version whose key exists until the new one is safe.
 *
 * A failure (tefd or hcsed down, a segment that does not verify) leaves
 * everything as it was: the commit goes on under the old key, which keeps
 * counting toward SEAL_MAX_SEALS (EDQUOT), and the rotation is tried again
 * after ROTATE_RETRY_S.
 *
 * Handles opened before a rotation hold the old key: data.c refuses to seal
 * or open with it (-EKEYREVOKED, by a fingerprint of the new key), and the
 * handle asks tefd for the new key on behalf of the caller that opened it
 * (DESIGN.md 8: a key released for one caller never serves another).
 */
#define ROTATE_RETRY_S 30

/* Credential-Ids and relativeKeyIDs a node had: readers outside data_lock may still hold them. */
struct retired {
	struct retired *next;
	char *cred_id, *rkid;
};

static void key_fingerprint(const struct seal_key *key, uint8_t out[16])
{
	crypto_generichash(out, 16, seal_key_bytes(key), seal_key_len(key), NULL, 0);
}

bool rotate_key_is_current(const struct node *n, const struct seal_key *key)
{
	uint8_t fp[16];

	if (!n->key_fp_set || !key)
		return true;
	key_fingerprint(key, fp);
	return sodium_memcmp(fp, n->key_fp, sizeof(fp)) == 0;
}

void rotate_key_adopt(struct node *n, const struct seal_key *key)
{
	key_fingerprint(key, n->key_fp);
	n->key_fp_set = true;
}

void rotate_adopt_seals(struct node *n, uint64_t manifest_seals)
{
	uint64_t seals = manifest_seals ? manifest_seals : SEAL_ROTATE_SEALS;

	if (n->seals < seals)
		n->seals = seals;
	if (n->seals_saved < n->seals)
		n->seals_saved = n->seals;
}

bool rotate_is_due(const struct node *n)
{
	return n->seals >= SEAL_ROTATE_SEALS && n->rkid && !n->foreign &&
	       (n->rotate_retry == 0 || monotonic_s() >= n->rotate_retry);
}

void rotate_node_free(struct node *n)
{
	struct retired *r = n->retired;

	while (r) {
		struct retired *next = r->next;

		free(r->cred_id);
		free(r->rkid);
		free(r);
		r = next;
	}
	n->retired = NULL;
}

void rotate_kid_rkid(const char *compact, size_t len, char *buf, size_t size)
{
	_cleanup_free_ char *kid = NULL;
	char *at;

	/* TS-0003 10.3.5: Credential-Id = <relativeKeyID>@<fqdn> */
	if (seal_peek_kid(compact, len, &kid) < 0 || !(at = strchr(kid, '@')))
		return;
	if ((size_t)(at - kid) < size) {
		memcpy(buf, kid, (size_t)(at - kid));
		buf[at - kid] = '\0';
	}
}

/*
 * The sealed user.* attributes (xattr.c: "enc=compact" lines, each bound to
 * "<file id>/xattr/<name>") opened with the old key and sealed under the new
 * one. buf: segment_size bytes of locked memory (a value is at most 4 KiB).
 */
static int reseal_xattrs(struct node *n, const struct seal_key *key, const struct seal_params *np,
			 const char *list, uint8_t *buf, uint64_t *seals, char **ret)
{
	size_t cap = 1, used = 0;
	char *out = calloc(1, cap);

	if (!out)
		return -ENOMEM;
	for (const char *p = list; p && *p;) {
		const char *e = strchr(p, '\n'), *eq;
		size_t len = e ? (size_t)(e - p) : strlen(p);
		_cleanup_free_ char *enc = NULL, *name = NULL, *fid = NULL, *compact = NULL;
		struct seal_params op;
		size_t plen = 0, clen;
		int r;

		eq = memchr(p, '=', len);
		if (!eq) {
			free(out);
			return -EBADMSG;
		}
		enc = strndup(p, (size_t)(eq - p));
		name = enc ? name_decode(enc) : NULL;
		if (!name || asprintf(&fid, "%s/xattr/%s", n->file_id, name) < 0) {
			fid = NULL;
			free(out);
			return -ENOMEM;
		}
		data_params(n, key, &op);
		op.file_id = fid;
		r = seal_open_segment(&op, 0, 1, eq + 1, len - (size_t)(eq - p) - 1, buf,
				      n->seg_size, &plen);
		if (r == 0) {
			struct seal_params q = *np;

			q.file_id = fid;
			r = seal_segment(&q, 0, 1, buf, plen, &compact, &clen);
			(*seals)++;
		}
		sodium_memzero(buf, plen);
		if (r == 0) {
			size_t need = used + strlen(enc) + clen + 3;
			char *grown = need > cap ? realloc(out, need) : out;

			if (!grown)
				r = -ENOMEM;
			else {
				out = grown;
				cap = need > cap ? need : cap;
				used += (size_t)sprintf(out + used, "%s=%s\n", enc, compact);
			}
		}
		if (r < 0) {
			free(out);
			return r;
		}
		p += len + (e ? 1 : 0);
	}
	*ret = out;
	return 0;
}

/* Remote objects the rotated version supersedes (all of the old one) and the old key. */
static int superseded(struct fs *fs, const struct node *n, char ***ret, size_t *ret_n)
{
	_cleanup_free_ char *base = remote_node_path(fs, n);
	char **gc = calloc(n->n_csegs + 2, sizeof(char *));
	size_t k = 0;
	int r = 0;

	if (!gc || !base) {
		free(gc);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n->n_csegs && r == 0; i++)
		if (n->csegs[i].gen && asprintf(&gc[k++], "%s/" ATREST_SEGMENT_RN_FMT, base,
						(uint64_t)i, n->csegs[i].gen) < 0)
			r = -ENOMEM;
	if (r == 0 && n->version > 0 &&
	    asprintf(&gc[k++], "%s/" ATREST_MANIFEST_RN_FMT, base, n->version) < 0)
		r = -ENOMEM;
	/* uploader.c run_gc: de-registered once hcsed holds the new version */
	if (r == 0 &&
	    asprintf(&gc[k++], "!tef/%u/%u/%s", (unsigned)n->uid, (unsigned)n->gid, n->rkid) < 0)
		r = -ENOMEM;
	if (r < 0) {
		gc[--k] = NULL; /* asprintf left it undefined */
		for (size_t i = 0; i < k; i++)
			free(gc[i]);
		free(gc);
		return r;
	}
	*ret = gc;
	*ret_n = k;
	return 0;
}

static void strv_free(char **v, size_t n)
{
	for (size_t i = 0; v && i < n; i++)
		free(v[i]);
	free(v);
}

/* What the index and the node held before the rotation swapped them, to undo a failed commit. */
struct identity {
	char *cred_id, *rkid, *xattrs;
	uint64_t version, seals, seals_saved, xattrs_ver;
	int64_t key_expires;
};

/* Puts the new identity in place (fs->lock held); *old gets what was there. */
static void identity_swap(struct node *n, struct identity *id, struct identity *old)
{
	*old = (struct identity){.cred_id = n->cred_id,
				 .rkid = n->rkid,
				 .xattrs = n->xattrs,
				 .version = n->version,
				 .seals = n->seals,
				 .seals_saved = n->seals_saved,
				 .xattrs_ver = n->xattrs_ver,
				 .key_expires = n->key_expires};
	n->cred_id = id->cred_id;
	n->rkid = id->rkid;
	n->xattrs = id->xattrs;
	n->version = id->version;
	n->seals = id->seals;
	n->seals_saved = id->seals_saved;
	n->xattrs_ver = id->xattrs_ver;
	n->key_expires = id->key_expires;
}

int rotate_commit(struct fs *fs, struct node *n, const struct seal_key *key)
{
	_cleanup_free_ char *compact = NULL, *desc = NULL, *old_x = NULL, *new_x = NULL;
	struct tef_registration *reg = NULL;
	struct seal_manifest *m = NULL;
	struct seal_key *nkey = NULL;
	struct seal_params np;
	struct seg *segs = NULL, *wcopy = NULL;
	struct identity id = {0}, old;
	struct retired *ret_ids = NULL;
	uint8_t *buf = NULL;
	uint32_t hi = 0;
	char **gc = NULL;
	size_t n_gc = 0, len = 0, n_segs, tried = 0;
	uint64_t size, xver, newver = n->version + 2, old_seals = n->seals, seals = 0, batch = 0;
	int r;

	desc = fs_describe(fs, n->ino);
	pthread_mutex_lock(&fs->lock);
	size = n->size;
	xver = n->xattrs_ver;
	old_x = n->xattrs ? strdup(n->xattrs) : NULL;
	pthread_mutex_unlock(&fs->lock);
	if (n->xattrs && !old_x)
		return -ENOMEM;
	n_segs = (size + n->seg_size - 1) / n->seg_size;

	r = keys_register_rotation(fs, n, &reg);
	if (r < 0)
		goto fail;
	r = seal_key_new(reg->key, reg->key_len, &nkey);
	if (r < 0)
		goto fail;
	np = (struct seal_params){.key = nkey,
				  .kid = reg->credential_id,
				  .file_id = n->file_id,
				  .protection = n->protection,
				  .enc = SEAL_ENC_AUTO};

	segs = calloc(n_segs ? n_segs : 1, sizeof(*segs));
	wcopy = malloc((n_segs ? n_segs : 1) * sizeof(*segs));
	buf = secmem_alloc(n->seg_size);
	if (!buf) {
		r = plain_alloc_error(n->seg_size);
		goto fail;
	}
	if (!segs || !wcopy) {
		r = -ENOMEM;
		goto fail;
	}
	for (size_t idx = 0; idx < n_segs; idx++) {
		uint32_t want =
		    idx + 1 < n_segs ? n->seg_size : (uint32_t)(size - idx * n->seg_size);
		_cleanup_free_ char *c = NULL;
		uint32_t got;
		size_t clen;

		/* as a reader sees it, verified under the old key; zeros past got
		 * (a hole, or a segment a truncate grew) */
		r = data_segment_plain(fs, n, key, idx, buf, &got, &hi);
		if (r < 0)
			goto fail;
		tried = idx + 1;
		r = seal_segment(&np, idx, newver, buf, want, &c, &clen);
		if (r == 0)
			r = cache_seg_write(fs->cache, n->ino, idx, newver, c, clen);
		if (r < 0)
			goto fail;
		segs[idx] = (struct seg){.gen = newver, .len = want};
		seals++;
	}
	if (old_x) {
		r = reseal_xattrs(n, key, &np, old_x, buf, &seals, &new_x);
		if (r < 0)
			goto fail;
	}
	/* DESIGN.md 6: the segments are on disk before an index naming them */
	r = cache_segs_sync(fs->cache, n->ino, segs, n_segs, newver);
	if (r < 0)
		goto fail;
	r = seal_manifest_new(n_segs, &m);
	if (r < 0)
		goto fail;
	data_manifest_meta(fs, n, newver, size, m);
	for (size_t i = 0; i < n_segs; i++) {
		m->segments[i].generation = newver;
		m->segments[i].length = segs[i].len;
	}
	m->seals = ++seals; /* this manifest included */
	r = seal_manifest_seal(&np, m, &compact, &len);
	m = seal_manifest_free(m);
	if (r < 0)
		goto fail;
	r = superseded(fs, n, &gc, &n_gc);
	if (r < 0)
		goto fail;
	ret_ids = calloc(1, sizeof(*ret_ids));
	id.cred_id = strdup(reg->credential_id);
	id.rkid = strdup(reg->relative_key_id);
	if (!ret_ids || !id.cred_id || !id.rkid) {
		r = -ENOMEM;
		goto fail;
	}
	id.version = newver;
	id.seals = seals;
	id.seals_saved = seals + DATA_SEALS_RESERVE;
	id.key_expires = reg->expiration;

	pthread_mutex_lock(&fs->lock);
	if (n->xattrs_ver != xver) {
		/* an attribute was removed meanwhile (xattr.c): its list is stale */
		pthread_mutex_unlock(&fs->lock);
		r = -EBUSY;
		goto fail;
	}
	id.xattrs = new_x ? TAKE_PTR(new_x) : n->xattrs;
	id.xattrs_ver = n->xattrs_ver + (old_x ? 1 : 0);
	identity_swap(n, &id, &old);
	n->segs_known = true;
	r = cache_commit(fs->cache, n, segs, n_segs, compact, len, gc, n_gc, &batch);
	if (r < 0) {
		struct identity undo;

		identity_swap(n, &old, &undo);
		new_x = undo.xattrs != old.xattrs ? undo.xattrs : NULL;
		id.cred_id = undo.cred_id;
		id.rkid = undo.rkid;
	}
	pthread_mutex_unlock(&fs->lock);
	if (r < 0)
		goto fail;

	/* committed: the new key is the file's; the old one's strings stay readable */
	*ret_ids = (struct retired){.next = n->retired, .cred_id = old.cred_id, .rkid = old.rkid};
	n->retired = ret_ids;
	if (old.xattrs != n->xattrs)
		free(old.xattrs);
	rotate_key_adopt(n, nkey);
	n->rotate_retry = 0;
	node_adopt_registration(fs, n, reg); /* the targets as tefd says, for the xattr */
	log_info("%s: key rotated after %" PRIu64 " seals: credential-id %s replaced by %s "
		 "(version %" PRIu64 "); the old key is de-registered once hcsed has it",
		 desc, old_seals, old.cred_id, n->cred_id, newver);

	/* close() and fsync() return once the version survives a power loss
	 * (DESIGN.md 6), and only then may the local files it supersedes go */
	int durable_r = cache_wait_durable(fs->cache, batch);
	if (durable_r < 0)
		log_error_errno(durable_r, "version %" PRIu64 " of %s is not durable", newver,
				desc);
	for (size_t i = 0; durable_r == 0 && i < n->n_csegs; i++)
		if (n->csegs[i].gen)
			cache_seg_unlink(fs->cache, n->ino, i, n->csegs[i].gen);
	for (size_t i = 0; durable_r == 0 && i < n->n_wsegs; i++)
		if (n->wsegs[i].gen ==
		    old.version + 1) /* sealed under the old key, never committed */
			cache_seg_unlink(fs->cache, n->ino, i, n->wsegs[i].gen);
	data_drop(n); /* the dirty buffers are in the new version */
	if (n_segs)
		memcpy(wcopy, segs, n_segs * sizeof(*segs));
	n->csegs = segs;
	n->wsegs = wcopy;
	n->n_csegs = n->n_wsegs = n_segs;
	n->content_dirty = false;
	strv_free(gc, n_gc);
	secmem_free(buf, n->seg_size);
	seal_key_free(nkey);
	tef_registration_free(reg);
	uploader_kick(fs->up);
	return durable_r;

fail:
	/* nothing of the new version is named by the index: undone, tried later */
	for (size_t i = 0; i < tried; i++)
		cache_seg_unlink(fs->cache, n->ino, i, newver);
	if (reg)
		keys_deregister(fs, n->uid, n->gid, reg->relative_key_id);
	n->rotate_retry = monotonic_s() + ROTATE_RETRY_S;
	log_warning_errno(r,
			  "cannot rotate the key of %s after %" PRIu64 " seals: this version is "
			  "sealed under the old key, which stops at %" PRIu64 " (retrying in %d s)",
			  desc, old_seals, SEAL_MAX_SEALS, ROTATE_RETRY_S);
	free(id.cred_id);
	free(id.rkid);
	free(ret_ids);
	free(segs);
	free(wcopy);
	strv_free(gc, n_gc);
	secmem_free(buf, n->seg_size);
	seal_key_free(nkey);
	tef_registration_free(reg);
	return -EAGAIN;
}

int rotate_rekey_handle(struct fs *fs, struct handle *h)
{
	struct node *n = h->node;
	struct seal_key *key = NULL;
	uint64_t min_version = 0;
	int r;

	pthread_mutex_unlock(&n->data_lock);
	r = keys_retrieve(fs, &h->caller, n, &key, &min_version);
	pthread_mutex_lock(&n->data_lock);
	if (r == 0 && !rotate_key_is_current(n, key))
		r = -EKEYREVOKED; /* rotated once more meanwhile */
	if (r < 0) {
		_cleanup_free_ char *desc = fs_describe(fs, n->ino);

		seal_key_free(key);
		log_error_errno(r,
				"%s: its key was rotated and the new one could not be had for "
				"uid %u: this open file fails with EIO",
				desc, (unsigned)h->caller.uid);
		return -EIO;
	}
	/* a sealer may still use the old key (data.c: release waits for them too) */
	while (n->n_sealing > 0)
		pthread_cond_wait(&n->seal_cond, &n->data_lock);
	seal_key_free(h->key);
	h->key = key;
	_cleanup_free_ char *desc = fs_describe(fs, n->ino);
	log_info("%s: a descriptor open by uid %u goes on with the rotated key", desc,
		 (unsigned)h->caller.uid);
	return 0;
}
