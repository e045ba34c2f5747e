/* SPDX-License-Identifier: Apache-2.0 */
/* The mount's tree on the Hosting CSE: the AE, one container per node, and rebuilding the namespace from it. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "atrest/cleanup.h"
#include <jansson.h>
#ifndef _cleanup_json_
#define _cleanup_json_ _cleanup_(json_decrefp)
#endif

#include "atrest/hcse_client.h"
#include "atrest/log.h"
#include "atrestfs.h"
#include "cache.h"

/* Reads of one container while rebuilding the namespace (2 s of waits in all). */
#define REBUILD_TRIES 5

char *remote_node_path(const struct fs *fs, const struct node *n)
{
	char *p;

	if (asprintf(&p, "%s/i%" PRIu64, fs->ae_path, n->ino) < 0)
		return NULL;
	return p;
}

static int fetch_cin(struct fs *fs, const struct node *n, const char *rn, char **ret,
		     size_t *ret_len)
{
	_cleanup_free_ char *base = remote_node_path(fs, n), *path = NULL;

	if (!base || asprintf(&path, "%s/%s", base, rn) < 0)
		return -ENOMEM;
	return hcse_retrieve_cin(fs->hcse, path, ret, ret_len, NULL, NULL);
}

int remote_fetch_segment(struct fs *fs, const struct node *n, uint64_t idx, uint64_t gen, char **ret,
			 size_t *ret_len)
{
	char rn[64];

	snprintf(rn, sizeof(rn), ATREST_SEGMENT_RN_FMT, idx, gen);
	return fetch_cin(fs, n, rn, ret, ret_len);
}

int remote_fetch_manifest(struct fs *fs, const struct node *n, uint64_t version, char **ret,
			  size_t *ret_len)
{
	char rn[64];

	snprintf(rn, sizeof(rn), ATREST_MANIFEST_RN_FMT, version);
	return fetch_cin(fs, n, rn, ret, ret_len);
}

int remote_ensure_ae(struct fs *fs)
{
	_cleanup_free_ char *aei = NULL;
	int r, rsc;

	r = hcse_create_ae(fs->hcse, fs->opt.ae, "Natrestfs", &aei, &rsc);
	if (r == -EEXIST)
		return 0;
	if (r < 0)
		return r;
	if (aei && *aei) {
		hcse_client_set_origin(fs->hcse, aei);
		cache_meta_set(fs->cache, "aei", aei);
	}
	return 0;
}

/* One container of ours -> a node (not yet inserted). */
static int node_from_container(struct fs *fs, const char *rn, struct node **ret)
{
	_cleanup_free_ char *path = NULL;
	_cleanup_json_ json_t *cnt = NULL;
	const char **labels = NULL;
	struct node *n;
	json_t *lbl, *v;
	size_t i, k = 0;
	int r;

	if (asprintf(&path, "%s/%s", fs->ae_path, rn) < 0)
		return -ENOMEM;
	r = hcse_retrieve(fs->hcse, path, &cnt, NULL, NULL);
	if (r < 0)
		return r;
	lbl = json_object_get(cnt, "lbl");
	if (!json_is_array(lbl))
		return -EBADMSG;
	labels = calloc(json_array_size(lbl) + 1, sizeof(char *));
	if (!labels)
		return -ENOMEM;
	json_array_foreach(lbl, i, v)
		if (json_is_string(v))
			labels[k++] = json_string_value(v);
	n = calloc(1, sizeof(*n));
	if (!n) {
		free(labels);
		return -ENOMEM;
	}
	r = node_from_labels(n, labels, k);
	free(labels);
	if (r < 0) {
		node_from_labels_free(n);
		return r;
	}
	*ret = n;
	return 0;
}

/* Copies what the labels said into a properly initialised node. */
static struct node *adopt(struct fs *fs, struct node *tmp)
{
	struct node *n = ns_node_new(fs, tmp->ino);

	if (!n)
		return NULL;
	n->parent = tmp->parent;
	n->name = tmp->name;
	n->mode = tmp->mode;
	n->uid = tmp->uid;
	n->gid = tmp->gid;
	n->size = tmp->size;
	n->atime = tmp->atime;
	n->mtime = tmp->mtime;
	n->ctime = tmp->ctime;
	n->symlink = tmp->symlink;
	memcpy(n->file_id, tmp->file_id, sizeof(n->file_id));
	n->cred_id = tmp->cred_id;
	n->rkid = tmp->rkid;
	n->protection = tmp->protection;
	if (tmp->seg_size)
		n->seg_size = tmp->seg_size;
	n->version = tmp->version;
	n->remote_version = tmp->version;
	n->remote_size = tmp->size;
	n->expires = tmp->expires;
	n->xattrs_ver = n->xattrs_rver = tmp->xattrs_ver;
	n->remote_created = true;
	n->segs_known = false;
	free(tmp);
	return n;
}

