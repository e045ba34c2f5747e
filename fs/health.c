/* SPDX-License-Identifier: Apache-2.0 */
/* What an operator reads about atrestfs: outages of tefd and hcsed, and files named by their path.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "atrest/cleanup.h"
#include "atrest/hcse_client.h"
#include "atrest/log.h"
#include "atrest/monotonic.h"
#include "atrest/outage.h"
#include "atrestfs.h"
#include "cache.h"

/* What waits for the peers: files whose upload (or version record) is queued. */
static size_t queued_nodes(void *arg)
{
	struct fs *fs = arg;
	_cleanup_free_ uint64_t *inos = NULL;
	size_t n = 0;

	if (cache_dirty_nodes(fs->cache, &inos, &n) < 0)
		return 0;
	return n;
}

int health_attach(struct fs *fs)
{
	int r;

	r = outage_new("tefd", fs->opt.tef, &fs->tef_outage);
	if (r < 0)
		return r;
	r = outage_new("hcsed", fs->opt.hcse_url, &fs->hcse_outage);
	if (r < 0)
		return r;
	outage_set_pending(fs->tef_outage, queued_nodes, fs,
			   "files and directories queued for upload");
	outage_set_pending(fs->hcse_outage, queued_nodes, fs,
			   "files and directories queued for upload");
	tef_client_set_outage(fs->tef, fs->tef_outage);
	hcse_client_set_outage(fs->hcse, fs->hcse_outage);
	return 0;
}

void health_detach(struct fs *fs)
{
	if (fs->tef)
		tef_client_set_outage(fs->tef, NULL);
	if (fs->hcse)
		hcse_client_set_outage(fs->hcse, NULL);
	fs->tef_outage = outage_free(fs->tef_outage);
	fs->hcse_outage = outage_free(fs->hcse_outage);
}

/* The name a file being created will have: it is linked only once tefd registered its key. */
static _Thread_local struct {
	uint64_t ino, parent;
	const char *name;
} naming;

void health_naming(uint64_t ino, uint64_t parent, const char *name)
{
	naming.ino = ino;
	naming.parent = parent;
	naming.name = name;
}

char *fs_describe(struct fs *fs, uint64_t ino)
{
	_cleanup_free_ char *path = NULL;
	const char *name = NULL;
	char *s;
	struct node *n;

	pthread_mutex_lock(&fs->lock);
	n = ns_get(fs, ino);
	if (n) {
		path = ns_path(fs, n);
		name = n->name;
	} else if (naming.name && naming.ino == ino) {
		struct node *dir = ns_get(fs, naming.parent);
		_cleanup_free_ char *dpath = dir ? ns_path(fs, dir) : NULL;

		if (dpath && asprintf(&path, "%s%s%s", dpath, strcmp(dpath, "/") ? "/" : "",
				      naming.name) < 0)
			path = NULL;
		name = naming.name;
	}
	/* a removed file keeps its last name, not its place */
	if (asprintf(&s, "'%s%s' (hcsed '/%s/%s/i%" PRIu64 "')", path ? path : "(removed) ",
		     path ? "" : (name ? name : "?"), fs->cse_rn, fs->ae_path, ino) < 0)
		s = NULL;
	pthread_mutex_unlock(&fs->lock);
	return s ? s : strdup("?");
}

int health_failed(struct fs *fs, struct outage *o, uint64_t ino, const char *what, int r)
{
	if (outage_note_failed(o)) {
		_cleanup_free_ char *desc = fs_describe(fs, ino);

		log_warning("%s of %s failed with EIO because %s is down; further failures are "
			    "counted until it answers",
			    what, desc ? desc : "?", o == fs->tef_outage ? "tefd" : "hcsed");
	} else
		log_debug_errno(r, "%s of inode %" PRIu64 " failed: peer down", what, ino);
	return -EIO;
}

void health_report_unmount(struct fs *fs)
{
	size_t n = queued_nodes(fs);

	if (n == 0)
		log_info("unmounted '%s': everything is uploaded", fs->opt.mountpoint);
	else
		log_info("unmounted '%s': %zu %s stay queued in '%s' for the next mount",
			 fs->opt.mountpoint, n,
			 n == 1 ? "file or directory" : "files and directories", fs->opt.cache);
}

int health_cache_full(struct fs *fs, uint64_t ino)
{
	static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
	static int64_t last;
	static uint64_t refused;
	int64_t now = monotonic_s();
	uint64_t n;

	/* a writer retrying in a loop would log a line per write: one a minute, counting */
	pthread_mutex_lock(&lock);
	n = ++refused;
	if (last && now - last < 60) {
		pthread_mutex_unlock(&lock);
		return -ENOSPC;
	}
	last = now;
	refused = 0;
	pthread_mutex_unlock(&lock);

	_cleanup_free_ char *desc = fs_describe(fs, ino);
	log_warning("cache full of pending uploads (%" PRIu64 " bytes, cache_size): a write to %s "
		    "refused with ENOSPC (%" PRIu64 " refused since the last such line)",
		    fs->opt.cache_size, desc, n);
	return -ENOSPC;
}