static int rebuild(struct fs *fs)
{
	char **names = NULL;
	size_t n_names = 0, count = 0;
	int r;

	r = hcse_list_children(fs->hcse, fs->ae_path, 3, &names, &n_names, NULL);
	if (r < 0)
		return log_error_errno(r, "cannot list the containers of AE '%s'", fs->ae_path);
	for (size_t i = 0; i < n_names; i++) {
		struct node *tmp = NULL, *n;

		if (names[i][0] != 'i')
			continue;
		/* a container that does not answer now is retried, then fails the
		 * mount: skipped, its node and everything under it would be missing
		 * from this cache for good (ENOENT for a directory that exists) */
		for (unsigned try = 0; try < REBUILD_TRIES; try++) {
			r = node_from_container(fs, names[i], &tmp);
			if (r >= 0 || r == -EBADMSG || r == -ENOENT || r == -ENOMEM)
				break;
			log_warning_errno(r, "cannot read container '%s/%s'; retrying", fs->ae_path,
					  names[i]);
			struct timespec d = { 0, 200000000L * (try + 1) };
			if (try + 1 < REBUILD_TRIES)
				nanosleep(&d, NULL);
		}
		if (r == -EBADMSG || r == -ENOENT) { /* not ours, or removed since the listing */
			log_warning_errno(r, "ignoring container '%s/%s': %s", fs->ae_path, names[i],
					  r == -ENOENT ? "removed since the listing"
						       : "its labels describe no file, directory or "
							 "symlink this filesystem can serve");
			continue;
		}
		if (r >= 0) {
			/* a container is i<INODE> of its own labels, and one per
			 * number: another would replace a node */
			char rn[32];

			node_rn(tmp, rn);
			pthread_mutex_lock(&fs->lock);
			bool taken = ns_get(fs, tmp->ino) != NULL;
			pthread_mutex_unlock(&fs->lock);
			if (taken || strcmp(rn, names[i]) != 0) {
				log_warning("ignoring container '%s/%s': its labels name inode %" PRIu64
					    "%s", fs->ae_path, names[i], tmp->ino,
					    taken ? ", which another node has" : "");
				node_from_labels_free(tmp);
				continue;
			}
		}
		if (r < 0) {
			hcse_names_free(names, n_names);
			return log_error_errno(r, "cannot rebuild the namespace: container '%s/%s' "
					       "unreadable", fs->ae_path, names[i]);
		}
		n = adopt(fs, tmp);
		if (!n) {
			hcse_names_free(names, n_names);
			return -ENOMEM;
		}
		if (n->xattrs_rver) {
			_cleanup_free_ char *xpath = NULL;
			size_t xlen;

			if (asprintf(&xpath, "%s/%s/xa%" PRIu64, fs->ae_path, names[i], n->xattrs_rver) >= 0 &&
			    hcse_retrieve_cin(fs->hcse, xpath, &n->xattrs, &xlen, NULL, NULL) < 0)
				log_warning("cannot fetch the sealed attributes of '%s/%s'", fs->ae_path,
					    names[i]);
		}
		pthread_mutex_lock(&fs->lock);
		char *name = n->name;
		uint64_t parent = n->parent;
		n->name = NULL;
		n->parent = 0;
		ns_insert(fs, n);
		n->name = name;
		n->parent = parent;
		cache_node_save(fs->cache, n);
		pthread_mutex_unlock(&fs->lock);
		count++;
	}
	hcse_names_free(names, n_names);

	/* link names once every number is known */
	pthread_mutex_lock(&fs->lock);
	for (size_t b = 0; b < fs->n_buckets; b++)
		for (struct node *n = fs->by_ino[b]; n; n = n->h_ino_next)
			if (n->name && n->parent && !ns_lookup(fs, n->parent, n->name)) {
				char *name = n->name;
				n->name = NULL;
				ns_link_name(fs, n, n->parent, name);
			}
	pthread_mutex_unlock(&fs->lock);
	log_info("new cache: %zu files and directories found on the HCSE under AE '%s'", count,
		 fs->ae_path);
	return 0;
}

int remote_setup(struct fs *fs, bool fresh)
{
	_cleanup_free_ char *aei = NULL;
	int r;

	if (cache_meta_get(fs->cache, "aei", &aei) == 0 && *aei)
		hcse_client_set_origin(fs->hcse, aei);
	r = remote_ensure_ae(fs);
	if (r < 0) {
		if (fresh)
			return log_error_errno(r, "cannot register AE '%s' with the HCSE, and the "
					       "cache is empty: nothing to serve", fs->opt.ae);
		log_warning_errno(r, "HCSE unreachable: serving from the cache, uploads queued");
		return 0;
	}
	if (fresh)
		return rebuild(fs);
	return 0;
}
